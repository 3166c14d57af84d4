//! Stored documents: whole documents from snapshots and their tails, vouched documents,
//! quarantine of an order whose history does not load.

use super::*;

/// An order's row as the writer reads it (`SELECT {STORED_ROW}` from `orders o` and a
/// `VALUES` list `v (id, usr)` naming the pushing user).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredRow {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) last_seq: i64,
    pub(crate) assignee: Option<String>,
    pub(crate) reporter: String,
    pub(crate) project: String,
    pub(crate) building: Option<String>,
    pub(crate) unit: Option<String>,
    pub(crate) status: String,
    pub(crate) number: String,
    pub(crate) kind: String,
    pub(crate) category: String,
    pub(crate) grade: String,
    pub(crate) area: Option<String>,
    /// How many of the order's feed changes follow its stored snapshot.
    pub(crate) tail_changes: i32,
    /// Whether the pushing user was ever given the order.
    pub(crate) given: bool,
    /// Whether the order's project is one the pushing user serves (`staff_projects`).
    pub(crate) serves: bool,
}

/// An order's row as [`committed_order_query`] reads it: feed position, assignee, snapshot,
/// snapshot's position, tail length.
type CommittedRow = (i64, Option<String>, Vec<u8>, Option<i64>, i32);

/// The columns of a [`StoredRow`].
pub(crate) const STORED_ROW: &str =
    "o.id, o.org_id, o.last_seq, o.assignee, o.reporter, o.project, o.building, o.unit, o.status,
    o.number, o.kind, o.category, o.grade, o.area, o.tail_changes,
    EXISTS (SELECT 1 FROM order_access a WHERE a.order_id = o.id AND a.user_id = v.usr) AS given,
    EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = v.usr AND s.project = o.project) AS serves";

/// An order's stored document as [`DOC_COLUMNS`] read it: the snapshot, the feed position it
/// holds the order's changes up to, and how many of the order's changes were logged after it
/// (its tail; 0 when the snapshot is whole).
pub(crate) type StoredDoc = (Vec<u8>, Option<i64>, i32);

/// An order's id followed by its [`StoredDoc`], as `SELECT id, {DOC_COLUMNS}` reads it.
pub(crate) type StoredDocRow = (String, Vec<u8>, Option<i64>, i32);

/// The columns of `orders` that make a [`StoredDoc`], in its order.
pub(crate) const DOC_COLUMNS: &str = "doc, doc_seq, tail_changes";

/// A [`StoredDocRow`] followed by its snapshot's heads (`doc_heads`, `NULL` in rows written
/// before heads were kept), as `SELECT id, {VOUCHED_DOC_COLUMNS}` reads it.
pub(crate) type VouchedDocRow = (String, Vec<u8>, Option<i64>, i32, Option<Vec<u8>>);

/// The columns of a [`VouchedDocRow`] after its id.
pub(crate) const VOUCHED_DOC_COLUMNS: &str = "doc, doc_seq, tail_changes, doc_heads";

/// An order's heads as `doc_heads` keeps them: the 32-byte hashes one after the other.
pub(crate) fn heads_blob(order: &WorkOrder) -> Vec<u8> {
    order.heads().iter().flat_map(|h| h.as_ref().to_vec()).collect()
}

pub(crate) fn heads_from_blob(blob: &[u8]) -> Vec<ChangeHash> {
    blob.chunks_exact(32).filter_map(|h| ChangeHash::try_from(h).ok()).collect()
}

/// An order's feed position, assignee and stored document ([`DOC_COLUMNS`]) by id ($1) within
/// an organization ($2).
pub(crate) fn committed_order_query() -> String {
    format!("SELECT last_seq, assignee, {DOC_COLUMNS} FROM orders WHERE id = $1 AND org_id = $2")
}

