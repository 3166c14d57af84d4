//! Passwords, tokens, and the extractor that turns a bearer token into a [`Principal`].
//!
//! Passwords are hashed with Argon2id. A token is 244 random bits shown once at login; the
//! database keeps only its SHA-256, so a leaked database does not leak sessions. A revoked
//! device (a lost phone) is refused at its next request.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::replication::Principal;
use loopwork_sync_core::OrderId;

/// Refuses (403, `forbidden`) anyone but office staff (dispatchers and above); the messages say
/// what only they may do.
pub fn require_staff(principal: &Principal, en: &'static str, zh: &'static str) -> Result<(), ApiError> {
    if principal.role.is_staff() { Ok(()) } else { Err(ApiError::forbidden(en, zh)) }
}

/// Refuses (404, as if there were no such order) a dispatcher bound to projects an order of a
/// project they do not serve. The office-staff endpoints about one order call it: their other
/// checks stop at the organization.
pub async fn require_served(state: &AppState, principal: &Principal, order: OrderId) -> Result<(), ApiError> {
    if principal.project_bound && !state.db.order_in_scope(principal, order).await? {
        return Err(ApiError::not_found("order"));
    }
    Ok(())
}

/// Refuses (403, `forbidden`) anyone but the organization's administrators.
pub fn require_admin(principal: &Principal, en: &'static str, zh: &'static str) -> Result<(), ApiError> {
    if principal.role == loopwork_sync_core::Role::Admin { Ok(()) } else { Err(ApiError::forbidden(en, zh)) }
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|_| ApiError::internal())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A new bearer token: two random UUIDs' worth of entropy, as hex.
pub fn new_token() -> String {
    format!("lw_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in device behind a request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let binary = parts.uri.path().starts_with("/sync/");
        let refuse = || {
            state.metrics.errors.with_label_values(&["unauthenticated"]).inc();
            if binary { ApiError::unauthenticated().binary() } else { ApiError::unauthenticated() }
        };
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(refuse());
        };
        if token.len() > 200 {
            return Err(refuse());
        }
        match state.db.principal_by_token(&token_hash(token)).await {
            Ok(Some(principal)) => Ok(Authenticated(principal)),
            Ok(None) => Err(refuse()),
            Err(e) => Err(if binary { e.binary() } else { e }),
        }
    }
}
