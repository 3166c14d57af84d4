//! An order's timeline as its readers see it: every transition with its verdict, every note,
//! part, time entry and attachment, in one list ordered by the time each writer claimed.
//!
//! Derived from the document alone, so a phone offline shows the same history the server holds.
//! Times are device claims; the order among transitions is the fold's causal order, which the
//! stable sort keeps for entries that claim the same instant.

use crate::error::DocumentError;
use crate::ids::{DeviceId, UserId};
use crate::lifecycle::{Supersession, Verdict};
use crate::role::Role;
use crate::work_order::WorkOrder;

/// What an entry records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimelineEvent {
    /// A lifecycle action (its code, e.g. `accept`), whether it took effect, and the status after.
    Transition {
        action: &'static str,
        verdict: Verdict,
        status_after: &'static str,
        /// A completion's owner signature (业主签字确认): the signature attachment's SHA-256.
        signature: Option<String>,
    },
    Note,
    Part {
        name: String,
        quantity: i64,
    },
    Time {
        start_ms: i64,
        end_ms: i64,
    },
    Attachment {
        sha256: String,
        mime: String,
        kind: crate::work_order::AttachmentKind,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at_ms: i64,
    pub by: UserId,
    /// The role the writer acted in, where the document records it (transitions).
    pub role: Option<Role>,
    pub device: Option<DeviceId>,
    pub event: TimelineEvent,
    /// A note's text, a transition's reason or comment.
    pub text: Option<String>,
}

impl TimelineEntry {
    /// Why the entry did not take effect, for a superseded transition.
    pub fn superseded(&self) -> Option<Supersession> {
        match self.event {
            TimelineEvent::Transition { verdict: Verdict::Superseded(why), .. } => Some(why),
            _ => None,
        }
    }
}

/// The order's timeline, oldest first.
pub fn timeline(order: &WorkOrder) -> Result<Vec<TimelineEntry>, DocumentError> {
    let state = order.state()?;
    let mut out = Vec::new();
    for f in state.history {
        let t = f.transition;
        out.push(TimelineEntry {
            at_ms: t.at_ms,
            by: t.by,
            role: Some(t.role),
            device: Some(t.device),
            event: TimelineEvent::Transition {
                action: t.action.code(),
                verdict: f.verdict,
                status_after: f.status_after.code(),
                signature: t.signature,
            },
            text: t.text,
        });
    }
    for n in order.notes() {
        out.push(TimelineEntry {
            at_ms: n.at_ms,
            by: n.by,
            role: None,
            device: Some(n.device),
            event: TimelineEvent::Note,
            text: Some(n.text),
        });
    }
    for p in order.parts() {
        out.push(TimelineEntry {
            at_ms: p.at_ms,
            by: p.by,
            role: None,
            device: None,
            event: TimelineEvent::Part { name: p.name, quantity: p.quantity },
            text: None,
        });
    }
    for e in order.time_log() {
        out.push(TimelineEntry {
            at_ms: e.end_ms,
            by: e.by,
            role: None,
            device: Some(e.device),
            event: TimelineEvent::Time { start_ms: e.start_ms, end_ms: e.end_ms },
            text: None,
        });
    }
    for a in order.attachments() {
        out.push(TimelineEntry {
            at_ms: a.at_ms,
            by: a.by,
            role: None,
            device: None,
            event: TimelineEvent::Attachment { sha256: a.sha256, mime: a.mime, kind: a.kind },
            text: a.caption,
        });
    }
    out.sort_by_key(|e| e.at_ms);
    Ok(out)
}

/// An edit on an order that did not take effect, with the reason to show: an action the
/// lifecycle superseded when offline work merged, or a change the server compensated (`what` is
/// then the fields it touched, e.g. `grade`). The desk, the owner's page and the phones show the
/// same list ([`rejected_edits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedEdit {
    /// The action's code, or the fields the change touched, joined with ", ".
    pub what: String,
    pub by: UserId,
    pub role: Role,
    pub at_ms: i64,
    pub reason_code: String,
    pub message_zh: String,
    pub message_en: String,
}

/// An order's edits that did not take effect (see [`RejectedEdit`]), oldest first.
pub fn rejected_edits(order: &WorkOrder, state: &crate::OrderState) -> Vec<RejectedEdit> {
    let superseded = state.superseded().map(|(t, why)| RejectedEdit {
        what: t.action.code().to_owned(),
        by: t.by,
        role: t.role,
        at_ms: t.at_ms,
        reason_code: why.code().to_owned(),
        message_zh: why.message_zh().to_owned(),
        message_en: why.message_en().to_owned(),
    });
    let compensated = order.rejections().into_iter().map(|r| RejectedEdit {
        what: r.fields.join(", "),
        by: r.by,
        role: r.role,
        at_ms: r.at_ms,
        reason_code: r.reason.code().to_owned(),
        message_zh: r.reason.message_zh().to_owned(),
        message_en: r.reason.message_en().to_owned(),
    });
    let mut edits: Vec<RejectedEdit> = superseded.chain(compensated).collect();
    edits.sort_by_key(|e| e.at_ms);
    edits
}

