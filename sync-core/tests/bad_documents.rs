//! A corrupt, truncated or foreign document is a typed error, never a panic.

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use loopwork_sync_core::{
    Category, Channel, DocumentError, Grade, Identity, Kind, Location, NewOrder, Role, WorkOrder,
};

fn saved_order() -> Vec<u8> {
    let dispatcher = Identity::fresh(Role::Dispatcher);
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::DoorsWindows,
        grade: Grade::Minor,
        channel: Channel::WalkIn,
        location: Location::unit("hy-garden", "1", "1-101"),
        description: "窗户关不严".into(),
        reporter: Identity::fresh(Role::Owner).user,
        occurred_at_ms: None,
    };
    WorkOrder::create(&new, &dispatcher, 1_790_000_000_000).unwrap().save()
}

#[test]
fn every_truncation_of_a_saved_order_is_an_error_or_the_whole_order() {
    let bytes = saved_order();
    for len in 0..bytes.len() {
        match WorkOrder::load(&bytes[..len]) {
            Err(DocumentError::Corrupt(_) | DocumentError::Foreign(_)) => {}
            Err(other) => panic!("unexpected error kind at {len}: {other:?}"),
            Ok(order) => assert!(order.kind().is_ok(), "a partial load at {len} must still be a whole order"),
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let bytes = saved_order();
    for i in 0..bytes.len() {
        let mut broken = bytes.clone();
        broken[i] ^= 0x5a;
        let _ = WorkOrder::load(&broken);
    }
}

#[test]
fn garbage_is_corrupt() {
    assert!(matches!(WorkOrder::load(b"not an automerge document"), Err(DocumentError::Corrupt(_))));
}

#[test]
fn a_foreign_automerge_document_is_refused_by_name() {
    let mut doc = Automerge::new();
    doc.transact(|tx| tx.put(ROOT, "title", "a shopping list")).unwrap();
    assert_eq!(WorkOrder::load(&doc.save()).unwrap_err(), DocumentError::Foreign("schema"));
}

#[test]
fn a_document_from_a_newer_schema_is_refused_not_misread() {
    let mut doc = Automerge::new();
    doc.transact(|tx| tx.put(ROOT, "schema", 99)).unwrap();
    assert_eq!(WorkOrder::load(&doc.save()).unwrap_err(), DocumentError::UnsupportedSchema(99));
}

#[test]
fn a_work_order_with_an_unknown_kind_is_a_field_error() {
    let mut order = Automerge::load(&saved_order()).unwrap();
    order.transact(|tx| tx.put(ROOT, "kind", "bribe")).unwrap();
    assert!(matches!(WorkOrder::load(&order.save()), Err(DocumentError::InvalidField { field: "Kind", .. })));
}

#[test]
fn a_change_with_any_byte_flipped_is_refused() {
    let dispatcher = Identity::fresh(Role::Dispatcher);
    let mut order = WorkOrder::load(&saved_order()).unwrap().with_device(dispatcher.device);
    let before = order.heads();
    order.add_note(&dispatcher, "窗框已调整", 1_790_000_000_000).unwrap();
    let (_, change) = order.changes_since(&before).pop().unwrap();
    assert!(loopwork_sync_core::work_order::parse_change(&change).is_ok());
    for i in 0..change.len() {
        let mut flipped = change.clone();
        flipped[i] ^= 0x01;
        assert!(
            loopwork_sync_core::work_order::parse_change(&flipped).is_err(),
            "a change with byte {i} of {} flipped was accepted",
            change.len()
        );
    }
}

/// Inputs fuzzing found (fuzz/corpus keeps them too): each is refused with an error, none panics.
#[test]
fn inputs_that_once_broke_a_decoder_are_refused_without_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        assert!(loopwork_sync_core::work_order::parse_change(&bytes).is_err(), "{}", path.display());
        assert!(loopwork_sync_core::WorkOrder::load(&bytes).is_err(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 1);
}
