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

mod error;
mod types;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use loopwork_sync_core::protocol::{CONTENT_TYPE, ErrorFrame, Limits, SyncResponse};
use loopwork_sync_core::sla::{BookJson, SlaBook, book_from_json};
use loopwork_sync_core::store::OrderQuery;
use loopwork_sync_core::store::SqliteStore;
use loopwork_sync_core::sync::MAX_ROUNDS;
use loopwork_sync_core::{
    Action, Category, DeviceId, Grade, HoldReason, Identity, Location, NewOrder, OrderId, Replica, Role, SystemClock,
    UserId, timeline,
};

pub use error::{LoopworkError, TransportError};
pub use types::*;

uniffi::setup_scaffolding!();

/// The store file inside the directory an app gives to [`Loopwork::open`].
const STORE_FILE: &str = "loopwork.db";
/// Who is signed in (no password; the bearer token while signed in).
const SESSION_FILE: &str = "session.json";
/// The organization's SLA policies as last fetched.
const SLA_FILE: &str = "sla.json";

/// HTTP, supplied by the host app (OkHttp, URLSession, urllib). A transport that cannot reach
/// the server returns `TransportError`; any HTTP status, error or not, is a response.
#[uniffi::export(with_foreign)]
pub trait Transport: Send + Sync {
    fn post(&self, url: String, headers: Vec<HttpHeader>, body: Vec<u8>) -> Result<HttpResponse, TransportError>;
    fn get(&self, url: String, headers: Vec<HttpHeader>) -> Result<HttpResponse, TransportError>;
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

#[uniffi::export]
impl Loopwork {
    /// Opens (or creates) the device's data in `dir`, resuming the session kept there.
    #[uniffi::constructor]
    pub fn open(dir: String, transport: Arc<dyn Transport>) -> Result<Arc<Self>, LoopworkError> {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(LoopworkError::storage)?;
        let state = match read_session(&dir)? {
            Some(saved) => Some(open_store(&dir, saved)?),
            None => None,
        };
        Ok(Arc::new(Loopwork {
            dir,
            transport,
            state: Mutex::new(state),
            syncing: Mutex::new(()),
            observer: Mutex::new(None),
        }))
    }

    /// Signs in with a login and password: the server registers this device and gives it a
    /// token. Data kept from an earlier session of the same user is resumed; another user's is
    /// wiped first, unless it still holds changes that were never uploaded (then this fails
    /// and nothing changes).
    pub fn sign_in(
        &self,
        server_url: String,
        login: String,
        password: String,
        device_name: String,
    ) -> Result<SessionInfo, LoopworkError> {
        let server_url = server_url.trim_end_matches('/').to_owned();
        if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
            return Err(LoopworkError::invalid("the server URL starts with http:// or https://"));
        }
        let body = serde_json::json!({ "login": login, "password": password, "device_name": device_name });
        let response = self.post(
            format!("{server_url}/api/v1/login"),
            vec![header("content-type", "application/json"), header("accept", "application/json")],
            body.to_string().into_bytes(),
        )?;
        if response.status != 200 {
            return Err(json_error(&response));
        }
        let login: LoginResponse = serde_json::from_slice(&response.body)
            .map_err(|e| LoopworkError::Offline { detail: format!("unexpected login response: {e}") })?;
        let role = Role::from_code(&login.role).map_err(|_| LoopworkError::UpgradeRequired {
            message_en: format!("unknown role {}", login.role),
            message_zh: "未知角色,请升级应用".into(),
        })?;
        let info =
            SessionInfo { server_url, user_id: login.user_id, role, org_id: login.org_id, device_id: login.device_id };
        let mut state = self.lock();
        let kept = match state.take() {
            Some(open) => Some(open),
            None => read_session(&self.dir)?.map(|saved| open_store(&self.dir, saved)).transpose()?,
        };
        let (last_sync_ms, reconcile_next) = match kept {
            Some(open) if open.saved.info.user_id == info.user_id && open.saved.info.server_url == info.server_url => {
                (open.saved.last_sync_ms, open.reconcile_next)
            }
            Some(open) => {
                let unsent = open.replica.pending_count()?;
                if unsent > 0 {
                    *state = Some(open);
                    return Err(LoopworkError::invalid(format!(
                        "this device holds {unsent} changes of another user that were never uploaded: \
                         sign in as that user and sync, or sign out with wipe"
                    )));
                }
                drop(open);
                wipe_files(&self.dir)?;
                (None, false)
            }
            None => (None, false),
        };
        let saved = SavedSession { info: info.clone(), token: Some(login.token), last_sync_ms };
        write_session(&self.dir, &saved)?;
        let mut open = open_store(&self.dir, saved)?;
        open.reconcile_next = reconcile_next;
        *state = Some(open);
        drop(state);
        // Best effort: the countdowns use the defaults until the next `refresh_settings`.
        let _ = self.refresh_settings();
        Ok(info)
    }

