//! The client side of sync protocol v1, sans-IO: build a request from the store, apply a
//! response to the store. The host supplies the transport (reqwest in tests and the simulator,
//! OkHttp or URLSession in the apps) and calls these two in a loop while `has_more`.
//!
//! Applying a response is one atomic store write (documents, acknowledgements, revocations and
//! the cursor together), so a sync cut off at any byte leaves the store as before, and applying
//! the same response twice changes nothing.

use std::collections::BTreeMap;

use crate::error::CoreError;
use crate::ids::OrderId;
use crate::protocol::{OrderBytes, OrderHeads, Receipt, Revocation, SyncRequest, SyncResponse};
use crate::replica::Replica;
use crate::store::{CommitItem, Store, StoredChange, WriteBatch};
use crate::summary::OrderSummary;
use crate::work_order::WorkOrder;

/// How many entries a device asks for in one response.
pub const DEFAULT_PAGE: u32 = 2_000;
/// How many outbox changes one request pushes at most.
pub const MAX_PUSH: usize = 1_000;

/// How many round trips one sync may take before the host gives up (a server that keeps
/// answering `has_more` forever is broken).
pub const MAX_ROUNDS: usize = 1_000;

/// What a response brought for one order: whole documents, then changes.
type Incoming<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// What one applied response did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub acknowledged: usize,
    /// Orders whose content changed here.
    pub updated: Vec<OrderId>,
    pub revoked: Vec<Revocation>,
    /// Local changes put back in the outbox because the server lacked them (recovery).
    pub requeued: usize,
    /// Sync again at once: more is waiting, or the outbox still has changes.
    pub again: bool,
    /// The server does not know our cursor: send [`Replica::reconcile_request`] next.
    pub reconcile_required: bool,
}

impl SyncOutcome {
    /// Whether the host should send the next request at once: more is waiting, the server asked
    /// for a reconciliation, or recovery put changes back in the outbox.
    pub fn continue_now(&self) -> bool {
        self.again || self.reconcile_required || self.requeued > 0
    }
}

/// What a [`SyncSession`] asks the host to do next.
#[derive(Debug)]
pub enum Next {
    /// Send this request and hand the response to [`SyncSession::apply`].
    Send(SyncRequest),
    /// The sync is done: nothing is left to send or to receive now.
    Done,
    /// [`MAX_ROUNDS`] round trips did not settle the sync: the server is broken; try later.
    Unsettled,
}

/// One sync as a sequence of round trips, sans-IO. The host asks for the next request, sends
/// it, and hands back the decoded response; the session applies it to the replica and decides
/// whether another round trip follows (more waiting, a reconciliation asked for, changes put
/// back in the outbox). The bindings, the test harness and the simulator keep only their
/// transport; the loop's rules are here.
///
/// ```text
/// let mut session = SyncSession::new(reconcile_next);
/// while let Next::Send(request) = session.next_request(&replica)? {
///     let response = transport(request.encode())?;          // the host's IO
///     let outcome = session.apply(&mut replica, &SyncResponse::decode(&response, &limits)?)?;
/// }
/// reconcile_next = session.reconcile_next();               // kept for the next sync
/// ```
#[derive(Debug, Default)]
pub struct SyncSession {
    reconcile_next: bool,
    round_trips: usize,
    done: bool,
}

impl SyncSession {
    /// A sync. `reconcile_first`: the last sync ended with the server asking for a
    /// reconciliation (it did not know the cursor), so this one starts with one.
    pub fn new(reconcile_first: bool) -> Self {
        SyncSession { reconcile_next: reconcile_first, round_trips: 0, done: false }
    }

    /// What to do next: the request to send (a reconciliation if the server asked for one), or
    /// that the sync is done, or that it did not settle.
    pub fn next_request<S: Store>(&mut self, replica: &Replica<S>) -> Result<Next, CoreError> {
        if self.done {
            return Ok(Next::Done);
        }
        if self.round_trips >= MAX_ROUNDS {
            return Ok(Next::Unsettled);
        }
        let request = if self.reconcile_next { replica.reconcile_request()? } else { replica.sync_request()? };
        self.round_trips += 1;
        Ok(Next::Send(request))
    }

    /// Applies the response to the last request (one atomic store write) and decides whether
    /// another round trip follows.
    pub fn apply<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        response: &SyncResponse,
    ) -> Result<SyncOutcome, CoreError> {
        let outcome = replica.apply_sync_response(response)?;
        self.reconcile_next = outcome.reconcile_required;
        self.done = !outcome.continue_now();
        Ok(outcome)
    }

    /// Whether the next sync must start with a reconciliation (keep it between syncs).
    pub fn reconcile_next(&self) -> bool {
        self.reconcile_next
    }

    /// Requests sent so far.
    pub fn round_trips(&self) -> usize {
        self.round_trips
    }
}

