//! The server's authority over offline edits, told as stories: each dishonest or invalid edit is
//! kept in the history, compensated by one change of the server's and recorded; every honest
//! edit survives.

use automerge::Change;
use loopwork_sync_core::authority::{self, RejectReason, Rejection};
use loopwork_sync_core::lifecycle::Supersession;
use loopwork_sync_core::work_order::parse_change;
use loopwork_sync_core::{
    Action, Category, Channel, Grade, Identity, IncidentRef, Kind, Location, NewOrder, Role, Status, WorkOrder,
};

const T0: i64 = 1_790_000_000_000;
const HOUR: i64 = 3_600_000;

struct Cast {
    server: Identity,
    desk: Identity,
    wang: Identity,
    li: Identity,
    owner: Identity,
}

fn cast() -> Cast {
    Cast {
        server: Identity::fresh(Role::System),
        desk: Identity::fresh(Role::Dispatcher),
        wang: Identity::fresh(Role::Technician),
        li: Identity::fresh(Role::Technician),
        owner: Identity::fresh(Role::Owner),
    }
}

/// An order registered by the desk for the owner and assigned to Wang, as the server holds it.
fn assigned_order(c: &Cast) -> WorkOrder {
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Minor,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "厨房水管漏水".into(),
        reporter: c.owner.user,
        occurred_at_ms: None,
    };
    let mut order = WorkOrder::create(&new, &c.desk, T0).unwrap();
    order.transition(&c.desk, Action::Assign(c.wang.user), None, T0).unwrap();
    order
}

fn copy_for(order: &WorkOrder, who: &Identity) -> WorkOrder {
    WorkOrder::load(&order.save()).unwrap().with_device(who.device)
}

/// A device pushes what the server lacks; the server merges, judges and compensates.
fn push(server: &mut WorkOrder, device: &WorkOrder, author: &Identity, srv: &Identity) -> Vec<Rejection> {
    let changes: Vec<Change> =
        device.changes_since(&server.heads()).into_iter().map(|(_, bytes)| parse_change(&bytes).unwrap()).collect();
    // Judged twice: against the order as it stood (the server's fast path) and against the
    // document rebuilt at each change's dependencies; both must come to the same.
    let prior = authority::Prior::of(server, server.transitions());
    assert!(prior.is_some(), "the order before the push reads");
    let mut merged = server.clone().with_changes_unvalidated(changes.clone()).unwrap();
    let rejected =
        authority::review(&mut merged, &changes, &author_of(author), srv, prior.as_ref(), T0 + 5 * HOUR).unwrap();
    let mut rebuilt = server.clone().with_changes_unvalidated(changes.clone()).unwrap();
    let rejected_rebuilt =
        authority::review(&mut rebuilt, &changes, &author_of(author), srv, None, T0 + 5 * HOUR).unwrap();
    assert_eq!(rejected, rejected_rebuilt, "the same verdicts with and without the prior");
    assert_eq!(merged.heads(), rebuilt.heads(), "the same compensation with and without the prior");
    merged.validate().unwrap();
    *server = merged;
    rejected
}

/// The device receives everything the server has.
fn pull(device: &mut WorkOrder, server: &WorkOrder) {
    device.merge(&mut server.clone()).unwrap();
}

#[test]
fn a_technician_edits_the_grade_offline() {
    let c = cast();
    let mut server = assigned_order(&c);
    let mut wang = copy_for(&server, &c.wang);
    wang.transition(&c.wang, Action::Accept, None, T0 + HOUR).unwrap();
    // A modified app writes the grade; the note in the same batch is honest.
    wang.set_grade(Grade::Critical, T0 + HOUR).unwrap();
    wang.add_note(&c.wang, "现场查看,漏水较严重", T0 + HOUR).unwrap();

    let rejected = push(&mut server, &wang, &c.wang, &c.server);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].reason, RejectReason::Refused(Supersession::RoleNotPermitted));
    assert_eq!(rejected[0].fields, vec!["grade".to_owned()]);
    assert_eq!(server.grade().unwrap(), Grade::Minor, "the grade is restored");
    assert_eq!(server.notes().len(), 1, "the honest note is kept");
    assert_eq!(server.state().unwrap().status, Status::Accepted);

    pull(&mut wang, &server);
    assert_eq!(wang.grade().unwrap(), Grade::Minor);
    let seen = wang.rejections();
    assert_eq!(seen.len(), 1, "the device learns why");
    assert_eq!(seen[0].by, c.wang.user);
    assert_eq!(seen[0].reason.code(), "role_not_permitted");
    // What every screen lists: the compensated grade, by Wang, with the reason in both languages.
    let edits = loopwork_sync_core::timeline::rejected_edits(&wang, &wang.state().unwrap());
    assert_eq!(edits.len(), 1);
    assert_eq!((edits[0].what.as_str(), edits[0].by, edits[0].role), ("grade", c.wang.user, Role::Technician));
    assert_eq!(edits[0].reason_code, "role_not_permitted");
    assert!(!edits[0].message_zh.is_empty() && !edits[0].message_en.is_empty());
    // Pushing again (a replayed request) records nothing twice.
    assert!(push(&mut server, &wang, &c.wang, &c.server).is_empty());
    assert_eq!(server.rejections().len(), 1);
}

