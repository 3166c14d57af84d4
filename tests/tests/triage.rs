//! The assistant through the API on SQLite and PostgreSQL: `POST /api/v1/triage` (a
//! life-safety message is urgent and never abstained, a second report of an open incident is
//! offered as its duplicate, the reply carries the SLA promise, only office staff ask), and
//! every order read on arrival: an owner's urgent report flagged and told at once, answered by
//! a person (taken or set aside), a desk registration confirmed at once.

use loopwork_tests::{Backend, OffsetClock, TestServer, error_code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    a_life_safety_message_is_urgent_with_a_reply_and_its_promise,
    a_second_report_of_an_open_incident_is_offered_as_its_duplicate,
    only_office_staff_ask_and_bad_input_is_refused,
    an_owner_s_urgent_report_is_flagged_told_and_answered_by_a_person,
    a_desk_registration_is_confirmed_at_once_and_a_set_aside_suggestion_changes_nothing,
    an_organization_s_model_learns_from_its_labels_is_judged_on_the_frozen_set_and_rolls_back,
    the_schedule_retrains_only_organizations_with_enough_new_labels,
    an_order_first_read_long_after_it_was_made_is_history_not_news,
    an_organization_s_reply_templates_are_used_and_checked,
);

async fn an_organization_s_reply_templates_are_used_and_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let admin = server.login("admin").await;
    let wang = server.login("wang").await;
    let path = "/api/v1/settings/reply-templates";
    let (status, none) = server.call(&kefu.token, "GET", path, None).await;
    assert_eq!((status, none["templates"].as_array().map(Vec::len)), (200, Some(0)), "{none}");
    let lift = "3栋电梯又坏了有人困在里面";
    let (_, before) = triage(&server, &kefu.token, json!({"text": lift})).await;
    assert!(before["reply"].as_str().unwrap().contains("警铃"), "the built-in elevator template: {before}");

    let templates = json!({"templates": [
        {"kind": "repair", "text": "【和园物业】报修{number}已收到，{promise}前联系您。"},
        {"kind": "repair", "category": "elevator", "text": "【和园物业】电梯报修{number}：维保人员{arrival}前到场。"},
    ]});
    let (status, refused) = server.call(&kefu.token, "PUT", path, Some(templates.clone())).await;
    assert_eq!((status, error_code(&refused)), (403, "forbidden"), "a dispatcher does not write them");
    let (status, _) = server.call(&admin.token, "PUT", path, Some(templates)).await;
    assert_eq!(status, 204);
    let (_, after) = triage(&server, &kefu.token, json!({"text": lift})).await;
    let reply = after["reply"].as_str().unwrap();
    assert!(reply.starts_with("【和园物业】电梯报修{number}：维保人员") && !reply.contains("{arrival}"), "{reply}");
    let (_, other) = triage(&server, &kefu.token, json!({"text": "卫生间的水龙头一直在滴水，关不紧"})).await;
    if other["kind"] == "repair" && other["category"] != "elevator" {
        assert!(other["reply"].as_str().unwrap().starts_with("【和园物业】报修{number}已收到"), "{other}");
    }
    let (_, complaint) = triage(&server, &kefu.token, json!({"text": "保安态度太差了，我要投诉"})).await;
    assert!(!complaint["reply"].as_str().unwrap().contains("【和园物业】"), "no template for complaints: {complaint}");

    for (bad, why) in [
        (json!({"templates": [{"kind": "repair", "text": "{number}{promse}"}]}), "unknown slot"),
        (json!({"templates": [{"kind": "fix", "text": "x"}]}), "unknown kind"),
        (json!({"templates": [{"kind": "repair", "category": "lifts", "text": "x"}]}), "unknown category"),
        (json!({"templates": [{"kind": "repair", "text": "  "}]}), "blank"),
        (json!({"templates": [{"kind": "repair", "text": "x".repeat(501)}]}), "too long"),
        (
            json!({"templates": [{"kind": "repair", "text": "a"}, {"kind": "repair", "category": "", "text": "b"}]}),
            "twice",
        ),
    ] {
        let (status, refused) = server.call(&admin.token, "PUT", path, Some(bad)).await;
        assert_eq!((status, error_code(&refused)), (400, "invalid_template"), "{why}: {refused}");
    }
    let (status, _) = server.call(&wang.token, "GET", path, None).await;
    assert_eq!(status, 403, "technicians do not read them");
    let (_, kept) = server.call(&kefu.token, "GET", path, None).await;
    assert_eq!(kept["templates"].as_array().map(Vec::len), Some(2), "a refused write changes nothing");
}

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

