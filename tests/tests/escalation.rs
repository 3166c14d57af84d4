//! Escalation over HTTP, on SQLite and PostgreSQL: warnings at half and three quarters of a
//! target and a breach at the deadline, each once, to the right people; breaches stay on record;
//! two server processes scanning at once fire each checkpoint once.

use loopwork_server::escalation;
use loopwork_sync_core::{Action, Category, Channel, Clock, Grade, Kind, Location, NewOrder, OrderId, SystemClock};
use loopwork_tests::{Backend, Device, TestServer, on_both_backends};
use serde_json::Value;

on_both_backends!(
    a_response_deadline_warns_then_breaches_once_each_to_the_right_people,
    an_organization_s_own_policies_set_the_targets,
    a_device_clock_in_the_past_cannot_stretch_a_deadline,
    an_organization_s_escalation_chain_decides_who_hears_what,
    only_what_a_deadline_depends_on_sends_the_scanner_back,
);

const MINUTE: i64 = 60_000;

async fn synced(device: &mut Device) {
    device.synced().await;
}

/// A 重大 (critical) burst pipe assigned to Wang and not yet accepted; its creation time.
async fn critical_order(desk: &mut Device, wang: &Device) -> (OrderId, i64) {
    let id = desk
        .replica
        .create(&NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Critical,
            channel: Channel::Hotline,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "总水管爆裂,楼道积水".into(),
            reporter: wang.session.user,
            occurred_at_ms: None,
        })
        .expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(desk).await;
    let created = desk.replica.order(id).expect("order").created_at_ms();
    (id, created)
}

async fn get(url: String, token: &str) -> Value {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("get");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// `stage/level` of the order's fired checkpoints, in order.
async fn fired(server: &TestServer, desk: &Device, id: OrderId) -> Vec<String> {
    let events = get(format!("{}/api/v1/orders/{id}/sla-events", server.base), &desk.session.token).await;
    events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| format!("{}/{}", e["stage"].as_str().unwrap(), e["level"].as_str().unwrap()))
        .collect()
}

/// The levels of `device`'s notifications about the order.
async fn told(server: &TestServer, device: &Device, id: OrderId) -> Vec<String> {
    let feed = get(format!("{}/api/v1/notifications", server.base), &device.session.token).await;
    let mut levels: Vec<String> = feed
        .as_array()
        .expect("list")
        .iter()
        .filter(|n| n["order_id"] == id.to_string())
        .map(|n| format!("{}/{}", n["stage"].as_str().unwrap(), n["level"].as_str().unwrap()))
        .collect();
    levels.sort();
    levels
}

async fn a_response_deadline_warns_then_breaches_once_each_to_the_right_people(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let chief = server.device("zhuguan").await;
    let li = server.device("li").await;
    let (id, t0) = critical_order(&mut desk, &wang).await;
    let tick = |at: i64| escalation::tick(&server.state, at);

    tick(t0 + 14 * MINUTE).await.expect("tick");
    assert!(fired(&server, &desk, id).await.is_empty(), "nothing before half the 30 minutes");
    tick(t0 + 15 * MINUTE + 1_000).await.expect("tick");
    tick(t0 + 15 * MINUTE + 2_000).await.expect("tick");
    assert_eq!(fired(&server, &desk, id).await, ["response/warn_50"], "once");
    assert_eq!(told(&server, &wang, id).await, ["response/warn_50"]);
    assert!(told(&server, &chief, id).await.is_empty(), "a first warning is the technician's");

    tick(t0 + 23 * MINUTE).await.expect("tick");
    tick(t0 + 31 * MINUTE).await.expect("tick");
    assert_eq!(fired(&server, &desk, id).await, ["response/warn_50", "response/warn_75", "response/breach"]);
    assert_eq!(told(&server, &wang, id).await, ["response/breach", "response/warn_50", "response/warn_75"]);
    assert_eq!(told(&server, &chief, id).await, ["response/breach", "response/warn_75"]);
    assert_eq!(told(&server, &desk, id).await, ["response/breach"]);
    assert!(told(&server, &li, id).await.is_empty(), "other technicians hear nothing");

    // Wang accepts, late: no more response checkpoints, and the breach stays on record.
    synced(&mut wang).await;
    wang.replica.transition(id, Action::Accept, None).expect("accept");
    synced(&mut wang).await;
    tick(t0 + 90 * MINUTE + 1_000).await.expect("tick");
    let events = fired(&server, &desk, id).await;
    assert_eq!(&events[..3], ["response/warn_50", "response/warn_75", "response/breach"]);
    assert_eq!(&events[3..], ["arrival/warn_50", "arrival/warn_75"], "arrival within 2 hours: half and three quarters");

    // Notifications are read one by one.
    let feed = get(format!("{}/api/v1/notifications", server.base), &wang.session.token).await;
    let first = feed[0]["id"].as_str().expect("id").to_owned();
    let http = reqwest::Client::new();
    let read = http.post(format!("{}/api/v1/notifications/{first}/read", server.base)).bearer_auth(&wang.session.token);
    assert_eq!(read.send().await.expect("read").status(), 204);
    let elsewhere =
        http.post(format!("{}/api/v1/notifications/{first}/read", server.base)).bearer_auth(&li.session.token);
    assert_eq!(elsewhere.send().await.expect("read").status(), 404, "only one's own");
    let feed = get(format!("{}/api/v1/notifications", server.base), &wang.session.token).await;
    assert!(feed.as_array().expect("list").iter().any(|n| n["id"] == first && n["read_at_ms"].is_i64()));

    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("loopwork_sla_events_total{level=\"breach\",stage=\"response\"}"), "{metrics}");
    server.stop().await.drop_database().await;
}

