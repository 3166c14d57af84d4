//! `loopwork-sim`: simulated devices against a real Loopwork server, for benchmarks.
//!
//! `loopwork-sim bench --orders 10000 --json` measures what one technician's phone pays to sync:
//! its first sync of every order, an idle sync, and a sync after one offline edit.
//! `--devices 200` adds a load phase: that many phones, each pushing one change per request.
//! The server runs in-process on SQLite unless `--database-url` names another database, or on
//! its own process when `--server-binary` (or a `loopwork` beside this binary) is found for the
//! load phase, so that its memory can be measured alone.

use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use loopwork_server::replication::{Principal, parse_pushed};
use loopwork_server::store::NewUser;
use loopwork_server::{auth, demo};
use loopwork_sync_core::store::{OrderQuery, Store};
use loopwork_sync_core::{
    Action, Category, Channel, Clock, Grade, Identity, Kind, Location, NewOrder, Role, SystemClock, UserId, WorkOrder,
};
use loopwork_tests::{Backend, Device, TestDatabase, TestServer, login_at};

#[path = "loopwork-sim/dashboard_bench.rs"]
mod dashboard_bench;
#[path = "loopwork-sim/ffi_bench.rs"]
mod ffi_bench;

#[derive(Debug, Parser)]
#[command(name = "loopwork-sim", about = "Simulated Loopwork devices, for benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure sync costs; prints one JSON object with --json.
    Bench(BenchArgs),
    /// Measure the mobile bindings: a first sync through `loopwork_ffi::Loopwork::sync` against
    /// the same sync driven directly on sync-core with the same transport, and the calls a list
    /// screen makes, on one technician's orders.
    /// Measure the server's deadline scanner: seed open orders, let one scan take the backlog,
    /// then time scans when nothing is due (one JSON object).
    Scan {
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Timed scans after the backlog.
        #[arg(long, default_value_t = 20)]
        scans: usize,
        /// `postgres://…` to run against PostgreSQL (a fresh database is created on that server).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Measure the desk's dashboard panels, KPIs and queue on a large organization: seed orders
    /// through the push path, materialize, then time each panel's request (one JSON object).
    Dashboards {
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Timed requests per panel.
        #[arg(long, default_value_t = 10)]
        repeats: usize,
        /// `postgres://…` to run against PostgreSQL (a fresh database is created on that server).
        #[arg(long)]
        database_url: Option<String>,
    },
    Ffi {
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
        /// Alternating Rust-level and FFI-level first syncs, each on a fresh store.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Keep the last FFI store in this directory (for `ffi/bench/list_screen.py`).
        #[arg(long)]
        keep_store: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Orders assigned to the measured technician.
    #[arg(long, default_value_t = 10_000)]
    orders: usize,
    /// Phones in the load phase (0: no load phase).
    #[arg(long, default_value_t = 0)]
    devices: usize,
    /// Orders stored in total for the load phase (spread over the phones).
    #[arg(long, default_value_t = 100_000)]
    stored_orders: usize,
    /// Sync requests each phone sends in the load phase.
    #[arg(long, default_value_t = 25)]
    requests_per_device: usize,
    /// Requests per second each phone offers (open loop: a slow server makes them queue,
    /// and the latencies show it). 0: send back to back.
    #[arg(long, default_value_t = 5.0)]
    rate_per_device: f64,
    /// `postgres://…` to run against PostgreSQL (a fresh database is created on that server).
    #[arg(long)]
    database_url: Option<String>,
    /// Run the load phase against this `loopwork` binary in its own process (its memory is
    /// then measured alone). Default: a `loopwork` beside this binary, if there is one.
    #[arg(long)]
    server_binary: Option<std::path::PathBuf>,
    /// Keep the load phase in this process even if a `loopwork` binary is found.
    #[arg(long)]
    in_process: bool,
    /// Load-phase phones keep full replicas (on-device SQLite store, summaries, outbox).
    /// Without it they keep only the documents they edit and their cursor, and send the very
    /// same requests with less of the machine's CPU, which is shared with the server.
    #[arg(long)]
    full_phones: bool,
    #[arg(long)]
    json: bool,
}

const PASSWORD: &str = "sim-password";

// The simulated phones share the machine's cores with the server they load: the lighter they
// are, the more of the machine the measurement leaves to the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Command::Bench(args) => bench(args).await,
        Command::Ffi { orders, rounds, keep_store, json } => ffi_bench::run(orders, rounds, keep_store, json).await,
        Command::Scan { orders, scans, database_url } => scan_bench(orders, scans, database_url).await,
        Command::Dashboards { orders, repeats, database_url } => {
            dashboard_bench::run(orders, repeats, database_url).await
        }
    }
}

