//! `POST /sync/v1`: one sync round trip (binary frames, docs/protocol.md).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loopwork_sync_core::OrderId;
use loopwork_sync_core::protocol::{CONTENT_TYPE, PROTOCOL_VERSION, SyncRequest, frame_version};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::replication::{self, Cursor};
use crate::store::PullRequest;

/// A sync request body may be this large; a JSON body much less.
pub const MAX_SYNC_BODY: usize = 16 << 20;
/// Entries in one response page, whatever the device asks.
const MAX_PAGE: u32 = 5_000;
/// Bytes of documents and changes in one response page (soft: at least one entry is sent).
const MAX_PAGE_BYTES: usize = 8 << 20;

/// One sync round trip: push, then pull. Every error is a binary error frame.
pub async fn sync(
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
    // A server actor is no author to judge (its changes were the server's), except as the
    // creator of an order it made (a maintenance plan's, `crate::preventive`): the creation rules
    // check that its creating change is one the server makes.
    let creators: BTreeSet<Vec<u8>> =
        relayed.iter().filter(|(_, c)| c.deps().is_empty()).map(|(_, c)| c.actor_id().to_bytes().to_vec()).collect();
    Ok(authors
        .into_iter()
        .filter(|(actor, a)| a.role != loopwork_sync_core::Role::System || creators.contains(actor))
        .map(|(_, a)| a)
        .collect())
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
