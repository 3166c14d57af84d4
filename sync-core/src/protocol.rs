//! Sync protocol v1: the wire format of one sync round trip (specified in docs/protocol.md).
//!
//! A device sends one [`SyncRequest`]: the changes it has not had acknowledged and its cursor.
//! The server answers one [`SyncResponse`]: which changes are durably stored, everything new in
//! the device's scope since the cursor (whole documents for orders newly in scope, changes for
//! the rest), orders that left the scope, and the next cursor. Both are binary frames; decoding
//! is bounded by [`Limits`] and never panics.
//!
//! Pure encoding: no IO here. The client state machine is in [`crate::sync`].

use std::io::{Read, Write};

use automerge::ChangeHash;

use crate::ids::OrderId;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// The media type of a sync frame.
pub const CONTENT_TYPE: &str = "application/x-loopwork-sync";
const MAGIC: &[u8; 4] = b"LWSY";
const FLAG_DEFLATE: u8 = 1;

/// What kind of message a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Request = 1,
    Response = 2,
    Error = 3,
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("not a Loopwork sync frame")]
    NotAFrame,
    #[error("protocol version {0} is not supported (this side speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    #[error("expected a {expected:?} frame, got kind {got}")]
    WrongKind { expected: FrameKind, got: u8 },
    #[error("the frame is truncated")]
    Truncated,
    #[error("the frame is malformed: {0}")]
    Malformed(&'static str),
    #[error("the frame exceeds a limit: {0}")]
    TooLarge(&'static str),
    /// Decompressing it would exceed the memory shared by every decode running at once.
    #[error("too many large frames are being decoded at once")]
    Busy,
}

/// Bounds on what a decoder accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Decompressed payload size.
    pub max_payload_bytes: usize,
    /// Entries in any one list.
    pub max_entries: usize,
    /// One change or document.
    pub max_item_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_payload_bytes: 64 << 20, max_entries: 100_000, max_item_bytes: 4 << 20 }
    }
}

/// One order's bytes: a change, or a whole saved document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBytes {
    pub order: OrderId,
    pub bytes: Vec<u8>,
}

/// An order's heads, for per-document reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderHeads {
    pub order: OrderId,
    pub heads: Vec<ChangeHash>,
}

/// The server's receipt for a change it stored: a MAC under a key only the server holds over
/// (organization, order, change hash). A change's hash covers its dependencies, so a receipt
/// vouches for the change and for everything it depends on. A device keeps the receipts it is
/// sent and shows them when it relays other devices' changes back to a server that lost them
/// (recovery): without one, a relayed change is refused, so no device can pass its own edit off
/// as another device's or the server's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub order: OrderId,
    pub hash: ChangeHash,
    pub mac: [u8; RECEIPT_MAC_BYTES],
}

/// The length of a receipt's MAC.
pub const RECEIPT_MAC_BYTES: usize = 16;

/// An order that left the device's scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub order: OrderId,
    /// A reason code, e.g. `reassigned`.
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncRequest {
    /// Where the device's view of its scope ends; `None` on first sync.
    pub cursor: Option<String>,
    /// The most entries the device wants in one response (the server may send fewer).
    pub limit: u32,
    /// Local changes not yet acknowledged, in the order they were made.
    pub changes: Vec<OrderBytes>,
    /// Recovery only: changes made by other devices (or the server) that the server lost and
    /// this device still holds.
    pub relayed: Vec<OrderBytes>,
    /// Recovery only: the heads of every order the device holds.
    pub reconcile: Vec<OrderHeads>,
    /// The server's receipts for the relayed changes (or for changes that depend on them).
    pub receipts: Vec<Receipt>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncResponse {
    /// Changes now durably stored on the server (including ones it already had).
    pub acked: Vec<ChangeHash>,
    pub cursor: String,
    /// More is waiting: sync again at once.
    pub has_more: bool,
    /// The device's cursor is unknown here (a restored server or device): send `reconcile`.
    pub reconcile_required: bool,
    /// Orders newly in scope, whole.
    pub documents: Vec<OrderBytes>,
    /// New changes of orders already in scope.
    pub changes: Vec<OrderBytes>,
    pub revoked: Vec<Revocation>,
    /// Answer to `reconcile`: the server's heads of each order the device named that is in scope.
    pub server_heads: Vec<OrderHeads>,
    /// Receipts for the changes sent (for a document: its heads and the changes after its
    /// snapshot), to keep for recovery.
    pub receipts: Vec<Receipt>,
}

/// An error the server reports in a frame (and as HTTP status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFrame {
    pub code: String,
    pub message_en: String,
    pub message_zh: String,
}