async fn bench(args: BenchArgs) {
    let BenchArgs {
        orders,
        devices,
        stored_orders,
        requests_per_device,
        rate_per_device,
        database_url,
        server_binary,
        in_process,
        full_phones,
        json,
    } = args;
    let server_binary = if in_process {
        None
    } else {
        server_binary.or_else(|| {
            let beside = std::env::current_exe().ok()?.with_file_name("loopwork");
            beside.exists().then_some(beside)
        })
    };
    // A fresh database on the named PostgreSQL server, or a fresh SQLite file.
    let database = match &database_url {
        Some(url) if url.starts_with("postgres") => TestDatabase::postgres_on(url).await,
        _ => TestDatabase::new(Backend::Sqlite).await,
    };
    let server = TestServer::start_on(database).await;
    let now = SystemClock.now_ms();
    demo::seed(server.state.db.as_ref(), now).await.expect("demo data");
    let mut desk = server.device("kefu").await;
    let desk_principal = desk.session.principal();
    let hash = auth::hash_password(PASSWORD).expect("hash");

    // One technician with `orders` orders.
    let tech = new_technician(&server, &desk.session.org, "sim-tech", &hash).await;
    let seed_started = Instant::now();
    seed_orders(&server, &desk_principal, desk.identity(), &[tech], orders).await;
    let seed_seconds = seed_started.elapsed().as_secs_f64();

    let mut phone = server.device_with_password("sim-tech", PASSWORD).await;
    let started = Instant::now();
    phone.sync().await.expect("initial sync");
    let initial_sync_seconds = started.elapsed().as_secs_f64();
    let initial = phone.traffic;
    let held = phone.replica.order_count().expect("count");
    assert_eq!(held, orders, "the phone holds every assigned order");
    let ids = phone.replica.list(&OrderQuery { limit: usize::MAX, ..Default::default() }).expect("list");
    let saved_docs_bytes: usize = ids.iter().map(|s| phone.replica.order(s.id).expect("order").save().len()).sum();

    let before = phone.traffic;
    phone.sync().await.expect("idle sync");
    let idle = phone.traffic.since(before);

    phone.online = false;
    phone.replica.add_note(ids[ids.len() / 2].id, "已更换水龙头阀芯,试水正常").expect("note");
    phone.online = true;
    let before = phone.traffic;
    phone.sync().await.expect("edit sync");
    let edit = phone.traffic.since(before);
    let _ = desk.sync().await;

    let mut report = serde_json::json!({
        "backend": server.state.db.backend(),
        "orders": orders,
        "seed_seconds": round(seed_seconds),
        "initial_sync_seconds": round(initial_sync_seconds),
        "initial_sync_round_trips": initial.round_trips,
        "initial_sync_bytes": initial.bytes(),
        "saved_docs_bytes": saved_docs_bytes,
        "initial_sync_documents_bytes": initial.items_received,
        "initial_sync_bytes_per_saved_byte": round(initial.bytes() as f64 / saved_docs_bytes.max(1) as f64),
        "idle_sync_round_trips": idle.round_trips,
        "idle_sync_bytes": idle.bytes(),
        "one_edit_round_trips": edit.round_trips,
        "one_edit_bytes": edit.bytes(),
    });

    let mut database = None;
    let mut server = Some(server);
    if devices > 0 {
        let shape = LoadShape { devices, stored_orders, requests_per_device, rate_per_device, full_phones };
        let running = server.as_ref().expect("server");
        let seed_started = Instant::now();
        let mut technicians = Vec::new();
        for i in 0..devices {
            technicians.push(new_technician(running, &desk_principal.org, &format!("load-{i}"), &hash).await);
        }
        seed_orders(running, &desk_principal, desk.identity(), &technicians, stored_orders).await;
        // The scanner's first look at every seeded order is part of seeding, not of the load.
        drain_scans(running, SystemClock.now_ms()).await;
        let seed_seconds = seed_started.elapsed().as_secs_f64();
        let (base, child) = match &server_binary {
            Some(binary) => {
                let stopped = server.take().expect("server").stop().await;
                let (base, child) = spawn_server(binary, &stopped.url).await;
                database = Some(stopped);
                (base, Some(child))
            }
            None => (running.base.clone(), None),
        };
        let mut load = load_phase(&base, shape, child.as_ref().and_then(|c| c.id())).await;
        load.insert("load_seed_seconds".into(), round(seed_seconds).into());
        load.insert("server_process".into(), child.is_some().into());
        let rss = match &child {
            Some(child) => rss_mb(&format!("/proc/{}/status", child.id().unwrap_or(0))),
            None => rss_mb("/proc/self/status"),
        };
        load.insert(if child.is_some() { "server_rss_mb" } else { "process_rss_mb" }.into(), round(rss).into());
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
        report.as_object_mut().expect("object").extend(load);
    }
    if json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    let database = match server {
        Some(server) => server.stop().await,
        None => database.expect("database"),
    };
    database.drop_database().await;
}

