//! The write path: merge ahead, the writer task, group commit, the document cache and one
//! push's writes.

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

/// The columns of an order's row that a push may change besides its document and feed
/// position: when none changed and no transition came, the writer rewrites only those two and
/// the deadline scanner need not look at the order again.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) number: String,
    pub(crate) kind: String,
    pub(crate) category: String,
    pub(crate) grade: String,
    pub(crate) status: String,
    pub(crate) assignee: Option<String>,
    pub(crate) project: String,
    pub(crate) building: Option<String>,
    pub(crate) unit: Option<String>,
    pub(crate) area: Option<String>,
}

impl Listed {
    pub(crate) fn of_row(r: &StoredRow) -> Listed {
        Listed {
            number: r.number.clone(),
            kind: r.kind.clone(),
            category: r.category.clone(),
            grade: r.grade.clone(),
            status: r.status.clone(),
            assignee: r.assignee.clone(),
            project: r.project.clone(),
            building: r.building.clone(),
            unit: r.unit.clone(),
            area: r.area.clone(),
        }
    }

    pub(crate) fn of_summary(s: &loopwork_sync_core::OrderSummary) -> Listed {
        Listed {
            number: s.number.clone(),
            kind: s.kind.code().to_owned(),
            category: s.category.code(),
            grade: s.grade.code().to_owned(),
            status: s.status.code().to_owned(),
            assignee: s.assignee.map(|a| a.to_string()),
            project: s.location.project.clone(),
            building: s.location.building.clone(),
            unit: s.location.unit.clone(),
            area: s.location.area.clone(),
        }
    }
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

/// One push as the writer tries it.
pub(crate) struct Attempt {
    /// The order's row, when the writer read it ahead with others (`Some(None)`: no such order).
    pub(crate) read_ahead: Option<Option<StoredRow>>,
    /// Whether the push wrote anything before it failed.
    pub(crate) wrote: bool,
    /// A push read ahead that changes nothing the order's row lists (a note, parts, time, a
    /// photo): its rows are left to the end of the batch, where every such push's feed rows and
    /// order positions are written together, one statement per table.
    pub(crate) deferred: Option<Deferred>,
}

/// The writes a push left to the end of its batch (see [`Attempt::deferred`]).
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
                let saved = merged.transitions_changed.then(|| merged.order.save_uncompressed());
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
        self.writer.send(job).await.map_err(|_| ApiError::unavailable())?;
        answer.await.map_err(|_| ApiError::unavailable())?
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
        let user: UserId = meta("server_user").await?.parse().map_err(|_| ApiError::internal())?;
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
                .map_err(|_| ApiError::internal())?;
                warmed_orders += loaded.len();
                let mut cache = lock(cache);
                for (id, last_seq, order, assignee) in loaded {
                    cache.put_if_absent(id, last_seq, order, assignee);
                }
            }
            Ok::<(), ApiError>(())
        };
        match warmed.await {
            Ok(()) => tracing::debug!(
                orders = warmed_orders,
                ms = started.elapsed().as_millis() as u64,
                "document cache warmed"
            ),
            Err(e) => tracing::warn!(code = e.code, "the document cache was not warmed"),
        }
    }

    /// The writer task: takes the pushes waiting, writes them in one transaction.
    pub(crate) async fn run_writer(
        pool: sqlx::Pool<B>,
        server: Identity,
        cache: SharedCache,
        mut jobs: tokio::sync::mpsc::Receiver<PushJob>,
    ) {
        // The writer keeps one connection of the pool to itself: taking one per batch
        // waited, under load, behind the request handlers' reads.
        let mut held: Option<sqlx::pool::PoolConnection<B>> = None;
        // Closing the pool (the server stopping) waits for every connection, this one too.
        let mut closing = std::pin::pin!(pool.close_event());
        loop {
            let first = tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                _ = &mut closing => break,
            };
            let mut batch = vec![first];
            while batch.len() < GROUP_COMMIT_MAX {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // Advisory locks are taken in organization order, so two servers' batches
            // cannot deadlock.
            batch.sort_by(|a, b| a.principal.org.cmp(&b.principal.org));
            let mut results = Vec::with_capacity(batch.len());
            let mut staged = Vec::new();
            let committed = match held.take() {
                Some(conn) => Ok(conn),
                None => pool.acquire().await.map_err(ApiError::from),
            };
            let committed = match committed {
                Ok(mut conn) => {
                    let written =
                        Self::write_batch(&mut conn, &server, &mut batch, &cache, &mut staged, &mut results).await;
                    // After a failed batch the connection may be broken: the next one
                    // starts on a fresh one.
                    match written {
                        Ok(()) => held = Some(conn),
                        Err(_) => conn.close_on_drop(),
                    }
                    written
                }
                Err(e) => Err(e),
            };
            if committed.is_ok() {
                let mut cache = lock(&cache);
                for (id, seq, order, assignee) in staged {
                    cache.put(id, seq, order, assignee);
                }
            }
            for (job, result) in
                batch.into_iter().zip(results.into_iter().map(Some).chain(std::iter::repeat_with(|| None)))
            {
                let answer = match (&committed, result) {
                    (Ok(()), Some(result)) => result,
                    (Err(e), _) => Err(e.clone()),
                    (Ok(()), None) => Err(ApiError::internal()),
                };
                let _ = job.reply.send(answer);
            }
        }
    }

    pub(crate) async fn write_batch(
        conn: &mut sqlx::pool::PoolConnection<B>,
        server: &Identity,
        batch: &mut [PushJob],
        cache: &SharedCache,
        staged: &mut Vec<Staged>,
        results: &mut Vec<Result<PushOutcome>>,
    ) -> Result<()> {
        let mut tx = B::begin_writer(conn).await?;
        let mut locked: Option<String> = None;
        let mut synced: Vec<String> = Vec::new();
        let mut closing = HashMap::new();
        let mut now_ms = 0;
        // A push into one order that a request handler merged ahead (so the order exists)
        // is refused, if at all, before its first write: it needs no savepoint. Should
        // the database fail in it (PostgreSQL then aborts the whole transaction), or
        // anything fail after a write, the whole batch fails and every device sends
        // again. Other pushes (several orders, a new order) each get a savepoint, so one
        // refused push leaves the others whole.
        let alone = |job: &PushJob| job.groups.len() == 1 && job.premerged.first().is_some_and(Option::is_some);
        // The rows of orders pushed alone, and only once in the batch, are read together
        // per organization once its lock is held (nothing earlier in the batch writes them).
        let mut pushes = HashMap::<OrderId, usize>::new();
        for (id, _) in batch.iter().flat_map(|job| job.groups.iter()) {
            *pushes.entry(*id).or_default() += 1;
        }
        let read_together = |job: &PushJob| alone(job) && pushes[&job.groups[0].0] == 1;
        let mut read_ahead = HashMap::<String, Vec<(String, String)>>::new();
        for job in batch.iter().filter(|job| read_together(job)) {
            read_ahead
                .entry(job.principal.org.clone())
                .or_default()
                .push((job.groups[0].0.to_string(), job.principal.user.to_string()));
        }
        let mut rows: HashMap<String, StoredRow> = HashMap::new();
        let mut deferred: Vec<(usize, Deferred)> = Vec::new();
        for (at, job) in batch.iter_mut().enumerate() {
            if locked.as_deref() != Some(job.principal.org.as_str()) {
                if let Some(rows) = B::lock_org(&mut tx, &job.principal.org).await? {
                    let read = closing_from_rows(rows)?;
                    closing.insert(job.principal.org.clone(), read);
                    lock(cache).set_closing(&job.principal.org, read);
                }
                locked = Some(job.principal.org.clone());
                let wanted = read_ahead.remove(&job.principal.org).unwrap_or_default();
                rows = B::read_rows(&mut tx, &wanted).await?;
            }
            let alone = alone(job);
            let row = read_together(job).then(|| rows.remove(&job.groups[0].0.to_string()));
            let mut merged = Vec::new();
            let mut attempt = Attempt { read_ahead: row, wrote: false, deferred: None };
            let result = if alone {
                Self::push_in_tx(&mut tx, server, cache, &mut merged, job, &mut closing, &mut attempt).await
            } else {
                let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
                let result =
                    Self::push_in_tx(&mut savepoint, server, cache, &mut merged, job, &mut closing, &mut attempt).await;
                if result.is_ok() {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
                result
            };
            match result {
                Ok(outcome) => {
                    let device = job.principal.device.to_string();
                    if !synced.contains(&device) {
                        synced.push(device);
                    }
                    now_ms = now_ms.max(job.now_ms);
                    staged.extend(merged);
                    deferred.extend(attempt.deferred.map(|d| (at, d)));
                    results.push(Ok(outcome));
                }
                Err(failed) if alone && (attempt.wrote || failed.status.is_server_error()) => return Err(failed),
                Err(refused) => results.push(Err(refused)),
            }
        }
        // Each organization whose feed advances, with its newest position so far (the
        // deferred pushes' rows are yet to be written).
        let mut announced: Vec<(String, i64)> = Vec::new();
        for (at, (job, result)) in batch.iter().zip(&*results).enumerate() {
            let Ok(outcome) = result else { continue };
            if outcome.merged == 0 && !deferred.iter().any(|(d, _)| *d == at) {
                continue;
            }
            match announced.iter_mut().find(|(org, _)| *org == job.principal.org) {
                Some((_, seq)) => *seq = (*seq).max(outcome.feed_seq),
                None => announced.push((job.principal.org.clone(), outcome.feed_seq)),
            }
        }
        let written = B::finish_batch(&mut tx, &deferred, now_ms, &synced, server.device, &announced).await?;
        for ((at, d), w) in deferred.into_iter().zip(written) {
            if let Some(Ok(outcome)) = results.get_mut(at) {
                outcome.merged += w.merged;
                outcome.feed_seq = outcome.feed_seq.max(w.last_seq);
            }
            staged.push((d.id, w.last_seq, d.order, d.assignee));
        }
        tx.commit().await?;
        Ok(())
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

    /// One push, inside the writer's transaction.
    pub(crate) async fn push_in_tx(
        tx: &mut sqlx::Transaction<'_, B>,
        server: &Identity,
        cache: &SharedCache,
        staged: &mut Vec<Staged>,
        job: &mut PushJob,
        read_this_batch: &mut HashMap<String, ClosingAuthority>,
        attempt: &mut Attempt,
    ) -> Result<PushOutcome> {
        let premerged = std::mem::take(&mut job.premerged);
        let (principal, groups, now_ms) = (&job.principal, &job.groups, job.now_ms);
        let mut outcome = PushOutcome {
            acked: groups.iter().flat_map(|(_, changes)| changes.iter().map(Change::hash)).collect(),
            ..PushOutcome::default()
        };
        let user = principal.user.to_string();
        // The organization's rules as committed (read once per batch): a premerge judged
        // with others is redone.
        let closing = match read_this_batch.get(&principal.org) {
            Some(closing) => *closing,
            None => {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT grade, min_role FROM closing_authority WHERE org_id = $1")
                        .bind(&principal.org)
                        .fetch_all(&mut **tx)
                        .await?;
                let closing = closing_from_rows(rows)?;
                read_this_batch.insert(principal.org.clone(), closing);
                lock(cache).set_closing(&principal.org, closing);
                closing
            }
        };
        let authors = authors_of(principal, &job.relayed_authors, closing);
        let premerged = if closing == job.closing { premerged } else { Vec::new() };
        // Device clocks are trusted only between the device's last sync and now: read when
        // a push first brings transitions (most pushes bring notes, not transitions).
        let mut trusted_from: Option<Option<i64>> = None;
        let mut premerged = premerged.into_iter();
        for (id, changes) in groups {
            let ahead = premerged.next().flatten();
            let mut saved = None;
            let order_id = id.to_string();
            let read_ahead = attempt.read_ahead.is_some();
            let row: Option<StoredRow> = match attempt.read_ahead.take() {
                Some(row) => row,
                None => B::read_rows(tx, &[(order_id.clone(), user.clone())]).await?.remove(&order_id),
            };
            let listed_before = row.as_ref().map(Listed::of_row);
            let tail_before = row.as_ref().map_or(0, |r| r.tail_changes);
            if let (Some(expected), Some(row)) = (job.expect, &row)
                && row.status == expected.code()
            {
                // The server's action is done already (by this process or another).
                continue;
            }
            let merged = match row {
                Some(StoredRow {
                    org_id: org,
                    last_seq,
                    assignee,
                    reporter,
                    project,
                    building,
                    unit,
                    given,
                    serves,
                    ..
                }) => {
                    let assignee = assignee.map(|a| a.parse()).transpose().map_err(|_| ApiError::internal())?;
                    let stored = StoredOrder { org, last_seq, assignee, reporter, project, building, unit };
                    // Only the checks the role needs (see `replication::may_write`).
                    let ever_given = principal.role == Role::Technician && given;
                    let owns = principal.role == Role::Owner
                        && Self::owns_unit(tx, &user, &stored.project, &stored.building, &stored.unit).await?;
                    let by_this_server = principal.device == server.device;
                    if !by_this_server && !replication::may_write(principal, &stored, ever_given, owns, serves) {
                        return Err(ApiError::out_of_scope(id).binary());
                    }
                    match ahead.filter(|p| p.at_seq == stored.last_seq) {
                        Some(Premerged { merged, saved: bytes, .. }) => {
                            saved = bytes;
                            merged
                        }
                        None => {
                            let cached = lock(cache).take(*id, stored.last_seq);
                            let order = match cached {
                                Some(order) => order,
                                None => {
                                    let stored: StoredDoc = sqlx::query_as(AssertSqlSafe(format!(
                                        "SELECT {DOC_COLUMNS} FROM orders WHERE id = $1"
                                    )))
                                    .bind(&order_id)
                                    .fetch_one(&mut **tx)
                                    .await?;
                                    let doc = Self::whole_document(&mut **tx, &order_id, stored).await?;
                                    WorkOrder::load(&doc).map_err(|_| ApiError::quarantined(*id).binary())?
                                }
                            };
                            replication::merge_push(
                                Some((order, stored.assignee)),
                                *id,
                                changes,
                                &authors,
                                server,
                                None,
                                now_ms,
                            )?
                        }
                    }
                }
                None => {
                    let candidate = WorkOrder::from_parsed_changes(changes.clone())
                        .map_err(|e| ApiError::from(loopwork_sync_core::CoreError::from(e)).binary())?;
                    let location = candidate.location();
                    let (project_known, serves): (bool, bool) = sqlx::query_as(
                        "SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND code = $2),
                            EXISTS (SELECT 1 FROM staff_projects WHERE user_id = $3 AND project = $2)",
                    )
                    .bind(&principal.org)
                    .bind(&location.project)
                    .bind(&user)
                    .fetch_one(&mut **tx)
                    .await?;
                    let owns =
                        Self::owns_unit(tx, &user, &location.project, &location.building, &location.unit).await?;
                    replication::may_create(principal, &candidate, project_known, owns, serves)?;
                    attempt.wrote = true;
                    let number = Self::next_number(tx, &principal.org, now_ms).await?;
                    replication::merge_push(None, *id, changes, &authors, server, Some(&number), now_ms)?
                }
            };
            if merged.new_changes.is_empty() {
                continue;
            }
            if job.expect.is_some_and(|expected| merged.summary.status != expected) {
                // The server's action no longer applies: someone got there first.
                continue;
            }
            attempt.wrote = true;
            outcome.rejected.extend(merged.rejected.iter().map(|r| r.reason.code()));
            // Each change is logged as its actor's (the pusher's, a relayed change's true
            // author, or a server's); what the merge added is this server's.
            let pushed: HashMap<ChangeHash, DeviceId> = changes
                .iter()
                .map(|c| (c.hash(), DeviceId::from_actor(c.actor_id()).unwrap_or(server.device)))
                .collect();
            let attributed = |hash: &ChangeHash| pushed.get(hash).copied().unwrap_or(server.device);
            if read_ahead
                && job.expect.is_none()
                && merged.new_transitions.is_empty()
                && !merged.transitions_changed
                && listed_before == Some(Listed::of_summary(&merged.summary))
            {
                let changes =
                    merged.new_changes.into_iter().map(|(hash, bytes)| (hash, bytes, attributed(&hash))).collect();
                attempt.deferred = Some(Deferred {
                    id: *id,
                    org: principal.org.clone(),
                    changes,
                    received_at: now_ms,
                    tail_before,
                    order: merged.order,
                    assignee: merged.summary.assignee,
                });
                continue;
            }
            if !merged.new_transitions.is_empty() && trusted_from.is_none() {
                let from: Option<i64> =
                    sqlx::query_scalar("SELECT COALESCE(last_sync_at, created_at) FROM devices WHERE id = $1")
                        .bind(principal.device.to_string())
                        .fetch_optional(&mut **tx)
                        .await?;
                trusted_from = Some(from);
            }
            if let Some(Some(from)) = trusted_from {
                for t in &merged.new_transitions {
                    let accepted = t.at_ms.clamp(from.min(now_ms), now_ms);
                    if accepted == t.at_ms {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO clamped_claims (order_id, entry_id, device_id, claimed_at, accepted_at, received_at)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(id.to_string())
                    .bind(&t.id)
                    .bind(principal.device.to_string())
                    .bind(t.at_ms)
                    .bind(accepted)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            let mut last_seq = 0;
            let mut appended = 0;
            for (hash, bytes) in &merged.new_changes {
                let device = attributed(hash);
                let seq: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at)
                     VALUES ($1, $2, 'change', $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING seq",
                )
                .bind(&principal.org)
                .bind(&order_id)
                .bind(hash.as_ref())
                .bind(bytes)
                .bind(device.to_string())
                .bind(now_ms)
                .fetch_optional(&mut **tx)
                .await?;
                appended += i32::from(seq.is_some());
                last_seq = last_seq.max(seq.unwrap_or(0));
            }
            let summary = &merged.summary;
            if summary.assignee != merged.assignee_before {
                if let Some(before) = merged.assignee_before {
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO feed (org_id, order_id, kind, user_id, reason, received_at)
                         VALUES ($1, $2, 'revoke', $3, 'reassigned', $4) RETURNING seq",
                    )
                    .bind(&principal.org)
                    .bind(&order_id)
                    .bind(before.to_string())
                    .bind(now_ms)
                    .fetch_one(&mut **tx)
                    .await?;
                    last_seq = last_seq.max(seq);
                }
                if let Some(after) = summary.assignee {
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO feed (org_id, order_id, kind, user_id, received_at)
                         VALUES ($1, $2, 'grant', $3, $4) RETURNING seq",
                    )
                    .bind(&principal.org)
                    .bind(&order_id)
                    .bind(after.to_string())
                    .bind(now_ms)
                    .fetch_one(&mut **tx)
                    .await?;
                    last_seq = last_seq.max(seq);
                    sqlx::query("INSERT INTO order_access (order_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(&order_id)
                        .bind(after.to_string())
                        .execute(&mut **tx)
                        .await?;
                }
            }
            if let Some(before) = listed_before.as_ref().filter(|b| b.project != summary.location.project) {
                // The order moved to another project: the dispatchers who serve the one it
                // left (and not the one it entered) are told, those of the new one get it
                // whole.
                let after = &summary.location.project;
                for (kind, reason, from, to) in
                    [("revoke", Some("moved"), &before.project, after), ("grant", None, after, &before.project)]
                {
                    let seqs: Vec<i64> = sqlx::query_scalar(
                        "INSERT INTO feed (org_id, order_id, kind, user_id, reason, received_at)
                         SELECT $1, $2, $3, s.user_id, $4, $5 FROM staff_projects s JOIN users u ON u.id = s.user_id
                         WHERE u.org_id = $1 AND s.project = $6 AND NOT EXISTS (
                            SELECT 1 FROM staff_projects t WHERE t.user_id = s.user_id AND t.project = $7)
                         RETURNING seq",
                    )
                    .bind(&principal.org)
                    .bind(&order_id)
                    .bind(kind)
                    .bind(reason)
                    .bind(now_ms)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut **tx)
                    .await?;
                    last_seq = seqs.into_iter().fold(last_seq, i64::max);
                }
            }
            if last_seq == 0 {
                last_seq = Self::newest_position(tx, &order_id).await?;
            }
            let mut document = || saved.take().unwrap_or_else(|| merged.order.save_uncompressed());
            if !merged.transitions_changed && listed_before == Some(Listed::of_summary(summary)) {
                // A note, a part, time or a photo: nothing the deadline scanner reads
                // moved, so its next check stays, and only the row's feed position and
                // document change (a full upsert would rewrite every index of the table).
                // The new feed rows extend the document's tail; a long tail is folded
                // into a new snapshot.
                if tail_before + appended <= TAIL_MAX {
                    Self::extend_tails(tx, &[(order_id.clone(), appended, last_seq)]).await?;
                } else {
                    Self::write_snapshot(tx, &order_id, (document(), heads_blob(&merged.order)), last_seq).await?;
                }
            } else {
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
                .bind(&order_id)
                .bind(&principal.org)
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
                .bind(document())
                .bind(last_seq)
                .bind((summary.status == Status::AwaitingConfirmation).then_some(now_ms))
                // The escalation scanner looks at the order at its next tick.
                .bind(now_ms)
                // Kept from the push that created the order (`ON CONFLICT` leaves it).
                .bind(user.as_str())
                .bind(heads_blob(&merged.order))
                .execute(&mut **tx)
                .await?;
            }
            outcome.merged += merged.new_changes.len();
            outcome.feed_seq = outcome.feed_seq.max(last_seq);
            staged.push((*id, last_seq, merged.order, merged.summary.assignee));
        }
        Ok(outcome)
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
        Ok(format!("GD{day}{next:04}"))
    }
}
