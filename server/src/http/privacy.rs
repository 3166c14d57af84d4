//! Personal data (个人信息保护): owners' names and phone numbers live only in the `users` table.
//! Documents, logs, metrics and error messages hold user ids. This module is the only way the
//! API hands them out:
//!
//! - `GET /api/v1/orders/{id}/contact`: the owner's name and phone, masked (`王*`,
//!   `138****5678`), for office staff and for technicians who have been given the order.
//! - `POST /api/v1/orders/{id}/contact/reveal`: the full number, for office staff, and for a
//!   technician only while the order is assigned to them and open; every reveal is logged.
//! - `POST /api/v1/orders/{id}/caller/reveal`: the caller registered with a phone call (name and
//!   full number), for office staff; logged in the same log.
//! - `GET /api/v1/orders/{id}/contact/reveals`: that log (office staff).
//! - `GET /api/v1/me/export`: everything the server holds about the signed-in user (JSON).
//! - `POST /api/v1/me/erase`: erases the signed-in user's personal data and signs out every
//!   device; the orders stay valid (they never held more than the user's id).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::{OrderId, Role};
use serde::Serialize;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::replication::Principal;
use crate::store::{ContactSource, RevealRecord};

/// `138****5678`: the first three and last four digits of a mainland mobile number; shorter
/// numbers keep only their last two digits.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() >= 11 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    } else {
        let keep = chars.len().min(2);
        let tail: String = chars[chars.len() - keep..].iter().collect();
        format!("{}{tail}", "*".repeat(chars.len() - keep))
    }
}

/// `王*`, `欧阳**`: the first character (the family name, for most Chinese names), then one
/// star per remaining character.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count())),
        None => String::new(),
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Contact {
    pub reporter_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    /// Whether `phone` is the full number.
    pub revealed: bool,
}

fn parse(id: &str) -> Result<OrderId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("order"))
}

/// Who may see the masked contact: office staff, and technicians who have been given the order.
fn may_see(principal: &Principal, source: &ContactSource) -> bool {
    principal.role.is_staff() || (principal.role == Role::Technician && source.ever_given)
}

/// Who may see the full number: office staff, and the technician the order is assigned to now,
/// while it is open.
fn may_reveal(principal: &Principal, source: &ContactSource) -> bool {
    principal.role.is_staff()
        || (principal.role == Role::Technician
            && source.is_open
            && source.assignee.as_deref() == Some(principal.user.to_string().as_str()))
}

async fn source(state: &AppState, principal: &Principal, id: OrderId) -> Result<ContactSource, ApiError> {
    if principal.role.is_staff() {
        // A technician's access is decided below (orders they were ever given).
        crate::auth::require_served(state, principal, id).await?;
    }
    let source = state.db.order_contact(principal, id).await?.ok_or_else(|| ApiError::not_found("order"))?;
    if !may_see(principal, &source) {
        return Err(ApiError::forbidden(
            "only office staff and the order's technician see the owner's contact",
            "只有客服及本单维修工可以查看业主联系方式",
        ));
    }
    Ok(source)
}

pub async fn contact(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let source = source(&state, &principal, parse(&id)?).await?;
    Ok(Json(Contact {
        reporter_id: source.reporter,
        name: source.name.as_deref().map(mask_name),
        phone: source.phone.as_deref().map(mask_phone),
        revealed: false,
    }))
}

pub async fn reveal(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let order = parse(&id)?;
    let source = source(&state, &principal, order).await?;
    if !may_reveal(&principal, &source) {
        state.metrics.errors.with_label_values(&["reveal_refused"]).inc();
        return Err(ApiError::forbidden(
            "the full number is shown only for an open order assigned to you",
            "仅可查看派给您且未完结工单的业主完整号码",
        ));
    }
    state.db.log_reveal(&principal, order, state.clock.now_ms()).await?;
    Ok(Json(Contact { reporter_id: source.reporter, name: source.name, phone: source.phone, revealed: true }))
}

/// The caller registered with an order (a phone call's name and number), whole.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RevealedCaller {
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// `POST /api/v1/orders/{id}/caller/reveal`: office staff in scope; logged like a contact reveal.
pub async fn reveal_caller(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<RevealedCaller>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff see a caller's number",
        "只有客服及管理人员可以查看来电号码",
    )?;
    let order = parse(&id)?;
    crate::auth::require_served(&state, &principal, order).await?;
    let (name, phone) = state.db.caller(&principal.org, order).await?.ok_or_else(|| ApiError::not_found("caller"))?;
    state.db.log_reveal(&principal, order, state.clock.now_ms()).await?;
    Ok(Json(RevealedCaller { name, phone }))
}

pub async fn reveals(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<RevealRecord>>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff read the reveal log",
        "只有客服及管理人员可以查看号码查看记录",
    )?;
    let order = parse(&id)?;
    crate::auth::require_served(&state, &principal, order).await?;
    Ok(Json(state.db.reveals(&principal.org, order).await?))
}

pub async fn export(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<crate::store::UserExport>, ApiError> {
    Ok(Json(state.db.export_user(&principal).await?))
}

pub async fn erase(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<StatusCode, ApiError> {
    if principal.role != Role::Owner {
        return Err(ApiError::forbidden("staff accounts are closed by an administrator", "员工账号由管理员注销"));
    }
    state.db.erase_user(&principal, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_names_are_masked() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("+8613800138000"), "+86****8000");
        assert_eq!(mask_phone("6688123"), "*****23");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_name("王建国"), "王**");
        assert_eq!(mask_name("欧阳"), "欧*");
        assert_eq!(mask_name(""), "");
    }
}