async fn wait_for_suggestion(server: &TestServer, token: &str, id: &str) -> Value {
    // The scanner reads a new order within a few seconds.
    for _ in 0..100 {
        let (status, detail) = server.call(token, "GET", &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(status, 200, "{detail}");
        if !detail["suggestion"].is_null() {
            return detail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the assistant never read order {id}");
}

async fn an_owner_s_urgent_report_is_flagged_told_and_answered_by_a_person(backend: Backend) {
    let server = TestServer::start(backend).await;
    let other = other_project_dispatcher(&server).await;
    let owner = server.login("yezhu1502").await;
    let report = json!({
        "kind": "repair", "category": "other", "channel": "app", "project": "hy-garden",
        "building": "3", "unit": "3-1502", "description": "厨房里煤气味很重，不敢开火也不敢开灯",
    });
    let (status, made) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report)).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    let kefu = server.login("kefu").await;
    let detail = wait_for_suggestion(&server, &kefu.token, &id).await;
    let suggestion = &detail["suggestion"];
    assert_eq!(
        (suggestion["urgent"].as_bool(), suggestion["confirmed"].as_bool()),
        (Some(true), Some(false)),
        "{detail}"
    );
    assert_eq!(suggestion["rule"], "gas");
    assert_eq!(suggestion["category"], "water_electric");
    // Flagged above the queue, and told at once to the project's dispatcher.
    let (status, urgent) = server.call(&kefu.token, "GET", "/api/v1/orders?suggested=urgent", None).await;
    assert_eq!(status, 200, "{urgent}");
    assert!(urgent.as_array().expect("rows").iter().any(|r| r["id"] == id.as_str()), "{urgent}");
    let (_, notes) = server.call(&kefu.token, "GET", "/api/v1/notifications", None).await;
    let told = notes.as_array().expect("notifications").iter().find(|n| n["order_id"] == id.as_str()).cloned();
    let told = told.unwrap_or_else(|| panic!("no notification of the urgent report: {notes}"));
    assert_eq!((told["stage"].as_str(), told["level"].as_str()), (Some("report"), Some("urgent")), "{told}");
    // The owner and the technicians see none of it.
    let (_, own) = server.call(&owner.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert!(own["suggestion"].is_null(), "{own}");
    let wang = server.login("wang").await;
    let (status, body) = server.call(&wang.token, "GET", "/api/v1/orders?suggested=urgent", None).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) = server.call(&kefu.token, "GET", "/api/v1/orders?suggested=soon", None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_query"));
    // Taken: the category and grade become the suggestion's, with the server's note; answered once.
    let path = format!("/api/v1/orders/{id}/suggestion");
    let (status, taken) = server.call(&kefu.token, "POST", &path, Some(json!({"accept": true}))).await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["category"], "water_electric");
    assert!(matches!(taken["grade"].as_str(), Some("severe" | "critical")), "{taken}");
    assert_eq!(taken["suggestion"]["confirmed"], true);
    let noted = taken["notes"].to_string();
    assert!(noted.contains("采用智能分类建议"), "{noted}");
    let (status, again) = server.call(&kefu.token, "POST", &path, Some(json!({"accept": true}))).await;
    assert_eq!((status, error_code(&again)), (409, "no_open_suggestion"));
    let (_, urgent) = server.call(&kefu.token, "GET", "/api/v1/orders?suggested=urgent", None).await;
    assert!(!urgent.as_array().expect("rows").iter().any(|r| r["id"] == id.as_str()), "answered, it leaves the strip");
    let (status, body) = server.call(&owner.token, "POST", &path, Some(json!({"accept": false}))).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    // A dispatcher of another project (there before the report) was not told and cannot answer.
    let (_, notes) = server.call(&other, "GET", "/api/v1/notifications", None).await;
    assert!(!notes.as_array().expect("list").iter().any(|n| n["order_id"] == id.as_str()), "{notes}");
    let (status, _) = server.call(&other, "POST", &path, Some(json!({"accept": false}))).await;
    assert_eq!(status, 404);
}

/// A second project, and a dispatcher who serves only it; their token.
async fn other_project_dispatcher(server: &TestServer) -> String {
    let db = server.state.db.as_ref();
    let kefu = db.user_by_login("kefu").await.expect("kefu").expect("demo user");
    db.create_project(&kefu.org, "qs-court", "清水苑").await.expect("project");
    let user = loopwork_server::store::NewUser {
        org: kefu.org.clone(),
        login: "qs-kefu".into(),
        password_hash: loopwork_server::auth::hash_password("qs-kefu-password").expect("hash"),
        role: loopwork_sync_core::Role::Dispatcher,
        display_name: "清水苑客服".into(),
        phone: None,
    };
    let id = db.create_user(&user, 0).await.expect("user");
    db.bind_project(id, "qs-court").await.expect("bind");
    loopwork_tests::login_at(&server.base, "qs-kefu", "qs-kefu-password").await.token
}

async fn a_desk_registration_is_confirmed_at_once_and_a_set_aside_suggestion_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let registered = json!({
        "kind": "repair", "category": "public_facilities", "grade": "minor", "channel": "hotline",
        "project": "hy-garden", "building": "5", "area": "5栋电梯厅",
        "description": "5栋电梯困人了，里面有两个人",
    });
    let (status, made) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(registered)).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    let detail = wait_for_suggestion(&server, &kefu.token, &id).await;
    assert_eq!(detail["suggestion"]["confirmed"], true, "a person chose: {detail}");
    let (_, notes) = server.call(&kefu.token, "GET", "/api/v1/notifications", None).await;
    assert!(!notes.as_array().expect("list").iter().any(|n| n["order_id"] == id.as_str()), "nobody is told: {notes}");

    let owner = server.login("yezhu1502").await;
    let report = json!({
        "kind": "repair", "category": "doors_windows", "channel": "app", "project": "hy-garden",
        "building": "3", "unit": "3-1502", "description": "卫生间马桶堵了，冲不下去",
    });
    let (_, made) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report)).await;
    let id = made["id"].as_str().expect("id").to_owned();
    wait_for_suggestion(&server, &kefu.token, &id).await;
    let (status, kept) = server
        .call(&kefu.token, "POST", &format!("/api/v1/orders/{id}/suggestion"), Some(json!({"accept": false})))
        .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(
        (kept["category"].as_str(), kept["suggestion"]["confirmed"].as_bool()),
        (Some("doors_windows"), Some(true))
    );
}

