//! The server killed with SIGKILL at random moments while phones push notes and the desk
//! registers orders, then started again on the same database, round after round: every change
//! it acknowledged is there afterwards, every phone converges, every order reads, and official
//! numbers stay unique. On SQLite and PostgreSQL.
//!
//! The CI runs a few kills per backend with four phones; `LOOPWORK_CRASH_KILLS=N` and
//! `LOOPWORK_CRASH_PHONES=N` run a longer campaign under a heavier load (its figures are in
//! docs/reliability.md). Each run prints one JSON line.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use loopwork_sync_core::OrderId;
use loopwork_sync_core::store::OrderQuery;
use loopwork_tests::tools::{serve_binary, server_binary};
use loopwork_tests::{Backend, Device, TestDatabase, login_at, tally_notes};
use serde_json::Value;

const PASSWORD: &str = loopwork_server::demo::DEMO_PASSWORD;

/// Starts the binary on the database: its address, the process, and how long it took to serve.
async fn start(dir: &std::path::Path, database: &TestDatabase) -> (String, tokio::process::Child, Duration) {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(server_binary());
    command
        .current_dir(dir)
        .arg("serve")
        .env("LOOPWORK_LISTEN", "127.0.0.1:0")
        .env("LOOPWORK_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "error");
    if database.backend == Backend::Postgres {
        command.env("LOOPWORK_DATABASE_URL", &database.url);
    }
    let (base, _, child) = serve_binary(command).await;
    (base, child, started.elapsed())
}

/// A small deterministic generator (the run's seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

async fn killed_at_random_it_loses_nothing_it_acknowledged(backend: Backend) {
    let _ = loopwork_server::webhooks::client();
    let kills: usize = std::env::var("LOOPWORK_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(4);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    let mut rng = Rng(seed);
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let (mut base, mut child, _) = start(dir.path(), &database).await;

    // Phones of customer service (each sign-in is a device): four in CI, LOOPWORK_CRASH_PHONES
    // for a campaign; all write and sync at once until the server dies under them.
    let phone_count: usize = std::env::var("LOOPWORK_CRASH_PHONES").ok().and_then(|n| n.parse().ok()).unwrap_or(4);
    let mut phones = Vec::new();
    for _ in 0..phone_count {
        let mut phone = Device::new(&base, login_at(&base, "kefu", PASSWORD).await);
        phone.synced().await;
        phones.push(phone);
    }
    let orders: Vec<OrderId> = phones[0]
        .replica
        .list(&OrderQuery { open_only: true, limit: 40, ..Default::default() })
        .expect("list")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert!(!orders.is_empty(), "the demo has open orders");
    let desk = login_at(&base, "kefu", PASSWORD).await;

    let mut acked_notes: BTreeMap<OrderId, BTreeSet<String>> = BTreeMap::new();
    // Each phone's notes not yet acknowledged (a settled sync acknowledges them all).
    let mut unacked: Vec<Vec<(OrderId, String)>> = vec![Vec::new(); phones.len()];
    let mut made_notes: BTreeMap<OrderId, BTreeSet<String>> = BTreeMap::new();
    let mut acked_registrations: BTreeSet<String> = BTreeSet::new();
    let mut restart_ms: Vec<u128> = Vec::new();
    let http = reqwest::Client::new();
    for round in 0..kills {
        // A heavier load needs longer between kills for its syncs to be acknowledged at all.
        let window = 600 * phone_count.div_ceil(4) as u64;
        let deadline = Instant::now() + Duration::from_millis(150 + rng.next(window));
        // Each phone writes and syncs until the server dies under it: what it made, and what a
        // settled sync acknowledged.
        let phones_work = futures_util::future::join_all(phones.iter_mut().zip(unacked.iter_mut()).enumerate().map(
            |(p, (phone, pending))| {
                let orders = &orders;
                async move {
                    let (mut made, mut acked) = (Vec::new(), Vec::new());
                    for n in 0.. {
                        let order = orders[(p * 7 + n) % orders.len()];
                        let text = format!("r{round}-p{p}-n{n}");
                        if phone.replica.add_note(order, &text).is_err() {
                            break;
                        }
                        made.push((order, text.clone()));
                        pending.push((order, text));
                        match phone.sync().await {
                            Ok(_) => acked.append(pending),
                            Err(_) => break,
                        }
                    }
                    (made, acked)
                }
            },
        ));
        // The desk registers orders meanwhile.
        let desk_work = async {
            let mut registered = Vec::new();
            for n in 0.. {
                let answer = http
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&desk.token)
                    .json(&serde_json::json!({
                        "kind": "repair", "category": "water_electric", "channel": "hotline",
                        "project": "hy-garden", "building": "3", "unit": "3-1502",
                        "description": format!("round {round} registration {n}"),
                    }))
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status() == 201 => {
                        let body: Value = response.json().await.expect("json");
                        registered.push(body["id"].as_str().expect("id").to_owned());
                    }
                    _ => break,
                }
            }
            registered
        };
        let kill = async {
            tokio::time::sleep_until(deadline.into()).await;
            child.start_kill().expect("SIGKILL");
        };
        let (results, registered, _) = tokio::join!(phones_work, desk_work, kill);
        for (made, acked) in results {
            for (order, text) in made {
                made_notes.entry(order).or_default().insert(text);
            }
            for (order, text) in acked {
                acked_notes.entry(order).or_default().insert(text);
            }
        }
        acked_registrations.extend(registered);
        child.wait().await.expect("killed");
        let (new_base, new_child, took) = start(dir.path(), &database).await;
        restart_ms.push(took.as_millis());
        base = new_base;
        child = new_child;
        for phone in &mut phones {
            phone.base = base.clone();
        }
    }

    // Every phone settles with the last server (twice round: the first phones to sync pull what
    // the last ones sent after them); then the server's view is checked.
    for _ in 0..2 {
        for phone in &mut phones {
            phone.synced().await;
        }
    }
    let staff = login_at(&base, "kefu", PASSWORD).await;
    let get = |path: String| {
        let http = http.clone();
        let token = staff.token.clone();
        async move {
            let response = http.get(path).bearer_auth(token).send().await.expect("get");
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let tally = tally_notes(&base, &staff.token, &made_notes, &phones).await;
    let (lost, duplicated) = (tally.lost, tally.duplicated);
    // Every acknowledged note is one of those made (a settled sync acknowledges what it sent).
    let checked: usize = acked_notes.values().map(BTreeSet::len).sum();
    let (_, queue) = get(format!("{base}/api/v1/orders?limit=500")).await;
    let rows = queue.as_array().expect("queue");
    let ids: BTreeSet<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    let numbers: BTreeSet<&str> = rows.iter().filter_map(|r| r["number"].as_str()).collect();
    let missing_registrations = acked_registrations.iter().filter(|id| !ids.contains(id.as_str())).count();
    let mut sorted = restart_ms.clone();
    sorted.sort();
    let report = serde_json::json!({
        "backend": format!("{backend:?}").to_lowercase(),
        "seed": seed,
        "kills": kills,
        "phones": phone_count,
        "acknowledged_notes_checked": checked,
        "notes_made": made_notes.values().map(BTreeSet::len).sum::<usize>(),
        "registrations_acknowledged": acked_registrations.len(),
        "lost": lost + missing_registrations,
        "duplicated": duplicated,
        "restart_ms_max": restart_ms.iter().max(),
        "restart_ms_median": sorted.get(sorted.len() / 2),
    });
    eprintln!("{report}");
    assert_eq!(missing_registrations, 0, "{report}");
    assert_eq!(lost, 0, "{report}");
    assert_eq!(duplicated, 0, "{report}");
    assert_eq!(numbers.len(), rows.len(), "official numbers are unique: {report}");
    assert!(checked > 0, "the run acknowledged something: {report}");
    // Serving again is the database's recovery and the warm-up, not a timeout (a start once
    // waited 30 s for a connection the writer holds).
    assert!(restart_ms.iter().all(|ms| *ms < 10_000), "{report}");
    child.kill().await.expect("stop");
    database.drop_database().await;
}

#[tokio::test]
async fn sqlite_killed_at_random_it_loses_nothing_it_acknowledged() {
    killed_at_random_it_loses_nothing_it_acknowledged(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_killed_at_random_it_loses_nothing_it_acknowledged() {
    killed_at_random_it_loses_nothing_it_acknowledged(Backend::Postgres).await;
}
