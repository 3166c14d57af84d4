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

use axum::Json;
use axum::extract::State;
use loopwork_sync_core::Status;
use loopwork_sync_core::lifecycle::{Action, Verdict};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
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

/// A return visit customer service owes.
#[derive(Debug, Serialize)]
pub struct ReturnVisit {
    pub order_id: String,
    pub number: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub rating: Option<u8>,
    pub auto_confirmed: bool,
    pub reopen_count: u32,
    /// Why the visit is owed (`ReturnVisitReason` codes, each once, oldest first; labelled in the
    /// vocabulary's `return_visit_reasons`).
    pub reasons: Vec<&'static str>,
    /// When the visit became due (the confirmation, as its writer's clock says), and its deadline.
    pub since_ms: i64,
    pub due_ms: i64,
}

pub async fn return_visits(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<ReturnVisit>>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff see return visits",
        "只有客服及管理人员可以查看回访任务",
    )?;
    let candidates = state.db.orders_in_status(&principal, &[Status::Confirmed, Status::AutoConfirmed], 1_000).await?;
    let mut visits = Vec::new();
    for (id, doc) in candidates {
        // A damaged order is quarantined and left out of the list, not the list's end.
        let Ok(order) = state.db.load_stored(&principal.org, id, &doc).await else { continue };
        let state = order.state().map_err(|_| ApiError::internal())?;
        if !state.return_visit_required {
            continue;
        }
        let since_ms = state
            .history
            .iter()
            .rev()
            .find(|f| {
                f.verdict == Verdict::Applied
                    && matches!(f.transition.action, Action::Confirm { .. } | Action::AutoConfirm)
            })
            .map(|f| f.transition.at_ms)
            .unwrap_or(order.created_at_ms());
        visits.push(ReturnVisit {
            order_id: id.to_string(),
            number: order.display_number(),
            kind: order.kind().map(|k| k.code()).unwrap_or_default(),
            status: state.status.code(),
            rating: state.rating,
            auto_confirmed: state.auto_confirmed,
            reopen_count: state.reopen_count,
            reasons: state.return_visit_reasons.iter().map(|r| r.code()).collect(),
            since_ms,
            due_ms: since_ms + RETURN_VISIT_HOURS * 3_600_000,
        });
    }
    visits.sort_by_key(|v| v.due_ms);
    Ok(Json(visits))
}

/// How long an order waits for its owner (`GET`/`PUT /api/v1/settings/closed-loop`).
#[derive(Debug, Serialize, Deserialize)]
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