async fn an_organization_s_model_learns_from_its_labels_is_judged_on_the_frozen_set_and_rolls_back(backend: Backend) {
    use loopwork_server::triage::{retrain, rollback};
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let org = server.state.db.user_by_login("kefu").await.expect("kefu").expect("demo user").org;
    // Owners' reports whose readings a dispatcher took: labels.
    let owner = server.login("yezhu1502").await;
    labelled(&server, &owner.token, &kefu.token, &["3栋楼道垃圾三天没人收了", "楼下草坪该修剪了", "车位被外来车占了"])
        .await;
    let labels = server.state.db.triage_labels(&org).await.expect("labels");
    let texts: Vec<&str> = labels.iter().map(|l| l.description.as_str()).collect();
    assert!(texts.contains(&"楼下草坪该修剪了") && texts.contains(&"车位被外来车占了"), "{texts:?}");
    let version = |answer: &Value| answer["model"].as_str().expect("model").to_owned();
    let ask = json!({"text": "电梯坏了"});
    let built_in = version(&triage(&server, &kefu.token, ask.clone()).await.1);
    // A small model, judged against the built-in one on the frozen set.
    let small = loopwork_triage::TrainOptions {
        generated: 1_500,
        validation: 300,
        epochs: 3,
        bucket: 10_000,
        quantize: false,
        ..Default::default()
    };
    let now = server.state.clock.now_ms();
    let (db, models) = (server.state.db.as_ref(), server.state.triage.as_ref());
    // A model from 60 messages is worse than the built-in one on the frozen set: kept, not used.
    let tiny = loopwork_triage::TrainOptions { generated: 60, validation: 60, epochs: 1, ..small.clone() };
    let bad = retrain(db, models, &org, tiny, false, now).await.expect("retrain");
    assert_eq!((bad.labels, bad.before.as_str(), bad.activated), (labels.len(), "built-in", false), "{bad:?}");
    assert!(!bad.scores.no_worse_than(&bad.before_scores));
    assert_eq!(version(&triage(&server, &kefu.token, ask.clone()).await.1), built_in);
    // Forced, a model is used at once; a second forced one after it; all are kept.
    let first = retrain(db, models, &org, small.clone(), true, now + 1).await.expect("retrain");
    assert!(first.activated);
    assert_eq!(version(&triage(&server, &kefu.token, ask.clone()).await.1), first.version);
    let forced = loopwork_triage::TrainOptions { seed: small.seed + 7, ..small };
    let second = retrain(db, models, &org, forced, true, now + 2).await.expect("retrain");
    assert!(second.activated && second.version != first.version && second.before == first.version);
    assert_eq!(version(&triage(&server, &kefu.token, ask.clone()).await.1), second.version);
    let kept = server.state.db.triage_models(&org).await.expect("models");
    assert_eq!(
        kept.iter().filter(|m| m.active).map(|m| m.version.as_str()).collect::<Vec<_>>(),
        [second.version.as_str()]
    );
    assert!([&bad.version, &first.version].iter().all(|v| kept.iter().any(|m| &m.version == *v)));
    // Rolled back: to the first, then to the built-in model, and no further.
    assert_eq!(rollback(db, models, &org, now + 3).await.expect("rollback"), Some(first.version.clone()));
    assert_eq!(version(&triage(&server, &kefu.token, ask.clone()).await.1), first.version);
    assert_eq!(rollback(db, models, &org, now + 4).await.expect("rollback"), None);
    assert_eq!(rollback(db, models, &org, now + 5).await.expect("rollback"), None);
    assert_eq!(version(&triage(&server, &kefu.token, ask).await.1), built_in);
}