impl SyncRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(self.cursor.as_deref().unwrap_or("").as_bytes());
        w.varint(u64::from(self.limit));
        w.order_bytes(&self.changes);
        w.order_bytes(&self.relayed);
        w.order_heads(&self.reconcile);
        w.receipts(&self.receipts);
        frame(FrameKind::Request, &w.0)
    }

    pub fn decode(frame: &[u8], limits: &Limits) -> Result<Self, FrameError> {
        Self::decode_within(frame, limits, &Unbounded)
    }

    /// [`SyncRequest::decode`], decompressing within a budget shared with other decodes.
    pub fn decode_within(frame: &[u8], limits: &Limits, budget: &dyn DecodeBudget) -> Result<Self, FrameError> {
        let (payload, _held) = unframe(frame, FrameKind::Request, limits, budget)?;
        let mut r = Reader::new(&payload, limits);
        let cursor = r.string()?;
        let request = SyncRequest {
            cursor: (!cursor.is_empty()).then_some(cursor),
            limit: u32::try_from(r.varint()?).map_err(|_| FrameError::Malformed("limit"))?,
            changes: r.order_bytes()?,
            relayed: r.order_bytes()?,
            reconcile: r.order_heads()?,
            receipts: r.receipts()?,
        };
        r.finish()?;
        Ok(request)
    }
}

impl SyncResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.hashes(&self.acked);
        w.bytes(self.cursor.as_bytes());
        w.0.push(u8::from(self.has_more) | (u8::from(self.reconcile_required) << 1));
        w.order_bytes(&self.documents);
        w.order_bytes(&self.changes);
        w.varint(self.revoked.len() as u64);
        for r in &self.revoked {
            w.0.extend_from_slice(r.order.as_uuid().as_bytes());
            w.bytes(r.reason.as_bytes());
        }
        w.order_heads(&self.server_heads);
        w.receipts(&self.receipts);
        frame(FrameKind::Response, &w.0)
    }

    pub fn decode(frame: &[u8], limits: &Limits) -> Result<Self, FrameError> {
        let (payload, _held) = unframe(frame, FrameKind::Response, limits, &Unbounded)?;
        let mut r = Reader::new(&payload, limits);
        let acked = r.hashes()?;
        let cursor = r.string()?;
        let flags = r.byte()?;
        let documents = r.order_bytes()?;
        let changes = r.order_bytes()?;
        let revoked_count = r.count()?;
        let mut revoked = Vec::with_capacity(revoked_count);
        for _ in 0..revoked_count {
            revoked.push(Revocation { order: r.order_id()?, reason: r.string()? });
        }
        let server_heads = r.order_heads()?;
        let receipts = r.receipts()?;
        r.finish()?;
        Ok(SyncResponse {
            acked,
            cursor,
            has_more: flags & 1 != 0,
            reconcile_required: flags & 2 != 0,
            documents,
            changes,
            revoked,
            server_heads,
            receipts,
        })
    }
}

impl ErrorFrame {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(self.code.as_bytes());
        w.bytes(self.message_en.as_bytes());
        w.bytes(self.message_zh.as_bytes());
        frame(FrameKind::Error, &w.0)
    }

    pub fn decode(frame: &[u8]) -> Result<Self, FrameError> {
        let limits = Limits { max_payload_bytes: 64 << 10, ..Limits::default() };
        let (payload, _held) = unframe(frame, FrameKind::Error, &limits, &Unbounded)?;
        let mut r = Reader::new(&payload, &limits);
        let error = ErrorFrame { code: r.string()?, message_en: r.string()?, message_zh: r.string()? };
        r.finish()?;
        Ok(error)
    }
}

