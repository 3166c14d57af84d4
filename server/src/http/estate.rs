//! The estate register (房屋档案) on the desk: office staff read it, dispatchers keep residents,
//! supervisors and above change units and import spreadsheets. Every route is limited to the
//! projects the caller serves (another project answers 404, as if it did not exist). Phones are
//! masked (`138****8000`); the full number is a logged reveal.
//!
//! - `GET /api/v1/estate/projects`: the projects served, with their buildings, units, residents.
//! - `GET /api/v1/estate/buildings?project=`: a project's buildings, in natural order.
//! - `GET /api/v1/estate/units?project=&building=`: a building's units, in natural order.
//! - `GET /api/v1/estate/unit?project=&building=&unit=`: one unit: residents and its orders.
//! - `POST /api/v1/estate/units`, `DELETE /api/v1/estate/unit?…`: add or remove a unit.
//! - `POST /api/v1/estate/residents`, `PATCH`/`DELETE /api/v1/estate/residents/{id}`,
//!   `POST /api/v1/estate/residents/{id}/reveal`, `GET …/{id}/reveals`: residents.
//! - `POST /api/v1/estate/callers`: the caller pop-up (来电弹屏): who has this phone number, where,
//!   and their units' open orders. The number travels in the body, never in a URL.
//! - `POST /api/v1/estate/import?project=&apply=`: a CSV or XLSX sheet, previewed (the default)
//!   or applied when it has no faulty row.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::estate::{
    self, CodePart, ImportFault, NewResident, RegisterRow, RowError, Sheet, normalize_code, normalize_phone,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::{Body, Params};
use crate::http::privacy::mask_phone;
use crate::replication::Principal;
use crate::store::{
    EstateBuilding, EstateChange, EstateUnit, ImportCounts, ProjectRef, ResidentRecord, RevealRecord, UnitOrder,
};

/// The largest sheet an import takes (4 MiB).
pub const MAX_IMPORT_BODY: usize = 4 << 20;
/// The most bytes an XLSX sheet may unpack to (a small file that unpacks to gigabytes is refused).
pub const MAX_XLSX_UNPACKED: u64 = 64 << 20;
/// The orders of a unit shown beside it.
pub const UNIT_ORDERS: i64 = 20;

fn require_office(principal: &Principal) -> Result<(), ApiError> {
    crate::auth::require_staff(
        principal,
        "only office staff read the estate register",
        "只有客服及管理人员可以查看房屋档案",
    )
}

fn require_supervisor(principal: &Principal) -> Result<(), ApiError> {
    if principal.role.is_supervisor_or_above() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only supervisors and above change units or import the register",
            "只有主管及以上可以增删房屋或导入房屋档案",
        ))
    }
}

/// The project, if the caller serves it (404 otherwise, as for a project that does not exist).
pub(crate) async fn served(state: &AppState, principal: &Principal, project: &str) -> Result<ProjectRef, ApiError> {
    let projects = state.db.me(principal).await?.projects;
    projects.into_iter().find(|p| p.code == project).ok_or_else(|| ApiError::not_found("project"))
}

/// A building (`name` "building") or unit code as the register keeps it (`normalize_code`);
/// 400 `invalid_code` otherwise. Registration and the admin console's units use it too.
pub(crate) fn code(name: &'static str, raw: &str, part: CodePart) -> Result<String, ApiError> {
    normalize_code(raw, part).map_err(|fault| {
        ApiError::invalid("invalid_code", format!("{name}: {fault}"), format!("{}{}", zh(name), fault.label_zh()))
    })
}

fn zh(name: &str) -> &'static str {
    match name {
        "building" => "楼栋",
        _ => "房号",
    }
}

/// A resident as the desk shows them: the name, the phone masked.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Resident {
    pub id: String,
    pub project: String,
    pub building: String,
    pub unit: String,
    pub name: String,
    /// Masked (`138****8000`); `POST …/reveal` gives the whole number, logged.
    pub phone: String,
    /// `owner`, `tenant` or `family`.
    pub relation: String,
    pub relation_label: String,
    pub updated_at: i64,
}

