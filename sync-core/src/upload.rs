//! The client side of attachments' resumable upload (tus 1.0, docs/attachments.md), sans-IO:
//! what to send next for one queued attachment, and what a response (or a transport failure)
//! means for it. The device keeps each queued upload's [`Upload`] in its store (it survives
//! restarts); the host's transport sends the requests. The rules live here so that every host
//! (the bindings, the simulator) resumes the same way: from the byte the server holds, asked
//! with `HEAD` after any failure, never by sending again what the server already has.
//!
//! ```text
//! let mut upload = Upload::new(sha256, length, kind);
//! loop {
//!     match upload.next(PART_BYTES, now_ms) {
//!         Step::Send(request) => {
//!             let answer = transport(&request, &bytes[request.body.clone()]);   // the host's IO
//!             upload.answer(&request, answer, now_ms);                          // stored after
//!         }
//!         Step::Wait { until_ms } => sleep_until(until_ms),
//!         Step::Done | Step::Failed(_) => break,
//!     }
//! }
//! ```

use std::ops::Range;

/// The tus version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The most bytes one `PATCH` carries (a part lost to a drop costs at most this much again).
pub const PART_BYTES: u64 = 256 << 10;
/// Failures in a row without progress before an upload waits for the next sync to try again.
pub const MAX_FAILURES: u32 = 8;

/// The kinds of attachment (docs/attachments.md): the document's.
pub use crate::work_order::AttachmentKind as UploadKind;

/// The largest attachment a server takes (its `Tus-Max-Size`).
pub const MAX_FILE_BYTES: u64 = 100 << 20;
/// The largest photo or signature a server takes: a thumbnail reads every block of a picture,
/// and 40 MiB is already a 100-megapixel photo.
pub const MAX_PICTURE_BYTES: u64 = 40 << 20;

/// An organization's limits on the size of its attachments (the `attachment-limits` setting,
/// docs/attachments.md), at most the server's own; the default is the server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "AttachmentLimits"))]
#[serde(deny_unknown_fields)]
pub struct AttachmentLimits {
    /// A file's (kind `file`): 1 to [`MAX_FILE_BYTES`].
    pub max_file_bytes: u64,
    /// A photo's or a signature's: 1 to [`MAX_PICTURE_BYTES`].
    pub max_picture_bytes: u64,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        AttachmentLimits { max_file_bytes: MAX_FILE_BYTES, max_picture_bytes: MAX_PICTURE_BYTES }
    }
}

impl AttachmentLimits {
    /// Whether the limits are within the server's.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_FILE_BYTES).contains(&self.max_file_bytes) {
            return Err(format!("max_file_bytes is 1 to {MAX_FILE_BYTES}"));
        }
        if !(1..=MAX_PICTURE_BYTES).contains(&self.max_picture_bytes) {
            return Err(format!("max_picture_bytes is 1 to {MAX_PICTURE_BYTES}"));
        }
        Ok(())
    }

    /// The most bytes an attachment of this kind may have.
    pub fn max_for(&self, kind: UploadKind) -> u64 {
        match kind {
            UploadKind::File => self.max_file_bytes,
            UploadKind::Photo | UploadKind::Signature => self.max_picture_bytes,
        }
    }
}

/// Where an upload stands, as the device stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadState {
    /// Not yet created on the server.
    New,
    /// Created at `location`; the server held `offset` bytes when last heard from; `verify`:
    /// ask (`HEAD`) before sending more, after a failure or a restart.
    Sending { location: String, offset: u64, verify: bool },
    /// Every byte is on the server and the blob is made (or the server held it already).
    Done,
    /// The server refused it for good (`code`: the API's error code, e.g. `hash_mismatch`).
    Failed { code: String },
}

impl UploadState {
    /// Whether nothing more will be sent: done, or refused for good.
    pub fn is_final(&self) -> bool {
        matches!(self, UploadState::Done | UploadState::Failed { .. })
    }
}

/// One attachment's upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub sha256: String,
    pub length: u64,
    pub kind: UploadKind,
    pub state: UploadState,
    /// Failures in a row without progress.
    pub failures: u32,
    /// Not before this (device clock): the pause after a failure.
    pub not_before_ms: i64,
}

/// An upload in the device's queue (`SqliteStore::queue_upload`): the attachment's upload
/// with the order it was first attached to and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedUpload {
    pub order: crate::OrderId,
    pub mime: String,
    /// Device clock; the queue goes oldest first.
    pub queued_at_ms: i64,
    pub upload: Upload,
}

/// A request the host sends: `path` is relative to the server's base; `body` the range of the
/// attachment's bytes to send (empty for requests without a body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRequest {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Range<u64>,
}

/// What the server answered: its status and headers (names in any case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The error code of a JSON error body, if any (`{"error": {"code": …}}`).
    pub code: Option<String>,
}

impl UploadResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn offset(&self) -> Option<u64> {
        self.header("upload-offset")?.trim().parse().ok()
    }
}

