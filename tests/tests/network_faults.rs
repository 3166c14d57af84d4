//! Phones syncing through a fault-injecting proxy (`loopwork_tests::faults`): requests and
//! responses cut at random bytes, delays, resets, whole requests sent twice. The phones keep
//! working offline through it (notes, and new orders the server numbers); when the network heals
//! they settle: nothing is lost, nothing takes effect twice, every phone converges with the
//! server, official numbers are unique. On SQLite and PostgreSQL.
//!
//! The CI runs a short campaign; `LOOPWORK_FAULT_ROUNDS=N` a longer one (figures in
//! docs/reliability.md). Each run prints one JSON line.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use automerge::ReadDoc;
use loopwork_sync_core::store::OrderQuery;
use loopwork_sync_core::{Category, Channel, Grade, Kind, Location, NewOrder, OrderId};
use loopwork_tests::faults::{FaultProxy, Rng};
use loopwork_tests::{Backend, Device, SyncError, TestServer, on_both_backends, tally_notes};
use serde_json::Value;

on_both_backends!(through_a_faulty_network_nothing_is_lost_or_doubled);

/// One sync attempt: false when the network failed it; anything else failing is a defect.
async fn try_sync(phone: &mut Device) -> bool {
    match phone.sync().await {
        Ok(_) => true,
        Err(SyncError::Transport(_) | SyncError::Offline) => false,
        Err(other) => panic!("a sync failed with more than the network's fault: {other:?}"),
    }
}

async fn through_a_faulty_network_nothing_is_lost_or_doubled(backend: Backend) {
    let rounds: usize = std::env::var("LOOPWORK_FAULT_ROUNDS").ok().and_then(|k| k.parse().ok()).unwrap_or(12);
    let seed = std::env::var("LOOPWORK_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1
    });
    let mut rng = Rng(seed ^ 0x5eed);
    let server = TestServer::start(backend).await;
    let proxy = FaultProxy::start(&server.base, seed).await;
    let started = Instant::now();

    // Four phones of customer service, each a device of its own, all through the proxy.
    let mut phones = Vec::new();
    for _ in 0..4 {
        let mut phone = Device::new(&proxy.base(), server.login("kefu").await);
        phone.without_keep_alive();
        phones.push(phone);
    }
    let mut sync_failures = 0u64;
    let mut attempts = 0u64;
    for phone in &mut phones {
        attempts += 1;
        while !try_sync(phone).await {
            attempts += 1;
            sync_failures += 1;
        }
    }
    let mut orders: Vec<OrderId> = phones[0]
        .replica
        .list(&OrderQuery { open_only: true, limit: 20, ..Default::default() })
        .expect("list")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert!(!orders.is_empty(), "the demo has open orders");
    let reporter = server.login("yezhu1502").await.user;

    let mut made_notes: BTreeMap<OrderId, BTreeSet<String>> = BTreeMap::new();
    let mut created: Vec<OrderId> = Vec::new();
    for round in 0..rounds {
        for (p, phone) in phones.iter_mut().enumerate() {
            // Offline work: a note on an order, and now and then a new order (the server numbers it).
            if rng.next(4) == 0 {
                let new = NewOrder {
                    kind: Kind::Repair,
                    category: Category::WaterElectric,
                    grade: Grade::Minor,
                    channel: Channel::Hotline,
                    location: Location::unit("hy-garden", "3", "3-1502"),
                    description: format!("网络故障演练 r{round} p{p}"),
                    reporter,
                    occurred_at_ms: None,
                };
                let id = phone.replica.create(&new).expect("create");
                created.push(id);
                orders.push(id);
            }
            let order = orders[rng.next(orders.len() as u64) as usize];
            if phone.replica.order(order).is_err() {
                continue; // made on another phone, not synced here yet
            }
            let text = format!("r{round}-p{p}");
            phone.replica.add_note(order, &text).expect("note");
            made_notes.entry(order).or_default().insert(text);
            attempts += 1;
            if !try_sync(phone).await {
                sync_failures += 1;
            }
        }
    }

    // The network heals for good: every phone settles (twice round, so that the first ones pull
    // what the last ones pushed after them).
    proxy.faulty.store(false, std::sync::atomic::Ordering::Relaxed);
    for _ in 0..2 {
        for phone in &mut phones {
            phone.synced().await;
        }
    }
    let settled_ms = started.elapsed().as_millis();

    let staff = server.login("kefu").await;
    let tally = tally_notes(&server.base, &staff.token, &made_notes, &phones).await;
    let (lost, duplicated, checked) = (tally.lost, tally.duplicated, tally.made);
    let (status, queue) = server.call(&staff.token, "GET", "/api/v1/orders?limit=500", None).await;
    assert_eq!(status, 200, "{queue}");
    let rows = queue.as_array().expect("queue");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    let numbers: BTreeSet<&str> = rows.iter().filter_map(|r| r["number"].as_str()).collect();
    let missing = created.iter().filter(|id| !ids.contains(&id.to_string().as_str())).count();
    let unnumbered = rows.iter().filter(|r| r["number"].as_str().is_none_or(str::is_empty)).count();
    // Numbered once: one value (no concurrent second numbering), the same on every phone.
    let mut numbered_twice = 0;
    for id in &created {
        let held: Vec<Option<String>> =
            phones.iter().map(|p| p.replica.order(*id).expect("on every phone").official_number()).collect();
        assert!(held[0].is_some() && held.windows(2).all(|w| w[0] == w[1]), "one number for {id}: {held:?}");
        let order = phones[0].replica.order(*id).expect("on the phone");
        let values = order.automerge().get_all(automerge::ROOT, "official_no").expect("read").len();
        if values != 1 {
            numbered_twice += 1;
        }
    }
    let report = serde_json::json!({
        "backend": format!("{backend:?}").to_lowercase(),
        "seed": seed,
        "rounds": rounds,
        "faults": proxy.counts.json(),
        "faults_injected": proxy.counts.faults(),
        "sync_attempts": attempts,
        "sync_failures": sync_failures,
        "notes_checked": checked,
        "orders_created_offline": created.len(),
        "lost": lost + missing,
        "duplicated": duplicated + numbered_twice + ids.len() - ids.iter().collect::<BTreeSet<_>>().len(),
        "settled_ms": settled_ms,
    });
    eprintln!("{report}");
    assert_eq!(lost + missing, 0, "{report}");
    assert_eq!(duplicated + numbered_twice, 0, "{report}");
    assert_eq!(unnumbered, 0, "every order has its official number: {report}");
    assert_eq!(numbers.len(), rows.len(), "official numbers are unique: {report}");
    assert!(proxy.counts.faults() > 0 && sync_failures > 0, "the network did fail: {report}");
    let _: Value = report;
}
