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
    a_plan_made_before_another_write_is_refused,
    callers_about_a_stopped_lift_count_one_household_each,
    an_owner_whose_report_joins_an_incident_is_told,
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
    // Its members no longer count towards a new surge: four new households are not one (with
    // the resolved incident's six they would be), the fifth is, and opens incident 2.
    let mut second = Vec::new();
    for floor in 7..=10 {
        second.push(register(&server, &kefu.token, "5", &format!("2-{floor:02}01")).await);
    }
    escalation::tick(&server.state, SystemClock.now_ms()).await.expect("scan");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(open_incidents(&server, &kefu.token).await.is_empty(), "four new households after a resolve");
    second.push(register(&server, &kefu.token, "5", "2-1101").await);
    let list = members_become(&server, &kefu.token, 5).await;
    assert_eq!((list.len(), &list[0]["number"]), (1, &json!(2)), "{list:?}");
    let (_, detail) = server.call(&kefu.token, "GET", "/api/v1/incidents/2", None).await;
    let mut members: Vec<String> =
        detail["members"].as_array().unwrap().iter().map(|m| m["order_id"].as_str().unwrap().to_owned()).collect();
    members.sort_unstable();
    second.sort_unstable();
    assert_eq!(members, second, "none of the resolved incident's orders");
    let (_, all) = server.call(&kefu.token, "GET", "/api/v1/incidents?state=all", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!((&all[1]["number"], &all[1]["orders"], &all[1]["state"]), (&json!(1), &json!(7), &json!("resolved")));
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

async fn a_plan_made_before_another_write_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    for floor in 1..=5 {
        register(&server, &kefu.token, "4", &format!("1-{floor:02}01")).await;
    }
    members_become(&server, &kefu.token, 5).await;
    let db = &server.state.db;
    let org = &kefu.principal().org;
    // A plan made from the state as it is now goes in, once.
    let state = db.surge_state(org, &[], 0).await.expect("state");
    let plan = loopwork_server::store::SurgePlan { revision: state.revision, ..Default::default() };
    assert!(db.apply_surges(org, &plan).await.expect("apply"));
    assert!(!db.apply_surges(org, &plan).await.expect("apply"), "the same plan again is stale");
    // A resolve between the read and the write makes it stale too.
    let state = db.surge_state(org, &[], 0).await.expect("state");
    assert!(db.resolve_incident(org, 1, "someone", SystemClock.now_ms()).await.expect("resolve"));
    let plan = loopwork_server::store::SurgePlan {
        revision: state.revision,
        members: vec![(1, "late-order".into(), "4/1-0601".into(), SystemClock.now_ms())],
        ..Default::default()
    };
    assert!(!db.apply_surges(org, &plan).await.expect("apply"), "a plan made before the resolve adds nothing");
    let (_, detail) = server.call(&kefu.token, "GET", "/api/v1/incidents/1", None).await;
    assert_eq!(detail["members"].as_array().map(Vec::len), Some(5), "{detail}");
}

async fn callers_about_a_stopped_lift_count_one_household_each(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    // Five calls about building 6's lift, registered by one dispatcher at a common area.
    for _ in 0..5 {
        let lift = json!({
            "kind": "repair", "category": "elevator", "grade": "minor", "channel": "hotline",
            "project": "hy-garden", "building": "6", "area": "2单元电梯", "description": "2单元电梯停了，按钮没反应",
        });
        let (status, made) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(lift)).await;
        assert_eq!(status, 201, "{made}");
    }
    let list = members_become(&server, &kefu.token, 5).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (&list[0]["building"], &list[0]["riser"], &list[0]["category"], &list[0]["households"]),
        (&json!("6"), &Value::Null, &json!("elevator"), &json!(5)),
        "each call a household, the building's lift the place"
    );
}

async fn an_owner_whose_report_joins_an_incident_is_told(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let owner = server.login("yezhu1502").await;
    for floor in 1..=4 {
        register(&server, &kefu.token, "3", &format!("3-{floor:02}02")).await;
    }
    // The owner of 3-1502 calls too: the fifth household of riser 3-*02.
    let theirs = register(&server, &kefu.token, "3", "3-1502").await;
    // The demo's own water report of 3-1502 joins as well: six orders, five households.
    let list = members_become(&server, &kefu.token, 6).await;
    assert_eq!(list[0]["households"], 5, "{list:?}");
    let (status, detail) = server.call(&owner.token, "GET", &format!("/api/v1/orders/{theirs}"), None).await;
    assert_eq!(status, 200, "{detail}");
    let incident = &detail["incident"];
    assert_eq!(
        (&incident["number"], &incident["place_zh"], &incident["state"], &incident["households"]),
        (&json!(1), &json!("3栋 3单元02立管"), &json!("open"), &json!(5)),
        "{detail}"
    );
    // The desk names it on the order too; an order of no incident names none.
    let (_, on_desk) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{theirs}"), None).await;
    assert_eq!(on_desk["incident"]["number"], 1);
    let lone = register(&server, &kefu.token, "12", "1-0101").await;
    let (_, lone) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{lone}"), None).await;
    assert_eq!(lone["incident"], Value::Null);
}
