//! A device store killed mid-write keeps every edit it reported committed and opens clean.
//!
//! The test re-runs its own binary as the writer (`LOOPWORK_CRASH_CHILD` names the store),
//! lets it write for a random moment, kills it with SIGKILL, and checks the store. The same
//! store file lives through every round, so recovery is exercised again and again.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loopwork_sync_core::store::{OrderQuery, SqliteStore};
use loopwork_sync_core::{
    Category, Channel, Grade, Identity, Kind, Location, NewOrder, OrderId, Replica, Role, SystemClock,
};

const ROUNDS: usize = 24;
const TEST_NAME: &str = "killed_mid_write_the_store_keeps_every_reported_commit";

#[test]
fn killed_mid_write_the_store_keeps_every_reported_commit() {
    if let Ok(path) = std::env::var("LOOPWORK_CRASH_CHILD") {
        write_until_killed(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    let mut seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut all_orders: std::collections::HashSet<OrderId> = std::collections::HashSet::new();
    let mut total_commits = 0;
    for round in 0..ROUNDS {
        let mut committed: Vec<(OrderId, String)> = Vec::new();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let run_for = Duration::from_millis(40 + (seed >> 33) % 400);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env("LOOPWORK_CRASH_CHILD", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = Arc::clone(&lines);
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        std::thread::sleep(run_for);
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        for line in lines.lock().unwrap().iter() {
            if let Some(rest) = line.strip_prefix("committed ") {
                let (id, note) = rest.split_once(' ').unwrap();
                committed.push((id.parse().unwrap(), note.to_owned()));
            }
        }

        let store = SqliteStore::open(&path).unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        let device = Replica::new(store, Identity::fresh(Role::Technician), SystemClock);
        // Every note reported this round is in its document.
        let mut by_order: std::collections::HashMap<OrderId, Vec<&str>> = std::collections::HashMap::new();
        for (id, note) in &committed {
            by_order.entry(*id).or_default().extend((note != "-").then_some(note.as_str()));
        }
        for (id, notes) in &by_order {
            let order = device.order(*id).unwrap_or_else(|e| panic!("round {round}: order {id} lost: {e}"));
            let kept: std::collections::HashSet<String> = order.notes().into_iter().map(|n| n.text).collect();
            for note in notes {
                assert!(kept.contains(*note), "round {round}: note {note} lost from {id}");
            }
        }
        // Every order reported in any round is still in the index.
        all_orders.extend(by_order.keys());
        total_commits += committed.len();
        let listed: std::collections::HashSet<OrderId> = device
            .list(&OrderQuery { limit: usize::MAX, ..Default::default() })
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert!(all_orders.is_subset(&listed), "round {round}: the index lost an order");
    }
    eprintln!("{total_commits} reported commits survived {ROUNDS} kills");
    assert!(total_commits > ROUNDS, "the writer committed too little to prove anything: {total_commits}");
}

/// The child: create orders and append notes, printing each commit after it returned.
fn write_until_killed(path: &str) {
    let store = SqliteStore::open(path).unwrap();
    let me = Identity::fresh(Role::Technician);
    let mut device = Replica::new(store, me, SystemClock);
    let mut out = std::io::stdout().lock();
    for round in 0u64.. {
        let id = device
            .create(&NewOrder {
                kind: Kind::Repair,
                category: Category::PublicFacilities,
                grade: Grade::Minor,
                channel: Channel::Inspection,
                location: Location::common_area("hy-garden", "B2 水泵房"),
                description: format!("巡检发现问题 #{round}"),
                reporter: me.user,
                occurred_at_ms: None,
            })
            .unwrap();
        writeln!(out, "committed {id} -").unwrap();
        out.flush().unwrap();
        for n in 0..80 {
            let note = format!("r{round}n{n}");
            device.add_note(id, &note).unwrap();
            writeln!(out, "committed {id} {note}").unwrap();
            out.flush().unwrap();
            if n % 16 == 0 {
                let sent: Vec<_> = device.pending(8).unwrap().iter().map(|p| p.hash).collect();
                device.acknowledge(&sent).unwrap();
            }
        }
    }
}
