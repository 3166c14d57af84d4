//! Incidents (事件单, docs/incidents.md) for office staff: `GET /api/v1/incidents` (open ones, or
//! all with `?state=all`), `GET /api/v1/incidents/{number}` (with its member orders) and
//! `POST /api/v1/incidents/{number}/resolve` and `POST /api/v1/incidents/{number}/notices` (a
//! notice to owners, 停水通知). A dispatcher bound to projects sees only theirs; any other
//! number answers 404 as if there were none. Owners and technicians are refused; owners read the
//! notices of incidents that concern them at `GET /api/v1/notices`.

use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Authenticated, require_staff};
use crate::error::ApiError;
use crate::http::extract::Body;
use crate::http::extract::Params;
use crate::replication::Principal;
use crate::store::{IncidentFilter, IncidentMember, IncidentNotice, IncidentRecord, SuggestionAnswer};
use loopwork_sync_core::surge::{Level, LevelResponse, Node, NoticeReach, SurgeRules};
use loopwork_sync_core::{Category, Location};

/// `GET /api/v1/incidents`'s query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// `open` (default) or `all` (resolved ones too; merged ones are listed under the incident
    /// they joined).
    #[serde(default)]
    pub state: Option<String>,
    /// 1 to 200 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// An incident with its member orders.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentRecord,
    /// Where, as the desk shows it: `3栋 3单元02立管`, `3栋`, `全小区`.
    pub place_zh: String,
    pub members: Vec<IncidentMember>,
    /// Its notices to owners, oldest first (the last is the one owners see).
    pub notices: Vec<IncidentNotice>,
    /// What owners see before anyone writes a notice.
    pub default_notice: String,
    /// What its level sets in motion (the organization's graded response): who was told,
    /// whether the members' deadlines are covered by the incident, who sees the notice.
    pub response: LevelResponse,
}

/// `POST /api/v1/incidents/{number}/notices`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeBody {
    /// What owners read: 1 to 500 characters.
    pub body: String,
    /// When service is expected back (ms since the epoch): not before the incident opened, at
    /// most 30 days ahead.
    #[serde(default)]
    pub expected_at: Option<i64>,
}

/// An incident as an owner is told of it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OwnerNotice {
    pub number: i64,
    /// Where: `3栋 3单元02立管`, `3栋`, `全小区`.
    pub place_zh: String,
    pub category: String,
    pub category_zh: String,
    pub level: String,
    /// `open` or `resolved`.
    pub state: String,
    pub households: i64,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    /// Whether the owner (or a unit of theirs) reported into it.
    pub reported: bool,
    /// The current notice: the last one written, else the default text.
    pub body: String,
    pub expected_at: Option<i64>,
    /// When the current notice was written (`null` for the default text).
    pub updated_at: Option<i64>,
    /// Every notice written, oldest first.
    pub updates: Vec<IncidentNotice>,
}

const REFUSED: (&str, &str) = ("office staff read and resolve incidents", "只有客服人员可以查看和处理事件");

/// Whose projects bound the caller: `None` for every project of the organization.
async fn served_by(state: &AppState, principal: &Principal) -> Result<Option<String>, ApiError> {
    require_staff(principal, REFUSED.0, REFUSED.1)?;
    Ok(state.db.served_projects(principal).await?.map(|_| principal.user.to_string()))
}

fn number_of(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::not_found("incident"))
}

/// Where an incident is, in Chinese (`5栋 2单元01立管`).
pub fn place_zh(incident: &IncidentRecord) -> String {
    loopwork_sync_core::surge::Node {
        project: incident.project.clone(),
        building: incident.building.clone(),
        riser: incident.riser.clone(),
    }
    .label_zh()
}

/// `GET /api/v1/incidents`: the newest first.
pub async fn incidents(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<IncidentQuery>,
) -> Result<Json<Vec<IncidentRecord>>, ApiError> {
    let served_by = served_by(&state, &principal).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("invalid_limit", "limit is 1 to 200", "limit 须为 1 至 200"));
    }
    let open = match query.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::invalid("invalid_state", "state is open or all", "state 须为 open 或 all")),
    };
    Ok(Json(state.db.incidents(&principal.org, &IncidentFilter { open, served_by, limit }).await?))
}

async fn detail(state: &AppState, principal: &Principal, number: &str) -> Result<IncidentDetail, ApiError> {
    let served_by = served_by(state, principal).await?;
    let number = number_of(number)?;
    let incident = state
        .db
        .incident(&principal.org, number, served_by.as_deref())
        .await?
        .ok_or_else(|| ApiError::not_found("incident"))?;
    let members = state.db.incident_members(&principal.org, number).await?;
    let notices = state.db.incident_notices(&principal.org, number).await?;
    let rules = crate::settings::read::<SurgeRules>(&*state.db, &principal.org).await?;
    let level = Level::from_code(&incident.level).unwrap_or(Level::Four);
    Ok(IncidentDetail {
        place_zh: place_zh(&incident),
        default_notice: default_notice(&incident),
        response: rules.response.of(level).clone(),
        incident,
        members,
        notices,
    })
}

