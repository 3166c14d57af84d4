//! The server's storage: one [`Database`] trait, implemented for SQLite (the embedded default)
//! and PostgreSQL (production, several server replicas). Both run the same SQL (written once,
//! below, with `$N` placeholders both drivers accept) and pass the same suite: every scenario
//! in `tests/tests/sync_e2e.rs` runs on both. Each has its own append-only migrations under
//! `migrations/`.
//!
//! Only this module knows the server's SQL. Domain decisions (may this device write this order,
//! what does a push change) are the pure functions of [`crate::replication`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use automerge::{Change, ChangeHash};
use loopwork_sync_core::authority::{Author, ClosingAuthority};
use loopwork_sync_core::protocol::{OrderBytes, OrderHeads, Receipt, Revocation, SyncResponse};
use loopwork_sync_core::{Action, DeviceId, Grade, Identity, OrderId, Role, Status, UserId, WorkOrder};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row};

use crate::error::ApiError;
use crate::replication::{self, Cursor, DocumentCache, Principal, Scope, StoredOrder};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A user to create (the admin CLI, the demo data, tests).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub org: String,
    pub login: String,
    pub password_hash: String,
    pub role: Role,
    pub display_name: String,
    pub phone: Option<String>,
}

/// A user as login needs it.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: UserId,
    pub org: String,
    pub role: Role,
    pub password_hash: String,
}

/// What a push did.
#[derive(Clone, Debug, Default)]
pub struct PushOutcome {
    /// Every pushed change, now durably stored (new or already known).
    pub acked: Vec<ChangeHash>,
    /// How many changes were new to the server (its own included).
    pub merged: usize,
    /// The newest feed position the push wrote (0 if it wrote nothing new).
    pub feed_seq: i64,
    /// Reason codes of the pushed changes the server compensated.
    pub rejected: Vec<&'static str>,
}

/// One page of what a device should receive.
#[derive(Clone, Debug)]
pub struct PullRequest<'a> {
    pub principal: &'a Principal,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    pub max_bytes: usize,
    pub reconcile: &'a [OrderHeads],
    /// Changes the device pushed in this same request: not echoed back to it.
    pub just_pushed: &'a [ChangeHash],
}

/// An order's row as the writer reads it (`SELECT {STORED_ROW}` from `orders o` and a
/// `VALUES` list `v (id, usr)` naming the pushing user).
#[derive(Debug, sqlx::FromRow)]
struct StoredRow {
    id: String,
    org_id: String,
    last_seq: i64,
    assignee: Option<String>,
    reporter: String,
    project: String,
    building: Option<String>,
    unit: Option<String>,
    status: String,
    number: String,
    kind: String,
    category: String,
    grade: String,
    area: Option<String>,
    /// How many of the order's feed changes follow its stored snapshot.
    tail_changes: i32,
    /// Whether the pushing user was ever given the order.
    given: bool,
    /// Whether the order's project is one the pushing user serves (`staff_projects`).
    serves: bool,
}

/// The columns of a [`StoredRow`].
const STORED_ROW: &str = "o.id, o.org_id, o.last_seq, o.assignee, o.reporter, o.project, o.building, o.unit, o.status,
    o.number, o.kind, o.category, o.grade, o.area, o.tail_changes,
    EXISTS (SELECT 1 FROM order_access a WHERE a.order_id = o.id AND a.user_id = v.usr) AS given,
    EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = v.usr AND s.project = o.project) AS serves";

/// An order's stored document as [`DOC_COLUMNS`] read it: the snapshot, the feed position it
/// holds the order's changes up to, and how many of the order's changes were logged after it
/// (its tail; 0 when the snapshot is whole).
type StoredDoc = (Vec<u8>, Option<i64>, i32);

/// An order's id followed by its [`StoredDoc`], as `SELECT id, {DOC_COLUMNS}` reads it.
type StoredDocRow = (String, Vec<u8>, Option<i64>, i32);

/// The columns of `orders` that make a [`StoredDoc`], in its order.
const DOC_COLUMNS: &str = "doc, doc_seq, tail_changes";

/// A [`StoredDocRow`] followed by its snapshot's heads (`doc_heads`, `NULL` in rows written
/// before heads were kept), as `SELECT id, {VOUCHED_DOC_COLUMNS}` reads it.
type VouchedDocRow = (String, Vec<u8>, Option<i64>, i32, Option<Vec<u8>>);

/// The columns of a [`VouchedDocRow`] after its id.
const VOUCHED_DOC_COLUMNS: &str = "doc, doc_seq, tail_changes, doc_heads";

/// An order's heads as `doc_heads` keeps them: the 32-byte hashes one after the other.
fn heads_blob(order: &WorkOrder) -> Vec<u8> {
    order.heads().iter().flat_map(|h| h.as_ref().to_vec()).collect()
}

fn heads_from_blob(blob: &[u8]) -> Vec<ChangeHash> {
    blob.chunks_exact(32).filter_map(|h| ChangeHash::try_from(h).ok()).collect()
}

/// An order's feed position, assignee and stored document ([`DOC_COLUMNS`]) by id ($1) within
/// an organization ($2).
fn committed_order_query() -> String {
    format!("SELECT last_seq, assignee, {DOC_COLUMNS} FROM orders WHERE id = $1 AND org_id = $2")
}

/// The device, user, role and organization of a bearer token's hash ($1), and whether the user
/// is a dispatcher bound to projects: nothing if the device is revoked or the user disabled.
const PRINCIPAL_BY_TOKEN: &str = "SELECT d.id, u.id, u.role, u.org_id,
        u.role = 'dispatcher' AND EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = u.id)
     FROM devices d JOIN users u ON u.id = d.user_id
     WHERE d.token_hash = $1 AND d.revoked_at IS NULL AND u.disabled_at IS NULL";

/// How many logged changes may follow an order's snapshot before the writer folds them into a
/// new one. A note appends one feed row instead of rewriting the whole document; every reader
/// of the whole document reads the tail from the feed.
const TAIL_MAX: i32 = 32;

/// The columns of an order's row that a push may change besides its document and feed
/// position: when none changed and no transition came, the writer rewrites only those two and
/// the deadline scanner need not look at the order again.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    number: String,
    kind: String,
    category: String,
    grade: String,
    status: String,
    assignee: Option<String>,
    project: String,
    building: Option<String>,
    unit: Option<String>,
    area: Option<String>,
}

impl Listed {
    fn of_row(r: &StoredRow) -> Listed {
        Listed {
            number: r.number.clone(),
            kind: r.kind.clone(),
            category: r.category.clone(),
            grade: r.grade.clone(),
            status: r.status.clone(),
            assignee: r.assignee.clone(),
            project: r.project.clone(),
            building: r.building.clone(),
            unit: r.unit.clone(),
            area: r.area.clone(),
        }
    }

    fn of_summary(s: &loopwork_sync_core::OrderSummary) -> Listed {
        Listed {
            number: s.number.clone(),
            kind: s.kind.code().to_owned(),
            category: s.category.code(),
            grade: s.grade.code().to_owned(),
            status: s.status.code().to_owned(),
            assignee: s.assignee.map(|a| a.to_string()),
            project: s.location.project.clone(),
            building: s.location.building.clone(),
            unit: s.location.unit.clone(),
            area: s.location.area.clone(),
        }
    }
}

/// An order the escalation scanner must look at.
#[derive(Clone, Debug)]
pub struct CheckDue {
    pub org: String,
    pub order: OrderId,
    pub doc: Vec<u8>,
    pub next_check: i64,
}

/// What one scan found for one order (see [`Database::record_checks`]).
#[derive(Clone, Debug)]
pub struct CheckRecord {
    pub due: CheckDue,
    pub fired: Vec<Fired>,
    pub facts: OrderFacts,
    pub next_check: Option<i64>,
}

/// A checkpoint that fired, and whom it concerns: the order's assignee (if any) and everyone of
/// these roles in the organization.
#[derive(Clone, Debug)]
pub struct Fired {
    pub stage: &'static str,
    pub level: &'static str,
    pub at_ms: i64,
    pub due_ms: i64,
    pub assignee: Option<String>,
    pub roles: Vec<Role>,
}

/// What the scanner materializes from an order's document and its organization's SLA book: the
/// queue's colours (the checkpoints of the most urgent unmet stage) on `orders`, and the row the
/// dashboards count in `order_facts`. Times are device claims clamped as for deadlines
/// (docs/deadlines.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFacts {
    pub sla_stage: Option<&'static str>,
    pub sla_half_at: Option<i64>,
    pub sla_warn_at: Option<i64>,
    pub sla_due_at: Option<i64>,
    pub project: String,
    pub building: Option<String>,
    pub kind: &'static str,
    pub category: String,
    pub grade: &'static str,
    pub status: &'static str,
    pub is_open: bool,
    pub assignee: Option<String>,
    pub created_at: i64,
    /// Hour of the week the order was created, Monday 00:00 = 0, China Standard Time.
    pub created_how: i64,
    pub assigned_at: Option<i64>,
    pub accepted_at: Option<i64>,
    pub arrived_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// When the loop closed: the owner's confirmation, the automatic one, or the close.
    pub finished_at: Option<i64>,
    pub rating: Option<i64>,
    pub reopen_count: i64,
    pub auto_confirmed: bool,
    /// Who recorded the return visit.
    pub visited_by: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SlaEventRecord {
    pub stage: String,
    pub level: String,
    pub at_ms: i64,
    pub due_ms: i64,
    pub fired_at_ms: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotificationRecord {
    pub id: String,
    pub order_id: String,
    pub stage: String,
    pub level: String,
    pub due_ms: i64,
    pub created_at_ms: i64,
    pub read_at_ms: Option<i64>,
}

/// An organization's webhook endpoint (its secret is shown once, when it is created).
#[derive(Clone, Debug, Serialize)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    pub created_at_ms: i64,
}

/// A delivery waiting in the outbox.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: String,
    /// The organization whose webhook it is (its destination settings apply).
    pub org: String,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

/// How many days an order waits for its owner's confirmation before the server confirms for
/// them, unless the organization sets otherwise.
pub const DEFAULT_AUTO_CONFIRM_DAYS: i64 = 3;

/// Where an order's changes came from, for its audit trail: the document, and per change hash
/// when the server received it and from which device (and that device's user and role; none
/// for the server's own changes).
#[derive(Clone, Debug)]
pub struct AuditSources {
    pub doc: Vec<u8>,
    pub received: HashMap<Vec<u8>, Received>,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub at_ms: i64,
    pub device: Option<String>,
    pub user: Option<String>,
    pub role: Option<String>,
}

/// The owner behind an order, and what decides who may see their contact.
#[derive(Clone, Debug)]
pub struct ContactSource {
    pub reporter: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub assignee: Option<String>,
    pub is_open: bool,
    /// The principal (a technician) has ever been given the order.
    pub ever_given: bool,
}

/// One time someone saw an owner's full phone number.
#[derive(Clone, Debug, Serialize)]
pub struct RevealRecord {
    pub user_id: String,
    pub device_id: String,
    pub revealed_at_ms: i64,
}

/// An order as lists show it (JSON).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct OrderListItem {
    pub id: String,
    pub number: String,
    pub kind: String,
    pub category: String,
    pub grade: String,
    pub status: String,
    pub assignee: Option<String>,
    /// The assignee's display name (staff names are not personal data of owners).
    pub assignee_name: Option<String>,
    pub project: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
    pub created_at: i64,
    pub next_deadline: Option<i64>,
    /// The most urgent unmet stage's checkpoints under the organization's SLA book (what the
    /// queue colours by); `None` when nothing is owed or the scanner has not looked yet.
    pub sla: Option<SlaMarks>,
    pub rating: Option<i64>,
    pub reopen_count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlaMarks {
    pub stage: String,
    pub half_at: Option<i64>,
    pub warn_at: Option<i64>,
    pub due_at: i64,
}

/// The queue's filters (`GET /api/v1/orders`); every one optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderFilter {
    /// A status code, or `open` for every open status.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub grade: Option<String>,
    pub category: Option<String>,
    pub project: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub assignee: Option<String>,
    /// Open orders whose current stage is past its deadline.
    #[serde(default)]
    pub overdue: bool,
    /// Part of the number or of the unit.
    pub q: Option<String>,
    /// Created at or after (ms).
    pub from: Option<i64>,
    /// Created before (ms).
    pub to: Option<i64>,
    /// Created in this hour of the week (Monday 00:00 = 0, China Standard Time).
    pub hour_of_week: Option<i64>,
    pub limit: Option<i64>,
    /// One order (the detail view reads its row through the same query).
    #[serde(skip)]
    pub id: Option<String>,
}

