//! The closed loop over HTTP, on SQLite and PostgreSQL: an owner who never answers is confirmed
//! for after their organization's wait, a complaint so confirmed needs a return visit, and with
//! two server processes each order is confirmed once.

use loopwork_server::closed_loop;
use loopwork_sync_core::lifecycle::{Supersession, Verdict};
use loopwork_sync_core::{
    Action, Category, Channel, Clock, Grade, Kind, Location, NewOrder, OrderId, Status, SystemClock,
};
use loopwork_tests::{Backend, Device, TestServer, on_both_backends};
use serde_json::Value;

on_both_backends!(
    an_owner_who_never_answers_is_confirmed_for_and_a_complaint_gets_a_return_visit,
    an_offline_completion_reported_two_hours_later_waits_from_its_receipt,
    rework_twice_then_confirmed_still_needs_a_return_visit,
);

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

async fn synced(device: &mut Device) {
    device.synced().await;
}

fn status_of(device: &Device, id: OrderId) -> Status {
    device.status_of(id)
}

/// A 一般 complaint from the owner of 3-1502, worked and completed by Wang.
async fn completed_complaint(desk: &mut Device, wang: &mut Device, owner: loopwork_sync_core::UserId) -> OrderId {
    let id = desk
        .replica
        .create(&NewOrder {
            kind: Kind::Complaint,
            category: Category::Noise,
            grade: Grade::Minor,
            channel: Channel::Hotline,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "楼上深夜装修噪音".into(),
            reporter: owner,
            occurred_at_ms: None,
        })
        .expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(desk).await;
    synced(wang).await;
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.replica.transition(id, action, None).expect("work");
    }
    synced(wang).await;
    id
}

async fn get(url: String, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("get");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn an_owner_who_never_answers_is_confirmed_for_and_a_complaint_gets_a_return_visit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let mut owner = server.device("yezhu1502").await;
    let admin = server.login("admin").await;
    let id = completed_complaint(&mut desk, &mut wang, owner.session.user).await;
    synced(&mut owner).await;
    assert_eq!(status_of(&owner, id), Status::AwaitingConfirmation);
    let now = SystemClock.now_ms();

    // Not before the organization's wait (3 days by default) has passed.
    assert_eq!(closed_loop::tick(&server.state, now + 2 * DAY).await.expect("tick"), 0);
    assert_eq!(closed_loop::tick(&server.state, now + 3 * DAY + 60_000).await.expect("tick"), 1);
    assert_eq!(closed_loop::tick(&server.state, now + 3 * DAY + 120_000).await.expect("tick"), 0, "once");
    synced(&mut desk).await;
    let state = desk.replica.order(id).expect("order").state().expect("state");
    assert_eq!(state.status, Status::AutoConfirmed);
    assert!(state.auto_confirmed && state.return_visit_required, "an auto-confirmed complaint needs a return visit");

    // Customer service owes a return visit, with a deadline; recording it and closing clears it.
    let url = format!("{}/api/v1/return-visits", server.base);
    let (status, visits) = get(url.clone(), &desk.session.token).await;
    assert_eq!(status, 200);
    let visit =
        visits.as_array().expect("list").iter().find(|v| v["order_id"] == id.to_string()).expect("listed").clone();
    assert_eq!(visit["auto_confirmed"], true);
    assert_eq!(visit["due_ms"].as_i64().expect("due") - visit["since_ms"].as_i64().expect("since"), DAY);
    let (status, _) = get(url.clone(), &wang.session.token).await;
    assert_eq!(status, 403);
    synced(&mut desk).await;
    desk.replica.transition(id, Action::ReturnVisit, Some("业主表示已解决,满意")).expect("return visit");
    desk.replica.transition(id, Action::Close, None).expect("close");
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::Closed);
    let (_, visits) = get(url, &desk.session.token).await;
    assert!(visits.as_array().expect("list").iter().all(|v| v["order_id"] != id.to_string()));

    // Another owner answers late, offline, while the server confirms for them: the owner's own
    // answer wins (it was given without knowing of the auto-confirmation), both stay on record,
    // and a rating of 2 needs a return visit.
    let late = completed_complaint(&mut desk, &mut wang, owner.session.user).await;
    synced(&mut owner).await;
    owner.online = false;
    owner.replica.transition(late, Action::Confirm { rating: 2 }, Some("还是有噪音")).expect("confirm offline");
    assert_eq!(closed_loop::tick(&server.state, SystemClock.now_ms() + 3 * DAY + 60_000).await.expect("tick"), 1);
    owner.online = true;
    synced(&mut owner).await;
    let state = owner.replica.order(late).expect("order").state().expect("state");
    assert_eq!(state.status, Status::Confirmed);
    assert_eq!(state.rating, Some(2));
    assert!(!state.auto_confirmed);
    assert!(state.history.iter().any(|f| f.transition.action == Action::AutoConfirm
        && f.verdict == Verdict::Superseded(Supersession::InvalidFromState)));
    let (_, visits) = get(format!("{}/api/v1/return-visits", server.base), &desk.session.token).await;
    let listed = visits.as_array().expect("list").iter().find(|v| v["order_id"] == late.to_string()).expect("listed");
    assert_eq!(listed["rating"], 2);
    // Why the visit is owed comes from the fold: the late confirmation's rating, not the
    // superseded auto-confirmation.
    assert_eq!(listed["reasons"], serde_json::json!(["low_rating"]));

    // The organization shortens the wait to one day.
    let settings = format!("{}/api/v1/settings/closed-loop", server.base);
    let http = reqwest::Client::new();
    let refused =
        http.put(&settings).bearer_auth(&desk.session.token).json(&serde_json::json!({"auto_confirm_days": 1}));
    assert_eq!(refused.send().await.expect("put").status(), 403);
    let invalid = http.put(&settings).bearer_auth(&admin.token).json(&serde_json::json!({"auto_confirm_days": 0}));
    assert_eq!(invalid.send().await.expect("put").status(), 400);
    let done = http.put(&settings).bearer_auth(&admin.token).json(&serde_json::json!({"auto_confirm_days": 1}));
    assert_eq!(done.send().await.expect("put").status(), 204);
    let (_, read) = get(settings, &desk.session.token).await;
    assert_eq!(read["auto_confirm_days"], 1);
    let second = completed_complaint(&mut desk, &mut wang, owner.session.user).await;
    let now = SystemClock.now_ms();
    assert_eq!(closed_loop::tick(&server.state, now + DAY / 2).await.expect("tick"), 0);
    assert_eq!(closed_loop::tick(&server.state, now + DAY + 60_000).await.expect("tick"), 1);
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, second), Status::AutoConfirmed);
    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("loopwork_auto_confirmed_total 3"), "{metrics}");
    server.stop().await.drop_database().await;
}

