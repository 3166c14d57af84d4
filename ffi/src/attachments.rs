//! Photos, the owner's signature and files on the phone (docs/attachments.md): captured offline
//! and kept in the device's directory (`attachments/outgoing/<sha256>`), their uploads queued in
//! the device store (they survive restarts) and sent by [`Loopwork::upload_attachments`] with
//! sync-core's resumable [`Upload`] (from the byte the server holds), downloads on demand into
//! a cache (`attachments/cache`) kept under a size budget, least recently used first out. An
//! unsent attachment is never in the cache: nothing evicts it.
//!
//! The reference (in the order's document) and the bytes travel separately, in either order:
//! the reference with the next `sync`, the bytes with the next `upload_attachments`.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};

use loopwork_sync_core::upload::{PART_BYTES, QueuedUpload, Step, Upload, UploadResponse, UploadState};
use loopwork_sync_core::work_order::is_sha256;
use loopwork_sync_core::{AttachmentKind, NewAttachment};
use sha2::Digest;

use super::*;
use crate::session::{WRITING, write_atomically};

const OUTGOING: &str = "attachments/outgoing";
const CACHE: &str = "attachments/cache";
/// The cache's size budget until the app sets its own.
pub const DEFAULT_CACHE_BUDGET: u64 = 200 << 20;
/// The most bytes one attachment holds (the server's limit for pictures).
pub const MAX_ATTACHMENT_BYTES: usize = 40 << 20;
/// Within one `upload_attachments` call, a pause after a failure up to this long is waited
/// out; a longer one ends the call (the next call resumes).
const WAIT_WITHIN_CALL_MS: i64 = 4_000;
/// The types the server keeps (it sniffs the bytes; this is the device's first check).
const TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "application/pdf"];

/// Told of an upload's progress (bytes the server holds), on the thread uploading.
#[uniffi::export(with_foreign)]
pub trait UploadObserver: Send + Sync {
    fn upload_progress(&self, sha256: String, sent: u64, total: u64);
}

/// Where one attachment's bytes stand on this phone.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum UploadStatus {
    /// Attached elsewhere: the server has (or will have) the bytes; `attachment_file` fetches them.
    Remote,
    /// Waiting for `upload_attachments`.
    Queued,
    /// Partly on the server.
    Sending { sent: u64, total: u64 },
    /// On the server.
    Uploaded,
    /// The server refused the bytes for good (`code`: `hash_mismatch`, `unsupported_type`, ...).
    Failed { code: String },
}

/// An attachment of an order, as the phone shows it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct AttachmentInfo {
    pub sha256: String,
    /// `photo`, `signature` (the owner's, named by the completion) or `file`.
    pub kind: String,
    pub mime: String,
    pub size: Option<i64>,
    pub caption: Option<String>,
    pub by_user_id: String,
    pub at_ms: i64,
    pub upload: UploadStatus,
    /// The bytes on this phone, if they are here (taken here, or downloaded and still cached).
    pub local_path: Option<String>,
}

/// What one `upload_attachments` call did.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct UploadReport {
    /// Uploads that completed in this call.
    pub uploaded: u32,
    /// Uploads still waiting (offline, or pausing after failures).
    pub pending: u32,
    /// Uploads refused for good (listed with their code by `attachments`).
    pub failed: u32,
    /// Bytes sent in this call, the part of any cut-off request included.
    pub bytes_sent: u64,
}

/// The cache's budget and the upload observer, beside the open state.
#[derive(Default)]
pub(crate) struct Files {
    budget: AtomicU64,
    observer: Mutex<Option<Arc<dyn UploadObserver>>>,
    /// One upload run at a time.
    uploading: Mutex<()>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files").field("budget", &self.budget).finish_non_exhaustive()
    }
}

impl Files {
    pub(crate) fn new() -> Files {
        Files { budget: AtomicU64::new(DEFAULT_CACHE_BUDGET), ..Files::default() }
    }
}

#[uniffi::export]
impl Loopwork {
    /// Attaches a photo (or a PDF) to an order, offline: the bytes are kept on this phone and
    /// queued for upload, the reference goes with the next sync. `mime`: `image/jpeg`,
    /// `image/png`, `image/webp` or `application/pdf`. Answers the bytes' SHA-256, which names
    /// the attachment.
    pub fn attach_photo(
        &self,
        order_id: String,
        bytes: Vec<u8>,
        mime: String,
        caption: Option<String>,
    ) -> Result<String, LoopworkError> {
        let kind = AttachmentKind::inferred(&mime);
        self.attach_bytes(&order_id, &bytes, &mime, kind, |replica, id, attachment| {
            replica.attach_with(id, &NewAttachment { caption: caption.clone(), ..attachment }).map(drop)
        })
    }