#[test]
fn an_owner_marks_their_own_order_completed() {
    let c = cast();
    let mut server = assigned_order(&c);
    let mut owner = copy_for(&server, &c.owner);
    owner.append_transition_unchecked(&c.owner, Action::Complete, Some("我自己修好了"), T0 + HOUR).unwrap();
    // Honestly attributed: the fold, not a compensation, decides that it does not take effect.
    assert!(push(&mut server, &owner, &c.owner, &c.server).is_empty());
    let state = server.state().unwrap();
    assert_eq!(state.status, Status::Assigned);
    let superseded: Vec<_> = state.superseded().map(|(t, why)| (t.by, why)).collect();
    assert_eq!(superseded, vec![(c.owner.user, Supersession::RoleNotPermitted)]);

    // Claiming to be the technician is another matter: the entry is removed and recorded.
    let mut forged = copy_for(&server, &c.owner);
    let claim = Identity { role: Role::Technician, ..c.owner };
    forged.append_transition_unchecked(&claim, Action::Complete, None, T0 + 2 * HOUR).unwrap();
    let rejected = push(&mut server, &forged, &c.owner, &c.server);
    assert_eq!(rejected[0].reason, RejectReason::Misattributed);
    assert_eq!(server.transitions().len(), 2, "the forged entry is gone from the list");
    assert_eq!(server.state().unwrap().status, Status::Assigned);
}

#[test]
fn a_reassigned_technician_completes_offline() {
    let c = cast();
    let mut server = assigned_order(&c);
    let mut wang = copy_for(&server, &c.wang);
    wang.transition(&c.wang, Action::Accept, None, T0 + HOUR).unwrap();
    assert!(push(&mut server, &wang, &c.wang, &c.server).is_empty());
    pull(&mut wang, &server);
    // Offline: Wang works on; meanwhile the desk gives the order to Li.
    wang.transition(&c.wang, Action::Arrive, None, T0 + 2 * HOUR).unwrap();
    wang.transition(&c.wang, Action::Start, None, T0 + 2 * HOUR).unwrap();
    wang.add_part(&c.wang, "角阀", 1, T0 + 2 * HOUR).unwrap();
    wang.log_time(&c.wang, T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 3 * HOUR).unwrap();
    wang.transition(&c.wang, Action::Complete, None, T0 + 3 * HOUR).unwrap();
    let mut desk = copy_for(&server, &c.desk);
    desk.transition(&c.desk, Action::Assign(c.li.user), None, T0 + 2 * HOUR).unwrap();
    assert!(push(&mut server, &desk, &c.desk, &c.server).is_empty());

    // Everything Wang did was allowed as Wang saw the order: nothing is compensated; the fold
    // supersedes his transitions, and his part and time stay on record.
    assert!(push(&mut server, &wang, &c.wang, &c.server).is_empty());
    let state = server.state().unwrap();
    assert_eq!(state.assignee, Some(c.li.user));
    assert!(state.superseded().any(|(t, why)| t.by == c.wang.user && why == Supersession::Reassigned));
    assert_eq!(server.parts().len(), 1);
    assert_eq!(server.time_log().len(), 1);

    // After he has seen the reassignment, a new part is refused and compensated.
    pull(&mut wang, &server);
    wang.add_part(&c.wang, "生料带", 1, T0 + 4 * HOUR).unwrap();
    let rejected = push(&mut server, &wang, &c.wang, &c.server);
    assert_eq!(rejected[0].reason, RejectReason::Refused(Supersession::Reassigned));
    assert_eq!(server.parts().len(), 1);
}

