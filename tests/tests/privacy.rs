//! Personal data over HTTP, on SQLite and PostgreSQL: masked contacts, logged reveals, an owner's
//! export and erasure. No owner's phone number or name reaches documents or metrics.

use loopwork_sync_core::{Action, Category, Channel, Grade, Kind, Location, NewOrder};
use loopwork_tests::{Backend, Device, TestServer, on_both_backends};
use serde_json::Value;

on_both_backends!(
    contacts_are_masked_and_every_reveal_is_logged,
    a_caller_s_number_is_revealed_to_office_staff_only_and_logged,
    an_owner_exports_and_erases_their_data
);

/// The demo owner of 3-1502 (see server/src/demo.rs): phone 13800138005.
const OWNER_PHONE: &str = "13800138005";

async fn synced(device: &mut Device) {
    device.synced().await;
}

fn leak(reporter: loopwork_sync_core::UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Minor,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "阳台地漏返水".into(),
        reporter,
        occurred_at_ms: None,
    }
}

async fn call(method: reqwest::Method, url: String, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new().request(method, url).bearer_auth(token).send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn contacts_are_masked_and_every_reveal_is_logged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let li = server.device("li").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak(owner.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;
    let url = |path: &str| format!("{}/api/v1/orders/{id}/contact{path}", server.base);

    let (status, masked) = call(reqwest::Method::GET, url(""), &wang.session.token).await;
    assert_eq!(status, 200);
    assert_eq!(masked["phone"], "138****8005");
    let stars = "*".repeat("业主(3-1502)".chars().count() - 1);
    assert_eq!(masked["name"], format!("业{stars}"), "the first character, then stars");
    assert_eq!(masked["revealed"], false);
    let (status, _) = call(reqwest::Method::GET, url(""), &li.session.token).await;
    assert_eq!(status, 403, "a technician never given the order sees nothing");
    let (status, _) = call(reqwest::Method::GET, url(""), &owner.token).await;
    assert_eq!(status, 403);

    let (status, full) = call(reqwest::Method::POST, url("/reveal"), &wang.session.token).await;
    assert_eq!(status, 200);
    assert_eq!(full["phone"], OWNER_PHONE);
    assert_eq!(full["revealed"], true);

    // Reassigned to Li: Wang may no longer reveal; Li may.
    desk.replica.transition(id, Action::Assign(li.session.user), None).expect("reassign");
    synced(&mut desk).await;
    let (status, _) = call(reqwest::Method::POST, url("/reveal"), &wang.session.token).await;
    assert_eq!(status, 403);
    let (status, _) = call(reqwest::Method::POST, url("/reveal"), &li.session.token).await;
    assert_eq!(status, 200);
    let (status, _) = call(reqwest::Method::POST, url("/reveal"), &desk.session.token).await;
    assert_eq!(status, 200, "customer service calls owners back");

    let (status, log) = call(reqwest::Method::GET, url("/reveals"), &desk.session.token).await;
    assert_eq!(status, 200);
    let who: Vec<&str> = log.as_array().expect("list").iter().map(|r| r["user_id"].as_str().unwrap_or("")).collect();
    let expected = [wang.session.user.to_string(), li.session.user.to_string(), desk.session.user.to_string()];
    assert_eq!(who, expected.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, _) = call(reqwest::Method::GET, url("/reveals"), &wang.session.token).await;
    assert_eq!(status, 403);

    // Nothing personal in the documents or the metrics.
    let doc = desk.replica.order(id).expect("order").save_uncompressed();
    let bytes = String::from_utf8_lossy(&doc);
    assert!(!bytes.contains(OWNER_PHONE) && !bytes.contains("业主(3-1502)"));
    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(!metrics.contains(OWNER_PHONE) && !metrics.contains("业主"));
    server.stop().await.drop_database().await;
}

async fn an_owner_exports_and_erases_their_data(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut owner = server.device("yezhu1502").await;
    synced(&mut owner).await;
    let id = owner.replica.create(&NewOrder { channel: Channel::App, ..leak(owner.session.user) }).expect("report");
    owner.replica.add_note(id, "工作日晚上七点后在家").expect("note");
    synced(&mut owner).await;

    let (status, export) =
        call(reqwest::Method::GET, format!("{}/api/v1/me/export", server.base), &owner.session.token).await;
    assert_eq!(status, 200);
    assert_eq!(export["user"]["phone"], OWNER_PHONE);
    assert_eq!(export["user"]["name"], "业主(3-1502)");
    assert_eq!(export["units"][0]["unit"], "3-1502");
    let orders = export["orders"].as_array().expect("orders");
    let mine = orders.iter().find(|o| o["id"] == id.to_string()).expect("the reported order");
    assert_eq!(mine["description"], "阳台地漏返水");
    assert_eq!(mine["notes_by_me"][0]["text"], "工作日晚上七点后在家");

    // The owner also called the hotline: the desk registered the call with their name and phone.
    let (status, called) = server
        .call(
            &desk.session.token,
            "POST",
            "/api/v1/orders",
            Some(serde_json::json!({
                "kind": "repair", "category": "water_electric", "channel": "hotline", "project": "hy-garden",
                "building": "3", "unit": "3-1502", "description": "厨房水管滴水",
                "caller_name": "张先生", "caller_phone": OWNER_PHONE,
            })),
        )
        .await;
    assert_eq!(status, 201, "{called}");
    let by_phone: loopwork_sync_core::OrderId = called["id"].as_str().expect("id").parse().expect("order id");
    let org = desk.session.org.clone();
    assert_eq!(
        server.state.db.caller(&org, by_phone).await.expect("caller").expect("recorded").1.as_deref(),
        Some(OWNER_PHONE)
    );

    // The estate register knows them by their number.
    let desk_token = desk.session.token.clone();
    let in_register = || async {
        let lookup = serde_json::json!({ "phone": OWNER_PHONE });
        let (_, found) = server.call(&desk_token, "POST", "/api/v1/estate/callers", Some(lookup)).await;
        found["residents"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(in_register().await, 1);
    let (status, _) =
        call(reqwest::Method::POST, format!("{}/api/v1/me/erase", server.base), &desk.session.token).await;
    assert_eq!(status, 403, "staff accounts are closed by an administrator");
    let (status, _) =
        call(reqwest::Method::POST, format!("{}/api/v1/me/erase", server.base), &owner.session.token).await;
    assert_eq!(status, 204);
    assert!(owner.sync().await.is_err(), "every device of the owner is signed out");
    let (status, _) =
        call(reqwest::Method::GET, format!("{}/api/v1/me/export", server.base), &owner.session.token).await;
    assert_eq!(status, 401);

    // The orders stay whole: they only ever held the owner's id.
    synced(&mut desk).await;
    let order = desk.replica.order(id).expect("order");
    assert_eq!(order.reporter().expect("reporter"), owner.session.user);
    assert_eq!(order.notes().len(), 1);
    let (status, contact) =
        call(reqwest::Method::GET, format!("{}/api/v1/orders/{id}/contact", server.base), &desk.session.token).await;
    assert_eq!(status, 200);
    assert!(contact["phone"].is_null());
    assert_eq!(contact["name"], "已****");
    let (status, trail) =
        call(reqwest::Method::GET, format!("{}/api/v1/orders/{id}/audit", server.base), &desk.session.token).await;
    assert_eq!(status, 200);
    assert!(trail.as_array().expect("trail").len() >= 3);
    // The call's record no longer holds their name or number, in the table as on the detail.
    assert_eq!(server.state.db.caller(&org, by_phone).await.expect("caller"), Some((None, None)));
    // Their entry in the estate register is gone; the other resident of the unit stays.
    assert_eq!(in_register().await, 0);
    let (_, unit) = server
        .call(&desk.session.token, "GET", "/api/v1/estate/unit?project=hy-garden&building=3&unit=3-1502", None)
        .await;
    let names: Vec<&str> =
        unit["residents"].as_array().expect("residents").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["王小明"]);
    server.stop().await.drop_database().await;
}

async fn a_caller_s_number_is_revealed_to_office_staff_only_and_logged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let registration = |caller: bool| {
        let mut body = serde_json::json!({
            "kind": "complaint", "category": "noise", "channel": "hotline", "project": "hy-garden",
            "building": "3", "unit": "3-1502", "description": "楼上装修噪音",
        });
        if caller {
            body["caller_name"] = "李女士".into();
            body["caller_phone"] = "139-0013-9999".into();
        }
        body
    };
    let (_, called) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(registration(true))).await;
    let id = called["id"].as_str().expect("id").to_owned();
    let (_, detail) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(detail["caller"], serde_json::json!({ "name": "李**", "phone": "139****9999" }));
    for login in ["wang", "yezhu1502"] {
        let session = server.login(login).await;
        let (status, _) =
            server.call(&session.token, "POST", &format!("/api/v1/orders/{id}/caller/reveal"), None).await;
        assert_eq!(status, 403, "{login}");
    }
    let (_, log) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}/contact/reveals"), None).await;
    assert_eq!(log.as_array().map(Vec::len), Some(0), "refusals are not reveals");
    let (status, revealed) =
        server.call(&kefu.token, "POST", &format!("/api/v1/orders/{id}/caller/reveal"), None).await;
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed, serde_json::json!({ "name": "李女士", "phone": "13900139999" }));
    let (_, log) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}/contact/reveals"), None).await;
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    assert_eq!(log[0]["user_id"], kefu.user.to_string());
    // An order registered without a caller has none to reveal.
    let (_, plain) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(registration(false))).await;
    let plain = plain["id"].as_str().expect("id");
    let (status, _) = server.call(&kefu.token, "POST", &format!("/api/v1/orders/{plain}/caller/reveal"), None).await;
    assert_eq!(status, 404);
    server.stop().await.drop_database().await;
}
