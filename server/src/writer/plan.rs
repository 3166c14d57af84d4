//! The write plan of one push to one order, decided without I/O: from the order's listed
//! columns as stored, what the merge made and the device's clock window, every row the storage
//! writes. The writer builds the plan; `store` only executes it.

use std::collections::HashMap;

use automerge::{Change, ChangeHash};
use loopwork_sync_core::{DeviceId, OrderSummary, TrustWindow, UserId};

#[cfg(test)]
use crate::replication::Attached;
use crate::replication::{Merged, References};
use crate::store::{ClampedClaim, StoredRow};

/// The columns of an order's row that a push may change besides its document and feed
/// position: when none changed and no transition came, the writer rewrites only those two and
/// the deadline scanner need not look at the order again.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    number: String,
    kind: String,
    category: String,
    grade: String,
    status: String,
    assignee: Option<String>,
    pub(crate) project: String,
    building: Option<String>,
    unit: Option<String>,
    area: Option<String>,
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

    pub(crate) fn of_summary(s: &OrderSummary) -> Listed {
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

/// How the order's row is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowWrite {
    /// Nothing the row lists changed, no transition came, no attachment was added or
    /// compensated, and the row was read ahead with the batch's others: the feed rows and the
    /// row's new position are left to the end of the batch, where every such push's are
    /// written together.
    Deferred,
    /// Nothing the row lists changed and no transition came (a note, parts, time, a photo): the
    /// feed rows extend the document's tail, or a new snapshot folds a tail grown too long; the
    /// deadline scanner's next check stays.
    Append,
    /// The row is rewritten whole from the merged summary, and the scanner looks at the order
    /// at its next tick.
    Upsert,
}

/// What the writer knows of a push to one order once it has merged it.
pub(crate) struct PushFacts<'a> {
    /// The order's listed columns as stored (`None`: a new order).
    pub listed_before: Option<&'a Listed>,
    /// Whether the order's row was read ahead with the batch's others.
    pub read_ahead: bool,
    /// Whether this is one of the server's own actions (which are never deferred).
    pub server_action: bool,
}

/// The order's project changed: the dispatchers bound to the one it left lose it, those of the
/// one it entered get it whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    pub from: String,
    pub to: String,
}

/// Every row one push to one order writes, besides the order's row itself ([`RowWrite`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WritePlan {
    /// The changes the server did not have, in causal order, each attributed to its device
    /// (the pusher's, a relayed change's true author's, or this server's for what the merge
    /// added).
    pub changes: Vec<(ChangeHash, Vec<u8>, DeviceId)>,
    /// Claimed times outside the device's trust window.
    pub clamped: Vec<ClampedClaim>,
    /// The assignee who lost the order (a `revoke` feed row, reason `reassigned`).
    pub revoked: Option<UserId>,
    /// The assignee who got it (a `grant` feed row and lasting access).
    pub granted: Option<UserId>,
    pub moved: Option<Moved>,
    /// The blobs the order references, when the push changed them.
    pub references: Option<References>,
}

/// How the order's row is written: decided first, because only a row written now needs the
/// device's clock window read (see [`needs_clock_window`]).
pub(crate) fn row_write(merged: &Merged, facts: &PushFacts<'_>) -> RowWrite {
    let listed_same = facts.listed_before == Some(&Listed::of_summary(&merged.summary));
    if merged.transitions_changed || merged.asset_changed || !listed_same {
        RowWrite::Upsert
    } else if facts.read_ahead
        && !facts.server_action
        && merged.new_transitions.is_empty()
        && merged.references.is_none()
    {
        RowWrite::Deferred
    } else {
        RowWrite::Append
    }
}

/// Whether the plan needs the device's clock window: it brings transitions whose claimed times
/// are checked, and is not deferred.
pub(crate) fn needs_clock_window(merged: &Merged, row: RowWrite) -> bool {
    row != RowWrite::Deferred && !merged.new_transitions.is_empty()
}

