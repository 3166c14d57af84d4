//! An organization's SLA book as an administrator may `PUT` it: parsed, validated, and, if
//! valid, used for deadlines and checkpoints at any creation time. Nothing may panic, and no
//! deadline may come before the order's creation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loopwork_sync_core::lifecycle::{OrderFacts, fold};
use loopwork_sync_core::sla::{BookJson, book_from_json};
use loopwork_sync_core::{Category, Grade, Kind, UserId};

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    let Some((created, json)) = data.split_at_checked(8) else { return };
    let created = i64::from_le_bytes(created.try_into().expect("8 bytes")).rem_euclid(1 << 46);
    let Ok(json) = serde_json::from_slice::<BookJson>(json) else { return };
    let Ok(book) = book_from_json(&json) else { return };
    if book.validate().is_err() {
        return;
    }
    let state = fold(&OrderFacts { reporter: UserId::new(), kind: Kind::Repair, signature_required: false }, Vec::new());
    for grade in [Grade::Minor, Grade::Serious, Grade::Severe, Grade::Critical] {
        if let Some(d) = book.deadlines(Kind::Repair, &Category::Elevator, grade, &state, created) {
            assert!(d.response_due_ms >= created);
        }
        for checkpoint in book.checkpoints(Kind::Complaint, &Category::Noise, grade, &state, created) {
            assert!(checkpoint.at_ms >= created && checkpoint.due_ms >= checkpoint.at_ms);
        }
    }
});

/// libfuzzer-sys aborts on every panic, even one the code catches: sync-core turns panics of
/// Automerge's decoders into errors (`work_order::contained`), which is the behaviour under test.
/// A panic that escapes still aborts: libfuzzer-sys checks the target's result itself. With
/// `LOOPWORK_FUZZ_PANICS=1` every panic is printed (to see why a saved input fails).
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("LOOPWORK_FUZZ_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
}