/// What owners read of an incident before anyone writes a notice.
pub fn default_notice(incident: &IncidentRecord) -> String {
    let category =
        Category::from_code(&incident.category).map_or_else(|_| "设施".to_owned(), |c| c.label_zh().to_owned());
    if incident.state == "resolved" {
        format!("{} {}故障已处理完毕。如您家中仍有问题,请在您的报修单中告诉我们。", place_zh(incident), category)
    } else {
        format!(
            "{} {}故障:已有 {} 户报告,物业已按一个事件统一处理,修复后将逐户回访确认。",
            place_zh(incident),
            category,
            incident.households
        )
    }
}

/// `POST /api/v1/incidents/{number}/notices`: a notice to the owners the incident concerns
/// (its level's `notice`: every unit under its place, or the households that reported), shown
/// on their page at once. Notices are kept in order; the last is current. A merged incident
/// answers 409 `incident_merged`.
pub async fn add_notice(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(number): Path<String>,
    Body(body): Body<NoticeBody>,
) -> Result<(axum::http::StatusCode, Json<IncidentDetail>), ApiError> {
    let found = detail(&state, &principal, &number).await?;
    let text = body.body.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(ApiError::invalid("invalid_notice", "a notice is 1 to 500 characters", "通知内容须为 1 至 500 字"));
    }
    let now = state.clock.now_ms();
    if let Some(at) = body.expected_at
        && (at < found.incident.opened_at || at > now + 30 * 86_400_000)
    {
        return Err(ApiError::invalid(
            "invalid_expected_at",
            "expected_at is not before the incident opened and at most 30 days ahead",
            "预计恢复时间须在事件开始之后、30 天之内",
        ));
    }
    let by = principal.user.to_string();
    if state
        .db
        .add_incident_notice(&principal.org, found.incident.number, text, body.expected_at, &by, now)
        .await?
        .is_none()
    {
        return Err(merged());
    }
    let _ = state.notified.send(principal.org.clone());
    Ok((axum::http::StatusCode::CREATED, Json(detail(&state, &principal, &number).await?)))
}

fn merged() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "incident_merged",
        "the incident was merged into another: use that one",
        "该事件已并入其他事件,请处理合并后的事件",
    )
}

/// `GET /api/v1/notices`: an owner's notices, for the incidents open (or resolved in the last
/// 24 hours) that concern a unit of theirs: under the incident's place, or, at a level whose
/// notice reaches only reporters, one that reported. Owners only.
pub async fn owner_notices(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<OwnerNotice>>, ApiError> {
    if principal.role != loopwork_sync_core::Role::Owner {
        return Err(ApiError::forbidden(
            "notices are for owners; office staff read incidents",
            "通知面向业主,客服人员请查看事件",
        ));
    }
    let now = state.clock.now_ms();
    let me = state.db.me(&principal).await?;
    let units: Vec<Node> =
        me.units.iter().map(|u| Node::of(&Location::unit(&u.project, &u.building, &u.unit))).collect();
    let rules = crate::settings::read::<SurgeRules>(&*state.db, &principal.org).await?;
    let mut out = Vec::new();
    for (incident, reported) in
        state.db.incidents_for_owner(&principal.org, &principal.user.to_string(), now - 86_400_000).await?
    {
        let node = Node {
            project: incident.project.clone(),
            building: incident.building.clone(),
            riser: incident.riser.clone(),
        };
        let level = Level::from_code(&incident.level).unwrap_or(Level::Four);
        let concerns = match rules.response.of(level).notice {
            NoticeReach::Affected => reported || units.iter().any(|u| node.contains(u)),
            NoticeReach::Reporters => reported,
        };
        if !concerns {
            continue;
        }
        let updates = state.db.incident_notices(&principal.org, incident.number).await?;
        let current = updates.last();
        out.push(OwnerNotice {
            number: incident.number,
            place_zh: place_zh(&incident),
            category_zh: Category::from_code(&incident.category)
                .map_or_else(|_| incident.category.clone(), |c| c.label_zh().to_owned()),
            category: incident.category.clone(),
            level: incident.level.clone(),
            state: incident.state.clone(),
            households: incident.households,
            opened_at: incident.opened_at,
            resolved_at: incident.resolved_at,
            reported,
            body: current.map_or_else(|| default_notice(&incident), |n| n.body.clone()),
            expected_at: current.and_then(|n| n.expected_at),
            updated_at: current.map(|n| n.at),
            updates,
        });
        if out.len() == 20 {
            break;
        }
    }
    Ok(Json(out))
}

/// `GET /api/v1/incidents/{number}`.
pub async fn incident(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(number): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    Ok(Json(detail(&state, &principal, &number).await?))
}

/// `POST /api/v1/incidents/{number}/resolve`: it takes no more reports; its member orders go on
/// to their own owners' confirmation. Resolving a resolved incident changes nothing; a merged
/// one answers 409 `incident_merged`.
pub async fn resolve(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(number): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let found = detail(&state, &principal, &number).await?;
    if found.incident.state == "merged" {
        return Err(merged());
    }
    let now = state.clock.now_ms();
    if state.db.resolve_incident(&principal.org, found.incident.number, &principal.user.to_string(), now).await? {
        let _ = state.notified.send(principal.org.clone());
    }
    Ok(Json(detail(&state, &principal, &number).await?))
}

/// `POST /api/v1/incidents/{number}/merge`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The open incident this one joins.
    pub into: i64,
}

