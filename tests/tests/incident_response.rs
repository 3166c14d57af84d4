//! The graded response of incidents and the watch on the service standard (docs/incidents.md),
//! through the API on SQLite and PostgreSQL: each level an incident reaches is told once to its
//! office roles; its members but the first fire no deadlines of their own while it is open; its
//! notice reaches every owner under its place and no one else; a deviation from the standard is
//! told once per episode.

use std::sync::Arc;

use loopwork_server::{deviations, escalation};
use loopwork_sync_core::{Action, Clock, OrderId};
use loopwork_tests::{Backend, OffsetClock, TestServer, error_code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    each_level_is_told_once_and_the_incident_covers_its_members_deadlines,
    the_notice_reaches_every_owner_under_the_incident_and_no_one_else,
    a_deviation_from_the_standard_is_told_once_per_episode,
    an_incident_is_worked_offline_on_a_technicians_phone,
    incidents_are_merged_and_split_by_hand,
    the_service_standard_is_a_setting_with_its_checks,
);

fn report(building: &str, unit: &str, category: &str) -> Value {
    json!({
        "kind": "repair", "category": category, "grade": "minor", "channel": "hotline",
        "project": "hy-garden", "building": building, "unit": unit,
        "description": "家里突然没水了，水龙头一滴都没有",
    })
}

async fn register(server: &TestServer, token: &str, body: Value) -> String {
    let (status, made) = server.call(token, "POST", "/api/v1/orders", Some(body)).await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().expect("id").to_owned()
}