/// One change of an order's history: the unit of the audit trail. Every change names the
/// hashes of the changes it was made on (`deps`), so the history is a hash-linked graph: altering
/// or removing any change changes every hash after it, which every replica would notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    pub hash: automerge::ChangeHash,
    pub deps: Vec<automerge::ChangeHash>,
    /// The device that made it (its actor id), if the actor is a device id.
    pub device: Option<DeviceId>,
    /// The device's clock when it made the change (a claim), in ms.
    pub device_time_ms: i64,
    /// What the change did, as its writer labelled it (`note`, `grade`, `accept`, ...).
    pub what: String,
    /// Why the server compensated it, if it did.
    pub rejected: Option<crate::authority::RejectReason>,
}

/// Every change of the order, in causal order, with the server's verdict on each.
pub fn change_log(order: &WorkOrder) -> Vec<ChangeRecord> {
    let rejected: std::collections::HashMap<automerge::ChangeHash, crate::authority::RejectReason> =
        order.rejections().into_iter().map(|r| (r.change, r.reason)).collect();
    order
        .automerge()
        .get_changes(&[])
        .into_iter()
        .map(|c| ChangeRecord {
            hash: c.hash(),
            deps: c.deps().to_vec(),
            device: DeviceId::from_actor(c.actor_id()),
            device_time_ms: c.timestamp().saturating_mul(1000),
            what: c.message().unwrap_or_default().to_owned(),
            rejected: rejected.get(&c.hash()).copied(),
        })
        .collect()
}

/// When an attachment was made, against the work: before the technician arrived, during the
/// work, or at or after its completion (the desk's and the owner's page's before/after photos).
/// Read from the order's status as the author's device saw it when attaching
/// ([`WorkOrder::attachments_seen`]), not from clocks, which differ between phones and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkPhase {
    Before,
    During,
    After,
}

impl WorkPhase {
    /// The phase of an attachment made on an order in `status` (`None`: unknown, taken as
    /// before the work).
    pub fn of(status: Option<crate::lifecycle::Status>) -> WorkPhase {
        use crate::lifecycle::Status::*;
        match status {
            Some(OnSite | InProgress | OnHold | Rework) => WorkPhase::During,
            Some(AwaitingConfirmation | Confirmed | AutoConfirmed | ReturnVisited | Closed) => WorkPhase::After,
            Some(New | Assigned | Accepted | Cancelled) | None => WorkPhase::Before,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            WorkPhase::Before => "before",
            WorkPhase::During => "during",
            WorkPhase::After => "after",
        }
    }
}

#[cfg(test)]
mod phase_tests {
    use super::WorkPhase;
    use crate::ids::{DeviceId, UserId};
    use crate::lifecycle::Action;
    use crate::role::Role;
    use crate::{Category, Channel, Grade, Identity, Kind, Location, NewOrder, WorkOrder};

    #[test]
    fn a_photo_s_phase_is_the_status_its_author_saw_whatever_the_clocks_say() {
        let desk = Identity::new(UserId::new(), Role::Dispatcher, DeviceId::new());
        let tech = Identity::new(UserId::new(), Role::Technician, DeviceId::new());
        let new = NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Minor,
            channel: Channel::Hotline,
            location: Location::unit("p1", "3", "1502"),
            description: "天花板渗水".into(),
            reporter: UserId::new(),
            occurred_at_ms: None,
        };
        let hash = |c: char| c.to_string().repeat(64);
        let mut order = WorkOrder::create(&new, &desk, 1_000).expect("order").with_device(desk.device);
        // The desk's clock is an hour ahead of the phone's: its photo, taken first, claims the
        // latest time.
        order.attach(&desk, &hash('a'), "image/png", 9_000_000).expect("desk photo");
        order.transition(&desk, Action::Assign(tech.user), None, 2_000).expect("assign");
        let mut phone = order.clone().with_device(tech.device);
        for (action, at) in [(Action::Accept, 3_000), (Action::Arrive, 4_000), (Action::Start, 5_000)] {
            phone.transition(&tech, action, None, at).expect("work");
        }
        phone.attach(&tech, &hash('b'), "image/jpeg", 6_000).expect("photo of the work");
        phone.transition(&tech, Action::Complete, None, 7_000).expect("complete");
        phone.attach(&tech, &hash('c'), "image/jpeg", 8_000).expect("photo of the result");
        let phases: Vec<(String, WorkPhase)> =
            phone.attachments_seen().into_iter().map(|(a, seen)| (a.sha256, WorkPhase::of(seen))).collect();
        assert_eq!(
            phases,
            vec![(hash('a'), WorkPhase::Before), (hash('b'), WorkPhase::During), (hash('c'), WorkPhase::After)]
        );
    }
}
