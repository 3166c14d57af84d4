//! Property: replicas that make random concurrent edits and merge in random orders end with
//! identical documents and identical folded state, and the folded state only ever takes steps
//! the rules allow.

use loopwork_sync_core::lifecycle::{self, OrderFacts, OrderState, Verdict};
use loopwork_sync_core::{
    Action, Category, Channel, Grade, HoldReason, Identity, Kind, Location, NewOrder, Role, Status, WorkOrder,
};
use proptest::prelude::*;

const T0: i64 = 1_790_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    /// Replica `r` attempts an action (checked locally; refused attempts write nothing).
    Act {
        r: usize,
        action: u8,
        target: usize,
    },
    /// Replica `r` writes an action without checking, as a stale or dishonest device would.
    Force {
        r: usize,
        action: u8,
        target: usize,
    },
    Note {
        r: usize,
    },
    Describe {
        r: usize,
        at: usize,
        text: String,
    },
    /// Replica `to` receives everything replica `from` has.
    Merge {
        from: usize,
        to: usize,
    },
}

fn op(replicas: usize) -> impl Strategy<Value = Op> {
    let r = 0..replicas;
    prop_oneof![
        4 => (r.clone(), 0u8..13, 0..replicas).prop_map(|(r, action, target)| Op::Act { r, action, target }),
        1 => (r.clone(), 0u8..13, 0..replicas).prop_map(|(r, action, target)| Op::Force { r, action, target }),
        1 => r.clone().prop_map(|r| Op::Note { r }),
        1 => (r.clone(), 0usize..20, "[a-z漏水]{1,4}").prop_map(|(r, at, text)| Op::Describe { r, at, text }),
        3 => (r.clone(), r).prop_map(|(from, to)| Op::Merge { from, to }),
    ]
}

fn action(code: u8, assignee: &Identity) -> Action {
    match code {
        0 => Action::Assign(assignee.user),
        1 => Action::Accept,
        2 => Action::Arrive,
        3 => Action::Start,
        4 => Action::Hold(HoldReason::WaitingForParts),
        5 => Action::Resume,
        6 => Action::Complete,
        7 => Action::Confirm { rating: 3 },
        8 => Action::Reject,
        9 => Action::ReturnVisit,
        10 => Action::Close,
        11 => Action::Cancel,
        _ => Action::Confirm { rating: 5 },
    }
}

/// The cast: a dispatcher, technicians, the reporting owner.
fn cast(n: usize) -> Vec<Identity> {
    let mut people = vec![Identity::fresh(Role::Dispatcher), Identity::fresh(Role::Technician)];
    people.push(Identity::fresh(Role::Owner));
    while people.len() < n {
        people.push(Identity::fresh(Role::Technician));
    }
    people
}

/// Every applied entry is a legal step from the state before it; superseded ones change nothing.
fn assert_only_legal_steps(facts: &OrderFacts, state: &OrderState) {
    let mut replay = Vec::new();
    let mut before = Status::New;
    for folded in &state.history {
        let prefix = lifecycle::fold_ordered(facts, replay.clone());
        assert_eq!(prefix.status, before);
        let verdict =
            lifecycle::check(&prefix, facts, &folded.transition.action, folded.transition.by, folded.transition.role);
        match folded.verdict {
            Verdict::Applied => assert_eq!(verdict, Ok(folded.status_after)),
            Verdict::Superseded(why) => {
                assert_eq!(verdict, Err(why));
                assert_eq!(folded.status_after, before);
            }
        }
        before = folded.status_after;
        replay.push(folded.transition.clone());
    }
    assert_eq!(before, state.status);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_to_one_valid_state(n in 3usize..=5, ops in proptest::collection::vec(op(5), 1..60), order_seed in any::<u64>()) {
        let people = cast(n);
        let owner = &people[2];
        let new = NewOrder {
            kind: Kind::Repair,
            category: Category::Elevator,
            grade: Grade::Severe,
            channel: Channel::App,
            location: Location::common_area("hy-garden", "2号楼电梯"),
            description: "电梯困人".into(),
            reporter: owner.user,
            occurred_at_ms: None,
        };
        let origin = WorkOrder::create(&new, &people[0], T0).unwrap();
        let mut replicas: Vec<WorkOrder> =
            people.iter().map(|p| WorkOrder::load(&origin.save()).unwrap().with_device(p.device)).collect();

        for (step, op) in ops.into_iter().enumerate() {
            let at = T0 + step as i64 * 60_000;
            match op {
                Op::Act { r, action: a, target } | Op::Force { r, action: a, target } if r < n => {
                    let assignee = &people[target % n];
                    let act = action(a, assignee);
                    let who = &people[r];
                    if matches!(op, Op::Force { .. }) {
                        replicas[r].append_transition_unchecked(who, act, None, at).unwrap();
                    } else {
                        let _ = replicas[r].transition(who, act, None, at);
                    }
                }
                Op::Note { r } if r < n => {
                    replicas[r].add_note(&people[r], "记录", at).unwrap();
                }
                Op::Describe { r, at: pos, text } if r < n => {
                    let mut d: Vec<char> = replicas[r].description().chars().collect();
                    let pos = pos.min(d.len());
                    d.splice(pos..pos, text.chars());
                    let d: String = d.into_iter().collect();
                    let _ = replicas[r].set_description(&d, at);
                }
                Op::Merge { from, to } if from < n && to < n && from != to => {
                    let mut sent = replicas[from].clone();
                    replicas[to].merge(&mut sent).unwrap();
                }
                _ => {}
            }
        }

        // Everyone reaches everyone, in a random order of pairwise merges.
        let mut pairs: Vec<(usize, usize)> = (0..n).flat_map(|a| (0..n).map(move |b| (a, b))).filter(|(a, b)| a != b).collect();
        let mut seed = order_seed;
        for i in (1..pairs.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            pairs.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for _round in 0..2 {
            for &(from, to) in &pairs {
                let mut sent = replicas[from].clone();
                replicas[to].merge(&mut sent).unwrap();
            }
        }

        let facts = OrderFacts { reporter: owner.user, kind: Kind::Repair, signature_required: false };
        let first = replicas[0].state().unwrap();
        let first_heads = replicas[0].heads();
        let first_description = replicas[0].description();
        for replica in &replicas[1..] {
            prop_assert_eq!(replica.heads(), first_heads.clone());
            prop_assert_eq!(replica.state().unwrap(), first.clone());
            prop_assert_eq!(replica.description(), first_description.clone());
            prop_assert_eq!(replica.notes(), replicas[0].notes());
        }
        assert_only_legal_steps(&facts, &first);

        // A replica that receives the same changes in another order (one by one, shuffled
        // causally-consistently by loading) computes the same state.
        let rebuilt = WorkOrder::load_chunks(
            replicas[n - 1].changes_since(&[]).iter().rev().map(|(_, bytes)| bytes.as_slice()),
        ).unwrap();
        prop_assert_eq!(rebuilt.state().unwrap(), first);
    }
}
