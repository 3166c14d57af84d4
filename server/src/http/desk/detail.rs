//! An order's detail: its timeline, rejected edits, SLA, contact and the actions allowed.

use super::*;

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

pub(super) fn rating_of(action: &Action) -> Option<u8> {
    match action {
        Action::Confirm { rating } => Some(*rating),
        _ => None,
    }
}

pub(super) async fn detail_of(state: &AppState, principal: &Principal, order: OrderId) -> Result<Value, ApiError> {
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
    let book = crate::settings::sla_book(&*state.db, &principal.org).await?;
    let countdown = book.countdown(kind, &category, grade, &order_state, document.created_at_ms());
    let closing = state.db.closing_authority(&principal.org).await?;
    let caller = if principal.role.is_staff() {
        state.db.caller(&principal.org, order).await?.map(|(name, phone)| {
            json!({
                "name": name.as_deref().map(crate::http::privacy::mask_name),
                "phone": phone.as_deref().map(crate::http::privacy::mask_phone),
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
        "return_visit_reasons": order_state.return_visit_reasons.iter().map(|r| r.code()).collect::<Vec<_>>(),
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
pub(super) fn allowed_actions(
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