impl<S: Store> Replica<S> {
    /// The next request: the oldest unacknowledged changes and the cursor. Changes of other
    /// devices in the outbox (put back there by recovery) travel as `relayed`.
    pub fn sync_request(&self) -> Result<SyncRequest, CoreError> {
        let (changes, relayed) = self.outbox()?;
        let receipts = self.receipts_for(&relayed)?;
        Ok(SyncRequest {
            cursor: self.store().cursor()?,
            limit: DEFAULT_PAGE,
            changes,
            relayed,
            reconcile: Vec::new(),
            receipts,
        })
    }

    /// Recovery: no cursor, and the heads of every order held, so that the server can send what
    /// we lack and tell us what it lacks. Loads every document: rare and proportional to the store.
    pub fn reconcile_request(&self) -> Result<SyncRequest, CoreError> {
        let mut reconcile = Vec::new();
        for id in self.store().order_ids()? {
            reconcile.push(OrderHeads { order: id, heads: self.load(id)?.0.heads() });
        }
        let (changes, relayed) = self.outbox()?;
        let receipts = self.receipts_for(&relayed)?;
        Ok(SyncRequest { cursor: None, limit: DEFAULT_PAGE, changes, relayed, reconcile, receipts })
    }

    /// The server's receipts kept for the orders of relayed changes: what vouches for them.
    fn receipts_for(&self, relayed: &[OrderBytes]) -> Result<Vec<Receipt>, CoreError> {
        let orders: std::collections::BTreeSet<OrderId> = relayed.iter().map(|r| r.order).collect();
        let mut receipts = Vec::new();
        for order in orders {
            receipts.extend(self.store().receipts(order)?);
        }
        Ok(receipts)
    }

    /// The outbox split into this device's own changes and others' (relayed after a restore).
    fn outbox(&self) -> Result<(Vec<OrderBytes>, Vec<OrderBytes>), CoreError> {
        let me = self.identity().device.actor();
        let mut own = Vec::new();
        let mut relayed = Vec::new();
        for p in self.pending(MAX_PUSH)? {
            let mine = automerge::Change::from_bytes(p.bytes.clone()).map(|c| c.actor_id() == &me).unwrap_or(true);
            let item = OrderBytes { order: p.order, bytes: p.bytes };
            if mine {
                own.push(item);
            } else {
                relayed.push(item);
            }
        }
        Ok((own, relayed))
    }

