//! Text messages carrying one-time sign-in codes, through a provider chosen when the server
//! starts (`serve --sms`):
//!
//! - `off` (the default): no codes; signing in by code answers 503 `sms_unavailable`.
//! - `log` (development only, asked for by name): the code is written to the server's log with
//!   the number masked (`138****8005`); `serve --production` refuses it.
//! - `webhook`: the code is POSTed as JSON `{"phone", "code", "purpose": "login",
//!   "expires_in_s"}` to `--sms-webhook-url`, signed as webhooks are (`x-loopwork-timestamp`,
//!   `x-loopwork-signature: sha256=<HMAC-SHA256(secret, "<timestamp>.<body>")>`) with
//!   `--sms-webhook-secret`; the company's own gateway (Aliyun SMS, Tencent Cloud SMS, …) sends
//!   the text. Any answer but 2xx within 10 s is a failure (logged; the owner was told a code
//!   is on its way either way, so that answers do not tell known numbers from unknown ones).

use std::time::Duration;

/// How a code reaches the phone.
#[derive(Clone, Debug, Default)]
pub enum Sms {
    #[default]
    Off,
    Log,
    Webhook {
        url: reqwest::Url,
        secret: String,
        client: reqwest::Client,
    },
}

impl Sms {
    /// The webhook provider; the URL must be http(s) and the secret at least 16 characters.
    pub fn webhook(url: &str, secret: &str) -> Result<Sms, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("--sms-webhook-url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("--sms-webhook-url must be http(s)".into());
        }
        if secret.chars().count() < 16 {
            return Err("--sms-webhook-secret must have at least 16 characters".into());
        }
        crate::tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sms::Webhook { url, secret: secret.to_owned(), client })
    }

    pub fn is_off(&self) -> bool {
        matches!(self, Sms::Off)
    }

    /// Sends `code` to `phone` (digits). `Err` says why it did not go (for the log).
    pub async fn send(&self, phone: &str, code: &str, expires_in_s: i64, now_ms: i64) -> Result<(), String> {
        match self {
            Sms::Off => Err("no text-message provider (serve --sms off)".into()),
            Sms::Log => {
                tracing::warn!(
                    phone = %crate::http::privacy::mask_phone(phone),
                    code,
                    "sign-in code (development provider `log`: not sent)"
                );
                Ok(())
            }
            Sms::Webhook { url, secret, client } => {
                let body = serde_json::json!({
                    "phone": phone, "code": code, "purpose": "login", "expires_in_s": expires_in_s,
                })
                .to_string();
                let timestamp = now_ms / 1000;
                let answer = client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header("x-loopwork-timestamp", timestamp.to_string())
                    .header("x-loopwork-signature", crate::webhooks::signature(secret, timestamp, &body))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("the text-message gateway did not answer: {e}"))?;
                if answer.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the text-message gateway answered {}", answer.status()))
                }
            }
        }
    }
}
