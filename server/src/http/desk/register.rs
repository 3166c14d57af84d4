//! Registration of a request or complaint, with possible duplicates.

use loopwork_sync_core::estate::{CodePart, normalize_phone};

use super::*;
use crate::store::PlaceCheck;

// ----- registration -----

/// `POST /api/v1/orders`. An optional `Idempotency-Key` header (1–64 visible ASCII characters)
/// makes a retry safe: the same user sending the same registration with the same key within
/// 24 hours gets the order the first one made (201, `Idempotent-Replayed: true`), not a second;
/// the key with another registration is 422 `idempotency_key_reused`, and while the first is
/// still being made 409 `idempotency_key_in_flight`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
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
    #[schemars(length(min = 1, max = MAX_DESCRIPTION_CHARS))]
    pub description: String,
    #[serde(default)]
    pub occurred_at: Option<i64>,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    /// 登记并派单: the technician (a user id) the order is assigned to in the same request
    /// (office staff only).
    #[serde(default)]
    pub assignee: Option<String>,
    /// 预约时间: when the caller would like someone to come.
    #[serde(default)]
    pub appointment: Option<AppointmentWindow>,
    /// The owner bot's conversation the report comes from (its owner, or office staff serving
    /// it): kept with the order, at most one order per conversation (409
    /// `conversation_has_order`; a closed one 409 `conversation_closed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// 设备: the asset the order is about, one of the project's in the asset register (office
    /// staff only; 400 `unknown_asset`, `invalid_asset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
}

/// A window of time (ms): 预约时间. `from` before `to`, at most 7 days apart.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentWindow {
    pub from: i64,
    pub to: i64,
}

impl AppointmentWindow {
    /// The window as sync-core keeps it (400 `invalid_appointment` otherwise).
    pub fn checked(self) -> Result<Appointment, ApiError> {
        Appointment::new(self.from, self.to).map_err(|_| {
            ApiError::invalid(
                "invalid_appointment",
                "an appointment is {from, to} in ms: from before to, at most 7 days apart",
                "预约时间须为开始早于结束、跨度不超过 7 天的时间段",
            )
        })
    }
}

impl From<Appointment> for AppointmentWindow {
    fn from(a: Appointment) -> Self {
        AppointmentWindow { from: a.from_ms, to: a.to_ms }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Registered {
    pub id: String,
    /// The archived number (档案编号), given at once.
    pub number: String,
    /// Open orders of the same unit and category from the last 24 hours.
    pub duplicates: Vec<OrderListItem>,
}

pub(super) fn non_blank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The longest `Idempotency-Key` kept.
pub const MAX_IDEMPOTENCY_KEY: usize = 64;

/// The request's `Idempotency-Key`, if it sent one.
fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            format!("Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            "Idempotency-Key 须为 1 至 64 个可见 ASCII 字符",
        ));
    }
    Ok(Some(key.to_owned()))
}