#[test]
fn server_fields_immutable_fields_and_history_are_protected() {
    let c = cast();
    let mut server = assigned_order(&c);
    server.set_official_number("WO-20260101-0001", T0).unwrap();
    let mut desk = copy_for(&server, &c.desk);
    desk.add_note(&c.desk, "已电话联系业主", T0 + HOUR).unwrap();
    assert!(push(&mut server, &desk, &c.desk, &c.server).is_empty());

    let mut owner = copy_for(&server, &c.owner);
    owner.set_official_number("WO-FAKE", T0 + HOUR).unwrap();
    owner
        .raw_change(T0 + HOUR, "reporter", |tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "reporter", c.li.user.to_string())
        })
        .unwrap();
    owner
        .raw_change(T0 + HOUR, "delete note", |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let (_, notes) = tx.get(automerge::ROOT, "notes")?.unwrap();
            tx.delete(&notes, 0)
        })
        .unwrap();
    owner
        .raw_change(T0 + HOUR, "unknown field", |tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "vip", true)
        })
        .unwrap();
    let rejected = push(&mut server, &owner, &c.owner, &c.server);
    let reasons: Vec<RejectReason> = rejected.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        vec![RejectReason::ServerOnly, RejectReason::Immutable, RejectReason::AppendOnly, RejectReason::InvalidShape]
    );
    assert_eq!(server.official_number().as_deref(), Some("WO-20260101-0001"));
    assert_eq!(server.reporter().unwrap(), c.owner.user);
    assert_eq!(server.notes().len(), 1, "the deleted note is back");
    assert_eq!(server.notes()[0].text, "已电话联系业主");
    assert!(automerge::ReadDoc::keys(server.automerge(), automerge::ROOT).all(|k| k != "vip"));
    assert_eq!(server.rejections().len(), 4);
}

#[test]
fn only_a_server_puts_an_order_in_an_incident() {
    let c = cast();
    let mut server = assigned_order(&c);
    let incident = IncidentRef { number: 3, place: "5栋 2单元01立管".into(), category: "water_electric".into() };
    // A server process's own change (its in-process edits go through the review) stands.
    let mut by_server = copy_for(&server, &c.server);
    by_server.set_incident(&incident, T0 + HOUR).unwrap();
    assert!(push(&mut server, &by_server, &c.server, &c.server).is_empty());
    assert_eq!(server.incident(), Some(incident.clone()));

    // A technician's app that moves the order to another incident is compensated, and so is a
    // desk's; the server's value comes back.
    for who in [&c.wang, &c.desk] {
        let mut device = copy_for(&server, who);
        device.set_incident(&IncidentRef { number: 99, ..incident.clone() }, T0 + 2 * HOUR).unwrap();
        let rejected = push(&mut server, &device, who, &c.server);
        assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), [RejectReason::ServerOnly]);
        assert_eq!(server.incident(), Some(incident.clone()));
    }

    // A write inside the server's record, not replacing it, is undone too: the number moved,
    // or a field added.
    let mut inside = copy_for(&server, &c.owner);
    inside
        .raw_change(T0 + 2 * HOUR, "inside the incident", |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let (_, obj) = tx.get(automerge::ROOT, "incident")?.unwrap();
            tx.put(&obj, "number", 99_i64)?;
            tx.put(&obj, "vip", true)
        })
        .unwrap();
    let rejected = push(&mut server, &inside, &c.owner, &c.server);
    assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), [RejectReason::ServerOnly]);
    assert_eq!(server.incident(), Some(incident.clone()));
    let obj = automerge::ReadDoc::get(server.automerge(), automerge::ROOT, "incident").unwrap().unwrap().1;
    assert!(automerge::ReadDoc::keys(server.automerge(), &obj).all(|k| k != "vip"));

    // The server's rejection records likewise: a device that deletes the record of its
    // rejected change, or edits a field in it, is undone.
    let records = server.rejections().len();
    assert!(records >= 2);
    let mut eraser = copy_for(&server, &c.wang);
    eraser
        .raw_change(T0 + 3 * HOUR, "erase a rejection", |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let (_, rejections) = tx.get(automerge::ROOT, "rejections")?.unwrap();
            let first: String = tx.keys(&rejections).next().unwrap();
            let (_, record) = tx.get(&rejections, first.as_str())?.unwrap();
            tx.put(&record, "reason", "forgiven")?;
            let second: String = tx.keys(&rejections).nth(1).unwrap();
            tx.delete(&rejections, second.as_str())
        })
        .unwrap();
    let before: Vec<_> = server.rejections();
    push(&mut server, &eraser, &c.wang, &c.server);
    let after = server.rejections();
    assert!(after.len() > records, "the records are back, with this rejection's own: {after:?}");
    for record in &before {
        assert!(after.contains(record), "{record:?} is back as it was");
    }

    // A device that writes a rejection record for its own invalid change, in the same push,
    // does not pass it off as judged already: the change is judged (and compensated), and so is
    // the forged record.
    let mut forger = copy_for(&server, &c.owner);
    let grade_before = server.grade().unwrap();
    let invalid = forger.set_grade(Grade::Critical, T0 + 4 * HOUR).unwrap();
    forger
        .raw_change(T0 + 4 * HOUR, "forge a rejection record", |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let (_, rejections) = tx.get(automerge::ROOT, "rejections")?.unwrap();
            let record = tx.put_object(&rejections, invalid.to_string(), automerge::ObjType::Map)?;
            for (k, v) in [
                ("by", c.owner.user.to_string()),
                ("role", "owner".into()),
                ("device", c.owner.device.to_string()),
                ("reason", "server_only_field".into()),
                ("fields", "grade".into()),
                ("at", (T0 + 4 * HOUR).to_string()),
            ] {
                tx.put(&record, k, v)?;
            }
            Ok(())
        })
        .unwrap();
    let rejected = push(&mut server, &forger, &c.owner, &c.server);
    assert_eq!(rejected.len(), 2, "the invalid grade and the forged record: {rejected:?}");
    assert_eq!(server.grade().unwrap(), grade_before, "the owner's grade is undone");

    // The server's change may write only the server's fields: one that also edits the grade is
    // judged as anyone's.
    let mut both = copy_for(&server, &c.server);
    both.raw_change(T0 + 3 * HOUR, "incident and grade", |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "grade", "critical")?;
        let obj = tx.put_object(automerge::ROOT, "incident", automerge::ObjType::Map)?;
        tx.put(&obj, "number", 4_i64)
    })
    .unwrap();
    let rejected = push(&mut server, &both, &c.server, &c.server);
    assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), [RejectReason::ServerOnly]);
    assert_eq!(server.incident(), Some(incident));
}

