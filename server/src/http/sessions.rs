//! `POST /api/v1/login` (a bearer token for a new device) and `POST /api/v1/devices/{id}/revoke`
//! (a lost phone stops syncing).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::DeviceId;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{self, Authenticated};
use crate::error::ApiError;
use crate::http::extract::Body;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
    #[serde(default)]
    pub device_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginResponse {
    pub token: String,
    pub user_id: String,
    pub role: String,
    pub org_id: String,
    pub device_id: String,
}

pub async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    Body(request): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let address = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let now = state.clock.now_ms();
    if let Some(wait) = state.logins.refused_for(&request.login, address, now) {
        state.metrics.errors.with_label_values(&["too_many_attempts"]).inc();
        return Err(ApiError::throttled(wait));
    }
    if request.login.chars().count() > 100 || request.password.chars().count() > 200 {
        return Err(ApiError::bad_credentials());
    }
    if request.device_name.as_ref().is_some_and(|n| n.chars().count() > MAX_DEVICE_NAME_CHARS) {
        return Err(ApiError::invalid(
            "invalid_input",
            format!("device_name is longer than {MAX_DEVICE_NAME_CHARS} characters"),
            "设备名称过长",
        ));
    }
    let user = state.db.user_by_login(&request.login).await?;
    let password = request.password;
    // An unknown login's password is checked against a decoy hash: both answers take as long.
    let hash = user.as_ref().map_or_else(|| auth::decoy_hash().to_owned(), |u| u.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash)).await.unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        state.logins.failed(&request.login, address, now);
        state.metrics.errors.with_label_values(&["bad_credentials"]).inc();
        return Err(ApiError::bad_credentials());
    };
    state.logins.succeeded(&request.login);
    let token = auth::new_token();
    let name: String = request.device_name.unwrap_or_else(|| "device".into());
    let device = state.db.register_device(&user, &name, &auth::token_hash(&token), state.clock.now_ms()).await?;
    Ok(Json(LoginResponse {
        token,
        user_id: user.id.to_string(),
        role: user.role.code().into(),
        org_id: user.org,
        device_id: device.to_string(),
    }))
}

/// The longest device name a login may give.
pub const MAX_DEVICE_NAME_CHARS: usize = 100;

pub async fn revoke_device(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let device: DeviceId = id.parse().map_err(|_| ApiError::not_found("device"))?;
    let allowed = device == principal.device || principal.role.is_supervisor_or_above();
    if !allowed {
        return Err(ApiError::forbidden("only an administrator revokes another device", "只有管理员可以吊销其他设备"));
    }
    if state.db.revoke_device(&principal.org, device, state.clock.now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device"))
    }
}
