//! What a push means and what a device may see: the server's replication rules, as pure
//! functions over documents and rows. The database layer calls these inside its transactions;
//! the lifecycle and the document format come from sync-core, never re-implemented here.

use std::collections::BTreeSet;

use automerge::{Change, ChangeHash};
use loopwork_sync_core::authority::{self, Author, ClosingAuthority, Rejection};
use loopwork_sync_core::lifecycle::Transition;
use loopwork_sync_core::protocol::{RECEIPT_MAC_BYTES, Receipt};
use loopwork_sync_core::timeline::WorkPhase;
use loopwork_sync_core::{DeviceId, DocumentError, Identity, OrderId, OrderSummary, Role, UserId, WorkOrder};

use crate::error::ApiError;

/// Who is on the other end of a request: a registered, unrevoked device of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub role: Role,
    pub org: String,
    pub device: DeviceId,
    /// A dispatcher bound to some projects of the organization (`staff_projects`), who serves
    /// those only; `false` for everyone else, a dispatcher bound to none included.
    pub project_bound: bool,
}

impl Principal {
    pub fn identity(&self) -> Identity {
        Identity::new(self.user, self.role, self.device)
    }
}

/// Which orders of its organization a principal's devices receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Orders currently assigned to the technician.
    Assigned(UserId),
    /// Orders of the owner's units, and orders they reported.
    OwnUnits(UserId),
    /// Orders of the projects the dispatcher serves.
    Projects(UserId),
    /// Every order of the organization.
    Organization,
}

impl Scope {
    pub fn of(principal: &Principal) -> Scope {
        match principal.role {
            Role::Technician => Scope::Assigned(principal.user),
            Role::Owner => Scope::OwnUnits(principal.user),
            Role::Dispatcher if principal.project_bound => Scope::Projects(principal.user),
            _ => Scope::Organization,
        }
    }
}

/// A position in an organization's feed, tied to one database (`epoch`) and to the feed row at
/// that position (`check`), so that a cursor from another database, or from before a restore
/// whose feed has since grown past it again, is recognised as unknown. While a device's first
/// sync is under way, `snapshot_after` is the last order sent whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: String,
    pub seq: i64,
    pub check: String,
    pub snapshot_after: Option<OrderId>,
}

/// A short fingerprint of the feed row at a cursor's position.
pub fn feed_check(order: &str, kind: &str, hash: Option<&[u8]>, user: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [order.as_bytes(), kind.as_bytes(), hash.unwrap_or_default(), user.unwrap_or_default().as_bytes()] {
        h.update((part.len() as u32).to_le_bytes());
        h.update(part);
    }
    hex::encode(&h.finalize()[..6])
}

impl Cursor {
    pub fn encode(&self) -> String {
        match self.snapshot_after {
            Some(after) => format!("v1.{}.{}.{}.{}", self.epoch, self.seq, self.check, after.as_uuid().simple()),
            None => format!("v1.{}.{}.{}", self.epoch, self.seq, self.check),
        }
    }

    pub fn parse(s: &str) -> Result<Cursor, ApiError> {
        let malformed =
            || ApiError::invalid("malformed_cursor", "the sync cursor is malformed", "同步游标格式错误").binary();
        let mut parts = s.split('.');
        if parts.next() != Some("v1") {
            return Err(malformed());
        }
        let epoch = parts.next().filter(|e| !e.is_empty() && e.len() <= 64).ok_or_else(malformed)?.to_owned();
        let seq: i64 = parts.next().and_then(|n| n.parse().ok()).filter(|n| *n >= 0).ok_or_else(malformed)?;
        let check = parts
            .next()
            .filter(|c| c.len() <= 16 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(malformed)?
            .to_owned();
        let snapshot_after = match parts.next() {
            Some(id) => Some(OrderId::from_uuid(uuid::Uuid::parse_str(id).map_err(|_| malformed())?)),
            None => None,
        };
        if parts.next().is_some() {
            return Err(malformed());
        }
        Ok(Cursor { epoch, seq, check, snapshot_after })
    }
}

/// Parses a change relayed by a device during recovery (attribution is checked by the caller:
/// its actor must be a known device of the organization or a server actor).
pub fn parse_relayed(bytes: &[u8]) -> Result<Change, ApiError> {
    loopwork_sync_core::work_order::parse_change(bytes).map_err(|e| match e {
        DocumentError::NonCanonical(hash) => non_canonical(&hash),
        e => ApiError::invalid("invalid_change", format!("a relayed change does not parse: {e}"), "转交的修改无法解析")
            .binary(),
    })
}

/// Parses pushed change bytes and checks that each was made by the pushing device: a change
/// whose actor is another device's is refused, whoever sends it.
pub fn parse_pushed(principal: &Principal, bytes: &[u8]) -> Result<Change, ApiError> {
    let change = loopwork_sync_core::work_order::parse_change(bytes).map_err(|e| match e {
        DocumentError::NonCanonical(hash) => non_canonical(&hash),
        e => ApiError::invalid("invalid_change", format!("a pushed change does not parse: {e}"), "提交的修改无法解析")
            .binary(),
    })?;
    if change.actor_id() != &principal.device.actor() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "foreign_actor",
            "a pushed change was made by another device",
            "提交的修改不是本设备产生的",
        )
        .binary());
    }
    Ok(change)
}

