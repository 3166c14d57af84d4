//! A spreadsheet uploaded to the estate register's import: its bytes read as XLSX or CSV
//! (`loopwork_sheets`, calamine and csv underneath), its rows read by the register's rules
//! (sync-core's `estate::read_sheet`). Nothing may panic, hang or allocate past the limits; every
//! row read names a building and a unit, and every fault names a row of the sheet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loopwork_sheets::{Limits, read};
use loopwork_sync_core::estate::read_sheet;

const LIMITS: Limits = Limits { max_rows: 2_000, max_unpacked: 16 << 20 };

fuzz_target!(|data: &[u8]| {
    let Ok((_, rows)) = read(data, LIMITS) else { return };
    let count = rows.len();
    let Ok(sheet) = read_sheet(rows) else { return };
    for row in &sheet.rows {
        assert!(!row.building.is_empty() && !row.unit.is_empty(), "{row:?}");
        assert!((1..=count).contains(&row.row), "{row:?} of {count}");
    }
    for error in &sheet.errors {
        assert!((1..=count).contains(&error.row), "{error:?} of {count}");
    }
});
