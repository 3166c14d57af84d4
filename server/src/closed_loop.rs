//! Closed loop (闭环): an order the owner never answers is confirmed for them after their
//! organization's wait (default 3 days, counted from when the server received the completion),
//! marked as auto-confirmed; a rating of 3 or less, a rejection, or an auto-confirmed complaint
//! needs a return visit (回访) by customer service, listed with its own deadline, before the
//! order may be closed.
//!
//! - A scanner ([`spawn`]) runs [`tick`] periodically; it finds due orders by an index
//!   (`orders.awaiting_since`), so its work is proportional to what is due. The auto-confirmation
//!   goes through the writer like any push and is written only if it still applies when merged,
//!   so with several server processes, or a device's confirmation arriving at the same moment,
//!   each order is confirmed once.
//! - `GET /api/v1/return-visits`: the return visits customer service owes (office staff).
//! - `GET`/`PUT /api/v1/settings/closed-loop`: `{"auto_confirm_days": 3}` (PUT by admins, 1–30).

use loopwork_sync_core::Status;
use loopwork_sync_core::lifecycle::Action;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;
use crate::settings::{Readers, Setting};
use crate::store::{CLOSED_LOOP, DEFAULT_AUTO_CONFIRM_DAYS};

/// How long customer service has for a return visit once it is due.
pub const RETURN_VISIT_HOURS: i64 = 24;
/// At most this many orders are auto-confirmed per tick; the rest wait for the next one.
const PER_TICK: i64 = 500;

/// One pass: confirms every order whose owner has not answered in time. Returns how many.
pub async fn tick(state: &AppState, now_ms: i64) -> Result<usize, ApiError> {
    let mut confirmed = 0;
    for (org, order) in state.db.awaiting_due(now_ms, PER_TICK).await? {
        if state.db.server_action(&org, order, Action::AutoConfirm, Status::AutoConfirmed, now_ms).await? {
            confirmed += 1;
            state.metrics.auto_confirmed.inc();
        }
    }
    Ok(confirmed)
}

/// How long an order waits for its owner (`GET`/`PUT /api/v1/settings/closed-loop`).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoopSettings {
    /// Days from the completion's receipt to the server's confirmation (1–30).
    pub auto_confirm_days: i64,
}

impl Setting for ClosedLoopSettings {
    const NAME: &'static str = CLOSED_LOOP;
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the closed-loop settings", "只有管理员可以修改闭环设置");

    fn seeded() -> Self {
        ClosedLoopSettings { auto_confirm_days: DEFAULT_AUTO_CONFIRM_DAYS }
    }

    fn check(self) -> Result<Self, ApiError> {
        if !(1..=30).contains(&self.auto_confirm_days) {
            return Err(ApiError::invalid(
                "invalid_setting",
                "auto_confirm_days is 1 to 30",
                "自动确认天数须为1到30天",
            ));
        }
        Ok(self)
    }
}
