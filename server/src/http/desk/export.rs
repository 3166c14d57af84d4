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
