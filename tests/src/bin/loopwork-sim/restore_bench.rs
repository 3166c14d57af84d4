//! `loopwork-sim restore`: recovery point and recovery time of the embedded SQLite database at
//! size. Seeds `orders` orders through the push path (as `dashboards` does), takes a backup with
//! `loopwork_server::backup::backup` while the server serves, lets the desk register more orders
//! (work only the server holds, which a restore loses unless a phone holds it), stops, restores
//! with `backup::restore` (verification and number skip included), and times the server's start
//! on the restored database until it serves (one JSON object).

use std::time::Instant;

use loopwork_server::backup;
use loopwork_sync_core::{Clock, SystemClock};
use loopwork_tests::{Backend, TestDatabase, TestServer};

pub async fn run(orders: usize, after: usize) {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let url = database.url.clone();
    let dir = database.dir.as_ref().expect("sqlite dir").path().to_path_buf();
    let file = dir.join(backup::DATABASE_FILE);
    let server = TestServer::start_on(database).await;
    let started = Instant::now();
    super::dashboard_bench::seed(&server, orders, SystemClock.now_ms()).await;
    let seed_seconds = started.elapsed().as_secs_f64();
    let database_bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.join(format!("{}-wal", backup::DATABASE_FILE))).map(|m| m.len()).unwrap_or(0);

    // The backup, while the server serves.
    let backups = tempfile::tempdir().expect("backup dir");
    let written = backup::backup(&file, backups.path(), SystemClock.now_ms()).await.expect("backup");

    // Work after the backup that only the server holds: registrations on the desk.
    let desk = server.login("kefu").await;
    for i in 0..after {
        let body = serde_json::json!({
            "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
            "project": "hy-garden", "building": "3", "unit": "3-1502", "description": format!("备份之后 {i}"),
        });
        let (status, answer) = server.call(&desk.token, "POST", "/api/v1/orders", Some(body)).await;
        assert_eq!(status, 201, "{answer}");
    }

    // The disk dies; the backup comes back.
    let database = server.stop().await;
    let before_disaster = backup::verify(&file).await.expect("the database before the disaster").orders;
    let started = Instant::now();
    let counts = backup::restore(&written.path, &dir, SystemClock.now_ms(), true).await.expect("restore");
    let restore_seconds = started.elapsed().as_secs_f64();
    let skipping = loopwork_server::writer::open(&url).await.expect("open the restored database");
    skipping.skip_numbers(1_000, SystemClock.now_ms()).await.expect("skip numbers");
    skipping.close().await;
    drop(skipping);
    // Serving again: the `loopwork` binary beside this one (built with it), until it listens.
    let binary = std::env::current_exe().expect("this binary").with_file_name("loopwork");
    assert!(binary.exists(), "build the server too: cargo build --release -p loopwork-server --bin loopwork");
    let started = Instant::now();
    let (_, mut child) = super::spawn_server(&binary, &url).await;
    let serve_again_seconds = started.elapsed().as_secs_f64();
    child.kill().await.expect("stop");
    let after_restore = counts.orders;
    let report = serde_json::json!({
        "orders": orders,
        "orders_stored": before_disaster,
        "seed_seconds": seed_seconds,
        "database_bytes": database_bytes,
        "backup_seconds": written.seconds,
        "backup_bytes": written.bytes,
        "restore_seconds": restore_seconds,
        "serve_again_seconds": serve_again_seconds,
        "restored_orders": after_restore,
        "made_after_backup": after,
        "lost_without_devices": before_disaster - after_restore,
    });
    println!("{report}");
    drop(database);
}
