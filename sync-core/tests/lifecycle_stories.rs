//! The hard merges of the lifecycle, each told as the story it is.

use loopwork_sync_core::lifecycle::{Supersession, Verdict};
use loopwork_sync_core::{
    Action, Category, Channel, Grade, HoldReason, Identity, Kind, Location, NewOrder, ReturnVisitReason, Role, Status,
    WorkOrder,
};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_790_000_000_000;

struct Cast {
    dispatcher: Identity,
    tech_wang: Identity,
    tech_li: Identity,
    owner: Identity,
}

fn cast() -> Cast {
    Cast {
        dispatcher: Identity::fresh(Role::Dispatcher),
        tech_wang: Identity::fresh(Role::Technician),
        tech_li: Identity::fresh(Role::Technician),
        owner: Identity::fresh(Role::Owner),
    }
}

fn leaking_pipe(cast: &Cast) -> WorkOrder {
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "厨房水管漏水".into(),
        reporter: cast.owner.user,
        occurred_at_ms: Some(T0 - HOUR),
    };
    WorkOrder::create(&new, &cast.dispatcher, T0).unwrap()
}

/// Another device's copy of the order, as it would arrive by sync.
fn copy_for(order: &WorkOrder, who: &Identity) -> WorkOrder {
    WorkOrder::load(&order.save()).unwrap().with_device(who.device)
}

fn merge_all(replicas: &mut [&mut WorkOrder]) {
    for i in 0..replicas.len() {
        for j in 0..replicas.len() {
            if i != j {
                let mut other = replicas[j].clone();
                replicas[i].merge(&mut other).unwrap();
            }
        }
    }
}

fn verdict_of(order: &WorkOrder, by: &Identity, action_code: &str) -> Verdict {
    let state = order.state().unwrap();
    state
        .history
        .iter()
        .find(|f| f.transition.by == by.user && f.transition.action.code() == action_code)
        .map(|f| f.verdict)
        .expect("the transition is in the log")
}

/// Assigned to Wang, accepted, on site, in progress: where most stories start.
fn in_progress_with_wang(cast: &Cast) -> WorkOrder {
    let mut order = leaking_pipe(cast);
    order.transition(&cast.dispatcher, Action::Assign(cast.tech_wang.user), None, T0 + 60_000).unwrap();
    let mut wang = copy_for(&order, &cast.tech_wang);
    wang.transition(&cast.tech_wang, Action::Accept, None, T0 + 120_000).unwrap();
    wang.transition(&cast.tech_wang, Action::Arrive, None, T0 + 600_000).unwrap();
    wang.transition(&cast.tech_wang, Action::Start, None, T0 + 660_000).unwrap();
    order.merge(&mut wang).unwrap();
    order
}

#[test]
fn the_happy_path_closes_the_loop() {
    let cast = cast();
    let mut order = in_progress_with_wang(&cast);
    order.transition(&cast.tech_wang, Action::Complete, Some("换了阀门"), T0 + HOUR).unwrap();
    order.transition(&cast.owner, Action::Confirm { rating: 5 }, Some("很快"), T0 + 2 * HOUR).unwrap();
    order.transition(&cast.dispatcher, Action::Close, None, T0 + 3 * HOUR).unwrap();
    let state = order.state().unwrap();
    assert_eq!(state.status, Status::Closed);
    assert_eq!(state.rating, Some(5));
    assert!(!state.return_visit_required && state.return_visit_reasons.is_empty());
    assert_eq!(state.superseded().count(), 0);
}

#[test]
fn technician_completes_offline_while_the_dispatcher_cancels_online_the_order_is_cancelled_and_the_technician_sees_why()
{
    // Fresh actor ids each round, so the merged list order varies.
    for _ in 0..16 {
        technician_completes_offline_while_the_dispatcher_cancels_online_the_order_is_cancelled_and_the_technician_sees_why_once(cast());
    }
}

