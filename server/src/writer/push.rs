//! One push, inside the writer's transaction: the order's row read (or read ahead), who may
//! write it, the merge (or the one a request handler made ahead), the write plan, and the
//! statements that execute it.

use std::collections::HashMap;

use loopwork_sync_core::authority::ClosingAuthority;
use loopwork_sync_core::china_time::OfficialNumber;
use loopwork_sync_core::{Identity, Role, TrustWindow, WorkOrder};

use super::plan::{self, Listed, PushFacts, RowWrite};
use super::{Attempt, Writer};
use crate::error::ApiError;
use crate::replication::{self, StoredOrder};
use crate::store::StoreError;
use crate::store::{
    Backend, Column, Deferred, OrderRow, Premerged, PushJob, PushOutcome, Result, SharedCache, Staged, Store,
    StoredRow, authors_of, fits_tail, heads_blob, lock,
};

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
    /// One push, inside the writer's transaction.
    pub(super) async fn push_in_tx(
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
            acked: groups.iter().flat_map(|(_, changes)| changes.iter().map(automerge::Change::hash)).collect(),
            ..PushOutcome::default()
        };
        let user = principal.user.to_string();
        // The organization's rules as committed (read once per batch): a premerge judged
        // with others is redone.
        let closing = match read_this_batch.get(&principal.org) {
            Some(closing) => *closing,
            None => {
                let closing = Store::<B>::read_closing(&mut **tx, &principal.org).await?;
                read_this_batch.insert(principal.org.clone(), closing);
                lock(cache).set_closing(&principal.org, closing);
                closing
            }
        };
        let authors = authors_of(principal, &job.relayed_authors, closing);
        let premerged = if closing == job.closing { premerged } else { Vec::new() };
        // The device's clock window, read when a push first needs it (most pushes bring notes,
        // not transitions).
        let mut window: Option<Option<TrustWindow>> = None;
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
            let mut merged = match row {
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
                    let assignee =
                        assignee.map(|a| a.parse()).transpose().map_err(|e| StoreError::corrupt("assignee id", e))?;
                    let stored = StoredOrder { org, last_seq, assignee, reporter, project, building, unit };
                    // Only the checks the role needs (see `replication::may_write`).
                    let ever_given = principal.role == Role::Technician && given;
                    let owns = principal.role == Role::Owner
                        && Store::<B>::owns_unit(tx, &user, &stored.project, &stored.building, &stored.unit).await?;
                    let by_this_server = principal.device == server.device;
                    if !by_this_server && !replication::may_write(principal, &stored, ever_given, owns, serves) {
                        return Err(StoreError::OutOfScope(*id));
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
                                None => Store::<B>::read_order(tx, *id).await?,
                            };
                            let existing = Some((order, stored.assignee));
                            replication::merge_push(existing, *id, changes, &authors, server, None, now_ms)?
                        }
                    }
                }
                None => {
                    let candidate = WorkOrder::from_parsed_changes(changes.clone())
                        .map_err(|e| ApiError::from(loopwork_sync_core::CoreError::from(e)).binary())?;
                    let location = candidate.location();
                    let (project_known, serves) =
                        Store::<B>::project_facts(tx, &principal.org, &location.project, &user).await?;
                    let owns =
                        Store::<B>::owns_unit(tx, &user, &location.project, &location.building, &location.unit).await?;
                    replication::may_create(principal, &candidate, project_known, owns, serves)?;
                    attempt.wrote = true;
                    // Numbered already: a phone re-pushing an order a restore lost keeps its
                    // number, if a server wrote it. The sync handler lets a change through only
                    // under the pusher's actor, a relayed author's (both in `authors`) or, with the
                    // server's receipt, a server actor's: the writer must be none of `authors`.
                    // (A device's own number is compensated by the review like any server-only
                    // field.)
                    let by_a_server =
                        |writer: &loopwork_sync_core::DeviceId| !authors.iter().any(|a| a.identity.device == *writer);
                    let given = candidate
                        .official_number_and_writer()
                        .filter(|(_, writer)| by_a_server(writer))
                        .and_then(|(number, _)| OfficialNumber::parse(&number));
                    let number = match given {
                        Some(given) => {
                            Store::<B>::raise_number(tx, &principal.org, &given).await?;
                            None
                        }
                        None => Some(Store::<B>::next_number(tx, &principal.org, now_ms).await?),
                    };
                    replication::merge_push(None, *id, changes, &authors, server, number.as_deref(), now_ms)?
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
            let facts =
                PushFacts { listed_before: listed_before.as_ref(), read_ahead, server_action: job.expect.is_some() };
            let row_write = plan::row_write(&merged, &facts);
            if plan::needs_clock_window(&merged, row_write) && window.is_none() {
                let last_contact = Store::<B>::last_contact(tx, principal.device).await?;
                window = Some(last_contact.map(|from| TrustWindow::new(from, now_ms)));
            }
            let plan = plan::plan(
                &mut merged,
                changes,
                principal.device,
                server.device,
                listed_before.as_ref(),
                window.flatten(),
            );
            if row_write == RowWrite::Deferred {
                attempt.deferred = Some(Deferred {
                    id: *id,
                    org: principal.org.clone(),
                    changes: plan.changes,
                    received_at: now_ms,
                    tail_before,
                    order: merged.order,
                    assignee: merged.summary.assignee,
                });
                continue;
            }
            let org = principal.org.as_str();
            Store::<B>::insert_clamped(tx, &order_id, &plan.clamped, now_ms).await?;
            let (appended, mut last_seq) =
                Store::<B>::insert_changes(tx, org, &order_id, &plan.changes, now_ms).await?;
            if let Some(before) = plan.revoked {
                last_seq = last_seq.max(Store::<B>::revoke_assignee(tx, org, &order_id, before, now_ms).await?);
            }
            if let Some(after) = plan.granted {
                last_seq = last_seq.max(Store::<B>::grant_assignee(tx, org, &order_id, after, now_ms).await?);
            }
            if let Some(moved) = &plan.moved {
                let seq = Store::<B>::move_project(tx, org, &order_id, &moved.from, &moved.to, now_ms).await?;
                last_seq = last_seq.max(seq);
            }
            if let Some(references) = &plan.references {
                Store::<B>::set_references(tx, org, &order_id, references, now_ms).await?;
            }
            if last_seq == 0 {
                last_seq = Store::<B>::newest_position(tx, &order_id).await?;
            }
            let mut document = || saved.take().unwrap_or_else(|| merged.order.save_uncompressed());
            // A deferred push left above: the row is appended to or rewritten whole.
            if row_write == RowWrite::Append {
                if fits_tail(tail_before, appended) {
                    Store::<B>::extend_tails(tx, &[(order_id.clone(), appended, last_seq)]).await?;
                } else {
                    let snapshot = (document(), heads_blob(&merged.order));
                    Store::<B>::write_snapshot(tx, &order_id, snapshot, last_seq).await?;
                }
            } else {
                let row = OrderRow {
                    org,
                    order_id: &order_id,
                    summary: &merged.summary,
                    doc: document(),
                    heads: heads_blob(&merged.order),
                    last_seq,
                    registered_by: &user,
                    now_ms,
                };
                Store::<B>::upsert_order(tx, row).await?;
            }
            outcome.merged += plan.changes.len();
            outcome.feed_seq = outcome.feed_seq.max(last_seq);
            staged.push((*id, last_seq, merged.order, merged.summary.assignee));
        }
        Ok(outcome)
    }
}
