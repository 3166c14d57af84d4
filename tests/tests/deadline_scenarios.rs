//! Deadlines at real calendar dates, on SQLite and PostgreSQL, with the server's clock fixed by
//! the test (docs/deadlines.md): a 30-minute response registered at 17:50 on the Friday before
//! Qingming (清明) under office hours and under 24×7, and a resolution clock paused across a
//! weekend. Devices' changes are pushed at the instants they claim, so every time is the
//! scenario's, not the machine's.

use std::sync::Arc;

use automerge::ChangeHash;
use loopwork_server::escalation;
use loopwork_server::replication::{Principal, parse_pushed};
use loopwork_sync_core::{
    Action, Category, Channel, FixedClock, Grade, HoldReason, Kind, Location, NewOrder, OrderId, WorkOrder,
};
use loopwork_tests::{Backend, Session, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    a_response_due_at_ten_to_six_on_the_friday_before_qingming,
    a_pause_across_the_weekend_moves_the_resolution_deadline_by_its_working_time,
);

// Instants in China Standard Time (UTC+8).
const FRI_2026_04_03_1750: i64 = 1_775_209_800_000;
const FRI_2026_04_03_1805: i64 = 1_775_210_700_000;
const FRI_2026_04_03_181230: i64 = 1_775_211_150_000;
const FRI_2026_04_03_1820: i64 = 1_775_211_600_000;
const TUE_2026_04_07_0905: i64 = 1_775_523_900_000;
const TUE_2026_04_07_091230: i64 = 1_775_524_350_000;
const TUE_2026_04_07_0920: i64 = 1_775_524_800_000;
const FRI_2026_11_20_1000: i64 = 1_795_140_000_000;
const FRI_2026_11_20_1700: i64 = 1_795_165_200_000;
const FRI_2026_11_20_1800: i64 = 1_795_168_800_000;
const MON_2026_11_23_1000: i64 = 1_795_399_200_000;
const MON_2026_11_23_1100: i64 = 1_795_402_800_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Puts a policy first in the organization's SLA book (as its administrator would).
async fn add_policy(server: &TestServer, policy: Value) {
    let admin = server.login("admin").await;
    let url = format!("{}/api/v1/settings/sla", server.base);
    let http = reqwest::Client::new();
    let mut book: Value =
        http.get(&url).bearer_auth(&admin.token).send().await.expect("get").json().await.expect("json");
    book["policies"].as_array_mut().expect("policies").insert(0, policy);
    let response = http.put(&url).bearer_auth(&admin.token).json(&book).send().await.expect("put");
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap_or_default());
}

/// Pushes the changes of `order` since `before`, as `session`'s device, received by the server
/// at `at`.
async fn push_since(server: &TestServer, session: &Session, order: &WorkOrder, before: &[ChangeHash], at: i64) {
    let principal: Principal = session.principal();
    let changes = order
        .changes_since(before)
        .iter()
        .map(|(_, bytes)| parse_pushed(&principal, bytes).expect("own change"))
        .collect();
    server.state.db.push(&principal, &[(order.id(), changes)], &[], at).await.expect("push");
}

/// Pushes what an edit of `order` made, as `session`'s device, received by the server at `at`.
async fn push(
    server: &TestServer,
    session: &Session,
    order: &mut WorkOrder,
    at: i64,
    edit: impl FnOnce(&mut WorkOrder),
) {
    let before = order.heads();
    order.set_device(session.device);
    edit(order);
    push_since(server, session, order, &before, at).await;
}

/// An order registered and assigned to `technician` by `desk` at `at`.
async fn registered(server: &TestServer, desk: &Session, technician: &Session, grade: Grade, at: i64) -> WorkOrder {
    let owner = server.login("yezhu1502").await.user;
    let me = desk.identity();
    let mut order = WorkOrder::create(&new_order(grade, owner), &me, at).expect("create");
    order.transition(&me, Action::Assign(technician.user), None, at).expect("assign");
    push_since(server, desk, &order, &[], at).await;
    order
}

/// `stage/level@at` of what fired on the order, in order; and each one's deadline.
async fn fired(server: &TestServer, session: &Session, id: OrderId) -> Vec<(String, i64, i64)> {
    let events = server.state.db.sla_events(&session.org, id).await.expect("events");
    events.into_iter().map(|e| (format!("{}/{}", e.stage, e.level), e.at_ms, e.due_ms)).collect()
}

fn new_order(grade: Grade, reporter: loopwork_sync_core::UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "卫生间漏水".into(),
        reporter,
        occurred_at_ms: None,
    }
}

