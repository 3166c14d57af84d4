//! The desk's JSON API (docs/web.md): what the dispatcher desk and the owner's page do, open to
//! integrations too.
//!
//! A web session is a device of its user: every edit here is made by sync-core's [`Replica`] on
//! the order's document, under the session's own actor, checked by the same lifecycle and field
//! rules as on a phone, and pushed through the same writer and authority review as a phone's
//! sync. The server never writes an order any other way for a person.
//!
//! - `GET /api/v1/me`, `GET /api/v1/vocabulary`, `GET /api/v1/technicians`
//! - `GET /api/v1/orders` (the queue, filtered), `POST /api/v1/orders` (registration, with
//!   duplicates), `GET /api/v1/orders/{id}` (detail)
//! - `POST /api/v1/orders/{id}/actions`, `…/classify`, `…/notes`, `…/link`,
//!   `POST /api/v1/orders/bulk-assign`

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::authority::ClosingAuthority;
use loopwork_sync_core::lifecycle::{self, OrderFacts as RuleFacts};
use loopwork_sync_core::location::LocationFault;
use loopwork_sync_core::store::MemoryStore;
use loopwork_sync_core::timeline::{self, TimelineEvent};
use loopwork_sync_core::work_order::{MAX_DESCRIPTION_CHARS, MAX_NOTE_CHARS, parse_change};
use loopwork_sync_core::{
    Action, Category, Channel, CoreError, FixedClock, Grade, HoldReason, Kind, Location, NewOrder, OrderId, OrderState,
    Replica, Role, Status, UserId, Verdict, WorkOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::FeedAdvanced;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::{Body, Params};
use crate::replication::Principal;
use crate::store::{OrderFilter, OrderListItem};

/// Registrations of the same unit and category this recent are offered as duplicates.
pub const DUPLICATE_WINDOW_MS: i64 = 24 * 3_600_000;
/// A technician seen (synced) this recently counts as on duty (there is no duty roster yet).
pub const ON_DUTY_MS: i64 = 12 * 3_600_000;
/// The most rows one queue page holds (`limit`).
pub const MAX_QUEUE_ROWS: i64 = 500;
const HOURS_PER_WEEK: i64 = 7 * 24;

/// A query parameter outside its documented range (400 `invalid_query`).
fn out_of_range(name: &str, min: i64, max: i64) -> ApiError {
    ApiError::invalid(
        "invalid_query",
        format!("{name} must be from {min} to {max}"),
        format!("参数 {name} 须在 {min} 到 {max} 之间"),
    )
}
const MAX_BULK: usize = 100;

fn staff_only(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_staff(principal, "only office staff may do this", "只有客服及管理人员可以操作")
}

fn parse_order(id: &str) -> Result<OrderId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("order"))
}

fn invalid_code(field: &'static str, code: &str) -> ApiError {
    ApiError::invalid(
        "invalid_code",
        format!("`{}` is not a known {field} code (see /api/v1/vocabulary)", code.chars().take(40).collect::<String>()),
        format!("{field} 取值无效"),
    )
}

/// A text field, required or not, within its limit (sync-core's: `MAX_DESCRIPTION_CHARS` for a
/// description, `MAX_NOTE_CHARS` for notes, reasons and results).
fn text_field(name: &'static str, text: &str, required: bool, max: usize) -> Result<(), ApiError> {
    if required && text.trim().is_empty() {
        return Err(ApiError::invalid(
            "missing_text",
            format!("`{name}` must not be empty"),
            format!("{name} 不能为空"),
        ));
    }
    if text.chars().count() > max {
        return Err(ApiError::invalid(
            "text_too_long",
            format!("`{name}` is longer than {max} characters"),
            format!("{name} 超过 {max} 字"),
        ));
    }
    Ok(())
}

// ----- who, and the words -----

