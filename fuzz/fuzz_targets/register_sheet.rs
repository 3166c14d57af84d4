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
    quiet_caught_panics();
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

/// libfuzzer-sys aborts on every panic, even one the code catches: `loopwork_sheets` turns
/// calamine's panics into `BadXlsx`, which is the behaviour under test. A panic that escapes still
/// aborts (libfuzzer-sys checks the target's result itself). With `LOOPWORK_FUZZ_PANICS=1` every
/// panic is printed.
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("LOOPWORK_FUZZ_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
}
