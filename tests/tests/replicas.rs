//! Three `loopwork serve` processes on one PostgreSQL behind a real HAProxy (Debian's, with the
//! configuration operators use, `deploy/haproxy.cfg`): phones sync through the balancer while
//! dispatchers hold live-update streams on the replicas, and one replica is killed (SIGKILL)
//! mid-load. The phones retry through the balancer and lose nothing; live updates keep arriving
//! on the others; the deadline scanner and the webhooks, which every replica runs, fire each SLA
//! checkpoint once and deliver it once.
//!
//! The CI runs 40 phones; `LOOPWORK_REPLICA_PHONES=200` the campaign of docs/reliability.md.
//! Each run prints one JSON line.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use loopwork_sync_core::OrderId;
use loopwork_sync_core::store::OrderQuery;
use loopwork_tests::tools::{serve_binary, server_binary, tool, workspace};
use loopwork_tests::{Backend, Device, SyncError, TestDatabase, login_at, tally_notes};
use serde_json::{Value, json};

const PASSWORD: &str = loopwork_server::demo::DEMO_PASSWORD;

async fn start_replica(dir: &std::path::Path, database: &TestDatabase) -> (String, tokio::process::Child) {
    let mut command = tokio::process::Command::new(server_binary());
    command
        .current_dir(dir)
        .arg("serve")
        .env("LOOPWORK_LISTEN", "127.0.0.1:0")
        .env("LOOPWORK_METRICS_LISTEN", "127.0.0.1:0")
        .env("LOOPWORK_DATABASE_URL", &database.url)
        .env("RUST_LOG", "error");
    let (base, _, child) = serve_binary(command).await;
    (base, child)
}

/// A webhook receiver on loopback that accepts everything and keeps each body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Counts `event: feed` lines on a live stream, split at the kill.
fn listen(base: &str, token: &str, killed: Arc<AtomicBool>, before: Arc<AtomicU64>, after: Arc<AtomicU64>) {
    let request = reqwest::Client::new().get(format!("{base}/api/v1/live")).bearer_auth(token).send();
    tokio::spawn(async move {
        let Ok(response) = request.await else { return };
        let mut body = response.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            let events = String::from_utf8_lossy(&chunk).matches("event: feed").count() as u64;
            if killed.load(Ordering::Relaxed) { &after } else { &before }.fetch_add(events, Ordering::Relaxed);
        }
    });
}