/// `GET /api/v1/me`
pub async fn me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let me = state.db.me(&principal).await?;
    Ok(Json(json!({
        "user_id": principal.user.to_string(),
        "role": principal.role.code(),
        "org_id": principal.org,
        "name": me.name,
        "units": me.units,
        "projects": me.projects,
    })))
}

/// What a person does to an order (the server's auto-confirmation is not one), one of each kind
/// as the rules check it; `by` stands in for an assignment's technician.
fn person_actions(by: UserId) -> [Action; 12] {
    [
        Action::Assign(by),
        Action::Accept,
        Action::Arrive,
        Action::Start,
        Action::Hold(HoldReason::Other),
        Action::Resume,
        Action::Complete,
        Action::Confirm { rating: 5 },
        Action::Reject,
        Action::ReturnVisit,
        Action::Close,
        Action::Cancel,
    ]
}

/// `GET /api/v1/vocabulary`: every code the API uses, with zh-CN and English labels.
pub async fn vocabulary() -> Json<Value> {
    let entry = |code: &str, zh: &str, en: &str| json!({ "code": code, "zh": zh, "en": en });
    Json(json!({
        "kinds": Kind::ALL.iter().map(|k| entry(k.code(), k.label_zh(), k.label_en())).collect::<Vec<_>>(),
        "categories": Category::BUILT_IN.iter().map(|c| entry(&c.code(), c.label_zh(), c.label_en())).collect::<Vec<_>>(),
        "grades": Grade::ALL.iter().map(|g| entry(g.code(), g.label_zh(), g.label_en())).collect::<Vec<_>>(),
        "channels": Channel::ALL.iter().map(|c| entry(c.code(), c.label_zh(), c.label_en())).collect::<Vec<_>>(),
        "statuses": Status::ALL.iter().map(|s| entry(s.code(), s.label_zh(), s.label_en())).collect::<Vec<_>>(),
        "hold_reasons": HoldReason::ALL.iter().map(|h| entry(h.code(), h.label_zh(), h.label_en())).collect::<Vec<_>>(),
        "roles": Role::ALL.iter().filter(|r| **r != Role::System).map(|r| entry(r.code(), r.label_zh(), r.code())).collect::<Vec<_>>(),
        "actions": person_actions(UserId::default())
            .iter()
            .map(|a| json!({ "code": a.code(), "zh": a.label_zh(), "en": a.label_en(), "requires_text": a.requires_text() }))
            .collect::<Vec<_>>(),
    }))
}

/// A technician for the assignment picker.
#[derive(Debug, Serialize)]
pub struct Technician {
    pub user_id: String,
    pub name: String,
    pub open_orders: i64,
    pub on_duty: bool,
    pub last_seen_at: Option<i64>,
}

/// `GET /api/v1/technicians` (office staff): load and whether each is on duty.
pub async fn technicians(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<Technician>>, ApiError> {
    staff_only(&principal)?;
    let now = state.clock.now_ms();
    let list = state.db.technicians(&principal.org).await?;
    Ok(Json(
        list.into_iter()
            .map(|t| Technician {
                on_duty: t.last_seen_at.is_some_and(|at| now - at < ON_DUTY_MS),
                user_id: t.user_id,
                name: t.name,
                open_orders: t.open_orders,
                last_seen_at: t.last_seen_at,
            })
            .collect(),
    ))
}

// ----- the queue -----

fn blank_is_none(value: &mut Option<String>) {
    if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
        *value = None;
    }
}

