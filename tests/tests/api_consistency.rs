//! Every route answers the way docs/web.md says, on SQLite and PostgreSQL: one error envelope
//! for bad JSON, the documented limits enforced, sign-in throttled, the same 404 for an order
//! the caller may not see, and headers every response carries.

use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    bad_bodies_get_the_error_envelope_on_every_route,
    wrong_passwords_are_throttled_per_login_and_answered_with_retry_after,
    queue_parameters_are_held_to_their_documented_ranges,
    an_order_the_caller_may_not_see_is_not_found_on_every_staff_route,
    an_owner_reports_through_the_app_only,
    every_response_carries_nosniff_and_a_bounded_request_id,
    texts_follow_sync_core_s_rules,
);

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
}

async fn bad_bodies_get_the_error_envelope_on_every_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await;
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;
    for (method, path) in [
        (post.clone(), "/api/v1/login"),
        (post.clone(), "/api/v1/settings/webhooks"),
        (put.clone(), "/api/v1/settings/closing-authority"),
        (put.clone(), "/api/v1/settings/sla"),
        (put.clone(), "/api/v1/settings/closed-loop"),
        (put.clone(), "/api/v1/settings/escalation"),
        (put.clone(), "/api/v1/settings/webhook-destinations"),
    ] {
        let (status, body, _) = send(&server, method, path, Some(&admin.token), "{not json").await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_json", "{path}: {body}");
        assert!(body["error"]["message_zh"].is_string(), "{path}: {body}");
    }
    // Login refuses what openapi.json does not allow.
    let unknown = json!({ "login": "kefu", "password": loopwork_server::demo::DEMO_PASSWORD, "admin": true });
    let (status, body, _) = send(&server, post.clone(), "/api/v1/login", None, &unknown.to_string()).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_json")), "{body}");
    let long_name =
        json!({ "login": "kefu", "password": loopwork_server::demo::DEMO_PASSWORD, "device_name": "x".repeat(101) });
    let (status, body, _) = send(&server, post, "/api/v1/login", None, &long_name.to_string()).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_input")), "{body}");
    server.stop().await.drop_database().await;
}

async fn wrong_passwords_are_throttled_per_login_and_answered_with_retry_after(backend: Backend) {
    let server = TestServer::start(backend).await;
    let login = |password: &str| json!({ "login": "wang", "password": password }).to_string();
    for attempt in 0..loopwork_server::auth::ACCOUNT_FAILURES {
        let (status, body, _) = send(&server, reqwest::Method::POST, "/api/v1/login", None, &login("guess")).await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    // Locked: even the right password is refused until the lock ends, and says how long.
    let (status, body, headers) =
        send(&server, reqwest::Method::POST, "/api/v1/login", None, &login(loopwork_server::demo::DEMO_PASSWORD)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    let wait: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // Another login is not locked (the address allows more failures than one login).
    let other = json!({ "login": "kefu", "password": loopwork_server::demo::DEMO_PASSWORD }).to_string();
    let (status, _, _) = send(&server, reqwest::Method::POST, "/api/v1/login", None, &other).await;
    assert_eq!(status, 200);
    // An unknown login is answered like a wrong password.
    let ghost = json!({ "login": "nobody-here", "password": "guess" }).to_string();
    let (status, body, _) = send(&server, reqwest::Method::POST, "/api/v1/login", None, &ghost).await;
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("bad_credentials")));
    server.stop().await.drop_database().await;
}

async fn queue_parameters_are_held_to_their_documented_ranges(backend: Backend) {
    let server = TestServer::start(backend).await;
    let desk = server.login("kefu").await;
    for query in ["limit=0", "limit=501", "hour_of_week=168", "hour_of_week=-1"] {
        let (status, body) = server.call(&desk.token, "GET", &format!("/api/v1/orders?{query}"), None).await;
        assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_query")), "{query}: {body}");
    }
    let (status, all) = server.call(&desk.token, "GET", "/api/v1/orders?limit=500", None).await;
    assert_eq!(status, 200);
    assert!(!all.as_array().expect("rows").is_empty(), "the demo has orders");
    // `%` and `_` are what the user typed, not wildcards.
    for wildcard in ["%25", "_", "%25%25"] {
        let (status, rows) = server.call(&desk.token, "GET", &format!("/api/v1/orders?q={wildcard}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(rows.as_array().expect("rows").len(), 0, "q={wildcard}");
    }
    server.stop().await.drop_database().await;
}

async fn an_order_the_caller_may_not_see_is_not_found_on_every_staff_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let desk = server.login("kefu").await;
    let elsewhere = loopwork_sync_core::OrderId::new();
    for route in ["", "/audit", "/contact", "/contact/reveals", "/sla-events"] {
        let (status, body) = server.call(&desk.token, "GET", &format!("/api/v1/orders/{elsewhere}{route}"), None).await;
        assert_eq!((status, body["error"]["code"].clone()), (404, json!("not_found")), "{route}: {body}");
    }
    server.stop().await.drop_database().await;
}

async fn an_owner_reports_through_the_app_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.login("yezhu1502").await;
    let report = |channel: &str| {
        json!({ "kind": "repair", "category": "water_electric", "channel": channel, "project": "hy-garden",
                "building": "3", "unit": "3-1502", "description": "阳台地漏返水" })
    };
    let (status, body) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report("hotline"))).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_channel")), "{body}");
    let (status, body) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report("app"))).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await.drop_database().await;
}

