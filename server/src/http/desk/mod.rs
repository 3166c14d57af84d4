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
//! - `GET /api/v1/orders/export/{xlsx|csv}`: the queue's rows as a spreadsheet

mod actions;
mod detail;
mod export;
mod queue;
mod register;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::authority::ClosingAuthority;
use loopwork_sync_core::lifecycle;
use loopwork_sync_core::location::LocationFault;
use loopwork_sync_core::store::MemoryStore;
use loopwork_sync_core::timeline::{self, TimelineEvent};
use loopwork_sync_core::work_order::{MAX_DESCRIPTION_CHARS, MAX_NOTE_CHARS, parse_change};
use loopwork_sync_core::{
    Action, Appointment, Category, Channel, CoreError, FixedClock, Grade, HoldReason, Kind, Location, NewOrder,
    OrderId, OrderState, Replica, ReturnVisitReason, Role, Status, UserId, Verdict, WorkOrder,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::{Body, Params};
use crate::replication::Principal;
use crate::store::{
    Answer, MAX_SAVED_VIEWS, OrderFilter, OrderListItem, ProjectRef, SavedView, SlaEventRecord, UnitRef,
};

pub use actions::*;
pub use detail::*;
pub use export::{attachment, project_name};
pub use queue::*;
pub use register::*;

/// Registrations of the same unit and category this recent are offered as duplicates.
pub const DUPLICATE_WINDOW_MS: i64 = 24 * 3_600_000;
/// A technician seen (synced) this recently counts as on duty (there is no duty roster yet).
pub const ON_DUTY_MS: i64 = 12 * 3_600_000;
/// The most rows one queue page holds (`limit`).
pub const MAX_QUEUE_ROWS: i64 = 500;
pub(super) const HOURS_PER_WEEK: i64 = 7 * 24;

/// A query parameter outside its documented range (400 `invalid_query`).
pub(super) fn out_of_range(name: &str, min: i64, max: i64) -> ApiError {
    ApiError::invalid(
        "invalid_query",
        format!("{name} must be from {min} to {max}"),
        format!("参数 {name} 须在 {min} 到 {max} 之间"),
    )
}
pub(super) const MAX_BULK: usize = 100;

pub(super) fn staff_only(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_staff(principal, "only office staff may do this", "只有客服及管理人员可以操作")
}

pub(crate) fn parse_order(id: &str) -> Result<OrderId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("order"))
}

pub(super) fn invalid_code(field: &'static str, code: &str) -> ApiError {
    ApiError::invalid(
        "invalid_code",
        format!("`{}` is not a known {field} code (see /api/v1/vocabulary)", code.chars().take(40).collect::<String>()),
        format!("{field} 取值无效"),
    )
}

/// A text field, required or not, within its limit (sync-core's: `MAX_DESCRIPTION_CHARS` for a
/// description, `MAX_NOTE_CHARS` for notes, reasons and results).
pub(super) fn text_field(name: &'static str, text: &str, required: bool, max: usize) -> Result<(), ApiError> {
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

// ----- writing as the session's device -----

/// Runs an edit on the order as the principal's device (the rules checked first, as on a
/// phone) and pushes what it changed through the writer, one at a time per session and order
/// (see [`DeskLocks`]).
pub(super) async fn act<T>(
    state: &AppState,
    principal: &Principal,
    order: OrderId,
    edit: impl FnOnce(&mut Replica<MemoryStore>, OrderId) -> Result<T, CoreError>,
) -> Result<T, ApiError> {
    let _one_at_a_time = state.desk_writes.lock(principal.device, order).await;
    let doc = state.db.order_doc(principal, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    let now = state.clock.now_ms();
    let loaded = state.db.load_stored(&principal.org, order, &doc).await?;
    let mut replica = Replica::new(MemoryStore::new(), principal.identity(), FixedClock::at(now));
    replica.adopt(loaded, doc)?;
    let result = edit(&mut replica, order).map_err(refusal)?;
    push_pending(state, principal, &replica, now).await?;
    Ok(result)
}

/// A rule's refusal as the API reports it.
pub(super) fn refusal(e: CoreError) -> ApiError {
    match e {
        CoreError::Refused(why) => ApiError::new(StatusCode::CONFLICT, "refused", why.message_en(), why.message_zh()),
        CoreError::ReadOnly { .. } => ApiError::forbidden("the order is read-only here", "此工单为只读"),
        other => ApiError::from(other),
    }
}

pub(super) async fn push_pending(
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
    let outcome = state.db.push(principal, &groups, &[], now).await.map_err(|e| {
        let mut e = ApiError::from(e);
        e.binary = false;
        e
    })?;
    for reason in &outcome.rejected {
        state.metrics.compensations.with_label_values(&[reason]).inc();
    }
    state.metrics.changes_merged.inc_by(outcome.merged as u64);
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

/// Desk edits of one order by one session run one at a time, so that the session's actor never
/// makes two changes with the same sequence number in the order's document; edits of other
/// orders, and other sessions' edits, run beside them. The locks are striped: a (session, order)
/// pair waits only for edits of pairs that share its stripe.
#[derive(Debug)]
pub struct DeskLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl DeskLocks {
    const STRIPES: usize = 64;

    async fn lock(&self, device: loopwork_sync_core::DeviceId, order: OrderId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        (device, order).hash(&mut hasher);
        self.stripes[(hasher.finish() % Self::STRIPES as u64) as usize].lock().await
    }
}

impl Default for DeskLocks {
    fn default() -> Self {
        DeskLocks { stripes: (0..Self::STRIPES).map(|_| tokio::sync::Mutex::new(())).collect() }
    }
}