/// `GET /api/v1/orders`: the caller's scope, filtered, most urgent first.
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(mut filter): Params<OrderFilter>,
) -> Result<Json<Vec<OrderListItem>>, ApiError> {
    for value in [
        &mut filter.status,
        &mut filter.kind,
        &mut filter.grade,
        &mut filter.category,
        &mut filter.project,
        &mut filter.building,
        &mut filter.unit,
        &mut filter.assignee,
        &mut filter.q,
    ] {
        blank_is_none(value);
    }
    if let Some(status) = filter.status.as_deref().filter(|s| *s != "open") {
        Status::from_code(status).map_err(|_| invalid_code("status", status))?;
    }
    if filter.limit.is_some_and(|l| !(1..=MAX_QUEUE_ROWS).contains(&l)) {
        return Err(out_of_range("limit", 1, MAX_QUEUE_ROWS));
    }
    if filter.hour_of_week.is_some_and(|h| !(0..HOURS_PER_WEEK).contains(&h)) {
        return Err(out_of_range("hour_of_week", 0, HOURS_PER_WEEK - 1));
    }
    if filter.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::invalid("invalid_query", "q is longer than 100 characters", "搜索内容过长"));
    }
    Ok(Json(state.db.query_orders(&principal, &filter, state.clock.now_ms()).await?))
}

async fn row_of(state: &AppState, principal: &Principal, order: OrderId) -> Result<OrderListItem, ApiError> {
    let filter = OrderFilter { id: Some(order.to_string()), limit: Some(1), ..Default::default() };
    state.db.query_orders(principal, &filter, 0).await?.pop().ok_or_else(|| ApiError::not_found("order"))
}

// ----- writing as the session's device -----

/// Runs an edit on the order as the principal's device (the rules checked first, as on a
/// phone) and pushes what it changed through the writer. One desk edit at a time per process,
/// so that a session's actor never makes two changes with the same sequence number.
async fn act<T>(
    state: &AppState,
    principal: &Principal,
    order: OrderId,
    edit: impl FnOnce(&mut Replica<MemoryStore>, OrderId) -> Result<T, CoreError>,
) -> Result<T, ApiError> {
    let _one_at_a_time = state.desk_writes.lock().await;
    let doc = state.db.order_doc(principal, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    let now = state.clock.now_ms();
    let loaded = state.db.load_stored(&principal.org, order, &doc).await?;
    let changes: Vec<Vec<u8>> = loaded.changes_since(&[]).into_iter().map(|(_, bytes)| bytes).collect();
    let mut replica = Replica::new(MemoryStore::new(), principal.identity(), FixedClock::at(now));
    replica.receive(order, &changes)?;
    let result = edit(&mut replica, order).map_err(refusal)?;
    push_pending(state, principal, &replica, now).await?;
    Ok(result)
}

/// A rule's refusal as the API reports it.
fn refusal(e: CoreError) -> ApiError {
    match e {
        CoreError::Refused(why) => ApiError::new(StatusCode::CONFLICT, "refused", why.message_en(), why.message_zh()),
        CoreError::ReadOnly { .. } => ApiError::forbidden("the order is read-only here", "此工单为只读"),
        other => ApiError::from(other),
    }
}

async fn push_pending(
    state: &AppState,
    principal: &Principal,
    replica: &Replica<MemoryStore>,
    now: i64,
) -> Result<(), ApiError> {
    let pending = replica.pending(usize::MAX)?;
    let mut groups: Vec<(OrderId, Vec<automerge::Change>)> = Vec::new();
    for change in pending {
        let parsed = parse_change(&change.bytes).map_err(|_| ApiError::internal())?;
        match groups.iter_mut().find(|(id, _)| *id == change.order) {
            Some((_, list)) => list.push(parsed),
            None => groups.push((change.order, vec![parsed])),
        }
    }
    let outcome = state.db.push(principal, &groups, &[], now).await.map_err(|mut e| {
        e.binary = false;
        e
    })?;
    for reason in &outcome.rejected {
        state.metrics.compensations.with_label_values(&[reason]).inc();
    }
    if outcome.merged > 0 {
        state.metrics.changes_merged.inc_by(outcome.merged as u64);
        let _ = state.live.send(FeedAdvanced { org: principal.org.clone(), seq: outcome.feed_seq });
    }
    if let Some(code) = outcome.rejected.first() {
        let reason = loopwork_sync_core::authority::RejectReason::from_code(code);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "compensated",
            reason.map(|r| r.message_en()).unwrap_or("the server undid this edit"),
            reason.map(|r| r.message_zh()).unwrap_or("服务器撤销了此修改"),
        ));
    }
    Ok(())
}