async fn the_schedule_retrains_only_organizations_with_enough_new_labels(backend: Backend) {
    use loopwork_server::triage::{NEW_LABELS_TO_RETRAIN, retrain_due};
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let small = loopwork_triage::TrainOptions {
        generated: 1_000,
        validation: 200,
        epochs: 2,
        bucket: 10_000,
        quantize: false,
        ..Default::default()
    };
    let owner = server.login("yezhu1502").await;
    let org = server.state.db.user_by_login("kefu").await.expect("kefu").expect("demo user").org;
    let count = |counted: Vec<(String, i64)>| counted.iter().find(|(o, _)| *o == org).map_or(0, |(_, n)| *n);
    let texts: Vec<String> = (0..NEW_LABELS_TO_RETRAIN).map(|i| format!("厨房水龙头第{i}次漏水了")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    // The demo's own orders may be labels too (classified otherwise than read): counted first.
    labelled(&server, &owner.token, &kefu.token, &texts[..1]).await;
    let base = count(server.state.db.triage_label_counts().await.expect("counts"));
    assert!((1..NEW_LABELS_TO_RETRAIN).contains(&base), "{base}");
    labelled(&server, &owner.token, &kefu.token, &texts[1..(NEW_LABELS_TO_RETRAIN - base) as usize]).await;
    assert_eq!(count(server.state.db.triage_label_counts().await.expect("counts")), NEW_LABELS_TO_RETRAIN - 1);
    assert!(retrain_due(&server.state, &small).await.expect("round").is_empty(), "too few labels yet");
    labelled(&server, &owner.token, &kefu.token, &texts[(NEW_LABELS_TO_RETRAIN - base) as usize..][..1]).await;
    assert_eq!(count(server.state.db.triage_label_counts().await.expect("counts")), NEW_LABELS_TO_RETRAIN);
    let done = retrain_due(&server.state, &small).await.expect("round");
    assert_eq!(done.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(), [org.as_str()]);
    assert!(done[0].1.labels as i64 >= NEW_LABELS_TO_RETRAIN);
    // Nothing new since: the next round leaves it.
    assert!(retrain_due(&server.state, &small).await.expect("round").is_empty());
}

/// The owner reports each text; once read, a dispatcher takes each reading: a label each.
async fn labelled(server: &TestServer, owner: &str, kefu: &str, texts: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for text in texts {
        let body = json!({
            "kind": "repair", "category": "other", "channel": "app", "project": "hy-garden",
            "building": "3", "unit": "3-1502", "description": text,
        });
        let (status, made) = server.call(owner, "POST", "/api/v1/orders", Some(body)).await;
        assert_eq!(status, 201, "{made}");
        ids.push(made["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        wait_for_suggestion(server, kefu, id).await;
        let path = format!("/api/v1/orders/{id}/suggestion");
        let (status, body) = server.call(kefu, "POST", &path, Some(json!({"accept": true}))).await;
        assert_eq!(status, 200, "{body}");
    }
    ids
}

/// An order read first long after it was made (from before the assistant, after an upgrade)
/// is history: answered at once (`preexisting`), told to nobody, no label.
async fn an_order_first_read_long_after_it_was_made_is_history_not_news(backend: Backend) {
    let clock = std::sync::Arc::new(OffsetClock::default());
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let owner = server.login("yezhu1502").await;
    let kefu = server.login("kefu").await;
    let report = json!({
        "kind": "repair", "category": "other", "channel": "app", "project": "hy-garden",
        "building": "3", "unit": "3-1502", "description": "厨房里煤气味很重",
    });
    let (status, made) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report)).await;
    assert_eq!(status, 201, "{made}");
    // Before the scanner's first look (about a second after a change), two hours pass.
    clock.advance_minutes(120);
    let id = made["id"].as_str().expect("id");
    let detail = wait_for_suggestion(&server, &kefu.token, id).await;
    assert_eq!(
        (detail["suggestion"]["urgent"].as_bool(), detail["suggestion"]["confirmed"].as_bool()),
        (Some(true), Some(true))
    );
    let (_, notes) = server.call(&kefu.token, "GET", "/api/v1/notifications", None).await;
    assert!(!notes.as_array().expect("list").iter().any(|n| n["order_id"] == id && n["level"] == "urgent"), "{notes}");
    let org = server.state.db.user_by_login("kefu").await.expect("kefu").expect("demo user").org;
    let labels = server.state.db.triage_labels(&org).await.expect("labels");
    assert!(!labels.iter().any(|l| l.order == id), "history is no label");
}