/// The signed-in user as the pages show them.
#[derive(Clone, Debug, Serialize)]
pub struct MeRecord {
    pub name: String,
    pub units: Vec<UnitRef>,
    pub projects: Vec<ProjectRef>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnitRef {
    pub project: String,
    pub building: String,
    pub unit: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProjectRef {
    pub code: String,
    pub name: String,
}

/// A technician as the assignment picker shows them.
#[derive(Clone, Debug, Serialize)]
pub struct TechnicianLoad {
    pub user_id: String,
    pub name: String,
    pub open_orders: i64,
    pub last_seen_at: Option<i64>,
}

/// The period and project a dashboard counts: orders created in `[from, to)`.
#[derive(Clone, Debug)]
pub struct Period {
    pub project: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// Counts over a period's orders (cancelled ones left out), for the efficiency dashboard.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EfficiencyCounts {
    pub orders: i64,
    pub breached: i64,
    pub completed: i64,
    pub fixed_first_time: i64,
    pub reworked: i64,
    pub rated: i64,
    pub rating_sum: i64,
    pub rated_4_or_more: i64,
}

/// How many orders took each whole number of minutes, ascending: a duration's distribution read
/// in one pass of the period, however many orders it holds.
pub type Histogram = Vec<(i64, i64)>;

/// Minutes from creation to each milestone, of the period's orders that reached it.
#[derive(Clone, Debug, Default)]
pub struct MilestoneDurations {
    pub response: Histogram,
    pub arrival: Histogram,
    pub resolution: Histogram,
}

/// Open orders now, counted three ways.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    /// (bucket, count): `lt_1d`, `1_3d`, `3_7d`, `gt_7d`.
    pub by_age: Vec<(String, i64)>,
    /// (user id, name, count); unassigned orders under `None`.
    pub by_technician: Vec<(Option<String>, Option<String>, i64)>,
    pub by_grade: Vec<(String, i64)>,
}

/// One person's figures over a period, for the KPIs.
#[derive(Clone, Debug, Default)]
pub struct StaffCounts {
    pub user_id: String,
    pub name: String,
    pub role: String,
    /// Orders assigned to them (technicians) or registered by them (customer service).
    pub orders: i64,
    pub completed: i64,
    pub accepted: i64,
    pub accepted_on_time: i64,
    pub completed_on_time: i64,
    pub reworked: i64,
    pub rated: i64,
    pub rating_sum: i64,
    pub return_visits: i64,
    /// Minutes from creation to assignment of the orders they registered.
    pub assign_minutes: Histogram,
}

#[async_trait]
pub trait Database: Send + Sync + std::fmt::Debug + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Identifies this database: cursors from another (or a restored) database are unknown.
    async fn epoch(&self) -> Result<String>;
    /// The server's own device: the actor of its changes (official numbers, compensations).
    /// Each server process has its own.
    async fn server_identity(&self) -> Result<Identity>;
    /// Who an actor is: a device of the organization (its user and role) or one of the server's
    /// own actors (the server's identity under that actor); `None` for anyone else. A relayed
    /// change is judged as this author.
    async fn actor_author(&self, org: &str, actor: &automerge::ActorId) -> Result<Option<Identity>>;
    /// The database's secret, which keys the server's receipts (see `replication::receipt`).
    fn receipt_secret(&self) -> &str;
    /// Sets an order aside whose stored history does not load (see migration 0015/0016), and
    /// counts it in [`Self::quarantined_here`]. Whether it was not quarantined before.
    async fn quarantine(&self, org: &str, order: OrderId, reason: &str, now_ms: i64) -> Result<bool>;
    /// An order's stored document, loaded. One that does not load is quarantined (set aside
    /// from every device's scope, counted, logged by id) and answered 409 `order_quarantined`:
    /// every reader of stored documents loads them through this, so that a damaged order is
    /// never a 500 again and again.
    async fn load_stored(&self, org: &str, order: OrderId, doc: &[u8]) -> Result<WorkOrder>;
    /// How many orders this process has quarantined (`orders_quarantined_total`).
    fn quarantined_here(&self) -> u64;
    /// Whether an order of the organization is quarantined.
    async fn is_quarantined(&self, org: &str, order: OrderId) -> Result<bool>;
    /// Checks orders stored before their snapshot's heads were kept (`doc_heads IS NULL`), at
    /// most `limit` of them: each that loads whole gets its heads, each that does not is
    /// quarantined. Returns (checked, quarantined); a start-up task calls it until nothing is left.
    async fn check_stored(&self, limit: i64, now_ms: i64) -> Result<(usize, Vec<OrderId>)>;
    async fn has_organizations(&self) -> Result<bool>;
    async fn create_organization(&self, name: &str, now_ms: i64) -> Result<String>;
    async fn create_project(&self, org: &str, code: &str, name: &str) -> Result<()>;
    async fn has_project(&self, org: &str, code: &str) -> Result<bool>;
    async fn create_user(&self, user: &NewUser, now_ms: i64) -> Result<UserId>;
    async fn bind_unit(&self, user: UserId, project: &str, building: &str, unit: &str) -> Result<()>;
    /// Binds a dispatcher to a project of their organization, which they then serve (with any
    /// others they are bound to) instead of the whole organization.
    async fn bind_project(&self, user: UserId, project: &str) -> Result<()>;
    /// The projects a dispatcher bound to projects serves; `None` for everyone whose scope is
    /// not a set of projects.
    async fn served_projects(&self, principal: &Principal) -> Result<Option<Vec<String>>>;
    /// Whether the order is one the principal's scope holds.
    async fn order_in_scope(&self, principal: &Principal, order: OrderId) -> Result<bool>;
    async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>>;
    async fn register_device(&self, user: &UserRecord, name: &str, token_hash: &str, now_ms: i64) -> Result<DeviceId>;
    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>>;
    /// Revokes a device of the organization; its next request is refused.
    async fn revoke_device(&self, org: &str, device: DeviceId, now_ms: i64) -> Result<bool>;
    /// Stores pushed changes (already parsed and attributed), all or nothing.
    async fn push(
        &self,
        principal: &Principal,
        groups: &[(OrderId, Vec<Change>)],
        relayed_authors: &[Identity],
        now_ms: i64,
    ) -> Result<PushOutcome>;
    /// What the device receives next (the `acked` field is left empty).
    async fn pull(&self, request: PullRequest<'_>) -> Result<SyncResponse>;
    /// The newest position in the organization's feed.
    async fn latest_seq(&self, org: &str) -> Result<i64>;
    /// An order of the organization with where each of its changes came from; `None` if the
    /// organization has no such order.
    async fn audit_sources(&self, org: &str, order: OrderId) -> Result<Option<AuditSources>>;
    /// The owner behind an order of the organization, for contact masking and reveals.
    async fn order_contact(&self, principal: &Principal, order: OrderId) -> Result<Option<ContactSource>>;
    async fn log_reveal(&self, principal: &Principal, order: OrderId, now_ms: i64) -> Result<()>;
    async fn reveals(&self, org: &str, order: OrderId) -> Result<Vec<RevealRecord>>;
    /// Everything the server holds about a user, for their export (JSON).
    async fn export_user(&self, principal: &Principal) -> Result<serde_json::Value>;
    /// Erases a user's personal data (name, phone, login, unit bindings) and revokes their
    /// devices; their orders keep only their id, as documents always did.
    async fn erase_user(&self, principal: &Principal, now_ms: i64) -> Result<()>;
    /// The clamped device times of an order's transitions (entry id → accepted time).
    async fn clamped_times(&self, order: OrderId) -> Result<HashMap<String, i64>>;
    /// Orders (organization, id) that have awaited their owner's confirmation longer than their
    /// organization allows at `now_ms`, oldest first.
    async fn awaiting_due(&self, now_ms: i64, limit: i64) -> Result<Vec<(String, OrderId)>>;
    /// The server acts on an order (auto-confirmation): written only if, merged with whatever
    /// the order holds by then, it produces `expect`. Whether it was written.
    async fn server_action(
        &self,
        org: &str,
        order: OrderId,
        action: Action,
        expect: Status,
        now_ms: i64,
    ) -> Result<bool>;
    async fn auto_confirm_days(&self, org: &str) -> Result<i64>;
    /// A setting of the organization as stored (JSON), if it set one (`org_settings`).
    async fn org_setting(&self, org: &str, name: &str) -> Result<Option<String>>;
    async fn set_org_setting(&self, org: &str, name: &str, value: &str) -> Result<()>;
    /// The organization's SLA book as stored (JSON), if it set one.
    async fn sla_book(&self, org: &str) -> Result<Option<String>>;
    /// Stores the organization's SLA book and has the scanner look at every open order again.
    async fn set_sla_book(&self, org: &str, book: &str) -> Result<()>;
    async fn set_auto_confirm_days(&self, org: &str, days: i64) -> Result<()>;
    /// Orders of the organization in these states, with their documents.
    /// Orders of the principal's scope in these statuses, whole, oldest first (at most `limit`
    /// per status).
    async fn orders_in_status(
        &self,
        principal: &Principal,
        statuses: &[Status],
        limit: i64,
    ) -> Result<Vec<(OrderId, Vec<u8>)>>;
    /// Open orders the escalation scanner must look at by `now_ms` (org, id, document, the
    /// `next_check` it was read at), soonest first.
    async fn checks_due(&self, now_ms: i64, limit: i64) -> Result<Vec<CheckDue>>;
    /// For each looked-at order, in one transaction: records the checkpoints that fired (once
    /// each: an existing record wins) with a notification for each recipient role, and, unless a
    /// push moved the order's next check since it was read, sets it and the order's facts.
    /// Returns, per order, the indexes (into its `fired`) of the checkpoints this call recorded.
    async fn record_checks(&self, checks: &[CheckRecord], now_ms: i64) -> Result<Vec<Vec<usize>>>;
    async fn sla_events(&self, org: &str, order: OrderId) -> Result<Vec<SlaEventRecord>>;
    async fn notifications(&self, principal: &Principal, limit: i64) -> Result<Vec<NotificationRecord>>;
    async fn mark_read(&self, principal: &Principal, id: &str, now_ms: i64) -> Result<bool>;
    async fn create_webhook(&self, org: &str, url: &str, secret: &str, now_ms: i64) -> Result<String>;
    async fn webhooks(&self, org: &str) -> Result<Vec<WebhookRecord>>;
    async fn delete_webhook(&self, org: &str, id: &str, now_ms: i64) -> Result<bool>;
    /// Deliveries due by `now_ms`, oldest first.
    async fn outbox_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>>;
    /// Takes a delivery for this process until `until_ms`, if nobody else took it since it was
    /// read (several server processes deliver from one outbox).
    async fn claim_delivery(&self, row: &OutboxRow, until_ms: i64) -> Result<bool>;
    /// Records an attempt: delivered, or failed with the next attempt's time (`None`: given up).
    async fn finish_delivery(
        &self,
        id: &str,
        delivered_at: Option<i64>,
        next_attempt_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<()>;
    /// Who may close an order of each grade in the organization.
    async fn closing_authority(&self, org: &str) -> Result<ClosingAuthority>;
    async fn set_closing_authority(&self, org: &str, closing: &ClosingAuthority) -> Result<()>;
    /// An order's document, if it is in the principal's scope.
    async fn order_doc(&self, principal: &Principal, order: OrderId) -> Result<Option<Vec<u8>>>;
    /// The queue: orders in the principal's scope matching the filter, most urgent first.
    async fn query_orders(
        &self,
        principal: &Principal,
        filter: &OrderFilter,
        now_ms: i64,
    ) -> Result<Vec<OrderListItem>>;
    /// Open orders of the same unit and category created since `since_ms` (duplicates).
    async fn possible_duplicates(
        &self,
        principal: &Principal,
        location: &loopwork_sync_core::Location,
        category: &str,
        since_ms: i64,
        except: OrderId,
    ) -> Result<Vec<OrderListItem>>;
    async fn me(&self, principal: &Principal) -> Result<MeRecord>;
    async fn technicians(&self, org: &str) -> Result<Vec<TechnicianLoad>>;
    /// Whether the user is an active technician of the organization.
    async fn is_technician(&self, org: &str, user: UserId) -> Result<bool>;
    /// Display names of the organization's staff (never owners') by user id.
    async fn staff_names(&self, org: &str) -> Result<HashMap<String, String>>;
    /// The owner an order registered by phone is for: the owner of the unit with this phone,
    /// else the unit's first owner.
    async fn owner_of_unit(
        &self,
        org: &str,
        location: &loopwork_sync_core::Location,
        phone: Option<&str>,
    ) -> Result<Option<UserId>>;
    /// The caller of an order registered by phone (personal data: only `privacy.rs` reads it).
    async fn save_caller(
        &self,
        org: &str,
        order: OrderId,
        name: Option<&str>,
        phone: Option<&str>,
        now_ms: i64,
    ) -> Result<()>;
    async fn caller(&self, org: &str, order: OrderId) -> Result<Option<(Option<String>, Option<String>)>>;
    async fn efficiency(&self, org: &str, period: &Period) -> Result<(EfficiencyCounts, MilestoneDurations)>;
    async fn backlog(&self, org: &str, project: Option<&str>, now_ms: i64) -> Result<Backlog>;
    /// Complaint (or `kind`) counts by (building, category) and by hour of the week.
    async fn heatmap(
        &self,
        org: &str,
        period: &Period,
        kind: Option<&str>,
    ) -> Result<(Vec<(String, String, i64)>, Vec<(i64, i64)>)>;
    async fn staff_counts(&self, org: &str, period: &Period) -> Result<Vec<StaffCounts>>;
    /// Gets a server ready for its first requests (see `prewarm` and `warm_connections`):
    /// called once, before it listens; the admin commands do without.
    async fn warm(&self);
    /// Closes every connection (shutdown, tests that restart the server).
    async fn close(&self);
    /// Organizations whose feed another server process advanced (PostgreSQL: `LISTEN`), so
    /// that this process can tell its live listeners. `None` where there is only one process.
    fn other_servers_advanced(&self) -> Option<tokio::sync::broadcast::Receiver<Announced>> {
        None
    }
}

/// Opens the database a URL names: `postgres://…` or `sqlite://…` (created if missing).
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Database>, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(Postgres::open(url).await.map_err(|e| e.to_string())?))
    } else if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(Sqlite::open(url).await.map_err(|e| e.to_string())?))
    } else {
        Err(format!("unsupported database URL (use sqlite:… or postgres://…): {}", url.split(':').next().unwrap_or("")))
    }
}

/// A feed advance another server process announced: the organization, and its newest
/// position when the announcement carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    pub org: String,
    pub seq: Option<i64>,
}

impl Announced {
    /// The notification's text: `<seq> <announcing process's actor> <org>`, as the writer's
    /// `finish_batch` statement composes it.
    #[cfg(test)]
    fn payload(&self, by: DeviceId) -> String {
        format!("{} {by} {}", self.seq.unwrap_or(0), self.org)
    }

    /// Reads a notification, and which process sent it. A payload of another form (a bare
    /// organization, as servers before positions were announced sent) names the organization.
    fn parse(payload: &str) -> (Announced, Option<DeviceId>) {
        let mut parts = payload.splitn(3, ' ');
        if let (Some(seq), Some(by), Some(org)) = (parts.next(), parts.next(), parts.next())
            && let (Ok(seq), Ok(by)) = (seq.parse::<i64>(), by.parse::<DeviceId>())
        {
            return (Announced { org: org.to_owned(), seq: Some(seq) }, Some(by));
        }
        (Announced { org: payload.to_owned(), seq: None }, None)
    }
}

/// One push waiting for the writer.
#[derive(Debug)]
struct PushJob {
    principal: Principal,
    groups: Vec<(OrderId, Vec<Change>)>,
    /// The true authors of changes relayed in the push (verified by their receipts), judged
    /// each as themselves.
    relayed_authors: Vec<Identity>,
    /// Per group, the merge a request handler already did against a cached document (in
    /// parallel with other handlers); the writer uses it only if the order's feed position is
    /// still the one merged against, and merges again itself otherwise.
    premerged: Vec<Option<Premerged>>,
    /// The organization's closing authority the premerges were judged with.
    closing: ClosingAuthority,
    /// For the server's own actions: the status the action must produce once merged, else the
    /// order is left as it is (another server, or a device, got there first).
    expect: Option<Status>,
    now_ms: i64,
    reply: tokio::sync::oneshot::Sender<Result<PushOutcome>>,
}

#[derive(Debug)]
struct Premerged {
    at_seq: i64,
    merged: replication::Merged,
    /// The merged document saved, when the push brings a transition (the writer then rewrites
    /// the order's snapshot); other pushes usually append to its tail and need no save.
    saved: Option<Vec<u8>>,
}

/// The writer's cache of merged documents, which request handlers read to merge ahead.
type SharedCache = std::sync::Arc<std::sync::Mutex<DocumentCache>>;

fn lock(cache: &SharedCache) -> std::sync::MutexGuard<'_, DocumentCache> {
    cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Pushes that arrive together are written in one transaction (group commit): one commit, one
/// fsync, for up to this many; each push in its own savepoint, so one refused push leaves the
/// others whole. Acknowledgements go out only after the commit.
const GROUP_COMMIT_MAX: usize = 128;

/// Documents the writer keeps loaded (about 20 KiB each): more than the orders a busy day's
/// technicians work on (200 with 20 open orders each are 4,000). With fewer, a technician coming
/// back to an order often found it let go, and its push loaded it again.
const CACHED_DOCUMENTS: usize = 5_000;

/// An order merged in the current batch: cached once the batch commits.
type Staged = (OrderId, i64, WorkOrder, Option<UserId>);

/// One push as the writer tries it.
struct Attempt {
    /// The order's row, when the writer read it ahead with others (`Some(None)`: no such order).
    read_ahead: Option<Option<StoredRow>>,
    /// Whether the push wrote anything before it failed.
    wrote: bool,
    /// A push read ahead that changes nothing the order's row lists (a note, parts, time, a
    /// photo): its rows are left to the end of the batch, where every such push's feed rows and
    /// order positions are written together, one statement per table.
    deferred: Option<Deferred>,
}

/// The writes a push left to the end of its batch (see [`Attempt::deferred`]).
struct Deferred {
    id: OrderId,
    org: String,
    /// The changes to log, in causal order, each with the device it is attributed to.
    changes: Vec<(ChangeHash, Vec<u8>, DeviceId)>,
    received_at: i64,
    tail_before: i32,
    order: WorkOrder,
    assignee: Option<UserId>,
}

/// A deferred push once written: its order's new feed position and how many changes it logged.
struct Written {
    last_seq: i64,
    merged: usize,
}

/// What never changes while a process runs: read once at open.
#[derive(Clone, Debug)]
struct Fixed {
    epoch: String,
    secret: String,
    server: Identity,
    /// Orders this process has quarantined.
    quarantined: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// SQLite: one server process; one writer task, readers beside it (WAL).
#[derive(Debug)]
pub struct Sqlite {
    pool: SqlitePool,
    fixed: Fixed,
    writer: tokio::sync::mpsc::Sender<PushJob>,
    cache: SharedCache,
}

impl Sqlite {
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let fixed = Self::init_meta(&pool).await.map_err(|e| sqlx::Error::Protocol(e.message_en))?;
        let (writer, jobs) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
        let cache: SharedCache = std::sync::Arc::new(std::sync::Mutex::new(DocumentCache::new(CACHED_DOCUMENTS)));
        tokio::spawn(Self::run_writer(pool.clone(), fixed.server, cache.clone(), jobs));
        Ok(Sqlite { pool, fixed, writer, cache })
    }

    /// SQLite prepares a statement in the process, at little cost: nothing to warm.
    async fn warm_connections(_pool: &SqlitePool) {}

    /// One process writes: nothing to lock, and the closing authority is read with the pushes.
    async fn lock_org(
        _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        _org: &str,
    ) -> Result<Option<Vec<(String, String)>>> {
        Ok(None)
    }

    /// A write transaction takes SQLite's write lock at once (waiting up to the busy timeout):
    /// a deferred one that reads first could not upgrade if another connection (the scanner,
    /// a login) wrote in between, and would fail instead of waiting.
    async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// [`Self::begin_write`] on the writer's own connection.
    async fn begin_writer(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    ) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        Ok(sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?)
    }

    /// Each device's last sync, one statement for the batch.
    async fn touch(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, now_ms: i64, devices: &[String]) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let list = (0..devices.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!("UPDATE devices SET last_sync_at = $1 WHERE id IN ({list})");
        let mut update = sqlx::query(AssertSqlSafe(sql)).bind(now_ms);
        for device in devices {
            update = update.bind(device);
        }
        update.execute(&mut **tx).await?;
        Ok(())
    }

    /// Writes the batch's deferred pushes: their feed rows in one statement (per 400
    /// rows), then their orders' feed positions and tails in one statement (per 400
    /// orders); an order whose tail grows too long gets a new snapshot instead. Feed rows
    /// take their positions in the order given, so each order's changes stay in causal
    /// order. The answers are in the order of `deferred`.
    async fn write_deferred(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        deferred: &[(usize, Deferred)],
    ) -> Result<Vec<Written>> {
        let rows: Vec<(&Deferred, &ChangeHash, &Vec<u8>, DeviceId)> = deferred
            .iter()
            .flat_map(|(_, d)| d.changes.iter().map(move |(hash, bytes, device)| (d, hash, bytes, *device)))
            .collect();
        // Per order: changes logged, newest position.
        let mut logged: HashMap<String, (i32, i64)> = HashMap::new();
        for chunk in rows.chunks(400) {
            let values = (0..chunk.len())
                .map(|i| {
                    let b = 6 * i;
                    format!("(${}, ${}, 'change', ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6)
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at) VALUES {values}
                 ON CONFLICT DO NOTHING RETURNING order_id, seq"
            );
            let mut insert = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql));
            for (d, hash, bytes, device) in chunk {
                insert = insert
                    .bind(&d.org)
                    .bind(d.id.to_string())
                    .bind(hash.as_ref())
                    .bind(bytes.as_slice())
                    .bind(device.to_string())
                    .bind(d.received_at);
            }
            for (order, seq) in insert.fetch_all(&mut **tx).await? {
                let entry = logged.entry(order).or_default();
                entry.0 += 1;
                entry.1 = entry.1.max(seq);
            }
        }
        let mut written = Vec::with_capacity(deferred.len());
        let mut positions: Vec<(String, i32, i64)> = Vec::new();
        for (_, d) in deferred {
            let order_id = d.id.to_string();
            let (appended, mut last_seq) = logged.get(&order_id).copied().unwrap_or_default();
            if last_seq == 0 {
                last_seq = Self::newest_position(tx, &order_id).await?;
            }
            if d.tail_before + appended <= TAIL_MAX {
                positions.push((order_id, appended, last_seq));
            } else {
                Self::write_snapshot(tx, &order_id, (d.order.save_uncompressed(), heads_blob(&d.order)), last_seq)
                    .await?;
            }
            written.push(Written { last_seq, merged: d.changes.len() });
        }
        Self::extend_tails(tx, &positions).await?;
        Ok(written)
    }

    /// The [`StoredRow`]s of `(order, pushing user)` pairs, by order id.
    async fn read_rows(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        wanted: &[(String, String)],
    ) -> Result<HashMap<String, StoredRow>> {
        let mut rows = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(200) {
            let values =
                (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "WITH v (id, usr) AS (VALUES {values})
                 SELECT {STORED_ROW} FROM v JOIN orders o ON o.id = v.id"
            );
            let mut query = sqlx::query_as::<_, StoredRow>(AssertSqlSafe(sql));
            for (id, user) in chunk {
                query = query.bind(id).bind(user);
            }
            for row in query.fetch_all(&mut **tx).await? {
                rows.insert(row.id.clone(), row);
            }
        }
        Ok(rows)
    }

    /// The end of a batch: its deferred pushes written (see `write_deferred`), then each
    /// device's last sync. One process has nobody to tell how far the feed advanced.
    async fn finish_batch(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        deferred: &[(usize, Deferred)],
        now_ms: i64,
        devices: &[String],
        _by: DeviceId,
        _orgs: &[(String, i64)],
    ) -> Result<Vec<Written>> {
        let written = Self::write_deferred(tx, deferred).await?;
        Self::touch(tx, now_ms, devices).await?;
        Ok(written)
    }

    fn advanced_feed(&self) -> Option<tokio::sync::broadcast::Receiver<Announced>> {
        None
    }
}

/// PostgreSQL: any number of server processes. Writes to one organization's feed serialize on
/// a transaction-scoped advisory lock, so feed sequence order is commit order and no reader
/// can skip a row that commits late.
#[derive(Debug)]
pub struct Postgres {
    pool: PgPool,
    fixed: Fixed,
    writer: tokio::sync::mpsc::Sender<PushJob>,
    cache: SharedCache,
    advanced: tokio::sync::broadcast::Sender<Announced>,
}

