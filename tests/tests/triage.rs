//! The assistant through the API (`POST /api/v1/triage`) on SQLite and PostgreSQL: a
//! life-safety message is urgent and never abstained, a second report of an open incident is
//! offered as its duplicate, the reply carries the SLA promise, and only office staff ask.

use loopwork_tests::{Backend, TestServer, error_code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    a_life_safety_message_is_urgent_with_a_reply_and_its_promise,
    a_second_report_of_an_open_incident_is_offered_as_its_duplicate,
    only_office_staff_ask_and_bad_input_is_refused,
);

async fn triage(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    server.call(token, "POST", "/api/v1/triage", Some(body)).await
}

async fn a_life_safety_message_is_urgent_with_a_reply_and_its_promise(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let before = server.state.clock.now_ms();
    let (status, answer) = triage(&server, &kefu.token, json!({"text": "3栋电梯又坏了有人困在里面"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["urgent"].as_bool(), answer["abstain"].as_bool()), (Some(true), Some(false)), "{answer}");
    assert_eq!(answer["rule"]["code"], "lift_trapped");
    assert_eq!(answer["category"], "elevator");
    assert!(matches!(answer["grade"].as_str(), Some("severe" | "critical")), "{answer}");
    assert_eq!(answer["fields"].as_array().map(Vec::len), Some(4));
    assert_eq!(answer["model"].as_str().map(str::len), Some(12));
    // The demo's SLA book answers severe orders within minutes, counted from now.
    let promise = answer["promise_at"].as_i64().expect("a promise");
    assert!(promise > before && promise <= before + 24 * 3_600_000, "{answer}");
    let reply = answer["reply"].as_str().expect("reply");
    assert!(reply.contains("电梯") && reply.contains("{number}"), "{reply}");
    assert!(!reply.contains("{promise}"), "the promise slot is filled: {reply}");

    let (status, answer) = triage(&server, &kefu.token, json!({"text": "请问物业费怎么交，可以用微信吗"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["kind"].as_str(), answer["urgent"].as_bool()), (Some("inquiry"), Some(false)), "{answer}");
    assert!(answer["rule"].is_null());
}

async fn a_second_report_of_an_open_incident_is_offered_as_its_duplicate(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let first = json!({
        "kind": "repair", "category": "water_electric", "grade": "serious", "channel": "hotline",
        "project": "hy-garden", "building": "5", "unit": "2-0801",
        "description": "5栋家里突然停水了，厨房卫生间都没水",
    });
    let (status, made) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(first)).await;
    assert_eq!(status, 201, "{made}");
    let elsewhere = json!({
        "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
        "project": "hy-garden", "building": "5", "unit": "3-1001",
        "description": "卧室的灯不亮了",
    });
    let (status, _) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(elsewhere)).await;
    assert_eq!(status, 201);
    let ask =
        json!({"text": "5栋这边家里也停水了，一点水都没有", "project": "hy-garden", "building": "5", "unit": "2-0802"});
    // The scanner reads descriptions into the queue within a few seconds.
    let mut answer = Value::Null;
    for _ in 0..100 {
        let (status, got) = triage(&server, &kefu.token, ask.clone()).await;
        assert_eq!(status, 200, "{got}");
        answer = got;
        if answer["duplicates"].as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let duplicates = answer["duplicates"].as_array().expect("duplicates");
    assert_eq!(duplicates.len(), 1, "only the alike order: {answer}");
    assert_eq!(duplicates[0]["order"]["id"], made["id"]);
    let similarity = duplicates[0]["similarity"].as_f64().expect("similarity");
    assert!(similarity > 0.25 && similarity <= 1.0, "{similarity}");
    // Another building's report is not offered.
    let (_, other) = triage(
        &server,
        &kefu.token,
        json!({"text": "家里也停水了，一点水都没有", "project": "hy-garden", "building": "6"}),
    )
    .await;
    assert_eq!(other["duplicates"], json!([]), "{other}");
}

async fn only_office_staff_ask_and_bad_input_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    for login in ["yezhu1502", "wang"] {
        let session = server.login(login).await;
        let (status, body) = triage(&server, &session.token, json!({"text": "电梯坏了"})).await;
        assert_eq!((status, error_code(&body)), (403, "forbidden"), "{login}: {body}");
    }
    let kefu = server.login("kefu").await;
    for (body, code) in [
        (json!({"text": "   "}), "invalid_text"),
        (json!({"text": "漏".repeat(2001)}), "invalid_text"),
        (json!({"text": "电梯坏了", "extra": 1}), "invalid_json"),
        (json!({"words": "电梯坏了"}), "invalid_json"),
    ] {
        let (status, answer) = triage(&server, &kefu.token, body.clone()).await;
        assert_eq!((status, error_code(&answer)), (400, code), "{body}: {answer}");
    }
    let (status, _) = server.call("", "POST", "/api/v1/triage", Some(json!({"text": "电梯坏了"}))).await;
    assert_eq!(status, 401);
}
