//! The knowledge base and the owner bot through the API on SQLite and PostgreSQL: an owner's
//! question answered from an article, a fault proposed as a report and filed from the
//! conversation (kept with the order), a hand-over answered by a person, the bot silent while a
//! person has the conversation but not for an urgent report; articles kept by supervisors and
//! used at once; and every refusal: other owners, technicians, dispatchers of other projects,
//! bad input, closed and linked conversations.

use loopwork_tests::{Backend, TestServer, error_code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    an_owner_is_answered_files_a_report_and_is_handed_to_a_person,
    articles_are_kept_by_supervisors_and_answer_at_once,
    conversations_are_their_owner_s_and_their_staff_s_only,
    an_organization_from_before_the_knowledge_base_gets_the_starter_articles_once,
);

/// Runs SQL on the test database beside the server (as an older version left it).
async fn sql(database: &loopwork_tests::TestDatabase, statement: &str) {
    match database.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&database.url).await.expect("sqlite");
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(&pool).await.expect("sql");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database.url).await.expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(&pool).await.expect("sql");
            pool.close().await;
        }
    }
}

async fn an_organization_from_before_the_knowledge_base_gets_the_starter_articles_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    // As a database migrated from before the knowledge base: no articles, no version.
    sql(&server.database, "DELETE FROM kb_articles").await;
    sql(&server.database, "DELETE FROM kb_versions").await;
    let owner = server.login("yezhu1502").await;
    let zhuguan = server.login("zhuguan").await;
    let (_, c) = say(&server, &owner.token, None, "请问物业费可以用微信交吗").await;
    assert_eq!(last_turn(&c)["type"], "answer", "the starter articles answer at once: {c}");
    let (_, articles) = server.call(&zhuguan.token, "GET", "/api/v1/knowledge", None).await;
    let articles = articles.as_array().expect("articles").clone();
    assert_eq!(articles.len(), 6);
    // Deleted, they stay deleted.
    for a in &articles {
        let (status, _) = server
            .call(&zhuguan.token, "DELETE", &format!("/api/v1/knowledge/{}", a["id"].as_str().unwrap()), None)
            .await;
        assert_eq!(status, 204);
    }
    let (_, none) = server.call(&owner.token, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(none.as_array().map(Vec::len), Some(0));
    let (_, c) = say(&server, &owner.token, None, "请问物业费可以用微信交吗").await;
    assert_eq!(last_turn(&c)["type"], "handover", "no article, no answer: {c}");
}

async fn say(server: &TestServer, token: &str, conversation: Option<&str>, text: &str) -> (u16, Value) {
    let mut body = json!({ "text": text });
    if let Some(c) = conversation {
        body["conversation"] = json!(c);
    }
    server.call(token, "POST", "/api/v1/assistant/messages", Some(body)).await
}

fn last_turn(conversation: &Value) -> Value {
    let messages = conversation["messages"].as_array().expect("messages");
    messages.last().expect("a message")["turn"].clone()
}