/// Two server processes on one PostgreSQL scan at the same moment: each checkpoint fires once
/// and each person is told once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_scanning_at_once_fire_each_checkpoint_once() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = first.replica().await;
    let mut desk = first.device("kefu").await;
    let wang = first.device("wang").await;
    let (id, t0) = critical_order(&mut desk, &wang).await;
    let later = t0 + 31 * MINUTE;
    let (a, b) = tokio::join!(escalation::tick(&first.state, later), escalation::tick(&second.state, later));
    a.expect("first");
    b.expect("second");
    let (c, d) = tokio::join!(escalation::tick(&first.state, later + 1), escalation::tick(&second.state, later + 1));
    c.expect("first");
    d.expect("second");
    assert_eq!(fired(&first, &desk, id).await, ["response/warn_50", "response/warn_75", "response/breach"]);
    assert_eq!(told(&first, &wang, id).await, ["response/breach", "response/warn_50", "response/warn_75"]);
    second.stop().await;
    first.stop().await.drop_database().await;
}

async fn an_organization_s_own_policies_set_the_targets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let wang = server.device("wang").await;
    let admin = server.login("admin").await;
    let url = format!("{}/api/v1/settings/sla", server.base);
    let http = reqwest::Client::new();

    // The seeded defaults, with the office calendar and its holidays.
    let mut book = get(url.clone(), &desk.session.token).await;
    assert_eq!(book["calendars"]["office"]["zone"], "Asia/Shanghai");
    assert!(book["calendars"]["office"]["holidays"].as_array().expect("holidays").iter().any(|d| d == "2026-10-01"));
    assert_eq!(book["policies"].as_array().expect("policies").last().expect("default")["name"], "default");

    // Critical orders must be answered within 10 minutes.
    let critical = book["policies"]
        .as_array_mut()
        .expect("policies")
        .iter_mut()
        .find(|p| p["name"] == "critical")
        .expect("critical");
    critical["response"]["minutes"] = 10.into();
    let put = |token: String, body: Value| http.put(&url).bearer_auth(token).json(&body).send();
    assert_eq!(put(desk.session.token.clone(), book.clone()).await.expect("put").status(), 403);
    let mut no_default = book.clone();
    no_default["policies"].as_array_mut().expect("policies").pop();
    assert_eq!(put(admin.token.clone(), no_default).await.expect("put").status(), 400);
    let mut bad_zone = book.clone();
    bad_zone["calendars"]["office"]["zone"] = "Mars/Olympus".into();
    assert_eq!(put(admin.token.clone(), bad_zone).await.expect("put").status(), 400);
    assert_eq!(put(admin.token.clone(), book.clone()).await.expect("put").status(), 204);
    assert_eq!(get(url.clone(), &desk.session.token).await, book, "what was stored is what is read");

    let (id, t0) = critical_order(&mut desk, &wang).await;
    escalation::tick(&server.state, t0 + 5 * MINUTE + 1_000).await.expect("tick");
    assert_eq!(fired(&server, &desk, id).await, ["response/warn_50"], "half of 10 minutes");
    escalation::tick(&server.state, t0 + 10 * MINUTE + 1_000).await.expect("tick");
    assert_eq!(fired(&server, &desk, id).await, ["response/warn_50", "response/warn_75", "response/breach"]);
    server.stop().await.drop_database().await;
}

/// A phone whose clock says its hold began three days ago (a wrong or dishonest clock) cannot
/// pause the resolution clock for three days: the server counts the claim from the phone's last
/// sync, and the document keeps the claim as made.
async fn a_device_clock_in_the_past_cannot_stretch_a_deadline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let (id, t0) = critical_order(&mut desk, &wang).await;
    wang.synced().await;
    wang.online = false;
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        wang.replica.transition(id, action, None).expect("work");
    }
    let three_days = 3 * 24 * 60 * MINUTE;
    wang.replica
        .edit(id, |order, me, now| {
            order.transition(me, Action::Hold(loopwork_sync_core::HoldReason::WaitingForParts), None, now - three_days)
        })
        .expect("hold, claimed three days ago");
    wang.replica.transition(id, Action::Resume, None).expect("resume");
    wang.online = true;
    wang.synced().await;
    let pauses = wang.replica.order(id).expect("order").state().expect("state").pauses;
    assert!(pauses[0].1.expect("ended") - pauses[0].0 >= three_days, "the document keeps the claim");

    // 重大: resolution within 4 hours. Had the claim counted, nothing would be due for 3 more days.
    escalation::tick(&server.state, t0 + 4 * 60 * MINUTE + 10 * MINUTE).await.expect("tick");
    let events = fired(&server, &desk, id).await;
    assert!(events.contains(&"resolution/breach".to_owned()), "{events:?}");
    server.stop().await.drop_database().await;
}

