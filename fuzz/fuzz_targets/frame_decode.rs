//! Sync frames from anyone: every decoder of sync protocol v1 (request, response, error) on
//! arbitrary bytes, with the server's limits and a shared decompression budget. Nothing may
//! panic, hang or allocate past the limits; what decodes must encode and decode to itself.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use loopwork_sync_core::protocol::{DecodeBudget, ErrorFrame, Limits, SyncRequest, SyncResponse};

/// The server's shared budget, as one decode sees it (256 MiB).
struct Budget(Cell<usize>);

impl DecodeBudget for Budget {
    fn reserve(&self, bytes: usize) -> bool {
        let ok = self.0.get() >= bytes;
        if ok {
            self.0.set(self.0.get() - bytes);
        }
        ok
    }
    fn release(&self, bytes: usize) {
        self.0.set(self.0.get() + bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    // The server's limits (server/src/lib.rs).
    let limits = Limits { max_payload_bytes: 64 << 20, max_entries: 20_000, max_item_bytes: 2 << 20 };
    let budget = Budget(Cell::new(256 << 20));
    if let Ok(request) = SyncRequest::decode_within(data, &limits, &budget) {
        assert_eq!(SyncRequest::decode(&request.encode(), &limits).as_ref(), Ok(&request));
    }
    if let Ok(response) = SyncResponse::decode(data, &limits) {
        assert_eq!(SyncResponse::decode(&response.encode(), &limits).as_ref(), Ok(&response));
    }
    if let Ok(error) = ErrorFrame::decode(data) {
        assert_eq!(ErrorFrame::decode(&error.encode()).as_ref(), Ok(&error));
    }
    assert_eq!(budget.0.get(), 256 << 20, "a decode gives back all it took");
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
