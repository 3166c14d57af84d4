//! Outgoing webhooks: an organization's systems hear of SLA warnings and breaches as signed
//! HTTP POSTs.
//!
//! - Durable and once-enqueued: a delivery row is written in the same transaction that records
//!   the event (`store::Scans::record_checks`), so every recorded event is announced and none twice.
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
//! - Never a way into the server's own network (SSRF): a destination on a loopback, private
//!   (RFC 1918, 100.64/10, fc00::/7) network is refused unless the organization allows private
//!   networks (`PUT /api/v1/settings/webhook-destinations` `{"allow_private": true}`, for
//!   on-premises receivers); link-local (169.254/16 with the cloud metadata address, fe80::/10),
//!   unspecified, multicast, broadcast and documentation addresses always. Checked when the
//!   webhook is registered and again at every connection, on the addresses the name resolves to
//!   then (so DNS rebinding does not get through); redirects are not followed, proxies not used.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;
use crate::settings::{self, Readers, Setting};

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 20;
/// How long a claimed delivery is this process's before another may take it.
const LEASE_MS: i64 = 60_000;
const PER_TICK: i64 = 50;

/// Where a webhook may post, by the address it connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The public internet.
    Public,
    /// Loopback and private networks: only for an organization that allows them.
    Private,
    /// Never: link-local (cloud metadata), unspecified, multicast, broadcast, documentation.
    Forbidden,
}

impl Destination {
    pub fn of(ip: std::net::IpAddr) -> Destination {
        use std::net::IpAddr;
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                if v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_multicast()
                    || v4.is_broadcast()
                    || v4.is_documentation()
                    || o[0] == 0
                    || o[0] >= 240
                {
                    Destination::Forbidden
                } else if v4.is_loopback() || v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
                    Destination::Private
                } else {
                    Destination::Public
                }
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return Destination::of(IpAddr::V4(v4));
                }
                // IPv6 addresses that carry an IPv4 address reach it: NAT64's well-known prefix
                // (64:ff9b::/96), 6to4 (2002::/16) and the old IPv4-compatible form (::/96) are
                // judged by the address they carry; NAT64's local-use prefix (64:ff9b:1::/48)
                // and Teredo (2001::/32) hide it, and are refused.
                let s = v6.segments();
                let carried =
                    |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
                if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                    return Destination::of(carried(s[6], s[7]));
                }
                if s[0] == 0x2002 {
                    return Destination::of(carried(s[1], s[2]));
                }
                if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                    return Destination::of(carried(s[6], s[7]));
                }
                if s[..3] == [0x64, 0xff9b, 1] || s[..2] == [0x2001, 0] {
                    return Destination::Forbidden;
                }
                let first = s[0];
                if v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0xdb8
                {
                    Destination::Forbidden
                } else if v6.is_loopback() || (first & 0xfe00) == 0xfc00 {
                    Destination::Private
                } else {
                    Destination::Public
                }
            }
        }
    }

    pub fn allowed(self, allow_private: bool) -> bool {
        match self {
            Destination::Public => true,
            Destination::Private => allow_private,
            Destination::Forbidden => false,
        }
    }
}

/// Resolves names for deliveries, keeping only the addresses a delivery may connect to.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<std::net::SocketAddr> =
                found.into_iter().filter(|a| Destination::of(a.ip()).allowed(allow_private)).collect();
            if kept.is_empty() {
                return Err(format!("{host} resolves to no address a webhook may reach").into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP clients deliveries use (TLS by rustls with the ring provider): one for
/// organizations that keep to public destinations, one for those that allow private networks.
#[derive(Clone, Debug)]
pub struct Clients {
    public: reqwest::Client,
    private: reqwest::Client,
}

pub fn client() -> Clients {
    crate::tls_provider();
    let build = |allow_private: bool| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private }))
            .build()
            .unwrap_or_default()
    };
    Clients { public: build(false), private: build(true) }
}