#[async_trait]
pub trait Documents: Send + Sync {
    /// Who an actor is: a device of the organization (its user and role) or one of the server's
    /// own actors (the server's identity under that actor); `None` for anyone else. A relayed
    /// change is judged as this author.
    async fn actor_author(&self, org: &str, actor: &automerge::ActorId) -> Result<Option<Identity>>;
    /// Sets an order aside whose stored history does not load (see migration 0015/0016), and
    /// counts it in [`Self::quarantined_here`]. Whether it was not quarantined before.
    async fn quarantine(&self, org: &str, order: OrderId, reason: &str, now_ms: i64) -> Result<bool>;
    /// An order's stored document, loaded. One that does not load is quarantined (set aside
    /// from every device's scope, counted, logged by id) and answered 409 `order_quarantined`:
    /// every reader of stored documents loads them through this, so that a damaged order is
    /// never a 500 again and again.
    async fn load_stored(&self, org: &str, order: OrderId, doc: &[u8]) -> Result<WorkOrder>;
    /// How many orders this process has quarantined (`orders_quarantined_total`).
    fn quarantined_here(&self) -> u64;
    /// Whether an order of the organization is quarantined.
    async fn is_quarantined(&self, org: &str, order: OrderId) -> Result<bool>;
    /// Checks orders stored before their snapshot's heads were kept (`doc_heads IS NULL`), at
    /// most `limit` of them: each that loads whole gets its heads, each that does not is
    /// quarantined. Returns (checked, quarantined); a start-up task calls it until nothing is left.
    async fn check_stored(&self, limit: i64, now_ms: i64) -> Result<(usize, Vec<OrderId>)>;
    /// The clamped device times of an order's transitions (entry id → accepted time).
    async fn clamped_times(&self, order: OrderId) -> Result<HashMap<String, i64>>;
    /// An order's document, if it is in the principal's scope.
    async fn order_doc(&self, principal: &Principal, order: OrderId) -> Result<Option<Vec<u8>>>;
}

