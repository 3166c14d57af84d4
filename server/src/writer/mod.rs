//! The writer: one task per server process that writes every push. Request handlers merge
//! pushes ahead against the document cache and queue them (`store::Feed::push`); the writer
//! takes the pushes waiting (group commit: one transaction, one fsync, for up to
//! [`GROUP_COMMIT_MAX`]), checks each against the committed row, builds its write plan
//! ([`plan`], pure) and has the storage execute it ([`push`]); the acknowledgements go out after
//! the commit, and the merged documents go back into the cache.

mod plan;
mod push;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use loopwork_sync_core::{Identity, OrderId};

use crate::store::{
    Announced, Backend, Column, Database, Deferred, GROUP_COMMIT_MAX, PushJob, PushOutcome, Result, SharedCache,
    Staged, StoreError, StoredRow, closing_from_stored, lock,
};

/// The writer's functions, generic over the storage's backend.
pub(crate) struct Writer<B>(PhantomData<fn() -> B>);

/// Opens the database a URL names, `postgres://…` or `sqlite:…` (created if missing), and
/// starts its writer.
pub async fn open(url: &str) -> Result<Arc<dyn Database>, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (store, jobs) = crate::store::Postgres::open(url).await.map_err(|e| e.to_string())?;
        Writer::start(&store, jobs);
        Ok(Arc::new(store))
    } else if url.starts_with("sqlite:") {
        let (store, jobs) = crate::store::Sqlite::open(url).await.map_err(|e| e.to_string())?;
        Writer::start(&store, jobs);
        Ok(Arc::new(store))
    } else {
        Err(format!("unsupported database URL (use sqlite:… or postgres://…): {}", url.split(':').next().unwrap_or("")))
    }
}

/// One push as the writer tries it.
struct Attempt {
    /// The order's row, when the writer read it ahead with others (`Some(None)`: no such order).
    read_ahead: Option<Option<StoredRow>>,
    /// Whether the push wrote anything before it failed.
    wrote: bool,
    /// A push read ahead that changes nothing the order's row lists (a note, parts, time, a
    /// photo): its rows are left to the end of the batch, where every such push's feed rows and
    /// order positions are written together, one statement per table.
    deferred: Option<Deferred>,
}

impl<B: Backend> Writer<B>
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
    /// Starts the writer task of `store`, fed with the pushes its `push` queues.
    fn start(store: &crate::store::Store<B>, jobs: tokio::sync::mpsc::Receiver<PushJob>) {
        tokio::spawn(Self::run(
            store.pool.clone(),
            store.fixed.server,
            store.cache.clone(),
            store.advanced.clone(),
            jobs,
        ));
    }

    /// The writer task: takes the pushes waiting, writes them in one transaction.
    async fn run(
        pool: sqlx::Pool<B>,
        server: Identity,
        cache: SharedCache,
        advanced: tokio::sync::broadcast::Sender<Announced>,
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
                None => pool.acquire().await.map_err(StoreError::from),
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
                drop(cache);
                for (org, seq) in advanced_orgs(&batch, &results, |_| false) {
                    let _ = advanced.send(Announced { org, seq: Some(seq) });
                }
            }
            for (job, result) in
                batch.into_iter().zip(results.into_iter().map(Some).chain(std::iter::repeat_with(|| None)))
            {
                let answer = match (&committed, result) {
                    (Ok(()), Some(result)) => result,
                    (Err(e), _) => Err(e.clone()),
                    (Ok(()), None) => Err(StoreError::corrupt("write batch", "a push of the batch has no result")),
                };
                let _ = job.reply.send(answer);
            }
        }
    }

    /// One batch in one transaction: each push in turn (in a savepoint unless it is alone in
    /// its order and merged ahead), then the deferred pushes' rows together.
    async fn write_batch(
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
                if let Some(stored) = B::lock_org(&mut tx, &job.principal.org).await? {
                    let read = closing_from_stored(stored)?;
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
                Err(failed) if alone && (attempt.wrote || failed.is_server_error()) => return Err(failed),
                Err(refused) => results.push(Err(refused)),
            }
        }
        // The positions so far: the deferred pushes' rows are yet to be written.
        let announced = advanced_orgs(batch, results, |at| deferred.iter().any(|(d, _)| *d == at));
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
}

/// Each organization whose feed the batch's pushes advanced, once, with the newest position
/// they report. A push that merged nothing counts only if `deferred` says its rows are still to
/// be written.
fn advanced_orgs(
    batch: &[PushJob],
    results: &[Result<PushOutcome>],
    deferred: impl Fn(usize) -> bool,
) -> Vec<(String, i64)> {
    let mut advanced: Vec<(String, i64)> = Vec::new();
    for (at, (job, result)) in batch.iter().zip(results).enumerate() {
        let Ok(outcome) = result else { continue };
        if outcome.merged == 0 && !deferred(at) {
            continue;
        }
        match advanced.iter_mut().find(|(org, _)| *org == job.principal.org) {
            Some((_, seq)) => *seq = (*seq).max(outcome.feed_seq),
            None => advanced.push((job.principal.org.clone(), outcome.feed_seq)),
        }
    }
    advanced
}
