//! 数据可视化监管: the service-efficiency dashboard, the complaint heat map and the staff KPIs
//! (量化考核), computed from the columns the scanner materializes on each order (see
//! `escalation::facts_of`), so every panel is a few indexed queries however many orders there
//! are. Definitions are in docs/web.md.
//!
//! - `GET /api/v1/dashboard/efficiency?project&from&to` (office staff)
//! - `GET /api/v1/dashboard/heatmap?project&from&to&kind` (office staff)
//! - `GET /api/v1/dashboard/maintenance?project&from&to` (office staff): PM compliance, the
//!   reactive-to-preventive ratio, the repeat-repair rate, MTBF and MTTR by asset type
//! - `GET /api/v1/kpis?project&from&to&format=csv` (supervisors and above)

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::Params;
use crate::replication::Principal;
use crate::store::{Period, StaffCounts};

const DAY_MS: i64 = 86_400_000;
/// A period is at most this long.
const MAX_PERIOD_MS: i64 = 400 * DAY_MS;
/// Customer service assigns in time when it assigns within this long of the registration.
pub const ASSIGN_TARGET_MS: i64 = 15 * 60_000;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    pub project: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub kind: Option<String>,
    pub format: Option<String>,
}

/// The period asked for: by default the 30 days up to now.
fn period(query: &PeriodQuery, now_ms: i64) -> Result<Period, ApiError> {
    let to = query.to.unwrap_or(now_ms);
    let from = query.from.unwrap_or(to - 30 * DAY_MS);
    if from >= to || to - from > MAX_PERIOD_MS {
        return Err(ApiError::invalid(
            "invalid_period",
            "`from` must be before `to`, at most 400 days apart (ms since the epoch)",
            "统计区间无效:开始须早于结束,且不超过 400 天",
        ));
    }
    let project = query.project.clone().filter(|p| !p.trim().is_empty());
    Ok(Period { project, from, to })
}

/// A dispatcher bound to projects sees the panels of one project they serve: the one asked for,
/// or their only one.
async fn served_period(state: &AppState, principal: &Principal, mut period: Period) -> Result<Period, ApiError> {
    let Some(served) = state.db.served_projects(principal).await? else { return Ok(period) };
    match period.project.as_deref() {
        Some(project) if served.iter().any(|p| p == project) => {}
        Some(_) => {
            return Err(ApiError::forbidden(
                "the panels of a project you do not serve",
                "您不负责这个项目,不能查看其数据",
            ));
        }
        None if served.len() == 1 => period.project = served.into_iter().next(),
        None => {
            return Err(ApiError::invalid(
                "project_required",
                "you serve several projects: name one (`project`)",
                "您负责多个项目,请指定一个项目(project)",
            ));
        }
    }
    Ok(period)
}

fn staff_only(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_staff(principal, "only office staff see the dashboards", "只有客服及管理人员可以查看数据看板")
}

/// The value at quantile `q` (nearest rank) of a histogram of whole minutes, in milliseconds.
pub fn percentile(histogram: &[(i64, i64)], q: f64) -> Option<i64> {
    let total: i64 = histogram.iter().map(|(_, count)| count).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    histogram
        .iter()
        .find(|(_, count)| {
            seen += count;
            seen >= rank
        })
        .map(|(minutes, _)| minutes * 60_000)
}

fn count(histogram: &[(i64, i64)]) -> i64 {
    histogram.iter().map(|(_, count)| count).sum()
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The median and 90th percentile of a stage's durations, and how many there are.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Spread {
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub count: i64,
}

fn spread(histogram: &[(i64, i64)]) -> Spread {
    Spread { p50_ms: percentile(histogram, 0.5), p90_ms: percentile(histogram, 0.9), count: count(histogram) }
}