/// What to do next for an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Send(UploadRequest),
    /// Nothing before this time (a pause after a failure).
    Wait {
        until_ms: i64,
    },
    Done,
    Failed(String),
}

impl Upload {
    pub fn new(sha256: &str, length: u64, kind: UploadKind) -> Upload {
        Upload { sha256: sha256.to_owned(), length, kind, state: UploadState::New, failures: 0, not_before_ms: 0 }
    }

    /// The bytes the server is known to hold.
    pub fn sent(&self) -> u64 {
        match &self.state {
            UploadState::New | UploadState::Failed { .. } => 0,
            UploadState::Sending { offset, .. } => *offset,
            UploadState::Done => self.length,
        }
    }

    /// What to do next, at `now_ms`.
    pub fn next(&self, part_bytes: u64, now_ms: i64) -> Step {
        match &self.state {
            UploadState::Done => return Step::Done,
            UploadState::Failed { code } => return Step::Failed(code.clone()),
            _ if now_ms < self.not_before_ms => return Step::Wait { until_ms: self.not_before_ms },
            _ => {}
        }
        let tus = || vec![("Tus-Resumable".to_owned(), TUS_VERSION.to_owned())];
        Step::Send(match &self.state {
            UploadState::New => {
                let mut headers = tus();
                headers.push(("Upload-Length".into(), self.length.to_string()));
                headers.push((
                    "Upload-Metadata".into(),
                    format!("sha256 {},kind {}", base64(self.sha256.as_bytes()), base64(self.kind.code().as_bytes())),
                ));
                UploadRequest { method: "POST", path: "/api/v1/uploads".into(), headers, body: 0..0 }
            }
            UploadState::Sending { location, verify: true, .. } => {
                UploadRequest { method: "HEAD", path: location.clone(), headers: tus(), body: 0..0 }
            }
            UploadState::Sending { location, offset, verify: false } => {
                let mut headers = tus();
                headers.push(("Content-Type".into(), "application/offset+octet-stream".into()));
                headers.push(("Upload-Offset".into(), offset.to_string()));
                let end = (offset + part_bytes.max(1)).min(self.length);
                UploadRequest { method: "PATCH", path: location.clone(), headers, body: *offset..end }
            }
            UploadState::Done | UploadState::Failed { .. } => unreachable!("answered above"),
        })
    }

    /// What the answer to `request` means (`None`: the transport failed: no answer came).
    pub fn answer(&mut self, request: &UploadRequest, response: Option<&UploadResponse>, now_ms: i64) {
        let before = self.sent();
        let Some(response) = response else {
            return self.failed(now_ms);
        };
        match (request.method, response.status) {
            // Created: complete at once when the organization holds these bytes already.
            ("POST", 201) => match (response.header("location"), response.offset()) {
                (_, Some(offset)) if offset >= self.length => self.state = UploadState::Done,
                (Some(location), Some(offset)) => {
                    self.state = UploadState::Sending { location: location.to_owned(), offset, verify: false }
                }
                _ => return self.failed(now_ms),
            },
            ("HEAD", 200) | ("PATCH", 204) | ("PATCH", 409) => match (&self.state, response.offset()) {
                (UploadState::Sending { location, .. }, Some(offset)) => {
                    self.state = if offset >= self.length {
                        UploadState::Done
                    } else {
                        UploadState::Sending { location: location.clone(), offset, verify: false }
                    };
                }
                _ => return self.failed(now_ms),
            },
            // The upload is no more (ended, failed, or forgotten after its grace): start again.
            ("HEAD" | "PATCH", 404 | 410) if response.code.as_deref() != Some("upload_failed") => {
                self.state = UploadState::New;
            }
            // Signed out, busy elsewhere, the server failing, a timeout: ask again later.
            (_, 401 | 408 | 423 | 429 | 500..=599) => return self.failed(now_ms),
            // Anything else is a refusal: the bytes will not do (wrong hash, type, size).
            (_, _) => {
                let code = response.code.clone().unwrap_or_else(|| format!("http_{}", response.status));
                self.state = UploadState::Failed { code };
                return;
            }
        }
        if self.sent() > before || self.state == UploadState::Done {
            self.failures = 0;
        }
        self.not_before_ms = 0;
    }

    /// A failure: ask the server what it holds before sending more, after a pause that doubles
    /// from a second to a minute; after [`MAX_FAILURES`] in a row, a pause of ten minutes.
    fn failed(&mut self, now_ms: i64) {
        self.failures += 1;
        if let UploadState::Sending { verify, .. } = &mut self.state {
            *verify = true;
        }
        let pause = if self.failures > MAX_FAILURES { 600_000 } else { (1_000i64 << (self.failures - 1)).min(60_000) };
        self.not_before_ms = now_ms + pause;
    }
}

