//! The device's durable store: documents as a snapshot plus appended changes, the outbound
//! queue of local changes the server has not acknowledged, the sync cursor, and a query index
//! of [`OrderSummary`] rows so that lists never load documents.
//!
//! [`Store`] is the one trait; [`MemoryStore`] and [`SqliteStore`] implement it and pass the
//! same conformance suite (`tests/store_conformance.rs`). A store never interprets documents:
//! [`crate::Replica`] does, and hands the store bytes and summaries.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::{STORE_SCHEMA_VERSION, SqliteStore};

use automerge::ChangeHash;

use crate::error::CoreError;
use crate::ids::{OrderId, UserId};
use crate::lifecycle::Status;
use crate::protocol::Receipt;
use crate::summary::OrderSummary;

/// One Automerge change as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChange {
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
    /// Made on this device and not yet acknowledged by the server: it is in the outbox.
    pub pending: bool,
}

/// One document's part of an atomic commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitItem {
    pub order: OrderId,
    /// A whole saved document to keep as the order's snapshot (an order received whole);
    /// `changes` are then the ones made on top of it.
    pub snapshot: Option<Vec<u8>>,
    pub changes: Vec<StoredChange>,
    pub summary: OrderSummary,
}

/// Everything one sync response (or one edit) writes, applied atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub items: Vec<CommitItem>,
    pub acknowledged: Vec<ChangeHash>,
    /// Orders that left the device's scope, with the reason code.
    pub revoked: Vec<(OrderId, String)>,
    /// Orders (back) in scope: their revocation, if any, is lifted.
    pub granted: Vec<OrderId>,
    pub cursor: Option<String>,
    /// The server's receipts for changes received, kept for recovery (see
    /// [`crate::protocol::Receipt`]).
    pub receipts: Vec<Receipt>,
}

/// A change waiting in the outbox, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    pub order: OrderId,
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
}

/// Which orders a list shows. Results come most urgent first: the earliest next deadline, then
/// those with nothing due, each group oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderQuery {
    pub assignee: Option<UserId>,
    pub reporter: Option<UserId>,
    /// Only these states (empty: any).
    pub statuses: Vec<Status>,
    /// Only orders that still owe work (see [`Status::is_open`]).
    pub open_only: bool,
    pub project: Option<String>,
    pub building: Option<String>,
    /// Only the orders of this incident (事件单).
    pub incident: Option<i64>,
    pub limit: usize,
}

impl OrderQuery {
    /// "My orders, most urgent first."
    pub fn assigned_to(user: UserId, limit: usize) -> Self {
        OrderQuery { assignee: Some(user), open_only: true, limit, ..Default::default() }
    }

    pub fn most_urgent(limit: usize) -> Self {
        OrderQuery { open_only: true, limit, ..Default::default() }
    }

    fn matches(&self, s: &OrderSummary) -> bool {
        self.assignee.is_none_or(|a| s.assignee == Some(a))
            && self.reporter.is_none_or(|r| s.reporter == r)
            && (self.statuses.is_empty() || self.statuses.contains(&s.status))
            && (!self.open_only || s.status.is_open())
            && self.project.as_ref().is_none_or(|p| &s.location.project == p)
            && self.building.as_ref().is_none_or(|b| s.location.building.as_ref() == Some(b))
            && self.incident.is_none_or(|i| s.incident == Some(i))
    }
}

/// Storage for one device's replica. Every method is atomic: it happens whole or not at all,
/// and a commit that returned `Ok` survives a crash.
pub trait Store: Send {
    /// The document's chunks in load order (snapshot first), or `None` if the order is unknown.
    fn load_chunks(&self, order: OrderId) -> Result<Option<Vec<Vec<u8>>>, CoreError>;

    /// Applies a whole batch in one atomic write: appends changes and replaces index rows,
    /// acknowledges, records revocations and grants, moves the cursor. Changes already stored
    /// (same hash) are not stored twice, so replays are harmless; a stored change committed again
    /// as pending goes back into the outbox (recovery).
    fn write(&mut self, batch: &WriteBatch) -> Result<(), CoreError>;

    /// Appends changes to documents and replaces their index rows, atomically.
    fn commit_batch(&mut self, items: &[CommitItem]) -> Result<(), CoreError> {
        self.write(&WriteBatch { items: items.to_vec(), ..WriteBatch::default() })
    }

    /// [`Store::commit_batch`] for one document.
    fn commit(&mut self, order: OrderId, changes: &[StoredChange], summary: &OrderSummary) -> Result<(), CoreError> {
        self.commit_batch(&[CommitItem { order, snapshot: None, changes: changes.to_vec(), summary: summary.clone() }])
    }

    /// Why the order left this device's scope, if it did: its copy is then read-only.
    fn revocation(&self, order: OrderId) -> Result<Option<String>, CoreError>;

    /// Replaces a document's acknowledged changes with a snapshot that contains them. Pending
    /// changes stay, as the outbox still needs their bytes.
    fn compact(&mut self, order: OrderId, snapshot: &[u8]) -> Result<(), CoreError>;

    fn list(&self, query: &OrderQuery) -> Result<Vec<OrderSummary>, CoreError>;

    fn order_count(&self) -> Result<usize, CoreError>;

    /// The oldest `limit` changes of the outbox, in the order they were made.
    fn pending(&self, limit: usize) -> Result<Vec<PendingChange>, CoreError>;

    fn pending_count(&self) -> Result<usize, CoreError>;

    /// Marks changes as durably received by the server; unknown hashes are ignored. Returns how
    /// many left the outbox.
    fn acknowledge(&mut self, hashes: &[ChangeHash]) -> Result<usize, CoreError>;

    /// The sync cursor: opaque to the store.
    fn cursor(&self) -> Result<Option<String>, CoreError>;

    fn set_cursor(&mut self, cursor: &str) -> Result<(), CoreError> {
        self.write(&WriteBatch { cursor: Some(cursor.to_owned()), ..WriteBatch::default() })
    }

    /// Every order id in the store.
    fn order_ids(&self) -> Result<Vec<OrderId>, CoreError>;

    /// The server's receipts kept for an order's changes.
    fn receipts(&self, order: OrderId) -> Result<Vec<Receipt>, CoreError>;
}

/// Sorts summaries most urgent first (the order every store returns).
pub(crate) fn urgency_order(a: &OrderSummary, b: &OrderSummary) -> std::cmp::Ordering {
    let key = |s: &OrderSummary| (s.next_deadline_ms.is_none(), s.next_deadline_ms, s.created_at_ms, s.id);
    key(a).cmp(&key(b))
}
