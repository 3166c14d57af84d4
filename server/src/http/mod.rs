//! The HTTP surface: `router(state)` builds every route; handlers are thin and call the
//! database and the replication rules.
//!
//! - `GET /healthz`: live (the process serves); `GET /readyz`: ready for traffic (the database
//!   answers, not shutting down).
//! - `POST /api/v1/login`: a bearer token for a new device; `POST /api/v1/login/code` and
//!   `…/code/verify`: an owner signing in with a code sent by text message.
//! - `POST /api/v1/devices/{id}/revoke`: a lost phone stops syncing.
//! - `GET /`, `GET /h5`, `GET /assets/{name}`, `GET /openapi.json`: the pages (`web.rs`).
//! - `GET`/`POST /api/v1/orders`, `GET /api/v1/orders/{id}`, `POST …/{id}/actions|classify|notes|link`,
//!   `PUT`/`DELETE …/{id}/appointment`,
//!   `POST /api/v1/orders/bulk-assign`, `GET /api/v1/me|vocabulary|technicians`: the desk
//!   (`desk/`); `GET /api/v1/dashboard/efficiency|heatmap`, `GET /api/v1/kpis`: dashboards
//!   (`dashboard.rs`).
//! - `GET`/`POST /api/v1/estate/…`: the estate register (房屋档案), the caller pop-up and
//!   spreadsheet imports (`estate.rs`).
//! - `GET`/`POST /api/v1/users`, `GET`/`PATCH /api/v1/users/{id}`, `POST …/{id}/password`,
//!   `GET …/{id}/devices`: accounts and devices for the admin console (`users.rs`).
//! - `GET /api/v1/live`: server-sent events when the caller's organization's feed advances.
//! - `POST /sync/v1`: one sync round trip (binary frames, docs/protocol.md).
//! - `OPTIONS`/`POST /api/v1/uploads`, `HEAD`/`PATCH`/`DELETE …/{id}`: attachments' bytes by
//!   resumable upload (tus 1.0, `uploads.rs`); `GET /api/v1/orders/{id}/attachments/{sha256}`
//!   and `…/thumbnail`: downloaded through the order (`attachments.rs`; docs/attachments.md).
//! - `GET /api/v1/orders/{id}/audit`: an order's audit trail (office staff; docs/permissions.md).
//! - `GET`/`PUT /api/v1/settings/closing-authority`: who may close each grade (docs/permissions.md).
//! - `GET /api/v1/orders/{id}/contact`, `POST …/contact/reveal`, `GET …/contact/reveals`,
//!   `POST …/caller/reveal`,
//!   `GET /api/v1/me/export`, `POST /api/v1/me/erase`: personal data (`privacy.rs`).
//! - `GET`/`PUT /api/v1/settings/sla`, `GET`/`PUT /api/v1/settings/closed-loop`,
//!   `GET /api/v1/return-visits`, `GET /api/v1/notifications`, `POST …/{id}/read`,
//!   `GET /api/v1/orders/{id}/sla-events`, `GET`/`POST /api/v1/settings/webhooks`,
//!   `DELETE …/{id}`, `GET`/`PUT /api/v1/settings/escalation`: deadlines, the closed loop and
//!   escalation (docs/deadlines.md).

pub mod assets;
pub mod assistant;
pub mod attachments;
pub mod audit;
pub mod dashboard;
pub mod desk;
pub mod deviations;
pub mod estate;
pub mod extract;
pub mod incidents;
pub mod live;
pub mod notifications;
pub mod openapi;
pub mod privacy;
pub mod problems;
pub mod return_visits;
pub mod sessions;
pub mod settings;
pub mod sync;
pub mod triage;
pub mod uploads;
pub mod users;
pub mod web;
pub mod webhooks;