// ----- registration -----

/// `POST /api/v1/orders`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub kind: String,
    pub category: String,
    #[serde(default)]
    pub grade: Option<String>,
    pub channel: String,
    pub project: String,
    #[serde(default)]
    pub building: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub area: Option<String>,
    pub description: String,
    #[serde(default)]
    pub occurred_at: Option<i64>,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Registered {
    pub id: String,
    /// The archived number (档案编号), given at once.
    pub number: String,
    /// Open orders of the same unit and category from the last 24 hours.
    pub duplicates: Vec<OrderListItem>,
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub async fn register(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<Registration>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let kind = Kind::from_code(&body.kind).map_err(|_| invalid_code("kind", &body.kind))?;
    let category = Category::from_code(&body.category).map_err(|_| invalid_code("category", &body.category))?;
    let grade = match body.grade.as_deref() {
        Some(code) => Grade::from_code(code).map_err(|_| invalid_code("grade", code))?,
        None => Grade::Minor,
    };
    let channel = Channel::from_code(&body.channel).map_err(|_| invalid_code("channel", &body.channel))?;
    text_field("description", &body.description, true, MAX_DESCRIPTION_CHARS)?;
    let caller_name = non_blank(body.caller_name);
    let caller_phone = non_blank(body.caller_phone);
    if caller_name.as_ref().is_some_and(|n| n.chars().count() > 40) {
        return Err(ApiError::invalid(
            "invalid_caller",
            "the caller's name is longer than 40 characters",
            "来电人姓名过长",
        ));
    }
    if let Some(phone) = &caller_phone
        && (phone.len() > 20 || !phone.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c)))
    {
        return Err(ApiError::invalid(
            "invalid_caller",
            "the caller's phone number is not a phone number",
            "来电号码无效",
        ));
    }
    let location = Location {
        project: body.project.trim().to_owned(),
        building: non_blank(body.building),
        unit: non_blank(body.unit),
        area: non_blank(body.area),
    };
    match location.check() {
        Ok(()) => {}
        Err(LocationFault::MissingPlace) => {
            return Err(ApiError::invalid("missing_location", "give a unit or a common area", "请填写房号或公共区域"));
        }
        Err(fault) => return Err(ApiError::invalid("invalid_input", fault.to_string(), "位置信息无效")),
    }
    let reporter: UserId = match principal.role {
        Role::Owner => {
            if caller_name.is_some() || caller_phone.is_some() {
                return Err(ApiError::invalid("invalid_caller", "owners report as themselves", "业主以本人身份报事"));
            }
            if !loopwork_sync_core::creation::channel_allowed(principal.role, channel) {
                return Err(ApiError::invalid(
                    "invalid_channel",
                    "an owner reports through the app (channel `app`)",
                    "业主自行报事的渠道只能是 App",
                ));
            }
            principal.user
        }
        role if role.is_staff() => {
            state.db.owner_of_unit(&principal.org, &location, caller_phone.as_deref()).await?.unwrap_or(principal.user)
        }
        _ => principal.user,
    };
    let new = NewOrder {
        kind,
        category: category.clone(),
        grade,
        channel,
        location: location.clone(),
        description: body.description.trim().to_owned(),
        reporter,
        occurred_at_ms: body.occurred_at,
    };
    let now = state.clock.now_ms();
    let mut replica = Replica::new(MemoryStore::new(), principal.identity(), FixedClock::at(now));
    let id = replica.create(&new).map_err(refusal)?;
    let has_caller = caller_name.is_some() || caller_phone.is_some();
    if has_caller {
        if !principal.role.is_staff() {
            return Err(ApiError::invalid(
                "invalid_caller",
                "only office staff register callers",
                "只有客服可以登记来电人",
            ));
        }
        state.db.save_caller(&principal.org, id, caller_name.as_deref(), caller_phone.as_deref(), now).await?;
    }
    push_pending(&state, &principal, &replica, now).await?;
    let row = row_of(&state, &principal, id).await?;
    let duplicates =
        state.db.possible_duplicates(&principal, &location, &category.code(), now - DUPLICATE_WINDOW_MS, id).await?;
    let duplicates = if principal.role.is_staff() { duplicates } else { Vec::new() };
    Ok((StatusCode::CREATED, Json(Registered { id: id.to_string(), number: row.number, duplicates })))
}

