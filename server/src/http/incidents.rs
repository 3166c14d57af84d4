//! Incidents (事件单, docs/incidents.md) for office staff: `GET /api/v1/incidents` (open ones, or
//! all with `?state=all`), `GET /api/v1/incidents/{number}` (with its member orders) and
//! `POST /api/v1/incidents/{number}/resolve`. A dispatcher bound to projects sees only theirs;
//! any other number answers 404 as if there were none. Owners and technicians are refused.

use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Authenticated, require_staff};
use crate::error::ApiError;
use crate::http::extract::Params;
use crate::replication::Principal;
use crate::store::{IncidentFilter, IncidentMember, IncidentRecord};

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
    Ok(IncidentDetail { place_zh: place_zh(&incident), incident, members })
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
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "incident_merged",
            "the incident was merged into another: resolve that one",
            "该事件已并入其他事件,请处理合并后的事件",
        ));
    }
    let now = state.clock.now_ms();
    if state.db.resolve_incident(&principal.org, found.incident.number, &principal.user.to_string(), now).await? {
        let _ = state.notified.send(principal.org.clone());
    }
    Ok(Json(detail(&state, &principal, &number).await?))
}
