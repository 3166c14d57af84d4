//! `loopwork-sim dashboards`: the desk's panels on a large organization. Seeds orders through
//! the server's push path as real devices would make them (registered and assigned by customer
//! service over 90 days; most accepted, worked and completed by one of twenty technicians; most
//! of those confirmed and rated by the owner), lets the scanner materialize what the panels read,
//! then times each panel's HTTP request (one JSON object).

use std::time::Instant;

use loopwork_server::auth;
use loopwork_server::replication::{Principal, parse_pushed};
use loopwork_sync_core::{
    Action, Category, Channel, Clock, Grade, Identity, Kind, Location, NewOrder, OrderId, SystemClock, WorkOrder,
};
use loopwork_tests::{Backend, TestDatabase, TestServer};

const DAY: i64 = 86_400_000;
const BATCH: usize = 500;

/// A signed-in user of the seed, with a device of their own.
pub struct Actor {
    principal: Principal,
    token: String,
}

impl Actor {
    fn identity(&self) -> Identity {
        self.principal.identity()
    }
}

async fn actor(server: &TestServer, login: &str) -> Actor {
    let user = server.state.db.user_by_login(login).await.expect("user").expect("user exists");
    let token = auth::new_token();
    let now = SystemClock.now_ms();
    let device = server.state.db.register_device(&user, "bench", &auth::token_hash(&token), now).await.expect("device");
    let principal = Principal { user: user.id, role: user.role, org: user.org.clone(), device, project_bound: false };
    Actor { principal, token }
}

async fn push(server: &TestServer, actor: &Actor, batch: &mut Vec<(OrderId, Vec<automerge::Change>)>) {
    if batch.is_empty() {
        return;
    }
    server.state.db.push(&actor.principal, batch, &[], SystemClock.now_ms()).await.expect("seed push");
    batch.clear();
}

/// The changes an edit made, as the server parses a device's push.
fn changes_of(order: &WorkOrder, before: &[automerge::ChangeHash], by: &Actor) -> Vec<automerge::Change> {
    order
        .changes_since(before)
        .iter()
        .map(|(_, bytes)| parse_pushed(&by.principal, bytes).expect("own change"))
        .collect()
}

/// Seeds the demo and `orders` orders over the 90 days before `now`, through the push path (see
/// the module's documentation); the desk's actor.
pub async fn seed(server: &TestServer, orders: usize, now: i64) -> Actor {
    loopwork_server::demo::seed(server.state.db.as_ref(), SystemClock.now_ms()).await.expect("demo data");
    let desk = actor(server, "kefu").await;
    let owner = actor(server, "yezhu1502").await;
    let hash = auth::hash_password(super::PASSWORD).expect("hash");
    let mut technicians = Vec::new();
    for i in 0..20 {
        let login = format!("dash-{i}");
        super::new_technician(server, &desk.principal.org, &login, &hash).await;
        technicians.push(actor(server, &login).await);
    }
    let (mut created, mut worked, mut confirmed) = (Vec::new(), vec![Vec::new(); technicians.len()], Vec::new());
    for i in 0..orders {
        let tech = i % technicians.len();
        let new = NewOrder {
            kind: if i % 4 == 0 { Kind::Complaint } else { Kind::Repair },
            category: Category::BUILT_IN[(i * 7) % Category::BUILT_IN.len()].clone(),
            grade: Grade::ALL[(i / 3) % Grade::ALL.len()],
            channel: if i % 3 == 0 { Channel::Hotline } else { Channel::App },
            location: Location::unit(
                loopwork_server::demo::DEMO_PROJECT,
                &format!("{}", i % 30),
                &format!("{}-{:04}", i % 30, i % 2000),
            ),
            description: format!("第{i}号:卫生间漏水,请尽快上门查看。"),
            reporter: owner.principal.user,
            occurred_at_ms: None,
        };
        // Spread evenly over 90 days, so a 30-day panel reads a third of them.
        let at = now - (i as i64 * 90 * DAY) / orders as i64 - 1;
        let mut order = WorkOrder::create(&new, &desk.identity(), at).expect("create");
        order.transition(&desk.identity(), Action::Assign(technicians[tech].principal.user), None, at).expect("assign");
        created.push((order.id(), changes_of(&order, &[], &desk)));
        if i % 10 < 8 {
            let before = order.heads();
            order.set_device(technicians[tech].principal.device);
            let me = technicians[tech].identity();
            for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
                order.transition(&me, action, None, at).expect("work");
            }
            worked[tech].push((order.id(), changes_of(&order, &before, &technicians[tech])));
            if i % 10 < 6 {
                let before = order.heads();
                order.set_device(owner.principal.device);
                let rating = [5, 5, 4, 5, 3, 4, 5, 2, 5, 4][i % 10];
                order.transition(&owner.identity(), Action::Confirm { rating }, Some("满意"), at).expect("confirm");
                confirmed.push((order.id(), changes_of(&order, &before, &owner)));
            }
        }
        if created.len() == BATCH || i + 1 == orders {
            push(server, &desk, &mut created).await;
            for (tech, batch) in technicians.iter().zip(worked.iter_mut()) {
                push(server, tech, batch).await;
            }
            push(server, &owner, &mut confirmed).await;
        }
    }
    desk
}