// ----- the detail -----

/// `GET /api/v1/orders/{id}`
pub async fn detail(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = parse_order(&id)?;
    if principal.role.is_staff() {
        crate::auth::require_served(&state, &principal, order).await?;
    }
    Ok(Json(detail_of(&state, &principal, order).await?))
}

fn rating_of(action: &Action) -> Option<u8> {
    match action {
        Action::Confirm { rating } => Some(*rating),
        _ => None,
    }
}

async fn detail_of(state: &AppState, principal: &Principal, order: OrderId) -> Result<Value, ApiError> {
    let doc = state.db.order_doc(principal, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    let row = row_of(state, principal, order).await?;
    let document = state.db.load_stored(&principal.org, order, &doc).await?;
    let times = state.db.clamped_times(order).await?;
    let order_state = document.state_with_times(&times).map_err(|_| ApiError::internal())?;
    let (kind, category, grade) = (
        document.kind().map_err(|_| ApiError::internal())?,
        document.category().map_err(|_| ApiError::internal())?,
        document.grade().map_err(|_| ApiError::internal())?,
    );
    let names = state.db.staff_names(&principal.org).await?;
    let name = |user: &UserId| names.get(&user.to_string()).cloned();
    let book = crate::sla_settings::book_of(state, &principal.org).await?;
    let countdown = book.countdown(kind, &category, grade, &order_state, document.created_at_ms());
    let closing = state.db.closing_authority(&principal.org).await?;
    let caller = if principal.role.is_staff() {
        state.db.caller(&principal.org, order).await?.map(|(name, phone)| {
            json!({
                "name": name.as_deref().map(crate::privacy::mask_name),
                "phone": phone.as_deref().map(crate::privacy::mask_phone),
            })
        })
    } else {
        None
    };
    let sla_events = if principal.role.is_staff() {
        serde_json::to_value(state.db.sla_events(&principal.org, order).await?).map_err(|_| ApiError::internal())?
    } else {
        json!([])
    };
    let timeline: Vec<Value> = timeline::timeline(&document)
        .map_err(|_| ApiError::internal())?
        .into_iter()
        .map(|entry| {
            let mut item = json!({
                "at": entry.at_ms,
                "who": name(&entry.by),
                "by": entry.by.to_string(),
                "role": entry.role.map(|r| r.code()),
                "text": entry.text,
            });
            let fields = match &entry.event {
                TimelineEvent::Transition { action, verdict, status_after } => {
                    let why = match verdict {
                        Verdict::Superseded(why) => Some(*why),
                        Verdict::Applied => None,
                    };
                    json!({
                        "kind": "transition", "what": action, "status_after": status_after,
                        "verdict": if why.is_some() { "superseded" } else { "applied" },
                        "reason_code": why.map(|w| w.code()),
                        "reason_zh": why.map(|w| w.message_zh()),
                        "reason_en": why.map(|w| w.message_en()),
                    })
                }
                TimelineEvent::Note => json!({ "kind": "note", "what": "note" }),
                TimelineEvent::Part { name, quantity } => {
                    json!({ "kind": "part", "what": "part", "name": name, "quantity": quantity })
                }
                TimelineEvent::Time { start_ms, end_ms } => {
                    json!({ "kind": "time", "what": "time", "start": start_ms, "end": end_ms })
                }
                TimelineEvent::Attachment { sha256, mime } => {
                    json!({ "kind": "attachment", "what": "attachment", "sha256": sha256, "mime": mime })
                }
            };
            if let (Value::Object(item), Value::Object(fields)) = (&mut item, fields) {
                item.extend(fields);
            }
            item
        })
        .collect();
    let rejected: Vec<Value> = timeline::rejected_edits(&document, &order_state)
        .into_iter()
        .map(|r| {
            json!({
                "what": r.what,
                "by": r.by.to_string(),
                "who": name(&r.by),
                "role": r.role.code(),
                "reason_code": r.reason_code,
                "reason_zh": r.message_zh,
                "reason_en": r.message_en,
                "at": r.at_ms,
            })
        })
        .collect();
    let holds: Vec<Value> = order_state
        .history
        .iter()
        .filter(|f| f.verdict == Verdict::Applied)
        .filter_map(|f| match f.transition.action {
            Action::Hold(reason) => Some((f.transition.at_ms, reason)),
            _ => None,
        })
        .zip(order_state.pauses.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|((from, reason), pause)| {
            json!({
                "from": from,
                "to": pause.and_then(|(_, end)| *end),
                "reason": reason.code(),
                "pauses_clock": reason.pauses(),
            })
        })
        .collect();
    let actions = allowed_actions(&document, &order_state, principal, &closing);
    let confirmed_rating = order_state.history.iter().rev().find_map(|f| rating_of(&f.transition.action));
    let mut out = serde_json::to_value(&row).map_err(|_| ApiError::internal())?;
    let extra = json!({
        "description": document.description(),
        "channel": document.channel().map(|c| c.code()).ok(),
        "occurred_at": document.occurred_at_ms(),
        "reporter": document.reporter().map(|r| r.to_string()).ok(),
        "caller": caller,
        "notes": document.notes().iter().map(|n| json!({
            "id": n.id, "author": n.by.to_string(), "who": name(&n.by), "at": n.at_ms, "text": n.text,
        })).collect::<Vec<_>>(),
        "parts": document.parts().iter().map(|p| json!({
            "name": p.name, "quantity": p.quantity, "author": p.by.to_string(), "who": name(&p.by), "at": p.at_ms,
        })).collect::<Vec<_>>(),
        "time_log": document.time_log().iter().map(|t| json!({
            "author": t.by.to_string(), "who": name(&t.by), "start": t.start_ms, "end": t.end_ms,
        })).collect::<Vec<_>>(),
        "checklist": document.checklist().iter().map(|c| json!({ "id": c.id, "label": c.label, "done": c.done })).collect::<Vec<_>>(),
        "attachments": document.attachments().iter().map(|a| json!({
            "sha256": a.sha256, "mime": a.mime, "author": a.by.to_string(), "at": a.at_ms,
        })).collect::<Vec<_>>(),
        "timeline": timeline,
        "rejected_edits": rejected,
        "countdown": countdown.map(|c| json!({
            "policy": c.policy,
            "response_due": c.response_due_ms, "responded_at": c.responded_at_ms,
            "arrival_due": c.arrival_due_ms, "arrived_at": c.arrived_at_ms,
            "resolution_due": c.resolution_due_ms, "resolved_at": c.resolved_at_ms,
            "paused": c.paused, "next_due": c.next_due_ms,
        })),
        "pauses": holds,
        "rating": order_state.rating.or(confirmed_rating),
        "rating_comment": order_state.rating_comment,
        "auto_confirmed": order_state.auto_confirmed,
        "reopen_count": order_state.reopen_count,
        "return_visit_required": order_state.return_visit_required,
        "sla_events": sla_events,
        "actions": actions,
    });
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    Ok(out)
}

/// The action codes `principal` may take on the order now, by the lifecycle rules (and, for
/// closing, the organization's closing authority).
fn allowed_actions(
    document: &WorkOrder,
    state: &OrderState,
    principal: &Principal,
    closing: &ClosingAuthority,
) -> Vec<&'static str> {
    let (Ok(reporter), Ok(kind), Ok(grade)) = (document.reporter(), document.kind(), document.grade()) else {
        return Vec::new();
    };
    let facts = RuleFacts { reporter, kind };
    person_actions(principal.user)
        .iter()
        .filter(|action| lifecycle::check(state, &facts, action, principal.user, principal.role).is_ok())
        .filter(|action| **action != Action::Close || closing.allows(grade, principal.role))
        .map(|action| action.code())
        .collect()
}

