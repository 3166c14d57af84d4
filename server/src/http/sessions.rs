//! `POST /api/v1/login` (a bearer token for a new device), `POST /api/v1/login/code` and
//! `POST /api/v1/login/code/verify` (owners signing in with a code sent by text message), and
//! `POST /api/v1/devices/{id}/revoke` (a lost phone stops syncing).

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
    headers: axum::http::HeaderMap,
    Body(request): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let address = client_address(&state, &extensions, &headers);
    let now = state.clock.now_ms();
    if let Some(wait) = state.logins.refused_for(&request.login, address, now) {
        state.metrics.errors.with_label_values(&["too_many_attempts"]).inc();
        return Err(ApiError::throttled(wait));
    }
    if request.login.chars().count() > 100 || request.password.chars().count() > 200 {
        return Err(ApiError::bad_credentials());
    }
    check_device_name(request.device_name.as_deref())?;
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
    let name = request.device_name.unwrap_or_else(|| "device".into());
    Ok(Json(new_device(&state, user, &name, state.clock.now_ms()).await?))
}

/// A signed-in user's new device: its token (shown once; its hash kept) and who it is.
async fn new_device(
    state: &AppState,
    user: crate::store::UserRecord,
    name: &str,
    now_ms: i64,
) -> Result<LoginResponse, ApiError> {
    let token = auth::new_token();
    let device = state.db.register_device(&user, name, &auth::token_hash(&token), now_ms).await?;
    Ok(LoginResponse {
        token,
        user_id: user.id.to_string(),
        role: user.role.code().into(),
        org_id: user.org,
        device_id: device.to_string(),
    })
}

/// A device name within [`MAX_DEVICE_NAME_CHARS`] (400 `invalid_input` otherwise).
fn check_device_name(name: Option<&str>) -> Result<(), ApiError> {
    if name.is_some_and(|n| n.chars().count() > MAX_DEVICE_NAME_CHARS) {
        return Err(ApiError::invalid(
            "invalid_input",
            format!("device_name is longer than {MAX_DEVICE_NAME_CHARS} characters"),
            "设备名称过长",
        ));
    }
    Ok(())
}

/// The client's address for the sign-in limits (`auth::client_address`).
fn client_address(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Option<std::net::IpAddr> {
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    auth::client_address(peer, &forwarded, &state.trusted_proxies)
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

// ----- signing in with a code sent by text message (owners) -----

/// `POST /api/v1/login/code`: a number asking for a sign-in code.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// In any usual writing (`138 0013 8005`, `+86…`).
    pub phone: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CodeRequested {
    /// How long a code lives.
    pub expires_in_s: i64,
    /// When the number may ask again.
    pub retry_after_s: i64,
}

/// `POST /api/v1/login/code/verify`: the number and the code it received.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeSignIn {
    pub phone: String,
    pub code: String,
    #[serde(default)]
    pub device_name: Option<String>,
}

fn phone_of(raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > 40 {
        return Err(ApiError::invalid("invalid_phone", "not a phone number", "手机号码无效"));
    }
    loopwork_sync_core::estate::normalize_phone(raw)
        .map_err(|fault| ApiError::invalid("invalid_phone", fault.to_string(), fault.label_zh()))
}

/// The HMAC of a code for a number, under the database's secret: what `login_codes` keeps.
fn code_hash(state: &AppState, phone: &str, code: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(state.db.receipt_secret().as_bytes()).expect("any key length");
    mac.update(format!("login-code:{phone}:{code}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whom a number signs in: one active owner account with it; else, when no owner account has
/// it, the register's residents with it in one organization (an account is made for them).
enum Holder {
    Account(crate::store::UserRecord),
    Residents(Vec<crate::store::PhoneResident>),
    Nobody,
}

async fn holder(state: &AppState, phone: &str) -> Result<Holder, ApiError> {
    let accounts = state.db.accounts_by_phone(phone).await?;
    // A staff member's number signs nobody in by code (staff use passwords); nor does a
    // disabled owner's, or a number on several owners' accounts.
    if accounts.iter().any(|a| a.user.role != loopwork_sync_core::Role::Owner) {
        return Ok(Holder::Nobody);
    }
    if !accounts.is_empty() {
        return Ok(match accounts.as_slice() {
            [one] if !one.disabled => Holder::Account(one.user.clone()),
            _ => Holder::Nobody,
        });
    }
    let residents = state.db.residents_for_sign_in(phone).await?;
    let one_org = residents.first().is_some_and(|first| residents.iter().all(|r| r.org == first.org));
    Ok(if one_org { Holder::Residents(residents) } else { Holder::Nobody })
}

/// `GET /api/v1/login/methods`: how one may sign in here (the owner's page offers the code
/// first when texts can be sent).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LoginMethods {
    pub password: bool,
    /// Whether sign-in codes are sent (`serve --sms` is not `off`).
    pub code: bool,
}

pub async fn methods(State(state): State<AppState>) -> Json<LoginMethods> {
    Json(LoginMethods { password: true, code: !state.sms.is_off() })
}

pub async fn request_code(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: axum::http::HeaderMap,
    Body(request): Body<CodeRequest>,
) -> Result<(StatusCode, Json<CodeRequested>), ApiError> {
    let address = client_address(&state, &extensions, &headers);
    let now = state.clock.now_ms();
    let phone = phone_of(&request.phone)?;
    if state.sms.is_off() {
        return Err(sms_unavailable());
    }
    if let Some(wait) = state.logins.code_requested(address, now) {
        return Err(ApiError::throttled(wait));
    }
    // Every number is limited alike and answered alike, whether or not it signs anyone in: the
    // answer does not tell which numbers are known. Only a known number gets a text.
    let known = !matches!(holder(&state, &phone).await?, Holder::Nobody);
    let code = if known { new_code() } else { auth::new_token() };
    if let Err(wait_ms) = state.db.issue_login_code(&phone, &code_hash(&state, &phone, &code), now).await? {
        return Err(ApiError::throttled(((wait_ms + 999) / 1000).max(1) as u64));
    }
    let expires_in_s = crate::store::LOGIN_CODE_TTL_MS / 1000;
    // Sent beside the answer: its time, and a gateway's refusal, must not tell known numbers
    // from unknown ones. A failure is logged for the operator.
    if known {
        let sms = state.sms.clone();
        tokio::spawn(async move {
            if let Err(why) = sms.send(&phone, &code, expires_in_s, now).await {
                tracing::error!(error = why, "a sign-in code was not sent");
            }
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeRequested { expires_in_s, retry_after_s: crate::store::LOGIN_CODE_GAP_MS / 1000 }),
    ))
}

fn sms_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "sms_unavailable",
        "sign-in codes cannot be sent now; sign in with a password or call the service desk",
        "暂时无法发送验证码,请使用密码登录或致电物业",
    )
}

/// Six digits from the operating system's random source (a v4 UUID's 122 random bits).
fn new_code() -> String {
    format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000)
}

