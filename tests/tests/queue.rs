//! The desk's queue on SQLite and PostgreSQL: priority order (open, then the more serious grade,
//! then the nearest deadline), pages with their total, the sorts, search over descriptions and
//! callers' and residents' names and numbers without showing them, exports as XLSX and CSV, and
//! saved views.

use loopwork_sync_core::{Action, Clock, HoldReason, OrderId};
use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    the_queue_ranks_by_grade_then_deadline_and_pages_with_its_total,
    the_queue_finds_descriptions_callers_and_residents_without_showing_them,
    the_order_list_exports_as_xlsx_and_csv,
    saved_views_are_each_user_s_own,
    held_and_completed_orders_keep_a_clock_and_a_phone_confirmation_is_recorded_as_such,
    a_registration_assigns_in_the_same_request,
    sla_compliance_has_no_figure_while_every_order_runs,
);

use loopwork_tests::error_code as code;

fn registration(grade: &str, unit: &str, description: &str) -> Value {
    json!({
        "kind": "repair", "category": "water_electric", "grade": grade, "channel": "hotline",
        "project": "hy-garden", "building": "7", "unit": unit, "description": description,
    })
}

/// `GET` with its `X-Total-Count`.
async fn page(server: &TestServer, token: &str, query: &str) -> (u16, Value, Option<i64>) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/orders?{query}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("queue");
    let status = response.status().as_u16();
    let total = response.headers().get("x-total-count").and_then(|v| v.to_str().ok()?.parse().ok());
    (status, response.json().await.unwrap_or(Value::Null), total)
}

fn numbers(rows: &Value) -> Vec<String> {
    rows.as_array().expect("rows").iter().filter_map(|r| r["number"].as_str().map(str::to_owned)).collect()
}

async fn the_queue_ranks_by_grade_then_deadline_and_pages_with_its_total(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let mut made = Vec::new();
    for (grade, unit) in [("minor", "1-0101"), ("critical", "1-0102"), ("serious", "1-0201"), ("severe", "1-0202")] {
        let (status, body) =
            server.call(&kefu.token, "POST", "/api/v1/orders", Some(registration(grade, unit, "楼道灯不亮"))).await;
        assert_eq!(status, 201, "{body}");
        made.push(body["number"].as_str().expect("number").to_owned());
    }
    // Building 7 holds only these: critical, severe, serious, minor.
    let (status, rows, total) = page(&server, &kefu.token, "building=7").await;
    assert_eq!((status, total), (200, Some(4)));
    assert_eq!(numbers(&rows), [made[1].clone(), made[3].clone(), made[2].clone(), made[0].clone()]);
    let grades: Vec<&str> = rows.as_array().expect("rows").iter().filter_map(|r| r["grade"].as_str()).collect();
    assert_eq!(grades, ["critical", "severe", "serious", "minor"]);
    // Pages: disjoint, in the same order, each with the whole total.
    let (_, first, total_1) = page(&server, &kefu.token, "building=7&limit=3").await;
    let (_, second, total_2) = page(&server, &kefu.token, "building=7&limit=3&offset=3").await;
    assert_eq!((total_1, total_2), (Some(4), Some(4)));
    assert_eq!([numbers(&first), numbers(&second)].concat(), numbers(&rows));
    // Other orders.
    let (_, by_created, _) = page(&server, &kefu.token, "building=7&sort=created_asc").await;
    assert_eq!(numbers(&by_created), made);
    let (_, by_number, _) = page(&server, &kefu.token, "building=7&sort=number").await;
    let mut sorted = made.clone();
    sorted.sort();
    assert_eq!(numbers(&by_number), sorted);
    // The whole organization's total, past the first page.
    let (_, all, total) = page(&server, &kefu.token, "limit=1").await;
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    assert_eq!(total, Some(8), "four demo orders and these four");
    for query in ["sort=grade", "offset=-1", "offset=1000001", "limit=501"] {
        let (status, body, _) = page(&server, &kefu.token, query).await;
        assert_eq!((status, code(&body)), (400, "invalid_query"), "{query}: {body}");
    }
    server.stop().await.drop_database().await;
}