fn technician_completes_offline_while_the_dispatcher_cancels_online_the_order_is_cancelled_and_the_technician_sees_why_once(
    cast: Cast,
) {
    let mut server = in_progress_with_wang(&cast);
    let mut wang = copy_for(&server, &cast.tech_wang);

    wang.add_note(&cast.tech_wang, "阀门已更换", T0 + HOUR).unwrap();
    wang.transition(&cast.tech_wang, Action::Complete, None, T0 + HOUR).unwrap();
    server.transition(&cast.dispatcher, Action::Cancel, Some("业主已自行修好"), T0 + HOUR).unwrap();

    merge_all(&mut [&mut server, &mut wang]);
    let state = wang.state().unwrap();
    assert_eq!(state, server.state().unwrap());
    assert_eq!(state.status, Status::Cancelled);
    let cancel = state.history.iter().find(|f| f.transition.action == Action::Cancel).unwrap();
    assert_eq!(cancel.verdict, Verdict::Applied);
    assert_eq!(cancel.transition.text.as_deref(), Some("业主已自行修好"));
    // The cancellation outranks the concurrent completion, whichever merged first; the
    // technician's device shows why, and keeps the note.
    assert_eq!(verdict_of(&wang, &cast.tech_wang, "complete"), Verdict::Superseded(Supersession::OrderCancelled));
    assert_eq!(wang.notes().len(), 1);
}

#[test]
fn two_technicians_accept_the_same_unassigned_order_offline_exactly_one_gets_it() {
    // Fresh actor ids each round, so the merged list order varies.
    for _ in 0..16 {
        two_technicians_accept_the_same_unassigned_order_offline_exactly_one_gets_it_once(cast());
    }
}

fn two_technicians_accept_the_same_unassigned_order_offline_exactly_one_gets_it_once(cast: Cast) {
    let order = leaking_pipe(&cast);
    let mut wang = copy_for(&order, &cast.tech_wang);
    let mut li = copy_for(&order, &cast.tech_li);
    wang.transition(&cast.tech_wang, Action::Accept, None, T0 + 60_000).unwrap();
    li.transition(&cast.tech_li, Action::Accept, None, T0 + 61_000).unwrap();

    merge_all(&mut [&mut wang, &mut li]);
    let state = wang.state().unwrap();
    assert_eq!(state, li.state().unwrap());
    assert_eq!(state.status, Status::Accepted);
    let winner = state.assignee.unwrap();
    let (winner_id, loser_id) =
        if winner == cast.tech_wang.user { (&cast.tech_wang, &cast.tech_li) } else { (&cast.tech_li, &cast.tech_wang) };
    assert_eq!(verdict_of(&wang, winner_id, "accept"), Verdict::Applied);
    assert_eq!(verdict_of(&wang, loser_id, "accept"), Verdict::Superseded(Supersession::AlreadyTaken));
}

#[test]
fn order_reassigned_while_the_old_assignee_works_offline_keeps_their_notes_and_time_but_not_their_completion() {
    // Fresh actor ids each round, so the merged list order varies.
    for _ in 0..16 {
        order_reassigned_while_the_old_assignee_works_offline_keeps_their_notes_and_time_but_not_their_completion_once(
            cast(),
        );
    }
}

fn order_reassigned_while_the_old_assignee_works_offline_keeps_their_notes_and_time_but_not_their_completion_once(
    cast: Cast,
) {
    let mut dispatcher = in_progress_with_wang(&cast);
    let mut wang = copy_for(&dispatcher, &cast.tech_wang);

    dispatcher.transition(&cast.dispatcher, Action::Assign(cast.tech_li.user), Some("王师傅请假"), T0 + HOUR).unwrap();
    wang.add_note(&cast.tech_wang, "已关闭总阀", T0 + HOUR).unwrap();
    wang.log_time(&cast.tech_wang, T0 + 660_000, T0 + HOUR, T0 + HOUR).unwrap();
    wang.transition(&cast.tech_wang, Action::Complete, None, T0 + HOUR + 1).unwrap();

    // The reassignment reached the server first; Wang syncs later.
    let mut wang_sent = wang.clone();
    dispatcher.merge(&mut wang_sent).unwrap();
    let mut back = dispatcher.clone();
    wang.merge(&mut back).unwrap();

    let state = wang.state().unwrap();
    assert_eq!(state, dispatcher.state().unwrap());
    assert_eq!(state.assignee, Some(cast.tech_li.user));
    assert_eq!(wang.notes().len(), 1);
    assert_eq!(wang.time_log().len(), 1);
    assert_eq!(state.status, Status::Assigned);
    let (_, why) = state.superseded().next().expect("Wang's completion is superseded");
    assert_eq!(why, Supersession::Reassigned);
    assert!(why.message_zh().contains("改派"));
    assert_eq!(verdict_of(&wang, &cast.tech_wang, "complete"), Verdict::Superseded(Supersession::Reassigned));
}

