//! The values that cross the boundary: sync-core's vocabulary as remote enums, and records shaped
//! for a UI. Conversions only; every rule stays in sync-core.

use loopwork_sync_core as core;
use loopwork_sync_core::timeline::TimelineEvent as CoreEvent;
use loopwork_sync_core::{Category, Channel, Grade, HoldReason, Kind, Location, Role, Status, Verdict};

#[uniffi::remote(Enum)]
pub enum Kind {
    Repair,
    Complaint,
    Inquiry,
    Suggestion,
    Praise,
    Maintenance,
}

#[uniffi::remote(Enum)]
pub enum Grade {
    Minor,
    Serious,
    Severe,
    Critical,
}

#[uniffi::remote(Enum)]
pub enum Channel {
    App,
    Hotline,
    WalkIn,
    Inspection,
    Plan,
}

#[uniffi::remote(Enum)]
pub enum HoldReason {
    WaitingForParts,
    OwnerNotHome,
    Other,
}

#[uniffi::remote(Enum)]
pub enum Role {
    Owner,
    Technician,
    Dispatcher,
    Supervisor,
    Manager,
    Admin,
    System,
}

#[uniffi::remote(Enum)]
pub enum Status {
    New,
    Assigned,
    Accepted,
    OnSite,
    InProgress,
    OnHold,
    AwaitingConfirmation,
    Confirmed,
    Rework,
    AutoConfirmed,
    ReturnVisited,
    Closed,
    Cancelled,
}

#[uniffi::remote(Record)]
pub struct Location {
    pub project: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
}

/// A category: its code (built-in, or an organization's own `custom:` code) and its labels.
#[derive(Clone, Debug, uniffi::Record)]
pub struct CategoryInfo {
    pub code: String,
    pub label_zh: String,
    pub label_en: String,
}

impl From<&Category> for CategoryInfo {
    fn from(c: &Category) -> Self {
        CategoryInfo { code: c.code(), label_zh: c.label_zh().to_owned(), label_en: c.label_en().to_owned() }
    }
}

/// Who is signed in on this device.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record, serde::Serialize, serde::Deserialize)]
pub struct SessionInfo {
    pub server_url: String,
    pub user_id: String,
    #[serde(with = "role_code")]
    pub role: Role,
    pub org_id: String,
    pub device_id: String,
}

mod role_code {
    use loopwork_sync_core::Role;

    pub fn serialize<S: serde::Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(role.code())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let code: String = serde::Deserialize::deserialize(d)?;
        Role::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// A new order. `reporter_id` is the owner's user id: an owner reporting leaves it empty (it is
/// themselves); staff registering a call must give it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct NewOrderInput {
    pub kind: Kind,
    pub category: String,
    pub grade: Grade,
    pub channel: Channel,
    pub location: Location,
    pub description: String,
    #[uniffi(default = None)]
    pub reporter_id: Option<String>,
    #[uniffi(default = None)]
    pub occurred_at_ms: Option<i64>,
}

/// Which orders a list screen shows; always most urgent first.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct ListFilter {
    /// Only orders assigned to the signed-in user.
    #[uniffi(default = false)]
    pub assigned_to_me: bool,
    /// Only orders the signed-in user reported.
    #[uniffi(default = false)]
    pub reported_by_me: bool,
    /// Only these states (empty: any).
    #[uniffi(default = [])]
    pub statuses: Vec<Status>,
    /// Only orders that still owe work.
    #[uniffi(default = false)]
    pub open_only: bool,
    #[uniffi(default = None)]
    pub project: Option<String>,
    #[uniffi(default = None)]
    pub building: Option<String>,
    /// Only the orders of this incident (事件单).
    #[uniffi(default = None)]
    pub incident: Option<i64>,
    /// At most this many (0 means 50).
    #[uniffi(default = 0)]
    pub limit: u32,
}

/// One row of a list screen, read from the local index without loading the document.
#[derive(Clone, Debug, uniffi::Record)]
pub struct OrderSummary {
    pub id: String,
    /// The official number, or the provisional `临-…` one until the server has numbered it.
    pub number: String,
    pub kind: Kind,
    pub category: CategoryInfo,
    pub grade: Grade,
    pub status: Status,
    /// The status in Chinese, ready to show.
    pub status_label_zh: String,
    pub assignee_id: Option<String>,
    pub reporter_id: String,
    pub location: Location,
    pub created_at_ms: i64,
    /// When the next target falls due (`None`: nothing due).
    pub next_deadline_ms: Option<i64>,
    /// How many actions in the order's history did not take effect.
    pub superseded: u32,
    /// The number of the incident (事件单) the server put the order in, if any.
    pub incident_number: Option<i64>,
}

