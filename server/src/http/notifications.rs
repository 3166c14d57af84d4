//! The notification feed and an order's SLA record (docs/deadlines.md):
//!
//! - `GET /api/v1/notifications`: the signed-in user's feed (newest 200, each naming its order:
//!   number, what, where, who works it), `X-Unread-Count` the unread in all; `POST …/{id}/read`,
//!   `POST /api/v1/notifications/read-all`.
//! - `GET /api/v1/orders/{id}/sla-events`: what fired on an order (office staff).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::OrderId;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::store::{NotificationRecord, SlaEventRecord};

pub async fn notifications(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<(axum::http::HeaderMap, Json<Vec<NotificationRecord>>), ApiError> {
    let (items, unread) = tokio::try_join!(state.db.notifications(&principal, 200), state.db.unread_count(&principal))?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-unread-count", axum::http::HeaderValue::from(unread));
    Ok((headers, Json(items)))
}

/// `POST /api/v1/notifications/read-all`: every unread notification of the user marked read.
pub async fn mark_all_read(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.db.mark_all_read(&principal, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn mark_read(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.db.mark_read(&principal, &id, state.clock.now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("notification"))
    }
}

pub async fn sla_events(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<SlaEventRecord>>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff read the SLA record",
        "只有客服及管理人员可以查看时限记录",
    )?;
    let order: OrderId = id.parse().map_err(|_| ApiError::not_found("order"))?;
    crate::auth::require_served(&state, &principal, order).await?;
    Ok(Json(state.db.sla_events(&principal.org, order).await?))
}