/// The server's receipt for a change it stored (see [`Receipt`]): HMAC-SHA256 under the
/// database's secret, which a restore keeps, over the organization, the order and the change's
/// hash, cut to [`RECEIPT_MAC_BYTES`].
pub fn receipt(secret: &str, org: &str, order: OrderId, hash: &ChangeHash) -> Receipt {
    use hmac::Mac;
    let full = receipt_mac(secret, org, order, hash).finalize().into_bytes();
    let mut cut = [0u8; RECEIPT_MAC_BYTES];
    cut.copy_from_slice(&full[..RECEIPT_MAC_BYTES]);
    Receipt { order, hash: *hash, mac: cut }
}

fn receipt_mac(secret: &str, org: &str, order: OrderId, hash: &ChangeHash) -> hmac::Hmac<sha2::Sha256> {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"loopwork receipt v1\0");
    mac.update(&(org.len() as u32).to_le_bytes());
    mac.update(org.as_bytes());
    mac.update(order.as_uuid().as_bytes());
    mac.update(hash.as_ref());
    mac
}

/// Whether a receipt is the server's (compared in constant time).
fn genuine(secret: &str, org: &str, r: &Receipt) -> bool {
    use hmac::Mac;
    receipt_mac(secret, org, r.order, &r.hash).verify_truncated_left(&r.mac).is_ok()
}

/// Which relayed changes the server's receipts vouch for. A receipt names a change the server
/// once stored; a change's hash covers its dependencies, so a receipt vouches for every change
/// reached from it through the changes at hand (`relayed` and the device's own `pushed`, per
/// order). Returns the first relayed change nothing vouches for, if any: the request is then
/// refused, since only the server's receipt shows that another device (or the server) made it.
pub fn unvouched_relay<'a>(
    secret: &str,
    org: &str,
    receipts: &[Receipt],
    relayed: &'a [(OrderId, Change)],
    pushed: &[(OrderId, Change)],
) -> Option<&'a (OrderId, Change)> {
    use std::collections::{HashMap, HashSet};
    let mut at_hand: HashMap<(OrderId, ChangeHash), &Change> = HashMap::new();
    for (order, change) in relayed.iter().chain(pushed) {
        at_hand.insert((*order, change.hash()), change);
    }
    let mut vouched: HashSet<(OrderId, ChangeHash)> = HashSet::new();
    let mut walk: Vec<(OrderId, ChangeHash)> =
        receipts.iter().filter(|r| genuine(secret, org, r)).map(|r| (r.order, r.hash)).collect();
    while let Some(key) = walk.pop() {
        if !vouched.insert(key) {
            continue;
        }
        if let Some(change) = at_hand.get(&key) {
            walk.extend(change.deps().iter().map(|dep| (key.0, *dep)));
        }
    }
    relayed.iter().find(|(order, change)| !vouched.contains(&(*order, change.hash())))
}