// ----- actions -----

/// `POST /api/v1/orders/{id}/actions`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub action: String,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub rating: Option<u8>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub hold_reason: Option<String>,
}

fn action_of(body: &ActionBody) -> Result<Action, ApiError> {
    Ok(match body.action.as_str() {
        "assign" => {
            let assignee = body.assignee.as_deref().ok_or_else(|| {
                ApiError::invalid("missing_assignee", "`assignee` is required to assign", "派单需要指定维修工")
            })?;
            Action::Assign(assignee.parse().map_err(|_| invalid_code("assignee", assignee))?)
        }
        "accept" => Action::Accept,
        "arrive" => Action::Arrive,
        "start" => Action::Start,
        "hold" => {
            let code = body.hold_reason.as_deref().unwrap_or("other");
            Action::Hold(HoldReason::from_code(code).map_err(|_| invalid_code("hold_reason", code))?)
        }
        "resume" => Action::Resume,
        "complete" => Action::Complete,
        "confirm" => {
            let rating = body.rating.ok_or_else(|| {
                ApiError::invalid("missing_rating", "`rating` (1 to 5) is required to confirm", "确认需要评分(1-5)")
            })?;
            if !(1..=5).contains(&rating) {
                return Err(ApiError::invalid("invalid_rating", "`rating` must be 1 to 5", "评分须为 1-5"));
            }
            Action::Confirm { rating }
        }
        "reject" => Action::Reject,
        "return_visit" => Action::ReturnVisit,
        "close" => Action::Close,
        "cancel" => Action::Cancel,
        other => return Err(invalid_code("action", other)),
    })
}

