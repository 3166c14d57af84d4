//! `loopwork-sim ffi`: what the mobile bindings add to the Rust core.
//!
//! The same first sync of one technician's orders runs twice per round, each on a fresh store
//! and through the same transport: driven directly on sync-core (`SyncSession`), and through `loopwork_ffi::Loopwork::sync`. Then the calls a list
//! screen makes are timed through the bindings' Rust API. `ffi/bench/list_screen.py` times the
//! same calls across the real FFI boundary from Python.

use std::sync::Arc;
use std::time::Instant;

use loopwork_ffi::{HttpHeader, HttpRequest, HttpResponse, ListFilter, Loopwork, Transport, TransportError};
use loopwork_server::demo;
use loopwork_sync_core::protocol::{CONTENT_TYPE, Limits, SyncResponse};
use loopwork_sync_core::store::SqliteStore;
use loopwork_sync_core::sync::{Next, SyncSession};
use loopwork_sync_core::{Clock, Replica, SystemClock};
use loopwork_tests::{Backend, TestDatabase, TestServer, login_at};

use super::{PASSWORD, new_technician, round, seed_orders};

/// reqwest on the bench's runtime, blocking the calling thread like OkHttp's `execute()`.
struct BlockingTransport {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Transport for BlockingTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.runtime.block_on(async {
            let method = reqwest::Method::from_bytes(request.method.as_bytes())
                .map_err(|e| TransportError::Failed { detail: e.to_string() })?;
            let mut builder = self.client.request(method, request.url).body(request.body);
            for h in request.headers {
                builder = builder.header(h.name, h.value);
            }
            let failed = |e: reqwest::Error| TransportError::Failed { detail: e.to_string() };
            let response = builder.send().await.map_err(failed)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| HttpHeader {
                    name: name.to_string(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect();
            let body = response.bytes().await.map_err(failed)?.to_vec();
            Ok(HttpResponse { status, headers, body })
        })
    }
}

pub async fn run(orders: usize, rounds: usize, keep_store: Option<std::path::PathBuf>, json: bool) {
    let server = TestServer::start_on(TestDatabase::new(Backend::Sqlite).await).await;
    demo::seed(server.state.db.as_ref(), SystemClock.now_ms()).await.expect("demo data");
    let desk = server.device("kefu").await;
    let principal = desk.session.principal();
    let hash = loopwork_server::auth::hash_password(PASSWORD).expect("hash");
    let tech = new_technician(&server, &desk.session.org, "ffi-tech", &hash).await;
    seed_orders(&server, &principal, desk.identity(), &[tech], orders).await;

    let base = server.base.clone();
    let runtime = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || measure(&base, runtime, orders, rounds, keep_store))
        .await
        .expect("bench thread");
    if json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    server.stop().await.drop_database().await;
}

fn measure(
    base: &str,
    runtime: tokio::runtime::Handle,
    orders: usize,
    rounds: usize,
    keep_store: Option<std::path::PathBuf>,
) -> serde_json::Value {
    let transport = Arc::new(BlockingTransport { client: reqwest::Client::new(), runtime: runtime.clone() });
    let mut rust_seconds = Vec::new();
    let mut ffi_seconds = Vec::new();
    let mut kept = None;
    for r in 0..rounds {
        // Rust level: sync-core's client state machine, the same transport.
        let dir = tempfile::tempdir().expect("temp dir");
        let session = runtime.block_on(login_at(base, "ffi-tech", PASSWORD));
        let store = SqliteStore::open(dir.path().join("rust.db")).expect("store");
        let mut replica = Replica::new(store, session.identity(), SystemClock);
        let started = Instant::now();
        let mut sync = SyncSession::new(false);
        while let Next::Send(request) = sync.next_request(&replica).expect("request") {
            let headers = vec![
                HttpHeader { name: "authorization".into(), value: format!("Bearer {}", session.token) },
                HttpHeader { name: "content-type".into(), value: CONTENT_TYPE.into() },
            ];
            let post =
                HttpRequest { method: "POST".into(), url: format!("{base}/sync/v1"), headers, body: request.encode() };
            let response = transport.send(post).expect("post");
            assert_eq!(response.status, 200, "sync refused");
            let decoded = SyncResponse::decode(&response.body, &Limits::default()).expect("response");
            sync.apply(&mut replica, &decoded).expect("apply");
        }
        rust_seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(replica.order_count().expect("count"), orders);
        drop(replica);

        // Through the bindings.
        let last = r + 1 == rounds;
        let ffi_dir = match (&keep_store, last) {
            (Some(path), true) => path.clone(),
            _ => dir.path().join("ffi"),
        };
        let app = Loopwork::open(ffi_dir.to_string_lossy().into_owned(), transport.clone()).expect("open");
        app.sign_in(base.to_owned(), "ffi-tech".into(), PASSWORD.into(), "bench".into()).expect("sign in");
        let started = Instant::now();
        app.sync().expect("ffi sync");
        ffi_seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(app.order_count().expect("count") as usize, orders);
        if last {
            kept = Some((app, dir));
        }
    }
    let (app, _dir) = kept.expect("at least one round");
    let rust = median(&rust_seconds);
    let ffi = median(&ffi_seconds);

    let mine = ListFilter { assigned_to_me: true, open_only: true, limit: 50, ..Default::default() };
    let all = app.list_orders(ListFilter { limit: 10_000, ..Default::default() }).expect("list");
    let ids: Vec<String> = all.iter().map(|o| o.id.clone()).collect();
    let pick = |i: usize| ids[(i * 7_919) % ids.len()].clone();
    let calls = serde_json::json!({
        "list_orders_mine_50_ms": timed(200, |_| drop(app.list_orders(mine.clone()).expect("list"))),
        "list_orders_all_50_ms": timed(200, |_| drop(app.list_orders(ListFilter::default()).expect("list"))),
        "get_order_ms": timed(200, |i| drop(app.get_order(pick(i)).expect("get"))),
        "countdown_ms": timed(200, |i| { std::hint::black_box(app.countdown(pick(i)).expect("countdown")); }),
        "timeline_ms": timed(200, |i| drop(app.timeline(pick(i)).expect("timeline"))),
        "sync_status_ms": timed(200, |_| assert!(app.sync_status().expect("status").signed_in)),
        "order_count_ms": timed(200, |_| assert!(app.order_count().expect("count") > 0)),
    });
    serde_json::json!({
        "orders": orders,
        "rounds": rounds,
        "rust_level_first_sync_seconds": rust_seconds.iter().map(|s| round(*s)).collect::<Vec<_>>(),
        "ffi_first_sync_seconds": ffi_seconds.iter().map(|s| round(*s)).collect::<Vec<_>>(),
        "rust_level_first_sync_median_seconds": round(rust),
        "ffi_first_sync_median_seconds": round(ffi),
        "ffi_sync_overhead_percent": round((ffi / rust - 1.0) * 100.0),
        "list_screen_calls_through_the_rust_api": calls,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Median and 99th percentile of `n` runs of `f`, in milliseconds.
fn timed(n: usize, mut f: impl FnMut(usize)) -> serde_json::Value {
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let started = Instant::now();
            f(i);
            started.elapsed().as_secs_f64() * 1_000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    serde_json::json!({ "median": round(ms[n / 2]), "p99": round(ms[(n * 99 / 100).min(n - 1)]) })
}