    /// Who is signed in, if anyone.
    pub fn session(&self) -> Option<SessionInfo> {
        self.lock().as_ref().filter(|o| o.saved.token.is_some()).map(|o| o.saved.info.clone())
    }

    /// Signs out. With `wipe`, the device is revoked on the server (best effort) and every local
    /// order, unsent change and the session are deleted. Without it, only the token is
    /// forgotten: the orders stay for the same user's next sign-in.
    pub fn sign_out(&self, wipe: bool) -> Result<(), LoopworkError> {
        let _sync = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.lock();
        if !wipe {
            if let Some(open) = state.as_mut() {
                open.saved.token = None;
                write_session(&self.dir, &open.saved)?;
            }
            return Ok(());
        }
        if let Some(open) = state.take()
            && let Some(token) = &open.saved.token
        {
            let url = format!("{}/api/v1/devices/{}/revoke", open.saved.info.server_url, open.saved.info.device_id);
            // Best effort: a lost network must not keep a user from wiping their phone.
            let _ = self.transport.post(url, vec![bearer(token)], Vec::new());
        }
        wipe_files(&self.dir)
    }

    pub fn set_observer(&self, observer: Option<Arc<dyn ChangeObserver>>) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    // ----- orders -----

    /// Registers a new order on this device; it reaches the server at the next sync.
    pub fn create_order(&self, input: NewOrderInput) -> Result<String, LoopworkError> {
        let id = self.with_replica(|replica| {
            let me = *replica.identity();
            let reporter = match (&input.reporter_id, me.role) {
                (None, Role::Owner) => me.user,
                (Some(id), _) => parse_user(id)?,
                (None, _) => return Err(LoopworkError::invalid("staff registering an order give the owner's user id")),
            };
            let new = NewOrder {
                kind: input.kind,
                category: Category::from_code(&input.category).map_err(|e| LoopworkError::invalid(e.to_string()))?,
                grade: input.grade,
                channel: input.channel,
                location: input.location,
                description: input.description,
                reporter,
                occurred_at_ms: input.occurred_at_ms,
            };
            Ok(replica.create(&new)?.to_string())
        })?;
        self.notify(vec![id.clone()], false);
        Ok(id)
    }

    /// One order, with everything a detail screen shows.
    pub fn get_order(&self, order_id: String) -> Result<OrderDetail, LoopworkError> {
        let id = parse_order(&order_id)?;
        self.with_open(|open| {
            let replica = &mut open.replica;
            let order = replica.order(id)?;
            let state = order.state().map_err(loopwork_sync_core::CoreError::from)?;
            let summary = loopwork_sync_core::OrderSummary::of(&order).map_err(loopwork_sync_core::CoreError::from)?;
            let c = open
                .sla
                .countdown(summary.kind, &summary.category, summary.grade, &state, order.created_at_ms())
                .ok_or_else(|| LoopworkError::storage("the SLA policies match no order"))?;
            let now = replica.now_ms();
            Ok(OrderDetail {
                channel: order.channel().map_err(loopwork_sync_core::CoreError::from)?,
                description: order.description(),
                occurred_at_ms: order.occurred_at_ms(),
                hold_reason: state.hold_reason,
                reopen_count: state.reopen_count,
                rating: state.rating,
                rating_comment: state.rating_comment.clone(),
                auto_confirmed: state.auto_confirmed,
                return_visit_required: state.return_visit_required,
                notes: order
                    .notes()
                    .into_iter()
                    .map(|n| Note { id: n.id, by_user_id: n.by.to_string(), at_ms: n.at_ms, text: n.text })
                    .collect(),
                checklist: order
                    .checklist()
                    .into_iter()
                    .map(|i| ChecklistItem { id: i.id, label: i.label, done: i.done })
                    .collect(),
                parts: order
                    .parts()
                    .into_iter()
                    .map(|p| PartUsed {
                        name: p.name,
                        quantity: p.quantity,
                        by_user_id: p.by.to_string(),
                        at_ms: p.at_ms,
                    })
                    .collect(),
                time_log: order
                    .time_log()
                    .into_iter()
                    .map(|t| TimeEntry { by_user_id: t.by.to_string(), start_ms: t.start_ms, end_ms: t.end_ms })
                    .collect(),
                attachments: order
                    .attachments()
                    .into_iter()
                    .map(|a| Attachment {
                        sha256: a.sha256,
                        mime: a.mime,
                        by_user_id: a.by.to_string(),
                        at_ms: a.at_ms,
                    })
                    .collect(),
                countdown: Countdown {
                    policy: c.policy,
                    response_due_ms: c.response_due_ms,
                    responded_at_ms: c.responded_at_ms,
                    arrival_due_ms: c.arrival_due_ms,
                    arrived_at_ms: c.arrived_at_ms,
                    resolution_due_ms: c.resolution_due_ms,
                    resolved_at_ms: c.resolved_at_ms,
                    paused: c.paused,
                    next_due_ms: c.next_due_ms,
                    remaining_ms: c.next_due_ms.map(|due| due - now),
                },
                read_only_reason: replica.revocation(id)?,
                summary: summary.into(),
            })
        })
    }