#[test]
fn the_owner_rejects_while_the_technician_adds_a_note_both_stand_and_the_order_goes_back_for_rework() {
    let cast = cast();
    let mut order = in_progress_with_wang(&cast);
    order.transition(&cast.tech_wang, Action::Complete, None, T0 + HOUR).unwrap();
    let mut owner = copy_for(&order, &cast.owner);
    let mut wang = copy_for(&order, &cast.tech_wang);

    owner.transition(&cast.owner, Action::Reject, Some("还在滴水"), T0 + 2 * HOUR).unwrap();
    wang.add_note(&cast.tech_wang, "已提醒业主观察24小时", T0 + 2 * HOUR).unwrap();
    merge_all(&mut [&mut owner, &mut wang]);

    let state = owner.state().unwrap();
    assert_eq!(state, wang.state().unwrap());
    assert_eq!(state.status, Status::Rework);
    assert_eq!(state.reopen_count, 1);
    assert!(state.return_visit_required);
    assert_eq!(state.return_visit_reasons, [ReturnVisitReason::Rejected]);
    assert_eq!(owner.notes().len(), 1);

    // Rework: the technician completes again, the owner confirms, a return visit is needed.
    wang.transition(&cast.tech_wang, Action::Start, None, T0 + 3 * HOUR).unwrap();
    wang.transition(&cast.tech_wang, Action::Complete, None, T0 + 4 * HOUR).unwrap();
    wang.transition(&cast.owner, Action::Confirm { rating: 2 }, None, T0 + 5 * HOUR).unwrap();
    let reasons = wang.state().unwrap().return_visit_reasons;
    assert_eq!(reasons, [ReturnVisitReason::Rejected, ReturnVisitReason::LowRating], "each reason once, in order");
    let refused = wang.transition(&cast.dispatcher, Action::Close, None, T0 + 5 * HOUR);
    assert!(matches!(refused, Err(loopwork_sync_core::CoreError::Refused(Supersession::ReturnVisitPending))));
    wang.transition(&cast.dispatcher, Action::ReturnVisit, Some("业主满意"), T0 + 6 * HOUR).unwrap();
    wang.transition(&cast.dispatcher, Action::Close, None, T0 + 6 * HOUR).unwrap();
    assert_eq!(wang.state().unwrap().status, Status::Closed);
}

#[test]
fn a_technician_whose_clock_is_hours_wrong_cannot_reorder_history() {
    let cast = cast();
    let mut order = leaking_pipe(&cast);
    order.transition(&cast.dispatcher, Action::Assign(cast.tech_wang.user), None, T0 + 60_000).unwrap();
    let mut wang = copy_for(&order, &cast.tech_wang);
    // Wang's phone thinks it is five hours before the order existed.
    let skewed = T0 - 5 * HOUR;
    wang.transition(&cast.tech_wang, Action::Accept, None, skewed).unwrap();
    wang.transition(&cast.tech_wang, Action::Arrive, None, skewed + 60_000).unwrap();
    order.merge(&mut wang).unwrap();

    let state = order.state().unwrap();
    assert_eq!(state.status, Status::OnSite);
    assert!(state.history.iter().all(|f| f.verdict == Verdict::Applied));
    // The claimed times are kept as claims, for the deadline rules to judge.
    assert_eq!(state.accepted_at_ms, Some(skewed));
}

#[test]
fn an_owner_cannot_complete_their_own_order_and_a_stranger_cannot_confirm_it() {
    let cast = cast();
    let mut order = in_progress_with_wang(&cast);
    let refused = order.transition(&cast.owner, Action::Complete, None, T0 + HOUR);
    assert!(matches!(refused, Err(loopwork_sync_core::CoreError::Refused(Supersession::RoleNotPermitted))));

    // A dishonest device writes it anyway: the fold keeps it, marked, and the state holds.
    order.append_transition_unchecked(&cast.owner, Action::Complete, None, T0 + HOUR).unwrap();
    assert_eq!(order.state().unwrap().status, Status::InProgress);
    assert_eq!(verdict_of(&order, &cast.owner, "complete"), Verdict::Superseded(Supersession::RoleNotPermitted));

    order.transition(&cast.tech_wang, Action::Complete, None, T0 + HOUR).unwrap();
    let stranger = Identity::fresh(Role::Owner);
    order.append_transition_unchecked(&stranger, Action::Confirm { rating: 1 }, None, T0 + HOUR).unwrap();
    let state = order.state().unwrap();
    assert_eq!(state.status, Status::AwaitingConfirmation);
    assert_eq!(state.rating, None);
    assert_eq!(verdict_of(&order, &stranger, "confirm"), Verdict::Superseded(Supersession::NotReporter));
}