pub async fn register(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: axum::http::HeaderMap,
    Body(body): Body<Registration>,
) -> Result<(StatusCode, axum::http::HeaderMap, Json<Registered>), ApiError> {
    // With a key, what was asked (the body's hash) is remembered with it.
    let key = match idempotency_key(&headers)? {
        Some(key) => {
            use sha2::{Digest, Sha256};
            let request = serde_json::to_vec(&body).map_err(|_| ApiError::internal())?;
            Some((key, hex::encode(Sha256::digest(request))))
        }
        None => None,
    };
    let kind = Kind::from_code(&body.kind).map_err(|_| invalid_code("kind", &body.kind))?;
    let category = Category::from_code(&body.category).map_err(|_| invalid_code("category", &body.category))?;
    let grade = match body.grade.as_deref() {
        Some(code) => Grade::from_code(code).map_err(|_| invalid_code("grade", code))?,
        None => Grade::Minor,
    };
    let channel = Channel::from_code(&body.channel).map_err(|_| invalid_code("channel", &body.channel))?;
    text_field("description", &body.description, true, MAX_DESCRIPTION_CHARS)?;
    let appointment = body.appointment.map(AppointmentWindow::checked).transpose()?;
    let asset = non_blank(body.asset);
    if asset.is_some() && !principal.role.is_staff() {
        return Err(ApiError::invalid(
            "invalid_asset",
            "only office staff name an asset",
            "只有客服及管理人员可以关联设备",
        ));
    }
    let conversation = match body.conversation.as_deref() {
        Some(id) => Some(crate::http::assistant::visible(&state, &principal, id).await?),
        None => None,
    };
    let caller_name = non_blank(body.caller_name);
    let caller_phone = non_blank(body.caller_phone);
    if caller_name.as_ref().is_some_and(|n| n.chars().count() > 40) {
        return Err(ApiError::invalid(
            "invalid_caller",
            "the caller's name is longer than 40 characters",
            "来电人姓名过长",
        ));
    }
    // Stored as the estate register writes numbers, so that the caller pop-up finds it.
    let caller_phone = match caller_phone {
        Some(phone) => Some(normalize_phone(&phone).map_err(|fault| {
            ApiError::invalid(
                "invalid_caller",
                format!("the caller's phone number: {fault}"),
                format!("来电号码无效:{}", fault.label_zh()),
            )
        })?),
        None => None,
    };
    // Codes as the register keeps them: `3栋` is building 3, `1502室` unit 1502.
    let code = |name, raw: Option<String>, part| {
        non_blank(raw).map(|raw| crate::http::estate::code(name, &raw, part)).transpose()
    };
    let mut location = Location {
        project: body.project.trim().to_owned(),
        building: code("building", body.building, CodePart::Building)?,
        unit: code("unit", body.unit, CodePart::Room)?,
        area: non_blank(body.area),
    };
    match location.check() {
        Ok(()) => {}
        Err(LocationFault::MissingPlace) => {
            return Err(ApiError::invalid("missing_location", "give a unit or a common area", "请填写房号或公共区域"));
        }
        Err(fault) => return Err(ApiError::invalid("invalid_input", fault.to_string(), "位置信息无效")),
    }
    // A project with an estate register takes only its units (and its buildings' common areas);
    // a unit given without its building gets it from the register. Another project's register is
    // not consulted: the push refuses the project itself.
    if state.db.me(&principal).await?.projects.iter().any(|p| p.code == location.project) {
        match state.db.check_place(&principal.org, &location).await? {
            PlaceCheck::NoRegister | PlaceCheck::Known { building: None } => {}
            PlaceCheck::Known { building: Some(building) } => location.building = Some(building),
            PlaceCheck::Unknown => {
                return Err(ApiError::invalid(
                    "unknown_unit",
                    "the estate register of the project has no such unit (or building)",
                    "房屋档案中没有该房号(或楼栋),请核对后再登记",
                ));
            }
            PlaceCheck::Ambiguous => {
                return Err(ApiError::invalid(
                    "ambiguous_unit",
                    "several buildings have this unit: give the building",
                    "多个楼栋都有该房号,请填写楼栋",
                ));
            }
        }
    }
    if channel == Channel::Plan && !loopwork_sync_core::creation::channel_allowed(principal.role, channel) {
        return Err(ApiError::invalid(
            "invalid_channel",
            "only the server registers through a maintenance plan (channel `plan`)",
            "维保计划渠道的工单只能由系统生成",
        ));
    }
    if !loopwork_sync_core::creation::kind_allowed(principal.role, kind) {
        return Err(ApiError::invalid(
            "invalid_kind",
            "owners do not report planned maintenance (kind `maintenance`)",
            "业主不能登记计划维保工单",
        ));
    }
    // The asset: the project's own (another project's, or none of that id, is unknown).
    if let Some(id) = &asset
        && state.db.asset(&principal.org, id).await?.is_none_or(|a| a.project != location.project)
    {
        return Err(ApiError::invalid(
            "unknown_asset",
            "the project's asset register has no such asset",
            "该项目的设备台账中没有这台设备",
        ));
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
    let assignee = match non_blank(body.assignee) {
        Some(_) if !principal.role.is_staff() => {
            return Err(ApiError::forbidden("only office staff assign", "只有客服及管理人员可以派单"));
        }
        Some(user) => {
            let user: UserId = user.parse().map_err(|_| {
                ApiError::invalid(
                    "unknown_technician",
                    "no active technician of this organization has that id",
                    "没有这位维修工",
                )
            })?;
            super::actions::ensure_technician(&state, &principal, user).await?;
            Some(user)
        }
        None => None,
    };
    let now = state.clock.now_ms();
    let mut replica = Replica::new(MemoryStore::new(), principal.identity(), FixedClock::at(now));
    let id = replica.create(&new).map_err(refusal)?;
    // The window is a change of its own: a creating change holds the registration only.
    if let Some(window) = appointment {
        replica.set_appointment(id, Some(window)).map_err(refusal)?;
    }
    if let Some(asset) = &asset {
        replica.set_asset(id, Some(asset)).map_err(refusal)?;
    }
    // Registered and assigned in one push: the assignment is judged like any other.
    if let Some(user) = assignee {
        replica.transition(id, Action::Assign(user), None).map_err(refusal)?;
    }
    if let Some((key, request)) = &key
        && let Some((first_request, first_order)) =
            state.db.reserve_idempotency_key(&principal, key, request, id, now).await?
    {
        if first_request != *request {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was sent with another registration",
                "该 Idempotency-Key 已用于另一次登记",
            ));
        }
        let first: OrderId = first_order.parse().map_err(|_| ApiError::internal())?;
        let Ok(row) = row_of(&state, &principal, first).await else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "a registration with this Idempotency-Key is still being made; try again",
                "使用该 Idempotency-Key 的登记正在处理,请稍后重试",
            )
            .retry_after(1));
        };
        let duplicates = if principal.role.is_staff() {
            state
                .db
                .possible_duplicates(&principal, &location, &category.code(), now - DUPLICATE_WINDOW_MS, first)
                .await?
        } else {
            Vec::new()
        };
        let mut replayed = axum::http::HeaderMap::new();
        replayed.insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
        return Ok((
            StatusCode::CREATED,
            replayed,
            Json(Registered { id: first.to_string(), number: row.number, duplicates }),
        ));
    }
    // Claimed after a replay (which answers the order the conversation already holds), before
    // the order is made: of two registrations from one conversation, one is made.
    if let Some(c) = &conversation
        && let Err(refused) = crate::http::assistant::claim(&state, &principal.org, c, id, now).await
    {
        if let Some((key, _)) = &key {
            state.db.release_idempotency_key(&principal, key).await?;
        }
        return Err(refused);
    }
    let made = make(&state, &principal, &replica, id, caller_name, caller_phone, now).await;
    if made.is_err() {
        if let Some((key, _)) = &key {
            state.db.release_idempotency_key(&principal, key).await?;
        }
        if let Some(c) = &conversation {
            state.db.unlink_conversation(&principal.org, &c.head.id, &id.to_string()).await?;
        }
    }
    made?;
    let row = row_of(&state, &principal, id).await?;
    if let Some(c) = conversation {
        crate::http::assistant::filed(&state, &principal.org, &c, id, &row.number, now).await?;
    }
    let duplicates =
        state.db.possible_duplicates(&principal, &location, &category.code(), now - DUPLICATE_WINDOW_MS, id).await?;
    let duplicates = if principal.role.is_staff() { duplicates } else { Vec::new() };
    Ok((
        StatusCode::CREATED,
        axum::http::HeaderMap::new(),
        Json(Registered { id: id.to_string(), number: row.number, duplicates }),
    ))
}

/// Makes the registered order: its caller kept apart, its creation pushed.
async fn make(
    state: &AppState,
    principal: &Principal,
    replica: &Replica<MemoryStore>,
    id: OrderId,
    caller_name: Option<String>,
    caller_phone: Option<String>,
    now: i64,
) -> Result<(), ApiError> {
    if caller_name.is_some() || caller_phone.is_some() {
        if !principal.role.is_staff() {
            return Err(ApiError::invalid(
                "invalid_caller",
                "only office staff register callers",
                "只有客服可以登记来电人",
            ));
        }
        state.db.save_caller(&principal.org, id, caller_name.as_deref(), caller_phone.as_deref(), now).await?;
    }
    push_pending(state, principal, replica, now).await
}
