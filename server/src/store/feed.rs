//! The feed: what a device pulls next, the positions and checks of an organization's feed,
//! and the announcement that it advanced.

use super::*;

/// One page of what a device should receive.
#[derive(Clone, Debug)]
pub struct PullRequest<'a> {
    pub principal: &'a Principal,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    pub max_bytes: usize,
    pub reconcile: &'a [OrderHeads],
    /// Changes the device pushed in this same request: not echoed back to it.
    pub just_pushed: &'a [ChangeHash],
}

/// A feed advance another server process announced: the organization, and its newest
/// position when the announcement carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    pub org: String,
    pub seq: Option<i64>,
}

impl Announced {
    /// The notification's text: `<seq> <announcing process's actor> <org>`, as the writer's
    /// `finish_batch` statement composes it.
    #[cfg(test)]
    pub(crate) fn payload(&self, by: DeviceId) -> String {
        format!("{} {by} {}", self.seq.unwrap_or(0), self.org)
    }

    /// Reads a notification, and which process sent it. A payload of another form (a bare
    /// organization, as servers before positions were announced sent) names the organization.
    pub(crate) fn parse(payload: &str) -> (Announced, Option<DeviceId>) {
        let mut parts = payload.splitn(3, ' ');
        if let (Some(seq), Some(by), Some(org)) = (parts.next(), parts.next(), parts.next())
            && let (Ok(seq), Ok(by)) = (seq.parse::<i64>(), by.parse::<DeviceId>())
        {
            return (Announced { org: org.to_owned(), seq: Some(seq) }, Some(by));
        }
        (Announced { org: payload.to_owned(), seq: None }, None)
    }
}

pub(crate) fn scope_filter(scope: Scope, order_column: &str) -> String {
    // A quarantined order is in nobody's scope: its history does not load.
    let healthy = format!("{order_column} NOT IN (SELECT id FROM orders WHERE quarantined_at IS NOT NULL)");
    match scope_on_orders(scope, "o") {
        None => healthy,
        Some(scoped) => {
            format!("{order_column} IN (SELECT o.id FROM orders o WHERE o.org_id = $1 AND {scoped}) AND {healthy}")
        }
    }
}

/// The scope as a condition on the `orders` row `o` (`$1` the organization, `$3` the user);
/// `None` for the whole organization. Quarantine is not part of it (see [`scope_filter`]).
pub(crate) fn scope_on_orders(scope: Scope, o: &str) -> Option<String> {
    match scope {
        Scope::Organization => None,
        Scope::Assigned(_) => Some(format!("{o}.assignee = $3")),
        Scope::OwnUnits(_) => Some(format!(
            "({o}.reporter = $3 OR EXISTS (SELECT 1 FROM owner_units u WHERE u.user_id = $3
                AND u.project = {o}.project AND u.building = {o}.building AND u.unit = {o}.unit))"
        )),
        Scope::Projects(_) => {
            Some(format!("{o}.project IN (SELECT s.project FROM staff_projects s WHERE s.user_id = $3)"))
        }
    }
}

/// The feed rows a device receives after its cursor ($2), up to `upto` ($5, or an expression),
/// at most $4, as [`FeedRow`]s.
///
/// Staff of the whole organization see every change of it, so they read the organization's feed
/// in order. A technician, an owner or a dispatcher bound to projects sees part of it: those of
/// their orders that changed since the cursor (`last_seq > $2`) are found first, then only their
/// feed rows are read, so a pull costs what changed for this device, not what changed in the
/// whole organization. A quarantined order's changes already in the feed are sent as any
/// others (each was parsed and is whole; pushes to the order are refused from then on): what
/// quarantine withholds is its stored document, which no grant or snapshot serves.
pub(crate) fn feed_query(scope: Scope, upto: &str) -> String {
    let columns = "seq, kind, order_id, bytes, reason, hash";
    let own_access = format!(
        "SELECT {columns} FROM feed WHERE user_id = $3 AND seq > $2 AND seq <= {upto} AND org_id = $1 \
         AND kind IN ('grant', 'revoke')"
    );
    let changed_orders = match scope {
        Scope::Organization => {
            return format!(
                "SELECT {columns} FROM feed WHERE org_id = $1 AND seq > $2 AND seq <= {upto} AND kind = 'change' \
                 UNION ALL {own_access} ORDER BY 1 LIMIT $4"
            );
        }
        Scope::Assigned(_) => "SELECT id FROM orders WHERE org_id = $1 AND assignee = $3 AND last_seq > $2".to_owned(),
        Scope::OwnUnits(_) => "SELECT o.id FROM orders o WHERE o.org_id = $1 AND o.last_seq > $2 AND (o.reporter = $3 \
             OR EXISTS (SELECT 1 FROM owner_units u WHERE u.user_id = $3 AND u.project = o.project \
             AND u.building = o.building AND u.unit = o.unit))"
            .to_owned(),
        Scope::Projects(_) => "SELECT id FROM orders WHERE org_id = $1 AND last_seq > $2 \
             AND project IN (SELECT project FROM staff_projects WHERE user_id = $3)"
            .to_owned(),
    };
    format!(
        "SELECT {columns} FROM feed WHERE order_id IN ({changed_orders}) AND seq > $2 AND seq <= {upto} \
         AND kind = 'change' UNION ALL {own_access} ORDER BY 1 LIMIT $4"
    )
}

