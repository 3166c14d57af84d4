//! Pushes on their way to the writer (`crate::writer`): merged ahead against the document
//! cache and queued; the cache warmed at start; and the statements the writer's plans execute.

use loopwork_sync_core::china_time::OfficialNumber;

use super::*;

/// What a push did.
#[derive(Clone, Debug, Default)]
pub struct PushOutcome {
    /// Every pushed change, now durably stored (new or already known).
    pub acked: Vec<ChangeHash>,
    /// How many changes were new to the server (its own included).
    pub merged: usize,
    /// The newest feed position the push wrote (0 if it wrote nothing new).
    pub feed_seq: i64,
    /// Reason codes of the pushed changes the server compensated.
    pub rejected: Vec<&'static str>,
}

/// How many logged changes may follow an order's snapshot before the writer folds them into a
/// new one. A note appends one feed row instead of rewriting the whole document; every reader
/// of the whole document reads the tail from the feed.
pub(crate) const TAIL_MAX: i32 = 32;

/// Whether an order's tail, `tail_before` changes long, may take `appended` more, or the order
/// gets a new snapshot instead.
pub(crate) fn fits_tail(tail_before: i32, appended: i32) -> bool {
    tail_before + appended <= TAIL_MAX
}

/// A device's claimed time for a transition, outside its clock's trust window (see
/// `loopwork_sync_core::TrustWindow`): a row of `clamped_claims`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClampedClaim {
    pub(crate) entry: String,
    pub(crate) device: DeviceId,
    pub(crate) claimed_at: i64,
    pub(crate) accepted_at: i64,
}

/// An order's row as a push rewrites it whole (see `Store::upsert_order`).
pub(crate) struct OrderRow<'a> {
    pub(crate) org: &'a str,
    pub(crate) order_id: &'a str,
    pub(crate) summary: &'a loopwork_sync_core::OrderSummary,
    pub(crate) doc: Vec<u8>,
    pub(crate) heads: Vec<u8>,
    pub(crate) last_seq: i64,
    /// The user whose push created the order (kept from the first write).
    pub(crate) registered_by: &'a str,
    pub(crate) now_ms: i64,
}

/// One push waiting for the writer.
#[derive(Debug)]
pub(crate) struct PushJob {
    pub(crate) principal: Principal,
    pub(crate) groups: Vec<(OrderId, Vec<Change>)>,
    /// The true authors of changes relayed in the push (verified by their receipts), judged
    /// each as themselves.
    pub(crate) relayed_authors: Vec<Identity>,
    /// Per group, the merge a request handler already did against a cached document (in
    /// parallel with other handlers); the writer uses it only if the order's feed position is
    /// still the one merged against, and merges again itself otherwise.
    pub(crate) premerged: Vec<Option<Premerged>>,
    /// The organization's closing authority the premerges were judged with.
    pub(crate) closing: ClosingAuthority,
    /// For the server's own actions: the status the action must produce once merged, else the
    /// order is left as it is (another server, or a device, got there first).
    pub(crate) expect: Option<Status>,
    pub(crate) now_ms: i64,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<PushOutcome>>,
}

#[derive(Debug)]
pub(crate) struct Premerged {
    pub(crate) at_seq: i64,
    pub(crate) merged: replication::Merged,
    /// The merged document saved, when the push brings a transition (the writer then rewrites
    /// the order's snapshot); other pushes usually append to its tail and need no save.
    pub(crate) saved: Option<Vec<u8>>,
}

/// The writer's cache of merged documents, which request handlers read to merge ahead.
pub(crate) type SharedCache = std::sync::Arc<std::sync::Mutex<DocumentCache>>;

pub(crate) fn lock(cache: &SharedCache) -> std::sync::MutexGuard<'_, DocumentCache> {
    cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Pushes that arrive together are written in one transaction (group commit): one commit, one
/// fsync, for up to this many; each push in its own savepoint, so one refused push leaves the
/// others whole. Acknowledgements go out only after the commit.
pub(crate) const GROUP_COMMIT_MAX: usize = 128;

/// Documents the writer keeps loaded (about 20 KiB each): more than the orders a busy day's
/// technicians work on (200 with 20 open orders each are 4,000). With fewer, a technician coming
/// back to an order often found it let go, and its push loaded it again.
pub(crate) const CACHED_DOCUMENTS: usize = 5_000;

/// An order merged in the current batch: cached once the batch commits.
pub(crate) type Staged = (OrderId, i64, WorkOrder, Option<UserId>);

