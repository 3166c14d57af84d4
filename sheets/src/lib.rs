//! Spreadsheets in and out. In: the cells of a spreadsheet a person uploads (the estate
//! register's import): an XLSX workbook's
//! first sheet, or a UTF-8 CSV file, as rows of text, read within bounds. An XLSX file is a ZIP
//! archive; what its entries say they unpack to is summed before anything is unpacked, so that a
//! small file cannot make the server unpack gigabytes. What the cells mean is not this crate's
//! concern (sync-core's `estate::read_sheet`).
//!
//! calamine 0.38 panics on some malformed workbooks (a cell reference whose column letters
//! overflow `u32`, found by the `register_sheet` fuzz target): the XLSX reader runs under
//! `catch_unwind`, and such a file is unreadable (`SheetError::BadXlsx`) like any other broken one.

/// How the file was told apart: from its bytes, never from a content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn code(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// Why a file is not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    #[error("the file is neither XLSX nor UTF-8 CSV (save it from Excel as XLSX or as CSV UTF-8)")]
    NotUtf8,
    #[error("the CSV is malformed: {0}")]
    BadCsv(String),
    #[error("the XLSX file cannot be read")]
    BadXlsx,
    #[error("the XLSX file unpacks to more than {0} bytes")]
    TooBigUnpacked(u64),
    #[error("the sheet has more than {0} rows")]
    TooManyRows(usize),
}

impl SheetError {
    pub fn label_zh(&self) -> String {
        match self {
            SheetError::NotUtf8 => "文件不是 XLSX 或 UTF-8 编码的 CSV(请在 Excel 中另存为 XLSX 或“CSV UTF-8”)".into(),
            SheetError::BadCsv(_) => "CSV 文件格式错误".into(),
            SheetError::BadXlsx => "XLSX 文件无法读取(请确认是 Excel 2007 及以上格式)".into(),
            SheetError::TooBigUnpacked(_) => "XLSX 文件解压后过大".into(),
            SheetError::TooManyRows(n) => format!("表格超过 {n} 行"),
        }
    }
}

/// The bounds of a read: rows, and what an XLSX archive may unpack to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_rows: usize,
    pub max_unpacked: u64,
}

/// The rows of the file, numbered as the spreadsheet numbers them (the first is row 1: an XLSX
/// sheet whose first rows are empty gets empty rows for them). Numbers that are whole are
/// written without a fraction (`1502`, not `1502.0`); a UTF-8 byte order mark is skipped.
pub fn read(bytes: &[u8], limits: Limits) -> Result<(Format, Vec<Vec<String>>), SheetError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok((Format::Xlsx, read_xlsx(bytes, limits)?));
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if std::str::from_utf8(text).is_err() {
        return Err(SheetError::NotUtf8);
    }
    // Line ends as `\n` only (Excel writes `\r\n`), so that lines are counted one way.
    let text = String::from_utf8_lossy(text).replace("\r\n", "\n");
    let text = text.as_bytes();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    // The csv crate skips empty lines: an empty row stands in for each, so that rows keep the
    // numbers a spreadsheet opening the file gives them. The reader's line count after a record
    // tells where it ended; less the newlines inside its quoted fields, where it began.
    let mut next_line = 1u64;
    while reader.read_record(&mut record).map_err(|e| SheetError::BadCsv(e.to_string()))? {
        let after = reader.position();
        let terminated = (after.byte() as usize).checked_sub(1).and_then(|i| text.get(i)) == Some(&b'\n');
        let inside = record.iter().map(|f| f.matches('\n').count() as u64).sum::<u64>();
        let first_line = after.line().saturating_sub(u64::from(terminated)).saturating_sub(inside);
        let blanks = first_line.saturating_sub(next_line) as usize;
        if rows.len() + blanks + 1 > limits.max_rows {
            return Err(SheetError::TooManyRows(limits.max_rows));
        }
        rows.extend(std::iter::repeat_n(Vec::new(), blanks));
        rows.push(record.iter().map(str::to_owned).collect::<Vec<_>>());
        next_line = after.line();
    }
    Ok((Format::Csv, rows))
}