async fn an_owner_is_answered_files_a_report_and_is_handed_to_a_person(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.login("yezhu1502").await;
    let kefu = server.login("kefu").await;

    // A question an article answers.
    let (status, c) = say(&server, &owner.token, None, "请问物业费可以用微信交吗").await;
    assert_eq!(status, 200, "{c}");
    let id = c["id"].as_str().expect("id").to_owned();
    assert_eq!(c["state"], "bot");
    assert_eq!(c["messages"].as_array().map(Vec::len), Some(2), "{c}");
    assert_eq!(c["messages"][0]["author"], "owner");
    let turn = last_turn(&c);
    assert_eq!(turn["type"], "answer", "{c}");
    assert_eq!(turn["articles"][0]["title"], "物业费怎么缴纳");
    assert!(turn["articles"][0]["text"].as_str().unwrap().contains("微信"));

    // A fault: a report proposed with the owner's unit the message names.
    let (status, c) = say(&server, &owner.token, Some(&id), "3栋1502卫生间的水管一直在漏水").await;
    assert_eq!(status, 200, "{c}");
    let turn = last_turn(&c);
    assert_eq!(turn["type"], "report", "{c}");
    let proposal = &turn["proposal"];
    assert_eq!(proposal["kind"], "repair");
    assert_eq!(proposal["unit"]["unit"], "3-1502", "{proposal}");
    assert_eq!(proposal["urgent"], false);

    // The owner confirms: the order is filed from the conversation and kept with it.
    let report = json!({
        "kind": proposal["kind"], "category": proposal["category"], "channel": "app",
        "project": proposal["unit"]["project"], "building": proposal["unit"]["building"],
        "unit": proposal["unit"]["unit"], "description": proposal["description"], "conversation": id,
    });
    let (status, made) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report.clone())).await;
    assert_eq!(status, 201, "{made}");
    let order = made["id"].as_str().expect("order").to_owned();
    let (_, c) = server.call(&owner.token, "GET", &format!("/api/v1/assistant/conversations/{id}"), None).await;
    assert_eq!(c["order_id"], order.as_str(), "{c}");
    assert_eq!(last_turn(&c)["type"], "filed");
    assert_eq!(last_turn(&c)["number"], made["number"]);
    let (_, detail) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{order}"), None).await;
    assert_eq!(detail["conversation"], id.as_str(), "the desk finds the conversation");
    let (_, detail) = server.call(&owner.token, "GET", &format!("/api/v1/orders/{order}"), None).await;
    assert_eq!(detail["conversation"], id.as_str());
    // One order per conversation.
    let (status, again) = server.call(&owner.token, "POST", "/api/v1/orders", Some(report)).await;
    assert_eq!((status, error_code(&again)), (409, "conversation_has_order"), "{again}");

    // Asked for a person: the conversation waits for office staff.
    let (status, c) = say(&server, &owner.token, Some(&id), "转人工").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!((c["state"].as_str(), last_turn(&c)["reason"].as_str()), (Some("waiting"), Some("asked")));
    assert!(c["waiting_since"].as_i64().is_some());
    let (status, waiting) =
        server.call(&kefu.token, "GET", "/api/v1/assistant/conversations?state=waiting", None).await;
    assert_eq!(status, 200, "{waiting}");
    let found = waiting.as_array().unwrap().iter().find(|w| w["id"] == id.as_str()).expect("waiting");
    assert_eq!(found["unit"], "3-1502");
    assert_eq!(found["last"]["author"], "bot");

    let (status, c) = server
        .call(
            &kefu.token,
            "POST",
            &format!("/api/v1/assistant/conversations/{id}/replies"),
            Some(json!({"text": "您好，师傅马上联系您"})),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["state"], "answered");
    assert!(c["waiting_since"].is_null());
    let staff = c["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((staff["author"].as_str(), staff["text"].as_str()), (Some("staff"), Some("您好，师傅马上联系您")));
    assert!(staff["by"].as_str().is_some_and(|n| !n.is_empty()), "the staff member is named: {staff}");

    // With a person, the bot is silent, except for an urgent report; the owner's words make the
    // conversation wait for a person again.
    let (_, c) = say(&server, &owner.token, Some(&id), "好的谢谢，师傅大概几点到").await;
    let messages = c["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["author"], "owner", "the bot stays silent: {c}");
    assert_eq!(c["state"], "waiting", "{c}");
    assert!(c["waiting_since"].as_i64().is_some());
    let (_, c) = say(&server, &owner.token, Some(&id), "电梯里有人困住了，快来人").await;
    let turn = last_turn(&c);
    assert_eq!((turn["type"].as_str(), turn["proposal"]["urgent"].as_bool()), (Some("report"), Some(true)), "{c}");
    assert_eq!(turn["proposal"]["rule"]["code"], "lift_trapped");

    // A second problem after the first order: a report of its own, not this conversation's.
    let (status, again) = server
        .call(
            &owner.token,
            "POST",
            "/api/v1/orders",
            Some(json!({
            "kind": "repair", "category": "elevator", "channel": "app", "project": "hy-garden", "building": "3",
            "unit": "3-1502", "description": "电梯里有人困住了，快来人", "conversation": id})),
        )
        .await;
    assert_eq!((status, error_code(&again)), (409, "conversation_has_order"), "{again}");

    // Closed by staff: the owner begins another.
    let (status, c) =
        server.call(&kefu.token, "POST", &format!("/api/v1/assistant/conversations/{id}/close"), None).await;
    assert_eq!((status, c["state"].as_str()), (200, Some("closed")));
    let (status, refused) = say(&server, &owner.token, Some(&id), "还在吗").await;
    assert_eq!((status, error_code(&refused)), (409, "conversation_closed"));
    let (status, c) = say(&server, &owner.token, None, "小区附近有什么好的幼儿园推荐吗").await;
    assert_eq!(status, 200);
    assert_ne!(c["id"], id.as_str());
    assert_eq!((c["state"].as_str(), last_turn(&c)["reason"].as_str()), (Some("waiting"), Some("unsure")), "{c}");
    let (_, mine) = server.call(&owner.token, "GET", "/api/v1/assistant/conversations", None).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(2));
    assert_eq!(mine[0]["id"], c["id"], "the latest first");
}