impl Postgres {
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        // Every connection is opened at start-up: opening one (a new backend process) under load
        // held up the first requests after a restart by tens of milliseconds.
        let pool = PgPoolOptions::new().max_connections(16).min_connections(16).connect_with(options).await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let fixed = Self::init_meta(&pool).await.map_err(|e| sqlx::Error::Protocol(e.message_en))?;
        let (writer, jobs) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
        let cache: SharedCache = std::sync::Arc::new(std::sync::Mutex::new(DocumentCache::new(CACHED_DOCUMENTS)));
        tokio::spawn(Self::run_writer(pool.clone(), fixed.server, cache.clone(), jobs));
        let (advanced, _) = tokio::sync::broadcast::channel(1_024);
        tokio::spawn(Self::listen_for_other_servers(pool.clone(), fixed.server.device, advanced.clone()));
        Ok(Postgres { pool, fixed, writer, cache, advanced })
    }

    /// Before the server listens, every connection of the pool prepares the statements
    /// of a steady sync (the token, each scope's positions and page, an order's document), which
    /// also loads what its backend caches of the tables. Without this the first quarter second
    /// of traffic after a start waited behind sixteen backends doing so at once.
    async fn warm_connections(pool: &PgPool) {
        let started = std::time::Instant::now();
        let mut held = Vec::new();
        for _ in 0..pool.size() {
            match pool.acquire().await {
                Ok(conn) => held.push(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "a connection was not warmed");
                    break;
                }
            }
        }
        let nobody = UserId::new();
        let scopes = [Scope::Organization, Scope::Assigned(nobody), Scope::OwnUnits(nobody), Scope::Projects(nobody)];
        let order_sql = committed_order_query();
        for conn in &mut held {
            let warmed = async {
                sqlx::query(PRINCIPAL_BY_TOKEN).bind("").fetch_optional(&mut **conn).await?;
                for scope in scopes {
                    sqlx::query(AssertSqlSafe(positions_and_page_query(scope)))
                        .bind("")
                        .bind(0_i64)
                        .bind("")
                        .bind(1_i64)
                        .fetch_all(&mut **conn)
                        .await?;
                }
                sqlx::query(AssertSqlSafe(order_sql.clone())).bind("").bind("").fetch_optional(&mut **conn).await?;
                Ok::<(), sqlx::Error>(())
            };
            if let Err(e) = warmed.await {
                tracing::warn!(error = %e, "a connection was not warmed");
            }
        }
        tracing::debug!(connections = held.len(), ms = started.elapsed().as_millis() as u64, "connections warmed");
    }

    /// Relays `NOTIFY loopwork_feed` from the other server processes (this process tells its
    /// own listeners itself). Reconnects if the connection drops.
    async fn listen_for_other_servers(
        pool: PgPool,
        this_process: DeviceId,
        advanced: tokio::sync::broadcast::Sender<Announced>,
    ) {
        loop {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen("loopwork_feed").await?;
                loop {
                    let notification = listener.recv().await?;
                    let (announced, by) = Announced::parse(notification.payload());
                    if by != Some(this_process) {
                        let _ = advanced.send(announced);
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            if let Err(e) = listener.await {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "feed notifications interrupted; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    fn advanced_feed(&self) -> Option<tokio::sync::broadcast::Receiver<Announced>> {
        Some(self.advanced.subscribe())
    }

    /// The [`StoredRow`]s of `(order, pushing user)` pairs, by order id: one statement, whose
    /// text is the same however many pairs there are (the pairs go as two arrays).
    async fn read_rows(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        wanted: &[(String, String)],
    ) -> Result<HashMap<String, StoredRow>> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let (ids, users): (Vec<&str>, Vec<&str>) = wanted.iter().map(|(id, user)| (id.as_str(), user.as_str())).unzip();
        let rows: Vec<StoredRow> = sqlx::query_as(AssertSqlSafe(format!(
            "WITH v (id, usr) AS (SELECT * FROM unnest($1::text[], $2::text[]))
             SELECT {STORED_ROW} FROM v JOIN orders o ON o.id = v.id"
        )))
        .bind(&ids)
        .bind(&users)
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows.into_iter().map(|row| (row.id.clone(), row)).collect())
    }

    /// The end of a batch in one statement (one round trip, where it took three): the deferred
    /// pushes' feed rows, their orders' new positions and tails, each device's last sync, and
    /// the announcement of how far each organization's feed advanced (`orgs`: the positions
    /// known before this statement). A data-modifying `WITH` runs whether or not the rest reads
    /// it. An order whose tail grows too long gets a new snapshot after, and a push whose every
    /// change was logged already its order's newest position (both rare).
    async fn finish_batch(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        deferred: &[(usize, Deferred)],
        now_ms: i64,
        devices: &[String],
        by: DeviceId,
        orgs: &[(String, i64)],
    ) -> Result<Vec<Written>> {
        let mut row_orgs: Vec<&str> = Vec::new();
        let mut row_orders: Vec<String> = Vec::new();
        let mut hashes: Vec<&[u8]> = Vec::new();
        let mut bytes: Vec<&[u8]> = Vec::new();
        let mut row_devices: Vec<String> = Vec::new();
        let mut received: Vec<i64> = Vec::new();
        // Whether an order's tail may take its changes, or it gets a new snapshot instead.
        let fits = |d: &Deferred| d.tail_before + d.changes.len() as i32 <= TAIL_MAX;
        let mut extend: Vec<String> = Vec::new();
        for (_, d) in deferred {
            let order = d.id.to_string();
            for (hash, change, device) in &d.changes {
                row_orgs.push(&d.org);
                row_orders.push(order.clone());
                hashes.push(hash.as_ref());
                bytes.push(change.as_slice());
                row_devices.push(device.to_string());
                received.push(d.received_at);
            }
            if fits(d) {
                extend.push(order);
            }
        }
        let (announce_orgs, announce_seqs): (Vec<&str>, Vec<i64>) = orgs.iter().map(|(o, s)| (o.as_str(), *s)).unzip();
        let rows: Vec<(Option<String>, i32, Option<i64>)> = sqlx::query_as(
            "WITH ins AS (
                INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at)
                SELECT r.org_id, r.order_id, 'change', r.hash, r.bytes, r.device_id, r.received_at
                FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::bigint[])
                    WITH ORDINALITY AS r (org_id, order_id, hash, bytes, device_id, received_at, n)
                ORDER BY r.n
                ON CONFLICT DO NOTHING
                RETURNING org_id, order_id, seq
             ), logged AS (
                SELECT order_id, COUNT(*)::int AS appended, MAX(seq) AS last FROM ins GROUP BY order_id
             ), tails AS (
                UPDATE orders SET doc_seq = CASE WHEN tail_changes = 0 THEN last_seq ELSE doc_seq END,
                    tail_changes = tail_changes + logged.appended, last_seq = logged.last
                FROM logged WHERE orders.id = logged.order_id AND logged.order_id = ANY($7::text[])
                RETURNING 1
             ), touched AS (
                UPDATE devices SET last_sync_at = $8 WHERE id = ANY($9::text[]) RETURNING 1
             ), told AS (
                SELECT pg_notify('loopwork_feed', a.seq || ' ' || $10 || ' ' || a.org)
                FROM (SELECT k.org, GREATEST(k.seq, (SELECT COALESCE(MAX(i.seq), 0) FROM ins i WHERE i.org_id = k.org)) AS seq
                      FROM unnest($11::text[], $12::bigint[]) AS k (org, seq)) a
                WHERE a.seq > 0
             )
             SELECT order_id, appended, last FROM logged
             UNION ALL SELECT NULL, COUNT(*)::int, NULL FROM told",
        )
        .bind(&row_orgs)
        .bind(&row_orders)
        .bind(&hashes)
        .bind(&bytes)
        .bind(&row_devices)
        .bind(&received)
        .bind(&extend)
        .bind(now_ms)
        .bind(devices)
        .bind(by.to_string())
        .bind(&announce_orgs)
        .bind(&announce_seqs)
        .fetch_all(&mut **tx)
        .await?;
        let logged: HashMap<String, (i32, i64)> =
            rows.into_iter().filter_map(|(order, appended, last)| Some((order?, (appended, last?)))).collect();
        let mut written = Vec::with_capacity(deferred.len());
        for (_, d) in deferred {
            let order_id = d.id.to_string();
            let (appended, mut last_seq) = logged.get(&order_id).copied().unwrap_or_default();
            if appended == 0 {
                last_seq = Self::newest_position(tx, &order_id).await?;
            } else if !fits(d) {
                Self::write_snapshot(tx, &order_id, (d.order.save_uncompressed(), heads_blob(&d.order)), last_seq)
                    .await?;
            }
            written.push(Written { last_seq, merged: d.changes.len() });
        }
        Ok(written)
    }

    async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(pool.begin().await?)
    }

    /// [`Self::begin_write`] on the writer's own connection.
    async fn begin_writer(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    ) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        Ok(sqlx::Connection::begin(&mut **conn).await?)
    }

    /// Takes the organization's write lock and reads its closing authority in the same round
    /// trip (the authority is not guarded by the lock: its readers and its writer race either way).
    async fn lock_org(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        org: &str,
    ) -> Result<Option<Vec<(String, String)>>> {
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT c.grade, c.min_role FROM (SELECT pg_advisory_xact_lock(hashtext($1))) l
             LEFT JOIN closing_authority c ON c.org_id = $1",
        )
        .bind(org)
        .fetch_all(&mut **tx)
        .await?;
        Ok(Some(rows.into_iter().filter_map(|(grade, role)| Some((grade?, role?))).collect()))
    }
}

/// The columns of a queue row (`order_item` reads them by position) and where they come from.
const ITEM_COLUMNS: &str =
    "o.id, o.number, o.kind, o.category, o.grade, o.status, o.assignee, u.display_name, o.project,
    o.building, o.unit, o.area, o.created_at, o.next_deadline, o.sla_stage, o.sla_half_at, o.sla_warn_at, o.sla_due_at,
    f.rating, COALESCE(f.reopen_count, 0)";
const ITEM_FROM: &str = "orders o LEFT JOIN users u ON u.id = o.assignee LEFT JOIN order_facts f ON f.order_id = o.id";

fn scope_filter(scope: Scope, order_column: &str) -> String {
    // A quarantined order is in nobody's scope: its history does not load.
    let healthy = format!("{order_column} NOT IN (SELECT id FROM orders WHERE quarantined_at IS NOT NULL)");
    let scoped = match scope {
        Scope::Organization => return healthy,
        Scope::Assigned(_) => {
            format!("{order_column} IN (SELECT id FROM orders WHERE org_id = $1 AND assignee = $3)")
        }
        Scope::OwnUnits(_) => format!(
            "{order_column} IN (SELECT o.id FROM orders o WHERE o.org_id = $1 AND (o.reporter = $3 OR EXISTS (
                SELECT 1 FROM owner_units u WHERE u.user_id = $3 AND u.project = o.project
                AND u.building = o.building AND u.unit = o.unit)))"
        ),
        Scope::Projects(_) => format!(
            "{order_column} IN (SELECT o.id FROM orders o WHERE o.org_id = $1
                AND o.project IN (SELECT s.project FROM staff_projects s WHERE s.user_id = $3))"
        ),
    };
    format!("{scoped} AND {healthy}")
}

/// The feed rows a device receives after its cursor ($2), up to `upto` ($5, or an expression),
/// at most $4, as [`FeedRow`]s.
///
/// Staff of the whole organization see every change of it, so they read the organization's feed
/// in order. A technician, an owner or a dispatcher bound to projects sees part of it: those of
/// their orders that changed since the cursor (`last_seq > $2`) are found first, then only their
/// feed rows are read, so a pull costs what changed for this device, not what changed in the
/// whole organization. A quarantined order's changes already in the feed are sent as any
/// others (each was parsed and is whole; pushes to the order are refused from then on): what
/// quarantine withholds is its stored document, which no grant or snapshot serves.
fn feed_query(scope: Scope, upto: &str) -> String {
    let columns = "seq, kind, order_id, bytes, reason, hash";
    let own_access = format!(
        "SELECT {columns} FROM feed WHERE user_id = $3 AND seq > $2 AND seq <= {upto} AND org_id = $1 \
         AND kind IN ('grant', 'revoke')"
    );
    let changed_orders = match scope {
        Scope::Organization => {
            return format!(
                "SELECT {columns} FROM feed WHERE org_id = $1 AND seq > $2 AND seq <= {upto} AND kind = 'change' \
                 UNION ALL {own_access} ORDER BY 1 LIMIT $4"
            );
        }
        Scope::Assigned(_) => "SELECT id FROM orders WHERE org_id = $1 AND assignee = $3 AND last_seq > $2".to_owned(),
        Scope::OwnUnits(_) => "SELECT o.id FROM orders o WHERE o.org_id = $1 AND o.last_seq > $2 AND (o.reporter = $3 \
             OR EXISTS (SELECT 1 FROM owner_units u WHERE u.user_id = $3 AND u.project = o.project \
             AND u.building = o.building AND u.unit = o.unit))"
            .to_owned(),
        Scope::Projects(_) => "SELECT id FROM orders WHERE org_id = $1 AND last_seq > $2 \
             AND project IN (SELECT project FROM staff_projects WHERE user_id = $3)"
            .to_owned(),
    };
    format!(
        "SELECT {columns} FROM feed WHERE order_id IN ({changed_orders}) AND seq > $2 AND seq <= {upto} \
         AND kind = 'change' UNION ALL {own_access} ORDER BY 1 LIMIT $4"
    )
}

/// A feed row as [`feed_query`] reads it: position, kind, order, bytes (a change), reason (a
/// revocation), hash (a change).
type FeedRow = (i64, String, String, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>);

/// A row of the feed's positions: the organization's newest position, then the row at that
/// position or at a cursor's (none if the feed is empty), as its check needs it: position,
/// order, kind, hash, user.
type PositionRow = (i64, Option<i64>, Option<String>, Option<String>, Option<Vec<u8>>, Option<String>);

/// What a steady sync reads in one statement, so in one snapshot: the positions (part 0, as
/// [`PositionRow`]s) and the page of [`feed_query`] up to the newest position (part 1, as
/// [`FeedRow`]s), with $1 the organization, $2 the cursor, $3 the user, $4 the page's size.
fn positions_and_page_query(scope: Scope) -> String {
    format!(
        "WITH l AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM feed WHERE org_id = $1)
         SELECT 0, l.seq, f.seq, f.order_id, f.kind, NULL, NULL, f.hash, f.user_id
         FROM l LEFT JOIN feed f ON f.org_id = $1 AND (f.seq = l.seq OR f.seq = $2)
         UNION ALL
         SELECT 1, NULL, p.seq, p.order_id, p.kind, p.bytes, p.reason, p.hash, NULL
         FROM ({}) p
         ORDER BY 1, 3",
        feed_query(scope, "(SELECT seq FROM l)")
    )
}

/// The newest position and its check, and the check at `seq` (`None` if the organization has
/// no feed row there), from [`PositionRow`]s.
fn positions_of(rows: &[PositionRow], seq: i64) -> (i64, String, Option<String>) {
    let latest = rows.first().map(|r| r.0).unwrap_or(0);
    let check_at = |at: i64| {
        if at == 0 {
            return Some(String::new());
        }
        let (_, _, order, kind, hash, user) = rows.iter().find(|r| r.1 == Some(at))?;
        Some(replication::feed_check(order.as_deref()?, kind.as_deref()?, hash.as_deref(), user.as_deref()))
    };
    (latest, check_at(latest).unwrap_or_default(), check_at(seq))
}

fn principal_from(row: (String, String, String, String, bool)) -> Result<Principal> {
    let (device, user, role, org, project_bound) = row;
    let role = Role::from_code(&role).map_err(|_| ApiError::internal())?;
    Ok(Principal {
        device: device.parse().map_err(|_| ApiError::internal())?,
        user: user.parse().map_err(|_| ApiError::internal())?,
        project_bound: role == Role::Dispatcher && project_bound,
        role,
        org,
    })
}

/// The closing authority from its rows (grade, least senior role); missing grades keep the
/// default.
fn closing_from_rows(rows: Vec<(String, String)>) -> Result<ClosingAuthority> {
    let mut closing = ClosingAuthority::default();
    for (grade, role) in rows {
        let grade = Grade::from_code(&grade).map_err(|_| ApiError::internal())?;
        let role = Role::from_code(&role).map_err(|_| ApiError::internal())?;
        closing.set(grade, role);
    }
    Ok(closing)
}

