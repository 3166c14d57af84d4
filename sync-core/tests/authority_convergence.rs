//! Property: five replicas (dispatcher, two technicians, owner, server) make random valid and
//! invalid concurrent edits and sync through the server in random orders. At the end every
//! replica holds the same document; its folded state is valid; every valid edit survives; every
//! invalid one is compensated and recorded exactly once.
//!
//! "Valid" is decided by the writer as it sees the order when it writes (the field table and
//! attribution); the server must reach the same verdict from the change's dependencies alone.

use std::collections::BTreeSet;

use automerge::{Change, ChangeHash};
use loopwork_sync_core::authority;
use loopwork_sync_core::permissions::{Field, check_field};
use loopwork_sync_core::work_order::parse_change;
use loopwork_sync_core::{
    Action, Category, Channel, Grade, Identity, Kind, Location, NewOrder, Role, Status, WorkOrder,
};
use proptest::prelude::*;

const T0: i64 = 1_790_000_000_000;
const PEOPLE: usize = 4; // desk, wang, li, owner; the server is separate

#[derive(Clone, Debug)]
enum Op {
    /// Replica `r` appends a note (valid or not, as its view says).
    Note { r: usize },
    /// Replica `r` sets the grade (only the desk may).
    Grade { r: usize, grade: usize },
    /// Replica `r` records a part (only the assignee, on the job).
    Part { r: usize },
    /// Replica `r` attempts a lifecycle action, checked locally (the fold judges it later).
    Act { r: usize, action: u8 },
    /// Replica `r` appends a transition claiming another role: always invalid.
    Forge { r: usize },
    /// Replica `r` writes the official number: always invalid.
    Number { r: usize },
    /// Replica `r` pushes to the server and pulls everything back.
    Sync { r: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..PEOPLE;
    prop_oneof![
        3 => r.clone().prop_map(|r| Op::Note { r }),
        2 => (r.clone(), 0usize..4).prop_map(|(r, grade)| Op::Grade { r, grade }),
        2 => r.clone().prop_map(|r| Op::Part { r }),
        3 => (r.clone(), 0u8..8).prop_map(|(r, action)| Op::Act { r, action }),
        1 => r.clone().prop_map(|r| Op::Forge { r }),
        1 => r.clone().prop_map(|r| Op::Number { r }),
        4 => r.prop_map(|r| Op::Sync { r }),
    ]
}

struct World {
    people: Vec<Identity>,
    server_id: Identity,
    replicas: Vec<WorkOrder>,
    server: WorkOrder,
    valid_texts: BTreeSet<String>,
    invalid_texts: BTreeSet<String>,
    valid_grades: BTreeSet<Grade>,
    invalid_changes: BTreeSet<ChangeHash>,
    clock: i64,
}

impl World {
    fn new() -> World {
        let people = vec![
            Identity::fresh(Role::Dispatcher),
            Identity::fresh(Role::Technician),
            Identity::fresh(Role::Technician),
            Identity::fresh(Role::Owner),
        ];
        let server_id = Identity::fresh(Role::System);
        let new = NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Minor,
            channel: Channel::App,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "厨房水管漏水".into(),
            reporter: people[3].user,
            occurred_at_ms: None,
        };
        let mut created = WorkOrder::create(&new, &people[0], T0).unwrap();
        created.transition(&people[0], Action::Assign(people[1].user), None, T0).unwrap();
        let server = WorkOrder::load(&created.save()).unwrap().with_device(server_id.device);
        let replicas = people.iter().map(|p| WorkOrder::load(&created.save()).unwrap().with_device(p.device)).collect();
        World {
            people,
            server_id,
            replicas,
            server,
            valid_texts: BTreeSet::new(),
            invalid_texts: BTreeSet::new(),
            valid_grades: [Grade::Minor].into_iter().collect(),
            invalid_changes: BTreeSet::new(),
            clock: T0,
        }
    }

    fn tick(&mut self) -> i64 {
        self.clock += 60_000;
        self.clock
    }

    /// Whether person `r` may write `field` as their replica sees the order now.
    fn may(&self, r: usize, field: Field) -> bool {
        let order = &self.replicas[r];
        let state = order.state().unwrap();
        check_field(field, &state, order.reporter().unwrap(), self.people[r].user, self.people[r].role).is_ok()
    }

    fn invalid(&mut self, hash: ChangeHash) {
        self.invalid_changes.insert(hash);
    }