/// The order's row as stored, for permission checks.
#[derive(Clone, Debug)]
pub struct StoredOrder {
    pub org: String,
    /// The order's newest feed position: a cached document is current only at the same one.
    pub last_seq: i64,
    pub assignee: Option<UserId>,
    pub reporter: String,
    pub project: String,
    pub building: Option<String>,
    pub unit: Option<String>,
}

/// What the principal's devices may write to an existing order: staff anything in their
/// organization, a dispatcher bound to projects those projects' orders (`serves_project`: the
/// order's project is one of theirs); a technician orders they have ever been given (a
/// reassigned technician's offline notes still count; the lifecycle fold decides what their
/// transitions mean); an owner orders they reported or of their units.
pub fn may_write(
    principal: &Principal,
    order: &StoredOrder,
    ever_given: bool,
    owns_unit: bool,
    serves_project: bool,
) -> bool {
    if order.org != principal.org {
        return false;
    }
    match principal.role {
        Role::Technician => ever_given,
        Role::Owner => order.reporter == principal.user.to_string() || owns_unit,
        Role::Dispatcher => !principal.project_bound || serves_project,
        Role::System => false,
        _ => true,
    }
}

/// What a new order pushed by a device must satisfy: a known project of the organization, one
/// the dispatcher serves if they are bound to projects, for an owner, reported by themselves
/// for one of their units, and for the server itself, a maintenance plan's.
pub fn may_create(
    principal: &Principal,
    order: &WorkOrder,
    project_known: bool,
    owns_unit: bool,
    serves_project: bool,
) -> Result<(), ApiError> {
    if !project_known || (principal.role == Role::Dispatcher && principal.project_bound && !serves_project) {
        return Err(ApiError::out_of_scope(order.id()).binary());
    }
    if principal.role == Role::Owner {
        let reporter_is_self = order.reporter().map(|r| r == principal.user).unwrap_or(false);
        if !reporter_is_self || !owns_unit {
            return Err(ApiError::out_of_scope(order.id()).binary());
        }
    }
    // The server registers only the orders of its maintenance plans (`crate::preventive`).
    if principal.role == Role::System && order.channel() != Ok(loopwork_sync_core::Channel::Plan) {
        return Err(ApiError::out_of_scope(order.id()).binary());
    }
    Ok(())
}

/// The result of merging a push into one order.
#[derive(Debug)]
pub struct Merged {
    pub order: WorkOrder,
    pub summary: OrderSummary,
    /// Changes the server did not have, in causal order (pushed ones, then the server's own).
    pub new_changes: Vec<(ChangeHash, Vec<u8>)>,
    pub assignee_before: Option<UserId>,
    /// Pushed changes the server judged invalid and compensated (see `sync_core::authority`).
    pub rejected: Vec<Rejection>,
    /// Transition entries the author's device added in this push: their claimed times are checked.
    pub new_transitions: Vec<Transition>,
    /// Whether the order is new or gained a transition. With the row's listed columns (kind,
    /// category, grade, location, ...), which the writer compares, this is all the deadline
    /// scanner reads: a push of notes, parts, time or photos changes neither.
    pub transitions_changed: bool,
    /// Whether the push changed the asset the order names, which the scanner reads too (an
    /// asset's repairs, docs/maintenance.md).
    pub asset_changed: bool,
    /// The blobs the order references, when this push changed them (an attachment added, or
    /// compensated): the writer rewrites the order's references (`attachment_refs`).
    pub references: Option<References>,
}

/// How a push changed the blobs an order references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Blobs the order references now and did not before, by hash, with the phase of the work
    /// each was attached at (`WorkPhase` code) and who attached it.
    pub added: Vec<(String, Attached)>,
    /// Blobs it referenced before the push and no longer does.
    pub released: Vec<String>,
}

impl References {
    /// The change between the blobs referenced before and after (`None`: no change); the
    /// phases of those added read from `order` (only then: it reads the document as each
    /// attachment's author saw it).
    pub fn between(before: &BTreeSet<String>, after: &BTreeSet<String>, order: &WorkOrder) -> Option<References> {
        (before != after).then(|| {
            let phases = phases(order);
            References {
                added: after
                    .difference(before)
                    .filter_map(|sha| Some((sha.clone(), phases.get(sha)?.clone())))
                    .collect(),
                released: before.difference(after).cloned().collect(),
            }
        })
    }
}