/// The implementation, written once for both backends.
macro_rules! database_impl {
    ($name:ident, $backend:literal, $db:ty) => {
        impl $name {
            async fn push_job(
                &self,
                principal: &Principal,
                groups: &[(OrderId, Vec<Change>)],
                relayed_authors: &[Identity],
                now_ms: i64,
                expect: Option<Status>,
            ) -> Result<PushOutcome> {
                if groups.is_empty() {
                    return Ok(PushOutcome::default());
                }
                // Merge ahead, here and in parallel with other requests, against cached documents;
                // the writer checks that nothing moved in between.
                let server = self.fixed.server;
                let closing = lock(&self.cache).closing(&principal.org);
                let authors = authors_of(principal, relayed_authors, closing);
                let mut premerged = Vec::with_capacity(groups.len());
                for (id, changes) in groups {
                    // An order the writer has not cached (after a restart, or written by another
                    // server) is loaded here, in parallel with other requests, not by the writer.
                    let cached = lock(&self.cache).lend(*id);
                    let base = match cached {
                        Some(cached) => Some(cached),
                        None => self.committed_order(&principal.org, *id).await.ok().flatten(),
                    };
                    premerged.push(base.and_then(|(at_seq, order, assignee)| {
                        let merged = replication::merge_push(Some((order, assignee)), *id, changes, &authors, &server, None, now_ms).ok()?;
                        let saved = merged.transitions_changed.then(|| merged.order.save_uncompressed());
                        Some(Premerged { at_seq, merged, saved })
                    }));
                }
                let (reply, answer) = tokio::sync::oneshot::channel();
                let job = PushJob {
                    principal: principal.clone(),
                    groups: groups.to_vec(),
                    relayed_authors: relayed_authors.to_vec(),
                    premerged,
                    closing,
                    expect,
                    now_ms,
                    reply,
                };
                self.writer.send(job).await.map_err(|_| ApiError::unavailable())?;
                answer.await.map_err(|_| ApiError::unavailable())?
            }

            /// Whole documents from stored ones: each snapshot with a tail gets the order's
            /// changes logged after it appended in feed order (Automerge loads a saved document
            /// followed by change chunks), read in one query per 100 orders. The feed is
            /// append-only, so a snapshot is completed correctly even when the writer folded its
            /// tail in the meantime: the rows read then repeat changes the snapshot already
            /// holds, which loading skips.
            async fn whole_documents(
                conn: &mut <$db as sqlx::Database>::Connection,
                stored: Vec<StoredDocRow>,
            ) -> Result<Vec<(String, Vec<u8>)>> {
                let whole = Self::whole_documents_with_tails(conn, stored).await?;
                Ok(whole.into_iter().map(|(id, doc, _)| (id, doc)).collect())
            }

            /// [`Self::whole_documents`], with the hashes of each document's tail.
            async fn whole_documents_with_tails(
                conn: &mut <$db as sqlx::Database>::Connection,
                stored: Vec<StoredDocRow>,
            ) -> Result<Vec<(String, Vec<u8>, Vec<ChangeHash>)>> {
                let mut whole = Vec::with_capacity(stored.len());
                let mut tails = Vec::new();
                for (id, doc, doc_seq, tail) in stored {
                    if tail > 0 {
                        tails.push((whole.len(), id.clone(), doc_seq.unwrap_or(0)));
                    }
                    whole.push((id, doc, Vec::new()));
                }
                for chunk in tails.chunks(100) {
                    let orders = (0..chunk.len())
                        .map(|i| format!("(order_id = ${} AND seq > ${})", 2 * i + 1, 2 * i + 2))
                        .collect::<Vec<_>>()
                        .join(" OR ");
                    let sql = format!("SELECT order_id, bytes, hash FROM feed WHERE kind = 'change' AND ({orders}) ORDER BY seq");
                    let mut query = sqlx::query_as::<_, (String, Vec<u8>, Option<Vec<u8>>)>(AssertSqlSafe(sql));
                    for (_, id, doc_seq) in chunk {
                        query = query.bind(id.clone()).bind(*doc_seq);
                    }
                    let at: HashMap<&str, usize> = chunk.iter().map(|(at, id, _)| (id.as_str(), *at)).collect();
                    for (order, bytes, hash) in query.fetch_all(&mut *conn).await? {
                        if let Some(at) = at.get(order.as_str()) {
                            whole[*at].1.extend_from_slice(&bytes);
                            if let Some(hash) = hash.and_then(|h| ChangeHash::try_from(h.as_slice()).ok()) {
                                whole[*at].2.push(hash);
                            }
                        }
                    }
                }
                Ok(whole)
            }

            /// Whole documents as a device receives them, each with the server's receipts for its
            /// snapshot's heads and the changes of its tail (between them, its heads).
            async fn vouched_documents(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                org: &str,
                stored: Vec<VouchedDocRow>,
            ) -> Result<Vec<(OrderId, Vec<u8>, Vec<Receipt>)>> {
                let mut snapshot_heads = HashMap::new();
                let mut rows = Vec::with_capacity(stored.len());
                for (id, doc, doc_seq, tail, heads) in stored {
                    snapshot_heads.insert(id.clone(), heads);
                    rows.push((id, doc, doc_seq, tail));
                }
                let mut out = Vec::with_capacity(rows.len());
                for (id, doc, tail) in Self::whole_documents_with_tails(conn, rows).await? {
                    let order: OrderId = id.parse().map_err(|_| ApiError::internal())?;
                    let mut hashes = match snapshot_heads.remove(&id).flatten() {
                        Some(heads) => heads_from_blob(&heads),
                        // Stored before heads were kept: read from the document itself.
                        None => self.load_stored(org, order, &doc).await?.heads(),
                    };
                    hashes.extend(tail);
                    let receipts = hashes.iter().map(|h| replication::receipt(&self.fixed.secret, org, order, h)).collect();
                    out.push((order, doc, receipts));
                }
                Ok(out)
            }

            /// One order's whole document (see [`Self::whole_documents`]).
            async fn whole_document(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: &str,
                (doc, doc_seq, tail): StoredDoc,
            ) -> Result<Vec<u8>> {
                let mut whole = Self::whole_documents(conn, vec![(id.to_owned(), doc, doc_seq, tail)]).await?;
                Ok(whole.pop().map(|(_, doc)| doc).unwrap_or_default())
            }

            /// An order as committed: its feed position, document and assignee, as the writer's
            /// cache holds them.
            async fn committed_order(&self, org: &str, id: OrderId) -> Result<Option<(i64, WorkOrder, Option<UserId>)>> {
                let order_id = id.to_string();
                let mut conn = self.pool.acquire().await?;
                let row: Option<(i64, Option<String>, Vec<u8>, Option<i64>, i32)> =
                    sqlx::query_as(AssertSqlSafe(committed_order_query()))
                .bind(&order_id)
                .bind(org)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((last_seq, assignee, doc, doc_seq, tail)) = row else { return Ok(None) };
                let doc = Self::whole_document(&mut conn, &order_id, (doc, doc_seq, tail)).await?;
                let order = self.load_stored(org, id, &doc).await?;
                let assignee = assignee.map(|a| a.parse()).transpose().map_err(|_| ApiError::internal())?;
                Ok(Some((last_seq, order, assignee)))
            }

            /// One order's whole document by id within an organization, if it is there.
            async fn stored_document(&self, org: &str, id: &str) -> Result<Option<Vec<u8>>> {
                let mut conn = self.pool.acquire().await?;
                let stored: Option<StoredDoc> =
                    sqlx::query_as(AssertSqlSafe(format!("SELECT {DOC_COLUMNS} FROM orders WHERE id = $1 AND org_id = $2")))
                        .bind(id)
                        .bind(org)
                        .fetch_optional(&mut *conn)
                        .await?;
                match stored {
                    Some(stored) => Ok(Some(Self::whole_document(&mut conn, id, stored).await?)),
                    None => Ok(None),
                }
            }

            /// One order's whole document with its receipts (see [`Self::vouched_documents`]).
            async fn vouched_document(&self, org: &str, order: OrderId) -> Result<Option<(Vec<u8>, Vec<Receipt>)>> {
                let mut conn = self.pool.acquire().await?;
                let row: Option<VouchedDocRow> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT id, {VOUCHED_DOC_COLUMNS} FROM orders WHERE id = $1 AND org_id = $2"
                )))
                .bind(order.to_string())
                .bind(org)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(self.vouched_documents(&mut conn, org, vec![row]).await?.pop().map(|(_, doc, receipts)| (doc, receipts)))
            }

            /// Creates the database's identity on first open, and this process's server actor.
            async fn init_meta(pool: &sqlx::Pool<$db>) -> Result<Fixed> {
                for (key, value) in [
                    ("epoch", uuid::Uuid::new_v4().simple().to_string()),
                    ("server_user", UserId::new().to_string()),
                    ("server_secret", format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())),
                ] {
                    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                        .bind(key)
                        .bind(value)
                        .execute(pool)
                        .await?;
                }
                let meta = |key: &'static str| async move {
                    sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1").bind(key).fetch_one(pool).await
                };
                let secret = meta("server_secret").await?;
                let user: UserId = meta("server_user").await?.parse().map_err(|_| ApiError::internal())?;
                Ok(Fixed {
                    epoch: meta("epoch").await?,
                    server: Identity::new(user, Role::System, server_actor(&secret, None)),
                    secret,
                    quarantined: Default::default(),
                })
            }

            /// At a start, before the server listens, loads the orders changed last (as
            /// many as the writer caches) into the writer's cache, so that the first pushes after
            /// a restart do not each load their order at once while the start-up's traffic waits.
            async fn prewarm(pool: &sqlx::Pool<$db>, cache: &SharedCache) {
                let started = std::time::Instant::now();
                let mut warmed_orders = 0;
                let warmed = async {
                    let orgs: Vec<String> = sqlx::query_scalar("SELECT id FROM organizations").fetch_all(pool).await?;
                    let mut recent: Vec<(i64, String)> = Vec::new();
                    for org in orgs {
                        let rows: Vec<(i64, String)> = sqlx::query_as(
                            "SELECT last_seq, id FROM orders WHERE org_id = $1 ORDER BY last_seq DESC LIMIT $2",
                        )
                        .bind(&org)
                        .bind(CACHED_DOCUMENTS as i64)
                        .fetch_all(pool)
                        .await?;
                        recent.extend(rows);
                    }
                    recent.sort_unstable_by(|a, b| b.0.cmp(&a.0));
                    recent.truncate(CACHED_DOCUMENTS);
                    // Oldest first, so that the orders changed last are the last let go.
                    recent.reverse();
                    for chunk in recent.chunks(100) {
                        let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                        let sql = format!("SELECT id, last_seq, assignee, {DOC_COLUMNS} FROM orders WHERE id IN ({list})");
                        let mut query = sqlx::query_as::<_, (String, i64, Option<String>, Vec<u8>, Option<i64>, i32)>(AssertSqlSafe(sql));
                        for (_, id) in chunk {
                            query = query.bind(id);
                        }
                        let mut conn = pool.acquire().await?;
                        let rows = query.fetch_all(&mut *conn).await?;
                        let mut position = HashMap::new();
                        let mut stored = Vec::with_capacity(rows.len());
                        for (id, last_seq, assignee, doc, doc_seq, tail) in rows {
                            position.insert(id.clone(), (last_seq, assignee));
                            stored.push((id, doc, doc_seq, tail));
                        }
                        let whole = Self::whole_documents(&mut conn, stored).await?;
                        drop(conn);
                        // Loading documents is CPU work: off the runtime's threads.
                        let loaded = tokio::task::spawn_blocking(move || {
                            whole
                                .into_iter()
                                .filter_map(|(id, doc)| {
                                    let (last_seq, assignee) = position.remove(&id)?;
                                    let assignee = assignee.and_then(|a| a.parse().ok());
                                    Some((id.parse().ok()?, last_seq, WorkOrder::load(&doc).ok()?, assignee))
                                })
                                .collect::<Vec<(OrderId, i64, WorkOrder, Option<UserId>)>>()
                        })
                        .await
                        .map_err(|_| ApiError::internal())?;
                        warmed_orders += loaded.len();
                        let mut cache = lock(cache);
                        for (id, last_seq, order, assignee) in loaded {
                            cache.put_if_absent(id, last_seq, order, assignee);
                        }
                    }
                    Ok::<(), ApiError>(())
                };
                match warmed.await {
                    Ok(()) => tracing::debug!(
                        orders = warmed_orders,
                        ms = started.elapsed().as_millis() as u64,
                        "document cache warmed"
                    ),
                    Err(e) => tracing::warn!(code = e.code, "the document cache was not warmed"),
                }
            }

            /// The writer task: takes the pushes waiting, writes them in one transaction.
            async fn run_writer(
                pool: sqlx::Pool<$db>,
                server: Identity,
                cache: SharedCache,
                mut jobs: tokio::sync::mpsc::Receiver<PushJob>,
            ) {
                // The writer keeps one connection of the pool to itself: taking one per batch
                // waited, under load, behind the request handlers' reads.
                let mut held: Option<sqlx::pool::PoolConnection<$db>> = None;
                // Closing the pool (the server stopping) waits for every connection, this one too.
                let mut closing = std::pin::pin!(pool.close_event());
                loop {
                    let first = tokio::select! {
                        job = jobs.recv() => match job {
                            Some(job) => job,
                            None => break,
                        },
                        _ = &mut closing => break,
                    };
                    let mut batch = vec![first];
                    while batch.len() < GROUP_COMMIT_MAX {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    // Advisory locks are taken in organization order, so two servers' batches
                    // cannot deadlock.
                    batch.sort_by(|a, b| a.principal.org.cmp(&b.principal.org));
                    let mut results = Vec::with_capacity(batch.len());
                    let mut staged = Vec::new();
                    let committed = match held.take() {
                        Some(conn) => Ok(conn),
                        None => pool.acquire().await.map_err(ApiError::from),
                    };
                    let committed = match committed {
                        Ok(mut conn) => {
                            let written =
                                Self::write_batch(&mut conn, &server, &mut batch, &cache, &mut staged, &mut results).await;
                            // After a failed batch the connection may be broken: the next one
                            // starts on a fresh one.
                            match written {
                                Ok(()) => held = Some(conn),
                                Err(_) => conn.close_on_drop(),
                            }
                            written
                        }
                        Err(e) => Err(e),
                    };
                    if committed.is_ok() {
                        let mut cache = lock(&cache);
                        for (id, seq, order, assignee) in staged {
                            cache.put(id, seq, order, assignee);
                        }
                    }
                    for (job, result) in batch.into_iter().zip(results.into_iter().map(Some).chain(std::iter::repeat_with(|| None))) {
                        let answer = match (&committed, result) {
                            (Ok(()), Some(result)) => result,
                            (Err(e), _) => Err(e.clone()),
                            (Ok(()), None) => Err(ApiError::internal()),
                        };
                        let _ = job.reply.send(answer);
                    }
                }
            }

            async fn write_batch(
                conn: &mut sqlx::pool::PoolConnection<$db>,
                server: &Identity,
                batch: &mut [PushJob],
                cache: &SharedCache,
                staged: &mut Vec<Staged>,
                results: &mut Vec<Result<PushOutcome>>,
            ) -> Result<()> {
                let mut tx = Self::begin_writer(conn).await?;
                let mut locked: Option<String> = None;
                let mut synced: Vec<String> = Vec::new();
                let mut closing = HashMap::new();
                let mut now_ms = 0;
                // A push into one order that a request handler merged ahead (so the order exists)
                // is refused, if at all, before its first write: it needs no savepoint. Should
                // the database fail in it (PostgreSQL then aborts the whole transaction), or
                // anything fail after a write, the whole batch fails and every device sends
                // again. Other pushes (several orders, a new order) each get a savepoint, so one
                // refused push leaves the others whole.
                let alone = |job: &PushJob| job.groups.len() == 1 && job.premerged.first().is_some_and(Option::is_some);
                // The rows of orders pushed alone, and only once in the batch, are read together
                // per organization once its lock is held (nothing earlier in the batch writes them).
                let mut pushes = HashMap::<OrderId, usize>::new();
                for (id, _) in batch.iter().flat_map(|job| job.groups.iter()) {
                    *pushes.entry(*id).or_default() += 1;
                }
                let read_together = |job: &PushJob| alone(job) && pushes[&job.groups[0].0] == 1;
                let mut read_ahead = HashMap::<String, Vec<(String, String)>>::new();
                for job in batch.iter().filter(|job| read_together(job)) {
                    read_ahead
                        .entry(job.principal.org.clone())
                        .or_default()
                        .push((job.groups[0].0.to_string(), job.principal.user.to_string()));
                }
                let mut rows: HashMap<String, StoredRow> = HashMap::new();
                let mut deferred: Vec<(usize, Deferred)> = Vec::new();
                for (at, job) in batch.iter_mut().enumerate() {
                    if locked.as_deref() != Some(job.principal.org.as_str()) {
                        if let Some(rows) = Self::lock_org(&mut tx, &job.principal.org).await? {
                            let read = closing_from_rows(rows)?;
                            closing.insert(job.principal.org.clone(), read);
                            lock(cache).set_closing(&job.principal.org, read);
                        }
                        locked = Some(job.principal.org.clone());
                        let wanted = read_ahead.remove(&job.principal.org).unwrap_or_default();
                        rows = Self::read_rows(&mut tx, &wanted).await?;
                    }
                    let alone = alone(job);
                    let row = read_together(job).then(|| rows.remove(&job.groups[0].0.to_string()));
                    let mut merged = Vec::new();
                    let mut attempt = Attempt { read_ahead: row, wrote: false, deferred: None };
                    let result = if alone {
                        Self::push_in_tx(&mut tx, server, cache, &mut merged, job, &mut closing, &mut attempt).await
                    } else {
                        let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
                        let result =
                            Self::push_in_tx(&mut savepoint, server, cache, &mut merged, job, &mut closing, &mut attempt).await;
                        if result.is_ok() {
                            savepoint.commit().await?;
                        } else {
                            savepoint.rollback().await?;
                        }
                        result
                    };
                    match result {
                        Ok(outcome) => {
                            let device = job.principal.device.to_string();
                            if !synced.contains(&device) {
                                synced.push(device);
                            }
                            now_ms = now_ms.max(job.now_ms);
                            staged.extend(merged);
                            deferred.extend(attempt.deferred.map(|d| (at, d)));
                            results.push(Ok(outcome));
                        }
                        Err(failed) if alone && (attempt.wrote || failed.status.is_server_error()) => return Err(failed),
                        Err(refused) => results.push(Err(refused)),
                    }
                }
                // Each organization whose feed advances, with its newest position so far (the
                // deferred pushes' rows are yet to be written).
                let mut announced: Vec<(String, i64)> = Vec::new();
                for (at, (job, result)) in batch.iter().zip(&*results).enumerate() {
                    let Ok(outcome) = result else { continue };
                    if outcome.merged == 0 && !deferred.iter().any(|(d, _)| *d == at) {
                        continue;
                    }
                    match announced.iter_mut().find(|(org, _)| *org == job.principal.org) {
                        Some((_, seq)) => *seq = (*seq).max(outcome.feed_seq),
                        None => announced.push((job.principal.org.clone(), outcome.feed_seq)),
                    }
                }
                let written = Self::finish_batch(&mut tx, &deferred, now_ms, &synced, server.device, &announced).await?;
                for ((at, d), w) in deferred.into_iter().zip(written) {
                    if let Some(Ok(outcome)) = results.get_mut(at) {
                        outcome.merged += w.merged;
                        outcome.feed_seq = outcome.feed_seq.max(w.last_seq);
                    }
                    staged.push((d.id, w.last_seq, d.order, d.assignee));
                }
                tx.commit().await?;
                Ok(())
            }

            /// The newest feed position of an order's changes: where a push whose every change
            /// was in the feed already (a concurrent duplicate) leaves the order.
            async fn newest_position(tx: &mut sqlx::Transaction<'_, $db>, order_id: &str) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE order_id = $1")
                    .bind(order_id)
                    .fetch_one(&mut **tx)
                    .await?)
            }

            /// Moves orders to their new feed positions past the changes just logged for them,
            /// which lengthen each document's tail (see `TAIL_MAX`): `(order, changes logged,
            /// position)`, one statement per 400 orders.
            async fn extend_tails(tx: &mut sqlx::Transaction<'_, $db>, positions: &[(String, i32, i64)]) -> Result<()> {
                for chunk in positions.chunks(400) {
                    let values = (0..chunk.len())
                        .map(|i| format!("(${}, CAST(${} AS INTEGER), CAST(${} AS BIGINT))", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "UPDATE orders SET doc_seq = CASE WHEN tail_changes = 0 THEN last_seq ELSE doc_seq END,
                            tail_changes = tail_changes + v.column2, last_seq = v.column3
                         FROM (VALUES {values}) AS v WHERE orders.id = v.column1"
                    );
                    let mut update = sqlx::query(AssertSqlSafe(sql));
                    for (id, appended, last_seq) in chunk {
                        update = update.bind(id).bind(*appended).bind(*last_seq);
                    }
                    update.execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Replaces an order's snapshot with its whole document at `last_seq`: the tail is
            /// folded in.
            async fn write_snapshot(
                tx: &mut sqlx::Transaction<'_, $db>,
                order_id: &str,
                (doc, heads): (Vec<u8>, Vec<u8>),
                last_seq: i64,
            ) -> Result<()> {
                sqlx::query("UPDATE orders SET doc = $1, doc_heads = $4, doc_seq = NULL, tail_changes = 0, last_seq = $2 WHERE id = $3")
                    .bind(doc)
                    .bind(last_seq)
                    .bind(order_id)
                    .bind(heads)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// One push, inside the writer's transaction.
            async fn push_in_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                server: &Identity,
                cache: &SharedCache,
                staged: &mut Vec<Staged>,
                job: &mut PushJob,
                read_this_batch: &mut HashMap<String, ClosingAuthority>,
                attempt: &mut Attempt,
            ) -> Result<PushOutcome> {
                let premerged = std::mem::take(&mut job.premerged);
                let (principal, groups, now_ms) = (&job.principal, &job.groups, job.now_ms);
                let mut outcome = PushOutcome::default();
                outcome.acked = groups.iter().flat_map(|(_, changes)| changes.iter().map(Change::hash)).collect();
                let user = principal.user.to_string();
                // The organization's rules as committed (read once per batch): a premerge judged
                // with others is redone.
                let closing = match read_this_batch.get(&principal.org) {
                    Some(closing) => *closing,
                    None => {
                        let rows: Vec<(String, String)> =
                            sqlx::query_as("SELECT grade, min_role FROM closing_authority WHERE org_id = $1")
                                .bind(&principal.org)
                                .fetch_all(&mut **tx)
                                .await?;
                        let closing = closing_from_rows(rows)?;
                        read_this_batch.insert(principal.org.clone(), closing);
                        lock(cache).set_closing(&principal.org, closing);
                        closing
                    }
                };
                let authors = authors_of(principal, &job.relayed_authors, closing);
                let premerged = if closing == job.closing { premerged } else { Vec::new() };
                // Device clocks are trusted only between the device's last sync and now: read when
                // a push first brings transitions (most pushes bring notes, not transitions).
                let mut trusted_from: Option<Option<i64>> = None;
                let mut premerged = premerged.into_iter();
                for (id, changes) in groups {
                    let ahead = premerged.next().flatten();
                    let mut saved = None;
                    let order_id = id.to_string();
                    let read_ahead = attempt.read_ahead.is_some();
                    let row: Option<StoredRow> = match attempt.read_ahead.take() {
                        Some(row) => row,
                        None => Self::read_rows(tx, &[(order_id.clone(), user.clone())]).await?.remove(&order_id),
                    };
                    let listed_before = row.as_ref().map(Listed::of_row);
                    let tail_before = row.as_ref().map_or(0, |r| r.tail_changes);
                    if let (Some(expected), Some(row)) = (job.expect, &row)
                        && row.status == expected.code()
                    {
                        // The server's action is done already (by this process or another).
                        continue;
                    }
                    let merged = match row {
                        Some(StoredRow { org_id: org, last_seq, assignee, reporter, project, building, unit, given, serves, .. }) => {
                            let assignee = assignee.map(|a| a.parse()).transpose().map_err(|_| ApiError::internal())?;
                            let stored = StoredOrder { org, last_seq, assignee, reporter, project, building, unit };
                            // Only the checks the role needs (see `replication::may_write`).
                            let ever_given = principal.role == Role::Technician && given;
                            let owns = principal.role == Role::Owner
                                && Self::owns_unit(tx, &user, &stored.project, &stored.building, &stored.unit).await?;
                            let by_this_server = principal.device == server.device;
                            if !by_this_server && !replication::may_write(principal, &stored, ever_given, owns, serves) {
                                return Err(ApiError::out_of_scope(id).binary());
                            }
                            match ahead.filter(|p| p.at_seq == stored.last_seq) {
                                Some(Premerged { merged, saved: bytes, .. }) => {
                                    saved = bytes;
                                    merged
                                }
                                None => {
                                    let cached = lock(cache).take(*id, stored.last_seq);
                                    let order = match cached {
                                        Some(order) => order,
                                        None => {
                                            let stored: StoredDoc = sqlx::query_as(AssertSqlSafe(format!(
                                                "SELECT {DOC_COLUMNS} FROM orders WHERE id = $1"
                                            )))
                                            .bind(&order_id)
                                            .fetch_one(&mut **tx)
                                            .await?;
                                            let doc = Self::whole_document(&mut **tx, &order_id, stored).await?;
                                            WorkOrder::load(&doc).map_err(|_| ApiError::quarantined(*id).binary())?
                                        }
                                    };
                                    replication::merge_push(Some((order, stored.assignee)), *id, changes, &authors, server, None, now_ms)?
                                }
                            }
                        }
                        None => {
                            let candidate = WorkOrder::from_parsed_changes(changes.clone()).map_err(|e| {
                                ApiError::from(loopwork_sync_core::CoreError::from(e)).binary()
                            })?;
                            let location = candidate.location();
                            let (project_known, serves): (bool, bool) = sqlx::query_as(
                                "SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND code = $2),
                                    EXISTS (SELECT 1 FROM staff_projects WHERE user_id = $3 AND project = $2)",
                            )
                            .bind(&principal.org)
                            .bind(&location.project)
                            .bind(&user)
                            .fetch_one(&mut **tx)
                            .await?;
                            let owns = Self::owns_unit(tx, &user, &location.project, &location.building, &location.unit).await?;
                            replication::may_create(principal, &candidate, project_known, owns, serves)?;
                            attempt.wrote = true;
                            let number = Self::next_number(tx, &principal.org, now_ms).await?;
                            replication::merge_push(None, *id, changes, &authors, server, Some(&number), now_ms)?
                        }
                    };
                    if merged.new_changes.is_empty() {
                        continue;
                    }
                    if job.expect.is_some_and(|expected| merged.summary.status != expected) {
                        // The server's action no longer applies: someone got there first.
                        continue;
                    }
                    attempt.wrote = true;
                    outcome.rejected.extend(merged.rejected.iter().map(|r| r.reason.code()));
                    // Each change is logged as its actor's (the pusher's, a relayed change's true
                    // author, or a server's); what the merge added is this server's.
                    let pushed: HashMap<ChangeHash, DeviceId> =
                        changes.iter().map(|c| (c.hash(), DeviceId::from_actor(c.actor_id()).unwrap_or(server.device))).collect();
                    let attributed = |hash: &ChangeHash| pushed.get(hash).copied().unwrap_or(server.device);
                    if read_ahead
                        && job.expect.is_none()
                        && merged.new_transitions.is_empty()
                        && !merged.transitions_changed
                        && listed_before == Some(Listed::of_summary(&merged.summary))
                    {
                        let changes = merged.new_changes.into_iter().map(|(hash, bytes)| (hash, bytes, attributed(&hash))).collect();
                        attempt.deferred = Some(Deferred {
                            id: *id,
                            org: principal.org.clone(),
                            changes,
                            received_at: now_ms,
                            tail_before,
                            order: merged.order,
                            assignee: merged.summary.assignee,
                        });
                        continue;
                    }
                    if !merged.new_transitions.is_empty() && trusted_from.is_none() {
                        let from: Option<i64> =
                            sqlx::query_scalar("SELECT COALESCE(last_sync_at, created_at) FROM devices WHERE id = $1")
                                .bind(principal.device.to_string())
                                .fetch_optional(&mut **tx)
                                .await?;
                        trusted_from = Some(from);
                    }
                    if let Some(Some(from)) = trusted_from {
                        for t in &merged.new_transitions {
                            let accepted = t.at_ms.clamp(from.min(now_ms), now_ms);
                            if accepted == t.at_ms {
                                continue;
                            }
                            sqlx::query(
                                "INSERT INTO clamped_claims (order_id, entry_id, device_id, claimed_at, accepted_at, received_at)
                                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                            )
                            .bind(id.to_string())
                            .bind(&t.id)
                            .bind(principal.device.to_string())
                            .bind(t.at_ms)
                            .bind(accepted)
                            .bind(now_ms)
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                    let mut last_seq = 0;
                    let mut appended = 0;
                    for (hash, bytes) in &merged.new_changes {
                        let device = attributed(hash);
                        let seq: Option<i64> = sqlx::query_scalar(
                            "INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at)
                             VALUES ($1, $2, 'change', $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING seq",
                        )
                        .bind(&principal.org)
                        .bind(&order_id)
                        .bind(hash.as_ref())
                        .bind(bytes)
                        .bind(device.to_string())
                        .bind(now_ms)
                        .fetch_optional(&mut **tx)
                        .await?;
                        appended += i32::from(seq.is_some());
                        last_seq = last_seq.max(seq.unwrap_or(0));
                    }
                    let summary = &merged.summary;
                    if summary.assignee != merged.assignee_before {
                        if let Some(before) = merged.assignee_before {
                            let seq: i64 = sqlx::query_scalar(
                                "INSERT INTO feed (org_id, order_id, kind, user_id, reason, received_at)
                                 VALUES ($1, $2, 'revoke', $3, 'reassigned', $4) RETURNING seq",
                            )
                            .bind(&principal.org)
                            .bind(&order_id)
                            .bind(before.to_string())
                            .bind(now_ms)
                            .fetch_one(&mut **tx)
                            .await?;
                            last_seq = last_seq.max(seq);
                        }
                        if let Some(after) = summary.assignee {
                            let seq: i64 = sqlx::query_scalar(
                                "INSERT INTO feed (org_id, order_id, kind, user_id, received_at)
                                 VALUES ($1, $2, 'grant', $3, $4) RETURNING seq",
                            )
                            .bind(&principal.org)
                            .bind(&order_id)
                            .bind(after.to_string())
                            .bind(now_ms)
                            .fetch_one(&mut **tx)
                            .await?;
                            last_seq = last_seq.max(seq);
                            sqlx::query("INSERT INTO order_access (order_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                                .bind(&order_id)
                                .bind(after.to_string())
                                .execute(&mut **tx)
                                .await?;
                        }
                    }
                    if let Some(before) = listed_before.as_ref().filter(|b| b.project != summary.location.project) {
                        // The order moved to another project: the dispatchers who serve the one it
                        // left (and not the one it entered) are told, those of the new one get it
                        // whole.
                        let after = &summary.location.project;
                        for (kind, reason, from, to) in
                            [("revoke", Some("moved"), &before.project, after), ("grant", None, after, &before.project)]
                        {
                            let seqs: Vec<i64> = sqlx::query_scalar(
                                "INSERT INTO feed (org_id, order_id, kind, user_id, reason, received_at)
                                 SELECT $1, $2, $3, s.user_id, $4, $5 FROM staff_projects s JOIN users u ON u.id = s.user_id
                                 WHERE u.org_id = $1 AND s.project = $6 AND NOT EXISTS (
                                    SELECT 1 FROM staff_projects t WHERE t.user_id = s.user_id AND t.project = $7)
                                 RETURNING seq",
                            )
                            .bind(&principal.org)
                            .bind(&order_id)
                            .bind(kind)
                            .bind(reason)
                            .bind(now_ms)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&mut **tx)
                            .await?;
                            last_seq = seqs.into_iter().fold(last_seq, i64::max);
                        }
                    }
                    if last_seq == 0 {
                        last_seq = Self::newest_position(tx, &order_id).await?;
                    }
                    let mut document = || saved.take().unwrap_or_else(|| merged.order.save_uncompressed());
                    if !merged.transitions_changed && listed_before == Some(Listed::of_summary(summary)) {
                        // A note, a part, time or a photo: nothing the deadline scanner reads
                        // moved, so its next check stays, and only the row's feed position and
                        // document change (a full upsert would rewrite every index of the table).
                        // The new feed rows extend the document's tail; a long tail is folded
                        // into a new snapshot.
                        if tail_before + appended <= TAIL_MAX {
                            Self::extend_tails(tx, &[(order_id.clone(), appended, last_seq)]).await?;
                        } else {
                            Self::write_snapshot(tx, &order_id, (document(), heads_blob(&merged.order)), last_seq).await?;
                        }
                    } else {
                        sqlx::query(
                            "INSERT INTO orders (id, org_id, number, kind, category, grade, status, is_open, assignee, reporter,
                                project, building, unit, area, created_at, next_deadline, doc, last_seq, awaiting_since,
                                next_check, registered_by, doc_heads)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                                $21, $22)
                             ON CONFLICT (id) DO UPDATE SET number = excluded.number, kind = excluded.kind,
                                category = excluded.category, grade = excluded.grade, status = excluded.status,
                                is_open = excluded.is_open, assignee = excluded.assignee, project = excluded.project,
                                building = excluded.building, unit = excluded.unit, area = excluded.area,
                                next_deadline = excluded.next_deadline, doc = excluded.doc, last_seq = excluded.last_seq,
                                awaiting_since = CASE WHEN excluded.awaiting_since IS NULL THEN NULL
                                    ELSE COALESCE(orders.awaiting_since, excluded.awaiting_since) END,
                                next_check = excluded.next_check, doc_seq = NULL, tail_changes = 0,
                                doc_heads = excluded.doc_heads",
                        )
                        .bind(&order_id)
                        .bind(&principal.org)
                        .bind(&summary.number)
                        .bind(summary.kind.code())
                        .bind(summary.category.code())
                        .bind(summary.grade.code())
                        .bind(summary.status.code())
                        .bind(summary.status.is_open())
                        .bind(summary.assignee.map(|a| a.to_string()))
                        .bind(summary.reporter.to_string())
                        .bind(&summary.location.project)
                        .bind(&summary.location.building)
                        .bind(&summary.location.unit)
                        .bind(&summary.location.area)
                        .bind(summary.created_at_ms)
                        .bind(summary.next_deadline_ms)
                        .bind(document())
                        .bind(last_seq)
                        .bind((summary.status == Status::AwaitingConfirmation).then_some(now_ms))
                        // The escalation scanner looks at the order at its next tick.
                        .bind(now_ms)
                        // Kept from the push that created the order (`ON CONFLICT` leaves it).
                        .bind(user.as_str())
                        .bind(heads_blob(&merged.order))
                        .execute(&mut **tx)
                        .await?;
                    }
                    outcome.merged += merged.new_changes.len();
                    outcome.feed_seq = outcome.feed_seq.max(last_seq);
                    staged.push((*id, last_seq, merged.order, merged.summary.assignee));
                }
                Ok(outcome)
            }

            /// One queue row, from a query that selects [`ITEM_COLUMNS`] `FROM` [`ITEM_FROM`].
            fn order_item(r: &<$db as sqlx::Database>::Row) -> Result<OrderListItem, sqlx::Error> {
                let stage: Option<String> = r.try_get(14)?;
                let due: Option<i64> = r.try_get(17)?;
                Ok(OrderListItem {
                    id: r.try_get(0)?,
                    number: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    category: r.try_get(3)?,
                    grade: r.try_get(4)?,
                    status: r.try_get(5)?,
                    assignee: r.try_get(6)?,
                    assignee_name: r.try_get(7)?,
                    project: r.try_get(8)?,
                    building: r.try_get(9)?,
                    unit: r.try_get(10)?,
                    area: r.try_get(11)?,
                    created_at: r.try_get(12)?,
                    next_deadline: r.try_get(13)?,
                    sla: match (stage, due) {
                        (Some(stage), Some(due_at)) => {
                            Some(SlaMarks { stage, half_at: r.try_get(15)?, warn_at: r.try_get(16)?, due_at })
                        }
                        _ => None,
                    },
                    rating: r.try_get(18)?,
                    reopen_count: r.try_get(19)?,
                })
            }

            /// One order of [`Database::record_checks`], inside its transaction.
            async fn record_one(
                tx: &mut sqlx::Transaction<'_, $db>,
                check: &CheckRecord,
                now_ms: i64,
            ) -> Result<Vec<usize>> {
                let (due, fired, facts, next_check) = (&check.due, &check.fired, &check.facts, check.next_check);
                let order_id = due.order.to_string();
                let mut recorded = Vec::new();
                for (index, f) in fired.iter().enumerate() {
                    let inserted: Option<String> = sqlx::query_scalar(
                        "INSERT INTO sla_events (org_id, order_id, stage, level, due_at, at, fired_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING order_id",
                    )
                    .bind(&due.org)
                    .bind(&order_id)
                    .bind(f.stage)
                    .bind(f.level)
                    .bind(f.due_ms)
                    .bind(f.at_ms)
                    .bind(now_ms)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if inserted.is_none() {
                        continue;
                    }
                    recorded.push(index);
                    // Announced to the organization's webhooks in the same transaction: once.
                    let hooks: Vec<String> =
                        sqlx::query_scalar("SELECT id FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL")
                            .bind(&due.org)
                            .fetch_all(&mut **tx)
                            .await?;
                    for hook in hooks {
                        let delivery = uuid::Uuid::now_v7().to_string();
                        let body = serde_json::json!({
                            "delivery_id": delivery,
                            "event": format!("sla.{}", f.level),
                            "org_id": due.org,
                            "order_id": order_id,
                            "stage": f.stage,
                            "level": f.level,
                            "at_ms": f.at_ms,
                            "due_ms": f.due_ms,
                            "fired_at_ms": now_ms,
                        });
                        sqlx::query(
                            "INSERT INTO webhook_outbox (id, org_id, webhook_id, body, attempts, next_attempt_at)
                             VALUES ($1, $2, $3, $4, 0, $5)",
                        )
                        .bind(&delivery)
                        .bind(&due.org)
                        .bind(hook)
                        .bind(body.to_string())
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                    }
                    let roles: Vec<&str> = f.roles.iter().map(|r| r.code()).collect();
                    let mut users: Vec<String> = Vec::new();
                    for role in roles {
                        // Dispatchers bound to projects hear of their projects' orders only.
                        let ids: Vec<String> = sqlx::query_scalar(
                            "SELECT id FROM users WHERE org_id = $1 AND role = $2 AND disabled_at IS NULL
                                AND (role <> 'dispatcher' OR NOT EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = users.id)
                                    OR EXISTS (SELECT 1 FROM staff_projects s JOIN orders o ON o.project = s.project
                                        WHERE s.user_id = users.id AND o.id = $3))
                             ORDER BY id",
                        )
                        .bind(&due.org)
                        .bind(role)
                        .bind(&order_id)
                        .fetch_all(&mut **tx)
                        .await?;
                        users.extend(ids);
                    }
                    users.extend(f.assignee.clone());
                    users.sort();
                    users.dedup();
                    for user in users {
                        sqlx::query(
                            "INSERT INTO notifications (id, org_id, user_id, order_id, stage, level, due_at, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind(&due.org)
                        .bind(user)
                        .bind(&order_id)
                        .bind(f.stage)
                        .bind(f.level)
                        .bind(f.due_ms)
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                // A push since the read set `next_check` to its own time: leave that (and the
                // facts of the document it read) for the next tick.
                let current = sqlx::query(
                    "UPDATE orders SET next_check = $1, sla_stage = $4, sla_half_at = $5, sla_warn_at = $6,
                        sla_due_at = $7, next_deadline = $7
                     WHERE id = $2 AND next_check = $3",
                )
                .bind(next_check)
                .bind(&order_id)
                .bind(due.next_check)
                .bind(facts.sla_stage)
                .bind(facts.sla_half_at)
                .bind(facts.sla_warn_at)
                .bind(facts.sla_due_at)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1;
                if current {
                    // Breaches are never cleared: they are read from the records, these included.
                    let breached = |stage: &str| {
                        format!(
                            "CASE WHEN EXISTS (SELECT 1 FROM sla_events WHERE order_id = $1 AND stage = '{stage}'
                                AND level = 'breach') THEN 1 ELSE 0 END"
                        )
                    };
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO order_facts (order_id, org_id, project, building, kind, category, grade, status,
                            is_open, assignee, registered_by, created_at, created_how, assigned_at, accepted_at,
                            arrived_at, completed_at, finished_at, rating, reopen_count, auto_confirmed, visited_by,
                            response_breached, arrival_breached, resolution_breached)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                            (SELECT registered_by FROM orders WHERE id = $1), $11, $12, $13, $14, $15, $16, $17, $18,
                            $19, $20, $21, {}, {}, {})
                         ON CONFLICT (order_id) DO UPDATE SET project = excluded.project,
                            building = excluded.building, kind = excluded.kind, category = excluded.category,
                            grade = excluded.grade, status = excluded.status, is_open = excluded.is_open,
                            assignee = excluded.assignee, registered_by = excluded.registered_by,
                            created_at = excluded.created_at, created_how = excluded.created_how,
                            assigned_at = excluded.assigned_at, accepted_at = excluded.accepted_at,
                            arrived_at = excluded.arrived_at, completed_at = excluded.completed_at,
                            finished_at = excluded.finished_at, rating = excluded.rating,
                            reopen_count = excluded.reopen_count, auto_confirmed = excluded.auto_confirmed,
                            visited_by = excluded.visited_by, response_breached = excluded.response_breached,
                            arrival_breached = excluded.arrival_breached,
                            resolution_breached = excluded.resolution_breached",
                        breached("response"),
                        breached("arrival"),
                        breached("resolution"),
                    )))
                    .bind(&order_id)
                    .bind(&due.org)
                    .bind(&facts.project)
                    .bind(facts.building.as_deref())
                    .bind(facts.kind)
                    .bind(&facts.category)
                    .bind(facts.grade)
                    .bind(facts.status)
                    .bind(facts.is_open)
                    .bind(facts.assignee.as_deref())
                    .bind(facts.created_at)
                    .bind(facts.created_how)
                    .bind(facts.assigned_at)
                    .bind(facts.accepted_at)
                    .bind(facts.arrived_at)
                    .bind(facts.completed_at)
                    .bind(facts.finished_at)
                    .bind(facts.rating)
                    .bind(facts.reopen_count)
                    .bind(i64::from(facts.auto_confirmed))
                    .bind(facts.visited_by.as_deref())
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(recorded)
            }

            /// Whether the user is an owner of the unit.
            async fn owns_unit(
                tx: &mut sqlx::Transaction<'_, $db>,
                user: &str,
                project: &str,
                building: &Option<String>,
                unit: &Option<String>,
            ) -> Result<bool> {
                let (Some(building), Some(unit)) = (building, unit) else { return Ok(false) };
                let owns: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM owner_units
                     WHERE user_id = $1 AND project = $2 AND building = $3 AND unit = $4)",
                )
                .bind(user)
                .bind(project)
                .bind(building.as_str())
                .bind(unit.as_str())
                .fetch_one(&mut **tx)
                .await?;
                Ok(owns)
            }

            /// The organization's newest feed position and its check, and the check of the row
            /// at `seq` (a device's cursor; `None` if the organization has no row there), in one
            /// query.
            async fn feed_positions(&self, org: &str, seq: i64) -> Result<(i64, String, Option<String>)> {
                let rows: Vec<PositionRow> = sqlx::query_as(
                    "SELECT l.seq, f.seq, f.order_id, f.kind, f.hash, f.user_id
                     FROM (SELECT COALESCE(MAX(seq), 0) AS seq FROM feed WHERE org_id = $1) l
                     LEFT JOIN feed f ON f.org_id = $1 AND (f.seq = l.seq OR f.seq = $2)",
                )
                .bind(org)
                .bind(seq)
                .fetch_all(&self.pool)
                .await?;
                Ok(positions_of(&rows, seq))
            }

            /// [`Self::feed_positions`] and the device's page after `seq` (see
            /// [`positions_and_page_query`]), in one statement.
            async fn positions_and_page(
                &self,
                principal: &Principal,
                seq: i64,
                limit: usize,
            ) -> Result<((i64, String, Option<String>), Vec<FeedRow>)> {
                type Row = (
                    i32,
                    Option<i64>,
                    Option<i64>,
                    Option<String>,
                    Option<String>,
                    Option<Vec<u8>>,
                    Option<String>,
                    Option<Vec<u8>>,
                    Option<String>,
                );
                let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(positions_and_page_query(Scope::of(principal))))
                    .bind(&principal.org)
                    .bind(seq)
                    .bind(principal.user.to_string())
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?;
                let mut positions = Vec::new();
                let mut page = Vec::new();
                for (part, latest, at, order, kind, bytes, reason, hash, user) in rows {
                    match (part, at, order, kind) {
                        (0, _, order, kind) => positions.push((latest.unwrap_or(0), at, order, kind, hash, user)),
                        (_, Some(at), Some(order), Some(kind)) => page.push((at, kind, order, bytes, reason, hash)),
                        _ => return Err(ApiError::internal()),
                    }
                }
                Ok((positions_of(&positions, seq), page))
            }

            /// The fingerprint of the organization's feed row at `seq` (empty at 0), or `None`
            /// if there is no such row.
            async fn feed_check(&self, org: &str, seq: i64) -> Result<Option<String>> {
                if seq == 0 {
                    return Ok(Some(String::new()));
                }
                let row: Option<(String, String, Option<Vec<u8>>, Option<String>)> = sqlx::query_as(
                    "SELECT order_id, kind, hash, user_id FROM feed WHERE seq = $1 AND org_id = $2",
                )
                .bind(seq)
                .bind(org)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(order, kind, hash, user)| {
                    replication::feed_check(&order, &kind, hash.as_deref(), user.as_deref())
                }))
            }

            async fn next_number(tx: &mut sqlx::Transaction<'_, $db>, org: &str, now_ms: i64) -> Result<String> {
                let day = loopwork_sync_core::china_time::day_code(now_ms);
                let next: i64 = sqlx::query_scalar(
                    "INSERT INTO number_counters (org_id, day, next) VALUES ($1, $2, 1)
                     ON CONFLICT (org_id, day) DO UPDATE SET next = number_counters.next + 1
                     RETURNING next",
                )
                .bind(org)
                .bind(&day)
                .fetch_one(&mut **tx)
                .await?;
                Ok(format!("GD{day}{next:04}"))
            }
        }

        #[async_trait]
        impl Database for $name {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn epoch(&self) -> Result<String> {
                Ok(self.fixed.epoch.clone())
            }

            async fn server_identity(&self) -> Result<Identity> {
                Ok(self.fixed.server)
            }

            async fn actor_author(&self, org: &str, actor: &automerge::ActorId) -> Result<Option<Identity>> {
                let Some(device) = DeviceId::from_actor(actor) else { return Ok(None) };
                if server_actor(&self.fixed.secret, Some(*device.as_uuid().as_bytes())) == device {
                    return Ok(Some(Identity::new(self.fixed.server.user, Role::System, device)));
                }
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT u.id, u.role FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1 AND d.org_id = $2",
                )
                .bind(device.to_string())
                .bind(org)
                .fetch_optional(&self.pool)
                .await?;
                let Some((user, role)) = row else { return Ok(None) };
                let user = user.parse().map_err(|_| ApiError::internal())?;
                let role = Role::from_code(&role).map_err(|_| ApiError::internal())?;
                Ok(Some(Identity::new(user, role, device)))
            }

            fn receipt_secret(&self) -> &str {
                &self.fixed.secret
            }

            async fn quarantine(&self, org: &str, order: OrderId, reason: &str, now_ms: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE orders SET quarantined_at = $3, quarantine_reason = $4
                     WHERE id = $1 AND org_id = $2 AND quarantined_at IS NULL",
                )
                .bind(order.to_string())
                .bind(org)
                .bind(now_ms)
                .bind(reason)
                .execute(&self.pool)
                .await?;
                let newly = done.rows_affected() > 0;
                if newly {
                    self.fixed.quarantined.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(newly)
            }

            async fn load_stored(&self, org: &str, order: OrderId, doc: &[u8]) -> Result<WorkOrder> {
                match WorkOrder::load(doc) {
                    Ok(loaded) => Ok(loaded),
                    Err(e) => {
                        let now_ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as i64);
                        if self.quarantine(org, order, &e.to_string(), now_ms).await? {
                            tracing::error!(%order, error = %e, "an order's stored history does not load: quarantined");
                        }
                        Err(ApiError::quarantined(order))
                    }
                }
            }

            fn quarantined_here(&self) -> u64 {
                self.fixed.quarantined.load(std::sync::atomic::Ordering::Relaxed)
            }

            async fn is_quarantined(&self, org: &str, order: OrderId) -> Result<bool> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1 AND org_id = $2 AND quarantined_at IS NOT NULL)",
                )
                .bind(order.to_string())
                .bind(org)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn check_stored(&self, limit: i64, now_ms: i64) -> Result<(usize, Vec<OrderId>)> {
                let mut conn = self.pool.acquire().await?;
                let rows: Vec<(String, String, Vec<u8>, Option<i64>, i32)> = sqlx::query_as(
                    "SELECT org_id, id, doc, doc_seq, tail_changes FROM orders
                     WHERE doc_heads IS NULL AND quarantined_at IS NULL ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                let orgs: HashMap<String, String> = rows.iter().map(|r| (r.1.clone(), r.0.clone())).collect();
                let stored = rows.into_iter().map(|(_, id, doc, doc_seq, tail)| (id, doc, doc_seq, tail)).collect();
                let whole = Self::whole_documents(&mut conn, stored).await?;
                drop(conn);
                let checked = whole.len();
                let mut quarantined = Vec::new();
                for (id, doc) in whole {
                    let order: OrderId = id.parse().map_err(|_| ApiError::internal())?;
                    match WorkOrder::load(&doc) {
                        Ok(loaded) => {
                            // The whole document's heads: with a tail they are later than the
                            // snapshot's, and vouch for it all the same (receipts are for changes
                            // stored here, and a change's hash covers its dependencies).
                            sqlx::query("UPDATE orders SET doc_heads = $2 WHERE id = $1 AND doc_heads IS NULL")
                                .bind(&id)
                                .bind(heads_blob(&loaded))
                                .execute(&self.pool)
                                .await?;
                        }
                        Err(e) => {
                            let org = orgs.get(&id).cloned().unwrap_or_default();
                            if self.quarantine(&org, order, &e.to_string(), now_ms).await? {
                                quarantined.push(order);
                            }
                        }
                    }
                }
                Ok((checked, quarantined))
            }

            async fn has_organizations(&self) -> Result<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(&self.pool).await?;
                Ok(n > 0)
            }

            async fn create_organization(&self, name: &str, now_ms: i64) -> Result<String> {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(&id)
                    .bind(name)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(id)
            }

            async fn create_project(&self, org: &str, code: &str, name: &str) -> Result<()> {
                sqlx::query("INSERT INTO projects (org_id, code, name) VALUES ($1, $2, $3)")
                    .bind(org)
                    .bind(code)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_user(&self, user: &NewUser, now_ms: i64) -> Result<UserId> {
                let id = UserId::new();
                let done = sqlx::query(
                    "INSERT INTO users (id, org_id, login, password_hash, role, display_name, phone, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (login) DO NOTHING",
                )
                .bind(id.to_string())
                .bind(&user.org)
                .bind(&user.login)
                .bind(&user.password_hash)
                .bind(user.role.code())
                .bind(&user.display_name)
                .bind(&user.phone)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        "login_taken",
                        "that login is taken",
                        "该账号已存在",
                    ));
                }
                Ok(id)
            }

            async fn bind_unit(&self, user: UserId, project: &str, building: &str, unit: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO owner_units (user_id, project, building, unit) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(user.to_string())
                .bind(project)
                .bind(building)
                .bind(unit)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn has_project(&self, org: &str, code: &str) -> Result<bool> {
                Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND code = $2)")
                    .bind(org)
                    .bind(code)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn bind_project(&self, user: UserId, project: &str) -> Result<()> {
                let (dispatcher, known): (bool, bool) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'dispatcher'),
                        EXISTS (SELECT 1 FROM users u JOIN projects p ON p.org_id = u.org_id WHERE u.id = $1 AND p.code = $2)",
                )
                .bind(user.to_string())
                .bind(project)
                .fetch_one(&self.pool)
                .await?;
                if !dispatcher {
                    return Err(ApiError::invalid(
                        "not_a_dispatcher",
                        "only dispatchers are bound to projects",
                        "只有客服/调度可以绑定项目",
                    ));
                }
                if !known {
                    return Err(ApiError::invalid(
                        "unknown_project",
                        format!("the organization has no project {project}"),
                        "本机构没有这个项目",
                    ));
                }
                sqlx::query("INSERT INTO staff_projects (user_id, project) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(user.to_string())
                    .bind(project)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn served_projects(&self, principal: &Principal) -> Result<Option<Vec<String>>> {
                if !matches!(Scope::of(principal), Scope::Projects(_)) {
                    return Ok(None);
                }
                let projects: Vec<String> =
                    sqlx::query_scalar("SELECT project FROM staff_projects WHERE user_id = $1 ORDER BY project")
                        .bind(principal.user.to_string())
                        .fetch_all(&self.pool)
                        .await?;
                Ok(Some(projects))
            }

            async fn order_in_scope(&self, principal: &Principal, order: OrderId) -> Result<bool> {
                let sql = format!(
                    "SELECT EXISTS (SELECT 1 FROM orders WHERE org_id = $1 AND id = $2 AND $3 = $3 AND {})",
                    scope_filter(Scope::of(principal), "id")
                );
                Ok(sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(&principal.org)
                    .bind(order.to_string())
                    .bind(principal.user.to_string())
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
                let row: Option<(String, String, String, String)> = sqlx::query_as(
                    "SELECT id, org_id, role, password_hash FROM users WHERE login = $1 AND disabled_at IS NULL",
                )
                .bind(login)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(id, org, role, password_hash)| {
                    Ok(UserRecord {
                        id: id.parse().map_err(|_| ApiError::internal())?,
                        org,
                        role: Role::from_code(&role).map_err(|_| ApiError::internal())?,
                        password_hash,
                    })
                })
                .transpose()
            }

            async fn register_device(&self, user: &UserRecord, name: &str, token_hash: &str, now_ms: i64) -> Result<DeviceId> {
                let id = DeviceId::new();
                sqlx::query(
                    "INSERT INTO devices (id, user_id, org_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(user.id.to_string())
                .bind(&user.org)
                .bind(name)
                .bind(token_hash)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(id)
            }

            async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>> {
                let row: Option<(String, String, String, String, bool)> = sqlx::query_as(PRINCIPAL_BY_TOKEN)
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(principal_from).transpose()
            }

            async fn revoke_device(&self, org: &str, device: DeviceId, now_ms: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(device.to_string())
                .bind(org)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn push(
                &self,
                principal: &Principal,
                groups: &[(OrderId, Vec<Change>)],
                relayed_authors: &[Identity],
                now_ms: i64,
            ) -> Result<PushOutcome> {
                self.push_job(principal, groups, relayed_authors, now_ms, None).await
            }

            async fn clamped_times(&self, order: OrderId) -> Result<HashMap<String, i64>> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT entry_id, accepted_at FROM clamped_claims WHERE order_id = $1")
                        .bind(order.to_string())
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().collect())
            }

            async fn awaiting_due(&self, now_ms: i64, limit: i64) -> Result<Vec<(String, OrderId)>> {
                // At least a day old by the index, then each organization's own wait.
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT o.org_id, o.id FROM orders o LEFT JOIN closed_loop_settings s ON s.org_id = o.org_id
                     WHERE o.awaiting_since IS NOT NULL AND o.awaiting_since <= $1 - 86400000
                       AND o.awaiting_since <= $1 - COALESCE(s.auto_confirm_days, 3) * 86400000
                     ORDER BY o.awaiting_since LIMIT $2",
                )
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(org, id)| Ok((org, id.parse().map_err(|_| ApiError::internal())?)))
                    .collect()
            }

            async fn server_action(&self, org: &str, order: OrderId, action: Action, expect: Status, now_ms: i64) -> Result<bool> {
                let Some(doc) = self.stored_document(org, &order.to_string()).await? else { return Ok(false) };
                let server = self.fixed.server;
                let mut document = self.load_stored(org, order, &doc).await?.with_device(server.device);
                let before = document.heads();
                if document.transition(&server, action, None, now_ms).is_err() {
                    return Ok(false);
                }
                let changes = document
                    .changes_since(&before)
                    .into_iter()
                    .map(|(_, bytes)| loopwork_sync_core::work_order::parse_change(&bytes).map_err(|_| ApiError::internal()))
                    .collect::<Result<Vec<_>>>()?;
                let principal = Principal {
                    user: server.user,
                    role: Role::System,
                    org: org.to_owned(),
                    device: server.device,
                    project_bound: false,
                };
                let outcome = self.push_job(&principal, &[(order, changes)], &[], now_ms, Some(expect)).await?;
                Ok(outcome.merged > 0)
            }

            async fn checks_due(&self, now_ms: i64, limit: i64) -> Result<Vec<CheckDue>> {
                let mut conn = self.pool.acquire().await?;
                let rows: Vec<(String, String, i64, Vec<u8>, Option<i64>, i32)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT org_id, id, next_check, {DOC_COLUMNS} FROM orders
                     WHERE next_check IS NOT NULL AND next_check <= $1 ORDER BY next_check LIMIT $2"
                )))
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                let mut due = Vec::with_capacity(rows.len());
                let mut stored = Vec::with_capacity(rows.len());
                for (org, id, next_check, doc, doc_seq, tail) in rows {
                    due.push((org, id.parse().map_err(|_| ApiError::internal())?, next_check));
                    stored.push((id, doc, doc_seq, tail));
                }
                let docs = Self::whole_documents(&mut conn, stored).await?;
                Ok(due
                    .into_iter()
                    .zip(docs)
                    .map(|((org, order, next_check), (_, doc))| CheckDue { org, order, doc, next_check })
                    .collect())
            }

            async fn record_checks(&self, checks: &[CheckRecord], now_ms: i64) -> Result<Vec<Vec<usize>>> {
                let mut tx = Self::begin_write(&self.pool).await?;
                let mut recorded = Vec::with_capacity(checks.len());
                for check in checks {
                    recorded.push(Self::record_one(&mut tx, check, now_ms).await?);
                }
                tx.commit().await?;
                Ok(recorded)
            }

            async fn sla_events(&self, org: &str, order: OrderId) -> Result<Vec<SlaEventRecord>> {
                let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
                    "SELECT stage, level, at, due_at, fired_at FROM sla_events WHERE order_id = $1 AND org_id = $2
                     ORDER BY at, stage, level",
                )
                .bind(order.to_string())
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(stage, level, at_ms, due_ms, fired_at_ms)| SlaEventRecord { stage, level, at_ms, due_ms, fired_at_ms })
                    .collect())
            }

            async fn notifications(&self, principal: &Principal, limit: i64) -> Result<Vec<NotificationRecord>> {
                let rows: Vec<(String, String, String, String, i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT id, order_id, stage, level, due_at, created_at, read_at FROM notifications
                     WHERE user_id = $1 AND org_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
                )
                .bind(principal.user.to_string())
                .bind(&principal.org)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, order_id, stage, level, due_ms, created_at_ms, read_at_ms)| NotificationRecord {
                        id,
                        order_id,
                        stage,
                        level,
                        due_ms,
                        created_at_ms,
                        read_at_ms,
                    })
                    .collect())
            }

            async fn mark_read(&self, principal: &Principal, id: &str, now_ms: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3",
                )
                .bind(now_ms)
                .bind(id)
                .bind(principal.user.to_string())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_webhook(&self, org: &str, url: &str, secret: &str, now_ms: i64) -> Result<String> {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query("INSERT INTO webhooks (id, org_id, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&id)
                    .bind(org)
                    .bind(url)
                    .bind(secret)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(id)
            }

            async fn webhooks(&self, org: &str) -> Result<Vec<WebhookRecord>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT id, url, created_at FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at",
                )
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id, url, created_at_ms)| WebhookRecord { id, url, created_at_ms }).collect())
            }

            async fn delete_webhook(&self, org: &str, id: &str, now_ms: i64) -> Result<bool> {
                let done = sqlx::query("UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND org_id = $3 AND deleted_at IS NULL")
                    .bind(now_ms)
                    .bind(id)
                    .bind(org)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn outbox_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>> {
                let rows: Vec<(String, String, String, String, String, i64, i64)> = sqlx::query_as(
                    "SELECT o.id, w.org_id, w.url, w.secret, o.body, CAST(o.attempts AS BIGINT), o.next_attempt_at
                     FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
                     WHERE o.delivered_at IS NULL AND o.next_attempt_at IS NOT NULL AND o.next_attempt_at <= $1
                       AND w.deleted_at IS NULL
                     ORDER BY o.next_attempt_at LIMIT $2",
                )
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, org, url, secret, body, attempts, next_attempt_at)| OutboxRow { id, org, url, secret, body, attempts, next_attempt_at })
                    .collect())
            }

            async fn claim_delivery(&self, row: &OutboxRow, until_ms: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE webhook_outbox SET next_attempt_at = $1
                     WHERE id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL",
                )
                .bind(until_ms)
                .bind(&row.id)
                .bind(row.next_attempt_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn finish_delivery(&self, id: &str, delivered_at: Option<i64>, next_attempt_at: Option<i64>, error: Option<&str>) -> Result<()> {
                sqlx::query(
                    "UPDATE webhook_outbox SET delivered_at = $1, next_attempt_at = $2, last_error = $3,
                            attempts = attempts + 1 WHERE id = $4",
                )
                .bind(delivered_at)
                .bind(next_attempt_at)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn org_setting(&self, org: &str, name: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM org_settings WHERE org_id = $1 AND name = $2")
                    .bind(org)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn set_org_setting(&self, org: &str, name: &str, value: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO org_settings (org_id, name, value) VALUES ($1, $2, $3)
                     ON CONFLICT (org_id, name) DO UPDATE SET value = excluded.value",
                )
                .bind(org)
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn sla_book(&self, org: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT book FROM sla_books WHERE org_id = $1").bind(org).fetch_optional(&self.pool).await?)
            }

            async fn set_sla_book(&self, org: &str, book: &str) -> Result<()> {
                let mut tx = Self::begin_write(&self.pool).await?;
                sqlx::query(
                    "INSERT INTO sla_books (org_id, book) VALUES ($1, $2)
                     ON CONFLICT (org_id) DO UPDATE SET book = excluded.book",
                )
                .bind(org)
                .bind(book)
                .execute(&mut *tx)
                .await?;
                // Every open order's deadlines may move: the scanner looks at each at once.
                sqlx::query("UPDATE orders SET next_check = 0 WHERE org_id = $1 AND is_open = TRUE")
                    .bind(org)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn auto_confirm_days(&self, org: &str) -> Result<i64> {
                let days: Option<i64> =
                    sqlx::query_scalar("SELECT CAST(auto_confirm_days AS BIGINT) FROM closed_loop_settings WHERE org_id = $1")
                        .bind(org)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(days.unwrap_or(DEFAULT_AUTO_CONFIRM_DAYS))
            }

            async fn set_auto_confirm_days(&self, org: &str, days: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO closed_loop_settings (org_id, auto_confirm_days) VALUES ($1, $2)
                     ON CONFLICT (org_id) DO UPDATE SET auto_confirm_days = excluded.auto_confirm_days",
                )
                .bind(org)
                .bind(days as i32)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn orders_in_status(
                &self,
                principal: &Principal,
                statuses: &[Status],
                limit: i64,
            ) -> Result<Vec<(OrderId, Vec<u8>)>> {
                let mut out = Vec::new();
                let sql = format!(
                    "SELECT id, {DOC_COLUMNS} FROM orders WHERE org_id = $1 AND status = $2 AND $3 = $3 AND {}
                     ORDER BY created_at LIMIT $4",
                    scope_filter(Scope::of(principal), "id")
                );
                for status in statuses {
                    let mut conn = self.pool.acquire().await?;
                    let rows: Vec<StoredDocRow> = sqlx::query_as(AssertSqlSafe(sql.clone()))
                    .bind(&principal.org)
                    .bind(status.code())
                    .bind(principal.user.to_string())
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                    for (id, doc) in Self::whole_documents(&mut conn, rows).await? {
                        out.push((id.parse().map_err(|_| ApiError::internal())?, doc));
                    }
                }
                Ok(out)
            }


            async fn pull(&self, request: PullRequest<'_>) -> Result<SyncResponse> {
                let principal = request.principal;
                let scope = Scope::of(principal);
                let user = principal.user.to_string();
                let epoch = self.epoch().await?;
                let at = request.cursor.as_ref().map_or(0, |c| c.seq);
                // A steady sync (a cursor past its first sync, nothing to reconcile) reads the
                // feed's positions and its page in one statement; others read the positions first.
                let steady = request.cursor.as_ref().is_some_and(|c| c.snapshot_after.is_none()) && request.reconcile.is_empty();
                let ((latest, latest_check, check_at_cursor), page) = if steady {
                    let (positions, page) = self.positions_and_page(principal, at, request.limit).await?;
                    (positions, Some(page))
                } else {
                    (self.feed_positions(&principal.org, at).await?, None)
                };
                let mut response = SyncResponse::default();
                let cursor = match request.cursor {
                    None => Cursor {
                        epoch: epoch.clone(),
                        seq: latest,
                        check: latest_check.clone(),
                        snapshot_after: Some(OrderId::from_uuid(uuid::Uuid::nil())),
                    },
                    Some(c) => {
                        let known = c.epoch == epoch
                            && c.seq <= latest
                            && check_at_cursor.as_deref() == Some(c.check.as_str());
                        if !known {
                            response.reconcile_required = true;
                            response.cursor = String::new();
                            return Ok(response);
                        }
                        c
                    }
                };

                if !request.reconcile.is_empty() {
                    let named: BTreeMap<String, OrderId> =
                        request.reconcile.iter().map(|h| (h.order.to_string(), h.order)).collect();
                    let sql = format!(
                        "SELECT {DOC_COLUMNS} FROM orders WHERE org_id = $1 AND id = $2 AND $3 = $3 AND {}",
                        scope_filter(scope, "id")
                    );
                    let mut conn = self.pool.acquire().await?;
                    for (id, order) in named {
                        let row: Option<StoredDoc> = sqlx::query_as(AssertSqlSafe(sql.clone()))
                            .bind(&principal.org)
                            .bind(&id)
                            .bind(&user)
                            .fetch_optional(&mut *conn)
                            .await?;
                        let known_elsewhere: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)")
                            .bind(&id)
                            .fetch_one(&mut *conn)
                            .await?;
                        match row {
                            Some(stored) => {
                                let doc = Self::whole_document(&mut conn, &id, stored).await?;
                                let heads = self.load_stored(&principal.org, order, &doc).await?.heads();
                                response.server_heads.push(OrderHeads { order, heads })
                            }
                            // Unknown here (lost with a restored database): the device sends it all again.
                            None if !known_elsewhere => response.server_heads.push(OrderHeads { order, heads: Vec::new() }),
                            None => {}
                        }
                    }
                }

                if let Some(after) = cursor.snapshot_after {
                    // First sync: every order in scope, whole, in id order; then the feed from `seq`.
                    let sql = format!(
                        "SELECT id, {VOUCHED_DOC_COLUMNS} FROM orders WHERE org_id = $1 AND id > $2 AND $3 = $3 AND {} ORDER BY id LIMIT $4",
                        scope_filter(scope, "id")
                    );
                    let after_text = if after.as_uuid().is_nil() { String::new() } else { after.to_string() };
                    let mut conn = self.pool.acquire().await?;
                    let rows: Vec<VouchedDocRow> = sqlx::query_as(AssertSqlSafe(sql))
                        .bind(&principal.org)
                        .bind(&after_text)
                        .bind(&user)
                        .bind(request.limit as i64)
                        .fetch_all(&mut *conn)
                        .await?;
                    let rows = self.vouched_documents(&mut conn, &principal.org, rows).await?;
                    let mut bytes = 0;
                    let mut last = None;
                    let full_page = rows.len() == request.limit;
                    let mut cut = false;
                    for (order, doc, receipts) in rows {
                        if bytes > 0 && bytes + doc.len() > request.max_bytes {
                            cut = true;
                            break;
                        }
                        bytes += doc.len();
                        last = Some(order);
                        response.documents.push(OrderBytes { order, bytes: doc });
                        response.receipts.extend(receipts);
                    }
                    response.has_more = full_page || cut;
                    let next = if response.has_more { last.or(Some(after)) } else { None };
                    response.cursor = Cursor { epoch, seq: cursor.seq, check: cursor.check, snapshot_after: next }.encode();
                    return Ok(response);
                }

                let rows: Vec<FeedRow> = match page {
                    Some(page) => page,
                    None => {
                        sqlx::query_as(AssertSqlSafe(feed_query(scope, "$5")))
                            .bind(&principal.org)
                            .bind(cursor.seq)
                            .bind(&user)
                            .bind(request.limit as i64)
                            .bind(latest)
                            .fetch_all(&self.pool)
                            .await?
                    }
                };
                let full_page = rows.len() == request.limit;
                let mut next_seq = cursor.seq;
                let mut bytes = 0;
                let mut cut = false;
                let echo: HashSet<&[u8]> = request.just_pushed.iter().map(|h| h.as_ref()).collect();
                for (seq, kind, order, change, reason, hash) in rows {
                    if kind == "change" && hash.as_deref().is_some_and(|h| echo.contains(h)) {
                        next_seq = seq;
                        continue;
                    }
                    let order: OrderId = order.parse().map_err(|_| ApiError::internal())?;
                    let mut receipts = Vec::new();
                    let item: Vec<u8> = match kind.as_str() {
                        "change" => {
                            if let Some(hash) = hash.as_deref().and_then(|h| ChangeHash::try_from(h).ok()) {
                                receipts.push(replication::receipt(&self.fixed.secret, &principal.org, order, &hash));
                            }
                            change.unwrap_or_default()
                        }
                        // Sent whole only if still in scope: an order given and taken back before
                        // this pull is not shown (its revocation follows).
                        "grant" if !self.order_in_scope(principal, order).await? => {
                            next_seq = seq;
                            continue;
                        }
                        "grant" => match self.vouched_document(&principal.org, order).await? {
                            Some((doc, vouched)) => {
                                receipts = vouched;
                                doc
                            }
                            None => Vec::new(),
                        },
                        _ => Vec::new(),
                    };
                    if bytes > 0 && bytes + item.len() > request.max_bytes {
                        cut = true;
                        break;
                    }
                    bytes += item.len();
                    response.receipts.extend(receipts);
                    match kind.as_str() {
                        "change" => response.changes.push(OrderBytes { order, bytes: item }),
                        "grant" => response.documents.push(OrderBytes { order, bytes: item }),
                        _ => response.revoked.push(Revocation { order, reason: reason.unwrap_or_else(|| "revoked".into()) }),
                    }
                    next_seq = seq;
                }
                response.has_more = full_page || cut;
                if !response.has_more {
                    next_seq = latest;
                }
                let check = if next_seq == cursor.seq {
                    cursor.check
                } else if next_seq == latest {
                    latest_check
                } else {
                    self.feed_check(&principal.org, next_seq).await?.unwrap_or_default()
                };
                response.cursor = Cursor { epoch, seq: next_seq, check, snapshot_after: None }.encode();
                Ok(response)
            }

            async fn order_doc(&self, principal: &Principal, order: OrderId) -> Result<Option<Vec<u8>>> {
                let sql = format!(
                    "SELECT {DOC_COLUMNS} FROM orders WHERE org_id = $1 AND id = $2 AND $3 = $3 AND {}",
                    scope_filter(Scope::of(principal), "id")
                );
                let id = order.to_string();
                let mut conn = self.pool.acquire().await?;
                let stored: Option<StoredDoc> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(&principal.org)
                    .bind(&id)
                    .bind(principal.user.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                match stored {
                    Some(stored) => Ok(Some(Self::whole_document(&mut conn, &id, stored).await?)),
                    None => Ok(None),
                }
            }

            async fn query_orders(&self, principal: &Principal, filter: &OrderFilter, now_ms: i64) -> Result<Vec<OrderListItem>> {
                // The page is chosen on the orders table alone (its first columns), then joined: a
                // queue of 100,000 open orders sorts narrow rows and joins two hundred.
                let order = "o.is_open DESC, o.next_deadline IS NULL, o.next_deadline, o.created_at DESC, o.id";
                let sql = format!(
                    "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM} JOIN (
                     SELECT o.id FROM orders o
                     WHERE o.org_id = $1 AND $3 = $3 AND {}
                       AND ($4 IS NULL OR o.status = $4 OR ($4 = 'open' AND o.is_open = TRUE))
                       AND ($5 IS NULL OR o.kind = $5) AND ($6 IS NULL OR o.grade = $6)
                       AND ($7 IS NULL OR o.category = $7) AND ($8 IS NULL OR o.project = $8)
                       AND ($9 IS NULL OR o.building = $9) AND ($10 IS NULL OR o.unit = $10)
                       AND ($11 IS NULL OR o.assignee = $11)
                       AND ($12 = FALSE OR (o.is_open = TRUE AND o.next_deadline < $13))
                       AND ($14 IS NULL OR o.number LIKE $14 ESCAPE '\\' OR o.unit LIKE $14 ESCAPE '\\')
                       AND ($15 IS NULL OR o.created_at >= $15) AND ($16 IS NULL OR o.created_at < $16)
                       AND ($17 IS NULL OR o.id IN (SELECT order_id FROM order_facts
                           WHERE org_id = $1 AND created_how = $17)) AND ($18 IS NULL OR o.id = $18)
                     ORDER BY {order} LIMIT $2) page ON page.id = o.id
                     ORDER BY {order}",
                    scope_filter(Scope::of(principal), "o.id")
                );
                // What the user typed, matched literally: `%` and `_` are escaped, not wildcards.
                let q = filter.q.as_deref().map(|q| {
                    format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
                });
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(&principal.org)
                    .bind(filter.limit.unwrap_or(200).clamp(1, 500))
                    .bind(principal.user.to_string())
                    .bind(filter.status.as_deref())
                    .bind(filter.kind.as_deref())
                    .bind(filter.grade.as_deref())
                    .bind(filter.category.as_deref())
                    .bind(filter.project.as_deref())
                    .bind(filter.building.as_deref())
                    .bind(filter.unit.as_deref())
                    .bind(filter.assignee.as_deref())
                    .bind(filter.overdue)
                    .bind(now_ms)
                    .bind(q)
                    .bind(filter.from)
                    .bind(filter.to)
                    .bind(filter.hour_of_week)
                    .bind(filter.id.as_deref())
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(Self::order_item).collect::<Result<_, sqlx::Error>>()?)
            }

            async fn possible_duplicates(
                &self,
                principal: &Principal,
                location: &loopwork_sync_core::Location,
                category: &str,
                since_ms: i64,
                except: OrderId,
            ) -> Result<Vec<OrderListItem>> {
                let sql = format!(
                    "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM}
                     WHERE o.org_id = $1 AND o.project = $2 AND o.building = $3 AND o.unit = $4 AND o.category = $5
                       AND o.created_at >= $6 AND o.id <> $7 AND o.is_open = TRUE
                     ORDER BY o.created_at DESC LIMIT 10"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(&principal.org)
                    .bind(&location.project)
                    .bind(&location.building)
                    .bind(&location.unit)
                    .bind(category)
                    .bind(since_ms)
                    .bind(except.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(Self::order_item).collect::<Result<_, sqlx::Error>>()?)
            }

            async fn me(&self, principal: &Principal) -> Result<MeRecord> {
                let user = principal.user.to_string();
                let name: String = sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
                    .bind(&user)
                    .fetch_one(&self.pool)
                    .await?;
                let units: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT project, building, unit FROM owner_units WHERE user_id = $1 ORDER BY project, building, unit",
                )
                .bind(&user)
                .fetch_all(&self.pool)
                .await?;
                // A dispatcher bound to projects registers orders in those only.
                let projects: Vec<(String, String)> = sqlx::query_as(
                    "SELECT code, name FROM projects WHERE org_id = $1
                        AND ($2 = 0 OR code IN (SELECT project FROM staff_projects WHERE user_id = $3)) ORDER BY code",
                )
                .bind(&principal.org)
                .bind(i32::from(principal.project_bound))
                .bind(&user)
                .fetch_all(&self.pool)
                .await?;
                Ok(MeRecord {
                    name,
                    units: units.into_iter().map(|(project, building, unit)| UnitRef { project, building, unit }).collect(),
                    projects: projects.into_iter().map(|(code, name)| ProjectRef { code, name }).collect(),
                })
            }

            async fn technicians(&self, org: &str) -> Result<Vec<TechnicianLoad>> {
                let people: Vec<(String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT u.id, u.display_name,
                        (SELECT MAX(d.last_sync_at) FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL)
                     FROM users u WHERE u.org_id = $1 AND u.role = 'technician' AND u.disabled_at IS NULL
                     ORDER BY u.display_name, u.id",
                )
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
                // Open orders per technician in one pass of the open orders' facts.
                let load: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
                    "SELECT assignee, COUNT(*) FROM order_facts WHERE org_id = $1 AND is_open = TRUE
                        AND assignee IS NOT NULL GROUP BY assignee",
                )
                .bind(org)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
                Ok(people
                    .into_iter()
                    .map(|(user_id, name, last_seen_at)| TechnicianLoad {
                        open_orders: load.get(&user_id).copied().unwrap_or(0),
                        user_id,
                        name,
                        last_seen_at,
                    })
                    .collect())
            }

            async fn is_technician(&self, org: &str, user: UserId) -> Result<bool> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND org_id = $2 AND role = 'technician'
                        AND disabled_at IS NULL)",
                )
                .bind(user.to_string())
                .bind(org)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn staff_names(&self, org: &str) -> Result<HashMap<String, String>> {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT id, display_name FROM users WHERE org_id = $1 AND role <> 'owner'")
                        .bind(org)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().collect())
            }

            async fn owner_of_unit(&self, org: &str, location: &loopwork_sync_core::Location, phone: Option<&str>) -> Result<Option<UserId>> {
                let id: Option<String> = sqlx::query_scalar(
                    "SELECT u.id FROM owner_units w JOIN users u ON u.id = w.user_id
                     WHERE u.org_id = $1 AND w.project = $2 AND w.building = $3 AND w.unit = $4
                       AND u.role = 'owner' AND u.disabled_at IS NULL
                     ORDER BY CASE WHEN u.phone = $5 THEN 0 ELSE 1 END, u.id LIMIT 1",
                )
                .bind(org)
                .bind(&location.project)
                .bind(&location.building)
                .bind(&location.unit)
                .bind(phone)
                .fetch_optional(&self.pool)
                .await?;
                id.map(|id| id.parse().map_err(|_| ApiError::internal())).transpose()
            }

            async fn save_caller(&self, org: &str, order: OrderId, name: Option<&str>, phone: Option<&str>, now_ms: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO order_callers (order_id, org_id, name, phone, created_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (order_id) DO NOTHING",
                )
                .bind(order.to_string())
                .bind(org)
                .bind(name)
                .bind(phone)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn caller(&self, org: &str, order: OrderId) -> Result<Option<(Option<String>, Option<String>)>> {
                Ok(sqlx::query_as("SELECT name, phone FROM order_callers WHERE org_id = $1 AND order_id = $2")
                    .bind(org)
                    .bind(order.to_string())
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn efficiency(&self, org: &str, period: &Period) -> Result<(EfficiencyCounts, MilestoneDurations)> {
                let within = "org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
                    AND status <> 'cancelled'";
                let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT COUNT(*),
                        COUNT(CASE WHEN response_breached + arrival_breached + resolution_breached > 0 THEN 1 END),
                        COUNT(completed_at),
                        COUNT(CASE WHEN completed_at IS NOT NULL AND reopen_count = 0 THEN 1 END),
                        COUNT(CASE WHEN reopen_count > 0 THEN 1 END),
                        COUNT(CASE WHEN rating IS NOT NULL AND auto_confirmed = 0 THEN 1 END),
                        CAST(COALESCE(SUM(CASE WHEN auto_confirmed = 0 THEN rating END), 0) AS BIGINT),
                        COUNT(CASE WHEN rating >= 4 AND auto_confirmed = 0 THEN 1 END)
                     FROM order_facts WHERE {within}"
                )))
                .bind(org)
                .bind(period.from)
                .bind(period.to)
                .bind(period.project.as_deref())
                .fetch_one(&self.pool)
                .await?;
                let counts = EfficiencyCounts {
                    orders: row.0,
                    breached: row.1,
                    completed: row.2,
                    fixed_first_time: row.3,
                    reworked: row.4,
                    rated: row.5,
                    rating_sum: row.6,
                    rated_4_or_more: row.7,
                };
                let mut durations = MilestoneDurations::default();
                for (column, out) in [
                    ("accepted_at", &mut durations.response),
                    ("arrived_at", &mut durations.arrival),
                    ("completed_at", &mut durations.resolution),
                ] {
                    *out = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT ({column} - created_at) / 60000, COUNT(*) FROM order_facts
                         WHERE {within} AND {column} IS NOT NULL GROUP BY ({column} - created_at) / 60000 ORDER BY 1"
                    )))
                    .bind(org)
                    .bind(period.from)
                    .bind(period.to)
                    .bind(period.project.as_deref())
                    .fetch_all(&self.pool)
                    .await?;
                }
                Ok((counts, durations))
            }

            async fn backlog(&self, org: &str, project: Option<&str>, now_ms: i64) -> Result<Backlog> {
                const DAY: i64 = 86_400_000;
                // One pass over the open orders, counted by (age, technician, grade), summed three
                // ways here.
                let rows: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT CASE WHEN created_at > $3 - {DAY} THEN 'lt_1d' WHEN created_at > $3 - {} THEN '1_3d'
                        WHEN created_at > $3 - {} THEN '3_7d' ELSE 'gt_7d' END, assignee, grade, COUNT(*)
                     FROM order_facts WHERE org_id = $1 AND is_open = TRUE AND ($2 IS NULL OR project = $2)
                     GROUP BY 1, 2, 3",
                    3 * DAY,
                    7 * DAY
                )))
                .bind(org)
                .bind(project)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                let names = self.staff_names(org).await?;
                let mut by_age: BTreeMap<String, i64> = BTreeMap::new();
                let mut by_technician: HashMap<Option<String>, i64> = HashMap::new();
                let mut by_grade: BTreeMap<String, i64> = BTreeMap::new();
                for (age, assignee, grade, count) in rows {
                    *by_age.entry(age).or_default() += count;
                    *by_technician.entry(assignee).or_default() += count;
                    *by_grade.entry(grade).or_default() += count;
                }
                let mut by_technician: Vec<(Option<String>, Option<String>, i64)> = by_technician
                    .into_iter()
                    .map(|(id, count)| (id.clone(), id.and_then(|id| names.get(&id).cloned()), count))
                    .collect();
                by_technician.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
                Ok(Backlog {
                    by_age: ["lt_1d", "1_3d", "3_7d", "gt_7d"]
                        .iter()
                        .filter_map(|bucket| by_age.remove(*bucket).map(|count| ((*bucket).to_owned(), count)))
                        .collect(),
                    by_technician,
                    by_grade: by_grade.into_iter().collect(),
                })
            }

            async fn heatmap(&self, org: &str, period: &Period, kind: Option<&str>) -> Result<(Vec<(String, String, i64)>, Vec<(i64, i64)>)> {
                let within = "org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
                    AND ($5 IS NULL OR kind = $5)";
                let cells: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT COALESCE(building, ''), category, COUNT(*) FROM order_facts WHERE {within}
                     GROUP BY COALESCE(building, ''), category ORDER BY 1, 2"
                )))
                .bind(org)
                .bind(period.from)
                .bind(period.to)
                .bind(period.project.as_deref())
                .bind(kind)
                .fetch_all(&self.pool)
                .await?;
                let hours: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT created_how, COUNT(*) FROM order_facts WHERE {within} AND created_how IS NOT NULL
                     GROUP BY created_how ORDER BY 1"
                )))
                .bind(org)
                .bind(period.from)
                .bind(period.to)
                .bind(period.project.as_deref())
                .bind(kind)
                .fetch_all(&self.pool)
                .await?;
                Ok((cells, hours))
            }

            async fn staff_counts(&self, org: &str, period: &Period) -> Result<Vec<StaffCounts>> {
                let within = "org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
                    AND status <> 'cancelled'";
                let figures = "COUNT(*), COUNT(completed_at), COUNT(accepted_at),
                    COUNT(CASE WHEN accepted_at IS NOT NULL AND response_breached = 0 THEN 1 END),
                    COUNT(CASE WHEN completed_at IS NOT NULL AND resolution_breached = 0 THEN 1 END),
                    COUNT(CASE WHEN reopen_count > 0 THEN 1 END),
                    COUNT(CASE WHEN rating IS NOT NULL AND auto_confirmed = 0 THEN 1 END),
                    CAST(COALESCE(SUM(CASE WHEN auto_confirmed = 0 THEN rating END), 0) AS BIGINT)";
                type Figures = (String, i64, i64, i64, i64, i64, i64, i64, i64);
                let mut by_person: HashMap<(String, &str), Figures> = HashMap::new();
                for (column, group) in [("assignee", "technician"), ("registered_by", "agent")] {
                    let rows: Vec<Figures> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {column}, {figures} FROM order_facts WHERE {within} AND {column} IS NOT NULL
                         GROUP BY {column}"
                    )))
                    .bind(org)
                    .bind(period.from)
                    .bind(period.to)
                    .bind(period.project.as_deref())
                    .fetch_all(&self.pool)
                    .await?;
                    by_person.extend(rows.into_iter().map(|row| ((row.0.clone(), group), row)));
                }
                let visits: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT visited_by, COUNT(*) FROM order_facts WHERE {within} AND visited_by IS NOT NULL
                     GROUP BY visited_by"
                )))
                .bind(org)
                .bind(period.from)
                .bind(period.to)
                .bind(period.project.as_deref())
                .fetch_all(&self.pool)
                .await?;
                let delays: Vec<(String, i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT registered_by, (assigned_at - created_at) / 60000, COUNT(*) FROM order_facts
                     WHERE {within} AND registered_by IS NOT NULL AND assigned_at IS NOT NULL
                     GROUP BY registered_by, (assigned_at - created_at) / 60000 ORDER BY 1, 2"
                )))
                .bind(org)
                .bind(period.from)
                .bind(period.to)
                .bind(period.project.as_deref())
                .fetch_all(&self.pool)
                .await?;
                let staff: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT id, display_name, role FROM users
                     WHERE org_id = $1 AND role IN ('technician', 'dispatcher', 'supervisor') AND disabled_at IS NULL
                     ORDER BY role, display_name, id",
                )
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
                let visits: HashMap<String, i64> = visits.into_iter().collect();
                let mut delays_of: HashMap<String, Histogram> = HashMap::new();
                for (user, minutes, count) in delays {
                    delays_of.entry(user).or_default().push((minutes, count));
                }
                Ok(staff
                    .into_iter()
                    .map(|(user_id, name, role)| {
                        let group = if role == "technician" { "technician" } else { "agent" };
                        let f = by_person.remove(&(user_id.clone(), group)).unwrap_or_default();
                        StaffCounts {
                            return_visits: visits.get(&user_id).copied().unwrap_or(0),
                            assign_minutes: delays_of.remove(&user_id).unwrap_or_default(),
                            user_id,
                            name,
                            role,
                            orders: f.1,
                            completed: f.2,
                            accepted: f.3,
                            accepted_on_time: f.4,
                            completed_on_time: f.5,
                            reworked: f.6,
                            rated: f.7,
                            rating_sum: f.8,
                        }
                    })
                    .collect())
            }

            async fn warm(&self) {
                Self::prewarm(&self.pool, &self.cache).await;
                Self::warm_connections(&self.pool).await;
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            fn other_servers_advanced(&self) -> Option<tokio::sync::broadcast::Receiver<Announced>> {
                self.advanced_feed()
            }

            async fn latest_seq(&self, org: &str) -> Result<i64> {
                let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE org_id = $1")
                    .bind(org)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(seq)
            }

            async fn order_contact(&self, principal: &Principal, order: OrderId) -> Result<Option<ContactSource>> {
                let row: Option<(String, Option<String>, Option<String>, Option<String>, bool, bool)> = sqlx::query_as(
                    "SELECT o.reporter, u.display_name, u.phone, o.assignee, o.is_open,
                            EXISTS (SELECT 1 FROM order_access a WHERE a.order_id = o.id AND a.user_id = $3)
                     FROM orders o LEFT JOIN users u ON u.id = o.reporter
                     WHERE o.id = $1 AND o.org_id = $2",
                )
                .bind(order.to_string())
                .bind(&principal.org)
                .bind(principal.user.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(reporter, name, phone, assignee, is_open, ever_given)| ContactSource {
                    reporter,
                    name,
                    phone,
                    assignee,
                    is_open,
                    ever_given,
                }))
            }

            async fn log_reveal(&self, principal: &Principal, order: OrderId, now_ms: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO contact_reveals (org_id, order_id, user_id, device_id, revealed_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&principal.org)
                .bind(order.to_string())
                .bind(principal.user.to_string())
                .bind(principal.device.to_string())
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn reveals(&self, org: &str, order: OrderId) -> Result<Vec<RevealRecord>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT user_id, device_id, revealed_at FROM contact_reveals
                     WHERE order_id = $1 AND org_id = $2 ORDER BY revealed_at",
                )
                .bind(order.to_string())
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(user_id, device_id, revealed_at_ms)| RevealRecord { user_id, device_id, revealed_at_ms })
                    .collect())
            }

            async fn export_user(&self, principal: &Principal) -> Result<serde_json::Value> {
                let user = principal.user.to_string();
                let (login, role, name, phone, created_at): (String, String, String, Option<String>, i64) =
                    sqlx::query_as("SELECT login, role, display_name, phone, created_at FROM users WHERE id = $1")
                        .bind(&user)
                        .fetch_one(&self.pool)
                        .await?;
                let units: Vec<(String, String, String)> =
                    sqlx::query_as("SELECT project, building, unit FROM owner_units WHERE user_id = $1 ORDER BY 1, 2, 3")
                        .bind(&user)
                        .fetch_all(&self.pool)
                        .await?;
                let devices: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT id, name, created_at, revoked_at FROM devices WHERE user_id = $1 ORDER BY created_at",
                )
                .bind(&user)
                .fetch_all(&self.pool)
                .await?;
                let mut conn = self.pool.acquire().await?;
                let rows: Vec<StoredDocRow> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT id, {DOC_COLUMNS} FROM orders WHERE reporter = $1 AND org_id = $2 ORDER BY created_at"
                )))
                .bind(&user)
                .bind(&principal.org)
                .fetch_all(&mut *conn)
                .await?;
                let docs = Self::whole_documents(&mut conn, rows).await?;
                let mut orders = Vec::new();
                for (id, doc) in docs {
                    let id_parsed: OrderId = id.parse().map_err(|_| ApiError::internal())?;
                    let order = self.load_stored(&principal.org, id_parsed, &doc).await?;
                    let state = order.state().map_err(|_| ApiError::internal())?;
                    orders.push(serde_json::json!({
                        "id": id,
                        "number": order.display_number(),
                        "kind": order.kind().map(|k| k.code()).unwrap_or_default(),
                        "category": order.category().map(|c| c.code()).unwrap_or_default(),
                        "location": {
                            "project": order.location().project,
                            "building": order.location().building,
                            "unit": order.location().unit,
                            "area": order.location().area,
                        },
                        "description": order.description(),
                        "created_at_ms": order.created_at_ms(),
                        "status": state.status.code(),
                        "rating": state.rating,
                        "rating_comment": state.rating_comment,
                        "notes_by_me": order.notes().into_iter().filter(|n| n.by == principal.user)
                            .map(|n| serde_json::json!({ "at_ms": n.at_ms, "text": n.text })).collect::<Vec<_>>(),
                    }));
                }
                Ok(serde_json::json!({
                    "user": { "id": user, "login": login, "role": role, "name": name, "phone": phone, "created_at_ms": created_at },
                    "units": units.into_iter().map(|(project, building, unit)| serde_json::json!({ "project": project, "building": building, "unit": unit })).collect::<Vec<_>>(),
                    "devices": devices.into_iter().map(|(id, name, created, revoked)| serde_json::json!({ "id": id, "name": name, "created_at_ms": created, "revoked_at_ms": revoked })).collect::<Vec<_>>(),
                    "orders": orders,
                }))
            }

            async fn erase_user(&self, principal: &Principal, now_ms: i64) -> Result<()> {
                let user = principal.user.to_string();
                let mut tx = Self::begin_write(&self.pool).await?;
                // Calls registered for them, or from their number: the caller's record goes too.
                sqlx::query(
                    "UPDATE order_callers SET name = NULL, phone = NULL
                     WHERE org_id = $2 AND (order_id IN (SELECT id FROM orders WHERE reporter = $1 AND org_id = $2)
                        OR phone = (SELECT phone FROM users WHERE id = $1))",
                )
                .bind(&user)
                .bind(&principal.org)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE users SET display_name = '已注销用户', phone = NULL, login = $2, password_hash = '',
                            disabled_at = $3 WHERE id = $1",
                )
                .bind(&user)
                .bind(format!("erased-{user}"))
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM owner_units WHERE user_id = $1").bind(&user).execute(&mut *tx).await?;
                sqlx::query("UPDATE devices SET revoked_at = $2, name = '' WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(&user)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn closing_authority(&self, org: &str) -> Result<ClosingAuthority> {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT grade, min_role FROM closing_authority WHERE org_id = $1")
                        .bind(org)
                        .fetch_all(&self.pool)
                        .await?;
                closing_from_rows(rows)
            }

            async fn set_closing_authority(&self, org: &str, closing: &ClosingAuthority) -> Result<()> {
                let mut tx = Self::begin_write(&self.pool).await?;
                for grade in Grade::ALL {
                    sqlx::query(
                        "INSERT INTO closing_authority (org_id, grade, min_role) VALUES ($1, $2, $3)
                         ON CONFLICT (org_id, grade) DO UPDATE SET min_role = excluded.min_role",
                    )
                    .bind(org)
                    .bind(grade.code())
                    .bind(closing.required(*grade).code())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn audit_sources(&self, org: &str, order: OrderId) -> Result<Option<AuditSources>> {
                let id = order.to_string();
                let Some(doc) = self.stored_document(org, &id).await? else { return Ok(None) };
                let rows = sqlx::query(
                    "SELECT f.hash, f.received_at, f.device_id, d.user_id, u.role
                     FROM feed f LEFT JOIN devices d ON d.id = f.device_id LEFT JOIN users u ON u.id = d.user_id
                     WHERE f.order_id = $1 AND f.kind = 'change'",
                )
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
                let mut received = HashMap::new();
                for r in rows {
                    let hash: Vec<u8> = r.try_get(0)?;
                    let at_ms: i64 = r.try_get(1)?;
                    received.insert(hash, Received { at_ms, device: r.try_get(2)?, user: r.try_get(3)?, role: r.try_get(4)? });
                }
                Ok(Some(AuditSources { doc, received }))
            }
        }
    };
}