/// Why a URL may not be a webhook's destination (`None`: it may), checked on its host: an
/// address as written, or every address the name resolves to now.
pub async fn refused_destination(url: &str, allow_private: bool) -> Option<&'static str> {
    let Ok(parsed) = reqwest::Url::parse(url) else { return Some("not a URL") };
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("not an http(s) URL without credentials");
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![ip.into()],
        Some(url::Host::Ipv6(ip)) => vec![ip.into()],
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                vec![std::net::Ipv4Addr::LOCALHOST.into()]
            } else {
                match tokio::net::lookup_host((name.as_str(), port)).await {
                    Ok(found) => found.map(|a| a.ip()).collect(),
                    Err(_) => return Some("the host name does not resolve"),
                }
            }
        }
        None => return Some("no host"),
    };
    if addresses.is_empty() {
        return Some("the host name does not resolve");
    }
    if addresses.iter().any(|ip| Destination::of(*ip) == Destination::Forbidden) {
        return Some("a link-local, metadata, multicast or reserved address");
    }
    if !allow_private && addresses.iter().any(|ip| Destination::of(*ip) == Destination::Private) {
        return Some("a loopback or private-network address (the organization does not allow private networks)");
    }
    None
}

/// Where the organization's webhooks may post (`GET`/`PUT /api/v1/settings/webhook-destinations`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WebhookDestinations")]
pub struct Destinations {
    /// Whether webhooks may post to loopback and private networks (on-premises receivers).
    pub allow_private: bool,
}

impl Setting for Destinations {
    const NAME: &'static str = "webhook-destinations";
    const READERS: Readers = Readers::Admins;
    const WRITE_REFUSED: (&'static str, &'static str) = ADMIN_ONLY;

    fn seeded() -> Self {
        Destinations::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        Ok(self)
    }
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
pub async fn deliver(state: &AppState, clients: &Clients, now_ms: i64) -> Result<usize, ApiError> {
    let mut delivered = 0;
    let mut settings: std::collections::HashMap<String, Destinations> = Default::default();
    for row in state.db.outbox_due(now_ms, PER_TICK).await? {
        if !state.db.claim_delivery(&row, now_ms + LEASE_MS).await? {
            continue;
        }
        let allow_private = match settings.get(&row.org) {
            Some(d) => d.allow_private,
            None => {
                let d = settings::read::<Destinations>(&*state.db, &row.org).await?;
                settings.insert(row.org.clone(), d);
                d.allow_private
            }
        };
        let client = if allow_private { &clients.private } else { &clients.public };
        // An address written in the URL is not resolved: it is checked here.
        let literal = reqwest::Url::parse(&row.url).ok().and_then(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::from(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::from(ip)),
            _ => None,
        });
        let timestamp = now_ms / 1000;
        let sent = if literal.is_some_and(|ip| !Destination::of(ip).allowed(allow_private)) {
            Err(None)
        } else {
            client
                .post(&row.url)
                .header("content-type", "application/json")
                .header("x-loopwork-delivery", &row.id)
                .header("x-loopwork-timestamp", timestamp.to_string())
                .header("x-loopwork-signature", signature(&row.secret, timestamp, &row.body))
                .body(row.body.clone())
                .send()
                .await
                .map_err(Some)
        };
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status().as_u16())),
            Err(Some(e)) => Some(format!("{}", e.without_url())),
            Err(None) => Some("the destination's address is not allowed".to_owned()),
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

/// The refusal to anyone but an administrator who manages webhooks.
pub const ADMIN_ONLY: (&str, &str) = ("only an administrator manages webhooks", "只有管理员可以管理回调地址");

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

    #[test]
    fn destinations_are_classed_by_address() {
        let class = |ip: &str| Destination::of(ip.parse().unwrap());
        for public in ["8.8.8.8", "1.1.1.1", "2400:3200::1", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(class(public), Destination::Public, "{public}");
        }
        assert_eq!(class("203.0.113.5"), Destination::Forbidden, "documentation range");
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.0.1",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "2002:7f00:1::",
            "64:ff9b::a00:1",
        ] {
            assert_eq!(class(private), Destination::Private, "{private}");
        }
        for never in [
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "fe80::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::a9fe:a9fe",
            "64:ff9b:1::1",
            "2001:0:4136:e378::1",
        ] {
            assert_eq!(class(never), Destination::Forbidden, "{never}");
        }
    }
}