    /// A list screen: orders from the local index, most urgent first. Never loads a document.
    pub fn list_orders(&self, filter: ListFilter) -> Result<Vec<OrderSummary>, LoopworkError> {
        self.with_replica(|replica| {
            let me = replica.identity().user;
            let query = OrderQuery {
                assignee: filter.assigned_to_me.then_some(me),
                reporter: filter.reported_by_me.then_some(me),
                statuses: filter.statuses.clone(),
                open_only: filter.open_only,
                project: filter.project.clone(),
                building: filter.building.clone(),
                limit: if filter.limit == 0 { 50 } else { filter.limit.min(10_000) as usize },
            };
            Ok(replica.list(&query)?.into_iter().map(OrderSummary::from).collect())
        })
    }

    /// How many orders this device holds.
    pub fn order_count(&self) -> Result<u64, LoopworkError> {
        self.with_replica(|replica| Ok(replica.order_count()? as u64))
    }

    /// The order's countdown alone (cheaper than `get_order` for a ticking clock).
    pub fn countdown(&self, order_id: String) -> Result<Countdown, LoopworkError> {
        self.get_order(order_id).map(|d| d.countdown)
    }

    /// Every transition, note, part, time entry and attachment, oldest first.
    pub fn timeline(&self, order_id: String) -> Result<Vec<TimelineEntry>, LoopworkError> {
        let id = parse_order(&order_id)?;
        self.with_replica(|replica| {
            let order = replica.order(id)?;
            let entries = timeline::timeline(&order).map_err(loopwork_sync_core::CoreError::from)?;
            Ok(entries.into_iter().map(TimelineEntry::from).collect())
        })
    }

    /// Edits on this order that did not take effect, with the reason to show each: actions the
    /// lifecycle superseded when offline work merged, and changes the server compensated
    /// (`action` is then the fields the change touched, e.g. `grade`).
    pub fn rejected_edits(&self, order_id: String) -> Result<Vec<RejectedEdit>, LoopworkError> {
        let id = parse_order(&order_id)?;
        self.with_replica(|replica| {
            let order = replica.order(id)?;
            let state = order.state().map_err(loopwork_sync_core::CoreError::from)?;
            Ok(loopwork_sync_core::timeline::rejected_edits(&order, &state)
                .into_iter()
                .map(|r| RejectedEdit {
                    action: r.what,
                    by_user_id: r.by.to_string(),
                    at_ms: r.at_ms,
                    reason_code: r.reason_code,
                    message_zh: r.message_zh,
                    message_en: r.message_en,
                })
                .collect())
        })
    }

    // ----- edits: each is one durable local change, checked against the rules first -----