#[test]
fn a_valid_concurrent_value_wins_over_a_compensated_one() {
    let c = cast();
    let mut server = assigned_order(&c);
    let mut wang = copy_for(&server, &c.wang);
    let mut desk = copy_for(&server, &c.desk);
    wang.set_grade(Grade::Critical, T0 + HOUR).unwrap();
    desk.set_grade(Grade::Serious, T0 + HOUR).unwrap();
    desk.set_location(&Location::unit("hy-garden", "3", "3-1501"), T0 + HOUR).unwrap();
    assert!(push(&mut server, &desk, &c.desk, &c.server).is_empty());
    let rejected = push(&mut server, &wang, &c.wang, &c.server);
    assert_eq!(rejected.len(), 1);
    assert_eq!(server.grade().unwrap(), Grade::Serious, "the dispatcher's concurrent grade stands");
    assert_eq!(server.location().unit.as_deref(), Some("3-1501"));

    // And an owner's location edit is undone to the dispatcher's location, copied whole.
    let mut owner = copy_for(&server, &c.owner);
    owner.set_location(&Location::common_area("hy-garden", "会所"), T0 + 2 * HOUR).unwrap();
    let rejected = push(&mut server, &owner, &c.owner, &c.server);
    assert_eq!(rejected[0].reason, RejectReason::Refused(Supersession::RoleNotPermitted));
    assert_eq!(server.location(), Location::unit("hy-garden", "3", "3-1501"));
}

fn author_of(identity: &Identity) -> authority::Author {
    authority::Author { identity: *identity, closing: authority::ClosingAuthority::default() }
}

