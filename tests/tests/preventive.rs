//! The preventive maintenance scheduler (docs/maintenance.md) on SQLite and PostgreSQL: a lift's
//! plan becomes one work order per occurrence, whichever of two replicas passes first and however
//! often; the order carries the plan's checklist for the technician to tick; its completion moves
//! the next due day; a reservation left by a stopped process is made by the next pass under the
//! same id; and an order lost with a restored database is made again as the same change, which
//! the phone that held it pushes back without conflict.

use std::sync::Arc;

use loopwork_server::{escalation, preventive};
use loopwork_sync_core::{Action, FixedClock, OrderId, Status};
use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    each_occurrence_becomes_one_order_and_its_service_moves_the_next_due_day,
    a_restore_that_lost_a_completion_makes_the_next_order_anew_and_the_phone_s_copy_still_syncs,
);

/// 10:00 China Standard Time on a day of 2026 (`MM-DD`).
fn at(day: &str) -> i64 {
    let zoned: jiff::Zoned = format!("2026-{day}T10:00:00+08:00[Asia/Shanghai]").parse().expect("a time");
    zoned.timestamp().as_millisecond()
}

async fn detail(server: &TestServer, token: &str, asset: &str) -> Value {
    let (status, body) = server.call(token, "GET", &format!("/api/v1/assets/{asset}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Both replicas pass at `now`; how many orders they made together.
async fn pass(server: &TestServer, replica: &TestServer, now: i64) -> usize {
    let (a, b) = tokio::join!(preventive::tick(&server.state, now), preventive::tick(&replica.state, now));
    let (a, b) = (
        a.unwrap_or_else(|e| panic!("a pass at {now}: {e:?}")),
        b.unwrap_or_else(|e| panic!("a pass at {now}: {e:?}")),
    );
    assert_eq!(a.unreadable + b.unreadable, 0);
    a.made + b.made
}

async fn each_occurrence_becomes_one_order_and_its_service_moves_the_next_due_day(backend: Backend) {
    let clock = Arc::new(FixedClock::at(at("02-09")));
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let replica = server.replica_configured(|_| {}).await;
    let zhuguan = server.login("zhuguan").await.token;
    let lift = json!({
        "project": "hy-garden", "building": "3", "place": "3单元电梯井", "name": "3号电梯",
        "asset_type": "elevator", "make": "奥的斯",
    });
    let (status, asset) = server.call(&zhuguan, "POST", "/api/v1/assets", Some(lift)).await;
    assert_eq!(status, 201, "{asset}");
    let asset = asset["id"].as_str().expect("id").to_owned();
    // Every other Monday from 5 January 2026, at most 15 days apart, made 3 days ahead.
    let plan = json!({
        "rule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "starts_on": "2026-01-05", "max_gap_days": 15,
        "lead_days": 3, "checklist": ["检查曳引机", "润滑导轨", "测试紧急呼叫"],
    });
    let (status, plan) = server.call(&zhuguan, "POST", &format!("/api/v1/assets/{asset}/plans"), Some(plan)).await;
    assert_eq!(status, 201, "{plan}");
    let plan = plan["id"].as_str().expect("id").to_owned();

    // The service of Monday 16 February falls in the Spring Festival: due Saturday the 14th
    // (调休), its order made on the 11th, not before.
    assert_eq!(pass(&server, &replica, at("02-10")).await, 0);
    assert_eq!(pass(&server, &replica, at("02-11")).await, 1, "one order of two replicas");
    assert_eq!(pass(&server, &replica, at("02-11") + 3_600_000).await, 0, "and not again");
    let body = detail(&server, &zhuguan, &asset).await;
    let services = body["services"].as_array().expect("services");
    assert_eq!(services.len(), 1, "{body}");
    let first = &services[0];
    assert_eq!(first["key"], json!(format!("pm:{plan}:2026-02-16")));
    assert_eq!((first["due"].as_str(), first["issue_on"].as_str()), (Some("2026-02-14"), Some("2026-02-11")));
    assert_eq!(first["status"], "new", "{first}");
    assert!(first["number"].as_str().is_some_and(|n| !n.is_empty()), "{first}");
    let id: OrderId = first["order_id"].as_str().expect("order").parse().expect("an order id");
    // The next service shown counts from the one made.
    assert_eq!(body["plans"][0]["upcoming"][0]["nominal"], "2026-03-02", "{body}");

    // The dispatcher sees a planned order with the plan's checklist; the technician ticks it.
    let kefu = server.login("kefu").await.token;
    let (status, order) = server.call(&kefu, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!((order["kind"].as_str(), order["channel"].as_str()), (Some("maintenance"), Some("plan")), "{order}");
    assert!(order["description"].as_str().is_some_and(|d| d.starts_with("计划维保：3号电梯")), "{order}");
    let labels: Vec<&str> =
        order["checklist"].as_array().expect("a checklist").iter().filter_map(|i| i["label"].as_str()).collect();
    assert_eq!(labels, ["检查曳引机", "润滑导轨", "测试紧急呼叫"]);

    // Worked and completed on Thursday 12 February.
    clock.set(at("02-12"));
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    desk.synced().await;
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    desk.synced().await;
    wang.synced().await;
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        wang.replica.transition(id, action, None).expect("work");
    }
    let items = wang.replica.order(id).expect("the order on the phone").checklist();
    assert_eq!(items.len(), 3);
    for item in &items {
        wang.replica.tick_checklist_item(id, &item.id, true).expect("tick");
    }
    wang.replica.transition(id, Action::Complete, None).expect("complete");
    wang.synced().await;
    assert_eq!(wang.status_of(id), Status::AwaitingConfirmation);
    escalation::tick(&server.state, at("02-12")).await.expect("the scan records the completion");

    // Done on the 12th: the next service (rule date Monday 2 March) is due within 15 days of
    // it, Friday 27 February (had it been done on its due day, the 14th: Saturday the 28th).
    assert_eq!(pass(&server, &replica, at("02-23")).await, 0);
    assert_eq!(pass(&server, &replica, at("02-24")).await, 1);
    let body = detail(&server, &zhuguan, &asset).await;
    let services = body["services"].as_array().expect("services");
    assert_eq!(services.len(), 2, "{body}");
    assert_eq!(services[1]["done"], "2026-02-12", "{body}");
    assert_eq!(services[0]["key"], json!(format!("pm:{plan}:2026-03-02")));
    assert_eq!(services[0]["due"], "2026-02-27", "{body}");
    // February on the dashboard: two services due, one done on time, none overdue yet.
    escalation::tick(&server.state, at("02-24")).await.expect("the scan reads the new order");
    let panel = format!("/api/v1/dashboard/maintenance?from={}&to={}", at("02-01"), at("03-01"));
    let (status, panel) = server.call(&zhuguan, "GET", &panel, None).await;
    assert_eq!(status, 200, "{panel}");
    let count = |field: &str| panel[field].as_i64();
    assert_eq!(
        (count("services_due"), count("done_on_time"), count("done_late"), count("overdue")),
        (Some(2), Some(1), Some(0), Some(0)),
        "{panel}"
    );
    assert_eq!((panel["compliance"].as_f64(), count("preventive_orders")), (Some(1.0), Some(2)), "{panel}");

    // A process that reserved the next occurrence and stopped before making its order: a later
    // pass makes it, and records the id it made it under.
    let org = wang.session.org.clone();
    let key = format!("pm:{plan}:2026-03-16");
    let abandoned = loopwork_server::store::OccurrenceRecord {
        org: org.clone(),
        key: key.clone(),
        plan_id: plan.clone(),
        asset_id: asset.clone(),
        nominal: "2026-03-16".into(),
        due: "2026-03-13".into(),
        issue_on: "2026-03-10".into(),
        order_id: "reserved-by-a-process-that-stopped".into(),
        made_at: None,
        done: None,
    };
    assert!(server.state.db.reserve_occurrence(&abandoned, at("03-10")).await.expect("reserve"));
    assert_eq!(pass(&server, &replica, at("03-10") + 60_000).await, 0, "not while its process may still make it");
    assert_eq!(pass(&server, &replica, at("03-10") + 10 * 60_000).await, 1);
    let body = detail(&server, &zhuguan, &asset).await;
    assert_eq!(body["services"][0]["key"], json!(key));
    assert!(body["services"][0]["number"].as_str().is_some(), "{body}");
    let remade = body["services"][0]["order_id"].as_str().expect("an order");
    assert_ne!(remade, abandoned.order_id);
    let (status, _) = server.call(&zhuguan, "GET", &format!("/api/v1/orders/{remade}"), None).await;
    assert_eq!(status, 200);

    // Lost with a restored database: the backup predates the next order; the phone that received
    // it pushes it back, and the restored server's scheduler makes it again as the same change.
    replica.stop().await;
    let database = server.stop().await;
    let backup = database.backup().await;
    let server = TestServer::start_on_with_clock(database, clock.clone()).await;
    // (The new process's own first pass may come after the clock moves and make it first.)
    clock.set(at("03-24"));
    preventive::tick(&server.state, at("03-24")).await.expect("a pass");
    let body = detail(&server, &zhuguan_again(&server).await, &asset).await;
    assert_eq!(body["services"].as_array().map(Vec::len), Some(4), "{body}");
    let lost: OrderId = body["services"][0]["order_id"].as_str().expect("order").parse().expect("id");
    desk.base = server.base.clone();
    desk.synced().await;
    assert!(desk.replica.order(lost).is_ok(), "the desk's phone has it");
    // Restored (its clock before the order's issue day, so that its first pass waits for the
    // test's): the order is gone from the server, not from the desk's phone.
    let database = server.stop().await;
    let database = database.restore(backup).await;
    clock.set(at("03-20"));
    let server = TestServer::start_on_with_clock(database, clock.clone()).await;
    let token = zhuguan_again(&server).await;
    assert_eq!(detail(&server, &token, &asset).await["services"].as_array().expect("services").len(), 3, "lost");
    // (Kept as it is now, for a second drill below.)
    let database = server.stop().await;
    let second_backup = database.backup().await;
    let server = TestServer::start_on_with_clock(database, clock.clone()).await;
    let token = zhuguan_again(&server).await;
    desk.base = server.base.clone();
    desk.synced().await;
    let (status, order) = server.call(&token, "GET", &format!("/api/v1/orders/{lost}"), None).await;
    assert_eq!(status, 200, "the desk's phone gave it back: {order}");
    // The scheduler's pass makes it again: the same order, one checklist, nothing refused.
    clock.set(at("03-24"));
    preventive::tick(&server.state, at("03-24")).await.expect("a pass");
    desk.synced().await;
    let (status, order) = server.call(&token, "GET", &format!("/api/v1/orders/{lost}"), None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["kind"], "maintenance");
    assert_eq!(order["checklist"].as_array().map(Vec::len), Some(3), "{order}");
    assert!(order["rejected_edits"].as_array().is_some_and(Vec::is_empty), "{order}");
    let body = detail(&server, &token, &asset).await;
    assert_eq!(body["services"].as_array().map(Vec::len), Some(4), "{body}");
    assert_eq!(body["services"][0]["order_id"], json!(lost.to_string()));

    // Restored again, the scheduler first this time: it makes the order before the phone comes
    // back, as the same changes, so the phone's copy merges as one (no second checklist).
    let database = server.stop().await;
    let database = database.restore(second_backup).await;
    clock.set(at("03-24"));
    let server = TestServer::start_on_with_clock(database, clock.clone()).await;
    preventive::tick(&server.state, at("03-24")).await.expect("a pass");
    let token = zhuguan_again(&server).await;
    let (status, before) = server.call(&token, "GET", &format!("/api/v1/orders/{lost}"), None).await;
    assert_eq!(status, 200, "made again: {before}");
    desk.base = server.base.clone();
    desk.synced().await;
    let (status, order) = server.call(&token, "GET", &format!("/api/v1/orders/{lost}"), None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["checklist"].as_array().map(Vec::len), Some(3), "{order}");
    assert_eq!(order["checklist"], before["checklist"], "the same items, by the same ids");
    assert!(order["rejected_edits"].as_array().is_some_and(Vec::is_empty), "{order}");
    let on_phone = desk.replica.order(lost).expect("on the phone");
    assert_eq!(on_phone.checklist().len(), 3);
    let roots = on_phone.automerge().get_changes(&[]).iter().filter(|c| c.deps().is_empty()).count();
    assert_eq!(roots, 1, "the phone merged one creation, not two");
    server.stop().await.drop_database().await;
}

async fn zhuguan_again(server: &TestServer) -> String {
    server.login("zhuguan").await.token
}

/// A lift with its plan (every other Monday from 5 January 2026, 15 days at most, 3 days' lead);
/// the asset's and the plan's ids.
async fn lift_with_plan(server: &TestServer, token: &str) -> (String, String) {
    let lift = json!({
        "project": "hy-garden", "building": "3", "place": "3单元电梯井", "name": "3号电梯",
        "asset_type": "elevator", "make": "奥的斯",
    });
    let (status, asset) = server.call(token, "POST", "/api/v1/assets", Some(lift)).await;
    assert_eq!(status, 201, "{asset}");
    let asset = asset["id"].as_str().expect("id").to_owned();
    let plan = json!({
        "rule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "starts_on": "2026-01-05", "max_gap_days": 15,
        "lead_days": 3, "checklist": ["检查曳引机", "润滑导轨", "测试紧急呼叫"],
    });
    let (status, plan) = server.call(token, "POST", &format!("/api/v1/assets/{asset}/plans"), Some(plan)).await;
    assert_eq!(status, 201, "{plan}");
    (asset, plan["id"].as_str().expect("id").to_owned())
}

async fn a_restore_that_lost_a_completion_makes_the_next_order_anew_and_the_phone_s_copy_still_syncs(backend: Backend) {
    let clock = Arc::new(FixedClock::at(at("02-09")));
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let zhuguan = server.login("zhuguan").await.token;
    let (asset, _) = lift_with_plan(&server, &zhuguan).await;
    preventive::tick(&server.state, at("02-11")).await.expect("a pass");
    let first: OrderId = detail(&server, &zhuguan, &asset).await["services"][0]["order_id"]
        .as_str()
        .expect("order")
        .parse()
        .expect("id");
    // The phones sign in; the backup: the first service made, not done.
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let database = server.stop().await;
    let backup = database.backup().await;
    let server = TestServer::start_on_with_clock(database, clock.clone()).await;
    // Done on the 12th; the next, due within 15 days of it, Friday 27 February, is made on the 24th.
    clock.set(at("02-12"));
    desk.base = server.base.clone();
    wang.base = server.base.clone();
    desk.synced().await;
    desk.replica.transition(first, Action::Assign(wang.session.user), None).expect("assign");
    desk.synced().await;
    wang.synced().await;
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.replica.transition(first, action, None).expect("work");
    }
    wang.synced().await;
    escalation::tick(&server.state, at("02-12")).await.expect("scan");
    clock.set(at("02-24"));
    preventive::tick(&server.state, at("02-24")).await.expect("a pass");
    let body = detail(&server, &zhuguan, &asset).await;
    assert_eq!(body["services"][0]["due"], "2026-02-27", "{body}");
    let next: OrderId = body["services"][0]["order_id"].as_str().expect("order").parse().expect("id");
    desk.synced().await;
    assert!(desk.replica.order(next).is_ok());

    // Restored: the completion is lost with the next order. The restored server, not knowing the
    // service was done, makes the next service due Saturday 28 February (调休), on the 25th: other
    // content, so another order; the desk's phone pushes back the completion and its copy of the
    // first next order, which the server takes as an order of its own: nothing refused, nothing
    // lost (the office cancels one of the two).
    let database = server.stop().await;
    let database = database.restore(backup).await;
    clock.set(at("02-25"));
    let server = TestServer::start_on_with_clock(database, clock.clone()).await;
    preventive::tick(&server.state, at("02-25")).await.expect("a pass");
    let token = server.login("zhuguan").await.token;
    let body = detail(&server, &token, &asset).await;
    assert_eq!(body["services"][0]["due"], "2026-02-28", "{body}");
    let remade: OrderId = body["services"][0]["order_id"].as_str().expect("order").parse().expect("id");
    assert_ne!(remade, next, "other content, another order");
    desk.base = server.base.clone();
    desk.synced().await;
    for id in [first, next, remade] {
        let (status, order) = server.call(&token, "GET", &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(status, 200, "{id}: {order}");
        assert!(order["rejected_edits"].as_array().is_some_and(Vec::is_empty), "{order}");
    }
    let (_, order) = server.call(&token, "GET", &format!("/api/v1/orders/{first}"), None).await;
    assert_eq!(order["status"], "awaiting_confirmation", "the completion came back: {order}");
    server.stop().await.drop_database().await;
}
