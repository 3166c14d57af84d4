//! Loopwork's server: the authority over work orders. It stores every order's document and an
//! append-only feed per organization, serves sync protocol v1 to devices, and knows who may see
//! and write what.
//!
//! The server is a library with a thin `main`: [`http::router`] is callable from tests, and
//! [`serve`] runs the listeners. Storage is behind [`store::Database`] (SQLite or PostgreSQL).

pub mod assistant;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod cli;
pub mod closed_loop;
pub mod config;
pub mod demo;
pub mod deviations;
pub mod error;
pub mod escalation;
pub mod http;
pub mod incidents;
pub mod metrics;
pub mod preventive;
pub mod replication;
pub mod service_desk;
pub mod settings;
pub mod sms;
pub mod store;
pub mod tasks;
pub mod triage;
pub mod webhooks;
pub mod writer;

use std::sync::Arc;

use loopwork_sync_core::Clock;
use loopwork_sync_core::protocol::Limits;

/// One feed advance, broadcast to live listeners of the organization.
#[derive(Clone, Debug)]
pub struct FeedAdvanced {
    pub org: String,
    pub seq: i64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<dyn store::Database>,
    pub metrics: Arc<metrics::Metrics>,
    pub live: tokio::sync::broadcast::Sender<FeedAdvanced>,
    /// Organizations whose users this process has just notified (SLA warnings and breaches):
    /// their desks reload their notifications (`event: notify` on `GET /api/v1/live`).
    pub notified: tokio::sync::broadcast::Sender<String>,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// Desk edits run one at a time per session and order (see `http::desk::DeskLocks`).
    pub desk_writes: Arc<http::desk::DeskLocks>,
    /// Wrong passwords per login and per address (see `auth::LoginThrottle`).
    pub logins: Arc<auth::LoginThrottle>,
    /// Memory that decompressing sync requests may take at once, all requests together.
    pub decode_budget: Arc<http::sync::DecodeMemory>,
    /// Scheduled backups of the SQLite database (`serve --backup-dir`), if any.
    pub backups: Option<backup::Schedule>,
    /// Set once the process is shutting down: `/readyz` answers 503 and live streams end.
    pub draining: Arc<tokio::sync::watch::Sender<bool>>,
    /// How sign-in codes reach phones (`serve --sms`).
    pub sms: Arc<sms::Sms>,
    /// Proxies whose `X-Forwarded-For` names the client (`serve --trusted-proxy`).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// Each organization's assistant model (`triage.rs`).
    pub triage: Arc<triage::Models>,
    /// How often organizations' models are retrained (`serve --triage-retrain-every`), if ever.
    pub triage_retrain_every: Option<std::time::Duration>,
    /// Each organization's knowledge base, searchable (`assistant.rs`).
    pub knowledge: Arc<assistant::Knowledge>,
    /// Conversations with the owner bot that changed in this process: their owner's page and the
    /// desks reload them (`event: conversation` on `GET /api/v1/live`).
    pub conversations: tokio::sync::broadcast::Sender<assistant::ConversationChanged>,
    /// Each organization's surge baseline (`incidents.rs`).
    pub surges: Arc<incidents::Surges>,
    /// Where attachments' bytes go (`serve --blob-dir`); without one, uploads answer 503.
    pub blobs: Option<blobs::Blobs>,
    /// How long an unreferenced blob, or an upload that receives nothing, is kept
    /// (`serve --blob-grace`).
    pub blob_grace: std::time::Duration,
    /// Places for downloads being sent (`http::attachments::MAX_DOWNLOADS`).
    pub downloads: Arc<tokio::sync::Semaphore>,
    /// The uploads receiving bytes in this process (one request at a time each).
    pub uploading: Arc<http::uploads::Uploading>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("db", &self.db.backend()).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(db: Arc<dyn store::Database>, clock: Arc<dyn Clock>) -> Self {
        let (live, _) = tokio::sync::broadcast::channel(1_024);
        let (notified, _) = tokio::sync::broadcast::channel(256);
        AppState {
            db,
            metrics: Arc::new(metrics::Metrics::new()),
            live,
            notified,
            limits: Limits { max_payload_bytes: 64 << 20, max_entries: 20_000, max_item_bytes: 2 << 20 },
            clock,
            desk_writes: Arc::new(http::desk::DeskLocks::default()),
            logins: Arc::new(auth::LoginThrottle::default()),
            decode_budget: Arc::new(http::sync::DecodeMemory::new(http::sync::DECODE_MEMORY_BYTES)),
            backups: None,
            draining: Arc::new(tokio::sync::watch::channel(false).0),
            sms: Arc::new(sms::Sms::default()),
            trusted_proxies: Arc::new(Vec::new()),
            triage: Arc::new(triage::Models::default()),
            triage_retrain_every: None,
            knowledge: Arc::new(assistant::Knowledge::default()),
            conversations: tokio::sync::broadcast::channel(256).0,
            surges: Arc::new(incidents::Surges::default()),
            blobs: None,
            blob_grace: tasks::collector::DEFAULT_GRACE,
            downloads: Arc::new(tokio::sync::Semaphore::new(http::attachments::MAX_DOWNLOADS)),
            uploading: Arc::new(http::uploads::Uploading::default()),
        }
    }
}

/// Makes ring the process's TLS provider (rustls), if none is yet: every HTTP client the
/// server builds (webhooks, text messages, an S3-compatible blob store) calls this first.
pub fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How long a shutdown waits for requests in flight before the process exits anyway.
pub const DRAIN_BOUND: std::time::Duration = std::time::Duration::from_secs(25);

/// Runs the API and metrics listeners until `shutdown` resolves, then drains: the listener
/// closes, `/readyz` answers 503, live streams end, requests in flight finish (their writes
/// committed and acknowledged) for at most [`DRAIN_BOUND`], and the background tasks stop.
pub async fn serve(
    state: AppState,
    api: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics_app = http::metrics_router(state.clone());
    let metrics_task = tokio::spawn(async move { axum::serve(metrics, metrics_app).await });
    let tasks = tasks::Tasks::start(&state);
    let draining = state.draining.clone();
    let mut drained = state.draining.subscribe();
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(api, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining requests in flight");
        draining.send_replace(true);
    });
    let bound = async move {
        let _ = drained.wait_for(|draining| *draining).await;
        tokio::time::sleep(DRAIN_BOUND).await;
    };
    let result = tokio::select! {
        result = server => result,
        () = bound => {
            tracing::warn!(seconds = DRAIN_BOUND.as_secs(), "requests still in flight after the drain bound: exiting");
            Ok(())
        }
    };
    metrics_task.abort();
    tasks.stop();
    result
}