fn read_xlsx(bytes: &[u8], limits: Limits) -> Result<Vec<Vec<String>>, SheetError> {
    use calamine::{Data, Reader, Xlsx};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|_| SheetError::BadXlsx)?;
    let mut unpacked: u64 = 0;
    for i in 0..archive.len() {
        unpacked = unpacked.saturating_add(archive.by_index_raw(i).map_err(|_| SheetError::BadXlsx)?.size());
    }
    if unpacked > limits.max_unpacked {
        return Err(SheetError::TooBigUnpacked(limits.max_unpacked));
    }
    let first_sheet = || {
        let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|_| SheetError::BadXlsx)?;
        workbook.worksheet_range_at(0).ok_or(SheetError::BadXlsx)?.map_err(|_| SheetError::BadXlsx)
    };
    let range =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(first_sheet)).map_err(|_| SheetError::BadXlsx)??;
    let above = range.start().map_or(0, |(row, _)| row as usize);
    if above.saturating_add(range.height()) > limits.max_rows {
        return Err(SheetError::TooManyRows(limits.max_rows));
    }
    let cell = |data: &Data| match data {
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Empty => String::new(),
        other => other.to_string(),
    };
    let rows = std::iter::repeat_n(Vec::new(), above).chain(range.rows().map(|row| row.iter().map(cell).collect()));
    Ok(rows.collect())
}

/// A cell written to an export.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::Text(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::Text(text.to_owned())
    }
}

impl From<Option<String>> for Cell {
    fn from(text: Option<String>) -> Self {
        text.map_or(Cell::Empty, Cell::Text)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Number(n as f64)
    }
}

impl From<Option<i64>> for Cell {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Cell::Empty, |n| Cell::Number(n as f64))
    }
}

/// Out: rows (the first the header) as an XLSX workbook of one sheet: the header bold and
/// frozen, columns as wide as their text, text always text (never a formula).
pub fn write_xlsx(sheet_name: &str, rows: &[Vec<Cell>]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name)?;
    let bold = Format::new().set_bold();
    let mut widths: Vec<usize> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, col) = (r as u32, c as u16);
            let width = match cell {
                Cell::Text(text) => {
                    if r == 0 {
                        sheet.write_string_with_format(r, col, text, &bold)?;
                    } else {
                        sheet.write_string(r, col, text)?;
                    }
                    // A Chinese character takes two columns' width.
                    text.chars().map(|ch| if ch.is_ascii() { 1 } else { 2 }).sum()
                }
                Cell::Number(n) => {
                    sheet.write_number(r, col, *n)?;
                    8
                }
                Cell::Empty => 0,
            };
            if widths.len() <= c {
                widths.resize(c + 1, 0);
            }
            widths[c] = widths[c].max(width);
        }
    }
    for (c, width) in widths.iter().enumerate() {
        sheet.set_column_width(c as u16, (*width).clamp(6, 60) as f64 + 1.0)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    workbook.save_to_buffer()
}