pub use extract::{Body, MAX_JSON_BODY, Params};

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use loopwork_sync_core::protocol::CONTENT_TYPE;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use self::sync::MAX_SYNC_BODY;
use crate::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> axum::Router {
    let sync = axum::Router::new()
        .route("/sync/v1", post(sync::sync))
        // The limit is the layer's: axum's own default (2 MB) on `Bytes` would cut in first.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_SYNC_BODY));
    let json = axum::Router::new()
        .route("/api/v1/login", post(sessions::login))
        .route("/api/v1/login/methods", get(sessions::methods))
        .route("/api/v1/login/code", post(sessions::request_code))
        .route("/api/v1/login/code/verify", post(sessions::verify_code))
        .route("/api/v1/devices/{id}/revoke", post(sessions::revoke_device))
        .route("/api/v1/me", get(desk::me))
        .route("/api/v1/vocabulary", get(desk::vocabulary))
        .route("/api/v1/triage", post(triage::triage))
        .route("/api/v1/knowledge", get(assistant::list_articles).post(assistant::create_article))
        .route(
            "/api/v1/knowledge/{id}",
            axum::routing::put(assistant::update_article).delete(assistant::delete_article),
        )
        .route("/api/v1/incidents", get(incidents::incidents))
        .route("/api/v1/incidents/{number}", get(incidents::incident))
        .route("/api/v1/incidents/{number}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{number}/notices", post(incidents::add_notice))
        .route("/api/v1/incidents/{number}/merge", post(incidents::merge))
        .route("/api/v1/incidents/{number}/split", post(incidents::split))
        .route("/api/v1/incidents/{number}/suggestions", post(incidents::answer_suggestion))
        .route("/api/v1/notices", get(incidents::owner_notices))
        .route("/api/v1/deviations", get(deviations::deviations))
        .route("/api/v1/assistant/messages", post(assistant::owner_message))
        .route("/api/v1/assistant/conversations", get(assistant::conversations))
        .route("/api/v1/assistant/conversations/{id}", get(assistant::conversation))
        .route("/api/v1/assistant/conversations/{id}/handover", post(assistant::handover))
        .route("/api/v1/assistant/conversations/{id}/replies", post(assistant::reply))
        .route("/api/v1/assistant/conversations/{id}/close", post(assistant::close))
        .route("/api/v1/technicians", get(desk::technicians))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{id}", get(users::get_one).patch(users::change))
        .route("/api/v1/users/{id}/password", post(users::reset_password))
        .route("/api/v1/users/{id}/devices", get(users::devices))
        .route("/api/v1/orders", get(desk::list).post(desk::register))
        .route("/api/v1/orders/bulk-assign", post(desk::bulk_assign))
        .route("/api/v1/orders/export/{format}", get(desk::export))
        .route("/api/v1/orders/{id}", get(desk::detail))
        .route("/api/v1/orders/{id}/actions", post(desk::action))
        .route("/api/v1/orders/{id}/classify", post(desk::classify))
        .route("/api/v1/orders/{id}/suggestion", post(desk::answer_suggestion))
        .route("/api/v1/orders/{id}/notes", post(desk::add_note))
        .route("/api/v1/orders/{id}/attachments", post(desk::attach))
        .route("/api/v1/orders/{id}/link", post(desk::link))
        .route(
            "/api/v1/orders/{id}/appointment",
            axum::routing::put(desk::set_appointment).delete(desk::clear_appointment),
        )
        .route("/api/v1/orders/{id}/qr.svg", get(desk::qr))
        .route("/api/v1/dashboard/efficiency", get(dashboard::efficiency))
        .route("/api/v1/dashboard/heatmap", get(dashboard::heatmap))
        .route("/api/v1/dashboard/maintenance", get(dashboard::maintenance))
        .route("/api/v1/kpis", get(dashboard::kpis))
        .route("/api/v1/orders/{id}/audit", get(audit::order_audit))
        .route("/api/v1/orders/{id}/contact", get(privacy::contact))
        .route("/api/v1/orders/{id}/contact/reveal", post(privacy::reveal))
        .route("/api/v1/orders/{id}/contact/reveals", get(privacy::reveals))
        .route("/api/v1/orders/{id}/caller/reveal", post(privacy::reveal_caller))
        .route("/api/v1/me/export", get(privacy::export))
        .route("/api/v1/me/views", get(desk::views).post(desk::save_view))
        .route("/api/v1/me/views/{id}", axum::routing::delete(desk::delete_view))
        .route("/api/v1/me/erase", post(privacy::erase))
        .route("/api/v1/return-visits", get(return_visits::return_visits))
        .merge(settings::routes())
        .route("/api/v1/settings/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/v1/settings/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/api/v1/notifications", get(notifications::notifications))
        .route("/api/v1/notifications/{id}/read", post(notifications::mark_read))
        .route("/api/v1/notifications/read-all", post(notifications::mark_all_read))
        .route("/api/v1/orders/{id}/sla-events", get(notifications::sla_events))
        .route("/api/v1/assets", get(assets::list).post(assets::add))
        .route("/api/v1/assets/{id}", get(assets::detail).delete(assets::remove))
        .route("/api/v1/assets/{id}/qr.svg", get(assets::qr))
        .route("/api/v1/assets/{id}/plans", post(assets::add_plan))
        .route("/api/v1/assets/{id}/plans/{plan}", axum::routing::delete(assets::remove_plan))
        .route("/api/v1/problems", get(problems::list))
        .route("/api/v1/problems/{id}/order", post(problems::order))
        .route("/api/v1/problems/{id}/dismiss", post(problems::dismiss))
        .route("/api/v1/estate/projects", get(estate::projects))
        .route("/api/v1/estate/buildings", get(estate::buildings))
        .route("/api/v1/estate/units", get(estate::units).post(estate::add_unit))
        .route("/api/v1/estate/unit", get(estate::unit).delete(estate::remove_unit))
        .route("/api/v1/estate/residents", post(estate::add_resident))
        .route(
            "/api/v1/estate/residents/{id}",
            axum::routing::patch(estate::update_resident).delete(estate::remove_resident),
        )
        .route("/api/v1/estate/residents/{id}/reveal", post(estate::reveal_resident))
        .route("/api/v1/estate/residents/{id}/reveals", get(estate::resident_reveals))
        .route("/api/v1/estate/callers", post(estate::caller))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_JSON_BODY))
        .layer(tower_http::compression::CompressionLayer::new());
    let sheets = axum::Router::new()
        .route("/api/v1/estate/import", post(estate::import))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(estate::MAX_IMPORT_BODY));
    // Attachments' bytes, streamed: no body limit but the upload's own length, and no 60-second
    // limit on a request: a body that sends nothing for a minute ends instead (uploads.rs).
    let uploads = axum::Router::new()
        .route("/api/v1/uploads", post(uploads::create).options(uploads::options))
        .route("/api/v1/uploads/{id}", axum::routing::head(uploads::head).patch(uploads::patch).delete(uploads::delete))
        .layer(middleware::map_response(uploads::tus_version_on_412))
        .layer(middleware::map_response(uploads::tus_resumable))
        .layer(middleware::from_fn_with_state(state.clone(), record_http));
    // Attachments' bytes downloaded, streamed: no 60-second limit on sending a large file.
    let downloads = axum::Router::new()
        .route("/api/v1/orders/{id}/attachments/{sha256}", get(attachments::original))
        .route("/api/v1/orders/{id}/attachments/{sha256}/thumbnail", get(attachments::thumbnail))
        .layer(middleware::from_fn_with_state(state.clone(), record_http));
    let pages = axum::Router::new()
        .route("/", get(web::desk))
        .route("/h5", get(web::h5))
        .route("/assets/{name}", get(web::asset))
        .route("/openapi.json", get(web::openapi))
        .layer(tower_http::compression::CompressionLayer::new());
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/live", get(live::live))
        .merge(sync)
        .merge(json)
        .merge(sheets)
        .merge(pages)
        .fallback(|| async { ApiError::not_found("route") })
        .layer(middleware::from_fn_with_state(state.clone(), record_http))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        // After the timeout: an upload's request lasts as long as its bytes keep coming.
        .merge(uploads)
        .merge(downloads)
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
    let sheet = request.uri().path() == "/api/v1/estate/import";
    let mut response = next.run(request).await;
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes() == CONTENT_TYPE.as_bytes() || t.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !ours {
        // The body limit's own answer is plain text: answer with the documented error instead.
        let limit = match (sync, sheet) {
            (true, _) => MAX_SYNC_BODY,
            (_, true) => estate::MAX_IMPORT_BODY,
            _ => MAX_JSON_BODY,
        };
        let error = ApiError::body_too_large(limit);
        state.metrics.errors.with_label_values(&[error.code]).inc();
        response = if sync { error.binary() } else { error }.into_response();
    }
    state.metrics.http_requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    response
}

/// Liveness: the process serves.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness, for a load balancer: migrated, warmed (both done before the listener opens), the
/// database answering, and not shutting down.
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if *state.draining.borrow() {
        return Err(ApiError::draining());
    }
    state.db.ping().await?;
    Ok("ready")
}