pub async fn action(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<ActionBody>,
) -> Result<Json<Value>, ApiError> {
    let order = parse_order(&id)?;
    let action = action_of(&body)?;
    let text = non_blank(body.text.clone());
    if let Some(text) = &text {
        text_field("text", text, false, MAX_NOTE_CHARS)?;
    }
    if action.requires_text() && text.is_none() {
        return Err(ApiError::invalid(
            "missing_text",
            "a rejection and a cancellation need their reason, a return visit its result (`text`)",
            "拒绝和取消需填写原因,回访需填写结果",
        ));
    }
    if let Action::Assign(user) = action {
        ensure_technician(&state, &principal, user).await?;
    }
    act(&state, &principal, order, |replica, id| replica.transition(id, action, text.as_deref())).await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// An assignment's technician is an active technician of the caller's organization.
async fn ensure_technician(state: &AppState, principal: &Principal, user: UserId) -> Result<(), ApiError> {
    if state.db.is_technician(&principal.org, user).await? {
        return Ok(());
    }
    Err(ApiError::invalid(
        "unknown_technician",
        "no active technician of this organization has that id",
        "没有这位维修工",
    ))
}

/// `POST /api/v1/orders/bulk-assign`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkAssign {
    pub ids: Vec<String>,
    pub assignee: String,
}

