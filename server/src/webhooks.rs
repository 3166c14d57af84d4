//! Outgoing webhooks: an organization's systems hear of SLA warnings and breaches as signed
//! HTTP POSTs.
//!
//! - Durable and once-enqueued: a delivery row is written in the same transaction that records
//!   the event (`db::record_checks`), so every recorded event is announced and none twice.
//! - At least once: [`deliver`] posts what is due and retries failures with exponential backoff
//!   (30 s, 1 min, 2 min, … capped at 1 h; given up after 20 attempts), surviving restarts. Each
//!   delivery carries `x-loopwork-delivery` (its id, the same on every retry) for receivers to
//!   drop repeats.
//! - Several server processes deliver from one outbox: a delivery is claimed with a lease first.
//! - Signed: `x-loopwork-signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
//!   `x-loopwork-timestamp` (Unix seconds); the secret is shown once, when the webhook is
//!   created.
//! - `POST /api/v1/settings/webhooks` `{"url": "https://…"}` (administrators) → `{id, url, secret}`;
//!   `GET` lists them; `DELETE /api/v1/settings/webhooks/{id}`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::db::WebhookRecord;
use crate::error::ApiError;
use crate::replication::Principal;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 20;
/// How long a claimed delivery is this process's before another may take it.
const LEASE_MS: i64 = 60_000;
const PER_TICK: i64 = 50;

/// The HTTP client deliveries use (TLS by rustls with the ring provider).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default()
}

/// `sha256=<hex>` of `<timestamp>.<body>` under the secret.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `attempts + 1`.
pub fn backoff_ms(attempts: i64) -> i64 {
    (30_000i64 << attempts.clamp(0, 7)).min(3_600_000)
}

/// Posts every delivery due by `now_ms`. Returns how many were delivered.
pub async fn deliver(state: &AppState, client: &reqwest::Client, now_ms: i64) -> Result<usize, ApiError> {
    let mut delivered = 0;
    for row in state.db.outbox_due(now_ms, PER_TICK).await? {
        if !state.db.claim_delivery(&row, now_ms + LEASE_MS).await? {
            continue;
        }
        let timestamp = now_ms / 1000;
        let sent = client
            .post(&row.url)
            .header("content-type", "application/json")
            .header("x-loopwork-delivery", &row.id)
            .header("x-loopwork-timestamp", timestamp.to_string())
            .header("x-loopwork-signature", signature(&row.secret, timestamp, &row.body))
            .body(row.body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status().as_u16())),
            Err(e) => Some(format!("{}", e.without_url())),
        };
        match failure {
            None => {
                state.db.finish_delivery(&row.id, Some(now_ms), None, None).await?;
                state.metrics.webhook_deliveries.with_label_values(&["delivered"]).inc();
                delivered += 1;
            }
            Some(error) => {
                let attempts = row.attempts + 1;
                let next = (attempts < MAX_ATTEMPTS).then(|| now_ms + backoff_ms(attempts - 1));
                state.db.finish_delivery(&row.id, None, next, Some(&error)).await?;
                let outcome = if next.is_some() { "retry" } else { "given_up" };
                state.metrics.webhook_deliveries.with_label_values(&[outcome]).inc();
            }
        }
    }
    Ok(delivered)
}

/// Delivers every `every` until aborted.
pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = client();
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = deliver(&state, &client, state.clock.now_ms()).await {
                tracing::warn!(code = e.code, "webhook delivery failed");
            }
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    /// Shown once: the receiver checks signatures with it.
    pub secret: String,
}

fn admin_only(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_admin(principal, "only an administrator manages webhooks", "只有管理员可以管理回调地址")
}

pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<NewWebhook>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_backoff() {
        // RFC 4231 test case 2, with the timestamp prefix our format adds.
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(signature("k", 1, "{}"), signature("k", 1, "{}"));
        assert_ne!(signature("k", 1, "{}"), signature("k", 2, "{}"));
        assert_eq!(backoff_ms(0), 30_000);
        assert_eq!(backoff_ms(1), 60_000);
        assert_eq!(backoff_ms(20), 3_600_000);
    }
}
