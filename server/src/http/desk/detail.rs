//! An order's detail: its timeline, rejected edits, SLA, contact and the actions allowed.

use super::*;

// ----- the detail -----

/// `GET /api/v1/orders/{id}`
pub async fn detail(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
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

/// An order's detail (`GET /api/v1/orders/{id}`, and the answer of every edit): its list row
/// and everything the detail page shows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub row: OrderListItem,
    pub description: String,
    /// How the request reached the organization (a `Channel` code).
    pub channel: Option<&'static str>,
    pub occurred_at: Option<i64>,
    /// 预约时间: the caller's preferred window, if any.
    pub appointment: Option<AppointmentWindow>,
    /// The reporting user's id.
    pub reporter: Option<String>,
    /// The caller registered with the order, masked (office staff only; `…/caller/reveal`
    /// reveals it, logged).
    pub caller: Option<MaskedCaller>,
    /// The order's notes, oldest first: public ones (in the document) for everyone, internal
    /// ones (`visibility: internal`) only for the company's people, never for an owner.
    pub notes: Vec<NoteView>,
    pub parts: Vec<PartView>,
    pub time_log: Vec<TimeView>,
    pub checklist: Vec<ChecklistView>,
    pub attachments: Vec<AttachmentView>,
    pub timeline: Vec<TimelineItem>,
    /// Edits that did not take effect, and why.
    pub rejected_edits: Vec<RejectedEditView>,
    /// The deadlines under the organization's SLA book.
    pub countdown: Option<CountdownView>,
    /// Each hold, with when it ended and whether it paused the clock.
    pub pauses: Vec<HoldView>,
    pub rating: Option<u8>,
    pub rating_comment: Option<String>,
    pub auto_confirmed: bool,
    pub reopen_count: u32,
    pub return_visit_required: bool,
    /// `ReturnVisitReason` codes, each once, oldest first.
    pub return_visit_reasons: Vec<&'static str>,
    /// What fired on the order (office staff; empty for others).
    pub sla_events: Vec<SlaEventRecord>,
    /// The action codes the caller may take now.
    pub actions: Vec<&'static str>,
    /// Whether the caller may attach a photo or file now (`POST …/attachments`).
    pub may_attach: bool,
    /// Whether completing the order needs the owner's signature on the technician's phone
    /// (the organization's `signature-rules`, as the server recorded them in the order).
    pub signature_required: bool,
    /// When the lifecycle would let the caller close the order now but the organization's
    /// closing authority does not: the least senior `Role` that may (the desk says "需主管关闭").
    pub closing_needs: Option<&'static str>,
    /// The owner bot's conversation the order came from (`GET
    /// /api/v1/assistant/conversations/{id}`), for those who may open it: its owner and the
    /// office staff serving it.
    pub conversation: Option<String>,
    /// The incident (事件单) the order is a member of, for everyone who sees the order: an owner
    /// learns their report is part of a surge being handled as one (docs/incidents.md).
    pub incident: Option<OrderIncident>,
}