/// A feed row as [`feed_query`] reads it: position, kind, order, bytes (a change), reason (a
/// revocation), hash (a change).
pub(crate) type FeedRow = (i64, String, String, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>);

/// A feed row as a position's check needs it: order, kind, hash, user.
type CheckRow = (String, String, Option<Vec<u8>>, Option<String>);

/// A row of the feed's positions: the organization's newest position, then the row at that
/// position or at a cursor's (none if the feed is empty), as its check needs it: position,
/// order, kind, hash, user.
pub(crate) type PositionRow = (i64, Option<i64>, Option<String>, Option<String>, Option<Vec<u8>>, Option<String>);

/// What a steady sync reads in one statement, so in one snapshot: the positions (part 0, as
/// [`PositionRow`]s) and the page of [`feed_query`] up to the newest position (part 1, as
/// [`FeedRow`]s), with $1 the organization, $2 the cursor, $3 the user, $4 the page's size.
pub(crate) fn positions_and_page_query(scope: Scope) -> String {
    format!(
        "WITH l AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM feed WHERE org_id = $1)
         SELECT 0, l.seq, f.seq, f.order_id, f.kind, NULL, NULL, f.hash, f.user_id
         FROM l LEFT JOIN feed f ON f.org_id = $1 AND (f.seq = l.seq OR f.seq = $2)
         UNION ALL
         SELECT 1, NULL, p.seq, p.order_id, p.kind, p.bytes, p.reason, p.hash, NULL
         FROM ({}) p
         ORDER BY 1, 3",
        feed_query(scope, "(SELECT seq FROM l)")
    )
}

/// The newest position and its check, and the check at `seq` (`None` if the organization has
/// no feed row there), from [`PositionRow`]s.
pub(crate) fn positions_of(rows: &[PositionRow], seq: i64) -> (i64, String, Option<String>) {
    let latest = rows.first().map(|r| r.0).unwrap_or(0);
    let check_at = |at: i64| {
        if at == 0 {
            return Some(String::new());
        }
        let (_, _, order, kind, hash, user) = rows.iter().find(|r| r.1 == Some(at))?;
        Some(replication::feed_check(order.as_deref()?, kind.as_deref()?, hash.as_deref(), user.as_deref()))
    };
    (latest, check_at(latest).unwrap_or_default(), check_at(seq))
}

#[async_trait]
pub trait Feed: Send + Sync {
    /// Stores pushed changes (already parsed and attributed), all or nothing.
    async fn push(
        &self,
        principal: &Principal,
        groups: &[(OrderId, Vec<Change>)],
        relayed_authors: &[Identity],
        now_ms: i64,
    ) -> Result<PushOutcome>;
    /// What the device receives next (the `acked` field is left empty).
    async fn pull(&self, request: PullRequest<'_>) -> Result<SyncResponse>;
    /// The newest position in the organization's feed.
    async fn latest_seq(&self, org: &str) -> Result<i64>;
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
    /// The organization's newest feed position and its check, and the check of the row
    /// at `seq` (a device's cursor; `None` if the organization has no row there), in one
    /// query.
    pub(crate) async fn feed_positions(&self, org: &str, seq: i64) -> Result<(i64, String, Option<String>)> {
        let rows: Vec<PositionRow> = sqlx::query_as(
            "SELECT l.seq, f.seq, f.order_id, f.kind, f.hash, f.user_id
             FROM (SELECT COALESCE(MAX(seq), 0) AS seq FROM feed WHERE org_id = $1) l
             LEFT JOIN feed f ON f.org_id = $1 AND (f.seq = l.seq OR f.seq = $2)",
        )
        .bind(org)
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        Ok(positions_of(&rows, seq))
    }

    /// [`Self::feed_positions`] and the device's page after `seq` (see
    /// [`positions_and_page_query`]), in one statement.
    pub(crate) async fn positions_and_page(
        &self,
        principal: &Principal,
        seq: i64,
        limit: usize,
    ) -> Result<((i64, String, Option<String>), Vec<FeedRow>)> {
        type Row = (
            i32,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<Vec<u8>>,
            Option<String>,
            Option<Vec<u8>>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(positions_and_page_query(Scope::of(principal))))
            .bind(&principal.org)
            .bind(seq)
            .bind(principal.user.to_string())
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut positions = Vec::new();
        let mut page = Vec::new();
        for (part, latest, at, order, kind, bytes, reason, hash, user) in rows {
            match (part, at, order, kind) {
                (0, _, order, kind) => positions.push((latest.unwrap_or(0), at, order, kind, hash, user)),
                (_, Some(at), Some(order), Some(kind)) => page.push((at, kind, order, bytes, reason, hash)),
                _ => {
                    return Err(StoreError::corrupt(
                        "feed page row",
                        "a row of the page without its position, order or kind",
                    ));
                }
            }
        }
        Ok((positions_of(&positions, seq), page))
    }

    /// The fingerprint of the organization's feed row at `seq` (empty at 0), or `None`
    /// if there is no such row.
    pub(crate) async fn feed_check(&self, org: &str, seq: i64) -> Result<Option<String>> {
        if seq == 0 {
            return Ok(Some(String::new()));
        }
        let row: Option<CheckRow> =
            sqlx::query_as("SELECT order_id, kind, hash, user_id FROM feed WHERE seq = $1 AND org_id = $2")
                .bind(seq)
                .bind(org)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .map(|(order, kind, hash, user)| replication::feed_check(&order, &kind, hash.as_deref(), user.as_deref())))
    }
}

