//! Each organization's SLA policies and calendars (`sync_core::sla::SlaBook`), editable by its
//! administrators as JSON; the seeded defaults until an organization sets its own.
//!
//! - `GET /api/v1/settings/sla` (anyone of the organization: phones compute countdowns with
//!   it): the organization's book.
//! - `PUT /api/v1/settings/sla` (administrators): replaces it, after validation (a default policy
//!   last, known calendars and time zones, positive targets, response and arrival no longer than
//!   resolution, working hours that open before they close).
//!
//! ```json
//! {"calendars": {"24x7": {"kind": "24x7"},
//!                "office": {"kind": "working_hours", "zone": "Asia/Shanghai", "open": "09:00",
//!                           "close": "18:00", "weekdays": [1, 2, 3, 4, 5],
//!                           "holidays": ["2026-10-01"], "working_days": ["2026-10-10"]}},
//!  "policies": [{"name": "default", "kinds": [], "categories": [], "grades": [],
//!                "response": {"minutes": 30, "calendar": "24x7"}, "arrival": null,
//!                "resolution": {"minutes": 2880, "calendar": "24x7"}}]}
//! ```

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopwork_sync_core::sla::{BookJson, SlaBook, book_from_json, book_to_json};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

/// The organization's book: its own if it set one, else the seeded defaults.
pub async fn book_of(state: &AppState, org: &str) -> Result<SlaBook, ApiError> {
    match state.db.sla_book(org).await? {
        Some(text) => {
            let json: BookJson = serde_json::from_str(&text).map_err(|_| ApiError::internal())?;
            book_from_json(&json).map_err(|_| ApiError::internal())
        }
        None => Ok(SlaBook::defaults()),
    }
}

/// Anyone of the organization reads it: phones compute their countdowns with it.
pub async fn get_book(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<BookJson>, ApiError> {
    Ok(Json(book_to_json(&book_of(&state, &principal.org).await?)))
}

pub async fn put_book(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    crate::http::Body(body): crate::http::Body<BookJson>,
) -> Result<StatusCode, ApiError> {
    crate::auth::require_admin(
        &principal,
        "only an administrator changes the SLA policies",
        "只有管理员可以修改时限策略",
    )?;
    let book = book_from_json(&body).map_err(|e| ApiError::invalid("invalid_sla", e.to_string(), "时限策略不合规"))?;
    let text = serde_json::to_string(&book_to_json(&book)).map_err(|_| ApiError::internal())?;
    state.db.set_sla_book(&principal.org, &text).await?;
    Ok(StatusCode::NO_CONTENT)
}
