//! A dispatcher bound to projects (小区) serves those only, on SQLite and PostgreSQL: their
//! phone and the desk hold, list and write their projects' orders and nothing else; an order
//! moved into one of their projects reaches them whole, and one moved out is taken back with the
//! reason. A dispatcher bound to none (the company's call centre) still serves every project.

use loopwork_server::store::NewUser;
use loopwork_sync_core::protocol::{OrderBytes, SyncRequest};
use loopwork_sync_core::{Action, Category, Channel, Grade, Kind, Location, NewOrder, OrderId, Role, UserId};
use loopwork_tests::{Backend, Device, SyncError, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    a_project_s_dispatcher_serves_that_project_only,
    only_a_dispatcher_is_bound_and_only_to_a_real_project,
    a_late_order_is_told_to_the_dispatchers_of_its_project,
);

const PASSWORD: &str = "qs-kefu-password";

fn leak(project: &str, unit: &str, reporter: UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::unit(project, "1", unit),
        description: "楼道水管渗水".into(),
        reporter,
        occurred_at_ms: None,
    }
}

/// A user of the demo organization, bound to `projects` if a dispatcher.
async fn staff(server: &TestServer, login: &str, role: Role, projects: &[&str]) -> UserId {
    let db = server.state.db.as_ref();
    let kefu = db.user_by_login("kefu").await.expect("kefu").expect("demo user");
    let hash = loopwork_server::auth::hash_password(PASSWORD).expect("hash");
    let user = NewUser {
        org: kefu.org.clone(),
        login: login.into(),
        password_hash: hash,
        role,
        display_name: format!("{login} 客服"),
        phone: None,
    };
    let id = db.create_user(&user, 0).await.expect("user");
    for project in projects {
        db.bind_project(id, project).await.expect("bind");
    }
    id
}

async fn call(server: &TestServer, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    server.call(token, method, path, body).await
}

use loopwork_tests::error_code as code;

async fn synced(device: &mut Device) {
    device.synced().await;
}