    /// As [`Loopwork::attach_photo`], from a file the camera wrote (read once, then kept here).
    pub fn attach_photo_file(
        &self,
        order_id: String,
        path: String,
        mime: String,
        caption: Option<String>,
    ) -> Result<String, LoopworkError> {
        let bytes = read_limited(Path::new(&path))?;
        self.attach_photo(order_id, bytes, mime, caption)
    }

    /// Completes an order with the owner's signature, signed on this phone (业主签字确认): the
    /// picture (`image/png` or `image/jpeg`) is kept and queued like a photo, and the completion
    /// names it. Where the organization requires a signature, `complete` is refused with
    /// `signature_required` and this is the way to complete.
    pub fn complete_signed(
        &self,
        order_id: String,
        signature: Vec<u8>,
        text: Option<String>,
    ) -> Result<String, LoopworkError> {
        let mime = match signature.get(..4) {
            Some([0x89, b'P', b'N', b'G']) => "image/png",
            Some([0xff, 0xd8, 0xff, _]) => "image/jpeg",
            _ => return Err(LoopworkError::invalid("a signature is a PNG or JPEG picture")),
        };
        self.attach_bytes(&order_id, &signature, mime, AttachmentKind::Signature, |replica, id, attachment| {
            replica.complete_signed(id, &attachment, text.as_deref()).map(drop)
        })
    }

    /// The order's attachments, each with where its bytes stand on this phone.
    pub fn attachments(&self, order_id: String) -> Result<Vec<AttachmentInfo>, LoopworkError> {
        let id = parse_order(&order_id)?;
        let (attachments, queued) = self.with_replica(|replica| {
            let attachments = replica.order(id)?.attachments();
            let queued = replica.store().uploads()?;
            Ok((attachments, queued))
        })?;
        Ok(attachments
            .into_iter()
            .filter(|a| is_sha256(&a.sha256))
            .map(|a| {
                let upload = match queued.iter().find(|q| q.upload.sha256 == a.sha256) {
                    None => UploadStatus::Remote,
                    Some(q) => match &q.upload.state {
                        UploadState::New => UploadStatus::Queued,
                        UploadState::Sending { offset, .. } => {
                            UploadStatus::Sending { sent: *offset, total: q.upload.length }
                        }
                        UploadState::Done => UploadStatus::Uploaded,
                        UploadState::Failed { code } => UploadStatus::Failed { code: code.clone() },
                    },
                };
                let local = [self.dir.join(OUTGOING).join(&a.sha256), self.dir.join(CACHE).join(&a.sha256)]
                    .into_iter()
                    .find(|p| p.is_file());
                AttachmentInfo {
                    kind: a.kind.code().to_owned(),
                    mime: a.mime,
                    size: a.size,
                    caption: a.caption,
                    by_user_id: a.by.to_string(),
                    at_ms: a.at_ms,
                    upload,
                    local_path: local.map(|p| p.to_string_lossy().into_owned()),
                    sha256: a.sha256,
                }
            })
            .collect())
    }

