//! The desk's JSON API over HTTP, on SQLite and PostgreSQL (docs/web.md): registration with its
//! archived number and duplicates, assignment, a phone completing offline, the owner confirming
//! through the API, the queue's SLA marks, the dashboards and KPIs counting it; and every kind of
//! bad input refused with its code, changing nothing.

use loopwork_server::escalation;
use loopwork_sync_core::{Action, Clock, OrderId, Status, SystemClock};
use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    a_complaint_goes_round_the_loop_through_the_desk_api,
    bad_input_is_refused_precisely_and_changes_nothing,
    the_queue_colours_by_the_organizations_book,
    a_registration_sent_again_with_its_idempotency_key_makes_one_order,
    the_preferred_window_is_registered_moved_and_cleared_by_its_rules,
);

const MINUTE: i64 = 60_000;

/// What a refused request is: (what, who, path, body, status, error code).
type Case = (&'static str, &'static str, String, Option<Value>, u16, &'static str);

async fn call(server: &TestServer, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    server.call(token, method, path, body).await
}

use loopwork_tests::error_code as code;

fn complaint(unit: &str) -> Value {
    json!({
        "kind": "complaint", "category": "water_electric", "grade": "minor", "channel": "hotline",
        "project": "hy-garden", "building": "3", "unit": unit,
        "description": "楼上漏水,天花板滴水", "caller_name": "张先生", "caller_phone": "13800001111",
    })
}

/// Runs the scanner now, so the queue's marks and the dashboards' columns are current.
async fn scanned(server: &TestServer) {
    escalation::tick(&server.state, SystemClock.now_ms()).await.expect("scan");
}

async fn a_complaint_goes_round_the_loop_through_the_desk_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let owner = server.login("yezhu1502").await;
    let mut wang = server.device("wang").await;
    // The dashboards below count from here (the demo organization has orders of its own).
    let start = SystemClock.now_ms();

    // Registration: the archived number at once; the caller stays out of the document.
    let (status, registered) = call(&server, &kefu.token, "POST", "/api/v1/orders", Some(complaint("3-1502"))).await;
    assert_eq!(status, 201, "{registered}");
    let id: OrderId = registered["id"].as_str().expect("id").parse().expect("order id");
    let number = registered["number"].as_str().expect("number").to_owned();
    assert!(!number.starts_with("临-"), "an official number, not a provisional one: {number}");
    let doc = server.state.db.order_doc(&kefu.principal(), id).await.expect("doc").expect("stored");
    let text = String::from_utf8_lossy(&doc);
    assert!(!text.contains("13800001111") && !text.contains("张先生"), "no caller data in the document");

    // The caller's phone matched no owner, so the order is for the unit's owner: they see it.
    let (_, mine) = call(&server, &owner.token, "GET", "/api/v1/orders", None).await;
    assert!(mine.as_array().expect("rows").iter().any(|r| r["id"] == id.to_string()), "{mine}");

    // A second call about the same unit and category is offered as a duplicate, and linked.
    let (status, second) = call(&server, &kefu.token, "POST", "/api/v1/orders", Some(complaint("3-1502"))).await;
    assert_eq!(status, 201);
    let duplicates = second["duplicates"].as_array().expect("duplicates");
    assert!(duplicates.iter().any(|d| d["id"] == id.to_string()), "{second}");
    let second_id = second["id"].as_str().expect("id");
    let (status, linked) = call(
        &server,
        &kefu.token,
        "POST",
        &format!("/api/v1/orders/{second_id}/link"),
        Some(json!({ "to": id.to_string() })),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked["status"], "cancelled");
    assert!(linked["notes"][0]["text"].as_str().expect("note").contains(&number));

    // The detail: caller masked, the actions customer service may take.
    let (_, detail) = call(&server, &kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(detail["caller"]["phone"], "138****1111", "{detail}");
    assert_ne!(detail["caller"]["name"], "张先生");
    let actions: Vec<&str> = detail["actions"].as_array().expect("actions").iter().filter_map(Value::as_str).collect();
    assert!(
        actions.contains(&"assign") && actions.contains(&"cancel") && !actions.contains(&"complete"),
        "{actions:?}"
    );

    // Grade changed with a reason, then assigned.
    let (status, graded) = call(
        &server,
        &kefu.token,
        "POST",
        &format!("/api/v1/orders/{id}/classify"),
        Some(json!({ "grade": "serious", "reason": "整栋多户反映" })),
    )
    .await;
    assert_eq!(status, 200, "{graded}");
    assert_eq!(graded["grade"], "serious");
    assert!(
        graded["notes"]
            .as_array()
            .expect("notes")
            .iter()
            .any(|n| n["text"].as_str().unwrap_or("").contains("整栋多户反映"))
    );
    let (_, technicians) = call(&server, &kefu.token, "GET", "/api/v1/technicians", None).await;
    let wang_row = technicians.as_array().expect("list").iter().find(|t| t["name"] == "王师傅").expect("wang").clone();
    assert_eq!(wang_row["user_id"], wang.session.user.to_string());
    let (status, assigned) = call(
        &server,
        &kefu.token,
        "POST",
        &format!("/api/v1/orders/{id}/actions"),
        Some(json!({ "action": "assign", "assignee": wang.session.user.to_string() })),
    )
    .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["assignee_name"], "王师傅");

    // The phone takes it, works offline and syncs later.
    wang.synced().await;
    wang.online = false;
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.replica.transition(id, action, None).expect("work");
    }
    wang.replica.add_note(id, "更换了漏水的水管接头").expect("note");
    wang.online = true;
    wang.synced().await;
    let (_, detail) = call(&server, &kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(detail["status"], "awaiting_confirmation");

    // The owner confirms through the API (the H5 page's call) with a low rating.
    let (status, refused) = call(
        &server,
        &owner.token,
        "POST",
        &format!("/api/v1/orders/{id}/actions"),
        Some(json!({ "action": "confirm" })),
    )
    .await;
    assert_eq!((status, code(&refused)), (400, "missing_rating"));
    let (status, confirmed) = call(
        &server,
        &owner.token,
        "POST",
        &format!("/api/v1/orders/{id}/actions"),
        Some(json!({ "action": "confirm", "rating": 2, "text": "修得慢" })),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["rating"], 2);
    assert_eq!(confirmed["return_visit_required"], true);
    assert_eq!(confirmed["caller"], Value::Null, "owners do not see the desk's caller record");
    let timeline = confirmed["timeline"].as_array().expect("timeline");
    assert!(timeline.iter().any(|e| e["what"] == "complete" && e["who"] == "王师傅"), "{timeline:?}");

    // The dashboards count it once the scanner has looked.
    scanned(&server).await;
    let (status, efficiency) =
        call(&server, &kefu.token, "GET", &format!("/api/v1/dashboard/efficiency?from={start}"), None).await;
    assert_eq!(status, 200, "{efficiency}");
    assert_eq!(efficiency["orders"], 1, "the cancelled duplicate is not counted: {efficiency}");
    assert_eq!(efficiency["satisfaction"]["rated"], 1);
    assert_eq!(efficiency["satisfaction"]["average"], 2.0);
    assert_eq!(efficiency["satisfaction"]["share_4_or_more"], 0.0);
    assert_eq!(efficiency["response"]["count"], 1);
    assert_eq!(efficiency["first_time_fix_rate"], 1.0);
    let (_, heat) = call(&server, &kefu.token, "GET", &format!("/api/v1/dashboard/heatmap?from={start}"), None).await;
    let cell = heat["by_building"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["building"] == "3")
        .expect("building 3")
        .clone();
    assert_eq!(cell["count"], 2, "both complaints, the duplicate too: {heat}");
    let hours: i64 = heat["by_hour"].as_array().expect("hours").iter().map(|h| h["count"].as_i64().unwrap_or(0)).sum();
    assert_eq!(hours, 2);
    let (_, clicked) = call(
        &server,
        &kefu.token,
        "GET",
        &format!(
            "/api/v1/orders?kind=complaint&building=3&category=water_electric&from={start}&hour_of_week={}",
            heat["by_hour"][0]["hour_of_week"]
        ),
        None,
    )
    .await;
    assert_eq!(clicked.as_array().expect("rows").len(), 2, "{clicked}");

    // KPIs: supervisors only; Wang completed one, rated 2; 客服小张 registered two.
    let (status, _) = call(&server, &kefu.token, "GET", "/api/v1/kpis", None).await;
    assert_eq!(status, 403);
    let supervisor = server.login("zhuguan").await;
    let (_, kpis) = call(&server, &supervisor.token, "GET", &format!("/api/v1/kpis?from={start}"), None).await;
    let wang_kpi = kpis["technicians"]
        .as_array()
        .expect("technicians")
        .iter()
        .find(|t| t["name"] == "王师傅")
        .expect("wang")
        .clone();
    assert_eq!((wang_kpi["completed"].clone(), wang_kpi["satisfaction"].clone()), (json!(1), json!(2.0)), "{wang_kpi}");
    let kefu_kpi =
        kpis["agents"].as_array().expect("agents").iter().find(|a| a["name"] == "客服小张").expect("kefu").clone();
    assert_eq!(kefu_kpi["registered"], 1, "the cancelled duplicate is not counted: {kefu_kpi}");
    let csv = reqwest::Client::new()
        .get(format!("{}/api/v1/kpis?format=csv&from={start}", server.base))
        .bearer_auth(&supervisor.token)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = csv.headers()["content-disposition"].to_str().expect("ascii").to_owned();
    // 考核_全部项目_<from>-<to>.csv
    assert!(
        disposition.contains("filename*=UTF-8''%E8%80%83%E6%A0%B8_%E5%85%A8%E9%83%A8%E9%A1%B9%E7%9B%AE_"),
        "{disposition}"
    );
    let csv = csv.text().await.expect("text");
    assert!(csv.lines().any(|l| l.contains("王师傅") && l.starts_with("\"维修工\"")), "{csv}");
    assert!(!csv.contains(&wang_kpi["user_id"].as_str().unwrap_or("none").to_owned()), "no user ids in the CSV");

    // Customer service records the return visit. The order is 较重, which the organization's
    // closing authority leaves to a supervisor: the detail says so rather than just leaving
    // `close` out; the supervisor's detail offers it.
    let actions_of = |d: &Value| {
        d["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (status, visited) = call(
        &server,
        &kefu.token,
        "POST",
        &format!("/api/v1/orders/{id}/actions"),
        Some(json!({ "action": "return_visit", "text": "业主表示已修好" })),
    )
    .await;
    assert_eq!(status, 200, "{visited}");
    assert!(!actions_of(&visited).contains(&"close".to_owned()), "{visited}");
    assert_eq!(visited["closing_needs"], "supervisor", "{visited}");
    let (_, boss_view) = call(&server, &supervisor.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert!(actions_of(&boss_view).contains(&"close".to_owned()), "{boss_view}");
    assert_eq!(boss_view["closing_needs"], Value::Null);

    // No caller name or phone reached the metrics.
    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(!metrics.contains("13800001111") && !metrics.contains("张先生"));
    server.stop().await.drop_database().await;
}

async fn bad_input_is_refused_precisely_and_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let owner = server.login("yezhu1502").await;
    let wang = server.login("wang").await;
    let (_, registered) = call(&server, &kefu.token, "POST", "/api/v1/orders", Some(complaint("3-1502"))).await;
    let id = registered["id"].as_str().expect("id").to_owned();
    let count = |server: &TestServer| {
        let principal = kefu.principal();
        let db = server.state.db.clone();
        async move {
            let filter = loopwork_server::store::OrderFilter { limit: Some(500), ..Default::default() };
            db.query_orders(&principal, &filter, 0).await.expect("list").len()
        }
    };
    let before = count(&server).await;
    let doc_before = server.state.db.order_doc(&kefu.principal(), id.parse().expect("id")).await.expect("doc");

    let raw = |body: &'static str| {
        let url = format!("{}/api/v1/orders", server.base);
        let token = kefu.token.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json error"))
        }
    };
    let (status, body) = raw("{\"kind\": \"complaint\",").await;
    assert_eq!((status, code(&body)), (400, "invalid_json"), "{body}");
    let mut unknown = complaint("3-1502");
    unknown["priority"] = json!("high");
    let cases: Vec<Case> = vec![
        ("unknown field", "kefu", "/api/v1/orders".into(), Some(unknown), 400, "invalid_json"),
        (
            "unknown kind",
            "kefu",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "rant", "category": "noise", "channel": "hotline", "project": "hy-garden", "unit": "3-1502", "description": "x"}),
            ),
            400,
            "invalid_code",
        ),
        (
            "empty description",
            "kefu",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "repair", "category": "noise", "channel": "hotline", "project": "hy-garden", "unit": "3-1502", "description": "  "}),
            ),
            400,
            "missing_text",
        ),
        (
            "no unit or area",
            "kefu",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "repair", "category": "noise", "channel": "hotline", "project": "hy-garden", "description": "x"}),
            ),
            400,
            "missing_location",
        ),
        (
            "a phone that is not one",
            "kefu",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "repair", "category": "noise", "channel": "hotline", "project": "hy-garden", "unit": "3-1502", "description": "x", "caller_phone": "call me"}),
            ),
            400,
            "invalid_caller",
        ),
        (
            "an owner for another unit",
            "owner",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "repair", "category": "noise", "channel": "app", "project": "hy-garden", "building": "5", "unit": "5-0801", "description": "x"}),
            ),
            403,
            "out_of_scope",
        ),
        (
            "an owner naming a caller",
            "owner",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "repair", "category": "noise", "channel": "app", "project": "hy-garden", "building": "3", "unit": "3-1502", "description": "x", "caller_name": "李四"}),
            ),
            400,
            "invalid_caller",
        ),
        (
            "an unknown project",
            "kefu",
            "/api/v1/orders".into(),
            Some(
                json!({"kind": "repair", "category": "noise", "channel": "hotline", "project": "elsewhere", "unit": "1-101", "description": "x"}),
            ),
            403,
            "out_of_scope",
        ),
        (
            "a technician's order not his",
            "wang",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "accept"})),
            404,
            "not_found",
        ),
        (
            "an owner assigning",
            "owner",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "assign", "assignee": wang.user.to_string()})),
            409,
            "refused",
        ),
        (
            "an unknown action",
            "kefu",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "teleport"})),
            400,
            "invalid_code",
        ),
        (
            "a rating of 7",
            "owner",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "confirm", "rating": 7})),
            400,
            "invalid_rating",
        ),
        (
            "confirming before completion",
            "owner",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "confirm", "rating": 5})),
            409,
            "refused",
        ),
        (
            "assigning to a non-technician",
            "kefu",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "assign", "assignee": owner.user.to_string()})),
            400,
            "unknown_technician",
        ),
        (
            "a rejection without reason",
            "owner",
            format!("/api/v1/orders/{id}/actions"),
            Some(json!({"action": "reject"})),
            400,
            "missing_text",
        ),
        (
            "a blank classification reason",
            "kefu",
            format!("/api/v1/orders/{id}/classify"),
            Some(json!({"grade": "severe", "reason": " "})),
            400,
            "missing_text",
        ),
        (
            "a classification without change",
            "kefu",
            format!("/api/v1/orders/{id}/classify"),
            Some(json!({"reason": "why"})),
            400,
            "nothing_to_change",
        ),
        (
            "an owner classifying",
            "owner",
            format!("/api/v1/orders/{id}/classify"),
            Some(json!({"grade": "severe", "reason": "急"})),
            403,
            "forbidden",
        ),
        (
            "linking to itself",
            "kefu",
            format!("/api/v1/orders/{id}/link"),
            Some(json!({"to": id})),
            400,
            "invalid_link",
        ),
        (
            "an empty bulk",
            "kefu",
            "/api/v1/orders/bulk-assign".into(),
            Some(json!({"ids": [], "assignee": wang.user.to_string()})),
            400,
            "invalid_bulk",
        ),
        (
            "a note too long",
            "kefu",
            format!("/api/v1/orders/{id}/notes"),
            Some(json!({"text": "长".repeat(2_001)})),
            400,
            "text_too_long",
        ),
        (
            "an unknown order",
            "kefu",
            "/api/v1/orders/not-an-order/notes".into(),
            Some(json!({"text": "x"})),
            404,
            "not_found",
        ),
    ];
    for (what, who, path, body, want_status, want_code) in cases {
        let token = match who {
            "kefu" => &kefu.token,
            "owner" => &owner.token,
            _ => &wang.token,
        };
        let (status, answer) = call(&server, token, "POST", &path, body).await;
        assert_eq!((status, code(&answer)), (want_status, want_code), "{what}: {answer}");
        assert!(answer["error"]["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a zh-CN message");
    }
    let reads: Vec<(&str, &str, &str, u16, &str)> = vec![
        ("a bad status", "kefu", "/api/v1/orders?status=lost", 400, "invalid_code"),
        ("a bad boolean", "kefu", "/api/v1/orders?overdue=maybe", 400, "invalid_query"),
        ("an unknown filter", "kefu", "/api/v1/orders?colour=red", 400, "invalid_query"),
        ("a technician's dashboard", "wang", "/api/v1/dashboard/efficiency", 403, "forbidden"),
        ("a backwards period", "kefu", "/api/v1/dashboard/heatmap?from=2000&to=1000", 400, "invalid_period"),
        ("an owner's technician list", "owner", "/api/v1/technicians", 403, "forbidden"),
        ("a dispatcher's KPIs", "kefu", "/api/v1/kpis", 403, "forbidden"),
        ("someone else's order", "wang", "/api/v1/orders/00000000-0000-0000-0000-000000000000", 404, "not_found"),
    ];
    for (what, who, path, want_status, want_code) in reads {
        let token = match who {
            "kefu" => &kefu.token,
            "owner" => &owner.token,
            _ => &wang.token,
        };
        let (status, answer) = call(&server, token, "GET", path, None).await;
        assert_eq!((status, code(&answer)), (want_status, want_code), "{what}: {answer}");
    }
    let (status, answer) = call(&server, "not-a-token", "GET", "/api/v1/orders", None).await;
    assert_eq!((status, code(&answer)), (401, "unauthenticated"), "{answer}");

    // Nothing was created or changed by any of it.
    assert_eq!(count(&server).await, before);
    let doc_after = server.state.db.order_doc(&kefu.principal(), id.parse().expect("id")).await.expect("doc");
    assert_eq!(doc_before, doc_after, "the order is as it was");
    server.stop().await.drop_database().await;
}

