//! The asset register (设备台账) and preventive maintenance plans on the desk
//! (docs/maintenance.md): office staff read them, supervisors and above change them. Every route
//! is limited to the projects the caller serves (another project's asset answers 404, as if it
//! did not exist). A plan is checked by sync-core's `maintenance` rules when it is added, and
//! each plan is shown with its next services as those rules compute them.
//!
//! - `GET /api/v1/assets?project=`: a project's assets, by name.
//! - `POST /api/v1/assets`: a new asset.
//! - `GET /api/v1/assets/{id}?from=`, `DELETE /api/v1/assets/{id}`: one asset with its plans,
//!   their next services (after the last one made, or from `from`, YYYY-MM-DD) and the services
//!   whose work orders the server made (`crate::preventive`); removing it removes its plans (its
//!   orders stay).
//! - `GET /api/v1/assets/{id}/qr.svg`: the QR code to stick on it (`loopwork://asset/{id}`), SVG.
//! - `POST /api/v1/assets/{id}/plans`, `DELETE /api/v1/assets/{id}/plans/{plan}`: its plans.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::civil::Date;
use loopwork_sync_core::asset::{AssetType, clean_checklist, clean_text};
use loopwork_sync_core::calendar::WorkingHours;
use loopwork_sync_core::maintenance::Made;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::estate::served;
use crate::http::extract::{Body, Params};
use crate::preventive::{made_of, schedule_of};
use crate::replication::Principal;
use crate::store::{AssetOrderRecord, AssetRecord, PlanRecord, ProblemRecord, ServiceRecord};

/// Next services shown per plan.
const UPCOMING: usize = 3;
/// Services shown of an asset's history.
const SERVICES: i64 = 50;
/// The most plans of one asset.
const MAX_PLANS: usize = 20;
/// The earliest date taken, and how many years past today one may be.
const EARLIEST: Date = jiff::civil::date(2000, 1, 1);
const MAX_YEARS_AHEAD: i16 = 10;

pub(super) fn require_office(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_staff(
        principal,
        "only office staff read the asset register",
        "只有客服及管理人员可以查看设备台账",
    )
}

pub(super) fn require_supervisor(principal: &Principal) -> Result<(), ApiError> {
    if principal.role.is_supervisor_or_above() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only supervisors and above change assets and their plans",
            "只有主管及以上可以修改设备台账和维保计划",
        ))
    }
}

/// The asset, if it is the organization's and in a project the caller serves.
pub(super) async fn asset_of(state: &AppState, principal: &Principal, id: &str) -> Result<AssetRecord, ApiError> {
    let asset = state.db.asset(&principal.org, id).await?.ok_or_else(|| ApiError::not_found("asset"))?;
    served(state, principal, &asset.project).await.map_err(|_| ApiError::not_found("asset"))?;
    Ok(asset)
}

/// A date written `YYYY-MM-DD` (nothing else), from 2000 to ten years from today.
fn date(field: &str, raw: &str, today: Date) -> Result<Date, ApiError> {
    let bad = || {
        ApiError::invalid(
            "invalid_date",
            format!("{field} is a date, YYYY-MM-DD, from 2000-01-01 to ten years from today"),
            format!("{field} 须为日期 YYYY-MM-DD，自 2000-01-01 起，不晚于十年后"),
        )
    };
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    let day = raw.parse::<Date>().ok().filter(|_| shaped).ok_or_else(bad)?;
    if day < EARLIEST || day > today.saturating_add(jiff::ToSpan::years(MAX_YEARS_AHEAD)) {
        return Err(bad());
    }
    Ok(day)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    pub project: String,
}

/// A new asset.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAsset {
    pub project: String,
    /// Absent: a place of the whole project.
    #[serde(default)]
    pub building: Option<String>,
    /// Where it is: 水泵房, 3单元电梯井 (1 to 64 characters).
    pub place: String,
    /// Its name in the project, unique there: 3号电梯 (1 to 64 characters).
    pub name: String,
    /// `elevator`, `water_pump`, `water_tank`, `fire_system`, `power`, `gate`, `other`.
    pub asset_type: String,
    #[serde(default)]
    pub make: String,
    /// YYYY-MM-DD.
    #[serde(default)]
    pub installed_on: Option<String>,
    /// The next legal inspection (年检), YYYY-MM-DD.
    #[serde(default)]
    pub inspection_due_on: Option<String>,
}