async fn feed(server: &TestServer, token: &str) -> Vec<Value> {
    let (status, list) = server.call(token, "GET", "/api/v1/notifications", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().expect("a list").clone()
}

/// `level` of the notifications of this stage (`incident`, `deviation`, …), oldest first.
async fn told(server: &TestServer, token: &str, stage: &str) -> Vec<String> {
    let mut levels: Vec<(i64, String)> = feed(server, token)
        .await
        .iter()
        .filter(|n| n["stage"] == stage)
        .map(|n| (n["created_at_ms"].as_i64().unwrap_or(0), n["level"].as_str().unwrap_or("").to_owned()))
        .collect();
    levels.sort();
    levels.into_iter().map(|(_, l)| l).collect()
}

/// Scans at `at` until the open incidents hold `orders` member orders in all.
async fn members_become(server: &TestServer, token: &str, orders: i64, at: i64) -> Vec<Value> {
    for _ in 0..100 {
        escalation::tick(&server.state, at).await.expect("scan");
        let (_, list) = server.call(token, "GET", "/api/v1/incidents", None).await;
        let list = list.as_array().expect("a list").clone();
        if list.iter().map(|i| i["orders"].as_i64().unwrap_or(0)).sum::<i64>() == orders {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the incidents never held {orders} orders");
}

async fn each_level_is_told_once_and_the_incident_covers_its_members_deadlines(backend: Backend) {
    let clock = Arc::new(OffsetClock::default());
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let kefu = server.login("kefu").await;
    let chief = server.login("zhuguan").await;
    let admin = server.login("admin").await;
    // Level III from six households here, so that one more report raises the level.
    let (status, body) = server
        .call(&admin.token, "PUT", "/api/v1/settings/surge-rules", Some(json!({"level_three_households": 6})))
        .await;
    assert_eq!(status, 204, "{body}");

    let mut ids = Vec::new();
    for floor in 1..=5 {
        ids.push(register(&server, &kefu.token, report("6", &format!("1-{floor:02}01"), "water_electric")).await);
    }
    let list = members_become(&server, &kefu.token, 5, clock.now_ms()).await;
    assert_eq!((list.len(), &list[0]["level"]), (1, &json!("IV")), "{list:?}");
    let number = list[0]["number"].as_i64().expect("number");
    // Level IV tells the dispatchers and the supervisors, once, naming the incident.
    assert_eq!(told(&server, &chief.token, "incident").await, ["IV"]);
    assert_eq!(told(&server, &kefu.token, "incident").await, ["IV"]);
    let note = feed(&server, &chief.token).await.into_iter().find(|n| n["stage"] == "incident").expect("told");
    assert_eq!(note["subject"], number.to_string());
    assert_eq!(note["order_id"], ids[0].as_str(), "the notification names the first report");
    escalation::tick(&server.state, clock.now_ms()).await.expect("scan");
    assert_eq!(told(&server, &chief.token, "incident").await, ["IV"], "scanning again tells no one again");

    // The sixth household raises it to level III: told once more, at that level.
    ids.push(register(&server, &kefu.token, report("6", "1-0601", "water_electric")).await);
    let list = members_become(&server, &kefu.token, 6, clock.now_ms()).await;
    assert_eq!(list[0]["level"], "III", "{list:?}");
    assert_eq!(told(&server, &chief.token, "incident").await, ["IV", "III"]);
    let named: Vec<Value> =
        feed(&server, &chief.token).await.into_iter().filter(|n| n["stage"] == "incident").collect();
    assert_eq!(named.len(), 2);
    assert!(named.iter().all(|n| n["order_id"] == ids[0].as_str()), "each level names the first report: {named:?}");
    let (_, detail) = server.call(&kefu.token, "GET", &format!("/api/v1/incidents/{number}"), None).await;
    assert_eq!(detail["response"]["cover_members"], true, "{detail}");

    // The first household's report was a duplicate and is cancelled: the next report carries the
    // incident's deadlines. An hour later nobody has responded: it breaches, for the incident,
    // and is told; the other four record their checkpoints as covered and tell no one.
    let (status, body) = server
        .call(
            &kefu.token,
            "POST",
            &format!("/api/v1/orders/{}/actions", ids[0]),
            Some(json!({"action": "cancel", "text": "重复报修"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = ids[1..].to_vec();
    clock.advance_minutes(61);
    escalation::tick(&server.state, clock.now_ms()).await.expect("scan");
    let told_of: Vec<String> = feed(&server, &kefu.token)
        .await
        .into_iter()
        .filter(|n| n["stage"] == "response" && ids.iter().any(|id| n["order_id"] == id.as_str()))
        .map(|n| n["order_id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(told_of.len(), 3, "half, three quarters and the breach of the incident's own deadline");
    assert!(told_of.iter().all(|o| *o == ids[0]), "of the members, only the first one open is told: {told_of:?}");
    for (i, id) in ids.iter().enumerate() {
        let (status, events) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}/sla-events"), None).await;
        assert_eq!(status, 200);
        let breach = events.as_array().unwrap().iter().find(|e| e["stage"] == "response" && e["level"] == "breach");
        let breach = breach.unwrap_or_else(|| panic!("order {i} records its breach: {events}"));
        assert_eq!(breach["covered"], i > 0, "order {i}: {breach}");
    }
}

async fn the_notice_reaches_every_owner_under_the_incident_and_no_one_else(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    // Riser 5-*01 of building 5: the owner of 5-0801 lives on it and has not reported.
    for floor in 1..=5 {
        register(&server, &kefu.token, report("5", &format!("5-{floor:02}01"), "water_electric")).await;
    }
    let now = || loopwork_sync_core::SystemClock.now_ms();
    let list = members_become(&server, &kefu.token, 5, now()).await;
    let number = list[0]["number"].as_i64().expect("number");
    let neighbour = server.login("yezhu0801").await;
    let elsewhere = server.login("yezhu1502").await;

    let (status, notices) = server.call(&neighbour.token, "GET", "/api/v1/notices", None).await;
    assert_eq!(status, 200, "{notices}");
    let notices = notices.as_array().expect("list").clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!((&notices[0]["number"], &notices[0]["reported"]), (&json!(number), &json!(false)));
    assert!(notices[0]["body"].as_str().unwrap().contains("5 户报告"), "the default notice: {}", notices[0]["body"]);
    let (_, none) = server.call(&elsewhere.token, "GET", "/api/v1/notices", None).await;
    assert_eq!(none, json!([]), "an owner of another building is not told");

    // The dispatcher writes the notice with the time water is expected back; updates follow.
    let path = format!("/api/v1/incidents/{number}/notices");
    let expected = now() + 3 * 3_600_000;
    let text = "5栋5单元01立管供水管道爆裂，维修中，预计今晚 22:00 前恢复供水。";
    let (status, detail) =
        server.call(&kefu.token, "POST", &path, Some(json!({"body": text, "expected_at": expected}))).await;
    assert_eq!(status, 201, "{detail}");
    assert_eq!(detail["notices"][0]["body"], text);
    let (_, notices) = server.call(&neighbour.token, "GET", "/api/v1/notices", None).await;
    assert_eq!((&notices[0]["body"], &notices[0]["expected_at"]), (&json!(text), &json!(expected)), "{notices}");
    let (status, _) =
        server.call(&kefu.token, "POST", &path, Some(json!({"body": "已恢复供水，感谢耐心等待。"}))).await;
    assert_eq!(status, 201);
    let (_, notices) = server.call(&neighbour.token, "GET", "/api/v1/notices", None).await;
    assert_eq!(notices[0]["body"], "已恢复供水，感谢耐心等待。");
    assert_eq!(notices[0]["updates"].as_array().map(Vec::len), Some(2));

    // Bad notices are refused precisely; owners write none; office staff read incidents.
    for (body, code) in [
        (json!({"body": "  "}), "invalid_notice"),
        (json!({"body": "长".repeat(501)}), "invalid_notice"),
        (json!({"body": "x", "expected_at": now() + 31 * 86_400_000}), "invalid_expected_at"),
        (json!({"body": "x", "expected_at": 0}), "invalid_expected_at"),
        (json!({"text": "x"}), "invalid_json"),
    ] {
        let (status, answer) = server.call(&kefu.token, "POST", &path, Some(body.clone())).await;
        assert_eq!((status, error_code(&answer)), (400, code), "{body}");
    }
    let (status, _) = server.call(&neighbour.token, "POST", &path, Some(json!({"body": "x"}))).await;
    assert_eq!(status, 403);
    let (status, body) = server.call(&kefu.token, "GET", "/api/v1/notices", None).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) =
        server.call(&kefu.token, "POST", "/api/v1/incidents/99/notices", Some(json!({"body": "x"}))).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));

    // A level whose notice reaches reporters only: the neighbour is no longer told.
    let admin = server.login("admin").await;
    let (_, mut rules) = server.call(&admin.token, "GET", "/api/v1/settings/surge-rules", None).await;
    rules["response"]["IV"]["notice"] = json!("reporters");
    let (status, body) = server.call(&admin.token, "PUT", "/api/v1/settings/surge-rules", Some(rules)).await;
    assert_eq!(status, 204, "{body}");
    let (_, none) = server.call(&neighbour.token, "GET", "/api/v1/notices", None).await;
    assert_eq!(none, json!([]));
}

/// Three orders of three buildings (no surge), registered now; their ids.
async fn three_orders(server: &TestServer, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for building in ["7", "8", "9"] {
        ids.push(register(server, token, report(building, "1-0101", "doors_windows")).await);
    }
    ids
}

async fn a_deviation_from_the_standard_is_told_once_per_episode(backend: Backend) {
    let clock = Arc::new(OffsetClock::default());
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let kefu = server.login("kefu").await;
    let chief = server.login("zhuguan").await;
    let admin = server.login("admin").await;
    let (status, body) = server
        .call(
            &admin.token,
            "PUT",
            "/api/v1/settings/service-standard",
            Some(json!({"window_hours": 24, "min_orders": 3, "notify": ["supervisor"]})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // A month on: the demo's orders are outside the window.
    clock.advance_minutes(30 * 24 * 60);
    let watch = || async {
        escalation::tick(&server.state, clock.now_ms()).await.expect("scan");
        deviations::watch(&server.state, clock.now_ms()).await.expect("watch")
    };

    // Three orders nobody accepts within 30 minutes: response 0 of 3, an episode, told once.
    three_orders(&server, &kefu.token).await;
    clock.advance_minutes(31);
    watch().await;
    assert_eq!(told(&server, &chief.token, "deviation").await.iter().filter(|l| *l == "response").count(), 1);
    let (status, now) = server.call(&kefu.token, "GET", "/api/v1/deviations", None).await;
    assert_eq!(status, 200, "{now}");
    let figure =
        now["figures"].as_array().unwrap().iter().find(|f| f["measure"] == "response").expect("figure").clone();
    assert_eq!((&figure["met"], &figure["orders"], &figure["state"]), (&json!(0), &json!(3), &json!("deviating")));
    let open: Vec<&str> = now["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["closed_at"].is_null())
        .map(|e| e["measure"].as_str().unwrap_or(""))
        .collect();
    // The three orders breached their response too: the deadlines of their category slip.
    assert_eq!(open, ["response", "deadlines"], "{now}");
    for _ in 0..3 {
        clock.advance_minutes(1);
        watch().await;
    }
    assert_eq!(
        told(&server, &chief.token, "deviation").await.iter().filter(|l| *l == "response").count(),
        1,
        "a deviation going on is not told again"
    );

    // A day on, three orders accepted at once: the figure recovers and the episode closes.
    clock.advance_minutes(25 * 60);
    let ids = three_orders(&server, &kefu.token).await;
    let wang = server.login("wang").await;
    let (status, body) = server
        .call(
            &kefu.token,
            "POST",
            "/api/v1/orders/bulk-assign",
            Some(json!({"ids": ids, "assignee": wang.user.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut device = server.device("wang").await;
    device.synced().await;
    for id in &ids {
        let id: OrderId = id.parse().expect("id");
        device.replica.transition(id, Action::Accept, None).expect("accept");
    }
    device.synced().await;
    clock.advance_minutes(31);
    watch().await;
    let (_, now) = server.call(&kefu.token, "GET", "/api/v1/deviations", None).await;
    let response: Vec<&Value> =
        now["episodes"].as_array().unwrap().iter().filter(|e| e["measure"] == "response").collect();
    assert_eq!(response.len(), 1, "{now}");
    assert!(response[0]["closed_at"].is_i64(), "recovered: {now}");

    // A day on, it slips again: a new episode, told again.
    clock.advance_minutes(25 * 60);
    three_orders(&server, &kefu.token).await;
    clock.advance_minutes(31);
    watch().await;
    watch().await;
    assert_eq!(told(&server, &chief.token, "deviation").await.iter().filter(|l| *l == "response").count(), 2);
    // Only the standard's roles are told.
    assert!(told(&server, &kefu.token, "deviation").await.is_empty());
    // Owners and technicians are refused the figures.
    let owner = server.login("yezhu1502").await;
    let (status, body) = server.call(&owner.token, "GET", "/api/v1/deviations", None).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
}

async fn the_service_standard_is_a_setting_with_its_checks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await;
    let kefu = server.login("kefu").await;
    let (status, standard) = server.call(&kefu.token, "GET", "/api/v1/settings/service-standard", None).await;
    assert_eq!(status, 200);
    assert_eq!((&standard["response_minutes"], &standard["satisfaction_target"]), (&json!(30), &json!(0.85)));
    for bad in [
        json!({"window_hours": 0}),
        json!({"satisfaction_target": 1.5}),
        json!({"notify": ["owner"]}),
        json!({"response_minutes": 0}),
    ] {
        let (status, body) =
            server.call(&admin.token, "PUT", "/api/v1/settings/service-standard", Some(bad.clone())).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_service_standard"), "{bad}");
    }
    let (status, body) =
        server.call(&admin.token, "PUT", "/api/v1/settings/service-standard", Some(json!({"speed": 1}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.call(&kefu.token, "PUT", "/api/v1/settings/service-standard", Some(json!({}))).await;
    assert_eq!(status, 403, "only an administrator");
}

async fn an_incident_is_worked_offline_on_a_technicians_phone(backend: Backend) {
    use loopwork_sync_core::store::OrderQuery;
    use loopwork_sync_core::{IncidentRef, Status};
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let mut ids = Vec::new();
    for floor in 1..=5 {
        ids.push(register(&server, &kefu.token, report("7", &format!("2-{floor:02}02"), "water_electric")).await);
    }
    let now = || loopwork_sync_core::SystemClock.now_ms();
    let list = members_become(&server, &kefu.token, 5, now()).await;
    let number = list[0]["number"].as_i64().expect("number");
    let wang = server.login("wang").await;
    let (status, body) = server
        .call(
            &kefu.token,
            "POST",
            "/api/v1/orders/bulk-assign",
            Some(json!({"ids": ids, "assignee": wang.user.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Wang's phone receives the five orders, each saying which incident it belongs to (the
    // server's own change in each document).
    let mut phone = server.device("wang").await;
    let mine = |phone: &loopwork_tests::Device| {
        let query = OrderQuery { incident: Some(number), limit: 100, ..OrderQuery::default() };
        phone.replica.list(&query).expect("list")
    };
    for _ in 0..50 {
        phone.synced().await;
        if mine(&phone).len() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mine(&phone).len(), 5, "the incident's five orders are on the phone");
    let first: loopwork_sync_core::OrderId = ids[0].parse().expect("id");
    assert_eq!(
        phone.replica.order(first).expect("order").incident(),
        Some(IncidentRef { number, place: "7栋 2单元02立管".into(), category: "water_electric".into() })
    );

    // In the plant room, without signal: accept, arrive, start and complete the incident in
    // four steps; each order gets its own transitions, offline.
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        let work = phone.replica.work_incident(number, action, Some("立管阀门已更换")).expect("work");
        assert_eq!((work.changed.len(), work.skipped.len()), (5, 0), "{action:?}: {work:?}");
    }
    // A second completion applies to none: each is skipped with the lifecycle's reason.
    let again = phone.replica.work_incident(number, Action::Complete, None).expect("work");
    assert_eq!((again.changed.len(), again.skipped.len()), (0, 5));
    assert!(again.skipped.iter().all(|(_, why)| why.contains("invalid_from_state")), "{again:?}");

    // Back in signal: the server has every household's order completed, each waiting for its
    // own owner's confirmation (the closed loop is per household).
    phone.synced().await;
    for id in &ids {
        let (status, order) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(order["status"], "awaiting_confirmation", "{order}");
    }
    let id: loopwork_sync_core::OrderId = ids[4].parse().expect("id");
    assert_eq!(phone.status_of(id), Status::AwaitingConfirmation);
}

async fn incidents_are_merged_and_split_by_hand(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let now = || loopwork_sync_core::SystemClock.now_ms();
    // Two risers of two buildings: two incidents the detector keeps apart.
    let mut nine = Vec::new();
    let mut ten = Vec::new();
    for floor in 1..=5 {
        nine.push(register(&server, &kefu.token, report("9", &format!("1-{floor:02}01"), "water_electric")).await);
        ten.push(register(&server, &kefu.token, report("10", &format!("1-{floor:02}01"), "water_electric")).await);
    }
    let list = members_become(&server, &kefu.token, 10, now()).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let number_of = |building: &str| {
        list.iter().find(|i| i["building"] == building).and_then(|i| i["number"].as_i64()).expect("incident")
    };
    let (a, b) = (number_of("9"), number_of("10"));

    // The dispatcher sees one cause (the pump room feeding both): building 10's joins 9's.
    let (status, merged) =
        server.call(&kefu.token, "POST", &format!("/api/v1/incidents/{b}/merge"), Some(json!({"into": a}))).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!((&merged["number"], &merged["orders"], &merged["households"]), (&json!(a), &json!(10), &json!(10)));
    assert_eq!(
        (&merged["building"], &merged["riser"], &merged["level"]),
        (&Value::Null, &Value::Null, &json!("II")),
        "{merged}"
    );
    let (_, gone) = server.call(&kefu.token, "GET", &format!("/api/v1/incidents/{b}"), None).await;
    assert_eq!((&gone["state"], &gone["merged_into"]), (&json!("merged"), &json!(a)));
    // The moved members' documents name the incident they joined (what the phones group by).
    let mut desk = server.device("kefu").await;
    let moved: loopwork_sync_core::OrderId = ten[0].parse().expect("id");
    desk.synced().await;
    assert_eq!(desk.replica.order(moved).expect("order").incident().map(|i| i.number), Some(a));
    let all: Vec<String> = [nine.clone(), ten.clone()].concat();
    for (path, body, code) in [
        (format!("/api/v1/incidents/{b}/merge"), json!({"into": a}), "incident_not_open"),
        (format!("/api/v1/incidents/{a}/merge"), json!({"into": a}), "invalid_merge"),
        (format!("/api/v1/incidents/{a}/merge"), json!({"into": 999}), "not_found"),
        (format!("/api/v1/incidents/{a}/split"), json!({"orders": []}), "invalid_split"),
        (format!("/api/v1/incidents/{a}/split"), json!({"orders": all}), "invalid_split"),
        (
            format!("/api/v1/incidents/{a}/split"),
            json!({"orders": [ten[0].clone(), "01a24f8d-e5d2-778e-8ea0-5da9e8c7575a".to_owned()]}),
            "invalid_split",
        ),
        (format!("/api/v1/incidents/{a}/merge"), json!({"to": b}), "invalid_json"),
    ] {
        let (status, answer) = server.call(&kefu.token, "POST", &path, Some(body.clone())).await;
        assert_eq!(error_code(&answer), code, "{path} {body}: {status} {answer}");
    }

    // It was not one cause after all: building 10's five orders split off into a new incident
    // of their own riser.
    let (status, split) =
        server.call(&kefu.token, "POST", &format!("/api/v1/incidents/{a}/split"), Some(json!({"orders": ten}))).await;
    assert_eq!(status, 201, "{split}");
    let c = split["number"].as_i64().expect("number");
    assert_ne!(c, a);
    assert_eq!(
        (&split["building"], &split["riser"], &split["orders"]),
        (&json!("10"), &json!("1-*01"), &json!(5)),
        "{split}"
    );
    let (_, rest) = server.call(&kefu.token, "GET", &format!("/api/v1/incidents/{a}"), None).await;
    assert_eq!(rest["orders"], 5);
    desk.synced().await;
    let split_doc = desk.replica.order(moved).expect("order").incident().expect("an incident");
    assert_eq!((split_doc.number, split_doc.place.as_str()), (c, "10栋 1单元01立管"));
    // A report of building 10's riser joins the split-off incident, not the other.
    register(&server, &kefu.token, report("10", "1-0601", "water_electric")).await;
    members_become(&server, &kefu.token, 11, now()).await;
    let (_, split) = server.call(&kefu.token, "GET", &format!("/api/v1/incidents/{c}"), None).await;
    assert_eq!(split["orders"], 6, "{split}");

    for login in ["yezhu1502", "wang"] {
        let session = server.login(login).await;
        let (status, _) = server
            .call(&session.token, "POST", &format!("/api/v1/incidents/{c}/merge"), Some(json!({"into": a})))
            .await;
        assert_eq!(status, 403, "{login}");
    }
}