async fn the_queue_colours_by_the_organizations_book(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let mut order = complaint("3-1502");
    order["grade"] = json!("critical");
    order["kind"] = json!("repair");
    let (_, registered) = call(&server, &kefu.token, "POST", "/api/v1/orders", Some(order)).await;
    let id = registered["id"].as_str().expect("id").to_owned();
    scanned(&server).await;
    let (_, rows) = call(
        &server,
        &kefu.token,
        "GET",
        &format!("/api/v1/orders?q={}", registered["number"].as_str().expect("n")),
        None,
    )
    .await;
    let row = rows[0].clone();
    assert_eq!(row["id"], id);
    let created = row["created_at"].as_i64().expect("created");
    // The seeded book: a 重大 response within 30 minutes round the clock.
    assert_eq!(row["sla"]["stage"], "response", "{row}");
    assert_eq!(row["sla"]["half_at"], created + 15 * MINUTE);
    assert_eq!(row["sla"]["warn_at"], created + 30 * MINUTE * 3 / 4);
    assert_eq!(row["sla"]["due_at"], created + 30 * MINUTE);
    assert_eq!(row["next_deadline"], created + 30 * MINUTE, "the server's index follows the book");

    // The admin's book moves the marks at the next scan.
    let admin = server.login("admin").await;
    let (_, mut book) = call(&server, &admin.token, "GET", "/api/v1/settings/sla", None).await;
    for policy in book["policies"].as_array_mut().expect("policies") {
        if policy["name"] == "critical" {
            policy["response"]["minutes"] = json!(10);
        }
    }
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/settings/sla", server.base))
        .bearer_auth(&admin.token)
        .json(&book)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status().as_u16(), 204);
    // The book's change alone makes the scanner look at every open order again.
    scanned(&server).await;
    let (_, detail) = call(&server, &kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(detail["sla"]["due_at"], created + 10 * MINUTE, "{detail}");
    assert_eq!(detail["countdown"]["response_due"], created + 10 * MINUTE);
    assert_eq!(detail["status"], Status::New.code());

    // Overdue: nothing yet.
    let (_, overdue) = call(&server, &kefu.token, "GET", "/api/v1/orders?overdue=true", None).await;
    assert_eq!(overdue, json!([]));
    server.stop().await.drop_database().await;
}

