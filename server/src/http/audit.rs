//! `GET /api/v1/orders/{id}/audit`: an order's audit trail (office staff; docs/permissions.md).

use axum::Json;
use axum::extract::{Path, State};
use loopwork_sync_core::OrderId;
use serde::Serialize;

use crate::AppState;
use crate::auth::{self, Authenticated};
use crate::error::ApiError;

/// One change of an order's audit trail (JSON).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// The change's hash (hex): it covers the change's content and the hashes it was made on.
    pub hash: String,
    pub deps: Vec<String>,
    pub device_id: Option<String>,
    /// The user and role the device belongs to; none for the server's own changes.
    pub user_id: Option<String>,
    pub role: Option<String>,
    /// The device's clock when it made the change (a claim).
    pub device_time_ms: i64,
    /// When the server received it.
    pub received_at_ms: Option<i64>,
    /// What the change did (`create`, `note`, `grade`, `accept`, `compensate`, ...).
    pub what: String,
    /// `accepted`, or `compensated` with the reason.
    pub verdict: &'static str,
    pub reason_code: Option<&'static str>,
    pub reason_zh: Option<&'static str>,
    pub reason_en: Option<&'static str>,
}

/// `GET /api/v1/orders/{id}/audit`: every change of an order, in causal order, with who made
/// it, from which device, the device's time and the server's receipt time, and whether it was
/// accepted or compensated. Office staff only.
pub async fn order_audit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff read the audit trail",
        "只有客服及管理人员可以查看审计记录",
    )?;
    let order: OrderId = id.parse().map_err(|_| ApiError::not_found("order"))?;
    auth::require_served(&state, &principal, order).await?;
    let sources = state.db.audit_sources(&principal.org, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    let doc = state.db.load_stored(&principal.org, order, &sources.doc).await?;
    let entries = loopwork_sync_core::timeline::change_log(&doc)
        .into_iter()
        .map(|c| {
            let received = sources.received.get(c.hash.0.as_slice());
            AuditEntry {
                hash: c.hash.to_string(),
                deps: c.deps.iter().map(ToString::to_string).collect(),
                device_id: c.device.map(|d| d.to_string()),
                user_id: received.and_then(|r| r.user.clone()),
                role: received.and_then(|r| r.role.clone()),
                device_time_ms: c.device_time_ms,
                received_at_ms: received.map(|r| r.at_ms),
                what: c.what,
                verdict: if c.rejected.is_some() { "compensated" } else { "accepted" },
                reason_code: c.rejected.map(|r| r.code()),
                reason_zh: c.rejected.map(|r| r.message_zh()),
                reason_en: c.rejected.map(|r| r.message_en()),
            }
        })
        .collect();
    Ok(Json(entries))
}