    /// Applies a server response, atomically. Bad content (a document that is not a work
    /// order, a change that does not parse) refuses the whole response and stores nothing.
    pub fn apply_sync_response(&mut self, response: &SyncResponse) -> Result<SyncOutcome, CoreError> {
        let mut incoming: BTreeMap<OrderId, Incoming<'_>> = BTreeMap::new();
        for doc in &response.documents {
            incoming.entry(doc.order).or_default().0.push(&doc.bytes);
        }
        for change in &response.changes {
            incoming.entry(change.order).or_default().1.push(&change.bytes);
        }
        let server_heads: BTreeMap<OrderId, &OrderHeads> = response.server_heads.iter().map(|h| (h.order, h)).collect();
        let touched: Vec<OrderId> = incoming.keys().chain(server_heads.keys()).copied().collect();
        self.forget(&touched);

        let mut items = Vec::new();
        let mut updated = Vec::new();
        let mut requeued = 0;
        let ids: std::collections::BTreeSet<OrderId> = incoming.keys().chain(server_heads.keys()).copied().collect();
        for id in ids {
            let (docs, changes) = incoming.get(&id).cloned().unwrap_or_default();
            let mut snapshot = None;
            let mut order = match self.store().load_chunks(id)? {
                Some(chunks) => Some(WorkOrder::load_chunks(chunks.iter().map(Vec::as_slice))?),
                None => None,
            };
            let mut docs = docs.into_iter();
            if order.is_none()
                && let Some(first) = docs.next()
            {
                // An order new to this device, received whole: keep its bytes as the snapshot.
                order = Some(WorkOrder::load(first)?);
                snapshot = Some(first.to_vec());
            }
            let before = order.as_ref().map(WorkOrder::heads).unwrap_or_default();
            for bytes in docs {
                let mut whole = WorkOrder::load(bytes)?;
                if whole.id() != id {
                    return Err(CoreError::InvalidInput(format!("a document sent as {id} is another order")));
                }
                match order.as_mut() {
                    Some(local) => {
                        local.merge(&mut whole)?;
                    }
                    None => order = Some(whole),
                }
            }
            if !changes.is_empty() {
                match order.as_mut() {
                    Some(local) => local.apply_changes(changes)?,
                    None => order = Some(WorkOrder::from_changes(changes)?),
                }
            }
            let Some(order) = order else { continue };
            if order.id() != id {
                return Err(CoreError::InvalidInput(format!("changes sent as {id} are of another order")));
            }
            let mut stored: Vec<StoredChange> = order
                .changes_since(&before)
                .into_iter()
                .map(|(hash, bytes)| StoredChange { hash, bytes, pending: false })
                .collect();
            if !stored.is_empty() || snapshot.is_some() {
                updated.push(id);
            }
            if let Some(theirs) = server_heads.get(&id) {
                // What we have that the server lacks goes back into the outbox.
                let missing = order.changes_since(&theirs.heads);
                requeued += missing.len();
                stored.extend(missing.into_iter().map(|(hash, bytes)| StoredChange { hash, bytes, pending: true }));
            }
            if !stored.is_empty() || snapshot.is_some() {
                items.push(CommitItem { order: id, snapshot, changes: stored, summary: OrderSummary::of(&order)? });
            }
        }

        let revoked: Vec<(OrderId, String)> = response.revoked.iter().map(|r| (r.order, r.reason.clone())).collect();
        let batch = WriteBatch {
            items,
            acknowledged: response.acked.clone(),
            revoked,
            granted: response.documents.iter().map(|d| d.order).collect(),
            cursor: (!response.cursor.is_empty()).then(|| response.cursor.clone()),
            receipts: response.receipts.clone(),
        };
        let before_ack = self.pending_count()?;
        self.store_mut().write(&batch)?;
        let pending_after = self.pending_count()?;
        Ok(SyncOutcome {
            acknowledged: (before_ack + requeued).saturating_sub(pending_after),
            updated,
            revoked: response.revoked.clone(),
            requeued,
            again: response.has_more || (pending_after > 0 && !response.acked.is_empty()),
            reconcile_required: response.reconcile_required,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::{DeviceId, FixedClock, Identity, Role, UserId};

    fn replica() -> Replica<MemoryStore> {
        let me = Identity::new(UserId::new(), Role::Technician, DeviceId::new());
        Replica::new(MemoryStore::new(), me, FixedClock::at(0))
    }

    fn response(cursor: &str, has_more: bool, reconcile_required: bool) -> SyncResponse {
        SyncResponse { cursor: cursor.into(), has_more, reconcile_required, ..SyncResponse::default() }
    }

    fn sent(session: &mut SyncSession, replica: &Replica<MemoryStore>) -> SyncRequest {
        match session.next_request(replica).expect("request") {
            Next::Send(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn a_session_goes_on_while_more_waits_reconciles_when_asked_and_ends_when_settled() {
        let mut replica = replica();
        let mut session = SyncSession::new(false);
        assert_eq!(sent(&mut session, &replica).cursor, None, "a first sync has no cursor");
        session.apply(&mut replica, &response("c1", true, false)).expect("apply");
        assert_eq!(sent(&mut session, &replica).cursor.as_deref(), Some("c1"), "more waited: the next page");
        session.apply(&mut replica, &response("", false, true)).expect("apply");
        assert!(session.reconcile_next());
        let reconciliation = sent(&mut session, &replica);
        assert_eq!(reconciliation.cursor, None, "a reconciliation sends the heads, not the cursor");
        session.apply(&mut replica, &response("c2", false, false)).expect("apply");
        assert!(matches!(session.next_request(&replica).expect("next"), Next::Done));
        assert!(!session.reconcile_next());
        assert_eq!(session.round_trips(), 3);
        // A session that starts where the last left off reconciles first.
        let mut next = SyncSession::new(true);
        assert_eq!(sent(&mut next, &replica).cursor, None);
    }

    #[test]
    fn a_server_that_always_has_more_is_given_up_after_max_rounds() {
        let mut replica = replica();
        let mut session = SyncSession::new(false);
        for round in 0..MAX_ROUNDS {
            sent(&mut session, &replica);
            session.apply(&mut replica, &response(&format!("c{round}"), true, false)).expect("apply");
        }
        assert!(matches!(session.next_request(&replica).expect("next"), Next::Unsettled));
        assert_eq!(session.round_trips(), MAX_ROUNDS);
    }
}