/// The plan of a merged push. `pushed` are the changes as the device sent them (their actors
/// attribute them), `window` the device's clock window when it was read (`None`: a device the
/// server has no record of, whose claims stand).
pub(crate) fn plan(
    merged: &mut Merged,
    pushed: &[Change],
    pusher: DeviceId,
    server: DeviceId,
    listed_before: Option<&Listed>,
    window: Option<TrustWindow>,
) -> WritePlan {
    let by_hash: HashMap<ChangeHash, DeviceId> =
        pushed.iter().map(|c| (c.hash(), DeviceId::from_actor(c.actor_id()).unwrap_or(server))).collect();
    let changes = std::mem::take(&mut merged.new_changes)
        .into_iter()
        .map(|(hash, bytes)| {
            let device = by_hash.get(&hash).copied().unwrap_or(server);
            (hash, bytes, device)
        })
        .collect();
    let clamped = window
        .map(|window| {
            merged
                .new_transitions
                .iter()
                .filter_map(|t| {
                    let accepted_at = window.accept(t.at_ms);
                    (accepted_at != t.at_ms).then(|| ClampedClaim {
                        entry: t.id.clone(),
                        device: pusher,
                        claimed_at: t.at_ms,
                        accepted_at,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let summary = &merged.summary;
    let reassigned = summary.assignee != merged.assignee_before;
    let moved = listed_before
        .filter(|before| before.project != summary.location.project)
        .map(|before| Moved { from: before.project.clone(), to: summary.location.project.clone() });
    WritePlan {
        changes,
        clamped,
        revoked: merged.assignee_before.filter(|_| reassigned),
        granted: summary.assignee.filter(|_| reassigned),
        moved,
        references: merged.references.take(),
    }
}

#[cfg(test)]
mod tests {
    use loopwork_sync_core::authority::{Author, ClosingAuthority};
    use loopwork_sync_core::work_order::parse_change;
    use loopwork_sync_core::{Action, Category, Channel, Grade, Identity, Kind, Location, NewOrder, Role, WorkOrder};

    use super::*;
    use crate::replication::merge_push;

    const T0: i64 = 1_780_000_000_000;

    fn person(role: Role) -> Identity {
        Identity::new(UserId::new(), role, DeviceId::new())
    }

    /// An order registered by a dispatcher in project `p1`, as the server stores it; the
    /// dispatcher; the server.
    fn registered() -> (WorkOrder, Identity, Identity) {
        let dispatcher = person(Role::Dispatcher);
        let server = person(Role::System);
        let new = NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Serious,
            channel: Channel::Hotline,
            location: Location::unit("p1", "3", "1502"),
            description: "厨房水管漏水".into(),
            reporter: UserId::new(),
            occurred_at_ms: None,
        };
        let order = WorkOrder::create(&new, &dispatcher, T0).expect("order");
        (order, dispatcher, server)
    }

    fn listed(order: &WorkOrder) -> Listed {
        Listed::of_summary(&OrderSummary::of(order).expect("summary"))
    }

    /// `actor` does `edit` on its replica of `order`; the server merges the changes.
    fn merged_push(
        order: &WorkOrder,
        actor: &Identity,
        server: &Identity,
        edit: impl FnOnce(&mut WorkOrder),
    ) -> (Merged, Vec<Change>) {
        let mut replica = order.clone().with_device(actor.device);
        let before = replica.heads();
        edit(&mut replica);
        let pushed: Vec<Change> =
            replica.changes_since(&before).iter().map(|(_, bytes)| parse_change(bytes).expect("change")).collect();
        let author = Author { identity: *actor, closing: ClosingAuthority::default() };
        let merged = merge_push(Some((order.clone(), None)), order.id(), &pushed, &[author], server, None, T0 + 60_000)
            .expect("merge");
        (merged, pushed)
    }

    #[test]
    fn a_photo_is_written_now_with_the_blobs_the_order_references() {
        let (order, dispatcher, server) = registered();
        let listed = listed(&order);
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let (mut merged, pushed) = merged_push(&order, &dispatcher, &server, |o| {
            o.attach(&dispatcher, &b, "image/jpeg", T0).expect("photo");
            o.attach(&dispatcher, &a, "image/jpeg", T0).expect("photo");
            o.attach(&dispatcher, &b, "image/jpeg", T0).expect("the same photo again");
        });
        let facts = PushFacts { listed_before: Some(&listed), read_ahead: true, server_action: false };
        // Read ahead, but its references are written now: not deferred.
        assert_eq!(row_write(&merged, &facts), RowWrite::Append);
        let written = plan(&mut merged, &pushed, dispatcher.device, server.device, Some(&listed), None);
        assert_eq!(
            written.references,
            Some(References {
                added: vec![
                    (a.clone(), Attached { phase: "before", by: dispatcher.user }),
                    (b.clone(), Attached { phase: "before", by: dispatcher.user })
                ],
                released: vec![]
            })
        );
        // A note changes no reference.
        let (mut noted, pushed) = merged_push(&merged.order, &dispatcher, &server, |o| {
            o.add_note(&dispatcher, "照片已拍", T0).expect("note");
        });
        assert_eq!(noted.references, None);
        let plan = plan(&mut noted, &pushed, dispatcher.device, server.device, Some(&listed), None);
        assert_eq!(plan.references, None);
    }

    #[test]
    fn a_note_read_ahead_is_deferred_and_attributed_to_its_device() {
        let (order, dispatcher, server) = registered();
        let listed = listed(&order);
        let (mut merged, pushed) = merged_push(&order, &dispatcher, &server, |o| {
            o.add_note(&dispatcher, "业主下午在家", T0).expect("note");
        });
        let facts = PushFacts { listed_before: Some(&listed), read_ahead: true, server_action: false };
        assert_eq!(row_write(&merged, &facts), RowWrite::Deferred);
        assert!(!needs_clock_window(&merged, RowWrite::Deferred));
        // Not read ahead, or the server's own action: appended now.
        assert_eq!(row_write(&merged, &PushFacts { read_ahead: false, ..facts }), RowWrite::Append);
        assert_eq!(row_write(&merged, &PushFacts { server_action: true, ..facts }), RowWrite::Append);
        let plan = plan(&mut merged, &pushed, dispatcher.device, server.device, Some(&listed), None);
        assert_eq!(plan.changes.len(), pushed.len());
        assert!(plan.changes.iter().all(|(_, _, device)| *device == dispatcher.device));
        assert_eq!((plan.revoked, plan.granted, plan.moved, plan.clamped.len()), (None, None, None, 0));
    }

    #[test]
    fn an_assignment_rewrites_the_row_grants_the_technician_and_clamps_a_claim_outside_the_window() {
        let (order, dispatcher, server) = registered();
        let listed = listed(&order);
        let technician = UserId::new();
        // The dispatcher's device claims a time an hour before its last sync.
        let claimed = T0 - 3_600_000;
        let assign = |o: &mut WorkOrder| {
            o.transition(&dispatcher, Action::Assign(technician), None, claimed).expect("assign");
        };
        let (mut merged, pushed) = merged_push(&order, &dispatcher, &server, assign);
        let facts = PushFacts { listed_before: Some(&listed), read_ahead: true, server_action: false };
        let row = row_write(&merged, &facts);
        assert_eq!(row, RowWrite::Upsert);
        assert!(needs_clock_window(&merged, row));
        let window = TrustWindow::new(T0, T0 + 60_000);
        let planned = plan(&mut merged, &pushed, dispatcher.device, server.device, Some(&listed), Some(window));
        assert_eq!((planned.revoked, planned.granted), (None, Some(technician)));
        assert_eq!(planned.clamped.len(), 1);
        let claim = &planned.clamped[0];
        assert_eq!((claim.claimed_at, claim.accepted_at, claim.device), (claimed, T0, dispatcher.device));
        // Without a window (the server has no record of the device), the claim stands.
        let (mut again, pushed) = merged_push(&order, &dispatcher, &server, assign);
        let unclamped = plan(&mut again, &pushed, dispatcher.device, server.device, Some(&listed), None);
        assert!(unclamped.clamped.is_empty());
    }

    #[test]
    fn a_move_to_another_project_is_planned_from_the_stored_project() {
        let (order, dispatcher, server) = registered();
        let mut stored = listed(&order);
        stored.project = "p0".into();
        let (mut merged, pushed) = merged_push(&order, &dispatcher, &server, |o| {
            o.add_note(&dispatcher, "转交", T0).expect("note");
        });
        let facts = PushFacts { listed_before: Some(&stored), read_ahead: true, server_action: false };
        assert_eq!(row_write(&merged, &facts), RowWrite::Upsert);
        let planned = plan(&mut merged, &pushed, dispatcher.device, server.device, Some(&stored), None);
        assert_eq!(planned.moved, Some(Moved { from: "p0".into(), to: "p1".into() }));
    }
}