/// Syncs until settled, through whatever the balancer does; the attempts it took.
async fn sync_through(phone: &mut Device) -> u64 {
    for attempt in 1..=200 {
        match phone.sync().await {
            Ok(_) => return attempt,
            Err(SyncError::Transport(_)) | Err(SyncError::Refused { status: 502..=504, .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("a sync failed with more than a replica's death: {other:?}"),
        }
    }
    panic!("a phone did not settle in 200 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_haproxy_one_killed_under_load() {
    let _ = loopwork_server::webhooks::client();
    let test_started = Instant::now();
    let phones_n: usize = std::env::var("LOOPWORK_REPLICA_PHONES").ok().and_then(|n| n.parse().ok()).unwrap_or(40);
    let rounds: usize = std::env::var("LOOPWORK_REPLICA_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(6);
    let haproxy = tool("HAPROXY", &["/usr/sbin/haproxy".into()], "haproxy");
    let database = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("dir");
    // The first replica migrates and creates the demo; the others join it.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(start_replica(dir.path(), &database).await);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut config = std::fs::read_to_string(workspace().join("deploy/haproxy.cfg")).expect("deploy/haproxy.cfg");
    config = config.replace("bind 127.0.0.1:8080", &format!("bind 127.0.0.1:{port}"));
    for (i, (base, _)) in replicas.iter().enumerate() {
        config = config.replace(&format!("127.0.0.1:808{}", i + 1), base.trim_start_matches("http://"));
    }
    let config_path = dir.path().join("haproxy.cfg");
    std::fs::write(&config_path, &config).expect("write the configuration");
    let _balancer = tokio::process::Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("haproxy.log")).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("start haproxy");
    let lb = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now();
    loop {
        let up = http.get(format!("{lb}/readyz")).send().await.is_ok_and(|r| r.status() == 200);
        if up {
            break;
        }
        let log = || std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default();
        assert!(ready.elapsed() < Duration::from_secs(15), "the balancer did not get ready:\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An administrator registers a webhook through the balancer.
    let admin = login_at(&lb, "admin", PASSWORD).await;
    let (hook_url, delivered) = receiver().await;
    let response = http
        .put(format!("{lb}/api/v1/settings/webhook-destinations"))
        .bearer_auth(&admin.token)
        .json(&json!({ "allow_private": true }))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 204);
    let response =
        http.post(format!("{lb}/api/v1/settings/webhooks")).bearer_auth(&admin.token).json(&json!({ "url": hook_url }));
    assert_eq!(response.send().await.expect("post").status(), 201);
    let hooked_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("now").as_millis() as i64;

    // Dispatchers on the live feed of the replicas that survive (the first and the third).
    let desk = login_at(&lb, "kefu", PASSWORD).await;
    let killed = Arc::new(AtomicBool::new(false));
    let (before, after) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for (base, _) in [&replicas[0], &replicas[2]] {
        listen(base, &desk.token, killed.clone(), before.clone(), after.clone());
    }

    // The phones: customer-service devices through the balancer, each with the open orders.
    let mut phones = Vec::new();
    for _ in 0..phones_n {
        let mut phone = Device::new(&lb, login_at(&lb, "kefu", PASSWORD).await);
        sync_through(&mut phone).await;
        phones.push(phone);
    }
    let orders: Vec<OrderId> = phones[0]
        .replica
        .list(&OrderQuery { open_only: true, limit: 40, ..Default::default() })
        .expect("list")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert!(!orders.is_empty());

    // The load, and in the middle of it: every open order's deadlines move into the past (the
    // scanners of all three replicas fire their checkpoints at once), then the second replica dies.
    let started = Instant::now();
    let made: Arc<Mutex<BTreeMap<OrderId, BTreeSet<String>>>> = Arc::default();
    let attempts = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let total = (phones_n * rounds) as u64;
    let load = futures_util::future::join_all(phones.iter_mut().enumerate().map(|(p, phone)| {
        let (made, attempts, orders, done) = (made.clone(), attempts.clone(), orders.clone(), done.clone());
        async move {
            for round in 0..rounds {
                let order = orders[(p * 7 + round) % orders.len()];
                let text = format!("p{p}-r{round}");
                phone.replica.add_note(order, &text).expect("note");
                made.lock().unwrap().entry(order).or_default().insert(text);
                attempts.fetch_add(sync_through(phone).await, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }));
    let until = |share: u64| {
        let done = done.clone();
        async move {
            while done.load(Ordering::Relaxed) < total * share / 100 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let chaos = async {
        let short = json!({
            "calendars": { "24x7": { "kind": "24x7" } },
            "policies": [{ "name": "drill", "response": { "minutes": 1, "calendar": "24x7" },
                           "resolution": { "minutes": 2, "calendar": "24x7" } }],
        });
        let put = http.put(format!("{lb}/api/v1/settings/sla")).bearer_auth(&admin.token).json(&short).send();
        let put = tokio::spawn(put);
        until(30).await;
        killed.store(true, Ordering::Relaxed);
        let killed_after = done.load(Ordering::Relaxed);
        replicas[1].1.start_kill().expect("SIGKILL");
        assert_eq!(put.await.expect("join").expect("put").status(), 204);
        killed_after
    };
    let (_, killed_after) = tokio::join!(load, chaos);
    let load_ms = started.elapsed().as_millis();
    replicas[1].1.wait().await.expect("killed");
    for _ in 0..2 {
        for phone in &mut phones {
            sync_through(phone).await;
        }
    }

    // Nothing lost, nothing doubled, every phone holds the server's notes.
    let get = |path: String| {
        let (http, token, lb) = (http.clone(), desk.token.clone(), lb.clone());
        async move {
            let response = http.get(format!("{lb}{path}")).bearer_auth(token).send().await.expect("get");
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let made = made.lock().unwrap().clone();
    let tally = tally_notes(&lb, &desk.token, &made, &phones).await;
    let (lost, duplicated, checked) = (tally.lost, tally.duplicated, tally.made);

    // Each checkpoint fired after the webhook's registration is recorded once and delivered
    // once (the survivors' delivery task runs every 5 s; a delivery the dead replica had
    // claimed is taken over when its claim expires).
    let fired_checkpoints = || async move {
        let (_, queue) = get("/api/v1/orders?limit=500".into()).await;
        let mut fired = BTreeSet::new();
        let mut recorded_twice = 0;
        for row in queue.as_array().expect("queue") {
            let id = row["id"].as_str().expect("id");
            let (status, events) = get(format!("/api/v1/orders/{id}/sla-events")).await;
            assert_eq!(status, 200, "{events}");
            for e in events.as_array().expect("events") {
                let key = (id.to_owned(), e["stage"].to_string(), e["level"].to_string(), e["due_ms"].as_i64());
                if e["fired_at_ms"].as_i64().unwrap_or(0) >= hooked_at && !fired.insert(key) {
                    recorded_twice += 1;
                }
            }
        }
        (fired, recorded_twice)
    };
    let deliveries = |got: &[Value]| -> BTreeMap<(String, String, String, Option<i64>), usize> {
        let mut by_event = BTreeMap::new();
        for d in got {
            let key = (
                d["order_id"].as_str().unwrap_or("").to_owned(),
                d["stage"].to_string(),
                d["level"].to_string(),
                d["due_ms"].as_i64(),
            );
            *by_event.entry(key).or_insert(0) += 1;
        }
        by_event
    };
    // The scanners look about a second after a change (and every minute); the survivors'
    // delivery tasks every 5 s.
    let waited = Instant::now();
    let (fired, recorded_twice, by_event) = loop {
        let (fired, recorded_twice) = fired_checkpoints().await;
        let by_event = deliveries(&delivered.lock().unwrap());
        let all_delivered = fired.iter().all(|k| by_event.contains_key(k));
        if (!fired.is_empty() && all_delivered) || waited.elapsed() > Duration::from_secs(90) {
            break (fired, recorded_twice, by_event);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let checkpoints_waited_ms = waited.elapsed().as_millis();
    // A little longer, for a second delivery of anything, to show.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let by_event = {
        let later = deliveries(&delivered.lock().unwrap());
        assert!(later.len() >= by_event.len());
        later
    };
    let undelivered = fired.iter().filter(|k| !by_event.contains_key(*k)).count();
    let delivered_twice = by_event.values().filter(|n| **n > 1).count();
    let live_after = after.load(Ordering::Relaxed);
    let report = json!({
        "replicas": 3,
        "killed": 1,
        "killed_after_syncs": killed_after,
        "phones": phones_n,
        "rounds": rounds,
        "notes_checked": checked,
        "sync_attempts": attempts.load(Ordering::Relaxed),
        "syncs": phones_n * rounds,
        "lost": lost,
        "duplicated": duplicated,
        "load_ms": load_ms,
        "test_ms": test_started.elapsed().as_millis(),
        "live_events_before_kill": before.load(Ordering::Relaxed),
        "live_events_after_kill": live_after,
        "sla_checkpoints_fired": fired.len(),
        "checkpoints_waited_ms": checkpoints_waited_ms,
        "sla_checkpoints_recorded_twice": recorded_twice,
        "webhooks_undelivered": undelivered,
        "webhooks_delivered_twice": delivered_twice,
    });
    eprintln!("{report}");
    assert_eq!((lost, duplicated), (0, 0), "{report}");
    assert!(checked >= phones_n * rounds, "{report}");
    assert!(live_after > 0, "live updates keep arriving on the replicas left: {report}");
    assert!(!fired.is_empty(), "the drill's deadlines fired checkpoints: {report}");
    assert_eq!(recorded_twice, 0, "{report}");
    assert_eq!(undelivered, 0, "{report}");
    assert_eq!(delivered_twice, 0, "{report}");
    for (_, child) in &mut replicas {
        let _ = child.start_kill();
    }
    database.drop_database().await;
}
