//! Where "now" comes from. Injected, so that tests and the server can fix it; device time is a
//! claim, never an ordering (see `lifecycle`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The device's own wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn at(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.0.fetch_add(minutes * 60_000, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// When the server believes a device's clock: from the device's last sync (or its registration,
/// before it ever synced) to the server's receipt of the push. A time a device claims for a
/// transition outside this window is moved to the window's nearer edge for every deadline the
/// server enforces, and recorded as clamped (see docs/deadlines.md): an offline phone's hours
/// are its own, but it cannot claim a time before it last saw the server or after the server
/// heard from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustWindow {
    from_ms: i64,
    to_ms: i64,
}

impl TrustWindow {
    /// The window from the device's last contact to the push's receipt; a last contact after the
    /// receipt (a server clock set back) leaves only the receipt itself.
    pub fn new(last_contact_ms: i64, received_ms: i64) -> Self {
        Self { from_ms: last_contact_ms.min(received_ms), to_ms: received_ms }
    }

    /// The time the server accepts for a claimed one.
    pub fn accept(&self, claimed_ms: i64) -> i64 {
        claimed_ms.clamp(self.from_ms, self.to_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::TrustWindow;

    #[test]
    fn a_claim_inside_the_window_stands_and_one_outside_moves_to_its_nearer_edge() {
        let window = TrustWindow::new(1_000, 5_000);
        assert_eq!(window.accept(3_000), 3_000);
        assert_eq!(window.accept(1_000), 1_000);
        assert_eq!(window.accept(5_000), 5_000);
        // Before the device last saw the server, and in the future.
        assert_eq!(window.accept(10), 1_000);
        assert_eq!(window.accept(9_999), 5_000);
    }

    #[test]
    fn a_last_contact_after_the_receipt_leaves_only_the_receipt() {
        let window = TrustWindow::new(8_000, 5_000);
        assert_eq!(window.accept(3_000), 5_000);
        assert_eq!(window.accept(9_000), 5_000);
    }
}