async fn a_project_s_dispatcher_serves_that_project_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu_org = server.state.db.user_by_login("kefu").await.expect("kefu").expect("demo user").org;
    server.state.db.create_project(&kefu_org, "qs-court", "清水苑").await.expect("project");
    staff(&server, "kefu-qs", Role::Dispatcher, &["qs-court"]).await;
    let mut call_centre = server.device("kefu").await;
    let mut qs = server.device_with_password("kefu-qs", PASSWORD).await;
    let owner = server.login("yezhu1502").await;

    let hy_order = call_centre.replica.create(&leak("hy-garden", "1-101", owner.user)).expect("create");
    let qs_order = call_centre.replica.create(&leak("qs-court", "1-202", owner.user)).expect("create");
    call_centre.replica.add_note(hy_order, "已通知物业工程部").expect("note");
    synced(&mut call_centre).await;

    // The phone: the project's orders, nothing of the other project.
    synced(&mut qs).await;
    assert!(qs.replica.order(qs_order).is_ok(), "the project's order is held");
    assert!(qs.replica.order(hy_order).is_err(), "another project's order is not");
    assert_eq!(qs.replica.order_count().expect("count"), 1);
    assert!(call_centre.replica.order(qs_order).is_ok() && call_centre.replica.order(hy_order).is_ok());

    // Writing another project's order, or creating one there, is refused and stores nothing.
    let doc = call_centre.replica.order(hy_order).expect("order");
    let mut copy = doc.clone().with_device(qs.session.device);
    let before = copy.heads();
    copy.add_note(&qs.identity(), "越权写入", 0).expect("local edit");
    let request = SyncRequest {
        cursor: None,
        limit: 10,
        changes: vec![OrderBytes { order: hy_order, bytes: copy.changes_since(&before)[0].1.clone() }],
        relayed: vec![],
        reconcile: vec![],
        receipts: vec![],
    };
    match qs.post(request.encode()).await {
        Err(SyncError::Refused { status: 403, code }) => assert_eq!(code, "out_of_scope"),
        other => panic!("expected out_of_scope, got {other:?}"),
    }
    let mut elsewhere = server.device_with_password("kefu-qs", PASSWORD).await;
    elsewhere.replica.create(&leak("hy-garden", "1-303", owner.user)).expect("local");
    match elsewhere.sync().await {
        Err(SyncError::Refused { status: 403, code }) => assert_eq!(code, "out_of_scope"),
        other => panic!("expected out_of_scope, got {other:?}"),
    }
    let own = qs.replica.create(&leak("qs-court", "1-404", owner.user)).expect("create");
    synced(&mut qs).await;
    synced(&mut call_centre).await;
    assert_eq!(call_centre.replica.order(hy_order).expect("order").notes().len(), 1, "nothing refused was stored");
    assert!(call_centre.replica.order(own).is_ok(), "an order of their own project is registered");

    // The desk: the queue, the detail and everything about one order stop at the project.
    let token = qs.session.token.clone();
    let (status, queue) = call(&server, &token, "GET", "/api/v1/orders", None).await;
    assert_eq!(status, 200, "{queue}");
    let ids: Vec<&str> = queue.as_array().expect("rows").iter().filter_map(|r| r["id"].as_str()).collect();
    assert!(ids.contains(&qs_order.to_string().as_str()) && !ids.contains(&hy_order.to_string().as_str()), "{queue}");
    for path in ["", "/audit", "/contact", "/contact/reveals", "/sla-events"] {
        let (status, body) = call(&server, &token, "GET", &format!("/api/v1/orders/{hy_order}{path}"), None).await;
        assert_eq!((status, code(&body)), (404, "not_found"), "{path}: {body}");
        let (status, body) = call(&server, &token, "GET", &format!("/api/v1/orders/{qs_order}{path}"), None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) =
        call(&server, &token, "POST", &format!("/api/v1/orders/{hy_order}/notes"), Some(json!({ "text": "越权备注" })))
            .await;
    assert_eq!(status, 404, "{body}");
    let (_, me) = call(&server, &token, "GET", "/api/v1/me", None).await;
    assert_eq!(me["projects"].as_array().map(|p| p.len()), Some(1), "{me}");
    assert_eq!(me["projects"][0]["code"], "qs-court", "{me}");
    let registration = |project: &str| {
        json!({
            "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
            "project": project, "building": "1", "unit": "1-505", "description": "门禁失灵",
        })
    };
    let (status, body) = call(&server, &token, "POST", "/api/v1/orders", Some(registration("hy-garden"))).await;
    assert_eq!((status, code(&body)), (403, "out_of_scope"), "{body}");
    let (status, body) = call(&server, &token, "POST", "/api/v1/orders", Some(registration("qs-court"))).await;
    assert_eq!(status, 201, "{body}");
    // The panels: their project's, whether named or not; never another's.
    let (status, body) = call(&server, &token, "GET", "/api/v1/dashboard/efficiency", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server, &token, "GET", "/api/v1/dashboard/heatmap?project=hy-garden", None).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    // The call centre moves the other project's order here: it reaches the project's phone
    // whole; moved back, it is taken back with the reason.
    let moved = Location::unit("qs-court", "1", "1-606");
    call_centre.replica.set_location(hy_order, &moved).expect("move");
    synced(&mut call_centre).await;
    synced(&mut qs).await;
    let arrived = qs.replica.order(hy_order).expect("the moved order arrives");
    assert_eq!(arrived.notes().len(), 1, "whole, with what was written before the move");
    assert_eq!(qs.replica.revocation(hy_order).expect("revocation"), None);
    call_centre.replica.set_location(hy_order, &Location::unit("hy-garden", "1", "1-101")).expect("move back");
    synced(&mut call_centre).await;
    synced(&mut qs).await;
    assert_eq!(qs.replica.revocation(hy_order).expect("revocation").as_deref(), Some("moved"));
    let (status, _) = call(&server, &token, "GET", &format!("/api/v1/orders/{hy_order}"), None).await;
    assert_eq!(status, 404);
    // Moved in and out again before the phone syncs: it never sees the order.
    let passing = call_centre.replica.create(&leak("hy-garden", "1-707", owner.user)).expect("create");
    synced(&mut call_centre).await;
    call_centre.replica.set_location(passing, &Location::unit("qs-court", "1", "1-707")).expect("move");
    synced(&mut call_centre).await;
    call_centre.replica.set_location(passing, &Location::unit("hy-garden", "1", "1-707")).expect("move back");
    synced(&mut call_centre).await;
    synced(&mut qs).await;
    assert!(qs.replica.order(passing).is_err(), "an order given and taken back before the pull is not shown");

    // The call centre, bound to no project, still holds every order.
    let mut fresh = server.device("kefu").await;
    synced(&mut fresh).await;
    for id in [hy_order, qs_order, own] {
        assert!(fresh.replica.order(id).is_ok());
    }
    server.stop().await.drop_database().await;
}