#[test]
fn the_appointment_is_a_window_kept_by_its_rules() {
    use loopwork_sync_core::Appointment;
    let c = cast();
    let mut server = assigned_order(&c);
    let window = Appointment::new(T0 + 20 * HOUR, T0 + 23 * HOUR).unwrap();
    // The owner, before acceptance, gives the window; Wang, assigned, moves it (改约).
    let mut owner = copy_for(&server, &c.owner);
    owner.set_appointment(Some(window), T0 + HOUR).unwrap();
    assert!(push(&mut server, &owner, &c.owner, &c.server).is_empty());
    assert_eq!(server.appointment(), Some(window));
    let moved = Appointment::new(T0 + 44 * HOUR, T0 + 47 * HOUR).unwrap();
    let mut wang = copy_for(&server, &c.wang);
    wang.set_appointment(Some(moved), T0 + 2 * HOUR).unwrap();
    assert!(push(&mut server, &wang, &c.wang, &c.server).is_empty());
    assert_eq!(server.appointment(), Some(moved));
    // Li is not assigned: his window is undone.
    let mut li = copy_for(&server, &c.li);
    li.set_appointment(None, T0 + 3 * HOUR).unwrap();
    let rejected = push(&mut server, &li, &c.li, &c.server);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(server.appointment(), Some(moved), "the removal is undone");
    // A window that ends before it starts, or carries more than its two ends, is undone whole.
    let mut desk = copy_for(&server, &c.desk);
    desk.raw_change(T0 + 4 * HOUR, "appointment", |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let (_, obj) = tx.get(automerge::ROOT, "appointment")?.unwrap();
        tx.put(&obj, "to", T0)
    })
    .unwrap();
    desk.raw_change(T0 + 4 * HOUR, "appointment", |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let (_, obj) = tx.get(automerge::ROOT, "appointment")?.unwrap();
        tx.put(&obj, "phone", "13800138000")
    })
    .unwrap();
    let rejected = push(&mut server, &desk, &c.desk, &c.server);
    let reasons: Vec<RejectReason> = rejected.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, vec![RejectReason::InvalidShape, RejectReason::InvalidShape]);
    assert_eq!(server.appointment(), Some(moved));
    // The desk clears it: honest, kept.
    let mut desk = copy_for(&server, &c.desk);
    desk.set_appointment(None, T0 + 5 * HOUR).unwrap();
    assert!(push(&mut server, &desk, &c.desk, &c.server).is_empty());
    assert_eq!(server.appointment(), None);
    // Windows out of bounds are refused before they are written.
    assert!(Appointment::new(T0, T0).is_err());
    assert!(Appointment::new(T0, T0 + 8 * 24 * HOUR).is_err());
    assert!(Appointment::new(0, HOUR).is_err());
}

#[test]
fn the_asset_an_order_names_is_kept_by_its_rules() {
    let c = cast();
    let mut server = assigned_order(&c);
    let pump = "0191e0a1b2c3d4e5f60718293a4b5c6d";
    // The desk names the pump; the owner may not; Li, not assigned, may not.
    let mut desk = copy_for(&server, &c.desk);
    desk.set_asset(Some(pump), T0 + HOUR).unwrap();
    assert!(push(&mut server, &desk, &c.desk, &c.server).is_empty());
    assert_eq!(server.asset().as_deref(), Some(pump));
    for who in [&c.owner, &c.li] {
        let mut device = copy_for(&server, who);
        device.set_asset(None, T0 + 2 * HOUR).unwrap();
        let rejected = push(&mut server, &device, who, &c.server);
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert_eq!(server.asset().as_deref(), Some(pump), "the removal is undone");
    }
    // Wang, assigned, on the job, scans another: kept.
    server.transition(&c.wang, Action::Accept, None, T0 + 3 * HOUR).unwrap();
    let mut wang = copy_for(&server, &c.wang);
    wang.set_asset(Some("pump-2"), T0 + 4 * HOUR).unwrap();
    assert!(push(&mut server, &wang, &c.wang, &c.server).is_empty());
    assert_eq!(server.asset().as_deref(), Some("pump-2"));
    // Not an id (too long, a URL, a map) is undone whole, and refused before it is written.
    let mut desk = copy_for(&server, &c.desk);
    for bad in ["x".repeat(65), "loopwork://asset/pump-2".to_owned()] {
        assert!(desk.set_asset(Some(&bad), T0 + 5 * HOUR).is_err());
        desk.raw_change(T0 + 5 * HOUR, "asset", |tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "asset", bad.as_str())
        })
        .unwrap();
    }
    desk.raw_change(T0 + 5 * HOUR, "asset", |tx| {
        use automerge::transaction::Transactable;
        tx.put_object(automerge::ROOT, "asset", automerge::ObjType::Map).map(drop)
    })
    .unwrap();
    let rejected = push(&mut server, &desk, &c.desk, &c.server);
    let reasons: Vec<RejectReason> = rejected.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, vec![RejectReason::InvalidShape; 3]);
    assert_eq!(server.asset().as_deref(), Some("pump-2"));
}

