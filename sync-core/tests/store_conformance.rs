//! One suite, every store: the in-memory store and the SQLite store must behave the same.

use loopwork_sync_core::store::{MemoryStore, OrderQuery, SqliteStore, Store};
use loopwork_sync_core::{
    Action, Category, Channel, CoreError, FixedClock, Grade, Identity, Kind, Location, NewOrder, OrderId, Replica,
    Role, Status, WorkOrder,
};

const T0: i64 = 1_790_000_000_000;
const MINUTE: i64 = 60_000;

fn order_in(unit: &str, grade: Grade, reporter: &Identity) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade,
        channel: Channel::App,
        location: Location::unit("hy-garden", "7", unit),
        description: "卫生间地漏堵塞".into(),
        reporter: reporter.user,
        occurred_at_ms: None,
    }
}

macro_rules! store_suite {
    ($($backend:ident => $make:expr;)+) => {$(
        mod $backend {
            use super::*;

            fn store() -> impl Store {
                $make
            }

            #[test]
            fn a_created_order_reads_back_and_waits_in_the_outbox() {
                super::a_created_order_reads_back_and_waits_in_the_outbox(store());
            }

            #[test]
            fn lists_are_most_urgent_first_and_filter_by_assignee_and_state() {
                super::lists_are_most_urgent_first_and_filter_by_assignee_and_state(store());
            }

            #[test]
            fn acknowledged_changes_leave_the_outbox_once() {
                super::acknowledged_changes_leave_the_outbox_once(store());
            }

            #[test]
            fn received_changes_merge_and_are_not_uploaded_again() {
                super::received_changes_merge_and_are_not_uploaded_again(store());
            }

            #[test]
            fn compaction_keeps_every_edit_and_the_outbox() {
                super::compaction_keeps_every_edit_and_the_outbox(store());
            }

            #[test]
            fn the_cursor_is_kept() {
                super::the_cursor_is_kept(store());
            }

            #[test]
            fn an_unknown_order_is_not_found_and_a_failed_edit_stores_nothing() {
                super::an_unknown_order_is_not_found_and_a_failed_edit_stores_nothing(store());
            }
        }
    )+};
}

store_suite! {
    memory => MemoryStore::new();
    sqlite => SqliteStore::open_in_memory().unwrap();
}

fn replica<S: Store>(store: S, who: Identity) -> Replica<S> {
    Replica::new(store, who, FixedClock::at(T0))
}

fn a_created_order_reads_back_and_waits_in_the_outbox(store: impl Store) {
    let owner = Identity::fresh(Role::Owner);
    let mut device = replica(store, owner);
    let id = device.create(&order_in("7-0801", Grade::Minor, &owner)).unwrap();
    let order = device.order(id).unwrap();
    assert_eq!(order.description(), "卫生间地漏堵塞");
    assert_eq!(order.reporter().unwrap(), owner.user);
    assert!(order.display_number().starts_with("临-"));
    assert_eq!(device.pending_count().unwrap(), 1);
    let pending = device.pending(10).unwrap();
    assert_eq!(pending[0].order, id);
    let summary = &device.list(&OrderQuery::most_urgent(10)).unwrap()[0];
    assert_eq!(summary.id, id);
    assert_eq!(summary.status, Status::New);
    assert_eq!(summary.next_deadline_ms, Some(T0 + 30 * MINUTE));
}

fn lists_are_most_urgent_first_and_filter_by_assignee_and_state(store: impl Store) {
    let dispatcher = Identity::fresh(Role::Dispatcher);
    let wang = Identity::fresh(Role::Technician);
    let owner = Identity::fresh(Role::Owner);
    let mut desk = replica(store, dispatcher);
    let minor = desk.create(&order_in("7-0101", Grade::Minor, &owner)).unwrap();
    let critical = desk.create(&order_in("7-0202", Grade::Critical, &owner)).unwrap();
    let severe = desk.create(&order_in("7-0303", Grade::Severe, &owner)).unwrap();
    let cancelled = desk.create(&order_in("7-0404", Grade::Critical, &owner)).unwrap();
    for id in [minor, critical, severe] {
        desk.transition(id, Action::Assign(wang.user), None).unwrap();
        desk.edit(id, |order, _, now| {
            order.transition(&wang, Action::Accept, None, now)?;
            order.transition(&wang, Action::Arrive, None, now)
        })
        .unwrap();
    }
    desk.transition(cancelled, Action::Cancel, Some("重复报修")).unwrap();

    let mine: Vec<OrderId> = desk.list(&OrderQuery::assigned_to(wang.user, 50)).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(mine, vec![critical, severe, minor]);
    let top = desk.list(&OrderQuery { limit: 2, ..OrderQuery::assigned_to(wang.user, 2) }).unwrap();
    assert_eq!(top.len(), 2);

    let everything = desk.list(&OrderQuery { limit: 50, ..Default::default() }).unwrap();
    assert_eq!(everything.len(), 4);
    assert_eq!(everything.last().unwrap().id, cancelled, "nothing is due on a cancelled order");
    let only_cancelled =
        desk.list(&OrderQuery { statuses: vec![Status::Cancelled], limit: 50, ..Default::default() }).unwrap();
    assert_eq!(only_cancelled.len(), 1);
    let other_building =
        desk.list(&OrderQuery { building: Some("8".into()), limit: 50, ..Default::default() }).unwrap();
    assert!(other_building.is_empty());
    assert_eq!(desk.order_count().unwrap(), 4);
}