#[test]
fn hold_for_parts_pauses_the_resolution_clock_and_hold_for_other_reasons_does_not() {
    let cast = cast();
    let mut order = in_progress_with_wang(&cast);
    order.transition(&cast.tech_wang, Action::Hold(HoldReason::WaitingForParts), None, T0 + HOUR).unwrap();
    let summary = loopwork_sync_core::OrderSummary::of(&order).unwrap();
    assert_eq!(summary.next_deadline_ms, None, "the clock stops while waiting for parts");
    order.transition(&cast.tech_wang, Action::Resume, None, T0 + 3 * HOUR).unwrap();
    let resumed = loopwork_sync_core::OrderSummary::of(&order).unwrap();
    // Serious grade: 24 hours, plus the two hours paused.
    assert_eq!(resumed.next_deadline_ms, Some(T0 + 24 * HOUR + 2 * HOUR));

    order.transition(&cast.tech_wang, Action::Hold(HoldReason::Other), None, T0 + 4 * HOUR).unwrap();
    let held = loopwork_sync_core::OrderSummary::of(&order).unwrap();
    assert_eq!(held.next_deadline_ms, Some(T0 + 26 * HOUR));
}

#[test]
fn an_owner_may_cancel_before_acceptance_but_not_after() {
    let cast = cast();
    let mut order = leaking_pipe(&cast);
    let mut early = order.clone();
    // A cancellation needs its reason (`Action::requires_text`), on every device.
    let bare = early.transition(&cast.owner, Action::Cancel, Some("  "), T0 + 60_000);
    assert!(matches!(bare, Err(loopwork_sync_core::CoreError::InvalidInput(_))), "{bare:?}");
    early.transition(&cast.owner, Action::Cancel, Some("不需要了"), T0 + 60_000).unwrap();
    assert_eq!(early.state().unwrap().status, Status::Cancelled);

    order.transition(&cast.tech_wang, Action::Accept, None, T0 + 60_000).unwrap();
    let refused = order.transition(&cast.owner, Action::Cancel, None, T0 + 120_000);
    assert!(matches!(refused, Err(loopwork_sync_core::CoreError::Refused(Supersession::InvalidFromState))));
}

#[test]
fn an_auto_confirmed_complaint_needs_a_return_visit_before_closing() {
    let cast = cast();
    let new = NewOrder {
        kind: Kind::Complaint,
        category: Category::Noise,
        grade: Grade::Minor,
        channel: Channel::App,
        location: Location::unit("hy-garden", "5", "5-0301"),
        description: "楼上装修噪音".into(),
        reporter: cast.owner.user,
        occurred_at_ms: None,
    };
    let mut complaint = WorkOrder::create(&new, &cast.dispatcher, T0).unwrap();
    let system = Identity::fresh(Role::System);
    for (who, action) in [
        (&cast.dispatcher, Action::Assign(cast.tech_wang.user)),
        (&cast.tech_wang, Action::Accept),
        (&cast.tech_wang, Action::Arrive),
        (&cast.tech_wang, Action::Start),
        (&cast.tech_wang, Action::Complete),
        (&system, Action::AutoConfirm),
    ] {
        complaint.transition(who, action, None, T0 + HOUR).unwrap();
    }
    let state = complaint.state().unwrap();
    assert_eq!(state.status, Status::AutoConfirmed);
    assert!(state.auto_confirmed && state.return_visit_required);
    assert_eq!(state.return_visit_reasons, [ReturnVisitReason::AutoConfirmedComplaint]);
    assert!(complaint.transition(&cast.dispatcher, Action::Close, None, T0 + 2 * HOUR).is_err());
}

#[test]
fn the_rule_table_in_docs_is_the_one_in_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/lifecycle.md")).unwrap();
    let table = loopwork_sync_core::lifecycle::rules_markdown();
    assert!(doc.contains(&table), "docs/lifecycle.md must contain the rule table; regenerate it:\n{table}");
}

#[test]
#[ignore = "prints the rule table for docs/lifecycle.md"]
fn print_rule_table() {
    print!("{}", loopwork_sync_core::lifecycle::rules_markdown());
}