impl From<core::OrderSummary> for OrderSummary {
    fn from(s: core::OrderSummary) -> Self {
        OrderSummary {
            id: s.id.to_string(),
            number: s.number,
            kind: s.kind,
            category: (&s.category).into(),
            grade: s.grade,
            status: s.status,
            status_label_zh: s.status.label_zh().to_owned(),
            assignee_id: s.assignee.map(|a| a.to_string()),
            reporter_id: s.reporter.to_string(),
            location: s.location,
            created_at_ms: s.created_at_ms,
            next_deadline_ms: s.next_deadline_ms,
            superseded: s.superseded,
            incident_number: s.incident,
        }
    }
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct Note {
    pub id: String,
    pub by_user_id: String,
    pub at_ms: i64,
    pub text: String,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct ChecklistItem {
    pub id: String,
    pub label: String,
    pub done: bool,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct PartUsed {
    pub name: String,
    pub quantity: i64,
    pub by_user_id: String,
    pub at_ms: i64,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct TimeEntry {
    pub by_user_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct Attachment {
    pub sha256: String,
    pub mime: String,
    pub by_user_id: String,
    pub at_ms: i64,
}

/// An order's targets as a countdown, computed on the device (works offline) with the
/// organization's SLA policies (see `refresh_settings`).
#[derive(Clone, Debug, uniffi::Record)]
pub struct Countdown {
    /// The policy that applies.
    pub policy: String,
    pub response_due_ms: i64,
    pub responded_at_ms: Option<i64>,
    pub arrival_due_ms: Option<i64>,
    pub arrived_at_ms: Option<i64>,
    /// `None` while a pausing hold stops the clock.
    pub resolution_due_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub paused: bool,
    pub next_due_ms: Option<i64>,
    /// Milliseconds until `next_due_ms` from the device's clock now (negative: overdue).
    pub remaining_ms: Option<i64>,
}

/// A window of time (ms since the epoch): 预约时间.
#[derive(Clone, Copy, Debug, uniffi::Record)]
pub struct Appointment {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Everything a detail screen shows.
#[derive(Clone, Debug, uniffi::Record)]
pub struct OrderDetail {
    pub summary: OrderSummary,
    pub channel: Channel,
    pub description: String,
    pub occurred_at_ms: Option<i64>,
    /// 预约时间: when the owner would like someone to come.
    pub appointment: Option<Appointment>,
    /// 设备: the asset the order names (its id, as its QR code `loopwork://asset/{id}` carries it).
    pub asset: Option<String>,
    pub hold_reason: Option<HoldReason>,
    pub reopen_count: u32,
    pub rating: Option<u8>,
    pub rating_comment: Option<String>,
    pub auto_confirmed: bool,
    pub return_visit_required: bool,
    pub notes: Vec<Note>,
    pub checklist: Vec<ChecklistItem>,
    pub parts: Vec<PartUsed>,
    pub time_log: Vec<TimeEntry>,
    pub attachments: Vec<Attachment>,
    pub countdown: Countdown,
    /// Why the order is read-only on this device (it left the device's scope), if it is.
    pub read_only_reason: Option<String>,
    /// The incident (事件单) the server put the order in: many households, one cause, worked
    /// together (`work_incident`).
    pub incident: Option<IncidentInfo>,
    /// Completing the order needs the owner's signature (`complete_signed`), by the
    /// organization's rules as the server recorded them in the order.
    pub signature_required: bool,
}

/// An incident as the phone shows it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct IncidentInfo {
    pub number: i64,
    /// Where, in Chinese (`5栋 2单元01立管`).
    pub place: String,
    /// A category code, or `*`.
    pub category: String,
}

/// One step of an incident, done on every order of it assigned to the signed-in technician.
#[derive(Clone, Copy, Debug, uniffi::Enum)]
pub enum IncidentStep {
    Accept,
    Arrive,
    StartWork,
    Complete,
}

/// What `work_incident` did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct IncidentWorkReport {
    /// The orders changed (each its own local change, sent at the next sync).
    pub changed: Vec<String>,
    /// The orders the step did not apply to, with why.
    pub skipped: Vec<SkippedOrder>,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct SkippedOrder {
    pub order_id: String,
    pub reason: String,
}

/// What a timeline entry records.
#[derive(Clone, Debug, uniffi::Enum)]
pub enum TimelineEvent {
    /// `signature`: a completion's owner signature (业主签字确认), the SHA-256 of its picture.
    Transition {
        action: String,
        applied: bool,
        reason_code: Option<String>,
        status_after: Status,
        signature: Option<String>,
    },
    Note,
    Part {
        name: String,
        quantity: i64,
    },
    Time {
        start_ms: i64,
        end_ms: i64,
    },
    /// `kind`: `photo`, `signature` or `file`.
    Attachment {
        sha256: String,
        mime: String,
        kind: String,
    },
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct TimelineEntry {
    pub at_ms: i64,
    pub by_user_id: String,
    pub role: Option<Role>,
    pub device_id: Option<String>,
    pub event: TimelineEvent,
    pub text: Option<String>,
}

impl From<core::timeline::TimelineEntry> for TimelineEntry {
    fn from(e: core::timeline::TimelineEntry) -> Self {
        let event = match e.event {
            CoreEvent::Transition { action, verdict, status_after, signature } => TimelineEvent::Transition {
                signature,
                action: action.to_owned(),
                applied: verdict == Verdict::Applied,
                reason_code: match verdict {
                    Verdict::Applied => None,
                    Verdict::Superseded(why) => Some(why.code().to_owned()),
                },
                status_after: Status::from_code(status_after).unwrap_or(Status::New),
            },
            CoreEvent::Note => TimelineEvent::Note,
            CoreEvent::Part { name, quantity } => TimelineEvent::Part { name, quantity },
            CoreEvent::Time { start_ms, end_ms } => TimelineEvent::Time { start_ms, end_ms },
            CoreEvent::Attachment { sha256, mime, kind } => {
                TimelineEvent::Attachment { sha256, mime, kind: kind.code().to_owned() }
            }
        };
        TimelineEntry {
            at_ms: e.at_ms,
            by_user_id: e.by.to_string(),
            role: e.role,
            device_id: e.device.map(|d| d.to_string()),
            event,
            text: e.text,
        }
    }
}

/// An action that did not take effect, with the reason to show.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RejectedEdit {
    pub action: String,
    pub by_user_id: String,
    pub at_ms: i64,
    pub reason_code: String,
    pub message_zh: String,
    pub message_en: String,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct RevokedOrder {
    pub order_id: String,
    pub reason: String,
}

/// What one `sync` call did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SyncReport {
    pub round_trips: u32,
    /// Local changes the server acknowledged.
    pub acknowledged: u64,
    /// Orders whose content changed on this device.
    pub updated_order_ids: Vec<String>,
    /// Orders that left this device's scope and are now read-only here.
    pub revoked: Vec<RevokedOrder>,
    /// Local changes still waiting for upload.
    pub pending_uploads: u64,
}

#[derive(Clone, Debug, uniffi::Record)]
pub struct SyncStatus {
    pub signed_in: bool,
    pub pending_uploads: u64,
    /// When a sync last completed (device clock), if ever.
    pub last_sync_ms: Option<i64>,
}

/// A header of an HTTP request.
#[derive(Clone, Debug, uniffi::Record)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// A request for the host's HTTP client to send.
#[derive(Clone, Debug, uniffi::Record)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PATCH` or `HEAD`.
    pub method: String,
    pub url: String,
    pub headers: Vec<HttpHeader>,
    /// Empty for `GET` and `HEAD`.
    pub body: Vec<u8>,
}

/// What the host's HTTP client received: the status, the response's headers (the resumable
/// upload reads `Location` and `Upload-Offset`; names in any case) and the body.
#[derive(Clone, Debug, uniffi::Record)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<HttpHeader>,
    pub body: Vec<u8>,
}

/// An owner's contact as the server gives it: masked, or in full after a logged reveal.
#[derive(Clone, Debug, uniffi::Record, serde::Deserialize)]
pub struct Contact {
    pub reporter_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    /// Whether `phone` is the full number.
    pub revealed: bool,
}
