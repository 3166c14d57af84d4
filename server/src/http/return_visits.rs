//! `GET /api/v1/return-visits`: the return visits (回访) customer service owes, soonest due
//! first (office staff; docs/deadlines.md).

use axum::Json;
use axum::extract::State;
use loopwork_sync_core::Status;
use loopwork_sync_core::lifecycle::{Action, Verdict};
use serde::Serialize;

use crate::AppState;
use crate::auth::Authenticated;
use crate::closed_loop::RETURN_VISIT_HOURS;
use crate::error::ApiError;

/// A return visit customer service owes.
#[derive(Debug, Serialize, schemars::JsonSchema)]
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