pub async fn run(orders: usize, repeats: usize, database_url: Option<String>) {
    let database = match &database_url {
        Some(url) if url.starts_with("postgres") => TestDatabase::postgres_on(url).await,
        _ => TestDatabase::new(Backend::Sqlite).await,
    };
    let server = TestServer::start_on(database).await;
    let now = SystemClock.now_ms();
    let started = Instant::now();
    let desk = seed(&server, orders, now).await;
    let seed_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let scan_at = SystemClock.now_ms();
    crate::scan_bench::drain_scans(&server, scan_at).await;
    let materialize_seconds = started.elapsed().as_secs_f64();

    let client = reqwest::Client::new();
    let from = now - 30 * DAY;
    let panels = [
        ("efficiency", format!("/api/v1/dashboard/efficiency?from={from}"), &desk),
        ("efficiency_90_days", format!("/api/v1/dashboard/efficiency?from={}", now - 91 * DAY), &desk),
        ("heatmap", format!("/api/v1/dashboard/heatmap?from={from}"), &desk),
        ("heatmap_cell", format!("/api/v1/orders?kind=complaint&building=3&category=elevator&from={from}"), &desk),
        ("kpis", format!("/api/v1/kpis?from={from}"), &desk),
        ("kpis_csv", format!("/api/v1/kpis?from={from}&format=csv"), &desk),
        ("queue_open", "/api/v1/orders?status=open".to_owned(), &desk),
        ("queue_search", "/api/v1/orders?q=3-0003".to_owned(), &desk),
        ("technicians", "/api/v1/technicians".to_owned(), &desk),
    ];
    let supervisor = actor(&server, "zhuguan").await;
    let mut figures = serde_json::Map::new();
    for (name, path, who) in panels {
        let token = if name.starts_with("kpis") { &supervisor.token } else { &who.token };
        let mut ms = Vec::new();
        for _ in 0..repeats {
            let started = Instant::now();
            let response = client.get(format!("{}{path}", server.base)).bearer_auth(token).send().await.expect("get");
            assert!(response.status().is_success(), "{name}: {}", response.status());
            response.bytes().await.expect("body");
            ms.push(started.elapsed().as_secs_f64() * 1_000.0);
        }
        ms.sort_by(f64::total_cmp);
        figures.insert(format!("{name}_ms_median"), super::round(ms[ms.len() / 2]).into());
        figures.insert(format!("{name}_ms_max"), super::round(ms[ms.len() - 1]).into());
    }
    let mut out = serde_json::json!({
        "backend": server.state.db.backend(),
        "orders": orders,
        "seed_seconds": super::round(seed_seconds),
        "materialize_seconds": super::round(materialize_seconds),
    });
    out.as_object_mut().expect("object").extend(figures);
    println!("{out}");
    server.stop().await.drop_database().await;
}
