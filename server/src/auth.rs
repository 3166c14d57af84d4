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

/// Refuses (404, as if there were no such order) an order outside the caller's scope: another
/// organization's, or for a dispatcher bound to projects, one of a project they do not serve.
/// The office-staff endpoints about one order call it first, so that every one of them answers
/// an id it may not see the same way.
pub async fn require_served(state: &AppState, principal: &Principal, order: OrderId) -> Result<(), ApiError> {
    if !state.db.order_in_scope(principal, order).await? {
        if principal.role.is_staff()
            && !principal.project_bound
            && state.db.is_quarantined(&principal.org, order).await?
        {
            return Err(ApiError::quarantined(order));
        }
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
            Err(e) => {
                let e = ApiError::from(e);
                Err(if binary { e.binary() } else { e })
            }
        }
    }
}

/// Password guessing is throttled per account and per client address (docs/web.md, "Signing
/// in"): after [`ACCOUNT_FAILURES`] wrong passwords for one login within [`WINDOW_MS`], that login
/// is refused for [`FIRST_LOCK_MS`], doubling with each further failure up to [`MAX_LOCK_MS`];
/// an address gets [`ADDRESS_FAILURES`] wrong passwords per window, whatever logins it tries.
/// While refused, a login is answered 429 with `Retry-After` before the password is checked,
/// so a guess then tells nothing. A correct password clears the login's count. Counted per
/// server process; a restart forgets.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    accounts: std::sync::Mutex<std::collections::HashMap<String, Failures>>,
    addresses: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Failures>>,
    /// Sign-in codes asked for, per address (each is a text message someone pays for).
    code_requests: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Failures>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    window_from_ms: i64,
    locked_until_ms: i64,
}

pub const ACCOUNT_FAILURES: u32 = 5;
pub const ADDRESS_FAILURES: u32 = 30;
/// Sign-in codes one address may ask for in a window before it waits.
pub const ADDRESS_CODE_REQUESTS: u32 = 20;
pub const WINDOW_MS: i64 = 15 * 60_000;
pub const FIRST_LOCK_MS: i64 = 60_000;
pub const MAX_LOCK_MS: i64 = 15 * 60_000;
/// How many logins and addresses are tracked before the oldest windows are forgotten.
const TRACKED: usize = 100_000;

impl Failures {
    fn locked_for(&self, now_ms: i64) -> Option<u64> {
        (self.locked_until_ms > now_ms).then(|| ((self.locked_until_ms - now_ms + 999) / 1_000) as u64)
    }

    fn fail(&mut self, now_ms: i64, allowed: u32) {
        if now_ms - self.window_from_ms > WINDOW_MS {
            *self = Failures { count: 0, window_from_ms: now_ms, locked_until_ms: 0 };
        }
        self.count += 1;
        if self.count >= allowed {
            let doublings = (self.count - allowed).min(10);
            let lock = FIRST_LOCK_MS.saturating_mul(1 << doublings).min(MAX_LOCK_MS);
            self.locked_until_ms = now_ms + lock;
        }
    }
}

impl LoginThrottle {
    /// Seconds to wait if this login or address is refused now.
    pub fn refused_for(&self, login: &str, address: Option<std::net::IpAddr>, now_ms: i64) -> Option<u64> {
        let account = lock(&self.accounts).get(login).and_then(|f| f.locked_for(now_ms));
        let address = address.and_then(|a| lock(&self.addresses).get(&a).and_then(|f| f.locked_for(now_ms)));
        account.max(address)
    }

    pub fn failed(&self, login: &str, address: Option<std::net::IpAddr>, now_ms: i64) {
        record(&mut lock(&self.accounts), login.to_owned(), now_ms, ACCOUNT_FAILURES);
        if let Some(address) = address {
            record(&mut lock(&self.addresses), address, now_ms, ADDRESS_FAILURES);
        }
    }

    pub fn succeeded(&self, login: &str) {
        lock(&self.accounts).remove(login);
    }