/// Out: rows (the first the header) as CSV that Excel opens as UTF-8 (a byte order mark first),
/// every field quoted, and text starting like a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return) neutralized with a leading `'` (CSV injection).
pub fn write_csv(rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut out = String::from("\u{FEFF}");
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|cell| {
                let text = match cell {
                    Cell::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{text}"),
                    Cell::Text(text) => text.clone(),
                    Cell::Number(n) if n.fract() == 0.0 => format!("{}", *n as i64),
                    // At most three decimals, without trailing zeros (87.5, not 87.500).
                    Cell::Number(n) => format!("{}", (n * 1000.0).round() / 1000.0),
                    Cell::Empty => String::new(),
                };
                format!("\"{}\"", text.replace('"', "\"\""))
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_rows: 100, max_unpacked: 1 << 20 };

    #[test]
    fn an_xlsx_sheet_reads_as_the_spreadsheet_shows_it() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(2, 1, "房号").expect("cell");
        sheet.write_number(3, 1, 1502.0).expect("cell");
        sheet.write_number(3, 2, 88.5).expect("cell");
        let bytes = workbook.save_to_buffer().expect("xlsx");
        let (format, rows) = read(&bytes, LIMITS).expect("read");
        assert_eq!(format, Format::Xlsx);
        assert_eq!(rows.len(), 4, "rows 1 and 2 are empty, the sheet's rows 3 and 4 follow: {rows:?}");
        assert_eq!(rows[2], ["房号", ""]);
        assert_eq!(rows[3], ["1502", "88.5"]);
        assert_eq!(read(&bytes, Limits { max_rows: 3, ..LIMITS }), Err(SheetError::TooManyRows(3)));
        assert_eq!(read(&bytes, Limits { max_unpacked: 100, ..LIMITS }), Err(SheetError::TooBigUnpacked(100)));
    }

    #[test]
    fn a_workbook_calamine_panics_on_is_unreadable() {
        // A sheet whose dimension names a column past u32 (calamine multiplies it unchecked).
        let mut workbook = rust_xlsxwriter::Workbook::new();
        workbook.add_worksheet().write_string(0, 0, "房号").expect("cell");
        let good = workbook.save_to_buffer().expect("xlsx");
        let torn =
            with_sheet_xml(&good, |xml| xml.replace("<dimension ref=\"A1\"/>", "<dimension ref=\"ZZZZZZZZZZ1\"/>"));
        assert_ne!(torn, good, "the dimension was replaced");
        assert_eq!(read(&torn, LIMITS), Err(SheetError::BadXlsx));
    }

    /// The workbook with its first sheet's XML rewritten.
    fn with_sheet_xml(xlsx: &[u8], edit: impl Fn(&str) -> String) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("zip");
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).expect("entry");
            let name = file.name().expect("name").into_owned();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).expect("read");
            if name == "xl/worksheets/sheet1.xml" {
                bytes = edit(&String::from_utf8(bytes).expect("utf-8")).into_bytes();
            }
            out.start_file(name, zip::write::SimpleFileOptions::default()).expect("start");
            out.write_all(&bytes).expect("write");
        }
        out.finish().expect("finish").into_inner()
    }

    #[test]
    fn exports_read_back_as_written() {
        let rows = vec![
            vec![Cell::from("单号"), Cell::from("描述"), Cell::from("评价")],
            vec![Cell::from("GD202612060001"), Cell::from("=HYPERLINK(\"x\")"), Cell::from(5)],
            vec![Cell::from("GD202612060002"), Cell::from("楼上漏水, \"急\""), Cell::Empty],
        ];
        let (format, back) = read(&write_xlsx("工单", &rows).expect("xlsx"), LIMITS).expect("read");
        assert_eq!(format, Format::Xlsx);
        assert_eq!(back[1], ["GD202612060001", "=HYPERLINK(\"x\")", "5"], "text stays text");
        let csv = write_csv(&rows);
        assert!(csv.starts_with("\u{FEFF}".as_bytes()));
        let (_, back) = read(&csv, LIMITS).expect("read");
        assert_eq!(back[1], ["GD202612060001", "'=HYPERLINK(\"x\")", "5"], "a formula is neutralized");
        assert_eq!(back[2], ["GD202612060002", "楼上漏水, \"急\"", ""]);
    }

    #[test]
    fn a_csv_file_reads_as_utf8_with_or_without_its_byte_order_mark() {
        let (format, rows) = read("\u{FEFF}楼栋,房号\n3,\"1502\"\n".as_bytes(), LIMITS).expect("read");
        assert_eq!(format, Format::Csv);
        assert_eq!(rows, [vec!["楼栋", "房号"], vec!["3", "1502"]]);
        assert_eq!(read(&[0xB7, 0xBF, 0xBA, 0xC5], LIMITS), Err(SheetError::NotUtf8));
        assert_eq!(read(b"PK\x03\x04 torn", LIMITS), Err(SheetError::BadXlsx));
        let long = "1\n".repeat(101);
        assert_eq!(read(long.as_bytes(), LIMITS), Err(SheetError::TooManyRows(100)));
        // Empty lines keep their places: the row after them is the spreadsheet's row 4.
        let (_, rows) = read("楼栋,房号\n\n\n3,1502\n".as_bytes(), LIMITS).expect("read");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3], ["3", "1502"]);
        // A quoted cell over two lines is one row, as a spreadsheet shows it.
        let (_, rows) = read("楼栋,房号,备注\n3,1502,\"两行\n备注\"\n\n3,1503,\n".as_bytes(), LIMITS).expect("read");
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[3], ["3", "1503", ""]);
    }
}