async fn only_a_dispatcher_is_bound_and_only_to_a_real_project(backend: Backend) {
    let server = TestServer::start(backend).await;
    let db = server.state.db.as_ref();
    let wang = db.user_by_login("wang").await.expect("wang").expect("demo user");
    let kefu = db.user_by_login("kefu").await.expect("kefu").expect("demo user");
    let refused = |r: Result<(), loopwork_server::store::StoreError>| {
        loopwork_server::error::ApiError::from(r.expect_err("refused")).code
    };
    assert_eq!(refused(db.bind_project(wang.id, "hy-garden").await), "not_a_dispatcher");
    assert_eq!(refused(db.bind_project(kefu.id, "no-such-garden").await), "unknown_project");
    // Refused bindings leave the call centre serving everything.
    let mut desk = server.device("kefu").await;
    synced(&mut desk).await;
    assert_eq!(desk.replica.order_count().expect("count"), 4, "the demo organization's four orders");
    server.stop().await.drop_database().await;
}

/// Who among `devices` was told of the order's response breach.
async fn told_of_breach(server: &TestServer, devices: &[&Device], id: OrderId) -> Vec<bool> {
    let mut told = Vec::new();
    for device in devices {
        let (status, feed) = call(server, &device.session.token, "GET", "/api/v1/notifications", None).await;
        assert_eq!(status, 200, "{feed}");
        let heard = feed
            .as_array()
            .expect("list")
            .iter()
            .any(|n| n["order_id"] == id.to_string() && n["stage"] == "response" && n["level"] == "breach");
        told.push(heard);
    }
    told
}

async fn a_late_order_is_told_to_the_dispatchers_of_its_project(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu_org = server.state.db.user_by_login("kefu").await.expect("kefu").expect("demo user").org;
    server.state.db.create_project(&kefu_org, "qs-court", "清水苑").await.expect("project");
    staff(&server, "kefu-hy", Role::Dispatcher, &["hy-garden"]).await;
    staff(&server, "kefu-qs", Role::Dispatcher, &["qs-court"]).await;
    let mut call_centre = server.device("kefu").await;
    let hy = server.device_with_password("kefu-hy", PASSWORD).await;
    let qs = server.device_with_password("kefu-qs", PASSWORD).await;
    let wang = server.login("wang").await;
    let mut critical = leak("hy-garden", "1-101", wang.user);
    critical.grade = Grade::Critical;
    let id = call_centre.replica.create(&critical).expect("create");
    call_centre.replica.transition(id, Action::Assign(wang.user), None).expect("assign");
    synced(&mut call_centre).await;
    let created = call_centre.replica.order(id).expect("order").created_at_ms();

    // Nobody accepts within the 30 minutes: the breach reaches the call centre and the order's
    // project's dispatcher, not the other project's.
    loopwork_server::escalation::tick(&server.state, created + 31 * 60_000).await.expect("tick");
    assert_eq!(told_of_breach(&server, &[&call_centre, &hy, &qs], id).await, [true, true, false]);
    server.stop().await.drop_database().await;
}