#[test]
fn a_removed_field_or_a_field_written_inside_the_location_comes_back() {
    let c = cast();
    let mut server = assigned_order(&c);
    let mut desk = copy_for(&server, &c.desk);
    desk.raw_change(T0 + HOUR, "drop description", |tx| {
        use automerge::transaction::Transactable;
        tx.delete(automerge::ROOT, "description")
    })
    .unwrap();
    desk.raw_change(T0 + HOUR, "building inside the location", |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let (_, location) = tx.get(automerge::ROOT, "location")?.unwrap();
        tx.put(&location, "building", "楼".repeat(500))
    })
    .unwrap();
    let rejected = push(&mut server, &desk, &c.desk, &c.server);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(server.description(), "厨房水管漏水", "the description is back");
    assert_eq!(server.location(), Location::unit("hy-garden", "3", "3-1502"), "the building is back");
    // The owner's device, told of the compensation, reads the same.
    let mut owner = copy_for(&server, &c.owner);
    pull(&mut owner, &server);
    assert_eq!(owner.description(), "厨房水管漏水");
}

#[test]
fn a_harmless_change_made_after_a_removal_does_not_keep_it() {
    let c = cast();
    let mut server = assigned_order(&c);
    let mut desk = copy_for(&server, &c.desk);
    desk.raw_change(T0 + HOUR, "drop description", |tx| {
        use automerge::transaction::Transactable;
        tx.delete(automerge::ROOT, "description")
    })
    .unwrap();
    // A note the desk may write, built on the removal: accepted, and the removal still undone.
    desk.add_note(&c.desk, "已电话联系业主", T0 + HOUR).unwrap();
    let rejected = push(&mut server, &desk, &c.desk, &c.server);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(server.description(), "厨房水管漏水");
    assert_eq!(server.notes().len(), 1, "the honest note stands");
    // The same for a location part removed, then a note.
    let mut desk = copy_for(&server, &c.desk);
    desk.raw_change(T0 + 2 * HOUR, "drop unit", |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let (_, location) = tx.get(automerge::ROOT, "location")?.unwrap();
        tx.put(&location, "unit", 7_i64)
    })
    .unwrap();
    desk.add_note(&c.desk, "补记", T0 + 2 * HOUR).unwrap();
    let rejected = push(&mut server, &desk, &c.desk, &c.server);
    assert_eq!(rejected.len(), 1, "a unit that is not text is refused: {rejected:?}");
    assert_eq!(server.location(), Location::unit("hy-garden", "3", "3-1502"));
}

/// Where the organization requires the owner's signature, Wang's phone refuses to complete
/// without one; signed, the completion and its signature arrive in one change and the timeline
/// names the signature.
#[test]
fn a_required_signature_completes_the_order_and_an_unsigned_completion_does_not() {
    use loopwork_sync_core::timeline::{TimelineEvent, timeline};
    use loopwork_sync_core::{AttachmentKind, NewAttachment};
    let c = cast();
    let mut server = assigned_order(&c).with_device(c.server.device);
    server.set_signature_required(true, T0 + 1).unwrap();
    let mut wang = copy_for(&server, &c.wang);
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        wang.transition(&c.wang, action, None, T0 + HOUR).unwrap();
    }
    let refused = wang.transition(&c.wang, Action::Complete, None, T0 + 2 * HOUR).unwrap_err();
    assert!(matches!(refused, loopwork_sync_core::CoreError::Refused(Supersession::SignatureRequired)), "{refused:?}");
    let photo = NewAttachment { kind: AttachmentKind::Signature, ..NewAttachment::of(&"b".repeat(64), "image/png") };
    assert!(wang.attach_with(&c.wang, &photo, T0 + 2 * HOUR).is_err(), "a signature comes only with a completion");
    let signature = NewAttachment {
        sha256: "5".repeat(64),
        mime: "image/png".into(),
        kind: AttachmentKind::Signature,
        size: Some(4_321),
        caption: Some("业主签字".into()),
    };
    wang.complete_signed(&c.wang, &signature, Some("已更换阀门"), T0 + 2 * HOUR).unwrap();
    assert_eq!(push(&mut server, &wang, &c.wang, &c.server), vec![]);
    assert_eq!(server.state().unwrap().status, Status::AwaitingConfirmation);
    let kept = server.attachments();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].kind, kept[0].size, kept[0].caption.as_deref()),
        (AttachmentKind::Signature, Some(4_321), Some("业主签字"))
    );
    let signed = timeline(&server)
        .unwrap()
        .into_iter()
        .find_map(|e| match e.event {
            TimelineEvent::Transition { action: "complete", signature, .. } => Some(signature),
            _ => None,
        })
        .expect("the completion is on the timeline");
    assert_eq!(signed.as_deref(), Some("5".repeat(64).as_str()));
}

