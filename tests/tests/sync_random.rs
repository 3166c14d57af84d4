//! Random offline work, random connectivity, a server restart, and edits a modified app makes
//! that its user may not (a technician or an owner grading an order): when everyone is back
//! online, every replica that still holds an order has the same document as the server, no
//! change any device made is missing there, every invalid edit was compensated and recorded
//! exactly once, and no valid one was. On SQLite and on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ChangeHash, ReadDoc};
use loopwork_sync_core::{Action, Category, Channel, Grade, Kind, Location, NewOrder, OrderId, Status};
use loopwork_tests::{Backend, Device, SyncError, TestServer};

/// A small deterministic generator, so a failing seed can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

const STEPS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_offline_work_converges_on_sqlite() {
    for seed in [1, 2, 3] {
        run(Backend::Sqlite, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_offline_work_converges_on_postgres() {
    for seed in [4, 5, 6] {
        run(Backend::Postgres, seed).await;
    }
}

async fn run(backend: Backend, seed: u64) {
    let mut dice = Dice(seed);
    let mut server = TestServer::start(backend).await;
    let mut devices = vec![
        server.device("kefu").await,
        server.device("wang").await,
        server.device("li").await,
        server.device("yezhu1502").await,
    ];
    let technicians = [devices[1].session.user, devices[2].session.user];
    let owner = devices[3].session.user;
    let mut orders: Vec<OrderId> = Vec::new();
    let mut invalid: BTreeSet<ChangeHash> = BTreeSet::new();
    let mut valid_grades: BTreeMap<OrderId, BTreeSet<Grade>> = BTreeMap::new();

    for step in 0..STEPS {
        let who = dice.roll(devices.len());
        match dice.roll(12) {
            0 | 7 if who == 0 || orders.len() < 3 => {
                let desk = &mut devices[0];
                let id = desk
                    .replica
                    .create(&NewOrder {
                        kind: Kind::Repair,
                        category: Category::WaterElectric,
                        grade: Grade::Serious,
                        channel: Channel::Hotline,
                        location: Location::unit("hy-garden", "3", "3-1502"),
                        description: format!("随机工单 {step}"),
                        reporter: owner,
                        occurred_at_ms: None,
                    })
                    .expect("create");
                let tech = technicians[dice.roll(2)];
                desk.replica.transition(id, Action::Assign(tech), None).expect("assign");
                orders.push(id);
                valid_grades.entry(id).or_default().insert(Grade::Serious);
            }
            9 | 10 if !orders.is_empty() => {
                // A grade: the desk's is valid; anyone else's comes from a modified app.
                let id = orders[dice.roll(orders.len())];
                let grade = Grade::ALL[dice.roll(Grade::ALL.len())];
                let device = &mut devices[who];
                if who == 0 {
                    if device.replica.set_grade(id, grade).is_ok() {
                        valid_grades.entry(id).or_default().insert(grade);
                    }
                } else if let Ok(hash) = device.replica.edit(id, |order, _, now| order.set_grade(grade, now)) {
                    invalid.insert(hash);
                }
            }
            1 if !orders.is_empty() => {
                let id = orders[dice.roll(orders.len())];
                let tech = technicians[dice.roll(2)];
                if devices[0].replica.order(id).is_ok() {
                    let _ = devices[0].replica.transition(id, Action::Assign(tech), Some("改派"));
                }
            }
            2 | 3 | 8 => {
                // Whoever it is does something their role may do next on an order they hold
                // (as their device sees it: a concurrent edit elsewhere may still supersede it).
                let device = &mut devices[who];
                let id = orders.get(dice.roll(orders.len())).copied();
                if let Some(id) = id.filter(|id| device.replica.order(*id).is_ok()) {
                    let actions: &[Action] = match who {
                        0 => &[Action::ReturnVisit, Action::Close, Action::Cancel],
                        3 => &[Action::Confirm { rating: 2 }, Action::Confirm { rating: 5 }, Action::Reject],
                        _ => &[Action::Accept, Action::Arrive, Action::Start, Action::Complete],
                    };
                    let start = dice.roll(actions.len());
                    for k in 0..actions.len() {
                        let action = actions[(start + k) % actions.len()];
                        if action == Action::Cancel && dice.roll(5) != 0 {
                            continue;
                        }
                        let text = action.requires_text().then_some("随机步骤的原因");
                        if device.replica.transition(id, action, text).is_ok() {
                            break;
                        }
                    }
                }
            }
            4 => {
                let device = &mut devices[who];
                if let Some(id) = orders.get(dice.roll(orders.len())).copied() {
                    let _ = device.replica.add_note(id, &format!("第{step}步记录"));
                }
            }
            5 => devices[who].online = !devices[who].online,
            6 if dice.roll(4) == 0 => {
                server = server.restart().await;
                for device in devices.iter_mut() {
                    device.base = server.base.clone();
                }
            }
            _ => match devices[who].sync().await {
                Ok(_) | Err(SyncError::Offline) => {}
                Err(other) => panic!("seed {seed} step {step}: sync failed: {other:?}"),
            },
        }
    }

    for device in devices.iter_mut() {
        device.online = true;
    }
    for _ in 0..3 {
        for device in devices.iter_mut() {
            device.sync().await.unwrap_or_else(|e| panic!("seed {seed}: final sync: {e:?}"));
        }
    }
    check(&devices, &orders, seed);
    let desk = &devices[0];
    let mut recorded = Vec::new();
    for id in &orders {
        let order = desk.replica.order(*id).expect("order");
        recorded.extend(order.rejections().into_iter().map(|r| r.change));
        let grade = order.grade().expect("grade");
        assert!(valid_grades[id].contains(&grade), "seed {seed}: {id} ended with a grade no valid edit set");
    }
    let recorded_set: BTreeSet<ChangeHash> = recorded.iter().copied().collect();
    assert_eq!(recorded.len(), recorded_set.len(), "seed {seed}: a rejection recorded twice");
    assert_eq!(recorded_set, invalid, "seed {seed}: exactly the invalid edits are compensated");
    let notes: usize =
        orders.iter().map(|id| devices[0].replica.order(*id).map(|o| o.notes().len()).unwrap_or(0)).sum();
    let moved = orders
        .iter()
        .filter(|id| {
            devices[0].replica.order(**id).is_ok_and(|o| o.state().is_ok_and(|s| s.status != Status::Assigned))
        })
        .count();
    eprintln!(
        "seed {seed}: {} orders, {notes} notes, {moved} moved past assignment, {} edits compensated",
        orders.len(),
        invalid.len()
    );
    server.stop().await.drop_database().await;
}

fn check(devices: &[Device], orders: &[OrderId], seed: u64) {
    let desk = &devices[0];
    for device in devices {
        assert_eq!(device.replica.pending_count().expect("pending"), 0, "seed {seed}: every change acknowledged");
    }
    for id in orders {
        let server_copy = desk.replica.order(*id).unwrap_or_else(|_| panic!("seed {seed}: desk lacks {id}"));
        let state = server_copy.state().expect("state");
        assert!(Status::ALL.contains(&state.status));
        for device in &devices[1..] {
            let Ok(copy) = device.replica.order(*id) else { continue };
            // Every change this device holds is on the server side.
            for (hash, _) in copy.changes_since(&[]) {
                assert!(
                    server_copy.automerge().get_change_by_hash(&hash).is_some(),
                    "seed {seed}: a change of {} on {id} never reached the server",
                    device.session.role
                );
            }
            // A device still in scope holds exactly what the server holds.
            if device.replica.revocation(*id).expect("revocation").is_none() {
                assert_eq!(copy.heads(), server_copy.heads(), "seed {seed}: {} diverged on {id}", device.session.role);
                assert_eq!(copy.state().expect("state"), state, "seed {seed}");
            }
        }
    }
}
