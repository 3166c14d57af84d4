//! Loopwork's mobile bindings: sync-core for Kotlin (Android), Swift (iOS) and Python, through
//! UniFFI proc-macros.
//!
//! A thin adapter. [`Loopwork`] owns one device's store in a directory and the signed-in
//! session; every rule (lifecycle, field permissions, deadlines, the sync protocol) is
//! sync-core's. The host app supplies HTTP as a [`Transport`] callback, so the platform's own
//! client handles TLS, proxies and background transfer.
//!
//! Threading: every method may be called from any thread. Store access is serialized by one
//! mutex held only for local work (milliseconds); a sync holds it to build a request and to
//! apply a response, never while the transport is waiting on the network.

mod attachments;
mod error;
mod online;
mod orders;
mod session;
mod sync;
mod types;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use loopwork_sync_core::protocol::{CONTENT_TYPE, ErrorFrame, Limits, SyncResponse};
use loopwork_sync_core::sla::{BookJson, SlaBook, book_from_json};
use loopwork_sync_core::store::OrderQuery;
use loopwork_sync_core::store::SqliteStore;
use loopwork_sync_core::sync::{Next, SyncSession};
use loopwork_sync_core::{
    Action, Category, DeviceId, Grade, HoldReason, Identity, Location, NewOrder, OrderId, Replica, Role, SystemClock,
    UserId, timeline,
};

pub use attachments::{AttachmentInfo, UploadObserver, UploadReport, UploadStatus};
pub use error::{LoopworkError, TransportError};
use online::{bearer, header, json_error};
use session::{write_file, write_session};
pub use types::*;

uniffi::setup_scaffolding!();

/// The store file inside the directory an app gives to [`Loopwork::open`].
const STORE_FILE: &str = "loopwork.db";
/// Who is signed in (no password; the bearer token while signed in).
const SESSION_FILE: &str = "session.json";
/// The organization's SLA policies as last fetched.
const SLA_FILE: &str = "sla.json";

/// HTTP, supplied by the host app (OkHttp, URLSession, urllib): sends one request and answers
/// the response with its headers. A transport that cannot reach the server returns
/// `TransportError`; any HTTP status, error or not, is a response. Redirects are not followed.
#[uniffi::export(with_foreign)]
pub trait Transport: Send + Sync {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// Told when orders changed on this device: after a sync brought news (`from_sync`), and after
/// a local edit. Called on the thread that made the change, with no lock held.
#[uniffi::export(with_foreign)]
pub trait ChangeObserver: Send + Sync {
    fn orders_changed(&self, order_ids: Vec<String>, from_sync: bool);
}

/// The session as kept on disk.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedSession {
    info: SessionInfo,
    /// Present while signed in.
    token: Option<String>,
    last_sync_ms: Option<i64>,
}

struct Open {
    saved: SavedSession,
    replica: Replica<SqliteStore>,
    /// The organization's SLA policies as last fetched (the seeded defaults until then).
    sla: SlaBook,
    /// The next request must be a reconciliation (the server did not know our cursor).
    reconcile_next: bool,
}

/// One device's Loopwork: its store and its session.
#[derive(uniffi::Object)]
pub struct Loopwork {
    dir: PathBuf,
    transport: Arc<dyn Transport>,
    state: Mutex<Option<Open>>,
    /// One sync at a time; held across the network, unlike `state`.
    syncing: Mutex<()>,
    observer: Mutex<Option<Arc<dyn ChangeObserver>>>,
    files: attachments::Files,
}

impl std::fmt::Debug for Loopwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loopwork").field("dir", &self.dir).finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct LoginResponse {
    token: String,
    user_id: String,
    role: String,
    org_id: String,
    device_id: String,
}

/// The built-in categories, in display order.
#[uniffi::export]
pub fn built_in_categories() -> Vec<CategoryInfo> {
    Category::BUILT_IN.iter().map(CategoryInfo::from).collect()
}

impl Loopwork {
    fn lock(&self) -> MutexGuard<'_, Option<Open>> {
        // A panic while holding the lock cannot leave the store inconsistent (each write is one
        // transaction), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_replica<T>(
        &self,
        f: impl FnOnce(&mut Replica<SqliteStore>) -> Result<T, LoopworkError>,
    ) -> Result<T, LoopworkError> {
        self.with_open(|open| f(&mut open.replica))
    }

    fn with_open<T>(&self, f: impl FnOnce(&mut Open) -> Result<T, LoopworkError>) -> Result<T, LoopworkError> {
        let mut state = self.lock();
        let open = state.as_mut().ok_or_else(LoopworkError::not_signed_in)?;
        f(open)
    }

    fn edit<T>(
        &self,
        order_id: &str,
        f: impl FnOnce(&mut Replica<SqliteStore>, OrderId) -> Result<T, loopwork_sync_core::CoreError>,
    ) -> Result<T, LoopworkError> {
        let id = parse_order(order_id)?;
        let out = self.with_replica(|replica| Ok(f(replica, id)?))?;
        self.notify(vec![order_id.to_owned()], false);
        Ok(out)
    }

    fn transition(&self, order_id: &str, action: Action, text: Option<String>) -> Result<(), LoopworkError> {
        self.edit(order_id, |r, id| r.transition(id, action, text.as_deref()).map(drop))
    }

    /// The URL of an API path on the signed-in server, and the token.
    fn api(&self, path: &str) -> Result<(String, String), LoopworkError> {
        let state = self.lock();
        let open = state.as_ref().ok_or_else(LoopworkError::not_signed_in)?;
        let token = open.saved.token.clone().ok_or_else(LoopworkError::not_signed_in)?;
        Ok((format!("{}{path}", open.saved.info.server_url), token))
    }

    /// A POST through the host's transport; a transport failure is `Offline`.
    fn post(&self, url: String, headers: Vec<HttpHeader>, body: Vec<u8>) -> Result<HttpResponse, LoopworkError> {
        self.send("POST", url, headers, body).map_err(|e| LoopworkError::Offline { detail: e.to_string() })
    }

    /// A GET through the host's transport; a transport failure is `Offline`.
    fn get(&self, url: String, headers: Vec<HttpHeader>) -> Result<HttpResponse, LoopworkError> {
        self.send("GET", url, headers, Vec::new()).map_err(|e| LoopworkError::Offline { detail: e.to_string() })
    }

    fn send(
        &self,
        method: &str,
        url: String,
        headers: Vec<HttpHeader>,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        self.transport.send(HttpRequest { method: method.to_owned(), url, headers, body })
    }

    fn notify(&self, ids: Vec<String>, from_sync: bool) {
        let observer = self.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(observer) = observer {
            observer.orders_changed(ids, from_sync);
        }
    }
}

fn parse_order(id: &str) -> Result<OrderId, LoopworkError> {
    id.parse().map_err(|_| LoopworkError::invalid(format!("`{}` is not an order id", truncate(id))))
}

fn parse_user(id: &str) -> Result<UserId, LoopworkError> {
    id.parse().map_err(|_| LoopworkError::invalid(format!("`{}` is not a user id", truncate(id))))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