    /// Counts a request for a sign-in code from `address`; seconds to wait if it is refused
    /// (more than [`ADDRESS_CODE_REQUESTS`] in a window).
    pub fn code_requested(&self, address: Option<std::net::IpAddr>, now_ms: i64) -> Option<u64> {
        let address = address?;
        let mut map = lock(&self.code_requests);
        if let Some(wait) = map.get(&address).and_then(|f| f.locked_for(now_ms)) {
            return Some(wait);
        }
        record(&mut map, address, now_ms, ADDRESS_CODE_REQUESTS);
        None
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record<K: std::hash::Hash + Eq>(
    map: &mut std::collections::HashMap<K, Failures>,
    key: K,
    now_ms: i64,
    allowed: u32,
) {
    if map.len() >= TRACKED {
        map.retain(|_, f| now_ms - f.window_from_ms <= WINDOW_MS || f.locked_until_ms > now_ms);
    }
    map.entry(key).or_insert(Failures { count: 0, window_from_ms: now_ms, locked_until_ms: 0 }).fail(now_ms, allowed);
}

/// What an unknown login's password is checked against, so that it costs what a known one's
/// does and the answer's time does not tell whether an account exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// Whether a password is strong enough for an account the administrator creates: at least
/// [`MIN_PASSWORD_CHARS`] characters, of at least two kinds (letters, digits, others), and not
/// containing the login. `Err` says why not, in English and Chinese.
pub fn check_password_strength(login: &str, password: &str) -> Result<(), (&'static str, &'static str)> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(("the password must have at least 10 characters", "密码至少需要 10 个字符"));
    }
    let kinds = [
        password.chars().any(char::is_alphabetic),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err((
            "the password must mix at least two of letters, digits and other characters",
            "密码需包含字母、数字、符号中的至少两种",
        ));
    }
    if !login.is_empty() && password.to_lowercase().contains(&login.to_lowercase()) {
        return Err(("the password must not contain the login", "密码不能包含登录名"));
    }
    Ok(())
}

pub const MIN_PASSWORD_CHARS: usize = 10;

/// The client's address, for the sign-in limits: the TCP peer's; or, when the peer is a proxy
/// the server trusts (`serve --trusted-proxy`), the address that proxy saw: the last entry of
/// `X-Forwarded-For` (all its headers, in order) that is not itself a trusted proxy. The header
/// from anyone else is ignored: it could say anything. An entry that is not an address ends the
/// search at the peer.
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    forwarded: &[&str],
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = forwarded.iter().flat_map(|h| h.split(',')).collect();
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<std::net::IpAddr>() else { return Some(peer) };
        if !trusted.contains(&ip) {
            return Some(ip);
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_peer_s_unless_a_trusted_proxy_says_otherwise() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxy = ip("127.0.0.1");
        // Not a trusted proxy: the header is ignored.
        assert_eq!(client_address(Some(ip("10.0.0.9")), &["1.2.3.4"], &[proxy]), Some(ip("10.0.0.9")));
        // The proxy: the last address it appended; what the client wrote before it is not trusted.
        assert_eq!(client_address(Some(proxy), &["6.6.6.6, 10.0.0.1"], &[proxy]), Some(ip("10.0.0.1")));
        assert_eq!(client_address(Some(proxy), &["6.6.6.6", "10.0.0.1"], &[proxy]), Some(ip("10.0.0.1")));
        // Chained proxies are skipped; garbage ends at the peer; no header is the peer.
        assert_eq!(client_address(Some(proxy), &["10.0.0.1, 127.0.0.1"], &[proxy]), Some(ip("10.0.0.1")));
        assert_eq!(client_address(Some(proxy), &["10.0.0.1, nonsense"], &[proxy]), Some(proxy));
        assert_eq!(client_address(Some(proxy), &[], &[proxy]), Some(proxy));
        assert_eq!(client_address(None, &["10.0.0.1"], &[proxy]), None);
    }

    #[test]
    fn five_wrong_passwords_lock_a_login_for_a_minute_and_more_lock_it_longer() {
        let throttle = LoginThrottle::default();
        let at: Option<std::net::IpAddr> = Some("10.0.0.1".parse().unwrap());
        for i in 0..ACCOUNT_FAILURES {
            assert_eq!(throttle.refused_for("wang", at, 1_000), None, "attempt {i} is answered");
            throttle.failed("wang", at, 1_000);
        }
        assert_eq!(throttle.refused_for("wang", at, 1_000), Some(60));
        assert_eq!(throttle.refused_for("li", None, 1_000), None, "another login is not affected");
        assert_eq!(throttle.refused_for("wang", at, 61_001), None, "the lock ends");
        throttle.failed("wang", at, 61_001);
        assert_eq!(throttle.refused_for("wang", at, 61_001), Some(120), "the next failure doubles it");
        throttle.succeeded("wang");
        assert_eq!(throttle.refused_for("wang", None, 61_001), None);
    }

    #[test]
    fn one_address_guessing_many_logins_is_refused() {
        let throttle = LoginThrottle::default();
        let at: Option<std::net::IpAddr> = Some("10.0.0.2".parse().unwrap());
        for i in 0..ADDRESS_FAILURES {
            throttle.failed(&format!("user{i}"), at, 0);
        }
        assert!(throttle.refused_for("anyone", at, 0).is_some());
        assert_eq!(throttle.refused_for("anyone", Some("10.0.0.3".parse().unwrap()), 0), None);
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(check_password_strength("wang", "short1").is_err());
        assert!(check_password_strength("wang", "onlyletters").is_err());
        assert!(check_password_strength("wang", "wang123456789").is_err());
        assert!(check_password_strength("wang", "repair-desk-7").is_ok());
        assert!(check_password_strength("wang", "维修工单密码设置好了吗1").is_ok());
    }
}