    pub fn set_description(&self, order_id: String, text: String) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_description(id, &text).map(drop))
    }

    pub fn set_grade(&self, order_id: String, grade: Grade) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_grade(id, grade).map(drop))
    }

    pub fn set_category(&self, order_id: String, category: String) -> Result<(), LoopworkError> {
        let category = Category::from_code(&category).map_err(|e| LoopworkError::invalid(e.to_string()))?;
        self.edit(&order_id, |r, id| r.set_category(id, &category).map(drop))
    }

    pub fn set_location(&self, order_id: String, location: Location) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_location(id, &location).map(drop))
    }

    pub fn add_note(&self, order_id: String, text: String) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.add_note(id, &text).map(drop))
    }

    /// Adds a checklist item; returns its id.
    pub fn add_checklist_item(&self, order_id: String, label: String) -> Result<String, LoopworkError> {
        self.edit(&order_id, |r, id| r.add_checklist_item(id, &label))
    }

    pub fn tick_checklist_item(&self, order_id: String, item_id: String, done: bool) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.tick_checklist_item(id, &item_id, done).map(drop))
    }

    pub fn add_part(&self, order_id: String, name: String, quantity: i64) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.add_part(id, &name, quantity).map(drop))
    }

    pub fn log_time(&self, order_id: String, start_ms: i64, end_ms: i64) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.log_time(id, start_ms, end_ms).map(drop))
    }

    /// Attaches a photo or signature by its content hash; the bytes travel separately.
    pub fn attach(&self, order_id: String, sha256_hex: String, mime: String) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.attach(id, &sha256_hex, &mime).map(drop))
    }

    // ----- transitions -----

    /// Dispatches (or reassigns) the order to a technician.
    pub fn assign(&self, order_id: String, technician_id: String) -> Result<(), LoopworkError> {
        let who = parse_user(&technician_id)?;
        self.transition(&order_id, Action::Assign(who), None)
    }

    /// 接单; from 待派单 a technician takes the order themselves (抢单).
    pub fn accept(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Accept, None)
    }

    pub fn arrive(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Arrive, None)
    }

    pub fn start_work(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Start, None)
    }

    pub fn hold(&self, order_id: String, reason: HoldReason, text: Option<String>) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Hold(reason), text)
    }

    pub fn resume(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Resume, None)
    }

    pub fn complete(&self, order_id: String, text: Option<String>) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Complete, text)
    }

    /// The owner confirms completion with a rating of 1 to 5 and an optional comment.
    pub fn confirm(&self, order_id: String, rating: u8, comment: Option<String>) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Confirm { rating }, comment)
    }

    /// The owner rejects completion: the order goes back for rework.
    pub fn reject(&self, order_id: String, reason: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Reject, Some(reason))
    }

    pub fn return_visit(&self, order_id: String, text: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::ReturnVisit, Some(text))
    }

    pub fn close(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Close, None)
    }

    pub fn cancel(&self, order_id: String, reason: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Cancel, Some(reason))
    }

    // ----- settings -----

    /// Fetches the organization's SLA policies, so that countdowns on this phone are the ones
    /// the server enforces, and keeps them for offline use. Call it after signing in and now and
    /// then (daily); until the first call the seeded defaults apply.
    pub fn refresh_settings(&self) -> Result<(), LoopworkError> {
        let (url, token) = self.api("/api/v1/settings/sla")?;
        let response = self
            .transport
            .get(url, vec![bearer(&token), header("accept", "application/json")])
            .map_err(|e| LoopworkError::Offline { detail: e.to_string() })?;
        if response.status != 200 {
            return Err(json_error(&response));
        }
        let json: BookJson = serde_json::from_slice(&response.body)
            .map_err(|e| LoopworkError::Offline { detail: format!("unexpected settings: {e}") })?;
        let book = book_from_json(&json).map_err(|e| LoopworkError::Rejected {
            code: "invalid_sla".into(),
            message_en: e.to_string(),
            message_zh: "服务器返回的时限策略不合规".into(),
        })?;
        write_file(&self.dir, SLA_FILE, &response.body)?;
        if let Some(open) = self.lock().as_mut() {
            open.sla = book;
        }
        Ok(())
    }

    // ----- the owner's contact (online only: it never leaves the server's tables) -----

    /// The owner's name and phone number, masked (`王*`, `138****5678`). Office staff and
    /// technicians who have been given the order.
    pub fn contact(&self, order_id: String) -> Result<Contact, LoopworkError> {
        let id = parse_order(&order_id)?;
        let (url, token) = self.api(&format!("/api/v1/orders/{id}/contact"))?;
        let response = self
            .transport
            .get(url, vec![bearer(&token), header("accept", "application/json")])
            .map_err(|e| LoopworkError::Offline { detail: e.to_string() })?;
        contact_of(&response)
    }

    /// The full phone number, to call the owner: office staff, and the technician the order is
    /// assigned to while it is open. The server logs every reveal.
    pub fn reveal_contact(&self, order_id: String) -> Result<Contact, LoopworkError> {
        let id = parse_order(&order_id)?;
        let (url, token) = self.api(&format!("/api/v1/orders/{id}/contact/reveal"))?;
        let response = self.post(url, vec![bearer(&token), header("accept", "application/json")], Vec::new())?;
        contact_of(&response)
    }

    // ----- sync -----

    /// Pushes local changes and pulls what is new, in as many round trips as it takes. Safe to
    /// call at any time from any thread; a second call waits for the first. If the transport
    /// fails midway, what was already applied stays applied and the next call continues.
    pub fn sync(&self) -> Result<SyncReport, LoopworkError> {
        let _sync = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = SyncReport {
            round_trips: 0,
            acknowledged: 0,
            updated_order_ids: Vec::new(),
            revoked: Vec::new(),
            pending_uploads: 0,
        };
        let mut news: Vec<String> = Vec::new();
        let result = self.sync_rounds(&mut report, &mut news);
        if !news.is_empty() {
            self.notify(news, true);
        }
        result.map(|()| report)
    }

    /// Local changes waiting for upload, the last completed sync, whether signed in.
    pub fn sync_status(&self) -> Result<SyncStatus, LoopworkError> {
        let state = self.lock();
        match state.as_ref() {
            Some(open) => Ok(SyncStatus {
                signed_in: open.saved.token.is_some(),
                pending_uploads: open.replica.pending_count()? as u64,
                last_sync_ms: open.saved.last_sync_ms,
            }),
            None => Ok(SyncStatus { signed_in: false, pending_uploads: 0, last_sync_ms: None }),
        }
    }
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

    fn notify(&self, ids: Vec<String>, from_sync: bool) {
        let observer = self.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(observer) = observer {
            observer.orders_changed(ids, from_sync);
        }
    }

    fn post(&self, url: String, headers: Vec<HttpHeader>, body: Vec<u8>) -> Result<HttpResponse, LoopworkError> {
        self.transport.post(url, headers, body).map_err(|e| LoopworkError::Offline { detail: e.to_string() })
    }

    fn sync_rounds(&self, report: &mut SyncReport, news: &mut Vec<String>) -> Result<(), LoopworkError> {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_ROUNDS {
            // Build the request under the lock, send it without.
            let (url, token, body) = {
                let state = self.lock();
                let open = state.as_ref().ok_or_else(LoopworkError::not_signed_in)?;
                let token = open.saved.token.clone().ok_or_else(LoopworkError::not_signed_in)?;
                let request = if open.reconcile_next {
                    open.replica.reconcile_request()?
                } else {
                    open.replica.sync_request()?
                };
                (format!("{}/sync/v1", open.saved.info.server_url), token, request.encode())
            };
            let response = self.post(url, vec![bearer(&token), header("content-type", CONTENT_TYPE)], body)?;
            report.round_trips += 1;
            if response.status != 200 {
                return Err(self.refusal(&response));
            }
            let decoded = SyncResponse::decode(&response.body, &Limits::default())
                .map_err(|e| LoopworkError::Offline { detail: format!("the response did not arrive whole: {e}") })?;
            let mut state = self.lock();
            let open = state.as_mut().ok_or_else(LoopworkError::not_signed_in)?;
            let outcome = open.replica.apply_sync_response(&decoded)?;
            open.reconcile_next = outcome.reconcile_required;
            report.acknowledged += outcome.acknowledged as u64;
            for id in &outcome.updated {
                if seen.insert(*id) {
                    report.updated_order_ids.push(id.to_string());
                    news.push(id.to_string());
                }
            }
            for r in &outcome.revoked {
                news.push(r.order.to_string());
                report.revoked.push(RevokedOrder { order_id: r.order.to_string(), reason: r.reason.clone() });
            }
            if !outcome.continue_now() {
                open.saved.last_sync_ms = Some(open.replica.now_ms());
                write_session(&self.dir, &open.saved)?;
                report.pending_uploads = open.replica.pending_count()? as u64;
                return Ok(());
            }
        }
        Err(LoopworkError::Offline { detail: format!("the sync did not settle in {MAX_ROUNDS} round trips") })
    }

    /// The error for a non-200 sync response. A refused token signs the device out (its data
    /// stays).
    fn refusal(&self, response: &HttpResponse) -> LoopworkError {
        let frame = ErrorFrame::decode(&response.body).ok();
        match (response.status, frame) {
            (401, frame) => {
                if let Some(open) = self.lock().as_mut() {
                    open.saved.token = None;
                    let _ = write_session(&self.dir, &open.saved);
                }
                LoopworkError::NotSignedIn {
                    detail: frame.map(|f| f.message_en).unwrap_or_else(|| "the server refused the token".into()),
                }
            }
            (426, frame) => LoopworkError::UpgradeRequired {
                message_en: frame.as_ref().map(|f| f.message_en.clone()).unwrap_or_else(|| "upgrade required".into()),
                message_zh: frame.map(|f| f.message_zh).unwrap_or_else(|| "请升级应用".into()),
            },
            (403, Some(f)) => {
                LoopworkError::NotPermitted { code: f.code, message_en: f.message_en, message_zh: f.message_zh }
            }
            (_, Some(f)) => {
                LoopworkError::Rejected { code: f.code, message_en: f.message_en, message_zh: f.message_zh }
            }
            (_, None) => json_error(response),
        }
    }
}

