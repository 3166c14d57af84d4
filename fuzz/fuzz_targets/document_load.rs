//! A whole document from anywhere (a device's store, a server's response): loaded and read as
//! every screen reads it. Nothing may panic; a malformed document is a `DocumentError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loopwork_sync_core::{OrderSummary, WorkOrder};

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    if let Ok(order) = WorkOrder::load(data) {
        let _ = OrderSummary::of(&order);
        let _ = order.state();
        let _ = order.rejections();
        let _ = order.notes();
        let _ = loopwork_sync_core::timeline::change_log(&order);
        let _ = loopwork_sync_core::timeline::timeline(&order);
        let _ = order.save();
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