/// The server decides that a signature is needed while Wang, offline, completes without one:
/// when the two meet, the completion takes no effect and says why; Wang's signed completion
/// then does.
#[test]
fn an_unsigned_completion_concurrent_with_the_requirement_is_superseded() {
    use loopwork_sync_core::{AttachmentKind, NewAttachment};
    let c = cast();
    let mut server = assigned_order(&c).with_device(c.server.device);
    let mut wang = copy_for(&server, &c.wang);
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.transition(&c.wang, action, None, T0 + HOUR).unwrap();
    }
    server.set_signature_required(true, T0 + HOUR).unwrap();
    assert_eq!(push(&mut server, &wang, &c.wang, &c.server), vec![], "nothing to compensate: the fold decides");
    let state = server.state().unwrap();
    assert_eq!(state.status, Status::InProgress);
    let superseded: Vec<_> = state.superseded().map(|(t, why)| (t.action, why)).collect();
    assert_eq!(superseded, vec![(Action::Complete, Supersession::SignatureRequired)]);
    pull(&mut wang, &server);
    let signature =
        NewAttachment { kind: AttachmentKind::Signature, ..NewAttachment::of(&"6".repeat(64), "image/png") };
    wang.complete_signed(&c.wang, &signature, None, T0 + 2 * HOUR).unwrap();
    push(&mut server, &wang, &c.wang, &c.server);
    assert_eq!(server.state().unwrap().status, Status::AwaitingConfirmation);
}

/// The order Wang has started, where the server has recorded that completing it needs the
/// owner's signature, as the server holds it.
fn started_needing_a_signature(c: &Cast) -> WorkOrder {
    let mut server = assigned_order(c).with_device(c.server.device);
    server.set_signature_required(true, T0).unwrap();
    let mut wang = copy_for(&server, &c.wang);
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        wang.transition(&c.wang, action, None, T0 + HOUR).unwrap();
    }
    push(&mut server, &wang, &c.wang, &c.server);
    server
}

/// One of the document's lists, to write into as a dishonest device would.
fn list_of(order: &WorkOrder, key: &str) -> automerge::ObjId {
    match automerge::ReadDoc::get(order.automerge(), automerge::ROOT, key).unwrap() {
        Some((_, obj)) => obj,
        None => panic!("the {key} list"),
    }
}

/// A device cannot set the requirement, name a signature it did not add with the completion,
/// or slip a signature in without completing.
#[test]
fn signatures_and_their_requirement_cannot_be_forged() {
    use automerge::transaction::Transactable;
    let c = cast();
    let mut server = started_needing_a_signature(&c);

    // The requirement lifted by the device.
    let mut lifted = copy_for(&server, &c.wang);
    lifted.set_signature_required(false, T0 + 2 * HOUR).unwrap();
    let rejected = push(&mut server, &lifted, &c.wang, &c.server);
    assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), vec![RejectReason::ServerOnly]);
    assert!(server.signature_required(), "the server's record stands");

    // A completion naming a signature that is not there.
    let mut named = copy_for(&server, &c.wang);
    named.append_signed_unchecked(&c.wang, &"7".repeat(64), T0 + 2 * HOUR).unwrap();
    let rejected = push(&mut server, &named, &c.wang, &c.server);
    assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), vec![RejectReason::InvalidShape]);
    assert_eq!(server.state().unwrap().status, Status::InProgress);

    // A signature attachment without a completion, and one of an unknown kind.
    for kind in ["signature", "selfie"] {
        let mut loose = copy_for(&server, &c.wang);
        let list = list_of(&loose, "attachments");
        loose
            .raw_change(T0 + 2 * HOUR, "attachment", |tx| {
                let entry = tx.insert_object(&list, 0, automerge::ObjType::Map)?;
                tx.put(&entry, "sha256", "8".repeat(64))?;
                tx.put(&entry, "mime", "image/png")?;
                tx.put(&entry, "kind", kind)?;
                tx.put(&entry, "by", c.wang.user.to_string())?;
                tx.put(&entry, "at", T0 + 2 * HOUR)?;
                Ok(())
            })
            .unwrap();
        let rejected = push(&mut server, &loose, &c.wang, &c.server);
        assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), vec![RejectReason::InvalidShape], "{kind}");
    }
    assert!(server.attachments().is_empty());
}