    /// Sends the queued attachments' bytes, oldest first, each resumed from the byte the server
    /// holds; progress goes to the upload observer. A cut-off connection pauses that upload
    /// (a second, doubling to a minute) and the call moves on; call it again after a sync, or
    /// when the network returns. Nothing is lost by stopping at any point.
    pub fn upload_attachments(&self) -> Result<UploadReport, LoopworkError> {
        let _one = self.files.uploading.lock().unwrap_or_else(|p| p.into_inner());
        let (base, token) = self.api("")?;
        let queued = self.with_replica(|replica| Ok(replica.store().uploads()?))?;
        let mut report = UploadReport::default();
        let waiting: Vec<QueuedUpload> = queued.into_iter().filter(|q| !q.upload.state.is_final()).collect();
        let count = waiting.len() as u32;
        // Requests in a row that got no answer: two, and the network is taken to be gone.
        let mut unanswered = 0;
        for (i, QueuedUpload { mut upload, .. }) in waiting.into_iter().enumerate() {
            let path = self.dir.join(OUTGOING).join(&upload.sha256);
            loop {
                let now = now_ms();
                match upload.next(PART_BYTES, now) {
                    Step::Send(request) => {
                        let Ok(body) = read_range(&path, request.body.clone()) else {
                            // The bytes are gone from this phone (cleared by the system or the
                            // user): nothing to send, ever; the rest of the queue goes on.
                            upload.state = UploadState::Failed { code: "missing_bytes".into() };
                            self.with_replica(|replica| Ok(replica.store().save_upload(&upload)?))?;
                            report.failed += 1;
                            break;
                        };
                        // The server names an upload by a path; a full URL only on this server.
                        let url = if request.path.starts_with('/') {
                            format!("{base}{}", request.path)
                        } else if request.path.starts_with(&format!("{base}/")) {
                            request.path.clone()
                        } else {
                            upload.state = UploadState::Failed { code: "foreign_location".into() };
                            self.with_replica(|replica| Ok(replica.store().save_upload(&upload)?))?;
                            report.failed += 1;
                            break;
                        };
                        report.bytes_sent += body.len() as u64;
                        let mut headers: Vec<HttpHeader> = request.headers.iter().map(|(n, v)| header(n, v)).collect();
                        headers.push(bearer(&token));
                        let answer = self.send(request.method, url, headers, body).ok().map(|r| UploadResponse {
                            code: error_code(&r.body),
                            status: r.status,
                            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                        });
                        if answer.as_ref().is_some_and(|a| a.status == 401) {
                            return Err(LoopworkError::NotSignedIn { detail: "the server refused the token".into() });
                        }
                        unanswered = if answer.is_none() { unanswered + 1 } else { 0 };
                        upload.answer(&request, answer.as_ref(), now_ms());
                        self.with_replica(|replica| Ok(replica.store().save_upload(&upload)?))?;
                        self.progress(&upload);
                        // Twice in a row no answer: the network is gone; the rest waits too.
                        if unanswered >= 2 {
                            report.pending += count - i as u32;
                            return Ok(report);
                        }
                    }
                    Step::Wait { until_ms } if until_ms - now <= WAIT_WITHIN_CALL_MS => {
                        std::thread::sleep(std::time::Duration::from_millis((until_ms - now).max(0) as u64));
                    }
                    Step::Wait { .. } => {
                        report.pending += 1;
                        break;
                    }
                    Step::Done => {
                        report.uploaded += 1;
                        // Sent: now only a cached copy, which the budget may let go.
                        let cache = self.dir.join(CACHE);
                        std::fs::create_dir_all(&cache).map_err(LoopworkError::storage)?;
                        let _ = std::fs::rename(&path, cache.join(&upload.sha256));
                        self.evict(None)?;
                        break;
                    }
                    Step::Failed(_) => {
                        report.failed += 1;
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    /// The bytes of an attachment (or its 320-pixel thumbnail) as a file on this phone: taken
    /// here, cached, or downloaded now (online) into the cache. Its path.
    pub fn attachment_file(&self, order_id: String, sha256: String, thumbnail: bool) -> Result<String, LoopworkError> {
        let id = parse_order(&order_id)?;
        if !is_sha256(&sha256) {
            return Err(LoopworkError::invalid("an attachment is named by its lowercase hex SHA-256"));
        }
        // Taken here and not yet sent: the original is here (also in place of its thumbnail,
        // which only the server makes).
        let outgoing = self.dir.join(OUTGOING).join(&sha256);
        if outgoing.is_file() {
            return Ok(outgoing.to_string_lossy().into_owned());
        }
        let cache = self.dir.join(CACHE);
        let name = if thumbnail { format!("{sha256}.thumb") } else { sha256.clone() };
        let cached = cache.join(&name);
        if let Ok(file) = std::fs::File::options().append(true).open(&cached) {
            // Used now: the last to be let go.
            let _ = file.set_modified(std::time::SystemTime::now());
            return Ok(cached.to_string_lossy().into_owned());
        }
        let suffix = if thumbnail { "/thumbnail" } else { "" };
        let (url, token) = self.api(&format!("/api/v1/orders/{id}/attachments/{sha256}{suffix}"))?;
        let response = self.get(url, vec![bearer(&token)])?;
        if response.status != 200 {
            return Err(json_error(&response));
        }
        // What came is the attachment, not a portal's or a proxy's page: an original carries
        // its name in the ETag (its bytes may differ from the hash: the server removes a
        // picture's metadata), a thumbnail is a JPEG.
        let etag = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("etag")).map(|h| h.value.as_str());
        let genuine = if thumbnail {
            response.body.starts_with(&[0xff, 0xd8, 0xff])
        } else {
            etag.is_some_and(|e| e.starts_with(&format!("\"{sha256}.")))
        };
        if !genuine {
            return Err(LoopworkError::Offline {
                detail: "the answer was not the attachment (a captive portal?)".into(),
            });
        }
        std::fs::create_dir_all(&cache).map_err(LoopworkError::storage)?;
        write_atomically(&cached, &response.body)?;
        self.evict(Some(&cached))?;
        Ok(cached.to_string_lossy().into_owned())
    }

    /// The most bytes downloaded and sent attachments may take on this phone (default 200 MiB).
    /// Unsent attachments do not count and are never let go.
    pub fn set_cache_budget(&self, bytes: u64) -> Result<(), LoopworkError> {
        self.files.budget.store(bytes, Ordering::Relaxed);
        self.evict(None)
    }

    /// Where upload progress goes (`None`: nowhere).
    pub fn set_upload_observer(&self, observer: Option<Arc<dyn UploadObserver>>) {
        *self.files.observer.lock().unwrap_or_else(|p| p.into_inner()) = observer;
    }
}

impl Loopwork {
    /// Keeps the bytes, queues their upload, then makes the edit that references them; a
    /// refused edit takes the upload back out of the queue.
    fn attach_bytes(
        &self,
        order_id: &str,
        bytes: &[u8],
        mime: &str,
        kind: AttachmentKind,
        edit: impl FnOnce(&mut Replica<SqliteStore>, OrderId, NewAttachment) -> Result<(), loopwork_sync_core::CoreError>,
    ) -> Result<String, LoopworkError> {
        let id = parse_order(order_id)?;
        if !TYPES.contains(&mime) {
            return Err(LoopworkError::invalid(format!("`{}` is not one of {}", truncate(mime), TYPES.join(", "))));
        }
        if bytes.is_empty() || bytes.len() > MAX_ATTACHMENT_BYTES {
            return Err(LoopworkError::invalid(format!("an attachment holds 1 to {MAX_ATTACHMENT_BYTES} bytes")));
        }
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        let outgoing = self.dir.join(OUTGOING);
        let path = outgoing.join(&sha256);
        let length = bytes.len() as u64;
        let attachment = NewAttachment {
            sha256: sha256.clone(),
            mime: mime.to_owned(),
            kind,
            size: Some(length as i64),
            caption: None,
        };
        let queued = QueuedUpload {
            order: id,
            mime: mime.to_owned(),
            queued_at_ms: now_ms(),
            upload: Upload::new(&sha256, length, kind),
        };
        // Under the state lock, so that two attachments of the same bytes do not cross.
        self.with_replica(|replica| {
            let kept = path.is_file();
            if !kept {
                std::fs::create_dir_all(&outgoing).map_err(LoopworkError::storage)?;
                write_atomically(&path, bytes)?;
            }
            let added = replica.store().queue_upload(&queued)?;
            if let Err(e) = edit(replica, id, attachment) {
                if added {
                    replica.store().forget_upload(&sha256)?;
                }
                if !kept {
                    let _ = std::fs::remove_file(&path);
                }
                return Err(e.into());
            }
            Ok(())
        })?;
        self.notify(vec![order_id.to_owned()], false);
        Ok(sha256)
    }

    fn progress(&self, upload: &Upload) {
        let observer = self.files.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(observer) = observer {
            observer.upload_progress(upload.sha256.clone(), upload.sent(), upload.length);
        }
    }

    /// Lets the least recently used cached files go until the cache fits its budget (`keep`:
    /// the file just fetched, kept even when alone it is over).
    fn evict(&self, keep: Option<&Path>) -> Result<(), LoopworkError> {
        let budget = self.files.budget.load(Ordering::Relaxed);
        let Ok(entries) = std::fs::read_dir(self.dir.join(CACHE)) else { return Ok(()) };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let meta = e.metadata().ok()?;
                // A download being written is not the cache's yet.
                let partial = e.path().extension().is_some_and(|x| x == WRITING);
                (meta.is_file() && !partial)
                    .then(|| (meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= budget {
                break;
            }
            if Some(path.as_path()) == keep {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                // Let go by a concurrent call already.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LoopworkError::storage(e)),
            }
            total -= len;
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The error code of a JSON error body (`{"error": {"code": …}}`), if any.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("error")?.get("code")?.as_str().map(str::to_owned)
}

fn read_limited(path: &Path) -> Result<Vec<u8>, LoopworkError> {
    let file = std::fs::File::open(path).map_err(LoopworkError::storage)?;
    let mut bytes = Vec::new();
    file.take(MAX_ATTACHMENT_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(LoopworkError::storage)?;
    Ok(bytes)
}

fn read_range(path: &Path, range: std::ops::Range<u64>) -> Result<Vec<u8>, LoopworkError> {
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let mut file = std::fs::File::open(path).map_err(LoopworkError::storage)?;
    file.seek(SeekFrom::Start(range.start)).map_err(LoopworkError::storage)?;
    let mut bytes = vec![0; (range.end - range.start) as usize];
    file.read_exact(&mut bytes).map_err(LoopworkError::storage)?;
    Ok(bytes)
}