    fn apply(&mut self, op: &Op, step: usize) {
        let now = self.tick();
        match *op {
            Op::Note { r } => {
                let text = format!("note-{step}");
                let valid = self.may(r, Field::Notes);
                let me = self.people[r];
                let hash = self.replicas[r].add_note(&me, &text, now).unwrap();
                if valid {
                    self.valid_texts.insert(text);
                } else {
                    self.invalid_texts.insert(text);
                    self.invalid(hash);
                }
            }
            Op::Grade { r, grade } => {
                let grade = Grade::ALL[grade];
                if self.replicas[r].grade().unwrap() == grade {
                    return;
                }
                let valid = self.may(r, Field::Grade);
                let hash = self.replicas[r].set_grade(grade, now).unwrap();
                if valid {
                    self.valid_grades.insert(grade);
                } else {
                    self.invalid(hash);
                }
            }
            Op::Part { r } => {
                let name = format!("part-{step}");
                let valid = self.may(r, Field::Parts);
                let me = self.people[r];
                let hash = self.replicas[r].add_part(&me, &name, 1, now).unwrap();
                if valid {
                    self.valid_texts.insert(name);
                } else {
                    self.invalid_texts.insert(name);
                    self.invalid(hash);
                }
            }
            Op::Act { r, action } => {
                let action = match action {
                    0 => Action::Assign(self.people[1 + step % 2].user),
                    1 => Action::Accept,
                    2 => Action::Arrive,
                    3 => Action::Start,
                    4 => Action::Complete,
                    5 => Action::Confirm { rating: 4 },
                    6 => Action::Reject,
                    _ => Action::Cancel,
                };
                let me = self.people[r];
                let _ = self.replicas[r].transition(&me, action, Some("reason"), now);
            }
            Op::Forge { r } => {
                let me = self.people[r];
                let claim =
                    Identity { role: if me.role == Role::Dispatcher { Role::Owner } else { Role::Dispatcher }, ..me };
                let hash = self.replicas[r].append_transition_unchecked(&claim, Action::Cancel, None, now).unwrap();
                self.invalid(hash);
            }
            Op::Number { r } => {
                let hash = self.replicas[r].set_official_number(&format!("FAKE-{step}"), now).unwrap();
                self.invalid(hash);
            }
            Op::Sync { r } => self.sync(r),
        }
    }

    fn sync(&mut self, r: usize) {
        let changes: Vec<Change> = self.replicas[r]
            .changes_since(&self.server.heads())
            .into_iter()
            .map(|(_, bytes)| parse_change(&bytes).unwrap())
            .collect();
        if !changes.is_empty() {
            let mut merged = self.server.clone().with_changes_unvalidated(changes.clone()).unwrap();
            let now = self.tick();
            let prior = authority::Prior::of(&self.server, self.server.transitions());
            authority::review(&mut merged, &changes, &author_of(&self.people[r]), &self.server_id, prior.as_ref(), now)
                .unwrap();
            merged.validate().unwrap();
            self.server = merged;
        }
        let mut copy = self.server.clone();
        self.replicas[r].merge(&mut copy).unwrap();
    }
}

fn texts(order: &WorkOrder) -> Vec<String> {
    order.notes().into_iter().map(|n| n.text).chain(order.parts().into_iter().map(|p| p.name)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_server_keeps_every_valid_edit_and_compensates_every_invalid_one_once(
        ops in proptest::collection::vec(op(), 5..40),
        final_order in Just((0..PEOPLE).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let mut world = World::new();
        for (step, op) in ops.iter().enumerate() {
            world.apply(op, step);
        }
        // Everyone reaches signal, in a random order, twice (the second round brings each the
        // compensations of the others' pushes).
        for _ in 0..2 {
            for &r in &final_order {
                world.sync(r);
            }
        }

        let heads = world.server.heads();
        for replica in &world.replicas {
            prop_assert_eq!(replica.heads(), heads.clone(), "every replica converges");
        }
        let order = &world.server;
        order.validate().unwrap();
        let state = order.state().unwrap();
        prop_assert!(Status::ALL.contains(&state.status));

        let present = texts(order);
        for text in &world.valid_texts {
            prop_assert_eq!(present.iter().filter(|t| *t == text).count(), 1, "valid edit {} survives once", text);
        }
        for text in &world.invalid_texts {
            prop_assert!(!present.contains(text), "invalid edit {} is compensated", text);
        }
        prop_assert!(world.valid_grades.contains(&order.grade().unwrap()), "the grade was written by a valid edit");
        prop_assert!(order.official_number().is_none(), "no device numbers an order");
        prop_assert!(state.history.iter().all(|f| f.transition.role == world.people.iter().find(|p| p.user == f.transition.by).unwrap().role),
            "every transition left in the log is truthfully attributed");

        let recorded: Vec<ChangeHash> = order.rejections().iter().map(|r| r.change).collect();
        let recorded_set: BTreeSet<ChangeHash> = recorded.iter().copied().collect();
        prop_assert_eq!(recorded.len(), recorded_set.len(), "each rejection recorded once");
        prop_assert_eq!(recorded_set, world.invalid_changes.clone(), "exactly the invalid changes are rejected");
    }
}

fn author_of(identity: &Identity) -> authority::Author {
    authority::Author { identity: *identity, closing: authority::ClosingAuthority::default() }
}