/// Reads the version byte of a frame without decoding it (to tell "upgrade required" apart).
pub fn frame_version(frame: &[u8]) -> Option<u8> {
    (frame.len() >= 5 && &frame[..4] == MAGIC).then(|| frame[4])
}

/// Payloads this small are sent as they are: deflate would not pay for its header.
const COMPRESS_FROM: usize = 256;

fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 8);
    out.extend_from_slice(MAGIC);
    out.push(PROTOCOL_VERSION);
    out.push(kind as u8);
    if payload.len() >= COMPRESS_FROM {
        out.push(FLAG_DEFLATE);
        let mut encoder = flate2::write::DeflateEncoder::new(out, flate2::Compression::fast());
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(payload);
        encoder.finish().unwrap_or_default()
    } else {
        out.push(0);
        out.extend_from_slice(payload);
        out
    }
}

/// Memory that decompressing frames may take, shared by every decode running at once: a server
/// bounds what concurrent compressed requests (deflate bombs included) can make it allocate.
/// Reservations are made in [`BUDGET_STEP`] steps while a payload inflates and released when its
/// decode ends.
pub trait DecodeBudget {
    /// Takes `bytes` from the budget, or answers `false` if that would exceed it.
    fn reserve(&self, bytes: usize) -> bool;
    fn release(&self, bytes: usize);
}

/// The granularity of [`DecodeBudget`] reservations.
pub const BUDGET_STEP: usize = 1 << 20;

/// No bound beyond [`Limits`]: what a device uses for the one response it reads at a time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unbounded;

impl DecodeBudget for Unbounded {
    fn reserve(&self, _: usize) -> bool {
        true
    }
    fn release(&self, _: usize) {}
}

/// What a decode holds of a [`DecodeBudget`], given back when it ends.
struct Held<'a> {
    budget: &'a dyn DecodeBudget,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