pub async fn verify_code(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: axum::http::HeaderMap,
    Body(request): Body<CodeSignIn>,
) -> Result<Json<LoginResponse>, ApiError> {
    let address = client_address(&state, &extensions, &headers);
    let now = state.clock.now_ms();
    let phone = phone_of(&request.phone)?;
    let key = format!("tel:{phone}");
    if let Some(wait) = state.logins.refused_for(&key, address, now) {
        return Err(ApiError::throttled(wait));
    }
    check_device_name(request.device_name.as_deref())?;
    let code = request.code.trim();
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let verdict = if well_formed {
        state.db.verify_login_code(&phone, &code_hash(&state, &phone, code), now).await?
    } else {
        crate::store::CodeVerdict::Refused
    };
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "the code is wrong, used or expired: ask for a new one",
            "验证码错误或已失效,请重新获取",
        )
    };
    if verdict != crate::store::CodeVerdict::Accepted {
        state.logins.failed(&key, address, now);
        state.metrics.errors.with_label_values(&["invalid_code"]).inc();
        return Err(refused());
    }
    let user = match holder(&state, &phone).await? {
        Holder::Account(user) => user,
        Holder::Residents(residents) => owner_from_register(&state, &phone, &residents, now).await?,
        Holder::Nobody => return Err(refused()),
    };
    state.logins.succeeded(&key);
    let name = request.device_name.unwrap_or_else(|| "phone".into());
    Ok(Json(new_device(&state, user, &name, now).await?))
}

/// An owner's account for residents of the register signing in for the first time: named as
/// the register names them, bound to their units, with no password (codes only).
async fn owner_from_register(
    state: &AppState,
    phone: &str,
    residents: &[crate::store::PhoneResident],
    now: i64,
) -> Result<crate::store::UserRecord, ApiError> {
    let first = residents.first().ok_or_else(ApiError::internal)?;
    let user = crate::store::NewUser {
        org: first.org.clone(),
        // Not the number: logins are listed and searched on the console, numbers are masked.
        login: format!("owner-{}", uuid::Uuid::now_v7().simple()),
        // A hash no password matches: the account signs in by code until an administrator
        // sets a password.
        password_hash: auth::decoy_hash().to_owned(),
        role: loopwork_sync_core::Role::Owner,
        display_name: first.name.clone(),
        phone: Some(phone.to_owned()),
    };
    let units = residents.iter().map(|r| r.unit.clone()).collect();
    let change = crate::store::UserChange { units: Some(units), ..Default::default() };
    let id = state.db.create_account(&user, &change, now).await?;
    tracing::info!(user = %id, "owner account made from the estate register at first sign-in");
    state.db.user_by_login(&user.login).await?.filter(|u| u.id == id).ok_or_else(ApiError::internal)
}