async fn every_response_carries_nosniff_and_a_bounded_request_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let desk = server.login("kefu").await;
    let client = reqwest::Client::new();
    let long = "a".repeat(200);
    for (path, token) in
        [("/healthz", None), ("/api/v1/me", Some(&desk.token)), ("/api/v1/me", None), ("/nowhere", None)]
    {
        let mut request = client.get(format!("{}{path}", server.base)).header("x-request-id", &long);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{path}");
        let id = response.headers()["x-request-id"].to_str().expect("ascii");
        assert!(!id.is_empty() && id.len() <= 64, "{path}: an over-long request id is replaced: {id}");
    }
    let kept =
        client.get(format!("{}/healthz", server.base)).header("x-request-id", "call-42").send().await.expect("ok");
    assert_eq!(kept.headers()["x-request-id"], "call-42", "a reasonable id is kept");
    let sync = client
        .post(format!("{}/sync/v1", server.base))
        .bearer_auth(&desk.token)
        .body(vec![0u8; 3])
        .send()
        .await
        .expect("sync");
    assert_eq!(sync.status(), 400);
    assert_eq!(sync.headers()["x-content-type-options"], "nosniff");
    server.stop().await.drop_database().await;
}

/// The JSON API follows sync-core's text rules, as the phones and the desk page do: a
/// description may be as long as sync-core allows (4,000 characters), and a cancellation needs
/// its reason like a rejection (`missing_text`).
async fn texts_follow_sync_core_s_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let desk = server.login("kefu").await;
    let long = "渗".repeat(3_000);
    let register = |description: &str| {
        json!({ "kind": "repair", "category": "water_electric", "grade": "serious", "channel": "hotline",
                "project": "hy-garden", "building": "3", "unit": "3-1502", "description": description })
    };
    let (status, order) = server.call(&desk.token, "POST", "/api/v1/orders", Some(register(&long))).await;
    assert_eq!(status, 201, "{order}");
    let (status, body) = server.call(&desk.token, "POST", "/api/v1/orders", Some(register(&"渗".repeat(4_001)))).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("text_too_long")), "{body}");
    let id = order["id"].as_str().expect("id");
    let path = format!("/api/v1/orders/{id}/actions");
    let (status, body) = server.call(&desk.token, "POST", &path, Some(json!({ "action": "cancel" }))).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("missing_text")), "{body}");
    // The rule is served with the vocabulary, so the pages ask for the text it needs.
    let (_, vocabulary) = server.call(&desk.token, "GET", "/api/v1/vocabulary", None).await;
    let needs = |code: &str| {
        vocabulary["actions"].as_array().expect("actions").iter().find(|a| a["code"] == code).expect(code)["requires_text"]
            .clone()
    };
    assert_eq!((needs("cancel"), needs("reject"), needs("accept")), (json!(true), json!(true), json!(false)));
    // Roles carry their English label too, not their code.
    let roles = vocabulary["roles"].as_array().expect("roles");
    let dispatcher = roles.iter().find(|r| r["code"] == "dispatcher").expect("dispatcher");
    assert_eq!((dispatcher["zh"].clone(), dispatcher["en"].clone()), (json!("客服/调度"), json!("Customer service")));
    let (status, body) =
        server.call(&desk.token, "POST", &path, Some(json!({ "action": "cancel", "text": "业主已自行修好" }))).await;
    assert_eq!((status, body["status"].clone()), (200, json!("cancelled")), "{body}");
    server.stop().await.drop_database().await;
}
