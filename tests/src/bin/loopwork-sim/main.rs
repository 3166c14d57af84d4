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

mod attachments_bench;
mod dashboard_bench;
mod ffi_bench;
mod incident_bench;
mod restore_bench;
mod scan_bench;
mod sync_bench;

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
    /// Photos through the server: a flaky link, many phones at once, downloads.
    Attachments(attachments_bench::AttachmentArgs),
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
    /// The preventive maintenance scheduler over the 2025–2026 calendars: lifts and water tanks,
    /// replicas restarted, phones reporting late, restores (one JSON object; docs/maintenance.md).
    Maintenance {
        #[arg(long, default_value_t = 500)]
        lifts: usize,
        #[arg(long, default_value_t = 50)]
        tanks: usize,
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// The chance a replica is down on a given day.
        #[arg(long, default_value_t = 0.1)]
        restart_chance: f64,
        #[arg(long, default_value_t = 3)]
        restores: usize,
        /// The most days a phone stays offline.
        #[arg(long, default_value_t = 3)]
        offline_days: i32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Repeated-failure detection on a labelled synthetic history of lifts and pumps: each
    /// rule's precision, the recall and the delay (one JSON object; docs/maintenance.md).
    Failures {
        #[arg(long, default_value_t = 500)]
        lifts: usize,
        #[arg(long, default_value_t = 200)]
        pumps: usize,
        /// How many times as often a worn asset fails.
        #[arg(long, default_value_t = 5.0)]
        worn_factor: f64,
        /// The repeated rule's count within 30 days.
        #[arg(long)]
        repeat_count: Option<u32>,
        /// The outlier rule's largest p-value.
        #[arg(long)]
        max_p_value: Option<f64>,
        /// The repeated rule's largest p-value.
        #[arg(long)]
        repeat_max_p_value: Option<f64>,
        /// Orders within this many days of a fault are that fault again (0: every order a fault).
        #[arg(long)]
        same_fault_days: Option<i64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Recovery point and time of the embedded SQLite database at size: seed, back up while
    /// serving, register more on the desk, restore, serve again (one JSON object).
    Restore {
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Orders the desk registers after the backup (lost by the restore: no phone holds them).
        #[arg(long, default_value_t = 100)]
        after: usize,
    },
    /// Backtest the surge detector: weeks of one community's reports with injected outages,
    /// replayed through sync-core's detector (one JSON object; docs/incidents.md).
    Incidents {
        /// Independent runs (each its own history and outages) whose figures are pooled.
        #[arg(long, default_value_t = 5)]
        runs: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Scored weeks after two weeks of warm-up.
        #[arg(long, default_value_t = 8)]
        weeks: i64,
        /// The rules' least households (default: the organizations' default, 5).
        #[arg(long)]
        min_households: Option<u32>,
        /// The rules' largest p-value (default 1e-6).
        #[arg(long)]
        max_p_value: Option<f64>,
        /// The confidence from which a later report joins an open incident without a
        /// dispatcher (default 0.9).
        #[arg(long)]
        auto_join_confidence: Option<f64>,
        /// Give the detector a calendar without holidays and 调休 (what knowing them is worth).
        #[arg(long)]
        naive_calendar: bool,
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
        Command::Bench(args) => sync_bench::bench(args).await,
        Command::Attachments(args) => attachments_bench::run(args).await,
        Command::Ffi { orders, rounds, keep_store, json } => ffi_bench::run(orders, rounds, keep_store, json).await,
        Command::Scan { orders, scans, database_url } => scan_bench::run(orders, scans, database_url).await,
        Command::Dashboards { orders, repeats, database_url } => {
            dashboard_bench::run(orders, repeats, database_url).await
        }
        Command::Incidents { runs, seed, weeks, min_households, max_p_value, auto_join_confidence, naive_calendar } => {
            incident_bench::run(incident_bench::Options {
                runs,
                seed,
                weeks,
                min_households,
                max_p_value,
                auto_join_confidence,
                naive_calendar,
            })
        }
        Command::Restore { orders, after } => restore_bench::run(orders, after).await,
        Command::Failures {
            lifts,
            pumps,
            worn_factor,
            repeat_count,
            max_p_value,
            repeat_max_p_value,
            same_fault_days,
            seed,
        } => {
            let defaults = loopwork_tests::failures_sim::Settings::default_history();
            let mut rules = defaults.rules.clone();
            rules.repeat_count = repeat_count.unwrap_or(rules.repeat_count);
            rules.max_p_value = max_p_value.unwrap_or(rules.max_p_value);
            rules.repeat_max_p_value = repeat_max_p_value.unwrap_or(rules.repeat_max_p_value);
            rules.same_fault_ms = same_fault_days.map_or(rules.same_fault_ms, |days| days * 86_400_000);
            let settings =
                loopwork_tests::failures_sim::Settings { lifts, pumps, worn_factor, rules, seed, ..defaults };
            let report = loopwork_tests::failures_sim::run(&settings);
            println!("{}", serde_json::to_string(&report).expect("json"));
        }
        Command::Maintenance { lifts, tanks, replicas, restart_chance, restores, offline_days, seed } => {
            let settings = loopwork_tests::maintenance_sim::Settings {
                lifts,
                tanks,
                replicas,
                restart_chance,
                restores,
                offline_days,
                seed,
                ..loopwork_tests::maintenance_sim::Settings::two_years()
            };
            let report = loopwork_tests::maintenance_sim::run(&settings);
            println!("{}", serde_json::to_string(&report).expect("json"));
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