fn contact_of(response: &HttpResponse) -> Result<Contact, LoopworkError> {
    if response.status != 200 {
        return Err(json_error(response));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| LoopworkError::Offline { detail: format!("unexpected contact response: {e}") })
}

/// The error of a JSON endpoint (`{"error": {"code", "message", "message_zh"}}`).
fn json_error(response: &HttpResponse) -> LoopworkError {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        message: String,
        #[serde(default)]
        message_zh: String,
    }
    let parsed = serde_json::from_slice::<Body>(&response.body).ok().map(|b| b.error);
    match (response.status, parsed) {
        (401, parsed) => LoopworkError::NotSignedIn {
            detail: parsed.map(|p| p.message).unwrap_or_else(|| "the server refused the credentials".into()),
        },
        (426, parsed) => LoopworkError::UpgradeRequired {
            message_en: parsed.as_ref().map(|p| p.message.clone()).unwrap_or_else(|| "upgrade required".into()),
            message_zh: parsed.map(|p| p.message_zh).unwrap_or_else(|| "请升级应用".into()),
        },
        (403, Some(p)) => LoopworkError::NotPermitted { code: p.code, message_en: p.message, message_zh: p.message_zh },
        (_, Some(p)) => LoopworkError::Rejected { code: p.code, message_en: p.message, message_zh: p.message_zh },
        // A 5xx without a readable body is the network's or the server's trouble: retry later.
        (status, None) if status >= 500 => {
            LoopworkError::Offline { detail: format!("the server answered HTTP {status}") }
        }
        (status, None) => LoopworkError::Rejected {
            code: format!("http_{status}"),
            message_en: format!("the server answered HTTP {status}"),
            message_zh: format!("服务器返回 HTTP {status}"),
        },
    }
}