/// A dispatcher's browser retries a registration whose answer was lost (a cut response): with
/// the same `Idempotency-Key` it gets the first order back, not a second one; the key with
/// another registration, or a malformed key, is refused; another user's same key is theirs.
async fn a_registration_sent_again_with_its_idempotency_key_makes_one_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let boss = server.login("zhuguan").await;
    let http = reqwest::Client::new();
    let send = |token: &str, key: &str, body: &Value| {
        http.post(format!("{}/api/v1/orders", server.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let count = || async {
        let (_, rows) = call(&server, &kefu.token, "GET", "/api/v1/orders?limit=500", None).await;
        rows.as_array().expect("rows").len()
    };
    let before = count().await;
    let first = send(&kefu.token, "reg-7f3a", &complaint("3-1502")).await.expect("post");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let again = send(&kefu.token, "reg-7f3a", &complaint("3-1502")).await.expect("post");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!((&again["id"], &again["number"]), (&first["id"], &first["number"]), "{again}");
    assert_eq!(count().await, before + 1, "one order for two sends");

    let other = send(&kefu.token, "reg-7f3a", &complaint("3-1501")).await.expect("post");
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.expect("json");
    assert_eq!(code(&other), "idempotency_key_reused");
    for bad in ["", &"k".repeat(65), "含中文"] {
        let refused = send(&kefu.token, bad, &complaint("3-1502")).await;
        if let Ok(refused) = refused {
            assert_eq!(refused.status(), 400, "{bad:?}");
            let body: Value = refused.json().await.expect("json");
            assert_eq!(code(&body), "invalid_idempotency_key", "{bad:?}");
        } // a header value reqwest itself refuses to send is no request at all
    }
    let theirs = send(&boss.token, "reg-7f3a", &complaint("3-1502")).await.expect("post");
    assert_eq!(theirs.status(), 201);
    assert!(theirs.headers().get("idempotent-replayed").is_none(), "a key is the user's own");
    assert_eq!(count().await, before + 2);
    server.stop().await.drop_database().await;
}

async fn the_preferred_window_is_registered_moved_and_cleared_by_its_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await.token;
    let owner = server.login("yezhu1502").await.token;
    let wang = server.login("wang").await;
    let now = SystemClock.now_ms();
    let window = json!({ "from": now + 20 * 60 * MINUTE, "to": now + 23 * 60 * MINUTE });
    // Codes as the caller says them: 3栋, 1502室.
    let mut body = complaint("3-1502室");
    body["building"] = json!("3栋");
    body["appointment"] = window.clone();
    let (status, made) = call(&server, &kefu, "POST", "/api/v1/orders", Some(body.clone())).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    let (_, detail) = call(&server, &kefu, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(detail["appointment"], window);
    assert_eq!((detail["building"].as_str(), detail["unit"].as_str()), (Some("3"), Some("3-1502")));
    for bad in [
        json!({ "from": now, "to": now }),
        json!({ "from": now, "to": now + 8 * 24 * 60 * MINUTE }),
        json!({ "from": now }),
    ] {
        let mut body = complaint("3-1502");
        body["appointment"] = bad.clone();
        let (status, answer) = call(&server, &kefu, "POST", "/api/v1/orders", Some(body)).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let path = format!("/api/v1/orders/{id}/appointment");
    // The owner moves it before acceptance.
    let moved = json!({ "from": now + 44 * 60 * MINUTE, "to": now + 47 * 60 * MINUTE });
    let (status, detail) = call(&server, &owner, "PUT", &path, Some(moved.clone())).await;
    assert_eq!((status, detail["appointment"].clone()), (200, moved.clone()), "{detail}");
    // Assigned and accepted: the technician's phone has the window offline; he may move it, the
    // owner no more.
    let assign = json!({ "action": "assign", "assignee": wang.user.to_string() });
    assert_eq!(call(&server, &kefu, "POST", &format!("/api/v1/orders/{id}/actions"), Some(assign)).await.0, 200);
    let mut phone = server.device("wang").await;
    phone.synced().await;
    let order: OrderId = id.parse().expect("order id");
    let held = phone.replica.order(order).expect("order").appointment().expect("the window is on the phone");
    assert_eq!((held.from_ms, held.to_ms), (now + 44 * 60 * MINUTE, now + 47 * 60 * MINUTE));
    let accept = json!({ "action": "accept" });
    assert_eq!(call(&server, &wang.token, "POST", &format!("/api/v1/orders/{id}/actions"), Some(accept)).await.0, 200);
    let (status, answer) = call(&server, &owner, "PUT", &path, Some(window.clone())).await;
    assert_eq!((status, code(&answer)), (409, "refused"), "{answer}");
    let (status, detail) = call(&server, &wang.token, "PUT", &path, Some(window.clone())).await;
    assert_eq!((status, detail["appointment"].clone()), (200, window.clone()));
    let li = server.login("li").await.token;
    let (status, _) = call(&server, &li, "PUT", &path, Some(moved.clone())).await;
    assert_eq!(status, 404, "another technician does not see the order");
    let (status, answer) = call(&server, &kefu, "PUT", &path, Some(json!({ "from": now, "to": now - 1 }))).await;
    assert_eq!((status, code(&answer)), (400, "invalid_appointment"));
    // The desk clears it; clearing nothing is refused.
    let (status, detail) = call(&server, &kefu, "DELETE", &path, None).await;
    assert_eq!((status, detail["appointment"].clone()), (200, Value::Null));
    let (status, _) = call(&server, &kefu, "DELETE", &path, None).await;
    assert_eq!(status, 400);
}