async fn the_queue_finds_descriptions_callers_and_residents_without_showing_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let mut called = registration("minor", "2-0301", "卫生间下水道堵塞,已经返水");
    called["caller_name"] = json!("李女士");
    called["caller_phone"] = json!("139 1234 5678");
    let (_, made) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(called)).await;
    let number = made["number"].as_str().expect("number").to_owned();
    // The description is read from the document by the scanner, within a few seconds.
    let mut found = Vec::new();
    for _ in 0..100 {
        let (_, rows, _) = page(&server, &kefu.token, "q=下水道").await;
        found = numbers(&rows);
        if !found.is_empty() {
            assert_eq!(rows[0]["description"], "卫生间下水道堵塞,已经返水");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found, std::slice::from_ref(&number), "the description is searched");
    for q in ["李女士", "13912345678", "+86 139-1234-5678"] {
        let (_, rows, total) = page(&server, &kefu.token, &format!("q={}", urlencode(q))).await;
        assert_eq!((numbers(&rows), total), (vec![number.clone()], Some(1)), "{q}");
        let text = rows.to_string();
        assert!(!text.contains("李女士") && !text.contains("13912345678"), "the caller is matched, not shown: {text}");
    }
    // Part of a name or number finds nothing: only the whole one matches.
    for q in ["李", "1391234"] {
        let (_, rows, _) = page(&server, &kefu.token, &format!("q={}", urlencode(q))).await;
        assert!(!numbers(&rows).contains(&number), "{q}");
    }
    // A resident of the unit in the register: the unit's orders (the demo's two of 3-1502).
    let (_, rows, total) = page(&server, &kefu.token, &format!("q={}", urlencode("王芳"))).await;
    assert_eq!(total, Some(2), "{rows}");
    assert!(rows.as_array().expect("rows").iter().all(|r| r["unit"] == "3-1502"));
    assert!(!rows.to_string().contains("王芳"));
    server.stop().await.drop_database().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn the_order_list_exports_as_xlsx_and_csv(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let get = |path: String, token: String| {
        let base = server.base.clone();
        async move {
            let response =
                reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(token).send().await.expect("export");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers, response.bytes().await.expect("body").to_vec())
        }
    };
    let limits = loopwork_sheets::Limits { max_rows: 100, max_unpacked: 16 << 20 };
    let (status, headers, bytes) =
        get("/api/v1/orders/export/xlsx?project=hy-garden&status=open".into(), kefu.token.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    // 工单_和园小区_截至YYYYMMDD.xlsx, percent-encoded as RFC 6266 asks.
    assert!(
        disposition.contains("filename*=UTF-8''%E5%B7%A5%E5%8D%95_%E5%92%8C%E5%9B%AD%E5%B0%8F%E5%8C%BA_"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".xlsx"), "{disposition}");
    let (format, rows) = loopwork_sheets::read(&bytes, limits).expect("an XLSX workbook");
    assert_eq!(format, loopwork_sheets::Format::Xlsx);
    assert_eq!(rows[0][0], "单号");
    assert_eq!(rows.len(), 1 + 4, "the header and the demo's four open orders");
    assert!(rows[1..].iter().all(|r| r[0].starts_with("GD")), "{rows:?}");
    assert!(rows[1..].iter().any(|r| r[2] == "水电" && r[4] == "已派单"), "labels, not codes: {rows:?}");
    let (status, headers, bytes) = get("/api/v1/orders/export/csv?grade=severe".into(), kefu.token.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-total-count"], "1");
    assert!(bytes.starts_with("\u{FEFF}".as_bytes()), "Excel reads it as UTF-8");
    let (format, rows) = loopwork_sheets::read(&bytes, limits).expect("CSV");
    assert_eq!((format, rows.len()), (loopwork_sheets::Format::Csv, 2));
    assert_eq!(rows[1][3], "严重");
    let wang = server.login("wang").await;
    let (status, _, _) = get("/api/v1/orders/export/xlsx".into(), wang.token.clone()).await;
    assert_eq!(status, 403);
    let (status, _, _) = get("/api/v1/orders/export/pdf".into(), kefu.token.clone()).await;
    assert_eq!(status, 404);
    // The printed work order's QR code: office staff, as SVG.
    let (_, rows, _) = page(&server, &kefu.token, "limit=1").await;
    let id = rows[0]["id"].as_str().expect("id").to_owned();
    let (status, headers, svg) = get(format!("/api/v1/orders/{id}/qr.svg"), kefu.token.clone()).await;
    assert_eq!((status, headers["content-type"].to_str().ok()), (200, Some("image/svg+xml")));
    assert!(String::from_utf8_lossy(&svg).contains("<svg"), "an SVG image");
    let (status, _, _) = get(format!("/api/v1/orders/{id}/qr.svg"), wang.token.clone()).await;
    assert_eq!(status, 403);
    server.stop().await.drop_database().await;
}

async fn saved_views_are_each_user_s_own(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let boss = server.login("zhuguan").await;
    let save = |name: &str, query: &str| Some(json!({ "name": name, "query": query }));
    let (status, view) =
        server.call(&kefu.token, "POST", "/api/v1/me/views", save("严重未完结", "status=open&grade=severe")).await;
    assert_eq!(status, 201, "{view}");
    let (status, again) =
        server.call(&kefu.token, "POST", "/api/v1/me/views", save("严重未完结", "status=open&grade=critical")).await;
    assert_eq!(status, 201);
    assert_eq!(again["id"], view["id"], "saved again under its name: replaced");
    for (name, query) in
        [("", "status=open"), ("坏的", "grade=severe&nonsense=1"), ("坏的", "limit=9999"), ("坏的", "status=lost")]
    {
        let (status, body) = server.call(&kefu.token, "POST", "/api/v1/me/views", save(name, query)).await;
        assert_eq!((status, code(&body)), (400, "invalid_view"), "{name} {query}");
    }
    let (_, mine) = server.call(&kefu.token, "GET", "/api/v1/me/views", None).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(mine[0]["query"], "status=open&grade=critical");
    let (_, theirs) = server.call(&boss.token, "GET", "/api/v1/me/views", None).await;
    assert_eq!(theirs, json!([]));
    let id = view["id"].as_str().expect("id");
    let (status, _) = server.call(&boss.token, "DELETE", &format!("/api/v1/me/views/{id}"), None).await;
    assert_eq!(status, 404, "another user's view");
    let (status, _) = server.call(&kefu.token, "DELETE", &format!("/api/v1/me/views/{id}"), None).await;
    assert_eq!(status, 204);
    server.stop().await.drop_database().await;
}

/// The queue row of one order once the scanner has read `ready` into it.
async fn row_when(server: &TestServer, token: &str, number: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let (_, rows, _) = page(server, token, &format!("q={number}")).await;
        if let Some(row) = rows.as_array().and_then(|r| r.first()).filter(|r| ready(r)) {
            return row.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("order {number} never became ready");
}

async fn held_and_completed_orders_keep_a_clock_and_a_phone_confirmation_is_recorded_as_such(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let mut wang = server.device("wang").await;
    let (_, made) =
        server.call(&kefu.token, "POST", "/api/v1/orders", Some(registration("minor", "3-0101", "阳台漏水"))).await;
    let (id, number) =
        (made["id"].as_str().expect("id").to_owned(), made["number"].as_str().expect("number").to_owned());
    let order: OrderId = id.parse().expect("order id");
    let (status, _) = server
        .call(
            &kefu.token,
            "POST",
            &format!("/api/v1/orders/{id}/actions"),
            Some(json!({ "action": "assign", "assignee": wang.session.user.to_string() })),
        )
        .await;
    assert_eq!(status, 200);
    wang.synced().await;
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Hold(HoldReason::OwnerNotHome)] {
        wang.replica.transition(order, action, None).expect("work");
    }
    wang.synced().await;
    // On hold: why, in the row (the desk shows it instead of a running deadline).
    let row =
        row_when(&server, &kefu.token, &number, |r| r["status"] == "on_hold" && !r["hold_reason"].is_null()).await;
    assert_eq!(row["hold_reason"], "owner_not_home");
    assert!(row["auto_confirm_at"].is_null());
    wang.replica.transition(order, Action::Resume, None).expect("resume");
    wang.replica.transition(order, Action::Complete, None).expect("complete");
    let before = loopwork_sync_core::SystemClock.now_ms();
    wang.synced().await;
    // Awaiting the owner: when the server confirms for them (the default wait, three days).
    let row = row_when(&server, &kefu.token, &number, |r| r["status"] == "awaiting_confirmation").await;
    assert!(row["hold_reason"].is_null() || row["status"] != "on_hold");
    let at = row["auto_confirm_at"].as_i64().expect("auto_confirm_at");
    let three_days = 3 * 86_400_000;
    assert!((before + three_days - 60_000..=before + three_days + 60_000).contains(&at), "{at} vs {before}");
    // The owner answers by phone: customer service records it, with the owner's rating.
    let (status, detail) = server
        .call(
            &kefu.token,
            "POST",
            &format!("/api/v1/orders/{id}/actions"),
            Some(json!({ "action": "confirm", "rating": 4 })),
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!((detail["status"].as_str(), detail["rating"].as_i64()), (Some("confirmed"), Some(4)));
    let confirm = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["action"] == "confirm" || e["what"] == "confirm")
        .expect("the confirmation in the timeline")
        .clone();
    assert_eq!(confirm["role"], "dispatcher", "recorded as taken by customer service: {confirm}");
    // A technician may not.
    let (_, other) =
        server.call(&kefu.token, "POST", "/api/v1/orders", Some(registration("minor", "3-0102", "门锁坏了"))).await;
    let other = other["id"].as_str().expect("id").to_owned();
    let wang_token = wang.session.token.clone();
    let (status, body) = server
        .call(
            &wang_token,
            "POST",
            &format!("/api/v1/orders/{other}/actions"),
            Some(json!({ "action": "confirm", "rating": 5 })),
        )
        .await;
    assert!(status == 403 || status == 404 || status == 409, "{status} {body}");
    server.stop().await.drop_database().await;
}

async fn a_registration_assigns_in_the_same_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let wang = server.login("wang").await;
    let mut body = registration("serious", "4-0101", "电梯按钮失灵");
    body["assignee"] = json!(wang.user.to_string());
    let (status, made) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(body.clone())).await;
    assert_eq!(status, 201, "{made}");
    let (_, detail) =
        server.call(&kefu.token, "GET", &format!("/api/v1/orders/{}", made["id"].as_str().expect("id")), None).await;
    assert_eq!(
        (detail["status"].as_str(), detail["assignee"].as_str()),
        (Some("assigned"), Some(wang.user.to_string().as_str()))
    );
    // The technician has it on the next sync, like any assignment.
    let (_, mine) = server.call(&wang.token, "GET", "/api/v1/orders", None).await;
    assert!(mine.as_array().expect("rows").iter().any(|r| r["id"] == made["id"]));
    for (who, assignee, wanted) in [
        ("kefu", kefu.user.to_string(), (400, "unknown_technician")),
        ("kefu", "not-a-user".to_owned(), (400, "unknown_technician")),
    ] {
        let mut body = body.clone();
        body["assignee"] = json!(assignee);
        let token = if who == "kefu" { &kefu.token } else { &wang.token };
        let (status, refused) = server.call(token, "POST", "/api/v1/orders", Some(body)).await;
        assert_eq!((status, code(&refused)), wanted, "{refused}");
    }
    let owner = server.login("yezhu1502").await;
    let own = json!({
        "kind": "repair", "category": "water_electric", "channel": "app", "project": "hy-garden",
        "building": "3", "unit": "3-1502", "description": "水龙头滴水", "assignee": wang.user.to_string(),
    });
    let (status, refused) = server.call(&owner.token, "POST", "/api/v1/orders", Some(own)).await;
    assert_eq!((status, code(&refused)), (403, "forbidden"), "{refused}");
    server.stop().await.drop_database().await;
}

async fn sla_compliance_has_no_figure_while_every_order_runs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    // The demo's four orders are new or assigned: none completed, none late. Once the scanner
    // has counted them, compliance has no figure (not 100 %).
    for _ in 0..100 {
        let (status, e) = server.call(&kefu.token, "GET", "/api/v1/dashboard/efficiency", None).await;
        assert_eq!(status, 200, "{e}");
        if e["orders"] == 4 {
            assert!(e["sla_compliance"].is_null(), "{e}");
            server.stop().await.drop_database().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the demo's orders were never counted");
}
