//! A bounded look at a change chunk before Automerge decodes it. Automerge's decoder expands
//! run-length-encoded columns as it reads them: a run of 2^60 copies written in a few bytes
//! makes it allocate and loop until the process dies (fuzzing found a 451-byte change that
//! does). This walks the chunk's columns without expanding anything, in time linear in its
//! bytes, and refuses a change whose columns hold more than [`MAX_CHANGE_OPS`] entries, a
//! compressed change chunk (its inflation would be unbounded; Loopwork sends changes as they
//! are, the sync frame compresses them), and compressed columns (Automerge refuses those too).
//!
//! It checks only what bounds the decoder's work; everything else is Automerge's to check.

use crate::error::DocumentError;

/// The most operations one change may carry. A new order with a 4,000-character description
/// is about 4,100; a work order's largest changes stay far below this.
pub const MAX_CHANGE_OPS: u64 = 100_000;

const CHANGE_CHUNK: u8 = 1;

fn refused(why: &str) -> DocumentError {
    DocumentError::Corrupt(format!("change refused before decoding: {why}"))
}

struct Bytes<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], DocumentError> {
        let n = usize::try_from(n).map_err(|_| refused("a length past the end"))?;
        let end = self.at.checked_add(n).filter(|end| *end <= self.buf.len()).ok_or_else(|| refused("truncated"))?;
        let slice = &self.buf[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn uleb(&mut self) -> Result<u64, DocumentError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first().ok_or_else(|| refused("truncated"))?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(refused("a number over 64 bits"))
    }

    fn sleb(&mut self) -> Result<i64, DocumentError> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = *self.take(1)?.first().ok_or_else(|| refused("truncated"))?;
            if shift < 64 {
                value |= i64::from(byte & 0x7f) << shift;
            }
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
            if shift >= 70 {
                return Err(refused("a number over 64 bits"));
            }
        }
    }

    fn done(&self) -> bool {
        self.at == self.buf.len()
    }
}

/// The most entries a column of a saved document may hold: far more than any work order's
/// history, far less than what exhausts a phone's memory once expanded.
pub const MAX_DOCUMENT_OPS: u64 = 2_000_000;

/// The most a document's compressed columns may inflate to, together.
const MAX_INFLATED: u64 = 64 << 20;

/// How many entries a column holds once expanded, counted without expanding it.
fn column_entries(kind: u64, data: &[u8], max: u64) -> Result<u64, DocumentError> {
    let mut r = Bytes { buf: data, at: 0 };
    let mut entries: u64 = 0;
    let mut add = |n: u64| -> Result<(), DocumentError> {
        entries = entries.saturating_add(n);
        if entries > max { Err(refused("more operations than a change or document may carry")) } else { Ok(()) }
    };
    match kind {
        // Booleans: alternating run lengths.
        4 => {
            while !r.done() {
                add(r.uleb()?)?;
            }
        }
        // Raw values: bytes whose lengths the metadata column gives.
        7 => {}
        // Run-length encoded: a repeated run (count > 0, one value), a literal run (count < 0,
        // that many values) or a run of nulls (0, then its length).
        _ => {
            let value = |r: &mut Bytes<'_>| -> Result<(), DocumentError> {
                match kind {
                    // Delta: signed numbers.
                    3 => r.sleb().map(|_| ()),
                    // Strings: a length, then UTF-8.
                    5 => {
                        let len = r.uleb()?;
                        r.take(len).map(|_| ())
                    }
                    // Group, actor, unsigned, value metadata: unsigned numbers.
                    _ => r.uleb().map(|_| ()),
                }
            };
            while !r.done() {
                let count = r.sleb()?;
                if count > 0 {
                    add(count.unsigned_abs())?;
                    value(&mut r)?;
                } else if count < 0 {
                    let n = count.unsigned_abs();
                    add(n)?;
                    for _ in 0..n {
                        value(&mut r)?;
                    }
                } else {
                    add(r.uleb()?)?;
                }
            }
        }
    }
    Ok(entries)
}

/// Refuses a change chunk whose decoding would not be bounded by its size (see the module).
/// Chunks that are not changes, or malformed past what bounds the work, are left to Automerge.
pub fn check(bytes: &[u8]) -> Result<(), DocumentError> {
    let mut r = Bytes { buf: bytes, at: 0 };
    r.take(8)?; // magic and checksum
    let kind = *r.take(1)?.first().ok_or_else(|| refused("truncated"))?;
    if kind != CHANGE_CHUNK {
        return Err(refused("only uncompressed change chunks are accepted"));
    }
    let len = r.uleb()?;
    let body = r.take(len)?;
    let mut r = Bytes { buf: body, at: 0 };
    let deps = r.uleb()?;
    r.take(deps.saturating_mul(32))?;
    let actor = r.uleb()?;
    r.take(actor)?;
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    let message = r.uleb()?;
    r.take(message)?;
    let others = r.uleb()?;
    for _ in 0..others {
        let actor = r.uleb()?;
        r.take(actor)?;
    }
    let columns = r.uleb()?;
    if columns > 64 {
        return Err(refused("too many columns"));
    }
    let mut specs = Vec::new();
    for _ in 0..columns {
        specs.push((r.uleb()?, r.uleb()?));
    }
    for (spec, len) in specs {
        if spec & 0b1000 != 0 {
            return Err(refused("compressed columns"));
        }
        column_entries(spec & 0b111, r.take(len)?, MAX_CHANGE_OPS)?;
    }
    Ok(())
}

