//! A device's replica of the orders it may see: the entry point the apps use.
//!
//! [`Replica`] turns domain edits into document changes and hands them to its [`Store`] with
//! the order's new summary, in one atomic commit; local changes enter the outbox until the
//! server acknowledges them. Documents are loaded on demand, so memory does not grow with the
//! number of orders held.

use automerge::ChangeHash;

use crate::classification::{Category, Grade};
use crate::clock::Clock;
use crate::error::CoreError;
use crate::identity::Identity;
use crate::ids::OrderId;
use crate::lifecycle::Action;
use crate::location::Location;
use crate::permissions::{self, Field};
use crate::store::{CommitItem, OrderQuery, PendingChange, Store, StoredChange};
use crate::summary::OrderSummary;
use crate::work_order::{Appointment, NewAttachment, NewOrder, WorkOrder};

/// What working an incident did: the orders changed, and those the action did not apply to
/// with why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncidentWork {
    pub changed: Vec<OrderId>,
    pub skipped: Vec<(OrderId, String)>,
}

/// A document with more loose changes than this is rewritten as one snapshot.
pub const COMPACT_AFTER_CHANGES: usize = 64;

/// How many recently edited documents a replica keeps loaded: a technician works a few orders at
/// a time, and reloading one for every note is the main cost of an edit.
const RECENT_DOCUMENTS: usize = 16;

pub struct Replica<S: Store> {
    store: S,
    identity: Identity,
    clock: Box<dyn Clock>,
    /// Recently edited orders, most recent last, with their stored chunk count. Only committed
    /// states are kept here; every write to the store goes through this replica.
    recent: std::collections::VecDeque<(WorkOrder, usize)>,
}