/// How a blob was first attached to an order: at which phase of the work, by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub phase: &'static str,
    pub by: UserId,
}

/// How each blob an order references was first attached.
pub fn phases(order: &WorkOrder) -> std::collections::HashMap<String, Attached> {
    let mut phases = std::collections::HashMap::new();
    for (attachment, seen) in order.attachments_seen() {
        phases.entry(attachment.sha256).or_insert(Attached { phase: WorkPhase::of(seen).code(), by: attachment.by });
    }
    phases
}

/// The blobs an order references, by hash.
pub fn referenced(order: &WorkOrder) -> BTreeSet<String> {
    order.attachments().into_iter().map(|a| a.sha256).collect()
}

/// Merges pushed changes into an order (or creates it from them), judges the changes the author's
/// device made and compensates the invalid ones. A newly created order gets its official number
/// in a change of the server's own.
///
/// `authors` are the pushing device's author first, then the true authors of changes relayed
/// in the push (each verified by the caller through the server's receipts): every change is
/// judged as its own author's. Every change here was parsed by `work_order::parse_change`
/// (which refuses non-canonical bytes) or made by the server itself, so the server stores, and
/// acknowledges, exactly the bytes whose hash the document's other changes depend on.
pub fn merge_push(
    existing: Option<(WorkOrder, Option<UserId>)>,
    id: OrderId,
    changes: &[Change],
    authors: &[Author],
    server: &Identity,
    number: Option<&str>,
    now_ms: i64,
) -> Result<Merged, ApiError> {
    let invalid = |e: loopwork_sync_core::CoreError| ApiError::from(e).binary();
    let author = authors.first().ok_or_else(ApiError::internal)?;
    let mut referenced_before = BTreeSet::new();
    let asset_before = existing.as_ref().and_then(|(order, _)| order.asset());
    let (mut order, before, assignee_before, known, prior) = match existing {
        Some((order, assignee)) => {
            referenced_before = referenced(&order);
            if let Some(root) = changes.iter().find(|c| {
                c.deps().is_empty() && automerge::ReadDoc::get_change_by_hash(order.automerge(), &c.hash()).is_none()
            }) {
                return Err(invalid_creation(&format!(
                    "order {id} exists: change {} has no dependencies, as only the creating change may",
                    root.hash()
                )));
            }
            let transitions = order.transitions();
            let known: std::collections::HashSet<String> = transitions.iter().map(|t| t.id.clone()).collect();
            let prior = authority::Prior::of(&order, transitions);
            let order = order.with_device(server.device);
            let before = order.heads();
            (order.with_changes_unvalidated(changes.to_vec()).map_err(invalid)?, before, assignee, known, prior)
        }
        None => {
            review_creation(changes, authors)?;
            let order = WorkOrder::from_parsed_changes(changes.to_vec())
                .map_err(|e| invalid(e.into()))?
                .with_device(server.device);
            (order, Vec::new(), None, Default::default(), None)
        }
    };
    if order.id() != id {
        return Err(ApiError::invalid(
            "wrong_order",
            format!("changes sent for {id} belong to another order"),
            "修改与工单不符",
        )
        .binary());
    }
    let mut rejected = Vec::new();
    // A relayed server actor (the creator of an order the server made) is not judged: its
    // changes were the server's own.
    let judged = authors.iter().enumerate().filter(|(n, a)| *n == 0 || a.identity.role != Role::System);
    for (_, author) in judged {
        rejected
            .extend(authority::review(&mut order, changes, author, server, prior.as_ref(), now_ms).map_err(invalid)?);
    }
    order.validate().map_err(|e| invalid(e.into()))?;
    if let Some(number) = number {
        order.set_official_number(number, now_ms)?;
    }
    let summary = OrderSummary::of(&order).map_err(|e| invalid(e.into()))?;
    let new_changes = order.changes_since(&before);
    let transitions = order.transitions();
    let transitions_changed = before.is_empty() || transitions.len() != known.len();
    let new_transitions =
        transitions.into_iter().filter(|t| t.device == author.identity.device && !known.contains(&t.id)).collect();
    let references = References::between(&referenced_before, &referenced(&order), &order);
    let asset_changed = order.asset() != asset_before;
    Ok(Merged {
        order,
        summary,
        new_changes,
        assignee_before,
        rejected,
        new_transitions,
        transitions_changed,
        asset_changed,
        references,
    })
}

