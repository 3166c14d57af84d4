//! The asset register and preventive maintenance plans (docs/maintenance.md) on SQLite and
//! PostgreSQL: supervisors register a lift and its plan, checked by sync-core's rules when it is
//! added and shown with its next services; dispatchers read; technicians, other projects and
//! other organizations reach nothing; bad input is refused with its documented code.

use loopwork_server::store::NewUser;
use loopwork_sync_core::Role;
use loopwork_tests::{Backend, TestServer, error_code, login_at, on_both_backends};
use serde_json::json;

on_both_backends!(a_supervisor_registers_a_lift_and_its_plan_and_sees_its_next_services);

async fn a_supervisor_registers_a_lift_and_its_plan_and_sees_its_next_services(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhuguan = server.login("zhuguan").await.token;
    let kefu = server.login("kefu").await.token;
    let wang = server.login("wang").await.token;

    let lift = json!({
        "project": "hy-garden", "building": "3", "place": "3单元电梯井", "name": "3号电梯",
        "asset_type": "elevator", "make": "奥的斯", "installed_on": "2016-05-01",
        "inspection_due_on": "2027-04-30",
    });
    let (status, body) = server.call(&kefu, "POST", "/api/v1/assets", Some(lift.clone())).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, asset) = server.call(&zhuguan, "POST", "/api/v1/assets", Some(lift.clone())).await;
    assert_eq!(status, 201, "{asset}");
    let id = asset["id"].as_str().expect("id").to_owned();
    assert_eq!((asset["building"].as_str(), asset["asset_type"].as_str()), (Some("3"), Some("elevator")));
    let (status, body) = server.call(&zhuguan, "POST", "/api/v1/assets", Some(lift.clone())).await;
    assert_eq!((status, error_code(&body)), (409, "asset_exists"), "{body}");
    for (field, value, code) in [
        ("asset_type", json!("spaceship"), "invalid_asset_type"),
        ("name", json!(""), "invalid_asset"),
        ("place", json!("梯".repeat(65)), "invalid_asset"),
        ("installed_on", json!("2016-13-01"), "invalid_date"),
        ("building", json!("3/4"), "invalid_code"),
        ("colour", json!("red"), "invalid_json"),
    ] {
        let mut bad = lift.clone();
        bad[field] = value;
        bad["name"] = if field == "name" { bad["name"].clone() } else { json!("另一台") };
        let (status, body) = server.call(&zhuguan, "POST", "/api/v1/assets", Some(bad)).await;
        assert_eq!((status, error_code(&body)), (400, code), "{field}: {body}");
    }

    // Every other Monday from 5 January 2026, at most 15 days apart.
    let plan = json!({
        "rule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "starts_on": "2026-01-05", "max_gap_days": 15,
        "lead_days": 3, "checklist": ["检查曳引机", "润滑导轨", "测试紧急呼叫"],
    });
    let plans = format!("/api/v1/assets/{id}/plans");
    let (status, body) = server.call(&kefu, "POST", &plans, Some(plan.clone())).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    for (rule, gap, lead) in [
        ("FREQ=WEEKLY;INTERVAL=3", 15, 3),
        ("FREQ=HOURLY", 15, 3),
        ("FREQ=SOMETIMES", 15, 3),
        ("FREQ=DAILY", 0, 0),
        ("FREQ=DAILY", 70_000, 3),
        ("FREQ=DAILY", 15, 15),
        ("FREQ=DAILY", 15, -1),
    ] {
        let mut bad = plan.clone();
        bad["rule"] = json!(rule);
        bad["max_gap_days"] = json!(gap);
        bad["lead_days"] = json!(lead);
        let (status, body) = server.call(&zhuguan, "POST", &plans, Some(bad)).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_plan"), "{rule} {gap} {lead}: {body}");
    }
    // A first date mistyped a thousand years back, or written otherwise than YYYY-MM-DD.
    for starts in ["1026-01-05", "2026-1-5", "20260105"] {
        let mut bad = plan.clone();
        bad["starts_on"] = json!(starts);
        let (status, body) = server.call(&zhuguan, "POST", &plans, Some(bad)).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_date"), "{starts}: {body}");
    }
    let (status, created) = server.call(&zhuguan, "POST", &plans, Some(plan.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["checklist"], plan["checklist"]);

    // From 10 February: the 16 February service falls in the Spring Festival holiday and is due
    // on Saturday the 14th (调休); done then, the next (2 March) is due by the gap on Saturday
    // 28 February (调休 again).
    let (status, detail) = server.call(&kefu, "GET", &format!("/api/v1/assets/{id}?from=2026-02-10"), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["asset_type_zh"], "电梯");
    let upcoming = &detail["plans"][0]["upcoming"];
    let days: Vec<(&str, &str)> = upcoming
        .as_array()
        .expect("upcoming")
        .iter()
        .map(|o| (o["nominal"].as_str().expect("nominal"), o["due"].as_str().expect("due")))
        .collect();
    assert_eq!(days, [("2026-02-16", "2026-02-14"), ("2026-03-02", "2026-02-28"), ("2026-03-16", "2026-03-13")]);
    assert_eq!(upcoming[0]["key"].as_str().map(|k| k.ends_with(":2026-02-16")), Some(true));

    let (status, body) = server.call(&kefu, "GET", &format!("/api/v1/assets/{id}?from=9999-01-01"), None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_date"), "{body}");
    let (status, listed) = server.call(&kefu, "GET", "/api/v1/assets?project=hy-garden", None).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)), "{listed}");
    let qr = reqwest::Client::new()
        .get(format!("{}/api/v1/assets/{id}/qr.svg", server.base))
        .bearer_auth(&kefu)
        .send()
        .await
        .expect("qr");
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.expect("svg").contains("<svg"));

    // A technician, a dispatcher of another project and another organization reach nothing.
    let (status, _) = server.call(&wang, "GET", &format!("/api/v1/assets/{id}"), None).await;
    assert_eq!(status, 403);
    let db = server.state.db.as_ref();
    let org = db.user_by_login("kefu").await.expect("kefu").expect("demo user").org;
    db.create_project(&org, "qs-court", "清水苑").await.expect("project");
    let elsewhere = NewUser {
        org,
        login: "qs-kefu".into(),
        password_hash: loopwork_server::auth::hash_password("qs-kefu-password").expect("hash"),
        role: Role::Dispatcher,
        display_name: "清水苑客服".into(),
        phone: None,
    };
    let user = db.create_user(&elsewhere, 0).await.expect("user");
    db.bind_project(user, "qs-court").await.expect("bind");
    let qs = login_at(&server.base, "qs-kefu", "qs-kefu-password").await.token;
    let (status, body) = server.call(&qs, "GET", &format!("/api/v1/assets/{id}"), None).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, _) = server.call(&qs, "GET", "/api/v1/assets?project=hy-garden", None).await;
    assert_eq!(status, 404);
    let other_org = db.create_organization("别家物业", 0).await.expect("org");
    db.create_project(&other_org, "hy-garden", "同名小区").await.expect("project");
    let stranger = NewUser {
        org: other_org,
        login: "bie-zhuguan".into(),
        password_hash: loopwork_server::auth::hash_password("bie-zhuguan-password").expect("hash"),
        role: Role::Supervisor,
        display_name: "别家主管".into(),
        phone: None,
    };
    // A supervisor serves every project of their organization, which has one of the same code.
    db.create_user(&stranger, 0).await.expect("user");
    let bie = login_at(&server.base, "bie-zhuguan", "bie-zhuguan-password").await.token;
    for (method, path) in [("GET", format!("/api/v1/assets/{id}")), ("DELETE", format!("/api/v1/assets/{id}"))] {
        let (status, body) = server.call(&bie, method, &path, None).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{method} {path}: {body}");
    }
    let (status, _) = server.call(&bie, "POST", &plans, Some(plan.clone())).await;
    assert_eq!(status, 404);
    let (status, theirs) = server.call(&bie, "GET", "/api/v1/assets?project=hy-garden", None).await;
    assert_eq!((status, theirs), (200, json!([])));

    // A plan reached through another asset's address: not found.
    let pump = json!({"project": "hy-garden", "place": "水泵房", "name": "2号泵", "asset_type": "water_pump"});
    let (status, pump) = server.call(&zhuguan, "POST", "/api/v1/assets", Some(pump)).await;
    assert_eq!((status, pump["building"].clone()), (201, serde_json::Value::Null), "{pump}");
    let plan_id = created["id"].as_str().expect("plan id");
    let elsewhere = format!("/api/v1/assets/{}/plans/{plan_id}", pump["id"].as_str().expect("id"));
    assert_eq!(server.call(&zhuguan, "DELETE", &elsewhere, None).await.0, 404);
    // At most 20 plans an asset.
    for _ in 1..20 {
        assert_eq!(server.call(&zhuguan, "POST", &plans, Some(plan.clone())).await.0, 201);
    }
    let (status, body) = server.call(&zhuguan, "POST", &plans, Some(plan.clone())).await;
    assert_eq!((status, error_code(&body)), (409, "too_many_plans"), "{body}");
    let (_, detail) = server.call(&kefu, "GET", &format!("/api/v1/assets/{id}"), None).await;
    for extra in detail["plans"].as_array().expect("plans").iter().skip(1) {
        let extra = extra["id"].as_str().expect("id");
        assert_eq!(server.call(&zhuguan, "DELETE", &format!("{plans}/{extra}"), None).await.0, 204);
    }

    // Removing the plan, then the asset (and with it any plan left).
    assert_eq!(server.call(&zhuguan, "DELETE", &format!("{plans}/{plan_id}"), None).await.0, 204);
    assert_eq!(server.call(&zhuguan, "DELETE", &format!("{plans}/{plan_id}"), None).await.0, 404);
    assert_eq!(server.call(&zhuguan, "POST", &plans, Some(plan)).await.0, 201);
    assert_eq!(server.call(&zhuguan, "DELETE", &format!("/api/v1/assets/{id}"), None).await.0, 204);
    assert_eq!(server.call(&kefu, "GET", &format!("/api/v1/assets/{id}"), None).await.0, 404);
}