/// `POST /api/v1/incidents/{number}/split`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitBody {
    /// The member orders that become a new incident: 1 to 500, some of its members, not all.
    pub orders: Vec<String>,
}

/// `POST /api/v1/incidents/{number}/suggestions`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestionBody {
    /// The order suggested to join the incident.
    pub order: String,
    /// `true`: it joins the incident as a member; `false`: it is not the incident's (dismissed).
    pub join: bool,
}

/// `POST /api/v1/incidents/{number}/suggestions`: the dispatcher's answer to a later report the
/// detector was not sure enough of (docs/incidents.md). Joined, the order is a member like any
/// (counted, covered, its document naming the incident on the phones); dismissed, it stays out
/// of the incident. 200 with the incident as `GET` gives it.
pub async fn answer_suggestion(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(number): Path<String>,
    Body(body): Body<SuggestionBody>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let found = detail(&state, &principal, &number).await?;
    let number = found.incident.number;
    match state.db.answer_suggestion(&principal.org, number, &body.order, body.join).await? {
        SuggestionAnswer::Answered => {}
        SuggestionAnswer::NotOpen => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "incident_not_open",
                "the incident is resolved or merged: its suggestions are answered no more",
                "事件已处理或已合并,不再确认建议成员",
            ));
        }
        SuggestionAnswer::NotSuggested => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "not_suggested",
                "the order is not a suggestion of this incident awaiting an answer",
                "该工单不是此事件待确认的建议成员",
            ));
        }
    }
    if body.join
        && let Ok(order) = body.order.parse()
        && let Err(e) = state.db.mark_incidents(&principal.org, &[order], state.clock.now_ms()).await
    {
        tracing::warn!(error = %e, "an accepted member's document not marked with its incident");
    }
    let _ = state.notified.send(principal.org.clone());
    Ok(Json(detail(&state, &principal, &number.to_string()).await?))
}

fn refused(refusal: crate::incidents::HandRefusal) -> ApiError {
    use crate::incidents::HandRefusal;
    match refusal {
        HandRefusal::Busy => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "incidents_busy",
            "the incidents kept changing while this was made; try again",
            "事件正在更新,请稍后重试",
        ),
        HandRefusal::NotOpen => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "incident_not_open",
            "the incident is resolved or merged: only open incidents are merged or split",
            "事件已处理或已合并,只有处理中的事件可以合并或拆分",
        ),
        HandRefusal::Fault(fault) => ApiError::invalid(
            match fault {
                loopwork_sync_core::surge::HandFault::SplitWhole => "invalid_split",
                _ => "invalid_merge",
            },
            fault.to_string(),
            match fault {
                loopwork_sync_core::surge::HandFault::OtherProject => "不同小区的事件不能合并",
                loopwork_sync_core::surge::HandFault::Itself => "事件不能并入自身",
                loopwork_sync_core::surge::HandFault::SplitWhole => "拆分须选择事件的部分工单(不能为空,也不能是全部)",
            },
        ),
    }
}

/// `POST /api/v1/incidents/{number}/merge`: the incident joins `into` (both open, both the
/// caller's): its members move, `into` covers both places and categories at the higher level;
/// it becomes `merged`. 200 with `into` as `GET` gives it.
pub async fn merge(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(number): Path<String>,
    Body(body): Body<MergeBody>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let gone = detail(&state, &principal, &number).await?;
    let into = detail(&state, &principal, &body.into.to_string()).await?;
    let now = state.clock.now_ms();
    crate::incidents::merge_by_hand(&state, &principal.org, gone.incident.number, into.incident.number, now)
        .await?
        .map_err(refused)?;
    Ok(Json(detail(&state, &principal, &body.into.to_string()).await?))
}

/// `POST /api/v1/incidents/{number}/split`: some of its member orders become a new incident
/// (its place and category theirs, its level what they call for). 201 with the new incident.
pub async fn split(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(number): Path<String>,
    Body(body): Body<SplitBody>,
) -> Result<(axum::http::StatusCode, Json<IncidentDetail>), ApiError> {
    let from = detail(&state, &principal, &number).await?;
    if body.orders.is_empty() || body.orders.len() > 500 {
        return Err(refused(crate::incidents::HandRefusal::Fault(loopwork_sync_core::surge::HandFault::SplitWhole)));
    }
    let mut orders = body.orders.clone();
    orders.sort();
    orders.dedup();
    let now = state.clock.now_ms();
    let made = crate::incidents::split_by_hand(&state, &principal.org, from.incident.number, &orders, now)
        .await?
        .map_err(refused)?;
    Ok((axum::http::StatusCode::CREATED, Json(detail(&state, &principal, &made.to_string()).await?)))
}
