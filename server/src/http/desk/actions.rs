//! Actions, bulk assignment, reclassification, notes and links.

use super::*;

// ----- actions -----

/// `POST /api/v1/orders/{id}/actions`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The action's code (the vocabulary's `actions`; those with `requires_text` need `text`).
    #[schemars(extend("enum" = ["assign", "accept", "arrive", "start", "hold", "resume", "complete", "confirm", "reject", "return_visit", "close", "cancel"]))]
    pub action: String,
    /// The technician's user id (`assign`).
    #[serde(default)]
    pub assignee: Option<String>,
    /// 1 to 5 (`confirm`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5))]
    pub rating: Option<u8>,
    /// A reason, a comment or a result.
    #[serde(default)]
    #[schemars(length(max = MAX_NOTE_CHARS))]
    pub text: Option<String>,
    /// A hold reason code (`hold`; default `other`).
    #[serde(default)]
    pub hold_reason: Option<String>,
}

pub(super) fn action_of(body: &ActionBody) -> Result<Action, ApiError> {
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
) -> Result<Json<OrderDetail>, ApiError> {
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
pub(super) async fn ensure_technician(state: &AppState, principal: &Principal, user: UserId) -> Result<(), ApiError> {
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAssign {
    #[schemars(length(min = 1, max = MAX_BULK))]
    pub ids: Vec<String>,
    pub assignee: String,
}

/// What a bulk assignment did, order by order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BulkResults {
    pub results: Vec<BulkResult>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BulkResult {
    pub id: String,
    pub ok: bool,
    /// Why this order was not assigned (absent when it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BulkError>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BulkError {
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

pub async fn bulk_assign(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<BulkAssign>,
) -> Result<Json<BulkResults>, ApiError> {
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
            Ok(()) => BulkResult { id: id.clone(), ok: true, error: None },
            Err(e) => BulkResult {
                id: id.clone(),
                ok: false,
                error: Some(BulkError { code: e.code, message: e.message_en, message_zh: e.message_zh }),
            },
        });
    }
    Ok(Json(BulkResults { results }))
}

/// `POST /api/v1/orders/{id}/classify`: a new grade or category, with the reason kept as an
/// internal note (投诉分级分类, changeable with a reason; the owner sees the new grade, not why).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Classify {
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    pub reason: String,
}

/// `PUT /api/v1/orders/{id}/appointment` (`{from, to}`) and `DELETE` (no body): sets or clears
/// the preferred window, by the field rules (office staff; the assigned technician while a
/// visit is still to be agreed; the reporting owner before acceptance).
pub async fn set_appointment(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(window): Body<AppointmentWindow>,
) -> Result<Json<OrderDetail>, ApiError> {
    let order = parse_order(&id)?;
    let window = window.checked()?;
    act(&state, &principal, order, |replica, id| replica.set_appointment(id, Some(window))).await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

pub async fn clear_appointment(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    let order = parse_order(&id)?;
    act(&state, &principal, order, |replica, id| {
        if replica.order(id)?.appointment().is_none() {
            return Err(CoreError::InvalidInput("the order has no appointment".into()));
        }
        replica.set_appointment(id, None)
    })
    .await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

pub async fn classify(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<Classify>,
) -> Result<Json<OrderDetail>, ApiError> {
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
    let (zh, en) = act(&state, &principal, order, |replica, id| {
        reclassify(replica, id, grade, category.as_ref())?
            .ok_or_else(|| CoreError::InvalidInput("the order already has that grade and category".into()))
    })
    .await?;
    // The order is in the principal's scope: `act` read it for them. The server's own note, in
    // both languages (the reason as the dispatcher wrote it).
    let note = format!("{zh}(原因:{reason})");
    let mut note_en = format!("{en} (reason: {reason})");
    note_en[..1].make_ascii_uppercase();
    let now = state.clock.now_ms();
    state.db.add_internal_note(&principal.org, order, &principal.identity(), now, &note, Some(&note_en)).await?;
    // A person has classified the order: the assistant's reading is no longer a question.
    state.db.confirm_triage(&principal.org, order, principal.user, Answer::Reclassified, now).await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// `POST /api/v1/orders/{id}/suggestion` (office staff): the answer to the assistant's reading
/// of the order: `accept` takes its category and grade (a reclassification with the server's
/// note, as by hand; the kind stays), or sets it aside. Either way the order leaves the
/// suggestions awaiting a person.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestionAnswer {
    pub accept: bool,
}

pub async fn answer_suggestion(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<SuggestionAnswer>,
) -> Result<Json<OrderDetail>, ApiError> {
    staff_only(&principal)?;
    let order = parse_order(&id)?;
    let row = super::row_of(&state, &principal, order).await?;
    let Some(suggestion) = row.suggestion.filter(|s| !s.confirmed) else {
        return Err(no_open_suggestion());
    };
    let now = state.clock.now_ms();
    // Claimed first: of two dispatchers answering at once, one answers.
    let answer = if body.accept { Answer::Accepted } else { Answer::Dismissed };
    if !state.db.confirm_triage(&principal.org, order, principal.user, answer, now).await? {
        return Err(no_open_suggestion());
    }
    if body.accept {
        let taken = take_suggestion(&state, &principal, order, &suggestion, now).await;
        if taken.is_err() {
            state.db.release_triage(&principal.org, order, principal.user).await?;
        }
        taken?;
    }
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// `POST /api/v1/orders/{id}/notes`: an internal note (内部备注; staff and technicians, the
/// default for them), kept out of the order's document and never shown to an owner, or a public
/// note (`"visibility": "public"`: a reply to the owner, in the document every holder of the
/// order reads; what an owner's note always is).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[schemars(length(min = 1, max = MAX_NOTE_CHARS))]
    pub text: String,
    /// `internal` (the default for staff and technicians) or `public` (the default, and the only
    /// choice, for owners).
    #[serde(default)]
    pub visibility: Option<NoteVisibility>,
}

/// Who reads a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteVisibility {
    /// The company's people only (`Role::reads_internal_notes`).
    Internal,
    /// Everyone holding the order, its owner included.
    Public,
}

pub async fn add_note(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<NoteBody>,
) -> Result<Json<OrderDetail>, ApiError> {
    let order = parse_order(&id)?;
    text_field("text", &body.text, true, MAX_NOTE_CHARS)?;
    let text = body.text.trim().to_owned();
    let internal_allowed = principal.role.reads_internal_notes();
    let visibility =
        body.visibility.unwrap_or(if internal_allowed { NoteVisibility::Internal } else { NoteVisibility::Public });
    match visibility {
        NoteVisibility::Public => {
            act(&state, &principal, order, |replica, id| replica.add_note(id, &text)).await?;
        }
        NoteVisibility::Internal if internal_allowed => {
            add_internal_note(&state, &principal, order, &text).await?;
        }
        NoteVisibility::Internal => {
            return Err(ApiError::forbidden("owners cannot write internal notes", "业主不能添加内部备注"));
        }
    }
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// `POST /api/v1/orders/{id}/attachments`: bytes the organization holds (uploaded first,
/// docs/attachments.md) attached to the order as the caller, under the same rules as a phone's
/// attachment (office staff while the order is open, its technician on the job, its owner
/// before a technician accepts).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    /// The bytes' SHA-256 as uploaded (64 lowercase hex digits).
    pub sha256: String,
}

pub async fn attach(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<AttachBody>,
) -> Result<Json<OrderDetail>, ApiError> {
    let order = parse_order(&id)?;
    crate::http::attachments::require_sha256(&body.sha256)?;
    if principal.role.is_staff() {
        crate::auth::require_served(&state, &principal, order).await?;
    }
    // The caller's own upload (knowing a hash the organization holds is not enough).
    let Some(blob) = state.db.uploaded_by(&principal.org, &principal.user.to_string(), &body.sha256).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_uploaded",
            "you have not uploaded these bytes: upload them first (POST /api/v1/uploads)",
            "您尚未上传该附件,请先上传",
        ));
    };
    act(&state, &principal, order, |replica, id| replica.attach(id, &body.sha256, &blob.mime)).await?;
    Ok(Json(detail_of(&state, &principal, order).await?))
}