async fn articles_are_kept_by_supervisors_and_answer_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.login("yezhu1502").await;
    let kefu = server.login("kefu").await;
    let zhuguan = server.login("zhuguan").await;
    // Every organization starts with the starter articles.
    let (status, articles) = server.call(&owner.token, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(status, 200);
    assert_eq!(articles.as_array().map(Vec::len), Some(6), "{articles}");

    let pets = json!({"title": "宠物登记与文明养犬", "keywords": ["养狗", "宠物", "犬证", "遛狗"],
        "body": "养犬请到社区办理犬证后到物业服务中心登记，出门遛狗须牵绳并清理粪便。", "published": false});
    for (token, who) in [(&owner.token, "owner"), (&kefu.token, "dispatcher")] {
        let (status, refused) = server.call(token, "POST", "/api/v1/knowledge", Some(pets.clone())).await;
        assert_eq!((status, error_code(&refused)), (403, "forbidden"), "{who}");
    }
    let (status, draft) = server.call(&zhuguan.token, "POST", "/api/v1/knowledge", Some(pets.clone())).await;
    assert_eq!(status, 201, "{draft}");
    let article = draft["id"].as_str().unwrap().to_owned();
    // Not published: owners do not see it and the bot does not use it.
    let (_, seen) = server.call(&owner.token, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(seen.as_array().map(Vec::len), Some(6));
    let (_, staff_seen) = server.call(&kefu.token, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(staff_seen.as_array().map(Vec::len), Some(7));
    let (_, c) = say(&server, &owner.token, None, "家里想养狗需要去哪里登记吗").await;
    assert_ne!(last_turn(&c)["type"], "answer", "{c}");

    let mut published = pets.clone();
    published["published"] = json!(true);
    let (status, saved) =
        server.call(&zhuguan.token, "PUT", &format!("/api/v1/knowledge/{article}"), Some(published)).await;
    assert_eq!((status, saved["published"].as_bool()), (200, Some(true)), "{saved}");
    let (_, c) = say(&server, &owner.token, None, "家里想养狗需要去哪里登记吗").await;
    let turn = last_turn(&c);
    assert_eq!(
        (turn["type"].as_str(), turn["articles"][0]["id"].as_str()),
        (Some("answer"), Some(article.as_str())),
        "{c}"
    );

    // Deleted: gone from the answers.
    let (status, _) = server.call(&zhuguan.token, "DELETE", &format!("/api/v1/knowledge/{article}"), None).await;
    assert_eq!(status, 204);
    let (status, gone) = server.call(&zhuguan.token, "DELETE", &format!("/api/v1/knowledge/{article}"), None).await;
    assert_eq!((status, error_code(&gone)), (404, "not_found"));
    let (_, c) = say(&server, &owner.token, None, "家里想养狗需要去哪里登记吗").await;
    assert_ne!(last_turn(&c)["articles"][0]["id"], article.as_str(), "{c}");

    // Bad articles.
    for (bad, why) in [
        (json!({"title": "", "body": "x"}), "empty title"),
        (json!({"title": "t", "body": "   "}), "blank body"),
        (json!({"title": "t".repeat(101), "body": "x"}), "long title"),
        (json!({"title": "t", "body": "x", "keywords": [""]}), "empty keyword"),
        (
            json!({"title": "t", "body": "x", "keywords": (0..21).map(|i| format!("k{i}")).collect::<Vec<_>>()}),
            "21 keywords",
        ),
    ] {
        let (status, refused) = server.call(&zhuguan.token, "POST", "/api/v1/knowledge", Some(bad)).await;
        assert_eq!((status, error_code(&refused)), (400, "invalid_article"), "{why}: {refused}");
    }
    let (status, refused) = server
        .call(&zhuguan.token, "POST", "/api/v1/knowledge", Some(json!({"title": "t", "body": "x", "extra": 1})))
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {refused}");
    let (status, refused) =
        server.call(&zhuguan.token, "PUT", "/api/v1/knowledge/no-such", Some(json!({"title": "t", "body": "x"}))).await;
    assert_eq!((status, error_code(&refused)), (404, "not_found"));
}

async fn conversations_are_their_owner_s_and_their_staff_s_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.login("yezhu1502").await;
    let neighbour = server.login("yezhu0801").await;
    let technician = server.login("wang").await;
    let kefu = server.login("kefu").await;
    let (_, c) = say(&server, &owner.token, None, "转人工").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/assistant/conversations/{id}");

    // Another owner: as if there were none, on every path.
    let (status, refused) = server.call(&neighbour.token, "GET", &path, None).await;
    assert_eq!((status, error_code(&refused)), (404, "not_found"));
    let (status, _) = say(&server, &neighbour.token, Some(&id), "我也要问").await;
    assert_eq!(status, 404);
    let (status, _) = server.call(&neighbour.token, "POST", &format!("{path}/handover"), None).await;
    assert_eq!(status, 404);
    let report = json!({"kind": "repair", "category": "water_electric", "channel": "app", "project": "hy-garden",
        "building": "8", "unit": "8-0801", "description": "漏水", "conversation": id});
    let (status, refused) = server.call(&neighbour.token, "POST", "/api/v1/orders", Some(report)).await;
    assert_eq!(status, 404, "{refused}");
    let (_, theirs) = server.call(&neighbour.token, "GET", "/api/v1/assistant/conversations", None).await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0));

    // A technician reads no conversation; office staff do not write as the owner; an owner does
    // not answer as staff.
    let (status, _) = server.call(&technician.token, "GET", "/api/v1/assistant/conversations", None).await;
    assert_eq!(status, 403);
    let (status, _) = server.call(&technician.token, "GET", &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = say(&server, &kefu.token, Some(&id), "我是客服").await;
    assert_eq!(status, 403);
    let (status, _) = server.call(&owner.token, "POST", &format!("{path}/replies"), Some(json!({"text": "x"}))).await;
    assert_eq!(status, 403);
    let (status, _) = server.call(&owner.token, "POST", &format!("{path}/close"), None).await;
    assert_eq!(status, 403);

    // A dispatcher bound to another project does not see it.
    let db = server.state.db.as_ref();
    let kefu_user = db.user_by_login("kefu").await.expect("kefu").expect("demo user");
    db.create_project(&kefu_user.org, "qs-court", "清水苑").await.expect("project");
    let other = loopwork_server::store::NewUser {
        org: kefu_user.org.clone(),
        login: "qs-kefu".into(),
        password_hash: loopwork_server::auth::hash_password("qs-kefu-password").expect("hash"),
        role: loopwork_sync_core::Role::Dispatcher,
        display_name: "清水苑客服".into(),
        phone: None,
    };
    let other_id = db.create_user(&other, 0).await.expect("user");
    db.bind_project(other_id, "qs-court").await.expect("bind");
    let other = loopwork_tests::login_at(&server.base, "qs-kefu", "qs-kefu-password").await.token;
    let (status, _) = server.call(&other, "GET", &path, None).await;
    assert_eq!(status, 404);
    let (_, listed) = server.call(&other, "GET", "/api/v1/assistant/conversations", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    let (status, _) = server.call(&other, "POST", &format!("{path}/replies"), Some(json!({"text": "x"}))).await;
    assert_eq!(status, 404);
    let (_, listed) = server.call(&kefu.token, "GET", "/api/v1/assistant/conversations", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "the organization's dispatcher sees it");

    // Two registrations from one conversation at once (the owner's page and the desk): one order.
    let (_, fresh) = say(&server, &owner.token, None, "3栋1502阳台的推拉门坏了关不上").await;
    let fresh_id = fresh["id"].as_str().unwrap().to_owned();
    let from = |description: &str| {
        json!({"kind": "repair", "category": "doors_windows", "channel": "app",
        "project": "hy-garden", "building": "3", "unit": "3-1502", "description": description, "conversation": fresh_id})
    };
    let (a, b) = tokio::join!(
        server.call(&owner.token, "POST", "/api/v1/orders", Some(from("推拉门坏了"))),
        server.call(
            &kefu.token,
            "POST",
            "/api/v1/orders",
            Some({
                let mut body = from("业主在线咨询:推拉门坏了");
                body["channel"] = json!("hotline");
                body
            })
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.1, b.1);
    let (_, fresh) =
        server.call(&owner.token, "GET", &format!("/api/v1/assistant/conversations/{fresh_id}"), None).await;
    let made = if a.0 == 201 { &a.1 } else { &b.1 };
    assert_eq!(fresh["order_id"], made["id"], "the conversation holds the order that was made");
    // A closed conversation makes no order.
    let (_, closing) = say(&server, &owner.token, None, "楼道灯不亮").await;
    let closing_id = closing["id"].as_str().unwrap().to_owned();
    server.call(&kefu.token, "POST", &format!("/api/v1/assistant/conversations/{closing_id}/close"), None).await;
    let mut body = from("楼道灯不亮");
    body["conversation"] = json!(closing_id);
    let (status, refused) = server.call(&owner.token, "POST", "/api/v1/orders", Some(body)).await;
    assert_eq!((status, error_code(&refused)), (409, "conversation_closed"), "{refused}");
    let (status, refused) = server
        .call(&owner.token, "POST", &format!("/api/v1/assistant/conversations/{closing_id}/handover"), None)
        .await;
    assert_eq!((status, error_code(&refused)), (409, "conversation_closed"));

    // Bad input.
    for text in ["", "   ", &"漏".repeat(1001)] {
        let (status, refused) = say(&server, &owner.token, Some(&id), text).await;
        assert_eq!((status, error_code(&refused)), (400, "invalid_text"), "{}", text.chars().count());
    }
    let (status, refused) = say(&server, &owner.token, Some("no-such"), "你好").await;
    assert_eq!((status, error_code(&refused)), (404, "not_found"));
    for query in ["state=lost", "limit=0", "limit=101", "owner=x"] {
        let (status, refused) =
            server.call(&kefu.token, "GET", &format!("/api/v1/assistant/conversations?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {refused}");
    }
    // Another organization's office staff: unknown.
    let other_org = db.create_organization("别家物业", 0).await.expect("org");
    let stranger = loopwork_server::store::NewUser {
        org: other_org,
        login: "bj-kefu".into(),
        password_hash: loopwork_server::auth::hash_password("bj-kefu-password").expect("hash"),
        role: loopwork_sync_core::Role::Dispatcher,
        display_name: "别家客服".into(),
        phone: None,
    };
    db.create_user(&stranger, 0).await.expect("user");
    let stranger = loopwork_tests::login_at(&server.base, "bj-kefu", "bj-kefu-password").await.token;
    let (status, _) = server.call(&stranger, "GET", &path, None).await;
    assert_eq!(status, 404);
    let (_, listed) = server.call(&stranger, "GET", "/api/v1/assistant/conversations", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
    let (status, _) = server.call(&stranger, "POST", &format!("{path}/replies"), Some(json!({"text": "x"}))).await;
    assert_eq!(status, 404);
    // It has its own starter articles.
    let (_, articles) = server.call(&stranger, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(articles.as_array().map(Vec::len), Some(6));

    // An owner begins at most 50 conversations a day.
    let (_, mine) = server.call(&neighbour.token, "GET", "/api/v1/assistant/conversations?limit=100", None).await;
    for _ in mine.as_array().unwrap().len()..50 {
        let (status, _) = say(&server, &neighbour.token, None, "你好").await;
        assert_eq!(status, 200);
    }
    let (status, refused) = say(&server, &neighbour.token, None, "你好").await;
    assert_eq!((status, error_code(&refused)), (429, "too_many_conversations"));
}