database_impl!(Sqlite, "sqlite", sqlx::Sqlite);
database_impl!(Postgres, "postgres", sqlx::Postgres);

/// The pusher's author, then each relayed change's true author, under the organization's
/// closing authority.
fn authors_of(principal: &Principal, relayed: &[Identity], closing: ClosingAuthority) -> Vec<Author> {
    std::iter::once(principal.identity())
        .chain(relayed.iter().copied())
        .map(|identity| Author { identity, closing })
        .collect()
}

/// A server actor: eight random bytes and eight bytes of a keyed hash of them under the
/// database's secret. Each process gets a fresh one (so a restored database never makes the
/// server reuse an actor's sequence numbers), and any of them is recognised from the secret
/// alone, which a restore keeps. With `Some(actor)`, recomputes the actor from its random half.
fn server_actor(secret: &str, actor: Option<[u8; 16]>) -> DeviceId {
    use sha2::{Digest, Sha256};
    let nonce: [u8; 8] = match actor {
        Some(raw) => raw[..8].try_into().unwrap_or_default(),
        None => uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default(),
    };
    let mac = Sha256::new().chain_update(secret.as_bytes()).chain_update(nonce).finalize();
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&nonce);
    raw[8..].copy_from_slice(&mac[..8]);
    DeviceId::from_uuid(uuid::Uuid::from_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::Announced;

    #[test]
    fn a_feed_announcement_carries_its_position_and_its_sender() {
        let by = loopwork_sync_core::DeviceId::new();
        let announced = Announced { org: "org with spaces".into(), seq: Some(4_321) };
        assert_eq!(Announced::parse(&announced.payload(by)), (announced, Some(by)));
        // A server from before positions were announced sends the organization alone.
        let legacy = Announced { org: "0f3c".into(), seq: None };
        assert_eq!(Announced::parse("0f3c"), (legacy, None));
        assert_eq!(Announced::parse("12 not-a-device org").0.seq, None);
    }
}
