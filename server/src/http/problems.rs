//! Problem records (问题单) on the desk (docs/maintenance.md): the repeated failures the server
//! raised on assets (`crate::preventive::raise_problems`). Office staff read them and make a
//! problem's preventive order; supervisors and above dismiss one. Limited to the projects the
//! caller serves (another project's problem answers 404, as if it did not exist).
//!
//! - `GET /api/v1/problems?status=`: the organization's problems, newest first (`open`,
//!   `ordered` or `dismissed`; all when absent), at most 200.
//! - `POST /api/v1/problems/{id}/order`: the server makes the preventive order the problem
//!   proposes (kind `maintenance`, channel `plan`, naming the asset) and closes the problem as
//!   `ordered`; asking again answers the same order.
//! - `POST /api/v1/problems/{id}/dismiss`: closes it without an order.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::assets::{asset_of, require_office, require_supervisor};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::Params;
use crate::replication::Principal;
use crate::store::ProblemRecord;

/// The most problems one listing answers…
const MAX_LISTED: usize = 200;
/// …of the organization's newest this many (problems are rare: a few a month per estate).
const MAX_READ: i64 = 5_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemQuery {
    /// `open`, `ordered` or `dismissed`.
    #[serde(default)]
    pub status: Option<String>,
}

/// A problem with its asset's name and place.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProblemView {
    #[serde(flatten)]
    pub problem: ProblemRecord,
    pub asset_name: String,
    pub project: String,
    pub place: String,
}

/// The preventive order made of a problem.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProblemOrdered {
    pub order_id: String,
    pub number: Option<String>,
}

const STATUSES: &[&str] = &["open", "ordered", "dismissed"];

pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<ProblemQuery>,
) -> Result<Json<Vec<ProblemView>>, ApiError> {
    require_office(&principal)?;
    if let Some(status) = query.status.as_deref()
        && !STATUSES.contains(&status)
    {
        return Err(ApiError::invalid(
            "invalid_status",
            "status is open, ordered or dismissed",
            "状态须为 open、ordered 或 dismissed",
        ));
    }
    // The assets of the projects the caller serves, read once; another project's problem, or
    // one of an asset removed since, is not listed.
    let mut assets = std::collections::HashMap::new();
    for project in state.db.me(&principal).await?.projects {
        for asset in state.db.assets(&principal.org, &project.code).await? {
            assets.insert(asset.id.clone(), asset);
        }
    }
    let problems = state.db.problems(&principal.org, None, query.status.as_deref(), MAX_READ).await?;
    let out = problems
        .into_iter()
        .filter_map(|problem| {
            let asset = assets.get(&problem.asset_id)?;
            Some(ProblemView {
                asset_name: asset.name.clone(),
                project: asset.project.clone(),
                place: asset.place.clone(),
                problem,
            })
        })
        .take(MAX_LISTED)
        .collect();
    Ok(Json(out))
}

/// The problem, if it is the organization's and its asset in a project the caller serves.
async fn problem_of(state: &AppState, principal: &Principal, id: &str) -> Result<ProblemRecord, ApiError> {
    let problem = state.db.problem(&principal.org, id).await?.ok_or_else(|| ApiError::not_found("problem"))?;
    asset_of(state, principal, &problem.asset_id).await.map_err(|_| ApiError::not_found("problem"))?;
    Ok(problem)
}

pub async fn order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ProblemOrdered>), ApiError> {
    require_office(&principal)?;
    let problem = problem_of(&state, &principal, &id).await?;
    let asset = asset_of(&state, &principal, &problem.asset_id).await?;
    let now = state.clock.now_ms();
    if problem.status == "open" {
        // Claimed first, registered now: of two asking at once (or a dismissal), one wins.
        let order_id = crate::preventive::problem_order_id(&state, &principal.org, &problem, &asset, now).await?;
        let by = principal.user.to_string();
        if state.db.close_problem(&principal.org, &problem.id, "ordered", Some(&order_id.to_string()), &by, now).await?
        {
            if let Err(e) = crate::preventive::order_problem(&state, &principal.org, &problem, &asset, now, now).await {
                state.db.reopen_problem(&principal.org, &problem.id, &order_id.to_string()).await?;
                return Err(e);
            }
            let number = state.db.order_number(&principal.org, &order_id.to_string()).await?;
            return Ok((StatusCode::CREATED, Json(ProblemOrdered { order_id: order_id.to_string(), number })));
        }
    }
    // Ordered before (by this request's twin, or earlier), or dismissed meanwhile.
    let problem = problem_of(&state, &principal, &id).await?;
    match (problem.status.as_str(), problem.order_id.clone(), problem.closed_at) {
        ("ordered", Some(order_id), Some(at)) => {
            // Its order is made again if the request that claimed it stopped before making it.
            if !state.db.order_stored(&principal.org, &order_id).await? {
                crate::preventive::order_problem(&state, &principal.org, &problem, &asset, at, now).await?;
            }
            let number = state.db.order_number(&principal.org, &order_id).await?;
            Ok((StatusCode::OK, Json(ProblemOrdered { order_id, number })))
        }
        _ => Err(ApiError::new(StatusCode::CONFLICT, "problem_closed", "the problem was dismissed", "该问题单已关闭")),
    }
}

pub async fn dismiss(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_supervisor(&principal)?;
    let problem = problem_of(&state, &principal, &id).await?;
    let now = state.clock.now_ms();
    if !state.db.close_problem(&principal.org, &problem.id, "dismissed", None, &principal.user.to_string(), now).await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "problem_closed",
            "the problem is closed already",
            "该问题单已关闭",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
