//! The HTTP surface: `router(state)` builds every route; handlers are thin and call the
//! database and the replication rules.
//!
//! - `GET /healthz`: ready when the database answers.
//! - `POST /api/v1/login`: a bearer token for a new device.
//! - `POST /api/v1/devices/{id}/revoke`: a lost phone stops syncing.
//! - `GET /`, `GET /h5`, `GET /assets/{name}`, `GET /openapi.json`: the pages (`web.rs`).
//! - `GET`/`POST /api/v1/orders`, `GET /api/v1/orders/{id}`, `POST …/{id}/actions|classify|notes|link`,
//!   `POST /api/v1/orders/bulk-assign`, `GET /api/v1/me|vocabulary|technicians`: the desk
//!   (`desk/`); `GET /api/v1/dashboard/efficiency|heatmap`, `GET /api/v1/kpis`: dashboards
//!   (`dashboard.rs`).
//! - `GET /api/v1/live`: server-sent events when the caller's organization's feed advances.
//! - `POST /sync/v1`: one sync round trip (binary frames, docs/protocol.md).
//! - `GET /api/v1/orders/{id}/audit`: an order's audit trail (office staff; docs/permissions.md).
//! - `GET`/`PUT /api/v1/settings/closing-authority`: who may close each grade (docs/permissions.md).
//! - `GET /api/v1/orders/{id}/contact`, `POST …/contact/reveal`, `GET …/contact/reveals`,
//!   `GET /api/v1/me/export`, `POST /api/v1/me/erase`: personal data (`privacy.rs`).
//! - `GET`/`PUT /api/v1/settings/sla`, `GET`/`PUT /api/v1/settings/closed-loop`,
//!   `GET /api/v1/return-visits`, `GET /api/v1/notifications`, `POST …/{id}/read`,
//!   `GET /api/v1/orders/{id}/sla-events`, `GET`/`POST /api/v1/settings/webhooks`,
//!   `DELETE …/{id}`, `GET`/`PUT /api/v1/settings/escalation`: deadlines, the closed loop and
//!   escalation (docs/deadlines.md).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use loopwork_sync_core::protocol::{CONTENT_TYPE, PROTOCOL_VERSION, SyncRequest, frame_version};
use loopwork_sync_core::{DeviceId, OrderId};
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::auth::{self, Authenticated};
use crate::error::ApiError;
use crate::http::{Body, MAX_JSON_BODY};
use crate::replication::{self, Cursor};
use crate::store::PullRequest;
use crate::{AppState, FeedAdvanced, closed_loop, dashboard, desk, escalation, privacy, web, webhooks};

/// A sync request body may be this large; a JSON body much less.
pub const MAX_SYNC_BODY: usize = 16 << 20;
/// Entries in one response page, whatever the device asks.
const MAX_PAGE: u32 = 5_000;
/// Bytes of documents and changes in one response page (soft: at least one entry is sent).
const MAX_PAGE_BYTES: usize = 8 << 20;

pub fn router(state: AppState) -> axum::Router {
    let sync = axum::Router::new()
        .route("/sync/v1", post(sync))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_SYNC_BODY));
    let json = axum::Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/devices/{id}/revoke", post(revoke_device))
        .route("/api/v1/me", get(desk::me))
        .route("/api/v1/vocabulary", get(desk::vocabulary))
        .route("/api/v1/technicians", get(desk::technicians))
        .route("/api/v1/orders", get(desk::list).post(desk::register))
        .route("/api/v1/orders/bulk-assign", post(desk::bulk_assign))
        .route("/api/v1/orders/{id}", get(desk::detail))
        .route("/api/v1/orders/{id}/actions", post(desk::action))
        .route("/api/v1/orders/{id}/classify", post(desk::classify))
        .route("/api/v1/orders/{id}/notes", post(desk::add_note))
        .route("/api/v1/orders/{id}/link", post(desk::link))
        .route("/api/v1/dashboard/efficiency", get(dashboard::efficiency))
        .route("/api/v1/dashboard/heatmap", get(dashboard::heatmap))
        .route("/api/v1/kpis", get(dashboard::kpis))
        .route("/api/v1/orders/{id}/audit", get(order_audit))
        .route("/api/v1/orders/{id}/contact", get(privacy::contact))
        .route("/api/v1/orders/{id}/contact/reveal", post(privacy::reveal))
        .route("/api/v1/orders/{id}/contact/reveals", get(privacy::reveals))
        .route("/api/v1/me/export", get(privacy::export))
        .route("/api/v1/me/erase", post(privacy::erase))
        .route("/api/v1/return-visits", get(closed_loop::return_visits))
        .merge(crate::http::settings::routes())
        .route("/api/v1/settings/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/v1/settings/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/api/v1/notifications", get(escalation::notifications))
        .route("/api/v1/notifications/{id}/read", post(escalation::mark_read))
        .route("/api/v1/orders/{id}/sla-events", get(escalation::sla_events))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_JSON_BODY))
        .layer(tower_http::compression::CompressionLayer::new());
    let pages = axum::Router::new()
        .route("/", get(web::desk))
        .route("/h5", get(web::h5))
        .route("/assets/{name}", get(web::asset))
        .route("/openapi.json", get(web::openapi))
        .layer(tower_http::compression::CompressionLayer::new());
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/live", get(live))
        .merge(sync)
        .merge(json)
        .merge(pages)
        .fallback(|| async { ApiError::not_found("route") })
        .layer(middleware::from_fn_with_state(state.clone(), record_http))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(1_024))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::map_request(bound_request_id))
        .layer(middleware::map_response(no_sniffing))
        .with_state(state)
}