async fn a_response_due_at_ten_to_six_on_the_friday_before_qingming(backend: Backend) {
    let clock = Arc::new(FixedClock::at(FRI_2026_04_03_1750));
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    // 一般 orders answer within 30 minutes of office hours; 较重 ones keep the seeded 24×7.
    add_policy(
        &server,
        json!({"name": "office-minor", "kinds": [], "categories": [], "grades": ["minor"],
               "response": {"minutes": 30, "calendar": "office"}, "arrival": null,
               "resolution": {"minutes": 1620, "calendar": "office"}}),
    )
    .await;
    let kefu = server.login("kefu").await;
    let wang = server.login("wang").await;
    let office = registered(&server, &kefu, &wang, Grade::Minor, FRI_2026_04_03_1750).await.id();
    let round_the_clock = registered(&server, &kefu, &wang, Grade::Serious, FRI_2026_04_03_1750).await.id();
    let tick = |at: i64| {
        clock.set(at);
        escalation::tick(&server.state, at)
    };

    tick(FRI_2026_04_03_1820 - 1).await.expect("tick");
    assert_eq!(
        fired(&server, &kefu, round_the_clock).await,
        [
            ("response/warn_50".into(), FRI_2026_04_03_1805, FRI_2026_04_03_1820),
            ("response/warn_75".into(), FRI_2026_04_03_181230, FRI_2026_04_03_1820),
        ]
    );
    tick(FRI_2026_04_03_1820 + MINUTE).await.expect("tick");
    assert_eq!(
        fired(&server, &kefu, round_the_clock).await[2],
        ("response/breach".into(), FRI_2026_04_03_1820, FRI_2026_04_03_1820)
    );

    // Office hours: 10 minutes on Friday, none over the holiday (4–6 April), the other 20 on
    // Tuesday morning. Nothing fires over the long weekend.
    assert!(fired(&server, &kefu, office).await.is_empty(), "{:?}", fired(&server, &kefu, office).await);
    tick(TUE_2026_04_07_0905 - 1).await.expect("tick");
    assert!(fired(&server, &kefu, office).await.is_empty(), "nothing before 09:05 on Tuesday");
    tick(TUE_2026_04_07_0920 + MINUTE).await.expect("tick");
    assert_eq!(
        fired(&server, &kefu, office).await,
        [
            ("response/warn_50".into(), TUE_2026_04_07_0905, TUE_2026_04_07_0920),
            ("response/warn_75".into(), TUE_2026_04_07_091230, TUE_2026_04_07_0920),
            ("response/breach".into(), TUE_2026_04_07_0920, TUE_2026_04_07_0920),
        ]
    );
    server.stop().await.drop_database().await;
}

async fn a_pause_across_the_weekend_moves_the_resolution_deadline_by_its_working_time(backend: Backend) {
    let clock = Arc::new(FixedClock::at(FRI_2026_11_20_1000));
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    // Resolution within 8 office hours (09:00–18:00, Monday to Friday).
    add_policy(
        &server,
        json!({"name": "office-resolution", "kinds": [], "categories": [], "grades": ["minor"],
               "response": {"minutes": 30, "calendar": "24x7"}, "arrival": null,
               "resolution": {"minutes": 480, "calendar": "office"}}),
    )
    .await;
    let kefu = server.login("kefu").await;
    let wang = server.login("wang").await;
    let mut order = registered(&server, &kefu, &wang, Grade::Minor, FRI_2026_11_20_1000).await;
    let id = order.id();
    let tech = wang.identity();
    let at = FRI_2026_11_20_1000 + 10 * MINUTE;
    push(&server, &wang, &mut order, at, |o| {
        for action in [Action::Accept, Action::Arrive, Action::Start] {
            o.transition(&tech, action, None, at).expect("work");
        }
    })
    .await;
    let tick = |at: i64| {
        clock.set(at);
        escalation::tick(&server.state, at)
    };
    tick(FRI_2026_11_20_1700 - 1).await.expect("tick");
    // Waiting for parts from 17:00 on Friday to 10:00 on Monday: two office hours.
    push(&server, &wang, &mut order, FRI_2026_11_20_1700, |o| {
        o.transition(&tech, Action::Hold(HoldReason::WaitingForParts), Some("等配件"), FRI_2026_11_20_1700)
            .expect("hold");
    })
    .await;
    tick(FRI_2026_11_20_1800 + HOUR).await.expect("tick");
    tick(MON_2026_11_23_1000 - 1).await.expect("tick");
    let breaches = |events: &[(String, i64, i64)]| events.iter().filter(|e| e.0 == "resolution/breach").count();
    assert_eq!(breaches(&fired(&server, &kefu, id).await), 0, "no breach while paused, nor at Friday's 18:00");
    push(&server, &wang, &mut order, MON_2026_11_23_1000, |o| {
        o.transition(&tech, Action::Resume, None, MON_2026_11_23_1000).expect("resume");
    })
    .await;
    tick(MON_2026_11_23_1100 - 1).await.expect("tick");
    assert_eq!(breaches(&fired(&server, &kefu, id).await), 0, "not before 11:00 on Monday");
    tick(MON_2026_11_23_1100 + 1).await.expect("tick");
    let events = fired(&server, &kefu, id).await;
    let breach: Vec<_> = events.iter().filter(|e| e.0 == "resolution/breach").collect();
    assert_eq!(breach, [&("resolution/breach".to_owned(), MON_2026_11_23_1100, MON_2026_11_23_1100)], "{events:?}");
    // Before the pause, the warnings of the original deadline (Friday 18:00) fired on time.
    assert!(
        events.contains(&("resolution/warn_50".into(), FRI_2026_11_20_1000 + 4 * HOUR, FRI_2026_11_20_1800)),
        "{events:?}"
    );
    assert!(
        events.contains(&("resolution/warn_75".into(), FRI_2026_11_20_1000 + 6 * HOUR, FRI_2026_11_20_1800)),
        "{events:?}"
    );
    server.stop().await.drop_database().await;
}