/// `loopwork-sim scan`: the escalation and closed-loop scans on `orders` open orders.
async fn scan_bench(orders: usize, scans: usize, database_url: Option<String>) {
    let database = match &database_url {
        Some(url) if url.starts_with("postgres") => TestDatabase::postgres_on(url).await,
        _ => TestDatabase::new(Backend::Sqlite).await,
    };
    let server = TestServer::start_on(database).await;
    demo::seed(server.state.db.as_ref(), SystemClock.now_ms()).await.expect("demo data");
    let desk = server.device("kefu").await;
    let principal = desk.session.principal();
    let hash = auth::hash_password(PASSWORD).expect("hash");
    let mut technicians = Vec::new();
    for i in 0..20 {
        technicians.push(new_technician(&server, &desk.session.org, &format!("scan-{i}"), &hash).await);
    }
    let started = Instant::now();
    seed_orders(&server, &principal, desk.identity(), &technicians, orders).await;
    let seed_seconds = started.elapsed().as_secs_f64();
    // Every pushed order is due for a first look; the backlog scan records what has passed.
    let now = SystemClock.now_ms();
    let started = Instant::now();
    let backlog_scans = drain_scans(&server, now).await;
    let backlog_seconds = started.elapsed().as_secs_f64();
    let mut ms = Vec::new();
    for _ in 0..scans {
        let started = Instant::now();
        loopwork_server::escalation::tick(&server.state, now).await.expect("scan");
        loopwork_server::closed_loop::tick(&server.state, now).await.expect("scan");
        ms.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "backend": server.state.db.backend(),
            "open_orders": orders,
            "seed_seconds": round(seed_seconds),
            "backlog_scans": backlog_scans,
            "backlog_seconds": round(backlog_seconds),
            "idle_scan_ms_median": round(ms[ms.len() / 2]),
            "idle_scan_ms_max": round(ms[ms.len() - 1]),
        })
    );
    server.stop().await.drop_database().await;
}

/// Runs escalation scans at `now` until one finds less than a full batch due (the scanner
/// task's own backlog rule); how many it took.
async fn drain_scans(server: &TestServer, now: i64) -> usize {
    let mut scans = 0;
    loop {
        scans += 1;
        if !loopwork_server::escalation::scan(&server.state, now).await.expect("scan").full {
            return scans;
        }
    }
}