/// The longest `x-request-id` kept from a client; a longer one, or one with other than visible
/// ASCII, is replaced by one the server makes (it ends up in every log line of the request).
pub const MAX_REQUEST_ID: usize = 64;

async fn bound_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let acceptable = |v: &HeaderValue| v.len() <= MAX_REQUEST_ID && v.as_bytes().iter().all(|b| b.is_ascii_graphic());
    if request.headers().get("x-request-id").is_some_and(|v| !acceptable(v)) {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// Every response says its content type is to be believed (`X-Content-Type-Options: nosniff`).
async fn no_sniffing(mut response: Response) -> Response {
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Each request's span: whatever is logged while it is served names its request id (the
/// `x-request-id` the client sent or the one set here, also returned in the response).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
}

/// The metrics listener's router.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move {
                state.metrics.quarantined_so_far(state.db.quarantined_here());
                state.metrics.render(state.clock.now_ms())
            }),
        )
        .with_state(state)
}

async fn record_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let sync = request.uri().path().starts_with("/sync/");
    let mut response = next.run(request).await;
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes() == CONTENT_TYPE.as_bytes() || t.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !ours {
        // The body limit's own answer is plain text: answer with the documented error instead.
        let error = ApiError::body_too_large(if sync { MAX_SYNC_BODY } else { MAX_JSON_BODY });
        state.metrics.errors.with_label_values(&[error.code]).inc();
        response = if sync { error.binary() } else { error }.into_response();
    }
    state.metrics.http_requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    response
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.db.epoch().await?;
    Ok("ok")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    login: String,
    password: String,
    #[serde(default)]
    device_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub user_id: String,
    pub role: String,
    pub org_id: String,
    pub device_id: String,
}

