//! The estate register's rules (房屋档案): how a phone number is written, how a building's or a
//! unit's code is written and sorted, who lives in a unit, and how the rows of the spreadsheets
//! property companies already keep become units and residents. The server stores the register
//! (names and phones are personal data and stay there); these rules are the same wherever a
//! phone number or a unit is typed.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use crate::error::DocumentError;

crate::classification::vocabulary! {
    /// How a resident is tied to their unit.
    Relation {
        /// 业主: owns the unit.
        Owner => "owner", "业主", "Owner";
        /// 租户: rents it.
        Tenant => "tenant", "租户", "Tenant";
        /// 家属: lives with the owner or the tenant.
        Family => "family", "家属", "Family member";
    }
}

impl Relation {
    /// The relation as a spreadsheet writes it: its code, its label, or a common synonym.
    pub fn from_text(text: &str) -> Option<Relation> {
        let text = text.trim().to_lowercase();
        match text.as_str() {
            "" | "owner" | "业主" | "产权人" | "房主" => Some(Relation::Owner),
            "tenant" | "租户" | "租客" | "承租人" => Some(Relation::Tenant),
            "family" | "family member" | "家属" | "家人" | "住户" | "同住人" => Some(Relation::Family),
            _ => None,
        }
    }
}

/// Orders two codes as people read them: `1, 2, 10` and `2-0801, 2-1502, 10-0101`, not
/// `1, 10, 2`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    alphanumeric_sort::compare_str(a, b).then_with(|| a.cmp(b))
}

/// What makes a phone number unusable (see [`normalize_phone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneFault {
    #[error("the phone number is empty")]
    Empty,
    #[error("a phone number holds digits, spaces, dashes, brackets and a leading +86 only")]
    NotDigits,
    #[error(
        "not a phone number: a mobile is 11 digits starting 13–19, a landline 10 to 12 digits starting \
         with its area code's 0, a local number 7 or 8 digits, a 400 or 800 number 10 digits"
    )]
    WrongForm,
}

impl PhoneFault {
    pub fn label_zh(self) -> &'static str {
        match self {
            PhoneFault::Empty => "电话为空",
            PhoneFault::NotDigits => "电话只能包含数字、空格、横线、括号和开头的 +86",
            PhoneFault::WrongForm => "电话格式不对:手机 11 位(13–19 开头),座机带区号 10–12 位,本地 7–8 位",
        }
    }
}

/// A phone number as the register stores and compares it: digits only, with no country code.
/// Full-width digits (a Chinese input method's `１３８`) count as digits.
pub fn normalize_phone(raw: &str) -> Result<String, PhoneFault> {
    let mut digits = String::with_capacity(raw.len());
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(PhoneFault::Empty);
    }
    for (i, c) in trimmed.chars().map(half_width).enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' => {}
            '+' if i == 0 => {}
            _ => return Err(PhoneFault::NotDigits),
        }
    }
    let international = if trimmed.starts_with('+') || trimmed.starts_with('＋') {
        digits = digits.strip_prefix("86").ok_or(PhoneFault::WrongForm)?.to_owned();
        true
    } else if digits.starts_with("0086") && digits.len() > 10 {
        digits.drain(..4);
        true
    } else {
        false
    };
    // Written internationally a landline drops its trunk 0 (`+86 10 1234 5678`): it is put back.
    if international && (!digits.starts_with('1') || digits.len() < 11) {
        digits.insert(0, '0');
    }
    let bytes = digits.as_bytes();
    let fits = match bytes.first() {
        Some(b'1') => bytes.len() == 11 && (b'3'..=b'9').contains(&bytes[1]),
        Some(b'0') => (10..=12).contains(&bytes.len()) && bytes[1] != b'0',
        Some(b'4' | b'8') if bytes.len() == 10 => digits.starts_with("400") || digits.starts_with("800"),
        Some(b'2'..=b'9') => (7..=8).contains(&bytes.len()),
        _ => false,
    };
    if fits { Ok(digits) } else { Err(PhoneFault::WrongForm) }
}

/// Full-width ASCII (`１`, `Ａ`, `－`, `（`, the ideographic space) as its ASCII form.
fn half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// The longest building or unit code, in characters.
pub const MAX_CODE_CHARS: usize = 40;
/// The longest resident's name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// Which part of an address a code is (how a spreadsheet decorates it differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePart {
    /// 楼栋: `3`, `3栋`, `3幢` and `3号楼` are all `3`.
    Building,
    /// 单元 (an entrance): `2` and `2单元` are `2`.
    Entrance,
    /// 房号: `1502` and `1502室` are `1502`.
    Room,
}