/// The columns of a document chunk's body, counted as [`check`] counts a change's; compressed
/// columns (Automerge's `save` writes them) are inflated within [`MAX_INFLATED`] first.
fn check_document(body: &[u8]) -> Result<(), DocumentError> {
    use std::io::Read;
    let mut r = Bytes { buf: body, at: 0 };
    let actors = r.uleb()?;
    for _ in 0..actors {
        let actor = r.uleb()?;
        r.take(actor)?;
    }
    let heads = r.uleb()?;
    r.take(heads.saturating_mul(32))?;
    let mut specs = Vec::new();
    for _ in 0..2 {
        let columns = r.uleb()?;
        if columns > 64 {
            return Err(refused("too many columns"));
        }
        for _ in 0..columns {
            specs.push((r.uleb()?, r.uleb()?));
        }
    }
    let mut inflated_total: u64 = 0;
    for (spec, len) in specs {
        let data = r.take(len)?;
        if spec & 0b1000 == 0 {
            column_entries(spec & 0b111, data, MAX_DOCUMENT_OPS)?;
            continue;
        }
        let mut inflated = Vec::new();
        let budget = MAX_INFLATED - inflated_total;
        flate2::bufread::DeflateDecoder::new(data)
            .take(budget + 1)
            .read_to_end(&mut inflated)
            .map_err(|_| refused("a compressed column does not inflate"))?;
        inflated_total += inflated.len() as u64;
        if inflated_total > MAX_INFLATED {
            return Err(refused("compressed columns inflate past the limit"));
        }
        column_entries(spec & 0b111, &inflated, MAX_DOCUMENT_OPS)?;
    }
    Ok(())
}

/// [`check`] for every chunk of a saved document followed by change chunks (what
/// `WorkOrder::load` reads): the document's columns are bounded the same way (a 67-byte
/// document that made Automerge's loader allocate 8 GB was found by fuzzing).
pub fn check_chunks(bytes: &[u8]) -> Result<(), DocumentError> {
    let mut r = Bytes { buf: bytes, at: 0 };
    while !r.done() {
        let start = r.at;
        r.take(8)?;
        let kind = *r.take(1)?.first().ok_or_else(|| refused("truncated"))?;
        let len = r.uleb()?;
        r.take(len)?;
        match kind {
            0 => check_document(&bytes[r.at - len as usize..r.at])?,
            CHANGE_CHUNK => check(&bytes[start..r.at])?,
            _ => return Err(refused("only documents and uncompressed change chunks are read")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uleb(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn sleb(mut v: i64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
            out.push(if done { byte } else { byte | 0x80 });
            if done {
                return;
            }
        }
    }

    #[test]
    fn runs_are_counted_without_expanding_them() {
        let mut repeated = Vec::new();
        sleb(3, &mut repeated);
        uleb(7, &mut repeated);
        sleb(-2, &mut repeated);
        uleb(1, &mut repeated);
        uleb(2, &mut repeated);
        sleb(0, &mut repeated);
        uleb(4, &mut repeated);
        assert_eq!(column_entries(2, &repeated, MAX_CHANGE_OPS).unwrap(), 9);
        let mut huge = Vec::new();
        sleb(1 << 60, &mut huge);
        uleb(1, &mut huge);
        assert!(column_entries(2, &huge, MAX_CHANGE_OPS).is_err(), "a run of 2^60 copies is refused");
        let mut nulls = Vec::new();
        sleb(0, &mut nulls);
        uleb(u64::MAX, &mut nulls);
        assert!(column_entries(3, &nulls, MAX_DOCUMENT_OPS).is_err());
        let mut booleans = Vec::new();
        uleb(MAX_CHANGE_OPS, &mut booleans);
        uleb(1, &mut booleans);
        assert!(column_entries(4, &booleans, MAX_CHANGE_OPS).is_err());
    }

    #[test]
    fn every_change_sync_core_writes_passes() {
        use crate::{Action, Category, Channel, Grade, Identity, Kind, Location, NewOrder, Role, WorkOrder};
        let desk = Identity::fresh(Role::Dispatcher);
        let new = NewOrder {
            kind: Kind::Complaint,
            category: Category::Noise,
            grade: Grade::Minor,
            channel: Channel::Hotline,
            location: Location::unit("p", "1", "101"),
            description: "楼上装修噪音".repeat(600),
            reporter: crate::UserId::new(),
            occurred_at_ms: None,
        };
        let mut order = WorkOrder::create(&new, &desk, 0).unwrap();
        order.transition(&desk, Action::Assign(crate::UserId::new()), None, 1).unwrap();
        order.add_note(&desk, "已联系业主", 2).unwrap();
        for (_, bytes) in order.changes_since(&[]) {
            check(&bytes).unwrap();
        }
        check_chunks(&order.save()).unwrap();
        check_chunks(&order.save_uncompressed()).unwrap();
    }
}