/// The writes a push left to the end of its batch (see `writer::plan::RowWrite::Deferred`).
pub(crate) struct Deferred {
    pub(crate) id: OrderId,
    pub(crate) org: String,
    /// The changes to log, in causal order, each with the device it is attributed to.
    pub(crate) changes: Vec<(ChangeHash, Vec<u8>, DeviceId)>,
    pub(crate) received_at: i64,
    pub(crate) tail_before: i32,
    pub(crate) order: WorkOrder,
    pub(crate) assignee: Option<UserId>,
}

/// A deferred push once written: its order's new feed position and how many changes it logged.
pub(crate) struct Written {
    pub(crate) last_seq: i64,
    pub(crate) merged: usize,
}

/// The pusher's author, then each relayed change's true author, under the organization's
/// closing authority.
pub(crate) fn authors_of(principal: &Principal, relayed: &[Identity], closing: ClosingAuthority) -> Vec<Author> {
    std::iter::once(principal.identity())
        .chain(relayed.iter().copied())
        .map(|identity| Author { identity, closing })
        .collect()
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
    pub(crate) async fn push_job(
        &self,
        principal: &Principal,
        groups: &[(OrderId, Vec<Change>)],
        relayed_authors: &[Identity],
        now_ms: i64,
        expect: Option<Status>,
    ) -> Result<PushOutcome> {
        if groups.is_empty() {
            return Ok(PushOutcome::default());
        }
        // Merge ahead, here and in parallel with other requests, against cached documents;
        // the writer checks that nothing moved in between.
        let server = self.fixed.server;
        let closing = lock(&self.cache).closing(&principal.org);
        let authors = authors_of(principal, relayed_authors, closing);
        let mut premerged = Vec::with_capacity(groups.len());
        for (id, changes) in groups {
            // An order the writer has not cached (after a restart, or written by another
            // server) is loaded here, in parallel with other requests, not by the writer.
            let cached = lock(&self.cache).lend(*id);
            let base = match cached {
                Some(cached) => Some(cached),
                None => self.committed_order(&principal.org, *id).await.ok().flatten(),
            };
            premerged.push(base.and_then(|(at_seq, order, assignee)| {
                let merged =
                    replication::merge_push(Some((order, assignee)), *id, changes, &authors, &server, None, now_ms)
                        .ok()?;
                let saved =
                    (merged.transitions_changed || merged.asset_changed).then(|| merged.order.save_uncompressed());
                Some(Premerged { at_seq, merged, saved })
            }));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = PushJob {
            principal: principal.clone(),
            groups: groups.to_vec(),
            relayed_authors: relayed_authors.to_vec(),
            premerged,
            closing,
            expect,
            now_ms,
            reply,
        };
        self.writer.send(job).await.map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Creates the database's identity on first open, and this process's server actor.
    pub(crate) async fn init_meta(pool: &sqlx::Pool<B>) -> Result<Fixed> {
        for (key, value) in [
            ("epoch", uuid::Uuid::new_v4().simple().to_string()),
            ("server_user", UserId::new().to_string()),
            ("server_secret", format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())),
        ] {
            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
        }
        let meta = |key: &'static str| async move {
            sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1").bind(key).fetch_one(pool).await
        };
        let secret = meta("server_secret").await?;
        let user: UserId = meta("server_user").await?.parse().map_err(|e| StoreError::corrupt("server user id", e))?;
        Ok(Fixed {
            epoch: meta("epoch").await?,
            server: Identity::new(user, Role::System, server_actor(&secret, None)),
            secret,
            quarantined: Default::default(),
        })
    }

    /// At a start, before the server listens, loads the orders changed last (as
    /// many as the writer caches) into the writer's cache, so that the first pushes after
    /// a restart do not each load their order at once while the start-up's traffic waits.
    pub(crate) async fn prewarm(pool: &sqlx::Pool<B>, cache: &SharedCache) {
        let started = std::time::Instant::now();
        let mut warmed_orders = 0;
        let warmed = async {
            let orgs: Vec<String> = sqlx::query_scalar("SELECT id FROM organizations").fetch_all(pool).await?;
            let mut recent: Vec<(i64, String)> = Vec::new();
            for org in orgs {
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT last_seq, id FROM orders WHERE org_id = $1 ORDER BY last_seq DESC LIMIT $2")
                        .bind(&org)
                        .bind(CACHED_DOCUMENTS as i64)
                        .fetch_all(pool)
                        .await?;
                recent.extend(rows);
            }
            recent.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
            recent.truncate(CACHED_DOCUMENTS);
            // Oldest first, so that the orders changed last are the last let go.
            recent.reverse();
            for chunk in recent.chunks(100) {
                let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                let sql = format!("SELECT id, last_seq, assignee, {DOC_COLUMNS} FROM orders WHERE id IN ({list})");
                let mut query =
                    sqlx::query_as::<_, (String, i64, Option<String>, Vec<u8>, Option<i64>, i32)>(AssertSqlSafe(sql));
                for (_, id) in chunk {
                    query = query.bind(id);
                }
                let mut conn = pool.acquire().await?;
                let rows = query.fetch_all(&mut *conn).await?;
                let mut position = HashMap::new();
                let mut stored = Vec::with_capacity(rows.len());
                for (id, last_seq, assignee, doc, doc_seq, tail) in rows {
                    position.insert(id.clone(), (last_seq, assignee));
                    stored.push((id, doc, doc_seq, tail));
                }
                let whole = Self::whole_documents(&mut conn, stored).await?;
                drop(conn);
                // Loading documents is CPU work: off the runtime's threads.
                let loaded = tokio::task::spawn_blocking(move || {
                    whole
                        .into_iter()
                        .filter_map(|(id, doc)| {
                            let (last_seq, assignee) = position.remove(&id)?;
                            let assignee = assignee.and_then(|a| a.parse().ok());
                            Some((id.parse().ok()?, last_seq, WorkOrder::load(&doc).ok()?, assignee))
                        })
                        .collect::<Vec<(OrderId, i64, WorkOrder, Option<UserId>)>>()
                })
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
                warmed_orders += loaded.len();
                let mut cache = lock(cache);
                for (id, last_seq, order, assignee) in loaded {
                    cache.put_if_absent(id, last_seq, order, assignee);
                }
            }
            Ok::<(), StoreError>(())
        };
        match warmed.await {
            Ok(()) => tracing::debug!(
                orders = warmed_orders,
                ms = started.elapsed().as_millis() as u64,
                "document cache warmed"
            ),
            Err(e) => tracing::warn!(error = %e, "the document cache was not warmed"),
        }
    }

    /// The newest feed position of an order's changes: where a push whose every change
    /// was in the feed already (a concurrent duplicate) leaves the order.
    pub(crate) async fn newest_position(tx: &mut sqlx::Transaction<'_, B>, order_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&mut **tx)
            .await?)
    }

    /// Moves orders to their new feed positions past the changes just logged for them,
    /// which lengthen each document's tail (see `TAIL_MAX`): `(order, changes logged,
    /// position)`, one statement per 400 orders.
    pub(crate) async fn extend_tails(
        tx: &mut sqlx::Transaction<'_, B>,
        positions: &[(String, i32, i64)],
    ) -> Result<()> {
        for chunk in positions.chunks(400) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, CAST(${} AS INTEGER), CAST(${} AS BIGINT))", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE orders SET doc_seq = CASE WHEN tail_changes = 0 THEN last_seq ELSE doc_seq END,
                    tail_changes = tail_changes + v.column2, last_seq = v.column3
                 FROM (VALUES {values}) AS v WHERE orders.id = v.column1"
            );
            let mut update = sqlx::query(AssertSqlSafe(sql));
            for (id, appended, last_seq) in chunk {
                update = update.bind(id).bind(*appended).bind(*last_seq);
            }
            update.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Replaces an order's snapshot with its whole document at `last_seq`: the tail is
    /// folded in.
    pub(crate) async fn write_snapshot(
        tx: &mut sqlx::Transaction<'_, B>,
        order_id: &str,
        (doc, heads): (Vec<u8>, Vec<u8>),
        last_seq: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE orders SET doc = $1, doc_heads = $4, doc_seq = NULL, tail_changes = 0, last_seq = $2 WHERE id = $3",
        )
        .bind(doc)
        .bind(last_seq)
        .bind(order_id)
        .bind(heads)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Whether the user is an owner of the unit.
    pub(crate) async fn owns_unit(
        tx: &mut sqlx::Transaction<'_, B>,
        user: &str,
        project: &str,
        building: &Option<String>,
        unit: &Option<String>,
    ) -> Result<bool> {
        let (Some(building), Some(unit)) = (building, unit) else { return Ok(false) };
        let owns: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM owner_units
             WHERE user_id = $1 AND project = $2 AND building = $3 AND unit = $4)",
        )
        .bind(user)
        .bind(project)
        .bind(building.as_str())
        .bind(unit.as_str())
        .fetch_one(&mut **tx)
        .await?;
        Ok(owns)
    }

    pub(crate) async fn next_number(tx: &mut sqlx::Transaction<'_, B>, org: &str, now_ms: i64) -> Result<String> {
        let day = loopwork_sync_core::china_time::day_code(now_ms);
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO number_counters (org_id, day, next) VALUES ($1, $2, 1)
             ON CONFLICT (org_id, day) DO UPDATE SET next = number_counters.next + 1
             RETURNING next",
        )
        .bind(org)
        .bind(&day)
        .fetch_one(&mut **tx)
        .await?;
        Ok(OfficialNumber::new(day, next).text())
    }

    /// Makes the day's count of the organization at least the count of `number`: an order that
    /// reaches a restored database already numbered (a phone re-pushing what the restore lost)
    /// keeps its number, and the next order of that day is numbered after it.
    pub(crate) async fn raise_number(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        number: &OfficialNumber,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO number_counters (org_id, day, next) VALUES ($1, $2, $3)
             ON CONFLICT (org_id, day) DO UPDATE SET next = CASE
                 WHEN excluded.next > number_counters.next THEN excluded.next ELSE number_counters.next END",
        )
        .bind(org)
        .bind(number.day.as_str())
        .bind(number.count)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The organization's closing authority as committed, read through `executor` (the pool, or
    /// the writer's transaction).
    pub(crate) async fn read_closing<'e, E>(executor: E, org: &str) -> Result<ClosingAuthority>
    where
        E: sqlx::Executor<'e, Database = B>,
    {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM org_settings WHERE org_id = $1 AND name = $2")
                .bind(org)
                .bind(CLOSING_AUTHORITY)
                .fetch_optional(executor)
                .await?;
        closing_from_stored(stored)
    }

    /// An order's whole document as committed, loaded; 409 `order_quarantined` if it does not load.
    pub(crate) async fn read_order(tx: &mut sqlx::Transaction<'_, B>, id: OrderId) -> Result<WorkOrder> {
        let order_id = id.to_string();
        let stored: StoredDoc =
            sqlx::query_as(AssertSqlSafe(format!("SELECT {DOC_COLUMNS} FROM orders WHERE id = $1")))
                .bind(&order_id)
                .fetch_one(&mut **tx)
                .await?;
        let doc = Self::whole_document(&mut **tx, &order_id, stored).await?;
        WorkOrder::load(&doc).map_err(|_| StoreError::Quarantined(id))
    }

    /// For a new order: whether its project is one of the organization's, and whether the user
    /// serves it (`staff_projects`).
    pub(crate) async fn project_facts(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        project: &str,
        user: &str,
    ) -> Result<(bool, bool)> {
        Ok(sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND code = $2),
                EXISTS (SELECT 1 FROM staff_projects WHERE user_id = $3 AND project = $2)",
        )
        .bind(org)
        .bind(project)
        .bind(user)
        .fetch_one(&mut **tx)
        .await?)
    }

    /// The device's last contact with the server: its last sync, or its registration (`None`:
    /// no such device).
    pub(crate) async fn last_contact(tx: &mut sqlx::Transaction<'_, B>, device: DeviceId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT COALESCE(last_sync_at, created_at) FROM devices WHERE id = $1")
            .bind(device.to_string())
            .fetch_optional(&mut **tx)
            .await?)
    }

    pub(crate) async fn insert_clamped(
        tx: &mut sqlx::Transaction<'_, B>,
        order_id: &str,
        claims: &[ClampedClaim],
        now_ms: i64,
    ) -> Result<()> {
        for claim in claims {
            sqlx::query(
                "INSERT INTO clamped_claims (order_id, entry_id, device_id, claimed_at, accepted_at, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(order_id)
            .bind(&claim.entry)
            .bind(claim.device.to_string())
            .bind(claim.claimed_at)
            .bind(claim.accepted_at)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Logs changes in the feed, in the order given; a change logged already is skipped. How
    /// many were new, and the newest position written (0 if none).
    pub(crate) async fn insert_changes(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        changes: &[(ChangeHash, Vec<u8>, DeviceId)],
        now_ms: i64,
    ) -> Result<(i32, i64)> {
        let (mut appended, mut last_seq) = (0, 0);
        for (hash, bytes, device) in changes {
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at)
                 VALUES ($1, $2, 'change', $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING seq",
            )
            .bind(org)
            .bind(order_id)
            .bind(hash.as_ref())
            .bind(bytes)
            .bind(device.to_string())
            .bind(now_ms)
            .fetch_optional(&mut **tx)
            .await?;
            appended += i32::from(seq.is_some());
            last_seq = last_seq.max(seq.unwrap_or(0));
        }
        Ok((appended, last_seq))
    }

    /// The order is taken from its assignee (a `revoke` row, reason `reassigned`); its position.
    pub(crate) async fn revoke_assignee(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        user: UserId,
        now_ms: i64,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO feed (org_id, order_id, kind, user_id, reason, received_at)
             VALUES ($1, $2, 'revoke', $3, 'reassigned', $4) RETURNING seq",
        )
        .bind(org)
        .bind(order_id)
        .bind(user.to_string())
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await?)
    }

    /// The order is given to its new assignee (a `grant` row, and access that outlasts the
    /// assignment); the grant's position.
    pub(crate) async fn grant_assignee(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        user: UserId,
        now_ms: i64,
    ) -> Result<i64> {
        let seq = sqlx::query_scalar(
            "INSERT INTO feed (org_id, order_id, kind, user_id, received_at)
             VALUES ($1, $2, 'grant', $3, $4) RETURNING seq",
        )
        .bind(org)
        .bind(order_id)
        .bind(user.to_string())
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query("INSERT INTO order_access (order_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(order_id)
            .bind(user.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(seq)
    }

    /// The order moved from project `from` to `to`: the dispatchers who serve the one it left
    /// (and not the one it entered) are told, those of the new one get it whole. The newest
    /// position written (0 if none).
    pub(crate) async fn move_project(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<i64> {
        let mut last_seq = 0;
        for (kind, reason, left, entered) in [("revoke", Some("moved"), from, to), ("grant", None, to, from)] {
            let seqs: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO feed (org_id, order_id, kind, user_id, reason, received_at)
                 SELECT $1, $2, $3, s.user_id, $4, $5 FROM staff_projects s JOIN users u ON u.id = s.user_id
                 WHERE u.org_id = $1 AND s.project = $6 AND NOT EXISTS (
                    SELECT 1 FROM staff_projects t WHERE t.user_id = s.user_id AND t.project = $7)
                 RETURNING seq",
            )
            .bind(org)
            .bind(order_id)
            .bind(kind)
            .bind(reason)
            .bind(now_ms)
            .bind(left)
            .bind(entered)
            .fetch_all(&mut **tx)
            .await?;
            last_seq = seqs.into_iter().fold(last_seq, i64::max);
        }
        Ok(last_seq)
    }

    /// Writes an order's row whole (creating it), from its merged summary; the deadline scanner
    /// looks at the order at its next tick.
    pub(crate) async fn upsert_order(tx: &mut sqlx::Transaction<'_, B>, row: OrderRow<'_>) -> Result<()> {
        let summary = row.summary;
        sqlx::query(
            "INSERT INTO orders (id, org_id, number, kind, category, grade, status, is_open, assignee, reporter,
                project, building, unit, area, created_at, next_deadline, doc, last_seq, awaiting_since,
                next_check, registered_by, doc_heads)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                $21, $22)
             ON CONFLICT (id) DO UPDATE SET number = excluded.number, kind = excluded.kind,
                category = excluded.category, grade = excluded.grade, status = excluded.status,
                is_open = excluded.is_open, assignee = excluded.assignee, project = excluded.project,
                building = excluded.building, unit = excluded.unit, area = excluded.area,
                next_deadline = excluded.next_deadline, doc = excluded.doc, last_seq = excluded.last_seq,
                awaiting_since = CASE WHEN excluded.awaiting_since IS NULL THEN NULL
                    ELSE COALESCE(orders.awaiting_since, excluded.awaiting_since) END,
                next_check = excluded.next_check, doc_seq = NULL, tail_changes = 0,
                doc_heads = excluded.doc_heads",
        )
        .bind(row.order_id)
        .bind(row.org)
        .bind(&summary.number)
        .bind(summary.kind.code())
        .bind(summary.category.code())
        .bind(summary.grade.code())
        .bind(summary.status.code())
        .bind(summary.status.is_open())
        .bind(summary.assignee.map(|a| a.to_string()))
        .bind(summary.reporter.to_string())
        .bind(&summary.location.project)
        .bind(&summary.location.building)
        .bind(&summary.location.unit)
        .bind(&summary.location.area)
        .bind(summary.created_at_ms)
        .bind(summary.next_deadline_ms)
        .bind(row.doc)
        .bind(row.last_seq)
        .bind((summary.status == Status::AwaitingConfirmation).then_some(row.now_ms))
        // The escalation scanner looks at the order at its next tick.
        .bind(row.now_ms)
        // Kept from the push that created the order (`ON CONFLICT` leaves it).
        .bind(row.registered_by)
        .bind(row.heads)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