/// A new plan.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// An RFC 5545 RRULE without DTSTART: `FREQ=WEEKLY;INTERVAL=2;BYDAY=MO`.
    pub rule: String,
    /// The rule's first date, YYYY-MM-DD.
    pub starts_on: String,
    /// The longest time between two services, in days (15 for a lift).
    pub max_gap_days: i64,
    /// How many days before its due day an occurrence's work order is made.
    pub lead_days: i64,
    #[serde(default)]
    pub checklist: Vec<String>,
}

/// A service of a plan as the rules compute it (each before it as if done on its due day).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Upcoming {
    pub key: String,
    /// The rule's date.
    pub nominal: String,
    /// The day it is due: a working day, never past the maximum gap.
    pub due: String,
    /// The day its work order is made.
    pub issue_on: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanView {
    #[serde(flatten)]
    pub plan: PlanRecord,
    pub upcoming: Vec<Upcoming>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AssetDetail {
    #[serde(flatten)]
    pub asset: AssetRecord,
    pub asset_type_zh: String,
    pub plans: Vec<PlanView>,
    /// Its services whose work orders the server made, the latest first (at most 50).
    pub services: Vec<ServiceRecord>,
    /// Its problem records (问题单), the newest first (at most 50).
    pub problems: Vec<ProblemRecord>,
    /// The orders naming it (their document's `asset`), the newest first (at most 50).
    pub orders: Vec<AssetOrderRecord>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromQuery {
    /// YYYY-MM-DD; today (China Standard Time) when absent.
    #[serde(default)]
    pub from: Option<String>,
}

/// A plan with its next services: after the last one made when there is one (`last`), else
/// from `from`; each as if the one before was done on its due day.
fn view_of(plan: PlanRecord, last: Option<Made>, from: Date, calendar: &WorkingHours) -> PlanView {
    let mut upcoming = Vec::new();
    if let Ok(schedule) = schedule_of(&plan) {
        let mut next = match &last {
            Some(made) => schedule.next(Some(made), None, calendar),
            None => schedule.first_from(from, None, calendar),
        };
        while let Some(occurrence) = next.take() {
            let made = Made { nominal: occurrence.nominal, due: occurrence.due, done: Some(occurrence.due) };
            upcoming.push(Upcoming {
                key: occurrence.key,
                nominal: occurrence.nominal.to_string(),
                due: occurrence.due.to_string(),
                issue_on: occurrence.issue_on.to_string(),
            });
            if upcoming.len() < UPCOMING {
                next = schedule.next(Some(&made), None, calendar);
            }
        }
    }
    PlanView { plan, upcoming }
}

pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<AssetQuery>,
) -> Result<Json<Vec<AssetRecord>>, ApiError> {
    require_office(&principal)?;
    served(&state, &principal, &query.project).await?;
    Ok(Json(state.db.assets(&principal.org, &query.project).await?))
}

pub async fn add(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<NewAsset>,
) -> Result<(StatusCode, Json<AssetRecord>), ApiError> {
    require_supervisor(&principal)?;
    served(&state, &principal, &body.project).await?;
    let text = |field: &str, raw: &str, required: bool| {
        clean_text(raw, required).ok_or_else(|| {
            ApiError::invalid(
                "invalid_asset",
                format!("{field}: 1 to 64 characters, no control characters"),
                format!("{field} 须为 1 至 64 个字符"),
            )
        })
    };
    let asset_type = AssetType::from_code(&body.asset_type).map_err(|_| {
        ApiError::invalid(
            "invalid_asset_type",
            "asset_type is one of elevator, water_pump, water_tank, fire_system, power, gate, other",
            "设备类型不在列表中",
        )
    })?;
    let building = match body.building.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(raw) => Some(crate::http::estate::code("building", raw, loopwork_sync_core::estate::CodePart::Building)?),
        None => None,
    };
    let now = state.clock.now_ms();
    let today = loopwork_sync_core::china_time::date(now);
    let installed_on = body.installed_on.as_deref().map(|d| date("installed_on", d, today)).transpose()?;
    let inspection_due_on =
        body.inspection_due_on.as_deref().map(|d| date("inspection_due_on", d, today)).transpose()?;
    let asset = AssetRecord {
        id: uuid::Uuid::now_v7().simple().to_string(),
        project: body.project.clone(),
        building,
        place: text("place", &body.place, true)?,
        name: text("name", &body.name, true)?,
        asset_type: asset_type.code().to_owned(),
        make: text("make", &body.make, false)?,
        installed_on: installed_on.map(|d| d.to_string()),
        inspection_due_on: inspection_due_on.map(|d| d.to_string()),
        updated_at: now,
    };
    if !state.db.add_asset(&principal.org, &asset, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "asset_exists",
            "the project has an asset of this name",
            "该项目已有同名设备",
        ));
    }
    Ok((StatusCode::CREATED, Json(asset)))
}