/// Judges the change that creates a new order (see `sync_core::creation`): exactly one pushed
/// change has no dependencies, made by the pusher's device or a relayed author's, and it holds
/// what registering an order writes, under its author's identity; the push is refused otherwise.
fn review_creation(changes: &[Change], authors: &[Author]) -> Result<(), ApiError> {
    let mut roots = changes.iter().filter(|c| c.deps().is_empty());
    let (Some(creating), None) = (roots.next(), roots.next()) else {
        return Err(invalid_creation("a new order is created by exactly one change without dependencies"));
    };
    let author = authors
        .iter()
        .find(|a| &a.identity.device.actor() == creating.actor_id())
        .ok_or_else(|| invalid_creation("the creating change was made by no device of this push"))?;
    loopwork_sync_core::creation::review_creation(creating, &author.identity).map_err(|e| invalid_creation(&e.0))
}

/// The refusal of a creation (docs/document.md, 6.1).
pub fn invalid_creation(why: &str) -> ApiError {
    ApiError::invalid(
        "invalid_creation",
        format!("the order's creation is refused: {why}"),
        "工单创建内容不合规,不予接受",
    )
    .binary()
}

/// The refusal of a change whose bytes are not Automerge's own encoding of it.
pub fn non_canonical(hash: &dyn std::fmt::Display) -> ApiError {
    ApiError::invalid(
        "non_canonical_change",
        format!("change {hash} is not canonically encoded (Automerge encodes its content differently); send the bytes Automerge's encoder produces"),
        "修改的编码不规范,请使用 Automerge 自身的编码重新提交",
    )
    .binary()
}

/// Documents the server merged recently, kept loaded so that a busy order is not parsed again
/// for every push. Owned by the one writer of a process; an entry is used only while the
/// order's feed position is the one it was cached at (another server may have written since).
/// When full it lets go of the order cached first (emptying it instead made every busy order
/// miss at once, and the writer then loaded each one in turn).
///
/// It also keeps each organization's closing authority as the writer last read it, so that
/// request handlers judge pushes ahead without a query (the writer reads it again in its
/// transaction and redoes a premerge judged with another).
#[derive(Debug)]
pub struct DocumentCache {
    capacity: usize,
    /// Each order with the number of the put that cached it: its feed position, document and
    /// assignee.
    entries: std::collections::HashMap<OrderId, (u64, i64, WorkOrder, Option<UserId>)>,
    /// Each put, oldest first: the order and the put's number. Only an order's last put counts.
    arrivals: std::collections::VecDeque<(OrderId, u64)>,
    puts: u64,
    closing: std::collections::HashMap<String, ClosingAuthority>,
}

impl DocumentCache {
    pub fn new(capacity: usize) -> Self {
        DocumentCache {
            capacity,
            entries: Default::default(),
            arrivals: Default::default(),
            puts: 0,
            closing: Default::default(),
        }
    }

    /// The organization's closing authority as last read (the default if never read).
    pub fn closing(&self, org: &str) -> ClosingAuthority {
        self.closing.get(org).copied().unwrap_or_default()
    }

    pub fn set_closing(&mut self, org: &str, closing: ClosingAuthority) {
        self.closing.insert(org.to_owned(), closing);
    }

    /// Takes the order out of the cache if it is current at `last_seq`.
    pub fn take(&mut self, id: OrderId, last_seq: i64) -> Option<WorkOrder> {
        let (_, seq, order, _) = self.entries.remove(&id)?;
        (seq == last_seq).then_some(order)
    }

    /// Takes the cached order out, with the feed position and assignee it was cached at: what a
    /// request handler merges into ahead of the writer, which caches the merged order again once
    /// it commits. (Copying a document for each push cost more than loading it again on the rare
    /// push that then finds it out: a concurrent push to the same order, or a push refused.)
    pub fn lend(&mut self, id: OrderId) -> Option<(i64, WorkOrder, Option<UserId>)> {
        self.entries.remove(&id).map(|(_, seq, order, assignee)| (seq, order, assignee))
    }