async fn login(
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

async fn revoke_device(
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

/// One change of an order's audit trail (JSON).
#[derive(Debug, Serialize)]
pub struct AuditEntry {
    /// The change's hash (hex): it covers the change's content and the hashes it was made on.
    pub hash: String,
    pub deps: Vec<String>,
    pub device_id: Option<String>,
    /// The user and role the device belongs to; none for the server's own changes.
    pub user_id: Option<String>,
    pub role: Option<String>,
    /// The device's clock when it made the change (a claim).
    pub device_time_ms: i64,
    /// When the server received it.
    pub received_at_ms: Option<i64>,
    /// What the change did (`create`, `note`, `grade`, `accept`, `compensate`, ...).
    pub what: String,
    /// `accepted`, or `compensated` with the reason.
    pub verdict: &'static str,
    pub reason_code: Option<&'static str>,
    pub reason_zh: Option<&'static str>,
    pub reason_en: Option<&'static str>,
}

/// `GET /api/v1/orders/{id}/audit`: every change of an order, in causal order, with who made
/// it, from which device, the device's time and the server's receipt time, and whether it was
/// accepted or compensated. Office staff only.
async fn order_audit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff read the audit trail",
        "只有客服及管理人员可以查看审计记录",
    )?;
    let order: OrderId = id.parse().map_err(|_| ApiError::not_found("order"))?;
    auth::require_served(&state, &principal, order).await?;
    let sources = state.db.audit_sources(&principal.org, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    let doc = state.db.load_stored(&principal.org, order, &sources.doc).await?;
    let entries = loopwork_sync_core::timeline::change_log(&doc)
        .into_iter()
        .map(|c| {
            let received = sources.received.get(c.hash.0.as_slice());
            AuditEntry {
                hash: c.hash.to_string(),
                deps: c.deps.iter().map(ToString::to_string).collect(),
                device_id: c.device.map(|d| d.to_string()),
                user_id: received.and_then(|r| r.user.clone()),
                role: received.and_then(|r| r.role.clone()),
                device_time_ms: c.device_time_ms,
                received_at_ms: received.map(|r| r.at_ms),
                what: c.what,
                verdict: if c.rejected.is_some() { "compensated" } else { "accepted" },
                reason_code: c.rejected.map(|r| r.code()),
                reason_zh: c.rejected.map(|r| r.message_zh()),
                reason_en: c.rejected.map(|r| r.message_en()),
            }
        })
        .collect();
    Ok(Json(entries))
}

async fn live(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let org = principal.org.clone();
    let updates = BroadcastStream::new(state.live.subscribe()).filter_map(move |event| match event {
        Ok(FeedAdvanced { org: o, seq }) if o == org => Some(Ok(Event::default().event("feed").data(seq.to_string()))),
        // A listener that fell behind is told to sync; it loses nothing by it.
        Err(_) => Some(Ok(Event::default().event("feed").data("lagged"))),
        Ok(_) => None,
    });
    Sse::new(updates).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One sync round trip: push, then pull. Every error is a binary error frame.
async fn sync(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let debug_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"));
    let result = sync_inner(&state, &principal, &body).await;
    state.metrics.sync_bytes.with_label_values(&["in"]).inc_by(body.len() as u64);
    match result {
        Ok(bytes) => {
            state.metrics.sync_requests.with_label_values(&["ok"]).inc();
            state.metrics.sync_bytes.with_label_values(&["out"]).inc_by(bytes.len() as u64);
            state.metrics.merge_seconds.observe(started.elapsed().as_secs_f64());
            state.metrics.device_seen(principal.device, state.clock.now_ms());
            if debug_json {
                return Ok(Json(debug_view(&bytes, &state.limits)).into_response());
            }
            let mut response = bytes.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            Ok(response)
        }
        Err(error) => {
            state.metrics.sync_requests.with_label_values(&["refused"]).inc();
            state.metrics.errors.with_label_values(&[error.code]).inc();
            Err(error.binary())
        }
    }
}

async fn sync_inner(state: &AppState, principal: &replication::Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    if let Some(version) = frame_version(body).filter(|v| *v != PROTOCOL_VERSION) {
        return Err(ApiError::upgrade_required(version));
    }
    let request = SyncRequest::decode_within(body, &state.limits, state.decode_budget.as_ref())?;
    let cursor = request.cursor.as_deref().map(Cursor::parse).transpose()?;

    // Parse and attribute every change before touching storage: all or nothing.
    let mut groups: Vec<(OrderId, Vec<automerge::Change>)> = Vec::new();
    let mut position: BTreeMap<OrderId, usize> = BTreeMap::new();
    let mut relayed = Vec::with_capacity(request.relayed.len());
    for pushed in &request.relayed {
        relayed.push((pushed.order, replication::parse_relayed(&pushed.bytes)?));
    }
    let mut own = Vec::with_capacity(request.changes.len());
    for pushed in &request.changes {
        own.push((pushed.order, replication::parse_pushed(principal, &pushed.bytes)?));
    }
    let relayed_authors = relayed_authors(state, principal, &request.receipts, &relayed, &own).await?;
    state.metrics.changes_relayed.inc_by(relayed.len() as u64);
    for (order, change) in relayed.into_iter().chain(own) {
        let at = *position.entry(order).or_insert_with(|| {
            groups.push((order, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(change);
    }
    let now = state.clock.now_ms();
    let pushed = state.db.push(principal, &groups, &relayed_authors, now).await?;
    for reason in &pushed.rejected {
        state.metrics.compensations.with_label_values(&[reason]).inc();
    }
    state.metrics.changes_merged.inc_by(pushed.merged as u64);
    let limit = request.limit.clamp(1, MAX_PAGE) as usize;
    let mut response = state
        .db
        .pull(PullRequest {
            principal,
            cursor,
            limit,
            max_bytes: MAX_PAGE_BYTES,
            reconcile: &request.reconcile,
            just_pushed: &pushed.acked,
        })
        .await?;
    response.acked = pushed.acked;
    Ok(response.encode())
}

/// How much memory decompressing sync requests may take at once, every request together: a
/// request whose payload would take the budget past it is answered 503 `busy` (docs/protocol.md).
pub const DECODE_MEMORY_BYTES: usize = 256 << 20;

/// The budget of [`DECODE_MEMORY_BYTES`] (see `protocol::DecodeBudget`).
#[derive(Debug)]
pub struct DecodeMemory {
    free: std::sync::atomic::AtomicUsize,
}

impl DecodeMemory {
    pub fn new(bytes: usize) -> Self {
        DecodeMemory { free: std::sync::atomic::AtomicUsize::new(bytes) }
    }
}

impl loopwork_sync_core::protocol::DecodeBudget for DecodeMemory {
    fn reserve(&self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.free.fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| free.checked_sub(bytes)).is_ok()
    }

    fn release(&self, bytes: usize) {
        self.free.fetch_add(bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Who made the relayed changes of a request. A device relays, in recovery, other devices' and
/// the server's changes that the server lost: each is judged as its true author, a registered
/// device of the organization (`foreign_actor` otherwise) or the server. A change of another
/// user's device or of the server must be vouched for by the server's receipt (see
/// `replication::receipt`), else the request is refused (`unvouched_relay`); one of another
/// device of the pusher's own user (a phone signed in again relays what it made before, unsent)
/// needs none, since it can only ever act as that user. A change under the pusher's own actor is
/// judged as the pusher's.
async fn relayed_authors(
    state: &AppState,
    principal: &replication::Principal,
    receipts: &[loopwork_sync_core::protocol::Receipt],
    relayed: &[(OrderId, automerge::Change)],
    own: &[(OrderId, automerge::Change)],
) -> Result<Vec<loopwork_sync_core::Identity>, ApiError> {
    let me = principal.device.actor();
    let mut authors: BTreeMap<Vec<u8>, loopwork_sync_core::Identity> = BTreeMap::new();
    for (_, change) in relayed.iter().filter(|(_, c)| c.actor_id() != &me) {
        let actor = change.actor_id().to_bytes().to_vec();
        if authors.contains_key(&actor) {
            continue;
        }
        match state.db.actor_author(&principal.org, change.actor_id()).await? {
            Some(author) => {
                authors.insert(actor, author);
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "foreign_actor",
                    "a relayed change was made by no device of this organization",
                    "转交的修改不属于本机构的任何设备",
                )
                .binary());
            }
        }
    }
    let vouch_needed: Vec<(OrderId, automerge::Change)> = relayed
        .iter()
        .filter(|(_, c)| authors.get(c.actor_id().to_bytes()).is_some_and(|a| a.user != principal.user))
        .cloned()
        .collect();
    let secret = state.db.receipt_secret();
    if let Some((order, change)) = replication::unvouched_relay(secret, &principal.org, receipts, &vouch_needed, own) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unvouched_relay",
            format!("relayed change {} of order {order} carries no receipt of this server", change.hash()),
            "转交的修改没有服务器签发的回执,不予接受",
        )
        .binary());
    }
    Ok(authors.into_values().filter(|a| a.role != loopwork_sync_core::Role::System).collect())
}

/// The JSON debug view of a sync response (`Accept: application/json`): the same round trip,
/// readable by a person; changes are described, not included. Not for apps: it is larger and
/// may change.
fn debug_view(frame: &[u8], limits: &loopwork_sync_core::protocol::Limits) -> serde_json::Value {
    let Ok(response) = loopwork_sync_core::protocol::SyncResponse::decode(frame, limits) else {
        return serde_json::json!({ "error": "undecodable" });
    };
    let describe =
        |item: &loopwork_sync_core::protocol::OrderBytes| match automerge::Change::from_bytes(item.bytes.clone()) {
            Ok(change) => serde_json::json!({
                "order": item.order.to_string(),
                "hash": change.hash().to_string(),
                "actor": change.actor_id().to_hex_string(),
                "seq": change.seq(),
                "time": change.timestamp(),
                "message": change.message(),
                "bytes": item.bytes.len(),
            }),
            Err(_) => serde_json::json!({ "order": item.order.to_string(), "bytes": item.bytes.len() }),
        };
    serde_json::json!({
        "protocol": PROTOCOL_VERSION,
        "frame_bytes": frame.len(),
        "acked": response.acked.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "cursor": response.cursor,
        "has_more": response.has_more,
        "reconcile_required": response.reconcile_required,
        "documents": response.documents.iter().map(|d| serde_json::json!({ "order": d.order.to_string(), "bytes": d.bytes.len() })).collect::<Vec<_>>(),
        "changes": response.changes.iter().map(describe).collect::<Vec<_>>(),
        "revoked": response.revoked.iter().map(|r| serde_json::json!({ "order": r.order.to_string(), "reason": r.reason })).collect::<Vec<_>>(),
        "server_heads": response.server_heads.iter().map(|h| serde_json::json!({
            "order": h.order.to_string(),
            "heads": h.heads.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
