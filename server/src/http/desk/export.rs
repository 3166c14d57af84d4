//! The order list as a spreadsheet (the monthly report): what the queue shows, codes as their
//! Chinese labels, times in China Standard Time, the assignee by name. No caller's name or phone.

use loopwork_sheets::Cell;
use loopwork_sync_core::china_time::minute;

use super::*;

/// The header and one row per order.
pub(super) fn table(rows: &[OrderListItem]) -> Vec<Vec<Cell>> {
    let label = |code: &str, of: fn(&str) -> Option<String>| of(code).unwrap_or_default();
    let header = [
        "单号",
        "类型",
        "类别",
        "等级",
        "状态",
        "项目",
        "楼栋",
        "房号",
        "公共区域",
        "描述",
        "维修工",
        "登记时间",
        "当前时限",
        "评价",
        "返工次数",
    ];
    std::iter::once(header.iter().map(|h| Cell::from(*h)).collect())
        .chain(rows.iter().map(|r| {
            vec![
                Cell::from(r.number.as_str()),
                Cell::from(label(&r.kind, |c| Kind::from_code(c).ok().map(|k| k.label_zh().to_owned()))),
                Cell::from(label(&r.category, |c| Category::from_code(c).ok().map(|c| c.label_zh().to_owned()))),
                Cell::from(label(&r.grade, |c| Grade::from_code(c).ok().map(|g| g.label_zh().to_owned()))),
                Cell::from(label(&r.status, |c| Status::from_code(c).ok().map(|s| s.label_zh().to_owned()))),
                Cell::from(r.project.as_str()),
                Cell::from(r.building.clone()),
                Cell::from(r.unit.clone()),
                Cell::from(r.area.clone()),
                Cell::from(r.description.clone()),
                Cell::from(r.assignee_name.clone()),
                Cell::from(minute(r.created_at)),
                Cell::from(r.sla.as_ref().map(|s| minute(s.due_at))),
                Cell::from(r.rating),
                Cell::from(r.reopen_count),
            ]
        }))
        .collect()
}

/// The workbook; failing to write it is the server's fault (the rows are its own).
pub(super) fn xlsx(table: &[Vec<Cell>]) -> Result<Vec<u8>, ApiError> {
    loopwork_sheets::write_xlsx("工单", table).map_err(|e| {
        tracing::error!(error = %e, "writing an export failed");
        ApiError::internal()
    })
}

pub(super) fn csv(table: &[Vec<Cell>]) -> Vec<u8> {
    loopwork_sheets::write_csv(table)
}

/// `Content-Disposition` for a download named `name` (RFC 6266: `filename*` carries the UTF-8
/// name percent-encoded; `fallback`, plain ASCII, is for clients that read only `filename`).
pub fn attachment(name: &str, fallback: &str) -> Result<axum::http::HeaderValue, ApiError> {
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect();
    axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .map_err(|_| ApiError::internal())
}

/// A download's project as its name reads: the project's name (its code if the caller does not
/// serve it), or 全部项目 when none was asked for.
pub async fn project_name(state: &AppState, principal: &Principal, code: Option<&str>) -> Result<String, ApiError> {
    let Some(code) = code else { return Ok("全部项目".into()) };
    let projects = state.db.me(principal).await?.projects;
    Ok(projects.into_iter().find(|p| p.code == code).map_or_else(|| code.to_owned(), |p| p.name))
}