/// Starts `loopwork serve` on the database and waits until it says where it listens.
async fn spawn_server(binary: &std::path::Path, url: &str) -> (String, tokio::process::Child) {
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "serve",
            "--no-demo",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--database-url",
            url,
        ])
        .env("RUST_LOG", "warn");
    let (base, _, child) = loopwork_tests::tools::serve_binary(command).await;
    (base, child)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn new_technician(server: &TestServer, org: &str, login: &str, hash: &str) -> UserId {
    server
        .state
        .db
        .create_user(
            &NewUser {
                org: org.into(),
                login: login.into(),
                password_hash: hash.into(),
                role: Role::Technician,
                display_name: login.into(),
                phone: None,
            },
            0,
        )
        .await
        .expect("technician")
}

/// Registers `count` orders, spread over `technicians`, through the server's push path (the one
/// a dispatcher's device takes), in batches.
async fn seed_orders(server: &TestServer, principal: &Principal, desk: Identity, technicians: &[UserId], count: usize) {
    let owner = server.state.db.user_by_login("yezhu1502").await.expect("owner").expect("owner exists").id;
    let now = SystemClock.now_ms();
    let mut batch = Vec::new();
    for i in 0..count {
        let new = NewOrder {
            kind: if i % 5 == 0 { Kind::Complaint } else { Kind::Repair },
            category: Category::BUILT_IN[i % Category::BUILT_IN.len()].clone(),
            grade: Grade::ALL[i % Grade::ALL.len()],
            channel: Channel::App,
            location: Location::unit(
                demo::DEMO_PROJECT,
                &format!("{}", i % 30),
                &format!("{}-{:04}", i % 30, i % 2000),
            ),
            description: format!("第{i}号报修:卫生间漏水,请尽快上门查看。"),
            reporter: owner,
            occurred_at_ms: None,
        };
        let mut order = WorkOrder::create(&new, &desk, now).expect("create");
        order.transition(&desk, Action::Assign(technicians[i % technicians.len()]), None, now).expect("assign");
        let changes = order
            .changes_since(&[])
            .iter()
            .map(|(_, bytes)| parse_pushed(principal, bytes).expect("own change"))
            .collect::<Vec<_>>();
        batch.push((order.id(), changes));
        if batch.len() == 500 || i + 1 == count {
            server.state.db.push(principal, &batch, &[], now).await.expect("seed push");
            batch.clear();
        }
    }
}

/// What the load phase offers.
#[derive(Clone, Copy, Debug)]
struct LoadShape {
    devices: usize,
    stored_orders: usize,
    requests_per_device: usize,
    rate_per_device: f64,
    full_phones: bool,
}

/// Which of its orders a load-phase phone notes at its request `r`: five notes to an order, then
/// the next one; phones move on at different requests, as people do, not all in the same fifth
/// of a second.
fn note_target(r: usize, phone: usize, orders: usize) -> usize {
    ((r + phone) / 5) % orders
}

