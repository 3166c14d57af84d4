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
    /// Category codes the technician works in (工种), as the admin console keeps them.
    pub trades: Vec<String>,
}

/// `GET /api/v1/technicians` (office staff): load, trades and whether each is on duty.
pub async fn technicians(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<Technician>>, ApiError> {
    staff_only(&principal)?;
    let now = state.clock.now_ms();
    let list = state.db.technicians(&principal.org).await?;
    let mut trades = state.db.trades(&principal.org).await?;
    Ok(Json(
        list.into_iter()
            .map(|t| Technician {
                on_duty: t.last_seen_at.is_some_and(|at| now - at < ON_DUTY_MS),
                trades: trades.remove(&t.user_id).unwrap_or_default(),
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

/// The filter as sent, checked: blank values dropped, codes and ranges held to the docs.
fn checked_filter(mut filter: OrderFilter, max_limit: i64) -> Result<OrderFilter, ApiError> {
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
        &mut filter.sort,
        &mut filter.suggested,
    ] {
        blank_is_none(value);
    }
    if filter.suggested.as_deref().is_some_and(|s| !matches!(s, "urgent" | "pending")) {
        return Err(ApiError::invalid(
            "invalid_query",
            "suggested is urgent or pending",
            "suggested 须为 urgent 或 pending",
        ));
    }
    if let Some(status) = filter.status.as_deref().filter(|s| !matches!(*s, "open" | "not_cancelled")) {
        Status::from_code(status).map_err(|_| invalid_code("status", status))?;
    }
    if let Some(sort) = filter.sort.as_deref()
        && !crate::store::QUEUE_SORTS.contains(&sort)
    {
        return Err(ApiError::invalid(
            "invalid_query",
            format!("sort is one of {}", crate::store::QUEUE_SORTS.join(", ")),
            "排序方式无效",
        ));
    }
    if filter.limit.is_some_and(|l| !(1..=max_limit).contains(&l)) {
        return Err(out_of_range("limit", 1, max_limit));
    }
    if filter.offset.is_some_and(|o| !(0..=MAX_QUEUE_OFFSET).contains(&o)) {
        return Err(out_of_range("offset", 0, MAX_QUEUE_OFFSET));
    }
    if filter.hour_of_week.is_some_and(|h| !(0..HOURS_PER_WEEK).contains(&h)) {
        return Err(out_of_range("hour_of_week", 0, HOURS_PER_WEEK - 1));
    }
    if filter.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::invalid("invalid_query", "q is longer than 100 characters", "搜索内容过长"));
    }
    Ok(filter)
}

/// The most rows a page may skip (`offset`).
pub const MAX_QUEUE_OFFSET: i64 = 1_000_000;

/// `GET /api/v1/orders`: the caller's scope, filtered, in the order asked (most urgent first by
/// default), one page; `X-Total-Count` says how many match in all.
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(filter): Params<OrderFilter>,
) -> Result<(axum::http::HeaderMap, Json<Vec<OrderListItem>>), ApiError> {
    let filter = checked_filter(filter, MAX_QUEUE_ROWS)?;
    if filter.suggested.is_some() {
        staff_only(&principal)?;
    }
    let now = state.clock.now_ms();
    let (rows, total) = tokio::try_join!(
        state.db.query_orders(&principal, &filter, now),
        state.db.count_orders(&principal, &filter, now)
    )?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-total-count", axum::http::HeaderValue::from(total));
    Ok((headers, Json(rows)))
}

/// The export's formats (the path's last segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

/// The most rows an export holds.
pub const MAX_EXPORT_ROWS: i64 = crate::store::MAX_ROWS;

/// `GET /api/v1/orders/export/{xlsx|csv}` (office staff): the orders the queue's filters match,
/// in the queue's order, as an XLSX workbook or a CSV file Excel opens (UTF-8 with its byte order
/// mark), at most 10,000 rows (`X-Total-Count` says how many matched); times in China Standard
/// Time, codes as their Chinese labels; named for its period and project.
pub async fn export(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(format): Path<String>,
    Params(filter): Params<OrderFilter>,
) -> Result<axum::response::Response, ApiError> {
    staff_only(&principal)?;
    let format = match format.as_str() {
        "xlsx" => ExportFormat::Xlsx,
        "csv" => ExportFormat::Csv,
        _ => return Err(ApiError::not_found("export format (xlsx or csv)")),
    };
    let mut filter = checked_filter(filter, MAX_EXPORT_ROWS)?;
    filter.limit = Some(filter.limit.unwrap_or(MAX_EXPORT_ROWS));
    let now = state.clock.now_ms();
    let (rows, total) = tokio::try_join!(
        state.db.query_orders(&principal, &filter, now),
        state.db.count_orders(&principal, &filter, now)
    )?;
    let project = project_name(&state, &principal, filter.project.as_deref()).await?;
    let day = |ms: i64| loopwork_sync_core::china_time::day_code(ms);
    let period = match (filter.from, filter.to) {
        (Some(from), Some(to)) => format!("{}-{}", day(from), day(to - 1)),
        (Some(from), None) => format!("{}起", day(from)),
        (None, Some(to)) => format!("至{}", day(to - 1)),
        (None, None) => format!("截至{}", day(now)),
    };
    let table = super::export::table(&rows);
    let (bytes, extension, content_type) = match format {
        ExportFormat::Xlsx => {
            (super::export::xlsx(&table)?, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        }
        ExportFormat::Csv => (super::export::csv(&table), "csv", "text/csv; charset=utf-8"),
    };
    let name = format!("工单_{project}_{period}.{extension}");
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(content_type));
    headers.insert(axum::http::header::CONTENT_DISPOSITION, attachment(&name, &format!("orders.{extension}"))?);
    headers.insert("x-total-count", axum::http::HeaderValue::from(total));
    Ok(axum::response::IntoResponse::into_response((headers, bytes)))
}

pub(super) async fn row_of(state: &AppState, principal: &Principal, order: OrderId) -> Result<OrderListItem, ApiError> {
    let filter = OrderFilter { id: Some(order.to_string()), limit: Some(1), ..Default::default() };
    state.db.query_orders(principal, &filter, 0).await?.pop().ok_or_else(|| ApiError::not_found("order"))
}

/// A view to save (`POST /api/v1/me/views`): a name and the queue's query string.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewView {
    /// 1 to 40 characters.
    pub name: String,
    /// The queue's query string (at most 1,000 characters), e.g. `status=open&grade=severe`:
    /// it must be one `GET /api/v1/orders` accepts.
    pub query: String,
}

/// `GET /api/v1/me/views`: the signed-in user's saved views of the queue, by name.
pub async fn views(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<SavedView>>, ApiError> {
    staff_only(&principal)?;
    Ok(Json(state.db.saved_views(&principal).await?))
}

/// `POST /api/v1/me/views`: saves (or replaces, by name) a view; 201 with it.
pub async fn save_view(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<NewView>,
) -> Result<(StatusCode, Json<SavedView>), ApiError> {
    staff_only(&principal)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_view",
            "a view's name is 1 to 40 characters",
            "视图名称须为 1 至 40 个字符",
        ));
    }
    let query = body.query.trim().trim_start_matches('?');
    let refused = || ApiError::invalid("invalid_view", "the query is not one the queue accepts", "视图的筛选条件无效");
    if query.len() > 1_000 {
        return Err(refused());
    }
    let filter: OrderFilter = serde_urlencoded::from_str(query).map_err(|_| refused())?;
    checked_filter(filter, MAX_QUEUE_ROWS).map_err(|_| refused())?;
    match state.db.save_view(&principal, name, query, state.clock.now_ms()).await? {
        Some(view) => Ok((StatusCode::CREATED, Json(view))),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_views",
            format!("a user keeps at most {MAX_SAVED_VIEWS} views"),
            format!("每人最多保存 {MAX_SAVED_VIEWS} 个视图"),
        )),
    }
}

/// `DELETE /api/v1/me/views/{id}`: deletes one of the user's views.
pub async fn delete_view(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff_only(&principal)?;
    if state.db.delete_view(&principal, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("view"))
    }
}
