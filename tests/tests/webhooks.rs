//! Outgoing webhooks over real HTTP, on SQLite and PostgreSQL: an SLA event reaches the
//! organization's endpoint signed, a failed delivery is retried with backoff after a server
//! restart, and a delivered one is not sent again.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use loopwork_server::{escalation, webhooks};
use loopwork_sync_core::{Action, Category, Channel, Grade, Kind, Location, NewOrder};
use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::Value;

on_both_backends!(
    an_sla_event_reaches_the_organization_s_endpoint_signed_at_least_once,
    an_event_fired_again_after_a_restore_keeps_its_delivery_id
);

const MINUTE: i64 = 60_000;

/// What the receiver got: headers of interest and the body.
#[derive(Clone, Debug)]
struct Received {
    delivery: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver on loopback; with `fail_first`, it fails the first attempt of every delivery, then
/// accepts.
async fn receiver(fail_first: bool) -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let mut list = seen.lock().unwrap();
                let delivery = header("x-loopwork-delivery");
                let first = !list.iter().any(|r| r.delivery == delivery);
                list.push(Received {
                    delivery,
                    timestamp: header("x-loopwork-timestamp"),
                    signature: header("x-loopwork-signature"),
                    body,
                });
                if first && fail_first {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn verify(secret: &str, r: &Received) -> bool {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{}.{}", r.timestamp, r.body).as_bytes());
    r.signature == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn an_sla_event_reaches_the_organization_s_endpoint_signed_at_least_once(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let wang = server.login("wang").await;
    let admin = server.login("admin").await;
    let (url, got) = receiver(true).await;
    let http = reqwest::Client::new();
    let hooks = format!("{}/api/v1/settings/webhooks", server.base);

    let refused = http.post(&hooks).bearer_auth(&desk.session.token).json(&serde_json::json!({"url": url}));
    assert_eq!(refused.send().await.expect("post").status(), 403);
    let bad = http.post(&hooks).bearer_auth(&admin.token).json(&serde_json::json!({"url": "ftp://x"}));
    assert_eq!(bad.send().await.expect("post").status(), 400);
    // No way into the server's own network: loopback, private, link-local and metadata
    // destinations are refused by default.
    let register =
        |target: String| http.post(&hooks).bearer_auth(&admin.token).json(&serde_json::json!({ "url": target })).send();
    for target in [
        url.clone(),
        url.replace("127.0.0.1", "localhost"),
        "http://[::1]/hook".into(),
        "http://[::ffff:127.0.0.1]/hook".into(),
        "http://10.1.2.3/hook".into(),
        "http://192.168.1.10/hook".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fe80::1]/hook".into(),
        "http://0.0.0.0/hook".into(),
    ] {
        let response = register(target.clone()).await.expect("post");
        assert_eq!(response.status(), 400, "{target}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "forbidden_destination", "{target}");
    }
    // An on-premises receiver: the organization allows private networks, never metadata.
    let destinations = format!("{}/api/v1/settings/webhook-destinations", server.base);
    let set_private = |allow: bool| {
        http.put(&destinations).bearer_auth(&admin.token).json(&serde_json::json!({ "allow_private": allow })).send()
    };
    assert_eq!(set_private(true).await.expect("put").status(), 204);
    let refused = register("http://169.254.169.254/latest/meta-data/".into()).await.expect("post");
    assert_eq!(refused.status(), 400, "metadata stays refused");
    let created: Value = http
        .post(&hooks)
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({"url": url}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let listed: Value =
        http.get(&hooks).bearer_auth(&admin.token).send().await.expect("get").json().await.expect("json");
    assert_eq!(listed[0]["url"], url);
    assert!(listed[0].get("secret").is_none(), "the secret is shown once");

    // A 重大 order nobody accepts: half its 30 minutes pass.
    let id = desk
        .replica
        .create(&NewOrder {
            kind: Kind::Repair,
            category: Category::Elevator,
            grade: Grade::Critical,
            channel: Channel::Hotline,
            location: Location::common_area("hy-garden", "5号楼2号电梯"),
            description: "电梯困人".into(),
            reporter: wang.user,
            occurred_at_ms: None,
        })
        .expect("create");
    desk.replica.transition(id, Action::Assign(wang.user), None).expect("assign");
    desk.synced().await;
    let t0 = desk.replica.order(id).expect("order").created_at_ms();
    escalation::tick(&server.state, t0 + 15 * MINUTE + 1_000).await.expect("tick");

    // The receiver is down at the first attempt.
    let client = webhooks::client();
    let at = t0 + 15 * MINUTE + 2_000;
    assert_eq!(webhooks::deliver(&server.state, &client, at).await.expect("deliver"), 0);
    let attempted = got.lock().unwrap().len();
    assert!(attempted >= 1);

    // The server restarts; the delivery waits in the outbox and is retried after its backoff.
    server = server.restart().await;
    assert_eq!(
        webhooks::deliver(&server.state, &client, at + 10_000).await.expect("deliver"),
        0,
        "not before the backoff"
    );
    assert_eq!(webhooks::deliver(&server.state, &client, at + 31_000).await.expect("deliver"), attempted);
    assert_eq!(
        webhooks::deliver(&server.state, &client, at + 120_000).await.expect("deliver"),
        0,
        "delivered once is done"
    );

    // The demo orders fire too; ours is the one to follow.
    let all = got.lock().unwrap().clone();
    assert_eq!(all.len(), 2 * attempted, "each delivery attempted twice: refused, then accepted");
    let received: Vec<Received> = all.into_iter().filter(|r| r.body.contains(&id.to_string())).collect();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].delivery, received[1].delivery, "a retry carries the same delivery id");
    for r in &received {
        assert!(verify(&secret, r), "signed with the webhook's secret");
        assert!(!verify("another secret", r));
    }
    let body: Value = serde_json::from_str(&received[1].body).expect("json");
    assert_eq!(body["event"], "sla.warn_50");
    assert_eq!(body["order_id"], id.to_string());
    assert_eq!(body["stage"], "response");
    // The demo owners' numbers are 1380013xxxx; a shorter probe would also match ids and times.
    assert!(!received[1].body.contains("1380013"), "no phone numbers");

    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains(&format!("loopwork_webhook_deliveries_total{{outcome=\"delivered\"}} {attempted}")),
        "{metrics}"
    );
    // Registered by name while private networks were allowed; then they are not: nothing more
    // reaches the receiver, whether the URL writes the address or a name that resolves to it
    // (checked on the address connected to, at every delivery).
    // (The server restarted above, on another port.)
    desk.base = server.base.clone();
    let by_name = http
        .post(format!("{}/api/v1/settings/webhooks", server.base))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({ "url": url.replace("127.0.0.1", "localhost") }))
        .send()
        .await
        .expect("post");
    assert_eq!(by_name.status(), 201);
    let refuse_private = http
        .put(format!("{}/api/v1/settings/webhook-destinations", server.base))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({ "allow_private": false }))
        .send()
        .await
        .expect("put");
    assert_eq!(refuse_private.status(), 204);
    let before = got.lock().unwrap().len();
    let later = desk
        .replica
        .create(&NewOrder {
            kind: Kind::Repair,
            category: Category::Elevator,
            grade: Grade::Critical,
            channel: Channel::Hotline,
            location: Location::common_area("hy-garden", "5号楼1号电梯"),
            description: "电梯困人".into(),
            reporter: wang.user,
            occurred_at_ms: None,
        })
        .expect("create");
    desk.replica.transition(later, Action::Assign(wang.user), None).expect("assign");
    desk.synced().await;
    let t1 = desk.replica.order(later).expect("order").created_at_ms();
    escalation::tick(&server.state, t1 + 15 * MINUTE + 1_000).await.expect("tick");
    assert_eq!(webhooks::deliver(&server.state, &client, t1 + 15 * MINUTE + 2_000).await.expect("deliver"), 0);
    assert_eq!(got.lock().unwrap().len(), before, "nothing reached a private address");

    let id = listed[0]["id"].as_str().expect("id");
    let deleted = http
        .delete(format!("{}/api/v1/settings/webhooks/{id}", server.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    server.stop().await.drop_database().await;
}

/// The disaster drill's webhook half: an SLA checkpoint fires and is delivered after the nightly
/// backup; the database is lost and restored; the checkpoint fires again (its record was lost)
/// and its webhook goes out again under the same `x-loopwork-delivery` id, which the receiver
/// drops as a repeat: one event, not two. The in-app notification is recorded once in the
/// restored database.
async fn an_event_fired_again_after_a_restore_keeps_its_delivery_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let wang = server.login("wang").await;
    let admin = server.login("admin").await;
    let (url, got) = receiver(false).await;
    let http = reqwest::Client::new();
    let allow = http
        .put(format!("{}/api/v1/settings/webhook-destinations", server.base))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({ "allow_private": true }));
    assert_eq!(allow.send().await.expect("put").status(), 204);
    let hook = http
        .post(format!("{}/api/v1/settings/webhooks", server.base))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({ "url": url }));
    assert_eq!(hook.send().await.expect("post").status(), 201);
    let id = desk
        .replica
        .create(&NewOrder {
            kind: Kind::Repair,
            category: Category::Elevator,
            grade: Grade::Critical,
            channel: Channel::Hotline,
            location: Location::common_area("hy-garden", "5号楼2号电梯"),
            description: "电梯困人".into(),
            reporter: wang.user,
            occurred_at_ms: None,
        })
        .expect("create");
    desk.replica.transition(id, Action::Assign(wang.user), None).expect("assign");
    desk.synced().await;
    let t0 = desk.replica.order(id).expect("order").created_at_ms();

    // The nightly backup, then half the response time passes: the warning fires and goes out.
    let database = server.stop().await;
    let backup = database.backup().await;
    let server = TestServer::start_on(database).await;
    let client = webhooks::client();
    let at = t0 + 15 * MINUTE + 1_000;
    escalation::tick(&server.state, at).await.expect("tick");
    assert!(webhooks::deliver(&server.state, &client, at + 1_000).await.expect("deliver") >= 1);
    let ours = |got: &[Received]| got.iter().filter(|r| r.body.contains(&id.to_string())).cloned().collect::<Vec<_>>();
    let first = ours(&got.lock().unwrap());
    assert_eq!(first.len(), 1, "delivered once");

    // The disk dies; the backup comes back; the phone resends; the scanner looks again.
    let database = server.stop().await;
    let database = database.restore(backup).await;
    let server = TestServer::start_on(database).await;
    desk.base = server.base.clone();
    desk.synced().await;
    escalation::tick(&server.state, at + 2_000).await.expect("tick");
    webhooks::deliver(&server.state, &client, at + 3_000).await.expect("deliver");
    let all = ours(&got.lock().unwrap());
    assert_eq!(all.len(), 2, "the lost record fired again and went out again");
    assert_eq!(all[0].delivery, all[1].delivery, "under the same delivery id: one event for the receiver");
    let events = server.state.db.sla_events(&desk.session.org, id).await.expect("events");
    let warnings = events.iter().filter(|e| e.stage == "response" && e.level == "warn_50").count();
    assert_eq!(warnings, 1, "recorded once in the restored database: {events:?}");
    server.stop().await.drop_database().await;
}