    #[cfg(test)]
    fn holds(&self, id: OrderId) -> bool {
        self.entries.contains_key(&id)
    }

    /// Keeps an order as committed at `last_seq`, unless the cache holds it already (a push may
    /// have cached a later state).
    pub fn put_if_absent(&mut self, id: OrderId, last_seq: i64, order: WorkOrder, assignee: Option<UserId>) {
        if !self.entries.contains_key(&id) {
            self.put(id, last_seq, order, assignee);
        }
    }

    /// Keeps an order as committed at `last_seq`.
    pub fn put(&mut self, id: OrderId, last_seq: i64, order: WorkOrder, assignee: Option<UserId>) {
        self.puts += 1;
        self.entries.insert(id, (self.puts, last_seq, order, assignee));
        self.arrivals.push_back((id, self.puts));
        while self.entries.len() > self.capacity {
            let Some((oldest, put)) = self.arrivals.pop_front() else { break };
            if self.entries.get(&oldest).is_some_and(|e| e.0 == put) {
                self.entries.remove(&oldest);
            }
        }
        if self.arrivals.len() > 4 * self.capacity.max(1) {
            // Puts superseded by a later one, or of orders taken out since, no longer count.
            let entries = &self.entries;
            self.arrivals.retain(|(id, put)| entries.get(id).is_some_and(|e| e.0 == *put));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_document_cache_lets_go_of_the_order_cached_first() {
        let order = || {
            let reporter = UserId::new();
            let desk = Identity::new(UserId::new(), Role::Dispatcher, DeviceId::new());
            let new = loopwork_sync_core::NewOrder {
                kind: loopwork_sync_core::Kind::Repair,
                category: loopwork_sync_core::Category::WaterElectric,
                grade: loopwork_sync_core::Grade::Serious,
                channel: loopwork_sync_core::Channel::Hotline,
                location: loopwork_sync_core::Location::unit("p", "1", "101"),
                description: "漏水".into(),
                reporter,
                occurred_at_ms: None,
            };
            WorkOrder::create(&new, &desk, 0).expect("order")
        };
        let mut cache = DocumentCache::new(3);
        let ids: Vec<OrderId> = (0..4).map(|_| OrderId::new()).collect();
        for (seq, id) in ids.iter().take(3).enumerate() {
            cache.put(*id, seq as i64, order(), None);
        }
        // The first is taken by a push and cached again, so the second is now the oldest.
        let first = cache.take(ids[0], 0).expect("cached");
        cache.put(ids[0], 10, first, None);
        cache.put(ids[3], 11, order(), None);
        assert_eq!(cache.entries.len(), 3);
        assert!(!cache.holds(ids[1]), "the order cached longest ago went");
        for id in [ids[0], ids[2], ids[3]] {
            assert!(cache.holds(id));
        }
        // Many lends and puts of the same orders keep the bookkeeping bounded.
        for round in 0..100 {
            for id in [ids[0], ids[2], ids[3]] {
                let (_, order, _) = cache.lend(id).expect("cached");
                assert!(!cache.holds(id), "lent out until put back");
                cache.put(id, 100 + round, order, None);
            }
        }
        assert_eq!(cache.entries.len(), 3);
        assert!(cache.arrivals.len() <= 4 * 3 + 1, "{}", cache.arrivals.len());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor { epoch: "abc".into(), seq: 42, check: "0a1b2c".into(), snapshot_after: None };
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        let s = Cursor { epoch: "abc".into(), seq: 7, check: String::new(), snapshot_after: Some(OrderId::new()) };
        assert_eq!(Cursor::parse(&s.encode()).unwrap(), s);
        for bad in [
            "",
            "v2.abc.1.",
            "v1..1.",
            "v1.abc.-1.",
            "v1.abc.x.",
            "v1.abc.1",
            "v1.abc.1.zz",
            "v1.abc.1..nothex",
            "v1.abc.1..0193ab00000070008000000000000000.extra",
        ] {
            assert_eq!(Cursor::parse(bad).unwrap_err().code, "malformed_cursor", "{bad}");
        }
    }
}