#[async_trait]
impl<B: Backend> Feed for Store<B>
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
    async fn push(
        &self,
        principal: &Principal,
        groups: &[(OrderId, Vec<Change>)],
        relayed_authors: &[Identity],
        now_ms: i64,
    ) -> Result<PushOutcome> {
        self.push_job(principal, groups, relayed_authors, now_ms, None).await
    }

    async fn pull(&self, request: PullRequest<'_>) -> Result<SyncResponse> {
        let principal = request.principal;
        let scope = Scope::of(principal);
        let user = principal.user.to_string();
        let epoch = self.epoch().await?;
        let at = request.cursor.as_ref().map_or(0, |c| c.seq);
        // A steady sync (a cursor past its first sync, nothing to reconcile) reads the
        // feed's positions and its page in one statement; others read the positions first.
        let steady =
            request.cursor.as_ref().is_some_and(|c| c.snapshot_after.is_none()) && request.reconcile.is_empty();
        let ((latest, latest_check, check_at_cursor), page) = if steady {
            let (positions, page) = self.positions_and_page(principal, at, request.limit).await?;
            (positions, Some(page))
        } else {
            (self.feed_positions(&principal.org, at).await?, None)
        };
        let mut response = SyncResponse::default();
        let cursor = match request.cursor {
            None => Cursor {
                epoch: epoch.clone(),
                seq: latest,
                check: latest_check.clone(),
                snapshot_after: Some(OrderId::from_uuid(uuid::Uuid::nil())),
            },
            Some(c) => {
                let known = c.epoch == epoch && c.seq <= latest && check_at_cursor.as_deref() == Some(c.check.as_str());
                if !known {
                    response.reconcile_required = true;
                    response.cursor = String::new();
                    return Ok(response);
                }
                c
            }
        };

        if !request.reconcile.is_empty() {
            let named: BTreeMap<String, OrderId> =
                request.reconcile.iter().map(|h| (h.order.to_string(), h.order)).collect();
            let sql = format!(
                "SELECT {DOC_COLUMNS} FROM orders WHERE org_id = $1 AND id = $2 AND $3 = $3 AND {}",
                scope_filter(scope, "id")
            );
            let mut conn = self.pool.acquire().await?;
            for (id, order) in named {
                let row: Option<StoredDoc> = sqlx::query_as(AssertSqlSafe(sql.clone()))
                    .bind(&principal.org)
                    .bind(&id)
                    .bind(&user)
                    .fetch_optional(&mut *conn)
                    .await?;
                let known_elsewhere: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)")
                    .bind(&id)
                    .fetch_one(&mut *conn)
                    .await?;
                match row {
                    Some(stored) => {
                        let doc = Self::whole_document(&mut conn, &id, stored).await?;
                        let heads = self.load_stored(&principal.org, order, &doc).await?.heads();
                        response.server_heads.push(OrderHeads { order, heads })
                    }
                    // Unknown here (lost with a restored database): the device sends it all again.
                    None if !known_elsewhere => response.server_heads.push(OrderHeads { order, heads: Vec::new() }),
                    None => {}
                }
            }
        }

        if let Some(after) = cursor.snapshot_after {
            // First sync: every order in scope, whole, in id order; then the feed from `seq`.
            let sql = format!(
                "SELECT id, {VOUCHED_DOC_COLUMNS} FROM orders WHERE org_id = $1 AND id > $2 AND $3 = $3 AND {} ORDER BY id LIMIT $4",
                scope_filter(scope, "id")
            );
            let after_text = if after.as_uuid().is_nil() { String::new() } else { after.to_string() };
            let mut conn = self.pool.acquire().await?;
            let rows: Vec<VouchedDocRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(&principal.org)
                .bind(&after_text)
                .bind(&user)
                .bind(request.limit as i64)
                .fetch_all(&mut *conn)
                .await?;
            let rows = self.vouched_documents(&mut conn, &principal.org, rows).await?;
            let mut bytes = 0;
            let mut last = None;
            let full_page = rows.len() == request.limit;
            let mut cut = false;
            for (order, doc, receipts) in rows {
                if bytes > 0 && bytes + doc.len() > request.max_bytes {
                    cut = true;
                    break;
                }
                bytes += doc.len();
                last = Some(order);
                response.documents.push(OrderBytes { order, bytes: doc });
                response.receipts.extend(receipts);
            }
            response.has_more = full_page || cut;
            let next = if response.has_more { last.or(Some(after)) } else { None };
            response.cursor = Cursor { epoch, seq: cursor.seq, check: cursor.check, snapshot_after: next }.encode();
            return Ok(response);
        }

        let rows: Vec<FeedRow> = match page {
            Some(page) => page,
            None => {
                sqlx::query_as(AssertSqlSafe(feed_query(scope, "$5")))
                    .bind(&principal.org)
                    .bind(cursor.seq)
                    .bind(&user)
                    .bind(request.limit as i64)
                    .bind(latest)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let full_page = rows.len() == request.limit;
        let mut next_seq = cursor.seq;
        let mut bytes = 0;
        let mut cut = false;
        let echo: HashSet<&[u8]> = request.just_pushed.iter().map(|h| h.as_ref()).collect();
        for (seq, kind, order, change, reason, hash) in rows {
            if kind == "change" && hash.as_deref().is_some_and(|h| echo.contains(h)) {
                next_seq = seq;
                continue;
            }
            let order: OrderId = order.parse().map_err(|e| StoreError::corrupt("order id", e))?;
            let mut receipts = Vec::new();
            let item: Vec<u8> = match kind.as_str() {
                "change" => {
                    if let Some(hash) = hash.as_deref().and_then(|h| ChangeHash::try_from(h).ok()) {
                        receipts.push(replication::receipt(&self.fixed.secret, &principal.org, order, &hash));
                    }
                    change.unwrap_or_default()
                }
                // Sent whole only if still in scope: an order given and taken back before
                // this pull is not shown (its revocation follows).
                "grant" if !self.order_in_scope(principal, order).await? => {
                    next_seq = seq;
                    continue;
                }
                "grant" => match self.vouched_document(&principal.org, order).await? {
                    Some((doc, vouched)) => {
                        receipts = vouched;
                        doc
                    }
                    None => Vec::new(),
                },
                _ => Vec::new(),
            };
            if bytes > 0 && bytes + item.len() > request.max_bytes {
                cut = true;
                break;
            }
            bytes += item.len();
            response.receipts.extend(receipts);
            match kind.as_str() {
                "change" => response.changes.push(OrderBytes { order, bytes: item }),
                "grant" => response.documents.push(OrderBytes { order, bytes: item }),
                _ => response.revoked.push(Revocation { order, reason: reason.unwrap_or_else(|| "revoked".into()) }),
            }
            next_seq = seq;
        }
        response.has_more = full_page || cut;
        if !response.has_more {
            next_seq = latest;
        }
        let check = if next_seq == cursor.seq {
            cursor.check
        } else if next_seq == latest {
            latest_check
        } else {
            self.feed_check(&principal.org, next_seq).await?.unwrap_or_default()
        };
        response.cursor = Cursor { epoch, seq: next_seq, check, snapshot_after: None }.encode();
        Ok(response)
    }

    async fn latest_seq(&self, org: &str) -> Result<i64> {
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE org_id = $1")
            .bind(org)
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::Announced;

    #[test]
    pub(crate) fn a_feed_announcement_carries_its_position_and_its_sender() {
        let by = loopwork_sync_core::DeviceId::new();
        let announced = Announced { org: "org with spaces".into(), seq: Some(4_321) };
        assert_eq!(Announced::parse(&announced.payload(by)), (announced, Some(by)));
        // A server from before positions were announced sends the organization alone.
        let legacy = Announced { org: "0f3c".into(), seq: None };
        assert_eq!(Announced::parse("0f3c"), (legacy, None));
        assert_eq!(Announced::parse("12 not-a-device org").0.seq, None);
    }
}