impl From<ResidentRecord> for Resident {
    fn from(r: ResidentRecord) -> Self {
        let relation_label = estate::Relation::from_code(&r.relation).map(|r| r.label_zh()).unwrap_or("").to_owned();
        Resident {
            phone: mask_phone(&r.phone),
            id: r.id,
            project: r.project,
            building: r.building,
            unit: r.unit,
            name: r.name,
            relation: r.relation,
            relation_label,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EstateProject {
    pub code: String,
    pub name: String,
    pub buildings: i64,
    pub units: i64,
    pub residents: i64,
}

pub async fn projects(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<EstateProject>>, ApiError> {
    require_office(&principal)?;
    let mut out = Vec::new();
    for project in state.db.me(&principal).await?.projects {
        let buildings = state.db.estate_buildings(&principal.org, &project.code).await?;
        out.push(EstateProject {
            buildings: buildings.len() as i64,
            units: buildings.iter().map(|b| b.units).sum(),
            residents: buildings.iter().map(|b| b.residents).sum(),
            code: project.code,
            name: project.name,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    pub project: String,
}

pub async fn buildings(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<ProjectQuery>,
) -> Result<Json<Vec<EstateBuilding>>, ApiError> {
    require_office(&principal)?;
    served(&state, &principal, &query.project).await?;
    Ok(Json(state.db.estate_buildings(&principal.org, &query.project).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildingQuery {
    pub project: String,
    pub building: String,
}

pub async fn units(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<BuildingQuery>,
) -> Result<Json<Vec<EstateUnit>>, ApiError> {
    require_office(&principal)?;
    served(&state, &principal, &query.project).await?;
    let building = code("building", &query.building, CodePart::Building)?;
    Ok(Json(state.db.estate_units(&principal.org, &query.project, &building).await?))
}

/// A unit of the register, as a card shows it (also a request body: `POST /api/v1/estate/units`).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitQuery {
    pub project: String,
    pub building: String,
    pub unit: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UnitDetail {
    pub project: String,
    pub building: String,
    pub unit: String,
    pub residents: Vec<Resident>,
    /// The unit's orders, newest first (at most 20).
    pub orders: Vec<UnitOrder>,
}

pub async fn unit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<UnitQuery>,
) -> Result<Json<UnitDetail>, ApiError> {
    require_office(&principal)?;
    served(&state, &principal, &query.project).await?;
    let UnitQuery { project, building, unit } = query;
    let (building, unit) = (code("building", &building, CodePart::Building)?, code("unit", &unit, CodePart::Room)?);
    let Some(residents) = state.db.estate_residents(&principal.org, &project, &building, &unit).await? else {
        return Err(ApiError::not_found("unit"));
    };
    let orders = state.db.unit_orders(&principal.org, &project, &building, &unit, UNIT_ORDERS).await?;
    Ok(Json(UnitDetail {
        residents: residents.into_iter().map(Resident::from).collect(),
        orders,
        project,
        building,
        unit,
    }))
}

pub async fn add_unit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<UnitQuery>,
) -> Result<(StatusCode, Json<UnitQuery>), ApiError> {
    require_supervisor(&principal)?;
    served(&state, &principal, &body.project).await?;
    let building = code("building", &body.building, CodePart::Building)?;
    let unit = code("unit", &body.unit, CodePart::Room)?;
    match state.db.add_unit(&principal.org, &body.project, &building, &unit, state.clock.now_ms()).await? {
        EstateChange::Done => Ok((StatusCode::CREATED, Json(UnitQuery { project: body.project, building, unit }))),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "unit_exists",
            "the unit is already in the register",
            "该房号已在房屋档案中",
        )),
    }
}

pub async fn remove_unit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<UnitQuery>,
) -> Result<StatusCode, ApiError> {
    require_supervisor(&principal)?;
    served(&state, &principal, &query.project).await?;
    let (building, unit) =
        (code("building", &query.building, CodePart::Building)?, code("unit", &query.unit, CodePart::Room)?);
    match state.db.remove_unit(&principal.org, &query.project, &building, &unit).await? {
        EstateChange::Done => Ok(StatusCode::NO_CONTENT),
        EstateChange::HasResidents => Err(ApiError::new(
            StatusCode::CONFLICT,
            "unit_has_residents",
            "remove the unit's residents first",
            "请先移除该房屋的住户",
        )),
        _ => Err(ApiError::not_found("unit")),
    }
}

/// A resident to add (`POST /api/v1/estate/residents`) or the new values of one (`PATCH`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentBody {
    /// The unit (required to add; ignored by `PATCH`, which keeps the resident's unit).
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub building: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    pub name: String,
    /// Any common way of writing it (`138 0013 8000`, `+86…`, `010-12345678`); stored as digits.
    pub phone: String,
    /// `owner` (the default), `tenant` or `family`, or their Chinese labels.
    #[serde(default)]
    pub relation: Option<String>,
}

fn checked(body: &ResidentBody) -> Result<NewResident, ApiError> {
    NewResident::check(&body.name, &body.phone, body.relation.as_deref().unwrap_or("")).map_err(|fault| {
        let code = if fault.field() == "phone" { "invalid_phone" } else { "invalid_resident" };
        ApiError::invalid(code, fault.to_string(), fault.label_zh())
    })
}

fn phone_taken() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "phone_taken",
        "another resident of the unit has this phone number",
        "该房屋已有住户使用此电话",
    )
}

pub async fn add_resident(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<ResidentBody>,
) -> Result<(StatusCode, Json<Resident>), ApiError> {
    require_office(&principal)?;
    let (Some(project), Some(building), Some(unit)) = (&body.project, &body.building, &body.unit) else {
        return Err(ApiError::invalid(
            "missing_unit",
            "give the resident's project, building and unit",
            "请填写住户的项目、楼栋和房号",
        ));
    };
    served(&state, &principal, project).await?;
    let (building, unit) = (code("building", building, CodePart::Building)?, code("unit", unit, CodePart::Room)?);
    let resident = checked(&body)?;
    let now = state.clock.now_ms();
    match state.db.add_resident(&principal.org, project, &building, &unit, &resident, now).await? {
        Ok(id) => {
            let stored = state.db.resident(&principal.org, &id).await?.ok_or_else(ApiError::internal)?;
            Ok((StatusCode::CREATED, Json(stored.into())))
        }
        Err(EstateChange::PhoneTaken) => Err(phone_taken()),
        Err(_) => Err(ApiError::not_found("unit")),
    }
}

/// The resident, if the caller serves their project (404 otherwise).
async fn served_resident(state: &AppState, principal: &Principal, id: &str) -> Result<ResidentRecord, ApiError> {
    let resident = state.db.resident(&principal.org, id).await?.ok_or_else(|| ApiError::not_found("resident"))?;
    served(state, principal, &resident.project).await.map_err(|_| ApiError::not_found("resident"))?;
    Ok(resident)
}

pub async fn update_resident(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<ResidentBody>,
) -> Result<Json<Resident>, ApiError> {
    require_office(&principal)?;
    served_resident(&state, &principal, &id).await?;
    let resident = checked(&body)?;
    match state.db.update_resident(&principal.org, &id, &resident, state.clock.now_ms()).await? {
        EstateChange::Done => {
            let stored =
                state.db.resident(&principal.org, &id).await?.ok_or_else(|| ApiError::not_found("resident"))?;
            Ok(Json(stored.into()))
        }
        EstateChange::PhoneTaken => Err(phone_taken()),
        _ => Err(ApiError::not_found("resident")),
    }
}

pub async fn remove_resident(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_office(&principal)?;
    served_resident(&state, &principal, &id).await?;
    match state.db.remove_resident(&principal.org, &id).await? {
        EstateChange::Done => Ok(StatusCode::NO_CONTENT),
        _ => Err(ApiError::not_found("resident")),
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RevealedPhone {
    pub id: String,
    pub phone: String,
}

pub async fn reveal_resident(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<RevealedPhone>, ApiError> {
    require_office(&principal)?;
    let resident = served_resident(&state, &principal, &id).await?;
    state.db.log_resident_reveal(&principal, &resident.id, state.clock.now_ms()).await?;
    Ok(Json(RevealedPhone { id: resident.id, phone: resident.phone }))
}

/// Who saw the resident's full number (office staff), oldest first.
pub async fn resident_reveals(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<RevealRecord>>, ApiError> {
    require_office(&principal)?;
    let resident = served_resident(&state, &principal, &id).await?;
    Ok(Json(state.db.resident_reveals(&principal.org, &resident.id).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerQuery {
    pub phone: String,
}

/// The caller pop-up: the residents with the number, in the projects the caller serves, and
/// their units' open orders.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Caller {
    pub residents: Vec<Resident>,
    pub open_orders: Vec<UnitOrder>,
}

pub async fn caller(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<CallerQuery>,
) -> Result<Json<Caller>, ApiError> {
    require_office(&principal)?;
    let phone =
        normalize_phone(&body.phone).map_err(|f| ApiError::invalid("invalid_phone", f.to_string(), f.label_zh()))?;
    let served: Vec<String> = state.db.me(&principal).await?.projects.into_iter().map(|p| p.code).collect();
    let residents: Vec<ResidentRecord> = state
        .db
        .residents_by_phone(&principal.org, &phone)
        .await?
        .into_iter()
        .filter(|r| served.contains(&r.project))
        .collect();
    let mut open_orders = Vec::new();
    let mut units_seen = std::collections::HashSet::new();
    for r in &residents {
        if units_seen.insert((r.project.clone(), r.building.clone(), r.unit.clone())) {
            let orders = state.db.unit_orders(&principal.org, &r.project, &r.building, &r.unit, UNIT_ORDERS).await?;
            open_orders.extend(orders.into_iter().filter(|o| o.is_open));
        }
    }
    Ok(Json(Caller { residents: residents.into_iter().map(Resident::from).collect(), open_orders }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The project the rows are for, unless the sheet has a project column (项目), whose cells
    /// name a project by code or by name.
    #[serde(default)]
    pub project: Option<String>,
    /// `true`: write the rows (only when no row has a fault); `false` (the default): preview.
    #[serde(default)]
    pub apply: bool,
}

/// One faulty row of an import.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImportRowError {
    /// The row as the spreadsheet numbers it (the header is row 1 when it is the first row).
    pub row: usize,
    pub column: String,
    pub code: String,
    pub message: String,
    pub message_zh: String,
}

impl From<RowError> for ImportRowError {
    fn from(e: RowError) -> Self {
        ImportRowError {
            row: e.row,
            column: e.column.into(),
            code: e.code.into(),
            message: e.message,
            message_zh: e.message_zh,
        }
    }
}

/// A row as it will be written (the preview's first rows).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImportPreviewRow {
    pub row: usize,
    pub project: String,
    pub building: String,
    pub unit: String,
    pub name: Option<String>,
    /// Masked.
    pub phone: Option<String>,
    pub relation: Option<String>,
}

/// What an import read, and what it did or would do.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImportReport {
    /// `csv` or `xlsx` (told from the bytes, not the content type).
    pub format: String,
    /// Whether the rows were written.
    pub applied: bool,
    /// Rows read (not counting the header and blank rows), faulty ones included.
    pub rows: usize,
    pub counts: ImportCounts,
    pub errors: Vec<ImportRowError>,
    /// Headers the import does not use.
    pub ignored_columns: Vec<String>,
    /// The first 50 rows as read.
    pub preview: Vec<ImportPreviewRow>,
}

/// The most rows of a sheet the report shows.
pub const PREVIEW_ROWS: usize = 50;

pub async fn import(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<ImportQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    require_supervisor(&principal)?;
    let projects = state.db.me(&principal).await?.projects;
    if let Some(project) = &query.project
        && !projects.iter().any(|p| &p.code == project)
    {
        return Err(ApiError::not_found("project"));
    }
    let (format, sheet) =
        tokio::task::spawn_blocking(move || read_upload(&body)).await.map_err(|_| ApiError::internal())??;
    let Sheet { rows, mut errors, ignored_columns, read: rows_read } = sheet;
    let mut placed: Vec<(String, RegisterRow)> = Vec::with_capacity(rows.len());
    for row in rows {
        let project = match (&row.project, &query.project) {
            (Some(text), _) => projects.iter().find(|p| &p.code == text || &p.name == text).map(|p| p.code.clone()),
            (None, Some(project)) => Some(project.clone()),
            (None, None) => None,
        };
        match project {
            Some(project) => placed.push((project, row)),
            None => errors.push(RowError {
                row: row.row,
                column: "project",
                code: "unknown_project",
                message: "the row names no project this account serves (give ?project= or a 项目 column)".into(),
                message_zh: "该行的项目不存在或不在您的服务范围内(请指定 project 参数或 项目 列)".into(),
            }),
        }
    }
    errors.sort_by_key(|e| e.row);
    let apply = query.apply && errors.is_empty();
    let counts = state.db.import_register(&principal.org, &placed, apply, state.clock.now_ms()).await?;
    if apply {
        // The surge baseline counts households from the register: learned again.
        state.surges.forget(&principal.org);
    }
    let preview = placed
        .iter()
        .take(PREVIEW_ROWS)
        .map(|(project, r)| ImportPreviewRow {
            row: r.row,
            project: project.clone(),
            building: r.building.clone(),
            unit: r.unit.clone(),
            name: r.resident.as_ref().map(|p| p.name.clone()),
            phone: r.resident.as_ref().map(|p| mask_phone(&p.phone)),
            relation: r.resident.as_ref().map(|p| p.relation.code().to_owned()),
        })
        .collect();
    let report = ImportReport {
        format: format.into(),
        applied: apply,
        rows: rows_read,
        counts,
        errors: errors.into_iter().map(ImportRowError::from).collect(),
        ignored_columns,
        preview,
    };
    // Asked to apply a sheet with faulty rows: nothing is written, and the report says why.
    let status = if query.apply && !apply { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(report)))
}

fn import_fault(fault: ImportFault) -> ApiError {
    ApiError::invalid("invalid_sheet", fault.to_string(), fault.label_zh())
}

/// An uploaded sheet's rows (`loopwork_sheets`: XLSX told from its bytes, else UTF-8 CSV), read
/// by the register's rules.
pub fn read_upload(bytes: &[u8]) -> Result<(&'static str, Sheet), ApiError> {
    // Room for blank rows and a title above the header; `read_sheet` counts the rows that hold something.
    let limits = loopwork_sheets::Limits { max_rows: estate::MAX_IMPORT_ROWS + 1_000, max_unpacked: MAX_XLSX_UNPACKED };
    let (format, rows) = loopwork_sheets::read(bytes, limits)
        .map_err(|e| ApiError::invalid("invalid_sheet", e.to_string(), e.label_zh()))?;
    Ok((format.code(), estate::read_sheet(rows).map_err(import_fault)?))
}
