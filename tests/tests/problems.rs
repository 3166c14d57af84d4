//! Repeated failures (docs/maintenance.md) on SQLite and PostgreSQL: the estate's one pump,
//! failing for the third time in 60 days, raises one problem record (问题单) under the
//! organization's failure rules, whichever of two replicas looks first and however often; the
//! office makes its preventive order, once, naming the pump; the asset's page shows the repairs,
//! the problem and the order; who may do what is enforced.

use std::sync::Arc;

use loopwork_server::{escalation, preventive};
use loopwork_sync_core::FixedClock;
use loopwork_tests::{Backend, TestServer, error_code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(a_pump_failing_for_the_third_time_in_60_days_raises_one_problem_record);

/// 10:00 China Standard Time on a day of 2026 (`MM-DD`).
fn at(day: &str) -> i64 {
    let zoned: jiff::Zoned = format!("2026-{day}T10:00:00+08:00[Asia/Shanghai]").parse().expect("a time");
    zoned.timestamp().as_millisecond()
}

/// The desk registers a leak at the pump room naming the pump, at the clock's time; the scanner
/// reads it.
async fn repair(server: &TestServer, clock: &FixedClock, token: &str, day: &str, asset: &str) -> String {
    clock.set(at(day));
    let (status, body) = server
        .call(
            token,
            "POST",
            "/api/v1/orders",
            Some(json!({
                "kind": "repair", "category": "water_electric", "channel": "hotline", "project": "hy-garden",
                "area": "B2水泵房", "description": "2号泵漏水，地面积水", "asset": asset,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    escalation::tick(&server.state, at(day)).await.expect("the scan reads it");
    body["id"].as_str().expect("id").to_owned()
}

/// Both replicas look at `now`; how many problems they stored together.
async fn raise(server: &TestServer, replica: &TestServer, now: i64) -> usize {
    let (a, b) =
        tokio::join!(preventive::raise_problems(&server.state, now), preventive::raise_problems(&replica.state, now));
    a.expect("a pass") + b.expect("a pass")
}

async fn a_pump_failing_for_the_third_time_in_60_days_raises_one_problem_record(backend: Backend) {
    let clock = Arc::new(FixedClock::at(at("03-02")));
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let replica = server.replica_configured(|_| {}).await;
    let admin = server.login("admin").await.token;
    let zhuguan = server.login("zhuguan").await.token;
    let kefu = server.login("kefu").await.token;
    let wang = server.login("wang").await.token;
    let pump = json!({
        "project": "hy-garden", "place": "B2水泵房", "name": "2号泵", "asset_type": "water_pump",
        "make": "格兰富", "installed_on": "2019-06-01",
    });
    let (status, pump) = server.call(&zhuguan, "POST", "/api/v1/assets", Some(pump)).await;
    assert_eq!(status, 201, "{pump}");
    let pump = pump["id"].as_str().expect("id").to_owned();

    // Only office staff name an asset, and only one of the project's.
    let leak = json!({"kind": "repair", "category": "water_electric", "channel": "app", "project": "hy-garden",
                      "building": "3", "unit": "1502", "description": "漏水", "asset": pump});
    let owner = server.login("yezhu1502").await.token;
    let (status, body) = server.call(&owner, "POST", "/api/v1/orders", Some(leak)).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_asset"), "{body}");
    let elsewhere = json!({"kind": "repair", "category": "water_electric", "channel": "hotline",
                           "project": "hy-garden", "area": "B2水泵房", "description": "漏水", "asset": "0123abcd"});
    let (status, body) = server.call(&kefu, "POST", "/api/v1/orders", Some(elsewhere)).await;
    assert_eq!((status, error_code(&body)), (400, "unknown_asset"), "{body}");

    // Three leaks in 45 days; the second a fortnight later is a new fault (not the first again).
    let first = repair(&server, &clock, &kefu, "03-02", &pump).await;
    let second = repair(&server, &clock, &kefu, "03-22", &pump).await;
    let third = repair(&server, &clock, &kefu, "04-16", &pump).await;
    // The built-in rules want four in 30 days: nothing yet.
    assert_eq!(raise(&server, &replica, at("04-16")).await, 0);
    let (status, body) = server
        .call(
            &kefu,
            "PUT",
            "/api/v1/settings/failure-rules",
            Some(json!({"repeat_count": 3, "repeat_window_days": 60, "cooldown_days": 30, "same_fault_days": 7})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    for bad in [
        json!({"repeat_count": 1, "repeat_window_days": 60, "cooldown_days": 30, "same_fault_days": 7}),
        json!({"repeat_count": 3, "repeat_window_days": 0, "cooldown_days": 30, "same_fault_days": 7}),
        json!({"repeat_count": 3, "repeat_window_days": 60, "cooldown_days": 30, "same_fault_days": 31}),
    ] {
        let (status, body) = server.call(&admin, "PUT", "/api/v1/settings/failure-rules", Some(bad)).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_failure_rules"), "{body}");
    }
    let rules = json!({"repeat_count": 3, "repeat_window_days": 60, "cooldown_days": 30, "same_fault_days": 7});
    let (status, body) = server.call(&admin, "PUT", "/api/v1/settings/failure-rules", Some(rules.clone())).await;
    assert_eq!(status, 204, "{body}");
    let (_, stored) = server.call(&kefu, "GET", "/api/v1/settings/failure-rules", None).await;
    assert_eq!(stored, rules);

    // The third fault in 60 days: one problem record, of two replicas, and not again.
    assert_eq!(raise(&server, &replica, at("04-16") + 60_000).await, 1);
    assert_eq!(raise(&server, &replica, at("04-16") + 120_000).await, 0, "once");
    // A repair two days later is the third fault again (a repair that did not hold), and the
    // cooldown holds besides: nothing new.
    repair(&server, &clock, &kefu, "04-18", &pump).await;
    assert_eq!(raise(&server, &replica, at("04-18")).await, 0);
    let (status, problems) = server.call(&kefu, "GET", "/api/v1/problems?status=open", None).await;
    assert_eq!(status, 200, "{problems}");
    let problems = problems.as_array().expect("a list");
    assert_eq!(problems.len(), 1, "{problems:?}");
    let problem = &problems[0];
    assert_eq!((problem["asset_name"].as_str(), problem["reason"].as_str()), (Some("2号泵"), Some("repeated")));
    assert_eq!((problem["count"].as_i64(), problem["days"].as_i64()), (Some(3), Some(60)));
    assert_eq!(problem["orders"], json!([first, second, third]));
    let id = problem["id"].as_str().expect("id").to_owned();
    let (status, body) = server.call(&kefu, "GET", "/api/v1/problems?status=closed", None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_status"), "{body}");
    let (status, body) = server.call(&wang, "GET", "/api/v1/problems", None).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");

    // The office makes its preventive order: the server's, naming the pump; asking again answers
    // the same order; it can no longer be dismissed.
    let (status, body) = server.call(&wang, "POST", &format!("/api/v1/problems/{id}/order"), None).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, ordered) = server.call(&kefu, "POST", &format!("/api/v1/problems/{id}/order"), None).await;
    assert_eq!(status, 201, "{ordered}");
    assert!(ordered["number"].as_str().is_some_and(|n| !n.is_empty()), "{ordered}");
    let order = ordered["order_id"].as_str().expect("order").to_owned();
    let (status, again) = server.call(&kefu, "POST", &format!("/api/v1/problems/{id}/order"), None).await;
    assert_eq!((status, again["order_id"].as_str()), (200, Some(order.as_str())), "{again}");
    let (status, body) = server.call(&zhuguan, "POST", &format!("/api/v1/problems/{id}/dismiss"), None).await;
    assert_eq!((status, error_code(&body)), (409, "problem_closed"), "{body}");
    let (status, detail) = server.call(&kefu, "GET", &format!("/api/v1/orders/{order}"), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!((detail["kind"].as_str(), detail["channel"].as_str()), (Some("maintenance"), Some("plan")));
    assert_eq!(detail["grade"], "serious");
    assert!(detail["description"].as_str().is_some_and(|d| d.contains("60 天内故障 3 次")), "{detail}");
    assert!(detail["rejected_edits"].as_array().is_some_and(Vec::is_empty), "{detail}");

    // The pump's page: four repairs and the preventive order name it; one problem, ordered.
    escalation::tick(&server.state, at("04-18") + 60_000).await.expect("the scan reads the order");
    let (status, page) = server.call(&zhuguan, "GET", &format!("/api/v1/assets/{pump}"), None).await;
    assert_eq!(status, 200, "{page}");
    let kinds: Vec<&str> =
        page["orders"].as_array().expect("orders").iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "repair").count(), 4, "{page}");
    assert_eq!(kinds.iter().filter(|k| **k == "maintenance").count(), 1, "{page}");
    assert_eq!(page["problems"][0]["status"], "ordered");
    assert_eq!(page["problems"][0]["order_id"], json!(order));
    // The dashboard: four repairs named the pump, one of them a repair that did not hold; one
    // preventive order; the pump's failures and MTBF in working hours.
    let panel = format!("/api/v1/dashboard/maintenance?project=hy-garden&from={}&to={}", at("03-01"), at("05-01"));
    let (status, panel) = server.call(&zhuguan, "GET", &panel, None).await;
    assert_eq!(status, 200, "{panel}");
    assert_eq!((panel["asset_repairs"].as_i64(), panel["repeat_repairs"].as_i64()), (Some(4), Some(1)), "{panel}");
    assert_eq!(panel["repeat_repair_rate"].as_f64(), Some(0.25));
    assert_eq!(panel["preventive_orders"].as_i64(), Some(1), "{panel}");
    let pumps = &panel["reliability"][0];
    assert_eq!(
        (pumps["asset_type"].as_str(), pumps["assets"].as_i64(), pumps["failures"].as_i64()),
        (Some("water_pump"), Some(1), Some(4)),
        "{panel}"
    );
    assert!(pumps["mtbf_hours"].as_f64().is_some(), "{panel}");
    let (status, body) = server.call(&wang, "GET", "/api/v1/dashboard/maintenance", None).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let backwards = format!("/api/v1/dashboard/maintenance?from={}&to={}", at("05-01"), at("03-01"));
    let (status, body) = server.call(&zhuguan, "GET", &backwards, None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_period"), "{body}");

    // A leak registered without the pump; the technician names it on the job, from his phone:
    // the scanner reads the order again and the pump's history has it.
    let mut phone = server.device("wang").await;
    let (status, body) = server
        .call(
            &kefu,
            "POST",
            "/api/v1/orders",
            Some(json!({
                "kind": "repair", "category": "water_electric", "channel": "hotline", "project": "hy-garden",
                "area": "B2水泵房", "description": "泵房地面积水", "assignee": phone.session.user.to_string(),
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let named_later: loopwork_sync_core::OrderId = body["id"].as_str().expect("id").parse().expect("an id");
    escalation::tick(&server.state, at("04-18") + 120_000).await.expect("scan");
    phone.synced().await;
    phone.replica.transition(named_later, loopwork_sync_core::Action::Accept, None).expect("accept");
    phone.synced().await;
    escalation::tick(&server.state, at("04-18") + 180_000).await.expect("scan");
    phone.replica.set_asset(named_later, Some(&pump)).expect("scanned the pump's code");
    phone.synced().await;
    escalation::tick(&server.state, at("04-18") + 240_000).await.expect("scan");
    let (_, page) = server.call(&zhuguan, "GET", &format!("/api/v1/assets/{pump}"), None).await;
    let named: Vec<&str> =
        page["orders"].as_array().expect("orders").iter().filter_map(|o| o["order_id"].as_str()).collect();
    assert!(named.contains(&named_later.to_string().as_str()), "{page}");

    // Another organization reaches none of it.
    let stranger = other_org_supervisor(&server).await;
    let (status, body) = server.call(&stranger, "POST", &format!("/api/v1/problems/{id}/dismiss"), None).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, listed) = server.call(&stranger, "GET", "/api/v1/problems", None).await;
    assert_eq!((status, listed), (200, Value::Array(Vec::new())));
    replica.stop().await;
    server.stop().await.drop_database().await;
}

/// A supervisor of another organization (with a project of the same code), signed in.
async fn other_org_supervisor(server: &TestServer) -> String {
    use loopwork_server::store::NewUser;
    let db = &server.state.db;
    let org = db.create_organization("别家物业", 0).await.expect("org");
    db.create_project(&org, "hy-garden", "同名小区").await.expect("project");
    let stranger = NewUser {
        org,
        login: "bie-zhuguan".into(),
        password_hash: loopwork_server::auth::hash_password("bie-zhuguan-password").expect("hash"),
        role: loopwork_sync_core::Role::Supervisor,
        display_name: "别家主管".into(),
        phone: None,
    };
    db.create_user(&stranger, 0).await.expect("user");
    loopwork_tests::login_at(&server.base, "bie-zhuguan", "bie-zhuguan-password").await.token
}
