//! People and their devices for the admin console (administrators only): the organization's
//! accounts listed, created and changed (name, role, phone, disabled, trades, projects, units),
//! passwords reset, devices listed (revoking one is `POST /api/v1/devices/{id}/revoke`).
//! Phones are shown masked; an administrator replaces a phone, never reads it back.
//!
//! - `GET /api/v1/users?role=&q=&disabled=&limit=&offset=`: a page; `X-Total-Count` the total.
//! - `POST /api/v1/users`: a new account (201).
//! - `GET`/`PATCH /api/v1/users/{id}`: one account; its change.
//! - `POST /api/v1/users/{id}/password`: a new password, optionally signing out every device.
//! - `GET /api/v1/users/{id}/devices`: its devices, newest first.
//!
//! An administrator cannot disable their own account or change their own role: the organization
//! keeps at least the administrator who is acting.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::Role;
use loopwork_sync_core::estate::CodePart;
use loopwork_sync_core::staff::{self, AccountFault};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{self, Authenticated};
use crate::error::ApiError;
use crate::http::extract::{Body, Params};
use crate::http::privacy::mask_phone;
use crate::replication::Principal;
use crate::store::{DeviceRecord, NewUser, UnitRef, UserChange, UserQuery, UserRecordFull};

/// The most accounts one page lists.
pub const MAX_USERS_PAGE: i64 = 200;
/// The most units one owner account is bound to.
pub const MAX_OWNER_UNITS: usize = 20;
/// The most projects one dispatcher is bound to.
pub const MAX_DISPATCHER_PROJECTS: usize = 100;

fn admin_only(principal: &Principal) -> Result<(), ApiError> {
    auth::require_admin(principal, "only administrators manage accounts", "只有管理员可以管理账号")
}

fn fault(fault: AccountFault) -> ApiError {
    ApiError::invalid("invalid_input", format!("{}: {fault}", fault.field()), fault.label_zh())
}

fn role_of(code: &str) -> Result<Role, ApiError> {
    match Role::from_code(code) {
        Ok(role) if role != Role::System => Ok(role),
        _ => Err(ApiError::invalid(
            "invalid_role",
            format!(
                "`{}` is not a role (owner, technician, dispatcher, supervisor, manager, admin)",
                code.chars().take(32).collect::<String>()
            ),
            "角色须为 业主、维修工、客服、主管、经理 或 管理员",
        )),
    }
}

/// An account as the console shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct User {
    pub id: String,
    pub login: String,
    pub name: String,
    pub role: String,
    /// Masked (`138****8000`).
    pub phone: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub trades: Vec<String>,
    pub projects: Vec<String>,
    pub units: Vec<UnitRef>,
    pub active_devices: i64,
    pub last_seen_at: Option<i64>,
    pub open_orders: i64,
}

impl From<UserRecordFull> for User {
    fn from(u: UserRecordFull) -> Self {
        User {
            phone: u.phone.as_deref().map(mask_phone),
            id: u.id,
            login: u.login,
            name: u.name,
            role: u.role,
            created_at: u.created_at,
            disabled_at: u.disabled_at,
            trades: u.trades,
            projects: u.projects,
            units: u.units,
            active_devices: u.active_devices,
            last_seen_at: u.last_seen_at,
            open_orders: u.open_orders,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    pub role: Option<String>,
    /// Part of the login or the name.
    pub q: Option<String>,
    /// `true`: disabled accounts only; `false`: active only; absent: both.
    pub disabled: Option<bool>,
    /// 1 to 200; 50 by default.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<UserListQuery>,
) -> Result<(axum::http::HeaderMap, Json<Vec<User>>), ApiError> {
    admin_only(&principal)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_USERS_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_input",
            format!("limit is 1 to {MAX_USERS_PAGE}"),
            format!("每页 1 到 {MAX_USERS_PAGE} 条"),
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::invalid("invalid_input", "offset is 0 to 1000000", "offset 须为 0 到 1000000"));
    }
    let q = query.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > 64) {
        return Err(ApiError::invalid("invalid_input", "q is at most 64 characters", "搜索词最多 64 个字符"));
    }
    let role = query.role.as_deref().filter(|r| !r.is_empty()).map(role_of).transpose()?;
    let filter = UserQuery { role, q, disabled: query.disabled, limit, offset };
    let (rows, total) = state.db.users(&principal.org, &filter).await?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-total-count", axum::http::HeaderValue::from(total));
    Ok((headers, Json(rows.into_iter().map(User::from).collect())))
}

pub async fn get_one(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    admin_only(&principal)?;
    let user = state.db.user(&principal.org, &id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user.into()))
}

/// A new account.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub login: String,
    /// At least 10 characters of at least two kinds (letters, digits, others), not containing
    /// the login.
    pub password: String,
    /// `owner`, `technician`, `dispatcher`, `supervisor`, `manager` or `admin`.
    pub role: String,
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    /// A technician's trades (category codes).
    #[serde(default)]
    pub trades: Vec<String>,
    /// The projects a dispatcher serves (none: every project).
    #[serde(default)]
    pub projects: Vec<String>,
    /// An owner's units; each must be in the estate register.
    #[serde(default)]
    pub units: Vec<UnitRef>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedUser {
    pub id: String,
}

pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(new): Body<NewAccount>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    admin_only(&principal)?;
    let login = staff::check_login(&new.login).map_err(fault)?;
    let role = role_of(&new.role)?;
    let mut change = checked_change(
        ChangeRequest {
            name: Some(new.name),
            role: None,
            phone: new.phone,
            disabled: None,
            trades: Some(new.trades),
            projects: Some(new.projects),
            units: Some(new.units),
        },
        Some(role),
    )?;
    auth::check_password_strength(&login, &new.password)
        .map_err(|(en, zh)| ApiError::invalid("weak_password", en, zh))?;
    let password = new.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|_| ApiError::internal())??;
    let now = state.clock.now_ms();
    let user = NewUser {
        org: principal.org.clone(),
        login,
        password_hash: hash,
        role,
        display_name: change.name.take().unwrap_or_default(),
        phone: change.phone.take().flatten(),
    };
    // The account and its trades, projects and units are written together, or not at all.
    let id = state.db.create_account(&user, &change, now).await?;
    tracing::info!(admin = %principal.user, user = %id, role = role.code(), "account created");
    Ok((StatusCode::CREATED, Json(CreatedUser { id: id.to_string() })))
}

/// What changes of an account; absent fields stay.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    pub name: Option<String>,
    pub role: Option<String>,
    /// An empty string removes the phone.
    pub phone: Option<String>,
    /// `true` disables the account (it signs in no more, its devices stop syncing); `false`
    /// enables it again.
    pub disabled: Option<bool>,
    pub trades: Option<Vec<String>>,
    pub projects: Option<Vec<String>>,
    pub units: Option<Vec<UnitRef>>,
}

/// The request's fields checked by the account rules (sync-core `staff`); `role` is the role the
/// account will have when the request names none.
fn checked_change(request: ChangeRequest, role: Option<Role>) -> Result<UserChange, ApiError> {
    let name = request.name.as_deref().map(staff::check_display_name).transpose().map_err(fault)?;
    let phone = request.phone.as_deref().map(staff::check_account_phone).transpose().map_err(fault)?;
    let role = request.role.as_deref().map(role_of).transpose()?.or(role);
    let trades = request
        .trades
        .as_deref()
        .map(|t| staff::parse_trades(t).map(|t| t.iter().map(|c| c.code()).collect::<Vec<_>>()))
        .transpose()
        .map_err(fault)?;
    if request.projects.as_ref().is_some_and(|p| p.len() > MAX_DISPATCHER_PROJECTS) {
        return Err(ApiError::invalid(
            "invalid_input",
            format!("at most {MAX_DISPATCHER_PROJECTS} projects"),
            format!("最多绑定 {MAX_DISPATCHER_PROJECTS} 个项目"),
        ));
    }
    if request.units.as_ref().is_some_and(|u| u.len() > MAX_OWNER_UNITS) {
        return Err(ApiError::invalid(
            "invalid_input",
            format!("at most {MAX_OWNER_UNITS} units"),
            format!("最多绑定 {MAX_OWNER_UNITS} 套房屋"),
        ));
    }
    let code = crate::http::estate::code;
    let units = request
        .units
        .map(|units| {
            units
                .into_iter()
                .map(|u| {
                    Ok(UnitRef {
                        project: u.project.trim().to_owned(),
                        building: code("building", &u.building, CodePart::Building)?,
                        unit: code("unit", &u.unit, CodePart::Room)?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .transpose()?;
    Ok(UserChange { name, role, phone, disabled: request.disabled, trades, projects: request.projects, units })
}

pub async fn change(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(request): Body<ChangeRequest>,
) -> Result<Json<User>, ApiError> {
    admin_only(&principal)?;
    let myself = id == principal.user.to_string();
    let change = checked_change(request, None)?;
    if myself && (change.disabled == Some(true) || change.role.is_some_and(|r| r != principal.role)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "own_account",
            "an administrator cannot disable their own account or change their own role",
            "管理员不能停用自己的账号或修改自己的角色",
        ));
    }
    if !state.db.change_user(&principal.org, &id, &change, state.clock.now_ms()).await? {
        return Err(ApiError::not_found("user"));
    }
    tracing::info!(admin = %principal.user, user = %id, disabled = ?change.disabled, role = ?change.role.map(|r| r.code()), "account changed");
    let user = state.db.user(&principal.org, &id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user.into()))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
    /// Signs every device of the account out (a lost phone, a leaked password): each signs in
    /// again with the new password.
    #[serde(default)]
    pub revoke_devices: bool,
}

pub async fn reset_password(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(reset): Body<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    admin_only(&principal)?;
    let user = state.db.user(&principal.org, &id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    auth::check_password_strength(&user.login, &reset.password)
        .map_err(|(en, zh)| ApiError::invalid("weak_password", en, zh))?;
    let password = reset.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|_| ApiError::internal())??;
    if !state.db.set_password(&principal.org, &id, &hash, reset.revoke_devices, state.clock.now_ms()).await? {
        return Err(ApiError::not_found("user"));
    }
    tracing::info!(admin = %principal.user, user = %id, revoke_devices = reset.revoke_devices, "password reset");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn devices(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<DeviceRecord>>, ApiError> {
    admin_only(&principal)?;
    state.db.user_devices(&principal.org, &id).await?.map(Json).ok_or_else(|| ApiError::not_found("user"))
}