impl<S: Store> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl<S: Store> Replica<S> {
    pub fn new(store: S, identity: Identity, clock: impl Clock + 'static) -> Self {
        Replica { store, identity, clock: Box::new(clock), recent: std::collections::VecDeque::new() }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, for a write that bypasses the document cache: the orders it touches must be
    /// passed to [`Replica::forget`].
    pub(crate) fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Drops orders from the document cache (their stored state changed underneath it).
    pub(crate) fn forget(&mut self, ids: &[OrderId]) {
        self.recent.retain(|(order, _)| !ids.contains(&order.id()));
    }

    fn take_recent(&mut self, id: OrderId) -> Option<(WorkOrder, usize)> {
        let at = self.recent.iter().position(|(order, _)| order.id() == id)?;
        self.recent.remove(at)
    }

    fn keep_recent(&mut self, order: WorkOrder, chunks: usize) {
        if self.recent.len() == RECENT_DOCUMENTS {
            self.recent.pop_front();
        }
        self.recent.push_back((order, chunks));
    }

    /// Why this order is read-only here (it left the device's scope), if it is.
    pub fn revocation(&self, id: OrderId) -> Result<Option<String>, CoreError> {
        self.store.revocation(id)
    }

    pub fn into_store(self) -> S {
        self.store
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Registers a new order on this device.
    pub fn create(&mut self, new: &NewOrder) -> Result<OrderId, CoreError> {
        let order = WorkOrder::create(new, &self.identity, self.clock.now_ms())?;
        let changes = order.changes_since(&[]);
        self.commit(&order, changes, true, 0)?;
        Ok(order.id())
    }

    /// Loads one order's document.
    pub fn order(&self, id: OrderId) -> Result<WorkOrder, CoreError> {
        if let Some((order, _)) = self.recent.iter().find(|(order, _)| order.id() == id) {
            return Ok(order.clone());
        }
        Ok(self.load(id)?.0)
    }

    pub(crate) fn load(&self, id: OrderId) -> Result<(WorkOrder, usize), CoreError> {
        let chunks = self.store.load_chunks(id)?.ok_or_else(|| CoreError::NotFound(id.to_string()))?;
        let order = WorkOrder::load_chunks(chunks.iter().map(Vec::as_slice))?;
        if order.id() != id {
            return Err(CoreError::Storage(format!("the store holds another document under {id}")));
        }
        Ok((order.with_device(self.identity.device), chunks.len()))
    }

    /// Runs one edit on an order and commits what it changed. If the edit fails, nothing is
    /// stored.
    pub fn edit<T>(
        &mut self,
        id: OrderId,
        edit: impl FnOnce(&mut WorkOrder, &Identity, i64) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        if let Some(reason) = self.store.revocation(id)? {
            return Err(CoreError::ReadOnly { order: id.to_string(), reason });
        }
        let (mut order, chunks) = match self.take_recent(id) {
            Some(recent) => recent,
            None => self.load(id)?,
        };
        let before = order.heads();
        // On failure the order is dropped: it may hold changes that were never committed.
        let result = edit(&mut order, &self.identity, self.clock.now_ms())?;
        let changes = order.changes_since(&before);
        let chunks = self.commit(&order, changes, true, chunks)?;
        self.keep_recent(order, chunks);
        Ok(result)
    }

    /// A lifecycle transition, checked against the rules as this device sees the order.
    pub fn transition(&mut self, id: OrderId, action: Action, text: Option<&str>) -> Result<ChangeHash, CoreError> {
        self.edit(id, |order, me, now| order.transition(me, action, text, now))
    }

    /// Works an incident (事件单) in one step, offline like any edit: the action on each of its
    /// orders held here that are assigned to this device's user and still open, each its own
    /// transition checked against the lifecycle. Orders where the action does not apply (already
    /// taken further, on hold, …) are left as they are and listed with the reason.
    pub fn work_incident(
        &mut self,
        number: i64,
        action: Action,
        text: Option<&str>,
    ) -> Result<IncidentWork, CoreError> {
        let me = self.identity.user;
        let query = OrderQuery {
            assignee: Some(me),
            open_only: true,
            incident: Some(number),
            limit: usize::MAX,
            ..OrderQuery::default()
        };
        let mut work = IncidentWork::default();
        for order in self.store.list(&query)? {
            match self.transition(order.id, action, text) {
                Ok(_) => work.changed.push(order.id),
                Err(e @ (CoreError::Refused(_) | CoreError::ReadOnly { .. })) => {
                    work.skipped.push((order.id, e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(work)
    }

    /// An edit of one field, checked against [`permissions::FIELD_RULES`] as this device sees
    /// the order now.
    fn edit_field<T>(
        &mut self,
        id: OrderId,
        field: Field,
        edit: impl FnOnce(&mut WorkOrder, &Identity, i64) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        self.edit(id, |order, me, now| {
            let state = order.state()?;
            permissions::check_field(field, &state, order.reporter()?, me.user, me.role).map_err(CoreError::Refused)?;
            edit(order, me, now)
        })
    }

    pub fn add_note(&mut self, id: OrderId, text: &str) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Notes, |order, me, now| order.add_note(me, text, now))
    }

    pub fn set_description(&mut self, id: OrderId, text: &str) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Description, |order, _, now| order.set_description(text, now))
    }

    pub fn set_grade(&mut self, id: OrderId, grade: Grade) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Grade, |order, _, now| order.set_grade(grade, now))
    }

    pub fn set_category(&mut self, id: OrderId, category: &Category) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Category, |order, _, now| order.set_category(category, now))
    }

    pub fn set_location(&mut self, id: OrderId, location: &Location) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Location, |order, _, now| order.set_location(location, now))
    }

    /// Sets the caller's preferred window (预约时间), or removes it.
    pub fn set_appointment(&mut self, id: OrderId, appointment: Option<Appointment>) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Appointment, |order, _, now| order.set_appointment(appointment, now))
    }

    /// Names the asset the order is about, or (`None`) none.
    pub fn set_asset(&mut self, id: OrderId, asset: Option<&str>) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Asset, |order, _, now| order.set_asset(asset, now))
    }

    /// Adds a checklist item; returns its id.
    pub fn add_checklist_item(&mut self, id: OrderId, label: &str) -> Result<String, CoreError> {
        self.edit_field(id, Field::Checklist, |order, _, now| {
            order.add_checklist_item(label, now).map(|(item, _)| item)
        })
    }

    pub fn tick_checklist_item(&mut self, id: OrderId, item: &str, done: bool) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Checklist, |order, _, now| order.tick_checklist_item(item, done, now))
    }

    pub fn add_part(&mut self, id: OrderId, name: &str, quantity: i64) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Parts, |order, me, now| order.add_part(me, name, quantity, now))
    }

    pub fn log_time(&mut self, id: OrderId, start_ms: i64, end_ms: i64) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::TimeLog, |order, me, now| order.log_time(me, start_ms, end_ms, now))
    }

    /// Attaches a photo or file by its content hash (lowercase hex SHA-256), its kind inferred
    /// from its type.
    pub fn attach(&mut self, id: OrderId, sha256_hex: &str, mime: &str) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Attachments, |order, me, now| order.attach(me, sha256_hex, mime, now))
    }

    /// Attaches a photo or file with its kind, size and caption.
    pub fn attach_with(&mut self, id: OrderId, attachment: &NewAttachment) -> Result<ChangeHash, CoreError> {
        self.edit_field(id, Field::Attachments, |order, me, now| order.attach_with(me, attachment, now))
    }

    /// Completes an order with the owner's signature (业主签字确认): see
    /// [`WorkOrder::complete_signed`].
    pub fn complete_signed(
        &mut self,
        id: OrderId,
        signature: &NewAttachment,
        text: Option<&str>,
    ) -> Result<ChangeHash, CoreError> {
        self.edit(id, |order, me, now| order.complete_signed(me, signature, text, now))
    }

    /// Takes an order loaded elsewhere, with the bytes it was loaded from (a saved document,
    /// possibly followed by change chunks), as this device's copy: the bytes are kept as its
    /// snapshot and the loaded order is edited next without being loaded again. Nothing is
    /// queued for upload. The server's desk edits an order this way, one replica per request,
    /// instead of storing the order's history change by change and parsing it back.
    pub fn adopt(&mut self, order: WorkOrder, saved: Vec<u8>) -> Result<(), CoreError> {
        let id = order.id();
        self.forget(&[id]);
        let summary = OrderSummary::of(&order)?;
        self.store.commit_batch(&[CommitItem { order: id, snapshot: Some(saved), changes: Vec::new(), summary }])?;
        self.keep_recent(order.with_device(self.identity.device), 1);
        Ok(())
    }

    /// Stores changes that arrived from elsewhere. They are not queued for upload.
    pub fn receive(&mut self, id: OrderId, changes: &[Vec<u8>]) -> Result<(), CoreError> {
        self.forget(&[id]);
        let existing = self.store.load_chunks(id)?;
        let (mut order, chunks) = match existing {
            Some(_) => self.load(id)?,
            None => {
                let order = WorkOrder::from_changes(changes.iter().map(Vec::as_slice))?;
                if order.id() != id {
                    return Err(CoreError::InvalidInput(format!("the changes are not of order {id}")));
                }
                let all = order.changes_since(&[]);
                return self.commit(&order, all, false, 0).map(drop);
            }
        };
        let before = order.heads();
        order.apply_changes(changes.iter().map(Vec::as_slice))?;
        let added = order.changes_since(&before);
        self.commit(&order, added, false, chunks).map(drop)
    }

    /// Commits changes with the order's new summary; returns the stored chunk count after it.
    fn commit(
        &mut self,
        order: &WorkOrder,
        changes: Vec<(ChangeHash, Vec<u8>)>,
        pending: bool,
        chunks_before: usize,
    ) -> Result<usize, CoreError> {
        let summary = OrderSummary::of(order)?;
        let stored: Vec<StoredChange> =
            changes.into_iter().map(|(hash, bytes)| StoredChange { hash, bytes, pending }).collect();
        self.store.commit(order.id(), &stored, &summary)?;
        let chunks = chunks_before + stored.len();
        if chunks > COMPACT_AFTER_CHANGES {
            self.store.compact(order.id(), &order.save())?;
            // The snapshot, and the pending changes kept beside it (at most all of them).
            return Ok(1 + self.store.pending_count()?.min(chunks));
        }
        Ok(chunks)
    }

    pub fn list(&self, query: &OrderQuery) -> Result<Vec<OrderSummary>, CoreError> {
        self.store.list(query)
    }

    pub fn order_count(&self) -> Result<usize, CoreError> {
        self.store.order_count()
    }

    /// Local changes the server has not acknowledged yet, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<PendingChange>, CoreError> {
        self.store.pending(limit)
    }

    pub fn pending_count(&self) -> Result<usize, CoreError> {
        self.store.pending_count()
    }

    pub fn acknowledge(&mut self, hashes: &[ChangeHash]) -> Result<usize, CoreError> {
        self.store.acknowledge(hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::{Category, Channel, DeviceId, FixedClock, Grade, Kind, Role, UserId};

    fn leak() -> NewOrder {
        NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Serious,
            channel: Channel::Hotline,
            location: Location::unit("p", "1", "101"),
            description: "漏水".into(),
            reporter: UserId::new(),
            occurred_at_ms: None,
        }
    }

    #[test]
    fn an_adopted_order_is_edited_without_a_reload_and_stays_whole_in_the_store() {
        let desk = Identity::new(UserId::new(), Role::Dispatcher, DeviceId::new());
        let mut order = WorkOrder::create(&leak(), &desk, 0).expect("order");
        order.add_note(&desk, "业主下午在家", 1).expect("note");
        let saved = order.save();
        let id = order.id();
        let session = Identity::new(desk.user, Role::Dispatcher, DeviceId::new());
        let mut replica = Replica::new(MemoryStore::new(), session, FixedClock::at(10));
        replica.adopt(WorkOrder::load(&saved).expect("load"), saved).expect("adopt");
        assert_eq!(replica.pending_count().expect("pending"), 0, "adopting queues nothing");
        replica.add_note(id, "已派单").expect("edit");
        let pending = replica.pending(10).expect("pending");
        assert_eq!(pending.len(), 1, "only the new note is queued");
        // The store holds the whole order: loaded from it, it has both notes.
        replica.forget(&[id]);
        let reloaded = replica.order(id).expect("reload");
        assert_eq!(reloaded.notes().len(), 2);
        assert_eq!(replica.list(&OrderQuery::most_urgent(10)).expect("list").len(), 1);
    }

    #[test]
    fn a_list_the_server_would_refuse_as_too_long_is_refused_on_the_device() {
        let desk = Identity::new(UserId::new(), Role::Dispatcher, DeviceId::new());
        let mut order = WorkOrder::create(&leak(), &desk, 0).expect("order");
        for n in 0..crate::authority::MAX_LIST_ENTRIES {
            order.add_note(&desk, &format!("n{n}"), 1).expect("note");
        }
        let refused = order.add_note(&desk, "one too many", 2);
        assert!(matches!(refused, Err(CoreError::InvalidInput(_))), "{refused:?}");
        assert_eq!(order.notes().len(), crate::authority::MAX_LIST_ENTRIES);
        order.add_part(&desk, "阀门", 1, 3).expect("another list still has room");
    }
}