/// What makes a building or unit code unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeFault {
    #[error("the code is empty")]
    Empty,
    #[error("a code is at most {MAX_CODE_CHARS} characters")]
    TooLong,
    #[error("a code holds no `/`, `?`, `#`, `%` or control characters")]
    Forbidden,
}

impl CodeFault {
    pub fn label_zh(self) -> &'static str {
        match self {
            CodeFault::Empty => "为空",
            CodeFault::TooLong => "过长(最多 40 个字符)",
            CodeFault::Forbidden => "不能包含 / ? # % 或控制字符",
        }
    }
}

/// A code as the register keeps it: trimmed, full-width letters and digits made ASCII, the
/// part's usual suffix (`栋`, `单元`, `室`) dropped.
pub fn normalize_code(raw: &str, part: CodePart) -> Result<String, CodeFault> {
    let code: String = raw.trim().chars().map(half_width).collect();
    let suffixes: &[&str] = match part {
        CodePart::Building => &["号楼", "栋", "幢"],
        CodePart::Entrance => &["单元"],
        CodePart::Room => &["室"],
    };
    let mut code = code.as_str();
    for suffix in suffixes {
        if let Some(rest) = code.strip_suffix(suffix)
            && !rest.trim().is_empty()
        {
            code = rest;
            break;
        }
    }
    let code = code.trim();
    if code.is_empty() {
        return Err(CodeFault::Empty);
    }
    if code.chars().count() > MAX_CODE_CHARS {
        return Err(CodeFault::TooLong);
    }
    if code.chars().any(|c| c.is_control() || "/?#%".contains(c)) {
        return Err(CodeFault::Forbidden);
    }
    Ok(code.to_owned())
}

/// A resident as a row or a desk form gives them, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewResident {
    pub name: String,
    /// As [`normalize_phone`] writes it.
    pub phone: String,
    pub relation: Relation,
}

/// What makes a resident unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResidentFault {
    #[error("a resident needs a name")]
    NoName,
    #[error("a resident's name is at most {MAX_NAME_CHARS} characters, with no control characters")]
    BadName,
    #[error("the relation is one of owner (业主), tenant (租户), family (家属)")]
    BadRelation,
    #[error("{0}")]
    Phone(PhoneFault),
}

impl ResidentFault {
    pub fn label_zh(self) -> &'static str {
        match self {
            ResidentFault::NoName => "缺少姓名",
            ResidentFault::BadName => "姓名过长(最多 40 个字符)或含控制字符",
            ResidentFault::BadRelation => "身份只能是 业主、租户 或 家属",
            ResidentFault::Phone(fault) => fault.label_zh(),
        }
    }

    /// The field at fault.
    pub fn field(self) -> &'static str {
        match self {
            ResidentFault::NoName | ResidentFault::BadName => "name",
            ResidentFault::BadRelation => "relation",
            ResidentFault::Phone(_) => "phone",
        }
    }
}

impl NewResident {
    /// The one rule for a resident, from a form or a spreadsheet row: a name within bounds, a
    /// phone number [`normalize_phone`] accepts, a known relation (empty: owner).
    pub fn check(name: &str, phone: &str, relation: &str) -> Result<NewResident, ResidentFault> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ResidentFault::NoName);
        }
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(ResidentFault::BadName);
        }
        let phone = normalize_phone(phone).map_err(ResidentFault::Phone)?;
        let relation = Relation::from_text(relation).ok_or(ResidentFault::BadRelation)?;
        Ok(NewResident { name: name.to_owned(), phone, relation })
    }
}

/// A column of an import, found by its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImportColumn {
    Project,
    Building,
    Entrance,
    Room,
    Name,
    Phone,
    Relation,
}

impl ImportColumn {
    /// The headers each column is known by (compared without spaces, `*` and case).
    pub const HEADERS: &'static [(ImportColumn, &'static [&'static str])] = &[
        (ImportColumn::Project, &["项目", "小区", "项目编码", "project"]),
        (ImportColumn::Building, &["楼栋", "楼号", "栋", "楼栋号", "楼宇", "building"]),
        (ImportColumn::Entrance, &["单元", "单元号", "entrance"]),
        (ImportColumn::Room, &["房号", "房间号", "门牌号", "房屋编号", "room", "unit"]),
        (ImportColumn::Name, &["姓名", "业主姓名", "住户姓名", "联系人", "name"]),
        (ImportColumn::Phone, &["电话", "手机", "手机号", "手机号码", "联系电话", "phone", "mobile"]),
        (ImportColumn::Relation, &["身份", "关系", "住户类型", "relation"]),
    ];