impl<B: Backend> Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    /// Whole documents from stored ones: each snapshot with a tail gets the order's
    /// changes logged after it appended in feed order (Automerge loads a saved document
    /// followed by change chunks), read in one query per 100 orders. The feed is
    /// append-only, so a snapshot is completed correctly even when the writer folded its
    /// tail in the meantime: the rows read then repeat changes the snapshot already
    /// holds, which loading skips.
    pub(crate) async fn whole_documents(
        conn: &mut <B as sqlx::Database>::Connection,
        stored: Vec<StoredDocRow>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let whole = Self::whole_documents_with_tails(conn, stored).await?;
        Ok(whole.into_iter().map(|(id, doc, _)| (id, doc)).collect())
    }

    /// [`Self::whole_documents`], with the hashes of each document's tail.
    pub(crate) async fn whole_documents_with_tails(
        conn: &mut <B as sqlx::Database>::Connection,
        stored: Vec<StoredDocRow>,
    ) -> Result<Vec<(String, Vec<u8>, Vec<ChangeHash>)>> {
        let mut whole = Vec::with_capacity(stored.len());
        let mut tails = Vec::new();
        for (id, doc, doc_seq, tail) in stored {
            if tail > 0 {
                tails.push((whole.len(), id.clone(), doc_seq.unwrap_or(0)));
            }
            whole.push((id, doc, Vec::new()));
        }
        for chunk in tails.chunks(100) {
            let orders = (0..chunk.len())
                .map(|i| format!("(order_id = ${} AND seq > ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql =
                format!("SELECT order_id, bytes, hash FROM feed WHERE kind = 'change' AND ({orders}) ORDER BY seq");
            let mut query = sqlx::query_as::<_, (String, Vec<u8>, Option<Vec<u8>>)>(AssertSqlSafe(sql));
            for (_, id, doc_seq) in chunk {
                query = query.bind(id.clone()).bind(*doc_seq);
            }
            let at: HashMap<&str, usize> = chunk.iter().map(|(at, id, _)| (id.as_str(), *at)).collect();
            for (order, bytes, hash) in query.fetch_all(&mut *conn).await? {
                if let Some(at) = at.get(order.as_str()) {
                    whole[*at].1.extend_from_slice(&bytes);
                    if let Some(hash) = hash.and_then(|h| ChangeHash::try_from(h.as_slice()).ok()) {
                        whole[*at].2.push(hash);
                    }
                }
            }
        }
        Ok(whole)
    }

    /// Whole documents as a device receives them, each with the server's receipts for its
    /// snapshot's heads and the changes of its tail (between them, its heads).
    pub(crate) async fn vouched_documents(
        &self,
        conn: &mut <B as sqlx::Database>::Connection,
        org: &str,
        stored: Vec<VouchedDocRow>,
    ) -> Result<Vec<(OrderId, Vec<u8>, Vec<Receipt>)>> {
        let mut snapshot_heads = HashMap::new();
        let mut rows = Vec::with_capacity(stored.len());
        for (id, doc, doc_seq, tail, heads) in stored {
            snapshot_heads.insert(id.clone(), heads);
            rows.push((id, doc, doc_seq, tail));
        }
        let mut out = Vec::with_capacity(rows.len());
        for (id, doc, tail) in Self::whole_documents_with_tails(conn, rows).await? {
            let order: OrderId = id.parse().map_err(|e| StoreError::corrupt("order id", e))?;
            let mut hashes = match snapshot_heads.remove(&id).flatten() {
                Some(heads) => heads_from_blob(&heads),
                // Stored before heads were kept: read from the document itself.
                None => self.load_stored(org, order, &doc).await?.heads(),
            };
            hashes.extend(tail);
            let receipts = hashes.iter().map(|h| replication::receipt(&self.fixed.secret, org, order, h)).collect();
            out.push((order, doc, receipts));
        }
        Ok(out)
    }

    /// One order's whole document (see [`Self::whole_documents`]).
    pub(crate) async fn whole_document(
        conn: &mut <B as sqlx::Database>::Connection,
        id: &str,
        (doc, doc_seq, tail): StoredDoc,
    ) -> Result<Vec<u8>> {
        let mut whole = Self::whole_documents(conn, vec![(id.to_owned(), doc, doc_seq, tail)]).await?;
        Ok(whole.pop().map(|(_, doc)| doc).unwrap_or_default())
    }

    /// An order as committed: its feed position, document and assignee, as the writer's
    /// cache holds them.
    pub(crate) async fn committed_order(
        &self,
        org: &str,
        id: OrderId,
    ) -> Result<Option<(i64, WorkOrder, Option<UserId>)>> {
        let order_id = id.to_string();
        let mut conn = self.pool.acquire().await?;
        let row: Option<CommittedRow> = sqlx::query_as(AssertSqlSafe(committed_order_query()))
            .bind(&order_id)
            .bind(org)
            .fetch_optional(&mut *conn)
            .await?;
        let Some((last_seq, assignee, doc, doc_seq, tail)) = row else { return Ok(None) };
        let doc = Self::whole_document(&mut conn, &order_id, (doc, doc_seq, tail)).await?;
        let order = self.load_stored(org, id, &doc).await?;
        let assignee = assignee.map(|a| a.parse()).transpose().map_err(|e| StoreError::corrupt("assignee id", e))?;
        Ok(Some((last_seq, order, assignee)))
    }

    /// One order's whole document by id within an organization, if it is there.
    pub(crate) async fn stored_document(&self, org: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let mut conn = self.pool.acquire().await?;
        let stored: Option<StoredDoc> =
            sqlx::query_as(AssertSqlSafe(format!("SELECT {DOC_COLUMNS} FROM orders WHERE id = $1 AND org_id = $2")))
                .bind(id)
                .bind(org)
                .fetch_optional(&mut *conn)
                .await?;
        match stored {
            Some(stored) => Ok(Some(Self::whole_document(&mut conn, id, stored).await?)),
            None => Ok(None),
        }
    }

    /// One order's whole document with its receipts (see [`Self::vouched_documents`]).
    pub(crate) async fn vouched_document(&self, org: &str, order: OrderId) -> Result<Option<(Vec<u8>, Vec<Receipt>)>> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<VouchedDocRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, {VOUCHED_DOC_COLUMNS} FROM orders WHERE id = $1 AND org_id = $2"
        )))
        .bind(order.to_string())
        .bind(org)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.vouched_documents(&mut conn, org, vec![row]).await?.pop().map(|(_, doc, receipts)| (doc, receipts)))
    }
}

