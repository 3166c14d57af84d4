//! The saved binary fixtures that docs/document.md describes, for writers of third-party clients:
//! a created order, the same order after assignment, and one note change on top of it. They were
//! written once by `write_fixtures` (ignored; run it with `--ignored` only to make new ones) and
//! are loaded here as a client written from the docs would load them.

use std::path::PathBuf;

use loopwork_sync_core::work_order::parse_change;
use loopwork_sync_core::{
    Action, Category, Channel, DeviceId, Grade, Identity, Kind, Location, NewOrder, OrderId, Role, Status, UserId,
    WorkOrder,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

const ORDER: &str = "0193a000-0000-7000-8000-000000000001";
const DESK_USER: &str = "0193a000-0000-7000-8000-0000000000d1";
const DESK_DEVICE: &str = "0193a000-0000-7000-8000-0000000000d2";
const TECH_USER: &str = "0193a000-0000-7000-8000-0000000000e1";
const TECH_DEVICE: &str = "0193a000-0000-7000-8000-0000000000e2";
const OWNER_USER: &str = "0193a000-0000-7000-8000-0000000000f1";

#[test]
#[ignore = "writes the fixtures; run only to make new ones"]
fn write_fixtures() {
    let desk = Identity::new(DESK_USER.parse().unwrap(), Role::Dispatcher, DESK_DEVICE.parse().unwrap());
    let tech = Identity::new(TECH_USER.parse().unwrap(), Role::Technician, TECH_DEVICE.parse().unwrap());
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "卫生间天花板渗水".into(),
        reporter: OWNER_USER.parse().unwrap(),
        occurred_at_ms: Some(1_796_000_000_000),
    };
    let mut order = WorkOrder::create_with_id(ORDER.parse().unwrap(), &new, &desk, 1_796_000_060_000).unwrap();
    std::fs::write(fixtures().join("order_created.automerge"), order.save()).unwrap();
    order.transition(&desk, Action::Assign(tech.user), None, 1_796_000_120_000).unwrap();
    std::fs::write(fixtures().join("order_assigned.automerge"), order.save()).unwrap();
    let mut phone = order.with_device(tech.device);
    let before = phone.heads();
    phone.transition(&tech, Action::Accept, None, 1_796_000_180_000).unwrap();
    let accepted = phone.heads();
    phone.add_note(&tech, "已到现场,关闭楼上进水阀", 1_796_000_240_000).unwrap();
    let changes = phone.changes_since(&before);
    std::fs::write(fixtures().join("accept_change.bin"), &changes[0].1).unwrap();
    std::fs::write(fixtures().join("note_change.bin"), &phone.changes_since(&accepted)[0].1).unwrap();
}

#[test]
fn the_saved_documents_read_as_document_md_says() {
    let created = WorkOrder::load(&read("order_created.automerge")).expect("a created order loads");
    assert_eq!(created.id(), ORDER.parse::<OrderId>().unwrap());
    assert_eq!(created.kind().unwrap(), Kind::Repair);
    assert_eq!(created.grade().unwrap(), Grade::Serious);
    assert_eq!(created.description(), "卫生间天花板渗水");
    assert_eq!(created.reporter().unwrap(), OWNER_USER.parse::<UserId>().unwrap());
    assert_eq!(created.state().unwrap().status, Status::New);
    assert_eq!(created.official_number(), None, "the server numbers an order when it first stores it");
    // One change, made by the dispatcher's device: its actor is the device id's 16 bytes, its
    // time in seconds.
    let changes = created.automerge().get_changes(&[]);
    assert_eq!(changes.len(), 1);
    let device: DeviceId = DESK_DEVICE.parse().unwrap();
    assert_eq!(changes[0].actor_id().to_bytes(), device.as_uuid().as_bytes());
    assert_eq!(changes[0].timestamp(), 1_796_000_060);

    let assigned = WorkOrder::load(&read("order_assigned.automerge")).expect("loads");
    let state = assigned.state().unwrap();
    assert_eq!(state.status, Status::Assigned);
    assert_eq!(state.assignee, Some(TECH_USER.parse().unwrap()));
}

#[test]
fn the_saved_changes_parse_and_apply_on_top_of_the_assigned_order() {
    let mut order = WorkOrder::load(&read("order_assigned.automerge")).expect("loads");
    let (accept, note) = (read("accept_change.bin"), read("note_change.bin"));
    for bytes in [&accept, &note] {
        let change = parse_change(bytes).expect("a canonical change with a valid checksum");
        let device: DeviceId = TECH_DEVICE.parse().unwrap();
        assert_eq!(change.actor_id().to_bytes(), device.as_uuid().as_bytes());
    }
    order.apply_changes([accept.as_slice(), note.as_slice()]).expect("they apply");
    assert_eq!(order.state().unwrap().status, Status::Accepted);
    let notes = order.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, "已到现场,关闭楼上进水阀");
    assert_eq!(notes[0].by, TECH_USER.parse::<UserId>().unwrap());
}