fn acknowledged_changes_leave_the_outbox_once(store: impl Store) {
    let owner = Identity::fresh(Role::Owner);
    let mut device = replica(store, owner);
    let id = device.create(&order_in("7-0501", Grade::Minor, &owner)).unwrap();
    let edit = device.edit(id, |order, _, now| order.set_description("地漏堵塞,水漫到客厅", now)).unwrap();
    let pending = device.pending(10).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[1].hash, edit, "the outbox is in the order the edits were made");
    assert_eq!(device.acknowledge(&[pending[0].hash]).unwrap(), 1);
    assert_eq!(device.acknowledge(&[pending[0].hash]).unwrap(), 0, "a repeated ack changes nothing");
    assert_eq!(device.pending(10).unwrap(), vec![pending[1].clone()]);
    assert_eq!(device.order(id).unwrap().description(), "地漏堵塞,水漫到客厅");
}

fn received_changes_merge_and_are_not_uploaded_again(store: impl Store) {
    let owner = Identity::fresh(Role::Owner);
    let wang = Identity::fresh(Role::Technician);
    let dispatcher = Identity::fresh(Role::Dispatcher);
    let mut server_copy = WorkOrder::create(&order_in("7-0601", Grade::Serious, &owner), &dispatcher, T0).unwrap();
    server_copy.transition(&dispatcher, Action::Assign(wang.user), None, T0 + MINUTE).unwrap();
    let everything: Vec<Vec<u8>> = server_copy.changes_since(&[]).into_iter().map(|(_, b)| b).collect();

    let mut phone = replica(store, wang);
    phone.receive(server_copy.id(), &everything).unwrap();
    phone.receive(server_copy.id(), &everything).unwrap();
    assert_eq!(phone.pending_count().unwrap(), 0);
    phone.transition(server_copy.id(), Action::Accept, None).unwrap();
    assert_eq!(phone.pending_count().unwrap(), 1);

    // The dispatcher changes the grade meanwhile; the phone merges it with its own edit.
    let before = server_copy.heads();
    server_copy.set_grade(Grade::Critical, T0 + 2 * MINUTE).unwrap();
    let news: Vec<Vec<u8>> = server_copy.changes_since(&before).into_iter().map(|(_, b)| b).collect();
    phone.receive(server_copy.id(), &news).unwrap();
    let merged = phone.order(server_copy.id()).unwrap();
    assert_eq!(merged.grade().unwrap(), Grade::Critical);
    assert_eq!(merged.state().unwrap().status, Status::Accepted);
    assert_eq!(phone.list(&OrderQuery::assigned_to(wang.user, 5)).unwrap()[0].grade, Grade::Critical);

    let garbage = vec![b"not a change".to_vec()];
    assert!(phone.receive(server_copy.id(), &garbage).is_err());
    assert_eq!(phone.order(server_copy.id()).unwrap().heads(), merged.heads());
}

fn compaction_keeps_every_edit_and_the_outbox(store: impl Store) {
    let desk = Identity::fresh(Role::Dispatcher);
    let owner = Identity::fresh(Role::Owner);
    let mut phone = replica(store, desk);
    let id = phone.create(&order_in("7-0701", Grade::Minor, &owner)).unwrap();
    let first = phone.pending(1).unwrap()[0].hash;
    phone.acknowledge(&[first]).unwrap();
    for i in 0..150 {
        phone.add_note(id, &format!("第{i}次检查")).unwrap();
    }
    let order = phone.order(id).unwrap();
    assert_eq!(order.notes().len(), 150);
    assert_eq!(phone.pending_count().unwrap(), 150);
    // Once the server has them all, the next edit folds them into one snapshot.
    let all: Vec<_> = phone.pending(1_000).unwrap().iter().map(|p| p.hash).collect();
    assert_eq!(phone.acknowledge(&all).unwrap(), 150);
    phone.add_note(id, "完工前检查").unwrap();
    let chunks = phone.store().load_chunks(id).unwrap().unwrap();
    assert_eq!(chunks.len(), 2, "a snapshot and the one pending change");
    assert_eq!(phone.order(id).unwrap().notes().len(), 151);
    assert_eq!(phone.pending_count().unwrap(), 1);
}

fn the_cursor_is_kept(mut store: impl Store) {
    assert_eq!(store.cursor().unwrap(), None);
    store.set_cursor("c:42").unwrap();
    store.set_cursor("c:43").unwrap();
    assert_eq!(store.cursor().unwrap().as_deref(), Some("c:43"));
}

fn an_unknown_order_is_not_found_and_a_failed_edit_stores_nothing(store: impl Store) {
    let owner = Identity::fresh(Role::Owner);
    let mut device = replica(store, owner);
    assert!(matches!(device.order(OrderId::new()), Err(CoreError::NotFound(_))));
    let id = device.create(&order_in("7-0901", Grade::Minor, &owner)).unwrap();
    let refused = device.transition(id, Action::Complete, None);
    assert!(matches!(refused, Err(CoreError::Refused(_))));
    let too_long = device.add_note(id, &"很".repeat(5_000));
    assert!(matches!(too_long, Err(CoreError::InvalidInput(_))));
    assert_eq!(device.pending_count().unwrap(), 1);
    assert!(device.order(id).unwrap().notes().is_empty());
}
