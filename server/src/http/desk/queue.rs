//! The people and words the desk shows, and the queue.

use super::*;

// ----- who, and the words -----

/// Who is signed in (`GET /api/v1/me`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Me {
    pub user_id: String,
    /// A `Role` code.
    pub role: &'static str,
    pub org_id: String,
    pub name: String,
    /// An owner's units.
    pub units: Vec<UnitRef>,
    /// The projects a dispatcher is bound to (none: the whole organization).
    pub projects: Vec<ProjectRef>,
}

/// `GET /api/v1/me`
pub async fn me(State(state): State<AppState>, Authenticated(principal): Authenticated) -> Result<Json<Me>, ApiError> {
    let me = state.db.me(&principal).await?;
    Ok(Json(Me {
        user_id: principal.user.to_string(),
        role: principal.role.code(),
        org_id: principal.org,
        name: me.name,
        units: me.units,
        projects: me.projects,
    }))
}

/// What a person does to an order (the server's auto-confirmation is not one), one of each kind
/// as the rules check it; `by` stands in for an assignment's technician.
pub(super) fn person_actions(by: UserId) -> [Action; 12] {
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

/// A code with its zh-CN and English labels.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Label {
    pub code: String,
    pub zh: &'static str,
    pub en: &'static str,
}

/// An action's code and labels, and whether it needs a text (a reason or a comment).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionLabel {
    pub code: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub requires_text: bool,
}

/// Every code the API uses, with its labels (`GET /api/v1/vocabulary`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Vocabulary {
    pub kinds: Vec<Label>,
    pub categories: Vec<Label>,
    pub grades: Vec<Label>,
    pub channels: Vec<Label>,
    pub statuses: Vec<Label>,
    pub hold_reasons: Vec<Label>,
    pub return_visit_reasons: Vec<Label>,
    pub roles: Vec<Label>,
    pub actions: Vec<ActionLabel>,
}

/// `GET /api/v1/vocabulary`: every code the API uses, with zh-CN and English labels.
pub async fn vocabulary() -> Json<Vocabulary> {
    let entry = |code: &str, zh: &'static str, en: &'static str| Label { code: code.to_owned(), zh, en };
    Json(Vocabulary {
        kinds: Kind::ALL.iter().map(|k| entry(k.code(), k.label_zh(), k.label_en())).collect(),
        categories: Category::BUILT_IN.iter().map(|c| entry(&c.code(), c.label_zh(), c.label_en())).collect(),
        grades: Grade::ALL.iter().map(|g| entry(g.code(), g.label_zh(), g.label_en())).collect(),
        channels: Channel::ALL.iter().map(|c| entry(c.code(), c.label_zh(), c.label_en())).collect(),
        statuses: Status::ALL.iter().map(|s| entry(s.code(), s.label_zh(), s.label_en())).collect(),
        hold_reasons: HoldReason::ALL.iter().map(|h| entry(h.code(), h.label_zh(), h.label_en())).collect(),
        return_visit_reasons: ReturnVisitReason::ALL
            .iter()
            .map(|r| entry(r.code(), r.label_zh(), r.label_en()))
            .collect(),
        roles: Role::ALL
            .iter()
            .filter(|r| **r != Role::System)
            .map(|r| entry(r.code(), r.label_zh(), r.label_en()))
            .collect(),
        actions: person_actions(UserId::default())
            .iter()
            .map(|a| ActionLabel {
                code: a.code(),
                zh: a.label_zh(),
                en: a.label_en(),
                requires_text: a.requires_text(),
            })
            .collect(),
    })
}

/// A technician for the assignment picker.
#[derive(Debug, Serialize, JsonSchema)]
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

pub(super) fn blank_is_none(value: &mut Option<String>) {
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

pub(super) async fn row_of(state: &AppState, principal: &Principal, order: OrderId) -> Result<OrderListItem, ApiError> {
    let filter = OrderFilter { id: Some(order.to_string()), limit: Some(1), ..Default::default() };
    state.db.query_orders(principal, &filter, 0).await?.pop().ok_or_else(|| ApiError::not_found("order"))
}