/// The service-efficiency panel (`GET /api/v1/dashboard/efficiency`). Rates are fractions
/// (0–1), `null` when nothing was counted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Efficiency {
    pub from: i64,
    pub to: i64,
    pub orders: i64,
    pub response: Spread,
    pub arrival: Spread,
    pub resolution: Spread,
    pub sla_compliance: Option<f64>,
    pub first_time_fix_rate: Option<f64>,
    pub rework_rate: Option<f64>,
    pub satisfaction: Satisfaction,
    /// Open orders now, whatever the period.
    pub backlog: Backlog,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Satisfaction {
    /// The average rating (1–5).
    pub average: Option<f64>,
    pub rated: i64,
    pub share_4_or_more: Option<f64>,
    /// The share of ratings of 4 or more aimed at.
    pub goal: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Backlog {
    pub by_age: Vec<AgeCount>,
    pub by_technician: Vec<TechnicianCount>,
    pub by_grade: Vec<GradeCount>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AgeCount {
    pub bucket: String,
    pub count: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TechnicianCount {
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GradeCount {
    pub grade: String,
    pub count: i64,
}

/// `GET /api/v1/dashboard/efficiency` (服务效能仪表盘)
/// Planned maintenance and the assets' reliability over a period (`GET
/// /api/v1/dashboard/maintenance`, docs/maintenance.md).
#[derive(Debug, Serialize, JsonSchema)]
pub struct MaintenancePanel {
    pub from: i64,
    pub to: i64,
    /// Services due in the period (by due day, China Standard Time) whose orders were made.
    pub services_due: i64,
    /// Done by their due day, after it, and not done with their due day past.
    pub done_on_time: i64,
    pub done_late: i64,
    pub overdue: i64,
    /// PM compliance: done by the due day, of the services done or overdue (`null`: none yet).
    pub compliance: Option<f64>,
    /// Repairs and planned orders registered in the period (not cancelled), and their ratio.
    pub reactive_orders: i64,
    pub preventive_orders: i64,
    pub reactive_to_preventive: Option<f64>,
    /// Repairs naming an asset in the period, and those the failure rules count as the same fault
    /// again: within `same_fault_days` of that fault's first repair (a repair that did not hold).
    pub asset_repairs: i64,
    pub repeat_repairs: i64,
    pub repeat_repair_rate: Option<f64>,
    /// Per asset type: its assets, failures, MTBF and MTTR in working hours of the office
    /// calendar (sync-core's `failures::reliability`).
    pub reliability: Vec<TypeReliability>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TypeReliability {
    pub asset_type: String,
    pub assets: i64,
    pub failures: u32,
    pub mtbf_hours: Option<f64>,
    pub mttr_hours: Option<f64>,
}

pub async fn maintenance(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<PeriodQuery>,
) -> Result<Json<MaintenancePanel>, ApiError> {
    use loopwork_sync_core::china_time::date;
    use loopwork_sync_core::failures;
    staff_only(&principal)?;
    let now = state.clock.now_ms();
    let period = served_period(&state, &principal, period(&query, now)?).await?;
    let org = &principal.org;
    let project = period.project.as_deref();
    let today = date(now);
    let (mut on_time, mut late, mut overdue, mut services) = (0, 0, 0, 0);
    for (due, done) in
        state.db.services_due(org, project, &date(period.from).to_string(), &date(period.to - 1).to_string()).await?
    {
        services += 1;
        // Dates as the store keeps them, YYYY-MM-DD: compared as text.
        match done {
            Some(done) if done <= due => on_time += 1,
            Some(_) => late += 1,
            None if due < today.to_string() => overdue += 1,
            None => {}
        }
    }
    let (reactive, preventive) = state.db.reactive_and_preventive(org, &period).await?;
    // Repairs naming the project's assets: repeats, and the reliability of each type.
    let same_fault_ms =
        crate::settings::read::<failures::FailureSettings>(&*state.db, org).await?.same_fault_days * DAY_MS;
    let assets: Vec<failures::Asset> = state
        .db
        .ruled_assets(org)
        .await?
        .into_iter()
        .filter(|a| project.is_none_or(|p| a.project == p))
        .map(crate::preventive::observed)
        .collect();
    let mut repairs: Vec<failures::Failure> = state
        .db
        .asset_repairs(org, period.from - same_fault_ms)
        .await?
        .into_iter()
        .filter(|r| r.reported_at < period.to && assets.iter().any(|a| a.id == r.asset))
        .map(|r| failures::Failure {
            order: r.order,
            asset: r.asset,
            reported_ms: r.reported_at,
            restored_ms: r.completed_at,
        })
        .collect();
    repairs.sort_by(|a, b| a.asset.cmp(&b.asset).then(a.reported_ms.cmp(&b.reported_ms)));
    // A repeat is what the failure rules count as the same fault again.
    let (mut named, mut repeats) = (0, 0);
    for one_asset in repairs.chunk_by(|a, b| a.asset == b.asset) {
        let sorted: Vec<&failures::Failure> = one_asset.iter().collect();
        for (r, fresh) in one_asset.iter().zip(failures::new_faults(&sorted, same_fault_ms)) {
            if r.reported_ms >= period.from {
                named += 1;
                repeats += i64::from(!fresh);
            }
        }
    }
    let in_period: Vec<failures::Failure> = repairs.into_iter().filter(|r| r.reported_ms >= period.from).collect();
    let calendar =
        loopwork_sync_core::calendar::Calendar::Working(loopwork_sync_core::calendar::WorkingHours::china_office());
    let by_type = failures::reliability_by_type(&assets, &in_period, period.from, period.to, &calendar);
    let mut reliability: Vec<TypeReliability> = by_type
        .into_iter()
        .map(|(asset_type, r)| TypeReliability {
            assets: assets.iter().filter(|a| a.asset_type == asset_type).count() as i64,
            asset_type,
            failures: r.failures,
            mtbf_hours: r.mtbf_ms().map(|ms| ms / 3_600_000.0),
            mttr_hours: r.mttr_ms().map(|ms| ms / 3_600_000.0),
        })
        .collect();
    reliability.sort_by(|a, b| a.asset_type.cmp(&b.asset_type));
    Ok(Json(MaintenancePanel {
        from: period.from,
        to: period.to,
        services_due: services,
        done_on_time: on_time,
        done_late: late,
        overdue,
        compliance: ratio(on_time, on_time + late + overdue),
        reactive_orders: reactive,
        preventive_orders: preventive,
        reactive_to_preventive: ratio(reactive, preventive),
        asset_repairs: named,
        repeat_repairs: repeats,
        repeat_repair_rate: ratio(repeats, named),
        reliability,
    }))
}

pub async fn efficiency(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<PeriodQuery>,
) -> Result<Json<Efficiency>, ApiError> {
    staff_only(&principal)?;
    let now = state.clock.now_ms();
    let period = served_period(&state, &principal, period(&query, now)?).await?;
    let (c, durations) = state.db.efficiency(&principal.org, &period).await?;
    let backlog = state.db.backlog(&principal.org, period.project.as_deref(), now).await?;
    Ok(Json(Efficiency {
        from: period.from,
        to: period.to,
        orders: c.orders,
        response: spread(&durations.response),
        arrival: spread(&durations.arrival),
        resolution: spread(&durations.resolution),
        // Over the orders whose deadlines were put to the test (completed, or breached on the way):
        // a period whose orders are all still running has no figure, not 100 %.
        sla_compliance: ratio(c.judged - c.breached, c.judged),
        first_time_fix_rate: ratio(c.fixed_first_time, c.completed),
        rework_rate: ratio(c.reworked, c.completed.max(c.reworked)),
        satisfaction: Satisfaction {
            average: ratio(c.rating_sum, c.rated),
            rated: c.rated,
            share_4_or_more: ratio(c.rated_4_or_more, c.rated),
            goal: 0.85,
        },
        backlog: Backlog {
            by_age: backlog.by_age.into_iter().map(|(bucket, count)| AgeCount { bucket, count }).collect(),
            by_technician: backlog
                .by_technician
                .into_iter()
                .map(|(user_id, name, count)| TechnicianCount { user_id, name, count })
                .collect(),
            by_grade: backlog.by_grade.into_iter().map(|(grade, count)| GradeCount { grade, count }).collect(),
        },
    }))
}

/// Complaints (or orders of a kind) by building × category and by hour of the week
/// (`GET /api/v1/dashboard/heatmap`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Heatmap {
    pub from: i64,
    pub to: i64,
    /// The kind counted (`null`: all kinds).
    pub kind: Option<&'static str>,
    pub buildings: Vec<String>,
    pub categories: Vec<String>,
    pub by_building: Vec<BuildingCell>,
    pub by_hour: Vec<HourCell>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BuildingCell {
    pub building: String,
    pub category: String,
    pub count: i64,
}

/// China Standard Time: `weekday` 1 is Monday; `hour_of_week` is `(weekday - 1) * 24 + hour`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HourCell {
    pub weekday: i64,
    pub hour: i64,
    pub hour_of_week: i64,
    pub count: i64,
}

/// `GET /api/v1/dashboard/heatmap` (投诉热力图): complaints by building × category and by
/// weekday × hour (China Standard Time), for the period and project.
pub async fn heatmap(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<PeriodQuery>,
) -> Result<Json<Heatmap>, ApiError> {
    staff_only(&principal)?;
    let period = served_period(&state, &principal, period(&query, state.clock.now_ms())?).await?;
    let kind = match query.kind.as_deref().filter(|k| !k.is_empty()) {
        None => Some("complaint"),
        Some("all") => None,
        Some(code) => Some(
            loopwork_sync_core::Kind::from_code(code)
                .map_err(|_| ApiError::invalid("invalid_code", "unknown `kind` (or `all`)", "类型取值无效"))?
                .code(),
        ),
    };
    let (cells, hours) = state.db.heatmap(&principal.org, &period, kind).await?;
    let mut buildings: Vec<String> = cells.iter().map(|(b, _, _)| b.clone()).collect();
    buildings.dedup();
    let mut categories: Vec<String> = cells.iter().map(|(_, c, _)| c.clone()).collect();
    categories.sort();
    categories.dedup();
    Ok(Json(Heatmap {
        from: period.from,
        to: period.to,
        kind,
        buildings,
        categories,
        by_building: cells
            .into_iter()
            .map(|(building, category, count)| BuildingCell { building, category, count })
            .collect(),
        by_hour: hours
            .into_iter()
            .map(|(how, count)| HourCell { weekday: how / 24 + 1, hour: how % 24, hour_of_week: how, count })
            .collect(),
    }))
}

/// A weighted score out of 100 over the parts that have data (weights renormalized); `None`
/// when none has.
fn score(parts: &[(f64, Option<f64>)]) -> Option<f64> {
    let (weight, sum) =
        parts.iter().filter_map(|(w, v)| v.map(|v| (*w, w * v))).fold((0.0, 0.0), |(tw, ts), (w, s)| (tw + w, ts + s));
    (weight > 0.0).then(|| (100.0 * sum / weight * 10.0).round() / 10.0)
}

/// A technician's figures for the period, and the score from them (out of 100: response and
/// resolution on time 30 % each, no rework and satisfaction 20 % each, over the parts with data).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TechnicianKpis {
    pub user_id: String,
    pub name: String,
    pub assigned: i64,
    pub completed: i64,
    pub response_on_time: Option<f64>,
    pub resolution_on_time: Option<f64>,
    pub rework_rate: Option<f64>,
    /// The average rating (1–5).
    pub satisfaction: Option<f64>,
    pub rated: i64,
    pub score: Option<f64>,
}

/// A customer-service agent's figures for the period, and the score (assigned in time and
/// satisfaction, half each).
#[derive(Debug, Serialize, JsonSchema)]
pub struct AgentKpis {
    pub user_id: String,
    pub name: String,
    pub role: String,
    pub registered: i64,
    pub median_assign_ms: Option<i64>,
    pub assigned_in_time: Option<f64>,
    pub return_visits: i64,
    pub satisfaction: Option<f64>,
    pub rated: i64,
    pub score: Option<f64>,
}

/// Staff KPIs (`GET /api/v1/kpis`; `format=csv` for a spreadsheet).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Kpis {
    pub from: i64,
    pub to: i64,
    pub technicians: Vec<TechnicianKpis>,
    pub agents: Vec<AgentKpis>,
}

/// A technician's figures and score.
fn technician(s: &StaffCounts) -> TechnicianKpis {
    let response_on_time = ratio(s.accepted_on_time, s.accepted);
    let resolution_on_time = ratio(s.completed_on_time, s.completed);
    let rework_rate = ratio(s.reworked, s.completed.max(s.reworked));
    let satisfaction = ratio(s.rating_sum, s.rated);
    TechnicianKpis {
        user_id: s.user_id.clone(),
        name: s.name.clone(),
        assigned: s.orders,
        completed: s.completed,
        response_on_time,
        resolution_on_time,
        rework_rate,
        satisfaction,
        rated: s.rated,
        score: score(&[
            (0.3, response_on_time),
            (0.3, resolution_on_time),
            (0.2, rework_rate.map(|r| 1.0 - r)),
            (0.2, satisfaction.map(|a| a / 5.0)),
        ]),
    }
}

/// A customer-service agent's figures and score.
fn agent(s: &StaffCounts) -> AgentKpis {
    let delays = &s.assign_minutes;
    let in_time: i64 = delays.iter().filter(|(minutes, _)| minutes * 60_000 < ASSIGN_TARGET_MS).map(|(_, n)| n).sum();
    let assigned_in_time = ratio(in_time, count(delays));
    let satisfaction = ratio(s.rating_sum, s.rated);
    AgentKpis {
        user_id: s.user_id.clone(),
        name: s.name.clone(),
        role: s.role.clone(),
        registered: s.orders,
        median_assign_ms: percentile(delays, 0.5),
        assigned_in_time,
        return_visits: s.return_visits,
        satisfaction,
        rated: s.rated,
        score: score(&[(0.5, assigned_in_time), (0.5, satisfaction.map(|a| a / 5.0))]),
    }
}

/// Rows as JSON objects, the columns of the CSV by their keys.
fn rows<T: Serialize>(rows: &[T]) -> Vec<Value> {
    rows.iter().map(|row| serde_json::to_value(row).unwrap_or_default()).collect()
}

/// The KPIs as CSV for Excel (`loopwork_sheets::write_csv`: UTF-8 with its byte order mark,
/// formulas neutralized): one header in Chinese, one row per person, technicians then customer
/// service, the group and the durations as people read them (维修工, minutes), rates as percents.
pub fn kpis_csv(technicians: &[Value], agents: &[Value]) -> Vec<u8> {
    use loopwork_sheets::Cell;
    const COLUMNS: &[(&str, &str)] = &[
        ("group", "组别"),
        ("name", "姓名"),
        ("assigned", "派单量"),
        ("completed", "完工量"),
        ("response_on_time", "响应及时率(%)"),
        ("resolution_on_time", "完成及时率(%)"),
        ("rework_rate", "返工率(%)"),
        ("registered", "登记量"),
        ("median_assign_ms", "派单用时中位数(分钟)"),
        ("assigned_in_time", "及时派单率(%)"),
        ("return_visits", "回访量"),
        ("satisfaction", "满意度均分"),
        ("rated", "评价数"),
        ("score", "考核得分"),
    ];
    let cell = |key: &str, value: &Value| match value {
        Value::Null => Cell::Empty,
        Value::String(text) => Cell::Text(text.clone()),
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            let n = match key {
                "median_assign_ms" => n / 60_000.0,
                k if k.ends_with("on_time") || k.ends_with("_rate") || k == "assigned_in_time" => n * 100.0,
                _ => n,
            };
            Cell::Number((n * 10.0).round() / 10.0)
        }
        other => Cell::Text(other.to_string()),
    };
    let mut table = vec![COLUMNS.iter().map(|(_, zh)| Cell::from(*zh)).collect::<Vec<_>>()];
    for (group, rows) in [("维修工", technicians), ("客服", agents)] {
        for row in rows {
            table.push(
                COLUMNS
                    .iter()
                    .map(|(key, _)| if *key == "group" { Cell::from(group) } else { cell(key, &row[*key]) })
                    .collect(),
            );
        }
    }
    loopwork_sheets::write_csv(&table)
}

/// `GET /api/v1/kpis` (量化考核): supervisors, managers and administrators.
pub async fn kpis(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<PeriodQuery>,
) -> Result<Response, ApiError> {
    if !principal.role.is_supervisor_or_above() {
        return Err(ApiError::forbidden("only supervisors and above see staff KPIs", "只有主管及以上可以查看考核"));
    }
    let period = served_period(&state, &principal, period(&query, state.clock.now_ms())?).await?;
    let counts = state.db.staff_counts(&principal.org, &period).await?;
    let technicians: Vec<TechnicianKpis> = counts.iter().filter(|s| s.role == "technician").map(technician).collect();
    let agents: Vec<AgentKpis> = counts.iter().filter(|s| s.role != "technician").map(agent).collect();
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(Kpis { from: period.from, to: period.to, technicians, agents }).into_response()),
        Some("csv") => {
            // 考核_<project>_<first day>-<last day>.csv, as RFC 6266 writes a name that is not ASCII.
            let project = crate::http::desk::project_name(&state, &principal, query.project.as_deref()).await?;
            let day = loopwork_sync_core::china_time::day_code;
            let name = format!("考核_{project}_{}-{}.csv", day(period.from), day(period.to - 1));
            let disposition = crate::http::desk::attachment(&name, "kpis.csv")?;
            Ok((
                [
                    (header::CONTENT_TYPE, axum::http::HeaderValue::from_static("text/csv; charset=utf-8")),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                kpis_csv(&rows(&technicians), &rows(&agents)),
            )
                .into_response())
        }
        Some(_) => Err(ApiError::invalid("invalid_format", "`format` is `json` or `csv`", "format 只能是 json 或 csv")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_to_the_minute() {
        let one_each: Vec<(i64, i64)> = (1..=10).map(|m| (m, 1)).collect();
        assert_eq!(percentile(&one_each, 0.5), Some(5 * 60_000));
        assert_eq!(percentile(&one_each, 0.9), Some(9 * 60_000));
        assert_eq!(percentile(&[(7, 3)], 0.9), Some(7 * 60_000));
        assert_eq!(percentile(&[(2, 9), (30, 1)], 0.9), Some(2 * 60_000));
        assert_eq!(percentile(&[(2, 8), (30, 2)], 0.9), Some(30 * 60_000));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn scores_renormalize_over_the_parts_with_data() {
        assert_eq!(score(&[(0.5, Some(1.0)), (0.5, None)]), Some(100.0));
        assert_eq!(score(&[(0.3, Some(0.5)), (0.7, Some(1.0))]), Some(85.0));
        assert_eq!(score(&[(1.0, None)]), None);
    }

    #[test]
    fn the_kpi_csv_says_groups_minutes_and_percents_and_neutralizes_formulas() {
        let row = json!({ "user_id": "u1", "name": "=HYPERLINK(\"x\")", "score": 87.5, "assigned": 3,
            "median_assign_ms": 150_000, "response_on_time": 0.875 });
        let csv = String::from_utf8(kpis_csv(&[row], &[])).expect("utf-8");
        let line = csv.lines().nth(1).expect("row");
        assert!(line.starts_with("\"维修工\",\"'=HYPERLINK(\"\"x\"\")\",\"3\""), "{line}");
        assert!(line.contains("\"87.5\"") && line.contains("\"2.5\""), "{line}");
        assert!(!csv.contains("u1"), "no user ids: {csv}");
        for hidden in ["\t=1+1", "\r=1+1", "-1+1", "@SUM(A1)"] {
            let csv = String::from_utf8(kpis_csv(&[json!({ "name": hidden })], &[])).expect("utf-8");
            assert!(csv.contains(&format!("\"'{hidden}\"")), "{hidden:?} is neutralized: {csv}");
        }
    }
}