fn header(name: &str, value: &str) -> HttpHeader {
    HttpHeader { name: name.into(), value: value.into() }
}

fn bearer(token: &str) -> HttpHeader {
    header("authorization", &format!("Bearer {token}"))
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

fn open_store(dir: &Path, saved: SavedSession) -> Result<Open, LoopworkError> {
    let user: UserId =
        saved.info.user_id.parse().map_err(|_| LoopworkError::storage("the saved session is damaged"))?;
    let device: DeviceId =
        saved.info.device_id.parse().map_err(|_| LoopworkError::storage("the saved session is damaged"))?;
    let store = SqliteStore::open(dir.join(STORE_FILE))?;
    let replica = Replica::new(store, Identity::new(user, saved.info.role, device), SystemClock);
    // Settings that no longer parse (an older or damaged file) fall back to the defaults.
    let sla = std::fs::read(dir.join(SLA_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<BookJson>(&bytes).ok())
        .and_then(|json| book_from_json(&json).ok())
        .unwrap_or_else(SlaBook::defaults);
    Ok(Open { saved, replica, sla, reconcile_next: false })
}

fn read_session(dir: &Path) -> Result<Option<SavedSession>, LoopworkError> {
    match std::fs::read(dir.join(SESSION_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LoopworkError::storage(format!("the saved session is damaged: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LoopworkError::storage(e)),
    }
}

fn write_session(dir: &Path, saved: &SavedSession) -> Result<(), LoopworkError> {
    write_file(dir, SESSION_FILE, &serde_json::to_vec(saved).map_err(LoopworkError::storage)?)
}

/// Writes a file atomically: a new file, synced, renamed over the old one.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LoopworkError> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(LoopworkError::storage)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(LoopworkError::storage)?;
    std::fs::rename(&tmp, dir.join(name)).map_err(LoopworkError::storage)
}

fn wipe_files(dir: &Path) -> Result<(), LoopworkError> {
    for name in
        [SESSION_FILE, STORE_FILE, SLA_FILE, "loopwork.db-wal", "loopwork.db-shm", "session.json.tmp", "sla.json.tmp"]
    {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LoopworkError::storage(e)),
        }
    }
    Ok(())
}
