//! An old device store upgraded by this build equals a store this build made fresh.

use loopwork_sync_core::store::{OrderQuery, STORE_SCHEMA_VERSION, SqliteStore, Store, StoredChange};
use loopwork_sync_core::{
    Action, Category, Channel, CoreError, Grade, Identity, IncidentRef, Kind, Location, NewOrder, OrderSummary, Role,
    WorkOrder,
};
use rusqlite::params;

const T0: i64 = 1_790_000_000_000;

fn orders() -> Vec<WorkOrder> {
    let dispatcher = Identity::fresh(Role::Dispatcher);
    let wang = Identity::fresh(Role::Technician);
    (0..20)
        .map(|i| {
            let owner = Identity::fresh(Role::Owner);
            let new = NewOrder {
                kind: if i % 3 == 0 { Kind::Complaint } else { Kind::Repair },
                category: Category::BUILT_IN[i % Category::BUILT_IN.len()].clone(),
                grade: Grade::ALL[i % Grade::ALL.len()],
                channel: Channel::Hotline,
                location: Location::unit("hy-garden", &format!("{}", i % 4), &format!("{}-{:02}01", i % 4, i)),
                description: format!("第{i}号问题"),
                reporter: owner.user,
                occurred_at_ms: None,
            };
            let mut order = WorkOrder::create(&new, &dispatcher, T0 + i as i64).unwrap();
            if i % 2 == 0 {
                order.transition(&dispatcher, Action::Assign(wang.user), None, T0 + 1_000).unwrap();
            }
            // Some in an incident: a version-5 build stored the server's change without indexing it.
            if i % 5 == 0 {
                let incident = IncidentRef {
                    number: i as i64 + 1,
                    place: "0栋 0单元01立管".into(),
                    category: "water_electric".into(),
                };
                order.set_incident(&incident, T0 + 2_000).unwrap();
            }
            order
        })
        .collect()
}

fn stored_changes(order: &WorkOrder, index: usize) -> Vec<StoredChange> {
    order
        .changes_since(&[])
        .into_iter()
        .map(|(hash, bytes)| StoredChange { hash, bytes, pending: index % 2 == 1 })
        .collect()
}

#[test]
fn a_version_1_store_upgraded_equals_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let orders = orders();

    // What a version-1 build wrote: documents and the outbox, no query index.
    let old_path = dir.path().join("old.db");
    {
        let old = SqliteStore::open_at_version(&old_path, 1).unwrap();
        assert_eq!(old.schema_version().unwrap(), 1);
        for (i, order) in orders.iter().enumerate() {
            for change in stored_changes(order, i) {
                old.connection()
                    .execute(
                        "INSERT INTO doc_change (order_id, hash, bytes, pending) VALUES (?1, ?2, ?3, ?4)",
                        params![order.id().to_string(), change.hash.as_ref(), change.bytes, change.pending],
                    )
                    .unwrap();
            }
        }
        old.connection().execute("INSERT INTO meta (key, value) VALUES ('cursor', 'c:7')", []).unwrap();
    }
    let upgraded = SqliteStore::open(&old_path).unwrap();
    assert_eq!(upgraded.schema_version().unwrap(), STORE_SCHEMA_VERSION);

    let mut fresh = SqliteStore::open(dir.path().join("fresh.db")).unwrap();
    for (i, order) in orders.iter().enumerate() {
        fresh.commit(order.id(), &stored_changes(order, i), &OrderSummary::of(order).unwrap()).unwrap();
    }
    fresh.set_cursor("c:7").unwrap();

    assert_eq!(upgraded.schema_sql().unwrap(), fresh.schema_sql().unwrap());
    let all = OrderQuery { limit: 1_000, ..Default::default() };
    assert_eq!(upgraded.list(&all).unwrap(), fresh.list(&all).unwrap());
    assert_eq!(upgraded.list(&all).unwrap().len(), orders.len());
    let in_incidents = OrderQuery { incident: Some(6), limit: 1_000, ..Default::default() };
    assert_eq!(upgraded.list(&in_incidents).unwrap().len(), 1, "the incident indexed on upgrade");
    assert_eq!(upgraded.pending(1_000).unwrap(), fresh.pending(1_000).unwrap());
    assert_eq!(upgraded.cursor().unwrap(), fresh.cursor().unwrap());
    for order in &orders {
        assert_eq!(upgraded.load_chunks(order.id()).unwrap(), fresh.load_chunks(order.id()).unwrap());
    }
}

#[test]
fn a_store_from_a_newer_build_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.connection().pragma_update(None, "user_version", 99).unwrap();
    }
    match SqliteStore::open(&path) {
        Err(CoreError::StoreTooNew { found: 99, known }) => assert_eq!(known, STORE_SCHEMA_VERSION),
        other => panic!("expected StoreTooNew, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_store_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, b"\xff\xd8\xff\xe0 this is not a database at all, just bytes").unwrap();
    assert!(matches!(SqliteStore::open(&path), Err(CoreError::Storage(_))));
}