fn unframe<'b>(
    frame: &[u8],
    expected: FrameKind,
    limits: &Limits,
    budget: &'b dyn DecodeBudget,
) -> Result<(Vec<u8>, Held<'b>), FrameError> {
    let mut held = Held { budget, bytes: 0 };
    if frame.len() < 7 || &frame[..4] != MAGIC {
        return Err(FrameError::NotAFrame);
    }
    if frame[4] != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(frame[4]));
    }
    if frame[5] != expected as u8 {
        return Err(FrameError::WrongKind { expected, got: frame[5] });
    }
    let flags = frame[6];
    if flags & !FLAG_DEFLATE != 0 {
        return Err(FrameError::Malformed("unknown flags"));
    }
    let body = &frame[7..];
    if flags & FLAG_DEFLATE == 0 {
        if body.len() > limits.max_payload_bytes {
            return Err(FrameError::TooLarge("payload"));
        }
        return Ok((body.to_vec(), held));
    }
    // Inflated a step at a time, each step reserved first, so that no decode allocates past
    // its limit or past what the budget has left.
    let mut out = Vec::new();
    let mut decoder = flate2::bufread::DeflateDecoder::new(body);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = decoder.read(&mut chunk).map_err(|_| FrameError::Malformed("compressed payload"))?;
        if n == 0 {
            break;
        }
        if out.len() + n > limits.max_payload_bytes {
            return Err(FrameError::TooLarge("payload"));
        }
        while held.bytes < out.len() + n {
            if !budget.reserve(BUDGET_STEP) {
                return Err(FrameError::Busy);
            }
            held.bytes += BUDGET_STEP;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    // The DEFLATE stream must end where the frame ends.
    if !decoder.into_inner().is_empty() {
        return Err(FrameError::Malformed("bytes after the compressed payload"));
    }
    Ok((out, held))
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn hashes(&mut self, hashes: &[ChangeHash]) {
        self.varint(hashes.len() as u64);
        for h in hashes {
            self.0.extend_from_slice(h.as_ref());
        }
    }

    fn order_bytes(&mut self, items: &[OrderBytes]) {
        self.varint(items.len() as u64);
        for item in items {
            self.0.extend_from_slice(item.order.as_uuid().as_bytes());
            self.bytes(&item.bytes);
        }
    }

    fn receipts(&mut self, items: &[Receipt]) {
        self.varint(items.len() as u64);
        for item in items {
            self.0.extend_from_slice(item.order.as_uuid().as_bytes());
            self.0.extend_from_slice(item.hash.as_ref());
            self.0.extend_from_slice(&item.mac);
        }
    }

    fn order_heads(&mut self, items: &[OrderHeads]) {
        self.varint(items.len() as u64);
        for item in items {
            self.0.extend_from_slice(item.order.as_uuid().as_bytes());
            self.hashes(&item.heads);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], limits: &'a Limits) -> Self {
        Reader { buf, at: 0, limits }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.at.checked_add(n).ok_or(FrameError::Truncated)?;
        let slice = self.buf.get(self.at..end).ok_or(FrameError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, FrameError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(FrameError::Malformed("varint"))
    }

    fn count(&mut self) -> Result<usize, FrameError> {
        let n = self.varint()?;
        if n > self.limits.max_entries as u64 {
            return Err(FrameError::TooLarge("entries"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let n = self.varint()?;
        if n > self.limits.max_item_bytes as u64 {
            return Err(FrameError::TooLarge("item"));
        }
        self.take(n as usize)
    }

    fn string(&mut self) -> Result<String, FrameError> {
        let b = self.bytes()?;
        if b.len() > 4096 {
            return Err(FrameError::TooLarge("string"));
        }
        String::from_utf8(b.to_vec()).map_err(|_| FrameError::Malformed("utf-8"))
    }

    fn order_id(&mut self) -> Result<OrderId, FrameError> {
        let raw: [u8; 16] = self.take(16)?.try_into().map_err(|_| FrameError::Truncated)?;
        Ok(OrderId::from_uuid(uuid::Uuid::from_bytes(raw)))
    }

    fn hash(&mut self) -> Result<ChangeHash, FrameError> {
        ChangeHash::try_from(self.take(32)?).map_err(|_| FrameError::Malformed("hash"))
    }

    fn hashes(&mut self) -> Result<Vec<ChangeHash>, FrameError> {
        let n = self.count()?;
        (0..n).map(|_| self.hash()).collect()
    }

    fn order_bytes(&mut self) -> Result<Vec<OrderBytes>, FrameError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(OrderBytes { order: self.order_id()?, bytes: self.bytes()?.to_vec() });
        }
        Ok(out)
    }

    fn order_heads(&mut self) -> Result<Vec<OrderHeads>, FrameError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(OrderHeads { order: self.order_id()?, heads: self.hashes()? });
        }
        Ok(out)
    }

    fn receipts(&mut self) -> Result<Vec<Receipt>, FrameError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let order = self.order_id()?;
            let hash = self.hash()?;
            let mac = self.take(RECEIPT_MAC_BYTES)?.try_into().map_err(|_| FrameError::Truncated)?;
            out.push(Receipt { order, hash, mac });
        }
        Ok(out)
    }

    fn finish(self) -> Result<(), FrameError> {
        if self.at == self.buf.len() { Ok(()) } else { Err(FrameError::Malformed("trailing bytes")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_response() -> SyncResponse {
        SyncResponse {
            acked: vec![ChangeHash([7; 32])],
            cursor: "v1:abc:42".into(),
            has_more: true,
            reconcile_required: false,
            documents: vec![OrderBytes { order: OrderId::new(), bytes: vec![1, 2, 3] }],
            changes: vec![OrderBytes { order: OrderId::new(), bytes: vec![9; 600] }],
            revoked: vec![Revocation { order: OrderId::new(), reason: "reassigned".into() }],
            server_heads: vec![OrderHeads { order: OrderId::new(), heads: vec![ChangeHash([1; 32])] }],
            receipts: vec![Receipt { order: OrderId::new(), hash: ChangeHash([2; 32]), mac: [3; RECEIPT_MAC_BYTES] }],
        }
    }

    #[test]
    fn frames_round_trip() {
        let request = SyncRequest {
            cursor: Some("v1:abc:41".into()),
            limit: 500,
            changes: vec![OrderBytes { order: OrderId::new(), bytes: vec![5; 300] }],
            relayed: vec![OrderBytes { order: OrderId::new(), bytes: vec![6; 10] }],
            reconcile: vec![],
            receipts: vec![Receipt { order: OrderId::new(), hash: ChangeHash([4; 32]), mac: [5; RECEIPT_MAC_BYTES] }],
        };
        assert_eq!(SyncRequest::decode(&request.encode(), &Limits::default()), Ok(request));
        let response = sample_response();
        assert_eq!(SyncResponse::decode(&response.encode(), &Limits::default()), Ok(response));
        let error =
            ErrorFrame {
                code: "upgrade_required".into(), message_en: "upgrade".into(), message_zh: "请升级".into()
            };
        assert_eq!(ErrorFrame::decode(&error.encode()), Ok(error));
    }

    #[test]
    fn an_idle_request_is_a_few_bytes() {
        let idle = SyncRequest { cursor: Some("v1:0123456789abcdef:123456".into()), limit: 500, ..Default::default() };
        assert!(idle.encode().len() < 48, "{}", idle.encode().len());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample_response().encode();
        for len in 0..bytes.len() {
            assert!(SyncResponse::decode(&bytes[..len], &Limits::default()).is_err(), "prefix {len} decoded");
        }
    }

    #[test]
    fn another_version_is_named_as_such() {
        let mut bytes = SyncRequest::default().encode();
        bytes[4] = 2;
        assert_eq!(SyncRequest::decode(&bytes, &Limits::default()), Err(FrameError::UnsupportedVersion(2)));
        assert_eq!(frame_version(&bytes), Some(2));
    }

    #[test]
    fn bytes_after_the_compressed_payload_are_malformed() {
        let mut bytes = sample_response().encode();
        assert_eq!(bytes[6] & FLAG_DEFLATE, FLAG_DEFLATE, "the sample is compressed");
        assert!(SyncResponse::decode(&bytes, &Limits::default()).is_ok());
        bytes.extend_from_slice(b"tail");
        assert_eq!(
            SyncResponse::decode(&bytes, &Limits::default()),
            Err(FrameError::Malformed("bytes after the compressed payload"))
        );
    }

    /// A budget of a few steps, counting what is held.
    #[derive(Debug, Default)]
    struct Steps {
        free: std::cell::Cell<usize>,
    }

    impl DecodeBudget for Steps {
        fn reserve(&self, bytes: usize) -> bool {
            let ok = self.free.get() >= bytes;
            if ok {
                self.free.set(self.free.get() - bytes);
            }
            ok
        }
        fn release(&self, bytes: usize) {
            self.free.set(self.free.get() + bytes);
        }
    }

    #[test]
    fn decompression_takes_no_more_than_the_shared_budget_and_gives_it_back() {
        // 3 MiB of one byte: a small frame that inflates past a 2-step budget.
        let request = SyncRequest {
            changes: vec![OrderBytes { order: OrderId::new(), bytes: vec![0; 3 << 20] }],
            ..SyncRequest::default()
        };
        let frame = request.encode();
        assert!(frame.len() < 64 << 10, "{}", frame.len());
        let limits = Limits { max_item_bytes: 4 << 20, ..Limits::default() };
        let tight = Steps { free: std::cell::Cell::new(2 * BUDGET_STEP) };
        assert_eq!(SyncRequest::decode_within(&frame, &limits, &tight), Err(FrameError::Busy));
        assert_eq!(tight.free.get(), 2 * BUDGET_STEP, "a refused decode gives back what it took");
        let enough = Steps { free: std::cell::Cell::new(4 * BUDGET_STEP) };
        assert_eq!(SyncRequest::decode_within(&frame, &limits, &enough).as_ref(), Ok(&request));
        assert_eq!(enough.free.get(), 4 * BUDGET_STEP, "and so does a decode that succeeded");
    }

    #[test]
    fn limits_are_enforced_before_allocation() {
        let tight = Limits { max_entries: 1, ..Limits::default() };
        let mut response = sample_response();
        response.acked.push(ChangeHash([8; 32]));
        assert_eq!(SyncResponse::decode(&response.encode(), &tight), Err(FrameError::TooLarge("entries")));
        let small = Limits { max_payload_bytes: 100, ..Limits::default() };
        assert_eq!(SyncResponse::decode(&sample_response().encode(), &small), Err(FrameError::TooLarge("payload")));
    }
}
