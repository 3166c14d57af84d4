//! `POST`/`GET /api/v1/settings/webhooks`, `DELETE …/{id}`: an organization's webhook endpoints
//! (administrators; `crate::webhooks` delivers).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::Body;
use crate::replication::Principal;
use crate::settings;
use crate::store::WebhookRecord;
use crate::webhooks::{ADMIN_ONLY, Destinations, refused_destination};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    /// Shown once: the receiver checks signatures with it.
    pub secret: String,
}

fn admin_only(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_admin(principal, ADMIN_ONLY.0, ADMIN_ONLY.1)
}

pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    admin_only(&principal)?;
    let url = body.url.trim();
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 500
        && !url.contains(char::is_whitespace);
    if !valid {
        return Err(ApiError::invalid(
            "invalid_url",
            "a webhook URL is http(s)://… and at most 500 characters",
            "回调地址须为 http(s):// 开头且不超过500字符",
        ));
    }
    let allow_private = settings::read::<Destinations>(&*state.db, &principal.org).await?.allow_private;
    if let Some(why) = refused_destination(url, allow_private).await {
        return Err(ApiError::invalid(
            "forbidden_destination",
            format!("a webhook may not post there: {why}"),
            "回调地址不允许指向本机、内网或保留地址",
        ));
    }
    let secret = hex::encode(uuid::Uuid::new_v4().as_bytes()) + &hex::encode(uuid::Uuid::new_v4().as_bytes());
    let id = state.db.create_webhook(&principal.org, url, &secret, state.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { id, url: url.to_owned(), secret })))
}

pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<WebhookRecord>>, ApiError> {
    admin_only(&principal)?;
    Ok(Json(state.db.webhooks(&principal.org).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin_only(&principal)?;
    if state.db.delete_webhook(&principal.org, &id, state.clock.now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook"))
    }
}
