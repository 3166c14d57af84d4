//! `GET`/`PUT /api/v1/settings/{name}`: every organization setting through the same two
//! handlers (`crate::settings`).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use loopwork_sync_core::sla::BookJson;

use crate::AppState;
use crate::auth::{Authenticated, require_admin};
use crate::closed_loop::ClosedLoopSettings;
use crate::error::ApiError;
use crate::escalation::EscalationChain;
use crate::http::extract::Body;
use crate::service_desk::ServiceDesk;
use crate::settings::{self, Readers, Setting, may_read};
use crate::store::ClosingAuthorityCodes;
use crate::webhooks::Destinations;

/// The settings' routes, one per setting.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/settings/closing-authority",
            get(read::<ClosingAuthorityCodes>).put(write::<ClosingAuthorityCodes>),
        )
        .route("/api/v1/settings/sla", get(read::<BookJson>).put(write::<BookJson>))
        .route("/api/v1/settings/closed-loop", get(read::<ClosedLoopSettings>).put(write::<ClosedLoopSettings>))
        .route("/api/v1/settings/escalation", get(read::<EscalationChain>).put(write::<EscalationChain>))
        .route("/api/v1/settings/webhook-destinations", get(read::<Destinations>).put(write::<Destinations>))
        .route("/api/v1/settings/service-desk", get(read::<ServiceDesk>).put(write::<ServiceDesk>))
        .route(
            "/api/v1/settings/surge-rules",
            get(read::<loopwork_sync_core::surge::SurgeRules>).put(write::<loopwork_sync_core::surge::SurgeRules>),
        )
        .route(
            "/api/v1/settings/service-standard",
            get(read::<loopwork_sync_core::deviation::Standard>).put(write::<loopwork_sync_core::deviation::Standard>),
        )
        .route(
            "/api/v1/settings/signature-rules",
            get(read::<loopwork_sync_core::signature::SignatureRules>)
                .put(write::<loopwork_sync_core::signature::SignatureRules>),
        )
        .route(
            "/api/v1/settings/failure-rules",
            get(read::<loopwork_sync_core::failures::FailureSettings>)
                .put(write::<loopwork_sync_core::failures::FailureSettings>),
        )
        .route(
            "/api/v1/settings/attachment-limits",
            get(read::<loopwork_sync_core::upload::AttachmentLimits>)
                .put(write::<loopwork_sync_core::upload::AttachmentLimits>),
        )
        .route(
            "/api/v1/settings/reply-templates",
            get(read::<crate::triage::ReplyTemplates>).put(write::<crate::triage::ReplyTemplates>),
        )
}

/// The value in force: the organization's own, else the seeded one.
async fn read<S: Setting>(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<S>, ApiError> {
    if !may_read(S::READERS, principal.role) {
        return Err(match S::READERS {
            Readers::Admins => ApiError::forbidden(S::WRITE_REFUSED.0, S::WRITE_REFUSED.1),
            _ => ApiError::forbidden("only office staff read the settings", "只有客服及管理人员可以查看设置"),
        });
    }
    Ok(Json(settings::read::<S>(&*state.db, &principal.org).await?))
}

/// Replaces the value (administrators), after its check: 204.
async fn write<S: Setting>(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(value): Body<S>,
) -> Result<StatusCode, ApiError> {
    require_admin(&principal, S::WRITE_REFUSED.0, S::WRITE_REFUSED.1)?;
    settings::write(&*state.db, &principal.org, value).await?;
    // The surge baseline follows the SLA book's calendar: learned again.
    if S::NAME == BookJson::NAME {
        state.surges.forget(&principal.org);
    }
    Ok(StatusCode::NO_CONTENT)
}