pub async fn detail(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Params(query): Params<FromQuery>,
) -> Result<Json<AssetDetail>, ApiError> {
    require_office(&principal)?;
    let asset = asset_of(&state, &principal, &id).await?;
    let today = loopwork_sync_core::china_time::date(state.clock.now_ms());
    let from = match query.from.as_deref() {
        Some(raw) => date("from", raw, today)?,
        None => today,
    };
    let calendar = WorkingHours::china_office();
    let mut plans = Vec::new();
    for plan in state.db.plans(&principal.org, &asset.id).await? {
        // Given a day, the services from it; else after the last one made.
        let last = match query.from {
            Some(_) => None,
            None => state.db.last_occurrence(&principal.org, &plan.id).await?.and_then(|o| made_of(&o).ok()),
        };
        plans.push(view_of(plan, last, from, &calendar));
    }
    let services = state.db.services(&principal.org, &asset.id, SERVICES).await?;
    let problems = state.db.problems(&principal.org, Some(&asset.id), None, SERVICES).await?;
    let orders = state.db.asset_orders(&principal.org, &asset.id, SERVICES).await?;
    let asset_type_zh = AssetType::from_code(&asset.asset_type).map(|t| t.label_zh()).unwrap_or("其他设备").to_owned();
    Ok(Json(AssetDetail { asset, asset_type_zh, plans, services, problems, orders }))
}

pub async fn remove(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_supervisor(&principal)?;
    let asset = asset_of(&state, &principal, &id).await?;
    state.db.remove_asset(&principal.org, &asset.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn qr(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    require_office(&principal)?;
    let asset = asset_of(&state, &principal, &id).await?;
    crate::http::web::qr_svg(&format!("loopwork://asset/{}", asset.id))
}

pub async fn add_plan(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<NewPlan>,
) -> Result<(StatusCode, Json<PlanView>), ApiError> {
    require_supervisor(&principal)?;
    let asset = asset_of(&state, &principal, &id).await?;
    let now = state.clock.now_ms();
    let starts = date("starts_on", &body.starts_on, loopwork_sync_core::china_time::date(now))?;
    let invalid = |en: &str, zh: &str| ApiError::invalid("invalid_plan", en.to_owned(), zh.to_owned());
    let rule = body.rule.trim();
    if rule.chars().count() > 500 {
        return Err(invalid("the rule is at most 500 characters", "重复规则不得超过 500 个字符"));
    }
    if !(1..=3_660).contains(&body.max_gap_days) || !(0..body.max_gap_days).contains(&body.lead_days) {
        return Err(invalid(
            "max_gap_days is 1 to 3,660, lead_days 0 to less than the gap",
            "最长间隔须为 1 至 3660 天，提前天数须小于最长间隔",
        ));
    }
    if state.db.plans(&principal.org, &asset.id).await?.len() >= MAX_PLANS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_plans",
            format!("an asset has at most {MAX_PLANS} plans"),
            format!("每台设备最多 {MAX_PLANS} 个维保计划"),
        ));
    }
    let checklist = clean_checklist(&body.checklist).ok_or_else(|| {
        ApiError::invalid(
            "invalid_plan",
            "checklist: at most 50 items of 1 to 200 characters",
            "检查项最多 50 项，每项 1 至 200 个字符",
        )
    })?;
    let plan = PlanRecord {
        id: uuid::Uuid::now_v7().simple().to_string(),
        asset_id: asset.id.clone(),
        rule: rule.to_owned(),
        starts_on: starts.to_string(),
        max_gap_days: body.max_gap_days,
        lead_days: body.lead_days,
        checklist,
        created_at: now,
    };
    schedule_of(&plan).map_err(|e| ApiError::invalid("invalid_plan", e.to_string(), "维保计划不合规"))?;
    state.db.add_plan(&principal.org, &plan).await?;
    // A service the new plan issues by today is made now, not at the scheduler's next pass.
    let scheduler = state.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::preventive::tick(&scheduler, now).await {
            tracing::warn!(code = e.code, "preventive maintenance pass after a new plan failed");
        }
    });
    let from = loopwork_sync_core::china_time::date(now);
    Ok((StatusCode::CREATED, Json(view_of(plan, None, from, &WorkingHours::china_office()))))
}

pub async fn remove_plan(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((id, plan)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_supervisor(&principal)?;
    let asset = asset_of(&state, &principal, &id).await?;
    if state.db.remove_plan(&principal.org, &asset.id, &plan).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("plan"))
    }
}