/// An order's incident, as its detail names it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrderIncident {
    pub number: i64,
    /// Where, as the pages show it: `5栋 2单元01立管`, `5栋`, `全小区`.
    pub place_zh: String,
    pub category: String,
    /// `IV` … `I`.
    pub level: String,
    /// `open` or `resolved` (a merged incident's orders are the other's).
    pub state: String,
    pub households: i64,
    pub first_report_at: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MaskedCaller {
    pub name: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NoteView {
    pub id: String,
    pub author: String,
    /// The author's display name, for staff.
    pub who: Option<String>,
    pub at: i64,
    pub text: String,
    /// The English of a note the server wrote itself (a reclassification's); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
    pub visibility: NoteVisibility,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PartView {
    pub name: String,
    pub quantity: i64,
    pub author: String,
    pub who: Option<String>,
    pub at: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeView {
    pub author: String,
    pub who: Option<String>,
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChecklistView {
    pub id: String,
    pub label: String,
    pub done: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AttachmentView {
    pub sha256: String,
    pub mime: String,
    /// `photo`, `signature` (the owner's, named by the completion it confirms) or `file`.
    pub kind: &'static str,
    pub caption: Option<String>,
    pub author: String,
    /// The author's name (staff; `None` for an owner, whom the page names by role).
    pub who: Option<String>,
    pub at: i64,
    /// When it was attached, against the work, by the order's status as its author's device
    /// saw it: `before` (new, assigned, accepted), `during` (on site, in progress, on hold,
    /// rework), `after` (completed, confirmed, closed).
    pub phase: String,
    /// The type the server found the bytes to be (sniffed at upload; `mime` is what the
    /// attaching device said): what a page trusts to show or save them. `None` until uploaded.
    pub stored_type: Option<String>,
    /// Whether its bytes have reached the server (`…/attachments/{sha256}` downloads them).
    pub uploaded: bool,
    /// Whether it has a thumbnail (`…/attachments/{sha256}/thumbnail`).
    pub thumbnail: bool,
}

/// One entry of the timeline: when, who, and what (by `kind`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimelineItem {
    pub at: i64,
    pub who: Option<String>,
    pub by: String,
    pub role: Option<&'static str>,
    /// A note's text, a transition's reason or comment.
    pub text: Option<String>,
    /// The English of a note the server wrote itself; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
    #[serde(flatten)]
    pub event: TimelineItemEvent,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineItemEvent {
    /// A lifecycle action (`what`, its code), applied or superseded (with the reason).
    Transition {
        what: &'static str,
        status_after: &'static str,
        /// `applied` or `superseded`.
        verdict: &'static str,
        reason_code: Option<&'static str>,
        reason_zh: Option<&'static str>,
        reason_en: Option<&'static str>,
        /// A completion's owner signature (业主签字确认): the SHA-256 of its picture among the
        /// attachments.
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    Note {
        what: &'static str,
        visibility: NoteVisibility,
    },
    Part {
        what: &'static str,
        name: String,
        quantity: i64,
    },
    Time {
        what: &'static str,
        start: i64,
        end: i64,
    },
    Attachment {
        what: &'static str,
        sha256: String,
        mime: String,
        /// `photo`, `signature` or `file`.
        attachment_kind: &'static str,
    },
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RejectedEditView {
    /// The action's code, or the fields the change touched.
    pub what: String,
    pub by: String,
    pub who: Option<String>,
    pub role: &'static str,
    pub reason_code: String,
    pub reason_zh: String,
    pub reason_en: String,
    pub at: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CountdownView {
    /// The policy's name.
    pub policy: String,
    pub response_due: i64,
    pub responded_at: Option<i64>,
    pub arrival_due: Option<i64>,
    pub arrived_at: Option<i64>,
    /// `null` while a pausing hold stops the clock.
    pub resolution_due: Option<i64>,
    pub resolved_at: Option<i64>,
    pub paused: bool,
    /// The deadline of the first stage not yet met.
    pub next_due: Option<i64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HoldView {
    pub from: i64,
    /// When the hold ended (`null` while it lasts).
    pub to: Option<i64>,
    /// A `HoldReason` code.
    pub reason: &'static str,
    pub pauses_clock: bool,
}

pub(super) async fn detail_of(
    state: &AppState,
    principal: &Principal,
    order: OrderId,
) -> Result<OrderDetail, ApiError> {
    let doc = state.db.order_doc(principal, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    let mut row = row_of(state, principal, order).await?;
    // The detail carries the whole description, not the row's first 120 characters.
    row.description = None;
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
        state.db.caller(&principal.org, order).await?.map(|(name, phone)| MaskedCaller {
            name: name.as_deref().map(crate::http::privacy::mask_name),
            phone: phone.as_deref().map(crate::http::privacy::mask_phone),
        })
    } else {
        None
    };
    let sla_events =
        if principal.role.is_staff() { state.db.sla_events(&principal.org, order).await? } else { Vec::new() };
    let internal = if principal.role.reads_internal_notes() {
        state.db.internal_notes(&principal.org, order).await?
    } else {
        Vec::new()
    };
    let mut timeline: Vec<TimelineItem> = timeline::timeline(&document)
        .map_err(|_| ApiError::internal())?
        .into_iter()
        .map(|entry| TimelineItem {
            at: entry.at_ms,
            who: name(&entry.by),
            by: entry.by.to_string(),
            role: entry.role.map(|r| r.code()),
            text: entry.text,
            text_en: None,
            event: match entry.event {
                TimelineEvent::Transition { action, verdict, status_after, signature } => {
                    let why = match verdict {
                        Verdict::Superseded(why) => Some(why),
                        Verdict::Applied => None,
                    };
                    TimelineItemEvent::Transition {
                        what: action,
                        status_after,
                        verdict: if why.is_some() { "superseded" } else { "applied" },
                        reason_code: why.map(|w| w.code()),
                        reason_zh: why.map(|w| w.message_zh()),
                        reason_en: why.map(|w| w.message_en()),
                        signature,
                    }
                }
                TimelineEvent::Note => TimelineItemEvent::Note { what: "note", visibility: NoteVisibility::Public },
                TimelineEvent::Part { name, quantity } => TimelineItemEvent::Part { what: "part", name, quantity },
                TimelineEvent::Time { start_ms, end_ms } => {
                    TimelineItemEvent::Time { what: "time", start: start_ms, end: end_ms }
                }
                TimelineEvent::Attachment { sha256, mime, kind } => {
                    TimelineItemEvent::Attachment { what: "attachment", sha256, mime, attachment_kind: kind.code() }
                }
            },
        })
        .collect();
    timeline.extend(internal.iter().map(|n| TimelineItem {
        at: n.at_ms,
        who: names.get(&n.author).cloned(),
        by: n.author.clone(),
        role: Role::from_code(&n.author_role).ok().map(|r| r.code()),
        text: Some(n.text.clone()),
        text_en: n.text_en.clone(),
        event: TimelineItemEvent::Note { what: "note", visibility: NoteVisibility::Internal },
    }));
    timeline.sort_by_key(|item| item.at);
    let mut notes: Vec<NoteView> = document
        .notes()
        .iter()
        .map(|n| NoteView {
            id: n.id.clone(),
            author: n.by.to_string(),
            who: name(&n.by),
            at: n.at_ms,
            text: n.text.clone(),
            text_en: None,
            visibility: NoteVisibility::Public,
        })
        .chain(internal.into_iter().map(|n| NoteView {
            who: names.get(&n.author).cloned(),
            id: n.id,
            author: n.author,
            at: n.at_ms,
            text: n.text,
            text_en: n.text_en,
            visibility: NoteVisibility::Internal,
        }))
        .collect();
    notes.sort_by_key(|n| n.at);
    let rejected_edits = timeline::rejected_edits(&document, &order_state)
        .into_iter()
        .map(|r| RejectedEditView {
            who: name(&r.by),
            by: r.by.to_string(),
            what: r.what,
            role: r.role.code(),
            reason_code: r.reason_code,
            reason_zh: r.message_zh,
            reason_en: r.message_en,
            at: r.at_ms,
        })
        .collect();
    let pauses = order_state
        .history
        .iter()
        .filter(|f| f.verdict == Verdict::Applied)
        .filter_map(|f| match f.transition.action {
            Action::Hold(reason) => Some((f.transition.at_ms, reason)),
            _ => None,
        })
        .zip(order_state.pauses.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|((from, reason), pause)| HoldView {
            from,
            to: pause.and_then(|(_, end)| *end),
            reason: reason.code(),
            pauses_clock: reason.pauses(),
        })
        .collect();
    let (actions, closing_needs) = allowed_actions(&document, &order_state, principal, &closing);
    let may_attach = state.blobs.is_some()
        && document.reporter().is_ok_and(|reporter| {
            loopwork_sync_core::permissions::check_field(
                loopwork_sync_core::permissions::Field::Attachments,
                &order_state,
                reporter,
                principal.user,
                principal.role,
            )
            .is_ok()
        });
    // What the server recorded of each reference (its phase) and holds of each blob, in one
    // query.
    let recorded = state.db.order_blobs(&principal.org, order).await?;
    let attachments = document
        .attachments()
        .into_iter()
        .map(|a| {
            let (phase, blob) = recorded.get(&a.sha256).cloned().unwrap_or_else(|| ("before".into(), None));
            AttachmentView {
                who: name(&a.by),
                author: a.by.to_string(),
                at: a.at_ms,
                phase,
                uploaded: blob.is_some(),
                thumbnail: blob.as_ref().is_some_and(|b| b.thumbnail),
                stored_type: blob.map(|b| b.mime),
                sha256: a.sha256,
                mime: a.mime,
                kind: a.kind.code(),
                caption: a.caption,
            }
        })
        .collect();
    // Named only to whoever may open it (its owner, the staff serving it).
    let conversation = match state.db.order_conversation(&principal.org, &order.to_string()).await? {
        Some(id) if crate::http::assistant::visible(state, principal, &id).await.is_ok() => Some(id),
        _ => None,
    };
    let incident = state.db.order_incident(&principal.org, &order.to_string()).await?.map(|i| OrderIncident {
        place_zh: crate::http::incidents::place_zh(&i),
        number: i.number,
        category: i.category,
        level: i.level,
        state: i.state,
        households: i.households,
        first_report_at: i.first_report_at,
    });
    let confirmed_rating = order_state.history.iter().rev().find_map(|f| rating_of(&f.transition.action));
    Ok(OrderDetail {
        row,
        description: document.description(),
        channel: document.channel().map(|c| c.code()).ok(),
        occurred_at: document.occurred_at_ms(),
        appointment: document.appointment().map(AppointmentWindow::from),
        reporter: document.reporter().map(|r| r.to_string()).ok(),
        caller,
        notes,
        parts: document
            .parts()
            .iter()
            .map(|p| PartView {
                name: p.name.clone(),
                quantity: p.quantity,
                author: p.by.to_string(),
                who: name(&p.by),
                at: p.at_ms,
            })
            .collect(),
        time_log: document
            .time_log()
            .iter()
            .map(|t| TimeView { author: t.by.to_string(), who: name(&t.by), start: t.start_ms, end: t.end_ms })
            .collect(),
        checklist: document
            .checklist()
            .iter()
            .map(|c| ChecklistView { id: c.id.clone(), label: c.label.clone(), done: c.done })
            .collect(),
        attachments,
        timeline,
        rejected_edits,
        countdown: countdown.map(|c| CountdownView {
            policy: c.policy,
            response_due: c.response_due_ms,
            responded_at: c.responded_at_ms,
            arrival_due: c.arrival_due_ms,
            arrived_at: c.arrived_at_ms,
            resolution_due: c.resolution_due_ms,
            resolved_at: c.resolved_at_ms,
            paused: c.paused,
            next_due: c.next_due_ms,
        }),
        pauses,
        rating: order_state.rating.or(confirmed_rating),
        rating_comment: order_state.rating_comment.clone(),
        auto_confirmed: order_state.auto_confirmed,
        reopen_count: order_state.reopen_count,
        return_visit_required: order_state.return_visit_required,
        return_visit_reasons: order_state.return_visit_reasons.iter().map(|r| r.code()).collect(),
        sla_events,
        actions,
        may_attach,
        signature_required: document.signature_required(),
        closing_needs,
        conversation,
        incident,
    })
}

/// The action codes `principal` may take on the order now, by the lifecycle rules (and, for
/// closing, the organization's closing authority); and, when the lifecycle alone would let them
/// close it but the closing authority does not, the role that may ([`OrderDetail::closing_needs`]).
pub(super) fn allowed_actions(
    document: &WorkOrder,
    state: &OrderState,
    principal: &Principal,
    closing: &ClosingAuthority,
) -> (Vec<&'static str>, Option<&'static str>) {
    let (Ok(facts), Ok(grade)) = (document.facts(), document.grade()) else {
        return (Vec::new(), None);
    };
    let mut closing_needs = None;
    let actions = person_actions(principal.user)
        .iter()
        .filter(|action| lifecycle::check_entry(state, &facts, action, principal.user, principal.role, false).is_ok())
        .filter(|action| {
            let withheld = **action == Action::Close && !closing.allows(grade, principal.role);
            if withheld {
                closing_needs = Some(closing.required(grade).code());
            }
            !withheld
        })
        .map(|action| action.code())
        .collect();
    (actions, closing_needs)
}

/// `GET /api/v1/orders/{id}/qr.svg` (office staff, in scope): the order's QR code for its printed
/// 派工单, as SVG. It holds `loopwork://order/{id}?n={number}`: the technicians' app opens the
/// order from it (a link, not the order: scanning tells nothing without signing in).
pub async fn qr(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    staff_only(&principal)?;
    let order: OrderId = id.parse().map_err(|_| ApiError::not_found("order"))?;
    crate::auth::require_served(&state, &principal, order).await?;
    let row = row_of(&state, &principal, order).await?;
    crate::http::web::qr_svg(&format!("loopwork://order/{order}?n={}", row.number))
}