async fn an_organization_s_escalation_chain_decides_who_hears_what(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let wang = server.device("wang").await;
    let chief = server.device("zhuguan").await;
    let admin = server.device("admin").await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/settings/escalation", server.base);

    // The seeded chain, readable by office staff.
    let seeded = get(url.clone(), &desk.session.token).await;
    assert_eq!(seeded["warn_50"]["critical"], serde_json::json!(["assignee"]));
    assert_eq!(seeded["breach"]["critical"], serde_json::json!(["assignee", "dispatcher", "supervisor", "manager"]));

    // Refused: not an administrator; an unknown recipient; a breach nobody hears; a field too many.
    let put = |token: &str, body: Value| http.put(url.clone()).bearer_auth(token).json(&body).send();
    assert_eq!(put(&desk.session.token, seeded.clone()).await.expect("put").status(), 403);
    let mut unknown = seeded.clone();
    unknown["warn_75"]["minor"] = serde_json::json!(["assignee", "mayor"]);
    let mut silent = seeded.clone();
    silent["breach"]["serious"] = serde_json::json!([]);
    let mut twice = seeded.clone();
    twice["warn_50"]["severe"] = serde_json::json!(["supervisor", "supervisor"]);
    let mut extra = seeded.clone();
    extra["warn_90"] = seeded["warn_75"].clone();
    for (what, body, code) in [
        ("unknown", unknown, "invalid_escalation"),
        ("silent", silent, "invalid_escalation"),
        ("twice", twice, "invalid_escalation"),
        ("extra", extra, "invalid_json"),
    ] {
        let response = put(&admin.session.token, body).await.expect("put");
        assert_eq!(response.status(), 400, "{what}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], code, "{what}: {error}");
    }
    assert_eq!(get(url.clone(), &desk.session.token).await, seeded, "a refused chain changes nothing");

    // The organization's own: 重大 warnings at half go to the supervisor instead of the
    // technician, and its breach to the administrator only.
    let mut own = seeded.clone();
    own["warn_50"]["critical"] = serde_json::json!(["supervisor"]);
    own["breach"]["critical"] = serde_json::json!(["admin"]);
    assert_eq!(put(&admin.session.token, own.clone()).await.expect("put").status(), 204);
    assert_eq!(get(url.clone(), &desk.session.token).await, own);

    let (id, t0) = critical_order(&mut desk, &wang).await;
    escalation::tick(&server.state, t0 + 15 * MINUTE + 1_000).await.expect("tick");
    assert_eq!(told(&server, &chief, id).await, ["response/warn_50"]);
    assert!(told(&server, &wang, id).await.is_empty(), "not the technician, by this chain");
    escalation::tick(&server.state, t0 + 31 * MINUTE).await.expect("tick");
    assert_eq!(told(&server, &admin, id).await, ["response/breach"]);
    assert_eq!(told(&server, &wang, id).await, ["response/warn_75"], "three quarters as seeded");
    assert!(told(&server, &desk, id).await.is_empty(), "customer service is not on this chain's breach");
    server.stop().await.drop_database().await;
}

/// A note changes nothing the scanner reads, so the order is not looked at again for it; a
/// transition or a new grade is. (A scan of every noted order would cost the sync path a look per push.)
async fn only_what_a_deadline_depends_on_sends_the_scanner_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let (id, _) = critical_order(&mut desk, &wang).await;
    let now = SystemClock.now_ms();
    let due = |server: &TestServer| {
        let db = server.state.db.clone();
        async move { db.checks_due(now + MINUTE, 10_000).await.expect("due").into_iter().any(|c| c.order == id) }
    };
    assert!(due(&server).await, "a new order is looked at");
    escalation::tick(&server.state, now + MINUTE).await.expect("scan");
    assert!(!due(&server).await, "looked at: its next check is its first checkpoint");

    synced(&mut wang).await;
    wang.replica.add_note(id, "已到现场,关闭总阀").expect("note");
    synced(&mut wang).await;
    assert!(!due(&server).await, "a note does not send the scanner back");

    wang.replica.transition(id, Action::Accept, None).expect("accept");
    synced(&mut wang).await;
    assert!(due(&server).await, "a transition does");
    escalation::tick(&server.state, now + MINUTE).await.expect("scan");
    assert!(!due(&server).await, "looked at again");

    synced(&mut desk).await;
    desk.replica.set_grade(id, Grade::Serious).expect("grade");
    synced(&mut desk).await;
    assert!(due(&server).await, "so does a new grade, with no transition");
    server.stop().await.drop_database().await;
}