async fn load_phase(
    base: &str,
    shape: LoadShape,
    server_pid: Option<u32>,
) -> serde_json::Map<String, serde_json::Value> {
    let LoadShape { devices, stored_orders, requests_per_device, rate_per_device, full_phones } = shape;
    // Every phone signs in, syncs, and opens its orders (what an app does at launch) before the
    // clock starts: the load generator's own set-up must not run inside the measured window.
    // A lean phone also makes its notes then: the edits are its own CPU work, which on real
    // phones is not the server's machine's; here it would take a fifth of the two cores the
    // server is measured on. Each request still carries the note made for it, in order.
    let mut phones = Vec::new();
    for i in 0..devices {
        let mut phone = Device::new(base, login_at(base, &format!("load-{i}"), PASSWORD).await);
        phone.sync().await.expect("initial sync");
        let mine = phone.replica.list(&OrderQuery::assigned_to(phone.session.user, 50)).expect("list");
        // A lean phone: the documents it edits and its cursor; nobody else writes them here.
        let mut docs: Vec<_> = mine.iter().map(|s| phone.replica.order(s.id).expect("order")).collect();
        let cursor = phone.replica.store().cursor().expect("cursor");
        let me = phone.identity();
        let notes: Vec<Vec<loopwork_sync_core::protocol::OrderBytes>> = if full_phones {
            Vec::new()
        } else {
            (0..requests_per_device)
                .map(|r| {
                    let at = note_target(r, i, mine.len());
                    let doc = &mut docs[at];
                    let before = doc.heads();
                    doc.add_note(&me, &format!("巡检记录 {r}"), SystemClock.now_ms()).expect("note");
                    doc.changes_since(&before)
                        .into_iter()
                        .map(|(_, bytes)| loopwork_sync_core::protocol::OrderBytes { order: mine[at].id, bytes })
                        .collect()
                })
                .collect()
        };
        phones.push((phone, mine, notes, cursor));
    }
    // Then each syncs once more, as an app coming to the foreground does. Without it, every
    // phone's first request after the seconds of set-up was slow at once (on PostgreSQL p50
    // 115 ms over the first 200 ms of the load); why was not found.
    for (phone, ..) in &mut phones {
        phone.sync().await.expect("sync before the clock");
    }
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cpu_before = CpuTimes::read(server_pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let interval = if rate_per_device > 0.0 {
        std::time::Duration::from_secs_f64(1.0 / rate_per_device)
    } else {
        std::time::Duration::ZERO
    };
    let start = tokio::time::Instant::now();
    for (n, (mut phone, mine, notes, mut cursor)) in phones.into_iter().enumerate() {
        let latencies = Arc::clone(&latencies);
        // Phones start spread over one interval, as real ones would be.
        let first = start + interval.mul_f64(n as f64 / devices as f64);
        tasks.push(tokio::spawn(async move {
            let mut notes = notes.into_iter();
            for r in 0..requests_per_device {
                tokio::time::sleep_until(first + interval * r as u32).await;
                let request = if full_phones {
                    let at = note_target(r, n, mine.len());
                    phone.replica.add_note(mine[at].id, &format!("巡检记录 {r}")).expect("note");
                    phone.replica.sync_request().expect("request")
                } else {
                    loopwork_sync_core::protocol::SyncRequest {
                        cursor: cursor.clone(),
                        limit: 500,
                        changes: notes.next().expect("a note for every request"),
                        relayed: Vec::new(),
                        reconcile: Vec::new(),
                        receipts: Vec::new(),
                    }
                };
                let sent = Instant::now();
                let bytes = phone.post(request.encode()).await.expect("sync");
                latencies
                    .lock()
                    .expect("lock")
                    .push((sent.elapsed().as_secs_f64() * 1000.0, (sent - started).as_secs_f64()));
                let response =
                    loopwork_sync_core::protocol::SyncResponse::decode(&bytes, &Default::default()).expect("decode");
                assert_eq!(response.acked.len(), request.changes.len(), "every pushed change is acknowledged");
                if full_phones {
                    phone.replica.apply_sync_response(&response).expect("apply");
                } else {
                    cursor = Some(response.cursor.clone());
                }
            }
            phone
        }));
    }
    for task in tasks {
        let _ = task.await.expect("phone");
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuTimes::read(server_pid).since(&cpu_before);
    let timed = latencies.lock().expect("lock").clone();
    if let Ok(path) = std::env::var("LOOPWORK_SIM_LATENCY_LOG") {
        // Each request's start (seconds into the load) and latency, to see when slow ones happen.
        let lines: String = timed.iter().map(|(ms, at)| format!("{at:.4} {ms:.3}\n")).collect();
        std::fs::write(&path, lines).expect("write the latency log");
    }
    // The same tail without the first second after the server started (its caches warming).
    let mut warm: Vec<f64> = timed.iter().filter(|(_, at)| *at >= 1.0).map(|(ms, _)| *ms).collect();
    warm.sort_by(f64::total_cmp);
    let warm_p99 = warm.get(((warm.len().max(1) - 1) as f64 * 0.99).round() as usize).copied().unwrap_or(0.0);
    let mut latencies: Vec<f64> = timed.into_iter().map(|(ms, _)| ms).collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let mut out = serde_json::Map::new();
    out.insert("devices".into(), devices.into());
    out.insert("load_phones".into(), if full_phones { "full" } else { "lean" }.into());
    out.insert("stored_orders".into(), (stored_orders + 4).into());
    out.insert("load_requests".into(), latencies.len().into());
    out.insert("load_offered_per_second".into(), round(devices as f64 * rate_per_device).into());
    out.insert("load_requests_per_second".into(), round(latencies.len() as f64 / seconds).into());
    out.insert("load_latency_ms_p50".into(), round(pick(0.5)).into());
    out.insert("load_latency_ms_p99".into(), round(pick(0.99)).into());
    out.insert("load_latency_ms_p99_after_first_second".into(), round(warm_p99).into());
    // Where the cores went during the load: CPU milliseconds per request.
    let per_request = |seconds: f64| round(seconds * 1000.0 / latencies.len().max(1) as f64);
    out.insert("cpu_ms_per_request_server".into(), per_request(cpu.server).into());
    out.insert("cpu_ms_per_request_phones".into(), per_request(cpu.this_process).into());
    out.insert("cpu_ms_per_request_other".into(), per_request(cpu.machine - cpu.server - cpu.this_process).into());
    out.insert("cpu_idle_share".into(), round(cpu.idle / (cpu.machine + cpu.idle).max(f64::EPSILON)).into());
    out.insert("disk_kb_written_per_request".into(), round(cpu.disk_kb / latencies.len().max(1) as f64).into());
    out
}

/// CPU seconds used so far: by the server process, by this process, and by the whole machine
/// (busy and idle), from `/proc` (zero where it cannot be read).
#[derive(Clone, Copy, Debug, Default)]
struct CpuTimes {
    server: f64,
    this_process: f64,
    machine: f64,
    idle: f64,
    /// Kilobytes the machine's disks were given to write (the server's and the database's
    /// writes, whichever process makes them).
    disk_kb: f64,
}

impl CpuTimes {
    const TICKS_PER_SECOND: f64 = 100.0;

    fn read(server_pid: Option<u32>) -> CpuTimes {
        let process = |path: &str| -> f64 {
            let stat = std::fs::read_to_string(path).unwrap_or_default();
            // The fields after the command name (which may hold spaces) start after the last ')'.
            let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
            let fields: Vec<f64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            (fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0)) / Self::TICKS_PER_SECOND
        };
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        // user nice system idle iowait irq softirq steal
        let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
        let busy: f64 = cpu.iter().take(8).sum::<f64>() - idle;
        CpuTimes {
            server: server_pid.map(|pid| process(&format!("/proc/{pid}/stat"))).unwrap_or(0.0),
            this_process: process("/proc/self/stat"),
            machine: busy / Self::TICKS_PER_SECOND,
            idle: idle / Self::TICKS_PER_SECOND,
            disk_kb: Self::disk_sectors_written() / 2.0,
        }
    }

    /// 512-byte sectors written to the machine's block devices (not loop or RAM disks).
    fn disk_sectors_written() -> f64 {
        let Ok(devices) = std::fs::read_dir("/sys/block") else { return 0.0 };
        devices
            .flatten()
            .filter(|d| !["loop", "ram", "zram"].iter().any(|p| d.file_name().to_string_lossy().starts_with(p)))
            .filter_map(|d| std::fs::read_to_string(d.path().join("stat")).ok())
            .filter_map(|stat| stat.split_whitespace().nth(6).and_then(|f| f.parse::<f64>().ok()))
            .sum()
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server: self.server - before.server,
            this_process: self.this_process - before.this_process,
            machine: self.machine - before.machine,
            idle: self.idle - before.idle,
            disk_kb: self.disk_kb - before.disk_kb,
        }
    }
}

fn rss_mb(status_file: &str) -> f64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
