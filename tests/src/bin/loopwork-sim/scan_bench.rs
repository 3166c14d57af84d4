//! `loopwork-sim scan`: the server's deadline scanner on a backlog of open orders.

use super::*;

/// `loopwork-sim scan`: the escalation and closed-loop scans on `orders` open orders.
pub(crate) async fn run(orders: usize, scans: usize, database_url: Option<String>) {
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
pub(crate) async fn drain_scans(server: &TestServer, now: i64) -> usize {
    let mut scans = 0;
    loop {
        scans += 1;
        if !loopwork_server::escalation::scan(&server.state, now).await.expect("scan").full {
            return scans;
        }
    }
}