#[async_trait]
impl<B: Backend> Documents for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    async fn actor_author(&self, org: &str, actor: &automerge::ActorId) -> Result<Option<Identity>> {
        let Some(device) = DeviceId::from_actor(actor) else { return Ok(None) };
        if server_actor(&self.fixed.secret, Some(*device.as_uuid().as_bytes())) == device {
            return Ok(Some(Identity::new(self.fixed.server.user, Role::System, device)));
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT u.id, u.role FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1 AND d.org_id = $2",
        )
        .bind(device.to_string())
        .bind(org)
        .fetch_optional(&self.pool)
        .await?;
        let Some((user, role)) = row else { return Ok(None) };
        let user = user.parse().map_err(|e| StoreError::corrupt("user id", e))?;
        let role = Role::from_code(&role).map_err(|e| StoreError::corrupt("role", e))?;
        Ok(Some(Identity::new(user, role, device)))
    }

    async fn quarantine(&self, org: &str, order: OrderId, reason: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET quarantined_at = $3, quarantine_reason = $4
             WHERE id = $1 AND org_id = $2 AND quarantined_at IS NULL",
        )
        .bind(order.to_string())
        .bind(org)
        .bind(now_ms)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        let newly = done.rows_affected() > 0;
        if newly {
            self.fixed.quarantined.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(newly)
    }

    async fn load_stored(&self, org: &str, order: OrderId, doc: &[u8]) -> Result<WorkOrder> {
        match WorkOrder::load(doc) {
            Ok(loaded) => Ok(loaded),
            Err(e) => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                if self.quarantine(org, order, &e.to_string(), now_ms).await? {
                    tracing::error!(%order, error = %e, "an order's stored history does not load: quarantined");
                }
                Err(StoreError::Quarantined(order))
            }
        }
    }

    fn quarantined_here(&self) -> u64 {
        self.fixed.quarantined.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn is_quarantined(&self, org: &str, order: OrderId) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1 AND org_id = $2 AND quarantined_at IS NOT NULL)",
        )
        .bind(order.to_string())
        .bind(org)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn check_stored(&self, limit: i64, now_ms: i64) -> Result<(usize, Vec<OrderId>)> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String, String, Vec<u8>, Option<i64>, i32)> = sqlx::query_as(
            "SELECT org_id, id, doc, doc_seq, tail_changes FROM orders
             WHERE doc_heads IS NULL AND quarantined_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        let orgs: HashMap<String, String> = rows.iter().map(|r| (r.1.clone(), r.0.clone())).collect();
        let stored = rows.into_iter().map(|(_, id, doc, doc_seq, tail)| (id, doc, doc_seq, tail)).collect();
        let whole = Self::whole_documents(&mut conn, stored).await?;
        drop(conn);
        let checked = whole.len();
        let mut quarantined = Vec::new();
        for (id, doc) in whole {
            let order: OrderId = id.parse().map_err(|e| StoreError::corrupt("order id", e))?;
            match WorkOrder::load(&doc) {
                Ok(loaded) => {
                    // The whole document's heads: with a tail they are later than the
                    // snapshot's, and vouch for it all the same (receipts are for changes
                    // stored here, and a change's hash covers its dependencies).
                    sqlx::query("UPDATE orders SET doc_heads = $2 WHERE id = $1 AND doc_heads IS NULL")
                        .bind(&id)
                        .bind(heads_blob(&loaded))
                        .execute(&self.pool)
                        .await?;
                }
                Err(e) => {
                    let org = orgs.get(&id).cloned().unwrap_or_default();
                    if self.quarantine(&org, order, &e.to_string(), now_ms).await? {
                        quarantined.push(order);
                    }
                }
            }
        }
        Ok((checked, quarantined))
    }

    async fn clamped_times(&self, order: OrderId) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT entry_id, accepted_at FROM clamped_claims WHERE order_id = $1")
                .bind(order.to_string())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    async fn order_doc(&self, principal: &Principal, order: OrderId) -> Result<Option<Vec<u8>>> {
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM orders WHERE org_id = $1 AND id = $2 AND $3 = $3 AND {}",
            scope_filter(Scope::of(principal), "id")
        );
        let id = order.to_string();
        let mut conn = self.pool.acquire().await?;
        let stored: Option<StoredDoc> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&principal.org)
            .bind(&id)
            .bind(principal.user.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        match stored {
            Some(stored) => Ok(Some(Self::whole_document(&mut conn, &id, stored).await?)),
            None => Ok(None),
        }
    }
}