/// Records an internal note on an order the principal may read (its scope checked as for the
/// detail).
pub(super) async fn add_internal_note(
    state: &AppState,
    principal: &Principal,
    order: OrderId,
    text: &str,
) -> Result<(), ApiError> {
    if principal.role.is_staff() {
        crate::auth::require_served(state, principal, order).await?;
    }
    state.db.order_doc(principal, order).await?.ok_or_else(|| ApiError::not_found("order"))?;
    state.db.add_internal_note(&principal.org, order, &principal.identity(), state.clock.now_ms(), text, None).await?;
    Ok(())
}

/// `POST /api/v1/orders/{id}/link`: the order duplicates `to`, so it is cancelled with a note
/// naming `to` (the one-click link of duplicate detection).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    pub to: String,
}

pub async fn link(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<LinkBody>,
) -> Result<Json<OrderDetail>, ApiError> {
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

fn no_open_suggestion() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no_open_suggestion",
        "the assistant has no reading of this order awaiting an answer (not read yet, or answered)",
        "该工单没有待确认的智能分类建议(尚未分析或已处理)",
    )
}

/// The suggestion's category and grade, written as a reclassification with the server's note.
async fn take_suggestion(
    state: &AppState,
    principal: &Principal,
    order: OrderId,
    suggestion: &crate::store::Suggestion,
    now: i64,
) -> Result<(), ApiError> {
    let grade = Grade::from_code(&suggestion.grade).map_err(|_| ApiError::internal())?;
    let category = Category::from_code(&suggestion.category).map_err(|_| ApiError::internal())?;
    let changed =
        act(state, principal, order, |replica, id| reclassify(replica, id, Some(grade), Some(&category))).await?;
    if let Some((zh, en)) = changed {
        let note = format!("采用智能分类建议:{zh}");
        let note_en = format!("Assistant's suggestion taken: {en}");
        state.db.add_internal_note(&principal.org, order, &principal.identity(), now, &note, Some(&note_en)).await?;
    }
    Ok(())
}

/// Sets the grade and the category that differ from the order's; what changed, in zh-CN and
/// English (the server's note), or `None` when both were already so. The one edit behind a
/// reclassification by hand and a taken suggestion.
fn reclassify(
    replica: &mut Replica<MemoryStore>,
    id: OrderId,
    grade: Option<Grade>,
    category: Option<&Category>,
) -> Result<Option<(String, String)>, CoreError> {
    let before = replica.order(id)?;
    let (mut zh, mut en) = (Vec::new(), Vec::new());
    if let Some(grade) = grade {
        let old = before.grade()?;
        if old != grade {
            replica.set_grade(id, grade)?;
            zh.push(format!("分级 {} → {}", old.label_zh(), grade.label_zh()));
            en.push(format!("grade {} → {}", old.label_en(), grade.label_en()));
        }
    }
    if let Some(category) = category {
        let old = before.category()?;
        if &old != category {
            replica.set_category(id, category)?;
            zh.push(format!("分类 {} → {}", old.label_zh(), category.label_zh()));
            en.push(format!("category {} → {}", old.label_en(), category.label_en()));
        }
    }
    Ok((!zh.is_empty()).then(|| (zh.join(","), en.join("; "))))
}