/// A completion can name only a real signature: an empty name, or a signature attachment that
/// names no content, is refused as a whole.
#[test]
fn a_signature_names_content_or_the_completion_is_refused() {
    use automerge::transaction::Transactable;
    let c = cast();
    let mut server = started_needing_a_signature(&c);
    for (name, sha) in [("", None), ("5", Some(5_i64)), (&*"A".repeat(64), None)] {
        let mut forged = copy_for(&server, &c.wang);
        let state = forged.state().unwrap();
        let (attachments, transitions) = (list_of(&forged, "attachments"), list_of(&forged, "transitions"));
        let after = loopwork_sync_core::lifecycle::frontier(&forged.transitions()).join(",");
        forged
            .raw_change(T0 + 2 * HOUR, "complete", |tx| {
                let a = tx.insert_object(&attachments, 0, automerge::ObjType::Map)?;
                if let Some(sha) = sha {
                    tx.put(&a, "sha256", sha)?;
                }
                tx.put(&a, "kind", "signature")?;
                tx.put(&a, "by", c.wang.user.to_string())?;
                tx.put(&a, "at", T0)?;
                let t = tx.insert_object(&transitions, state.history.len(), automerge::ObjType::Map)?;
                for (k, v) in [
                    ("id", uuid::Uuid::now_v7().to_string()),
                    ("action", "complete".into()),
                    ("by", c.wang.user.to_string()),
                    ("role", "technician".into()),
                    ("device", c.wang.device.to_string()),
                    ("from", "in_progress".into()),
                    ("to", "awaiting_confirmation".into()),
                    ("after", after.clone()),
                    ("signature", name.to_owned()),
                ] {
                    tx.put(&t, k, v)?;
                }
                tx.put(&t, "at", T0 + 2 * HOUR)?;
                Ok(())
            })
            .unwrap();
        let rejected = push(&mut server, &forged, &c.wang, &c.server);
        assert_eq!(rejected.iter().map(|r| r.reason).collect::<Vec<_>>(), vec![RejectReason::InvalidShape], "{name:?}");
        assert_eq!(server.state().unwrap().status, Status::InProgress, "{name:?}");
    }
}

/// What the server records, and when it leaves an order alone: the owner's own registration
/// is exempt under `signature_unless_app` whatever channel a registration claims; an order
/// completed once (now in rework) keeps its record when the rules change; a requirement is not
/// lifted while an unsigned completion waits on it.
#[test]
fn the_server_records_the_requirement_only_where_it_changes_nothing_already_done() {
    use loopwork_sync_core::signature::{SignatureRule, SignatureRules, to_record};
    let c = cast();
    let unless_app = SignatureRules {
        rules: vec![SignatureRule { kind: None, category: None, require: "signature_unless_app".into() }],
    };
    let always =
        SignatureRules { rules: vec![SignatureRule { kind: None, category: None, require: "signature".into() }] };
    let none = SignatureRules::default();
    let look = |rules: &SignatureRules, order: &WorkOrder, first: bool| {
        to_record(rules, order, &order.state().unwrap(), first)
    };

    // The desk registered it for the app: still a signature.
    let mut app = NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Minor,
        channel: Channel::App,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "热水器不出热水".into(),
        reporter: c.owner.user,
        occurred_at_ms: None,
    };
    let by_desk = WorkOrder::create(&app, &c.desk, T0).unwrap();
    assert_eq!(look(&unless_app, &by_desk, true), Some(true));
    // The owner's own report: they confirm in the app.
    app.channel = Channel::App;
    let by_owner = WorkOrder::create(&app, &c.owner, T0).unwrap();
    assert_eq!(look(&unless_app, &by_owner, true), None);

    // Completed, rejected by the owner, in rework: the rules changing now change nothing.
    let mut order = assigned_order(&c).with_device(c.server.device);
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        order.transition(&c.wang, action, None, T0 + HOUR).unwrap();
    }
    order.transition(&c.owner, Action::Reject, Some("还是漏水"), T0 + 2 * HOUR).unwrap();
    assert_eq!(order.state().unwrap().status, Status::Rework);
    assert_eq!(look(&always, &order, false), None);

    // Required, and an unsigned completion waits on it: not lifted, or the completion would
    // come back after the fact.
    let mut waiting = assigned_order(&c).with_device(c.server.device);
    let mut wang = copy_for(&waiting, &c.wang);
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.transition(&c.wang, action, None, T0 + HOUR).unwrap();
    }
    waiting.set_signature_required(true, T0 + HOUR).unwrap();
    push(&mut waiting, &wang, &c.wang, &c.server);
    assert_eq!(waiting.state().unwrap().status, Status::InProgress);
    assert_eq!(look(&none, &waiting, false), None);
    // With nothing waiting, lifting it is recorded.
    let mut fresh = assigned_order(&c).with_device(c.server.device);
    fresh.set_signature_required(true, T0).unwrap();
    assert_eq!(look(&none, &fresh, false), Some(false));
}