    /// The code a row error names the column by.
    pub fn code(self) -> &'static str {
        match self {
            ImportColumn::Project => "project",
            ImportColumn::Building => "building",
            ImportColumn::Entrance => "entrance",
            ImportColumn::Room => "room",
            ImportColumn::Name => "name",
            ImportColumn::Phone => "phone",
            ImportColumn::Relation => "relation",
        }
    }

    fn of_header(header: &str) -> Option<ImportColumn> {
        let key: String = header.chars().filter(|c| !c.is_whitespace() && *c != '*').collect::<String>().to_lowercase();
        Self::HEADERS.iter().find(|(_, names)| names.contains(&key.as_str())).map(|(column, _)| *column)
    }
}

/// The most rows one import reads.
pub const MAX_IMPORT_ROWS: usize = 20_000;

/// Why a whole import is refused (a row's fault is a [`RowError`] instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportFault {
    #[error("the sheet is empty")]
    Empty,
    #[error("the header row has no {0} column (楼栋 and 房号 are required)")]
    MissingColumn(&'static str),
    #[error("two columns of the header row are both {0}")]
    DuplicateColumn(&'static str),
    #[error("the sheet has more than {MAX_IMPORT_ROWS} rows")]
    TooManyRows,
}

impl ImportFault {
    pub fn label_zh(&self) -> String {
        match self {
            ImportFault::Empty => "表格为空".into(),
            ImportFault::MissingColumn(c) => format!("表头缺少 {c} 列(楼栋、房号为必填列)"),
            ImportFault::DuplicateColumn(c) => format!("表头中有两列都是 {c}"),
            ImportFault::TooManyRows => format!("表格超过 {MAX_IMPORT_ROWS} 行"),
        }
    }
}

/// One row's fault: the row as a spreadsheet numbers it (the header is row 1), the column, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    pub column: &'static str,
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

/// A row read: a unit, and the resident living there if the row names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterRow {
    pub row: usize,
    /// The project column's text (a project's code or name), when the sheet has one.
    pub project: Option<String>,
    pub building: String,
    /// The unit's code: `entrance-room` when the sheet has an entrance (单元) column, else the
    /// room as written.
    pub unit: String,
    pub resident: Option<NewResident>,
}

/// A sheet read: its rows, every row's faults, the headers it did not use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sheet {
    pub rows: Vec<RegisterRow>,
    pub errors: Vec<RowError>,
    pub ignored_columns: Vec<String>,
    /// Rows read after the header, blank ones left out (each counted once, faulty or not).
    pub read: usize,
}

