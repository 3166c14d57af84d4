//! Complaint surges answered as incidents (docs/incidents.md) through the API, on SQLite and
//! PostgreSQL: a burst riser at night becomes one incident that later reports join, each
//! household keeping its own order; resolving it stops it taking reports; two server processes
//! scanning the same surge open it once; the rules are an organization setting with its checks.

use loopwork_server::escalation;
use loopwork_sync_core::{Clock, SystemClock};
use loopwork_tests::{Backend, TestServer, error_code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    a_burst_riser_becomes_one_incident_and_each_household_keeps_its_own_order,
    two_server_processes_scanning_one_surge_open_one_incident,
    the_surge_rules_are_a_setting_with_its_checks,
);

/// A water outage reported by phone for a unit of the demo project.
fn no_water(building: &str, unit: &str) -> Value {
    json!({
        "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
        "project": "hy-garden", "building": building, "unit": unit,
        "description": "家里突然没水了，水龙头一滴都没有",
    })
}

async fn register(server: &TestServer, token: &str, building: &str, unit: &str) -> String {
    let (status, made) = server.call(token, "POST", "/api/v1/orders", Some(no_water(building, unit))).await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().expect("id").to_owned()
}

async fn open_incidents(server: &TestServer, token: &str) -> Vec<Value> {
    let (status, list) = server.call(token, "GET", "/api/v1/incidents", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().expect("a list").clone()
}

/// Scans now (the scanner would within a second or so), then waits until the incidents hold
/// `orders` member orders in all.
async fn members_become(server: &TestServer, token: &str, orders: i64) -> Vec<Value> {
    escalation::tick(&server.state, SystemClock.now_ms()).await.expect("scan");
    for _ in 0..100 {
        let list = open_incidents(server, token).await;
        if list.iter().map(|i| i["orders"].as_i64().unwrap_or(0)).sum::<i64>() == orders {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the incidents never held {orders} orders: {:?}", open_incidents(server, token).await);
}

async fn a_burst_riser_becomes_one_incident_and_each_household_keeps_its_own_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    // Four households of building 5's riser 2-*01: not yet a surge.
    let mut ids = Vec::new();
    for floor in 1..=4 {
        ids.push(register(&server, &kefu.token, "5", &format!("2-{floor:02}01")).await);
    }
    // A household elsewhere reports the same trouble: not part of it.
    let elsewhere = register(&server, &kefu.token, "9", "1-0302").await;
    escalation::tick(&server.state, SystemClock.now_ms()).await.expect("scan");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(open_incidents(&server, &kefu.token).await, Vec::<Value>::new(), "four households are not a surge");

    // The fifth household opens the riser's incident with the four before it.
    ids.push(register(&server, &kefu.token, "5", "2-0501").await);
    let list = members_become(&server, &kefu.token, 5).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let incident = &list[0];
    assert_eq!(
        (&incident["building"], &incident["riser"], &incident["category"], &incident["level"], &incident["state"]),
        (&json!("5"), &json!("2-*01"), &json!("water_electric"), &json!("IV"), &json!("open")),
        "{incident}"
    );
    assert_eq!(incident["households"], 5);
    let number = incident["number"].as_i64().expect("number");

    // Later reports of the riser join it; a household reporting twice counts once.
    ids.push(register(&server, &kefu.token, "5", "2-0601").await);
    ids.push(register(&server, &kefu.token, "5", "2-0601").await);
    let list = members_become(&server, &kefu.token, 7).await;
    assert_eq!((list.len(), &list[0]["households"]), (1, &json!(6)), "{list:?}");

    let path = format!("/api/v1/incidents/{number}");
    let (status, detail) = server.call(&kefu.token, "GET", &path, None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["place_zh"], "5栋 2单元01立管");
    let mut members: Vec<&str> =
        detail["members"].as_array().unwrap().iter().map(|m| m["order_id"].as_str().unwrap()).collect();
    members.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(members, expected, "every report of the riser, none from elsewhere");
    assert!(!members.contains(&elsewhere.as_str()));

    // Only office staff: an owner and a technician are refused; a number nobody has is 404.
    for login in ["yezhu1502", "wang"] {
        let session = server.login(login).await;
        let (status, body) = server.call(&session.token, "GET", "/api/v1/incidents", None).await;
        assert_eq!((status, error_code(&body)), (403, "forbidden"), "{login}");
        let (status, _) = server.call(&session.token, "POST", &format!("{path}/resolve"), None).await;
        assert_eq!(status, 403, "{login}");
    }
    for missing in ["/api/v1/incidents/999", "/api/v1/incidents/0", "/api/v1/incidents/x"] {
        let (status, body) = server.call(&kefu.token, "GET", missing, None).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{missing}");
    }
    let (status, body) = server.call(&kefu.token, "GET", "/api/v1/incidents?state=closed", None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_state"));

    // Resolved, it takes no more reports; each member order is still its household's own, open
    // until its owner confirms.
    let (status, resolved) = server.call(&kefu.token, "POST", &format!("{path}/resolve"), None).await;
    assert_eq!((status, &resolved["state"]), (200, &json!("resolved")), "{resolved}");
    let (status, again) = server.call(&kefu.token, "POST", &format!("{path}/resolve"), None).await;
    assert_eq!((status, &again["resolved_at"]), (200, &resolved["resolved_at"]), "resolving twice changes nothing");
    for id in &ids {
        let (status, order) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(status, 200);
        assert_ne!(order["status"], "closed", "{order}");
    }
    register(&server, &kefu.token, "5", "2-0701").await;
    escalation::tick(&server.state, SystemClock.now_ms()).await.expect("scan");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(open_incidents(&server, &kefu.token).await.is_empty(), "a resolved incident takes no reports");
    let (_, all) = server.call(&kefu.token, "GET", "/api/v1/incidents?state=all", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(all[0]["orders"], 7);
}

async fn two_server_processes_scanning_one_surge_open_one_incident(backend: Backend) {
    let server = TestServer::start(backend).await;
    let other = server.replica().await;
    let kefu = server.login("kefu").await;
    for floor in 1..=6 {
        register(&server, &kefu.token, "8", &format!("4-{floor:02}02")).await;
    }
    // Both processes scan at once (and their own scanners within a second).
    let now = SystemClock.now_ms();
    let (a, b) = tokio::join!(escalation::tick(&server.state, now), escalation::tick(&other.state, now));
    a.expect("scan");
    b.expect("scan");
    let list = members_become(&server, &kefu.token, 6).await;
    assert_eq!(list.len(), 1, "one incident, not one per process: {list:?}");
    assert_eq!((&list[0]["number"], &list[0]["households"]), (&json!(1), &json!(6)));
    let (_, seen_by_other) = other.call(&kefu.token, "GET", "/api/v1/incidents", None).await;
    assert_eq!(seen_by_other.as_array().map(Vec::len), Some(1), "{seen_by_other}");
}

async fn the_surge_rules_are_a_setting_with_its_checks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let admin = server.login("admin").await;
    let path = "/api/v1/settings/surge-rules";
    let (status, rules) = server.call(&kefu.token, "GET", path, None).await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!((&rules["min_households"], &rules["windows_minutes"]), (&json!(5), &json!([10, 30, 60])));
    let (status, refused) = server.call(&kefu.token, "PUT", path, Some(rules.clone())).await;
    assert_eq!((status, error_code(&refused)), (403, "forbidden"));
    for (bad, why) in [
        (json!({"windows_minutes": []}), "no window"),
        (json!({"windows_minutes": [0]}), "a window of no time"),
        (json!({"min_households": 1}), "one household"),
        (json!({"min_households": 40}), "more than level III's"),
        (json!({"max_p_value": 0.5}), "a p-value that finds surges everywhere"),
        (json!({"level_one_building_share": 0}), "no share"),
    ] {
        let (status, body) = server.call(&admin.token, "PUT", path, Some(bad.clone())).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_surge_rules"), "{why}: {body}");
    }
    let (status, body) = server.call(&admin.token, "PUT", path, Some(json!({"min_household": 3}))).await;
    assert_eq!(status, 400, "an unknown field: {body}");
    // Three households now make a surge.
    let (status, _) = server.call(&admin.token, "PUT", path, Some(json!({"min_households": 3}))).await;
    assert_eq!(status, 204);
    for floor in 1..=3 {
        register(&server, &kefu.token, "11", &format!("5-{floor:02}02")).await;
    }
    let list = members_become(&server, &kefu.token, 3).await;
    assert_eq!(list.len(), 1, "{list:?}");
}