/// Standard base64 (tus's `Upload-Metadata`).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], code: Option<&str>) -> UploadResponse {
        UploadResponse {
            status,
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            code: code.map(str::to_owned),
        }
    }

    fn sent(step: Step) -> UploadRequest {
        match step {
            Step::Send(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn an_upload_cut_off_resumes_from_what_the_server_holds() {
        let sha = "ab".repeat(32);
        let mut upload = Upload::new(&sha, 600 << 10, UploadKind::Photo);
        let create = sent(upload.next(PART_BYTES, 0));
        assert_eq!((create.method, create.path.as_str()), ("POST", "/api/v1/uploads"));
        let metadata = &create.headers.iter().find(|(n, _)| n == "Upload-Metadata").expect("metadata").1;
        assert_eq!(metadata, &format!("sha256 {},kind cGhvdG8=", base64(sha.as_bytes())));
        upload.answer(
            &create,
            Some(&response(201, &[("Location", "/api/v1/uploads/u1"), ("Upload-Offset", "0")], None)),
            0,
        );
        let first = sent(upload.next(PART_BYTES, 0));
        assert_eq!((first.method, first.body.clone()), ("PATCH", 0..PART_BYTES));
        upload.answer(&first, Some(&response(204, &[("upload-offset", "262144")], None)), 0);
        // The next part is cut off: no answer. The device waits a second, then asks.
        let second = sent(upload.next(PART_BYTES, 10));
        assert_eq!(second.body, PART_BYTES..2 * PART_BYTES);
        upload.answer(&second, None, 10);
        assert_eq!(upload.next(PART_BYTES, 500), Step::Wait { until_ms: 1_010 });
        let ask = sent(upload.next(PART_BYTES, 1_010));
        assert_eq!((ask.method, ask.path.as_str(), ask.body.clone()), ("HEAD", "/api/v1/uploads/u1", 0..0));
        // The server kept 100,000 bytes of the cut part: sending goes on from there, not again.
        upload.answer(&ask, Some(&response(200, &[("Upload-Offset", "362144")], None)), 1_010);
        assert_eq!(upload.failures, 0, "the server holds more than was known: progress");
        let rest = sent(upload.next(PART_BYTES, 1_010));
        assert_eq!(rest.body, 362_144..614_400, "the last part ends at the length");
        upload.answer(&rest, Some(&response(204, &[("Upload-Offset", "614400")], None)), 1_020);
        assert_eq!(upload.next(PART_BYTES, 1_020), Step::Done);
        assert_eq!(upload.sent(), 614_400);
    }

    #[test]
    fn the_same_bytes_held_already_are_done_at_creation_and_refusals_are_final() {
        let mut held = Upload::new(&"cd".repeat(32), 1_000, UploadKind::Photo);
        let create = sent(held.next(PART_BYTES, 0));
        held.answer(&create, Some(&response(201, &[("Location", "/u/2"), ("Upload-Offset", "1000")], None)), 0);
        assert_eq!(held.next(PART_BYTES, 0), Step::Done);

        let mut wrong = Upload::new(&"ef".repeat(32), 1_000, UploadKind::Signature);
        let create = sent(wrong.next(PART_BYTES, 0));
        wrong.answer(&create, Some(&response(201, &[("Location", "/u/3"), ("Upload-Offset", "0")], None)), 0);
        let part = sent(wrong.next(PART_BYTES, 0));
        assert_eq!(part.body, 0..1_000);
        wrong.answer(&part, Some(&response(422, &[], Some("hash_mismatch"))), 0);
        assert_eq!(wrong.next(PART_BYTES, 0), Step::Failed("hash_mismatch".into()));
    }

    #[test]
    fn a_busy_or_failing_server_is_asked_again_later_and_a_forgotten_upload_starts_over() {
        let mut upload = Upload::new(&"01".repeat(32), 10, UploadKind::File);
        let create = sent(upload.next(PART_BYTES, 0));
        upload.answer(&create, Some(&response(201, &[("Location", "/u/4"), ("Upload-Offset", "0")], None)), 0);
        let mut now = 0;
        for failure in 1..=MAX_FAILURES + 1 {
            let request = sent(upload.next(PART_BYTES, now));
            upload.answer(&request, Some(&response(423, &[], Some("upload_busy"))), now);
            let expected = if failure > MAX_FAILURES { 600_000 } else { (1_000i64 << (failure - 1)).min(60_000) };
            assert_eq!(upload.next(PART_BYTES, now), Step::Wait { until_ms: now + expected }, "failure {failure}");
            now += expected;
        }
        // The server forgot it (collected after its grace): a new upload.
        let ask = sent(upload.next(PART_BYTES, now));
        assert_eq!(ask.method, "HEAD");
        upload.answer(&ask, Some(&response(404, &[], Some("not_found"))), now);
        assert_eq!(sent(upload.next(PART_BYTES, now)).method, "POST");
    }

    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        for (text, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("photo", "cGhvdG8=")] {
            assert_eq!(base64(text.as_bytes()), encoded);
        }
    }
}