pub async fn bulk_assign(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<BulkAssign>,
) -> Result<Json<Value>, ApiError> {
    staff_only(&principal)?;
    if body.ids.is_empty() || body.ids.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "invalid_bulk",
            format!("give 1 to {MAX_BULK} order ids"),
            format!("一次可派 1 至 {MAX_BULK} 单"),
        ));
    }
    let assignee: UserId = body.assignee.parse().map_err(|_| invalid_code("assignee", &body.assignee))?;
    ensure_technician(&state, &principal, assignee).await?;
    let mut results = Vec::with_capacity(body.ids.len());
    for id in &body.ids {
        let outcome = match parse_order(id) {
            Ok(order) => {
                act(&state, &principal, order, |replica, id| replica.transition(id, Action::Assign(assignee), None))
                    .await
                    .map(drop)
            }
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(()) => json!({ "id": id, "ok": true }),
            Err(e) => json!({ "id": id, "ok": false, "error": { "code": e.code, "message": e.message_en, "message_zh": e.message_zh } }),
        });
    }
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/orders/{id}/classify`: a new grade or category, with the reason kept as a
/// note (投诉分级分类, changeable with a reason).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classify {
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    pub reason: String,
}

pub async fn classify(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<Classify>,
) -> Result<Json<Value>, ApiError> {
    staff_only(&principal)?;
    let order = parse_order(&id)?;
    text_field("reason", &body.reason, true, MAX_NOTE_CHARS)?;
    let grade = body.grade.as_deref().map(|g| Grade::from_code(g).map_err(|_| invalid_code("grade", g))).transpose()?;
    let category = body
        .category
        .as_deref()
        .map(|c| Category::from_code(c).map_err(|_| invalid_code("category", c)))
        .transpose()?;
    if grade.is_none() && category.is_none() {
        return Err(ApiError::invalid("nothing_to_change", "give a new `grade` or `category`", "请选择新的分级或分类"));
    }
    let reason = body.reason.trim().to_owned();
    act(&state, &principal, order, |replica, id| {
        let before = replica.order(id)?;
        let mut said = Vec::new();
        if let Some(grade) = grade {
            let old = before.grade()?;
            if old != grade {
                replica.set_grade(id, grade)?;
                said.push(format!("分级 {} → {}", old.label_zh(), grade.label_zh()));
            }
        }
        if let Some(category) = &category {
            let old = before.category()?;
            if &old != category {
                replica.set_category(id, category)?;
                said.push(format!("分类 {} → {}", old.label_zh(), category.label_zh()));
            }
        }
        if said.is_empty() {
            return Err(CoreError::InvalidInput("the order already has that grade and category".into()));
        }
        replica.add_note(id, &format!("{}(原因:{reason})", said.join(",")))
    })
    .await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// `POST /api/v1/orders/{id}/notes`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
}

pub async fn add_note(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<NoteBody>,
) -> Result<Json<Value>, ApiError> {
    let order = parse_order(&id)?;
    text_field("text", &body.text, true, MAX_NOTE_CHARS)?;
    let text = body.text.trim().to_owned();
    act(&state, &principal, order, |replica, id| replica.add_note(id, &text)).await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// `POST /api/v1/orders/{id}/link`: the order duplicates `to`, so it is cancelled with a note
/// naming `to` (the one-click link of duplicate detection).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    pub to: String,
}

pub async fn link(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<LinkBody>,
) -> Result<Json<Value>, ApiError> {
    staff_only(&principal)?;
    let order = parse_order(&id)?;
    let to = parse_order(&body.to)?;
    if to == order {
        return Err(ApiError::invalid("invalid_link", "an order cannot duplicate itself", "工单不能与自身重复"));
    }
    let original = row_of(&state, &principal, to).await?;
    let note = format!("重复工单,已关联 {} / duplicate of {}", original.number, original.number);
    act(&state, &principal, order, |replica, id| {
        replica.add_note(id, &note)?;
        replica.transition(id, Action::Cancel, Some(&note))
    })
    .await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}