/// Two server processes on one PostgreSQL scan at the same moment: the order is confirmed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_scanning_at_once_confirm_each_order_once() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = first.replica().await;
    let mut desk = first.device("kefu").await;
    let mut wang = first.device("wang").await;
    let owner = first.login("yezhu1502").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(completed_complaint(&mut desk, &mut wang, owner.user).await);
    }
    let later = SystemClock.now_ms() + 4 * DAY;
    let (a, b) = tokio::join!(closed_loop::tick(&first.state, later), closed_loop::tick(&second.state, later));
    assert_eq!(a.expect("first") + b.expect("second"), ids.len(), "each order confirmed by exactly one server");
    synced(&mut desk).await;
    for id in ids {
        let state = desk.replica.order(id).expect("order").state().expect("state");
        assert_eq!(state.status, Status::AutoConfirmed);
        let auto: Vec<_> = state.history.iter().filter(|f| f.transition.action == Action::AutoConfirm).collect();
        assert_eq!(auto.len(), 1, "one auto-confirmation in the history of {id}");
    }
    second.stop().await;
    first.stop().await.drop_database().await;
}

/// Wang completes in a basement and reaches signal two hours later: his completion keeps the time
/// he claims, but the owner's three days run from when the server received it.
async fn an_offline_completion_reported_two_hours_later_waits_from_its_receipt(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let owner = server.login("yezhu1502").await;
    let id = desk
        .replica
        .create(&NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Minor,
            channel: Channel::Hotline,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "地下室水泵异响".into(),
            reporter: owner.user,
            occurred_at_ms: None,
        })
        .expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;
    // Offline, two hours before he reaches signal (his phone's clock says so).
    wang.online = false;
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.replica
            .edit(id, |order, me, now| order.transition(me, action, None, now - 2 * HOUR))
            .expect("work offline");
    }
    let claimed = wang.replica.order(id).expect("order").state().expect("state").completed_at_ms.expect("completed");
    wang.online = true;
    synced(&mut wang).await;
    let received = SystemClock.now_ms();
    assert!(received - claimed >= 2 * HOUR, "the claim is kept as the device made it");
    // The three days run from the receipt: not yet at claim + 3 days, due at receipt + 3 days.
    assert_eq!(closed_loop::tick(&server.state, claimed + 3 * DAY + 60_000).await.expect("tick"), 0);
    assert_eq!(closed_loop::tick(&server.state, received + 3 * DAY - 60_000).await.expect("tick"), 0);
    assert_eq!(closed_loop::tick(&server.state, received + 3 * DAY + 60_000).await.expect("tick"), 1);
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::AutoConfirmed);
    server.stop().await.drop_database().await;
}

/// The owner rejects twice; the third completion is confirmed with five stars, and the order
/// still owes a return visit (any rejection requires one) before it can be closed.
async fn rework_twice_then_confirmed_still_needs_a_return_visit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let mut owner = server.device("yezhu1502").await;
    let id = completed_complaint(&mut desk, &mut wang, owner.session.user).await;
    for round in 1..=2 {
        synced(&mut owner).await;
        owner.replica.transition(id, Action::Reject, Some("还是很吵")).expect("reject");
        synced(&mut owner).await;
        synced(&mut wang).await;
        assert_eq!(status_of(&wang, id), Status::Rework);
        assert_eq!(wang.replica.order(id).expect("order").state().expect("state").reopen_count, round);
        wang.replica.transition(id, Action::Start, None).expect("start again");
        wang.replica.transition(id, Action::Complete, None).expect("complete again");
        synced(&mut wang).await;
    }
    synced(&mut owner).await;
    owner.replica.transition(id, Action::Confirm { rating: 5 }, Some("终于解决了")).expect("confirm");
    synced(&mut owner).await;
    synced(&mut desk).await;
    let state = desk.replica.order(id).expect("order").state().expect("state");
    assert_eq!((state.status, state.reopen_count, state.rating), (Status::Confirmed, 2, Some(5)));
    assert!(state.return_visit_required);
    assert!(desk.replica.transition(id, Action::Close, None).is_err(), "not before the return visit");
    let (_, visits) = get(format!("{}/api/v1/return-visits", server.base), &desk.session.token).await;
    let listed = visits.as_array().expect("list").iter().find(|v| v["order_id"] == id.to_string()).expect("listed");
    assert_eq!(listed["reopen_count"], 2);
    desk.replica.transition(id, Action::ReturnVisit, Some("回访:业主满意")).expect("return visit");
    desk.replica.transition(id, Action::Close, None).expect("close");
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::Closed);
    server.stop().await.drop_database().await;
}