/// Reads a register sheet: the first non-blank row is the header; blank rows are skipped;
/// every other row is a unit, with a resident when it has a name or a phone. A row that
/// repeats an earlier one's unit and phone is an error (which one to keep is the company's
/// call).
pub fn read_sheet(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Sheet, ImportFault> {
    let mut rows = rows.into_iter().enumerate().map(|(i, cells)| (i + 1, cells));
    let blank = |cells: &[String]| cells.iter().all(|c| c.trim().is_empty());
    // The header is the first row naming the building and room columns, among the first
    // [`HEADER_SEARCH_ROWS`] that hold anything (a title row may come first); failing that, the
    // first such row's fault is the sheet's.
    let mut first_fault = None;
    let mut searched = 0;
    let (columns, ignored_columns) = loop {
        let Some((_, cells)) = rows.by_ref().find(|(_, cells)| !blank(cells)) else {
            return Err(first_fault.unwrap_or(ImportFault::Empty));
        };
        match header(&cells) {
            Ok(found) => break found,
            Err(fault) => {
                first_fault.get_or_insert(fault);
                searched += 1;
                if searched == HEADER_SEARCH_ROWS {
                    return Err(first_fault.unwrap_or(ImportFault::Empty));
                }
            }
        }
    };
    let mut sheet = Sheet { ignored_columns, ..Sheet::default() };
    let mut seen: HashMap<(String, String, String, String), usize> = HashMap::new();
    for (row, cells) in rows {
        if blank(&cells) {
            continue;
        }
        if sheet.read == MAX_IMPORT_ROWS {
            return Err(ImportFault::TooManyRows);
        }
        sheet.read += 1;
        let cell = |column: ImportColumn| columns.get(&column).and_then(|&i| cells.get(i)).map_or("", |c| c.trim());
        let mut faults = Vec::new();
        let mut code = |column: ImportColumn, part: CodePart| match normalize_code(cell(column), part) {
            Ok(code) => Some(code),
            Err(fault) => {
                faults.push(RowError {
                    row,
                    column: column.code(),
                    code: "invalid_code",
                    message: format!("{}: {fault}", column.code()),
                    message_zh: format!("{}{}", header_zh(column), fault.label_zh()),
                });
                None
            }
        };
        let building = code(ImportColumn::Building, CodePart::Building);
        let entrance = if cell(ImportColumn::Entrance).is_empty() {
            None
        } else {
            code(ImportColumn::Entrance, CodePart::Entrance)
        };
        let room = code(ImportColumn::Room, CodePart::Room);
        let unit = room.map(|room| match entrance {
            Some(entrance) => format!("{entrance}-{room}"),
            None => room,
        });
        let project = Some(cell(ImportColumn::Project)).filter(|p| !p.is_empty()).map(str::to_owned);
        let (name, phone, relation) =
            (cell(ImportColumn::Name), cell(ImportColumn::Phone), cell(ImportColumn::Relation));
        let resident = if name.is_empty() && phone.is_empty() {
            None
        } else {
            match NewResident::check(name, phone, relation) {
                Ok(resident) => Some(resident),
                Err(fault) => {
                    faults.push(RowError {
                        row,
                        column: fault.field(),
                        code: "invalid_resident",
                        message: fault.to_string(),
                        message_zh: fault.label_zh().into(),
                    });
                    None
                }
            }
        };
        if let (Some(building), Some(unit), true) = (building, unit, faults.is_empty()) {
            if let Some(resident) = &resident {
                let key = (project.clone().unwrap_or_default(), building.clone(), unit.clone(), resident.phone.clone());
                if let Some(first) = seen.insert(key, row) {
                    sheet.errors.push(RowError {
                        row,
                        column: "phone",
                        code: "duplicate_row",
                        message: format!("the same unit and phone as row {first}"),
                        message_zh: format!("与第 {first} 行的房号和电话重复"),
                    });
                    continue;
                }
            }
            sheet.rows.push(RegisterRow { row, project, building, unit, resident });
        } else {
            sheet.errors.extend(faults);
        }
    }
    Ok(sheet)
}

/// How many rows holding something may come before the header (titles, notes).
pub const HEADER_SEARCH_ROWS: usize = 10;

/// A header row's columns, and the headers it does not use.
fn header(cells: &[String]) -> Result<(HashMap<ImportColumn, usize>, Vec<String>), ImportFault> {
    let mut columns: HashMap<ImportColumn, usize> = HashMap::new();
    let mut ignored = Vec::new();
    for (i, text) in cells.iter().enumerate() {
        match ImportColumn::of_header(text) {
            Some(column) => {
                if columns.insert(column, i).is_some() {
                    return Err(ImportFault::DuplicateColumn(column.code()));
                }
            }
            None if text.trim().is_empty() => {}
            None => ignored.push(text.trim().to_owned()),
        }
    }
    for required in [ImportColumn::Building, ImportColumn::Room] {
        if !columns.contains_key(&required) {
            return Err(ImportFault::MissingColumn(required.code()));
        }
    }
    Ok((columns, ignored))
}

fn header_zh(column: ImportColumn) -> &'static str {
    match column {
        ImportColumn::Project => "项目",
        ImportColumn::Building => "楼栋",
        ImportColumn::Entrance => "单元",
        ImportColumn::Room => "房号",
        ImportColumn::Name => "姓名",
        ImportColumn::Phone => "电话",
        ImportColumn::Relation => "身份",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn phone_numbers_as_people_write_them() {
        for (raw, stored) in [
            ("13800138000", "13800138000"),
            ("138 0013 8000", "13800138000"),
            ("+86 138-0013-8000", "13800138000"),
            ("0086 13800138000", "13800138000"),
            ("１３８００１３８０００", "13800138000"),
            ("010-12345678", "01012345678"),
            ("(0755) 1234567", "07551234567"),
            ("87654321", "87654321"),
            ("400-810-8888", "4008108888"),
            ("+86 10 1234 5678", "01012345678"),
            ("0086 755 1234567", "07551234567"),
        ] {
            assert_eq!(normalize_phone(raw).as_deref(), Ok(stored), "{raw}");
        }
        for (raw, fault) in [
            ("", PhoneFault::Empty),
            ("  ", PhoneFault::Empty),
            ("12", PhoneFault::WrongForm),
            ("call me", PhoneFault::NotDigits),
            ("12800138000", PhoneFault::WrongForm),
            ("1380013800", PhoneFault::WrongForm),
            ("138001380001", PhoneFault::WrongForm),
            ("+1 415 555 0100", PhoneFault::WrongForm),
            ("138+00138000", PhoneFault::NotDigits),
            ("001234567", PhoneFault::WrongForm),
            ("1234567", PhoneFault::WrongForm),
        ] {
            assert_eq!(normalize_phone(raw), Err(fault), "{raw:?}");
        }
    }

    #[test]
    fn buildings_and_units_sort_as_people_read_them() {
        let mut buildings = strings(&["10", "2", "1", "11", "A2", "A10", "3"]);
        buildings.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(buildings, strings(&["1", "2", "3", "10", "11", "A2", "A10"]));
        let mut units = strings(&["2-1502", "10-0101", "2-0801", "1-101"]);
        units.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(units, strings(&["1-101", "2-0801", "2-1502", "10-0101"]));
    }

    #[test]
    fn codes_lose_their_decoration_and_keep_their_meaning() {
        assert_eq!(normalize_code(" 3栋 ", CodePart::Building).as_deref(), Ok("3"));
        assert_eq!(normalize_code("12号楼", CodePart::Building).as_deref(), Ok("12"));
        assert_eq!(normalize_code("Ａ座", CodePart::Building).as_deref(), Ok("A座"));
        assert_eq!(normalize_code("栋", CodePart::Building).as_deref(), Ok("栋"));
        assert_eq!(normalize_code("2单元", CodePart::Entrance).as_deref(), Ok("2"));
        assert_eq!(normalize_code("1502室", CodePart::Room).as_deref(), Ok("1502"));
        assert_eq!(normalize_code("  ", CodePart::Room), Err(CodeFault::Empty));
        assert_eq!(normalize_code("1/2", CodePart::Room), Err(CodeFault::Forbidden));
        assert_eq!(normalize_code(&"9".repeat(41), CodePart::Room), Err(CodeFault::TooLong));
    }

    #[test]
    fn a_sheet_becomes_units_and_residents_with_every_row_s_faults() {
        let sheet = read_sheet([
            strings(&[]),
            strings(&["和园小区房屋档案(2026 年 12 月)"]),
            strings(&["楼栋", "单元", "房号 *", "业主姓名", "手机号码", "身份", "备注"]),
            strings(&["3栋", "2单元", "1502", "王芳", "138 0013 8000", "业主"]),
            strings(&["3", "2", "1502室", "王小明", "13900139000", "家属"]),
            strings(&["", "", "", "", "", ""]),
            strings(&["3", "2", "1503", "", "", ""]),
            strings(&["99", "9", "9999", "张三", "12", ""]),
            strings(&["3", "2", "1502", "王芳", "13800138000", "业主"]),
            strings(&["", "1", "101", "李四", "13700137000", "房客"]),
        ])
        .expect("read");
        assert_eq!(sheet.ignored_columns, strings(&["备注"]));
        assert_eq!(sheet.read, 6, "six rows after the header, the blank one left out");
        let read: Vec<(usize, &str, &str, Option<&str>)> = sheet
            .rows
            .iter()
            .map(|r| (r.row, r.building.as_str(), r.unit.as_str(), r.resident.as_ref().map(|p| p.name.as_str())))
            .collect();
        assert_eq!(
            read,
            [(4, "3", "2-1502", Some("王芳")), (5, "3", "2-1502", Some("王小明")), (7, "3", "2-1503", None)]
        );
        assert_eq!(sheet.rows[1].resident.as_ref().map(|r| r.relation), Some(Relation::Family));
        let errors: Vec<(usize, &str, &str)> = sheet.errors.iter().map(|e| (e.row, e.column, e.code)).collect();
        assert_eq!(
            errors,
            [
                (8, "phone", "invalid_resident"),
                (9, "phone", "duplicate_row"),
                (10, "building", "invalid_code"),
                (10, "relation", "invalid_resident"),
            ]
        );
        assert_eq!(sheet.errors[1].message_zh, "与第 4 行的房号和电话重复");
    }

    #[test]
    fn a_sheet_without_its_columns_is_refused_whole() {
        assert_eq!(read_sheet(Vec::<Vec<String>>::new()), Err(ImportFault::Empty));
        assert_eq!(read_sheet([strings(&["楼栋", "姓名"])]), Err(ImportFault::MissingColumn("room")));
        assert_eq!(read_sheet([strings(&["楼栋", "房号", "room"])]), Err(ImportFault::DuplicateColumn("room")));
        let too_many = std::iter::once(strings(&["楼栋", "房号"]))
            .chain((0..=MAX_IMPORT_ROWS).map(|i| strings(&["1", &i.to_string()])));
        assert_eq!(read_sheet(too_many), Err(ImportFault::TooManyRows));
    }
}
