//! Who may write which field, as a device checks it before writing (the table in
//! `permissions.rs`, published in docs/permissions.md).

use loopwork_sync_core::lifecycle::Supersession;
use loopwork_sync_core::store::MemoryStore;
use loopwork_sync_core::{
    Action, Category, Channel, CoreError, FixedClock, Grade, Identity, Kind, Location, NewOrder, OrderId, Replica, Role,
};

const T0: i64 = 1_790_000_000_000;

struct Desk {
    dispatcher: Identity,
    wang: Identity,
    li: Identity,
    owner: Identity,
}

/// One order reported by `owner`, as each person's replica holds it.
fn order_for_all() -> (Desk, OrderId, Vec<Replica<MemoryStore>>) {
    let desk = Desk {
        dispatcher: Identity::fresh(Role::Dispatcher),
        wang: Identity::fresh(Role::Technician),
        li: Identity::fresh(Role::Technician),
        owner: Identity::fresh(Role::Owner),
    };
    let mut replicas: Vec<Replica<MemoryStore>> = [desk.dispatcher, desk.wang, desk.li, desk.owner]
        .into_iter()
        .map(|who| Replica::new(MemoryStore::default(), who, FixedClock::at(T0)))
        .collect();
    let id = replicas[0]
        .create(&NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Minor,
            channel: Channel::App,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "厨房水管漏水".into(),
            reporter: desk.owner.user,
            occurred_at_ms: None,
        })
        .unwrap();
    (desk, id, replicas)
}

/// Copies everything the first replica has to the others.
fn share(id: OrderId, replicas: &mut [Replica<MemoryStore>], from: usize) {
    let changes: Vec<Vec<u8>> =
        replicas[from].order(id).unwrap().changes_since(&[]).into_iter().map(|(_, b)| b).collect();
    for (i, r) in replicas.iter_mut().enumerate() {
        if i != from {
            r.receive(id, &changes).unwrap();
        }
    }
}

fn refused(result: Result<impl std::fmt::Debug, CoreError>) -> Supersession {
    match result {
        Err(CoreError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

const DESK: usize = 0;
const WANG: usize = 1;
const LI: usize = 2;
const OWNER: usize = 3;

#[test]
fn each_role_writes_only_its_fields() {
    let (desk, id, mut r) = order_for_all();
    share(id, &mut r, DESK);

    // The owner may still change the description before a technician accepts.
    r[OWNER].set_description(id, "厨房水管接头漏水,地面有积水").unwrap();
    assert_eq!(refused(r[OWNER].set_grade(id, Grade::Critical)), Supersession::RoleNotPermitted);
    // A technician may not grade, nor write to an order that is not theirs.
    assert_eq!(refused(r[WANG].set_grade(id, Grade::Critical)), Supersession::RoleNotPermitted);
    assert_eq!(refused(r[WANG].add_note(id, "我来看看")), Supersession::NotAssignee);
    r[DESK].set_grade(id, Grade::Serious).unwrap();
    r[DESK].set_location(id, &Location::unit("hy-garden", "3", "3-1501")).unwrap();
    r[DESK].transition(id, Action::Assign(desk.wang.user), None).unwrap();
    share(id, &mut r, DESK);

    // Parts and time belong to the job: not before the technician accepts.
    assert_eq!(refused(r[WANG].add_part(id, "角阀", 1)), Supersession::InvalidFromState);
    r[WANG].transition(id, Action::Accept, None).unwrap();
    r[WANG].add_part(id, "角阀", 1).unwrap();
    r[WANG].log_time(id, T0 - 3_600_000, T0).unwrap();
    r[WANG].attach(id, &"ab".repeat(32), "image/jpeg").unwrap();
    r[WANG].add_note(id, "已更换角阀").unwrap();
    assert_eq!(refused(r[LI].add_part(id, "角阀", 1)), Supersession::NotAssignee);
    share(id, &mut r, WANG);
    // Accepted: the owner's description is settled; notes are still theirs to add.
    assert_eq!(refused(r[OWNER].set_description(id, "改一下")), Supersession::InvalidFromState);
    r[OWNER].add_note(id, "下午三点后在家").unwrap();
    let order = r[OWNER].order(id).unwrap();
    assert_eq!(order.notes().len(), 2);
    assert_eq!(order.parts().len(), 1);
    assert_eq!(order.grade().unwrap(), Grade::Serious);
}

#[test]
fn a_reassigned_technician_is_told_so_and_a_closed_order_takes_nothing() {
    let (desk, id, mut r) = order_for_all();
    r[DESK].transition(id, Action::Assign(desk.wang.user), None).unwrap();
    share(id, &mut r, DESK);
    r[WANG].transition(id, Action::Accept, None).unwrap();
    share(id, &mut r, WANG);
    r[DESK].transition(id, Action::Assign(desk.li.user), None).unwrap();
    share(id, &mut r, DESK);
    assert_eq!(refused(r[WANG].add_part(id, "角阀", 1)), Supersession::Reassigned);
    r[DESK].transition(id, Action::Cancel, Some("业主自行维修")).unwrap();
    assert_eq!(refused(r[DESK].add_note(id, "补记")), Supersession::OrderCancelled);
    assert_eq!(refused(r[DESK].set_grade(id, Grade::Minor)), Supersession::OrderCancelled);
}

#[test]
fn the_field_table_in_docs_is_the_one_in_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/permissions.md")).unwrap();
    let table = loopwork_sync_core::permissions::field_rules_markdown();
    assert!(doc.contains(&table), "docs/permissions.md must contain the field table; regenerate it:\n{table}");
}

#[test]
#[ignore = "prints the field table for docs/permissions.md"]
fn print_field_table() {
    print!("{}", loopwork_sync_core::permissions::field_rules_markdown());
}
