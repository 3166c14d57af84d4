//! The device store's targets: open a store of 10,000 orders, list the 50 most urgent, persist
//! one edit durably, and the memory a phone pays for it.
//!
//! `cargo bench -p loopwork-sync-core --bench device_store [-- --orders N]`
//! Prints one JSON object; docs/performance.md records the figures.

use std::time::{Duration, Instant};

use loopwork_sync_core::store::{CommitItem, OrderQuery, SqliteStore, Store, StoredChange};
use loopwork_sync_core::{
    Action, Category, Channel, Grade, Identity, Kind, Location, NewOrder, OrderSummary, Replica, Role, SystemClock,
    WorkOrder,
};

fn main() {
    if let Ok(path) = std::env::var("LOOPWORK_BENCH_RSS_CHILD") {
        return rss_child(&path);
    }
    let args: Vec<String> = std::env::args().collect();
    let orders: usize = args
        .iter()
        .position(|a| a == "--orders")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("device.db");
    let me = Identity::fresh(Role::Technician);
    let fill_started = Instant::now();
    fill(&path, orders, &me);
    let fill_seconds = fill_started.elapsed().as_secs_f64();

    // Open: a cold process would also pay the page cache; this measures the store's own work.
    let mut open_ms = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let store = SqliteStore::open(&path).expect("open");
        let count = store.order_count().expect("count");
        open_ms.push(ms(started.elapsed()));
        assert_eq!(count, orders);
    }

    let store = SqliteStore::open(&path).expect("open");
    let mut device = Replica::new(store, me, SystemClock);
    let mut list_ms = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let top = device.list(&OrderQuery::assigned_to(me.user, 50)).expect("list");
        list_ms.push(ms(started.elapsed()));
        assert_eq!(top.len(), 50.min(orders));
    }
    let mut all_ms = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let top = device.list(&OrderQuery::most_urgent(50)).expect("list");
        all_ms.push(ms(started.elapsed()));
        assert_eq!(top.len(), 50.min(orders));
    }

    let ids: Vec<_> = device.list(&OrderQuery { limit: usize::MAX, ..Default::default() }).expect("ids");
    let mut edit_ms = Vec::new();
    for i in 0..300 {
        let id = ids[(i * 7919) % ids.len()].id;
        let started = Instant::now();
        device.add_note(id, "已检查,待配件").expect("note");
        edit_ms.push(ms(started.elapsed()));
    }

    let rss = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("LOOPWORK_BENCH_RSS_CHILD", &path)
        .output()
        .expect("rss child");
    let rss_mb: f64 = String::from_utf8_lossy(&rss.stdout).trim().parse().unwrap_or(f64::NAN);

    println!(
        "{{\"orders\":{orders},\"fill_seconds\":{fill_seconds:.2},\"open_ms_median\":{:.2},\"list_mine_50_ms_median\":{:.3},\"list_mine_50_ms_p99\":{:.3},\"list_all_50_ms_median\":{:.3},\"note_edit_ms_median\":{:.3},\"note_edit_ms_p99\":{:.3},\"rss_mb_open_and_listed\":{rss_mb:.1},\"store_file_mb\":{:.1}}}",
        median(&mut open_ms),
        median(&mut list_ms),
        percentile(&mut list_ms, 0.99),
        median(&mut all_ms),
        median(&mut edit_ms),
        percentile(&mut edit_ms, 0.99),
        file_mb(&path),
    );
}

/// Orders as a technician's phone holds them after sync: assigned to them, some worked on.
fn fill(path: &std::path::Path, orders: usize, me: &Identity) {
    let mut store = SqliteStore::open(path).expect("open");
    let dispatcher = Identity::fresh(Role::Dispatcher);
    let base = 1_790_000_000_000i64;
    let mut batch = Vec::new();
    for i in 0..orders {
        let owner = Identity::fresh(Role::Owner);
        let new = NewOrder {
            kind: if i % 5 == 0 { Kind::Complaint } else { Kind::Repair },
            category: Category::BUILT_IN[i % Category::BUILT_IN.len()].clone(),
            grade: Grade::ALL[i % Grade::ALL.len()],
            channel: Channel::App,
            location: Location::unit("hy-garden", &format!("{}", i % 30), &format!("{}-{}", i % 30, 100 + i % 2000)),
            description: format!("第{i}号报修:卫生间漏水,请尽快上门查看。"),
            reporter: owner.user,
            occurred_at_ms: None,
        };
        let at = base + (i as i64) * 37_000;
        let mut order = WorkOrder::create(&new, &dispatcher, at).expect("create");
        order.transition(&dispatcher, Action::Assign(me.user), None, at + 60_000).expect("assign");
        if i % 2 == 0 {
            order.transition(me, Action::Accept, None, at + 120_000).expect("accept");
            order.add_note(me, "已联系业主,约定下午上门", at + 180_000).expect("note");
        }
        let changes =
            order.changes_since(&[]).into_iter().map(|(hash, bytes)| StoredChange { hash, bytes, pending: false });
        batch.push(CommitItem {
            order: order.id(),
            snapshot: None,
            changes: changes.collect(),
            summary: OrderSummary::of(&order).expect("summary"),
        });
        if batch.len() == 500 {
            store.commit_batch(&batch).expect("commit");
            batch.clear();
        }
    }
    store.commit_batch(&batch).expect("commit");
}

fn rss_child(path: &str) {
    let store = SqliteStore::open(path).expect("open");
    let me = Identity::fresh(Role::Technician);
    let device = Replica::new(store, me, SystemClock);
    let listed = device.list(&OrderQuery::most_urgent(50)).expect("list");
    let first = device.order(listed[0].id).expect("load");
    assert!(!first.description().is_empty());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    println!("{:.1}", kb / 1024.0);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn file_mb(path: &std::path::Path) -> f64 {
    let wal = path.with_extension("db-wal");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    (size(path) + size(&wal)) as f64 / 1_048_576.0
}
