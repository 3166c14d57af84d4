//! Resumable uploads of attachments' bytes (docs/attachments.md): tus 1.0 core with its
//! `creation` and `termination` extensions, so that standard tus clients (tus-js-client,
//! TUSKit, tus-android-client) work, under the API's bearer token.
//!
//! - `OPTIONS /api/v1/uploads`: what the server speaks (`Tus-Version`, `Tus-Extension`,
//!   `Tus-Max-Size`).
//! - `POST /api/v1/uploads` with `Upload-Length` and `Upload-Metadata` (`sha256`, the bytes'
//!   lowercase hex SHA-256, required; `kind`: `photo` (default), `signature` or `file`): 201
//!   with `Location` and `Upload-Offset` (the length at once when the organization holds the
//!   blob already: the same photo is stored once).
//! - `HEAD /api/v1/uploads/{id}`: `Upload-Offset`, the bytes the server holds (resume there).
//! - `PATCH /api/v1/uploads/{id}` (`Content-Type: application/offset+octet-stream`,
//!   `Upload-Offset` = what the server holds): the bytes; what arrives before a dropped
//!   connection is kept. The last byte assembles the blob: kept if its bytes hash to `sha256`
//!   and are a type the kind takes (sniffed from the bytes), else the upload fails.
//! - `DELETE /api/v1/uploads/{id}`: ends an unfinished upload.
//!
//! Every response carries `Tus-Resumable: 1.0.0`; errors are the API's JSON errors.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::AppState;
use crate::auth::Authenticated;
use crate::blobs::Blobs;
use crate::error::ApiError;
use crate::store::{BlobRecord, ChunkRecord, UploadRecord};

/// The tus protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The largest attachment, in bytes.
pub const MAX_UPLOAD_BYTES: i64 = loopwork_sync_core::upload::MAX_FILE_BYTES as i64;
/// Unfinished uploads one user may hold at once.
pub const MAX_OPEN_UPLOADS: i64 = 200;

/// Adds `Tus-Resumable` to every response of the uploads' routes.
pub async fn tus_resumable(mut response: Response) -> Response {
    response.headers_mut().insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    response
}

pub(crate) fn store_failed(error: String) -> ApiError {
    tracing::error!(%error, "blob store");
    ApiError::internal()
}

fn blobs(state: &AppState) -> Result<&Blobs, ApiError> {
    state.blobs.as_ref().ok_or_else(no_blob_store)
}

/// 503: the server keeps no attachments.
pub(crate) fn no_blob_store() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_blob_store",
        "this server keeps no attachments (no blob store)",
        "服务器未配置附件存储",
    )
}

/// Requests must say the protocol version they speak (tus: 412 otherwise).
fn require_tus(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get("tus-resumable").and_then(|v| v.to_str().ok()) == Some(TUS_VERSION) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "tus_version",
        "send Tus-Resumable: 1.0.0 (the tus version this server speaks)",
        "请求须带 Tus-Resumable: 1.0.0",
    ))
}

/// Adds `Tus-Version` to a 412 (tus: the versions the server speaks).
pub async fn tus_version_on_412(mut response: Response) -> Response {
    if response.status() == StatusCode::PRECONDITION_FAILED {
        response.headers_mut().insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    }
    response
}

fn number(headers: &HeaderMap, name: &str, code: &'static str) -> Result<i64, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::invalid(code, format!("{name} is a non-negative integer"), format!("{name} 须为非负整数"))
        })
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs.
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "invalid_metadata",
            "Upload-Metadata is `key base64value` pairs separated by commas",
            "Upload-Metadata 格式不正确",
        )
    };
    let Some(raw) = headers.get("upload-metadata") else { return Ok(Vec::new()) };
    let raw = raw.to_str().map_err(|_| bad())?;
    if raw.len() > 4096 {
        return Err(bad());
    }
    let mut pairs = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, ' ');
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        if key.is_empty() || pairs.iter().any(|(k, _)| k == key) {
            return Err(bad());
        }
        let value = base64::engine::general_purpose::STANDARD.decode(value).map_err(|_| bad())?;
        pairs.push((key.to_owned(), String::from_utf8(value).map_err(|_| bad())?));
    }
    Ok(pairs)
}

fn location(id: &str) -> String {
    format!("/api/v1/uploads/{id}")
}

/// `OPTIONS /api/v1/uploads`.
pub async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            ("tus-version", TUS_VERSION.to_owned()),
            ("tus-extension", "creation,termination".to_owned()),
            ("tus-max-size", MAX_UPLOAD_BYTES.to_string()),
        ],
    )
        .into_response()
}

/// `POST /api/v1/uploads`.
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let blobs = blobs(&state)?;
    let length = number(&headers, "upload-length", "invalid_upload_length")?;
    if length == 0 {
        return Err(ApiError::invalid("invalid_upload_length", "an attachment has at least one byte", "附件不能为空"));
    }
    if length > MAX_UPLOAD_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("an attachment is 1 to {MAX_UPLOAD_BYTES} bytes"),
            format!("附件大小须为 1 至 {MAX_UPLOAD_BYTES} 字节"),
        ));
    }
    let meta = metadata(&headers)?;
    let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let sha256 = get("sha256").unwrap_or_default();
    if !crate::blobs::is_sha256(sha256) {
        return Err(ApiError::invalid(
            "invalid_sha256",
            "Upload-Metadata names the bytes' SHA-256 (`sha256`, 64 lowercase hex digits)",
            "Upload-Metadata 须含 sha256(64 位小写十六进制)",
        ));
    }
    let kind = get("kind").unwrap_or("photo");
    if !matches!(kind, "photo" | "signature" | "file") {
        return Err(ApiError::invalid(
            "invalid_kind",
            "kind is photo, signature or file",
            "kind 须为 photo、signature 或 file",
        ));
    }
    // The organization's limit (the `attachment-limits` setting; at most the server's).
    let limits =
        crate::settings::read::<loopwork_sync_core::upload::AttachmentLimits>(&*state.db, &principal.org).await?;
    let (max, what, what_zh) = match kind {
        "file" => (limits.max_file_bytes, "a file", "文件"),
        _ => (limits.max_picture_bytes, "a photo or a signature", "照片或签名"),
    };
    if length as u64 > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{what} is at most {max} bytes here"),
            format!("{what_zh}不得超过 {max} 字节"),
        ));
    }
    let now = state.clock.now_ms();
    // The same bytes stored once: an organization that holds the blob, as a type this kind
    // takes, has the upload complete (a PDF stored as a file is no signature: that upload goes
    // on, and its type is judged when its bytes are in).
    let held = match state.db.blob(&principal.org, sha256).await? {
        Some(blob) => {
            blob.size == length && crate::blobs::accepted(kind, &blob.mime) && blobs.has(&principal.org, sha256).await
        }
        None => false,
    };
    let upload = UploadRecord {
        id: uuid::Uuid::now_v7().simple().to_string(),
        org: principal.org.clone(),
        user: principal.user.to_string(),
        sha256: sha256.to_owned(),
        kind: kind.to_owned(),
        length,
        received: if held { length } else { 0 },
        state: if held { "complete" } else { "open" }.to_owned(),
        fault: None,
    };
    if !state.db.create_upload(&upload, MAX_OPEN_UPLOADS, now).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_uploads",
            format!("at most {MAX_OPEN_UPLOADS} unfinished uploads at once: finish or end some"),
            format!("未完成的上传最多 {MAX_OPEN_UPLOADS} 个"),
        ));
    }
    if held {
        // Stored again, in effect: its grace period starts over, so that it is not collected
        // before the reference this upload is for arrives.
        state.db.touch_blob(&principal.org, sha256, now).await?;
    }
    state.metrics.uploads.with_label_values(&[if held { "deduplicated" } else { "created" }]).inc();
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location(&upload.id)),
            ("upload-offset".parse().expect("a header name"), upload.received.to_string()),
        ],
    )
        .into_response())
}

/// The caller's own upload (anyone else's answers 404, as if there were none).
async fn own(state: &AppState, principal: &crate::replication::Principal, id: &str) -> Result<UploadRecord, ApiError> {
    match state.db.upload(&principal.org, id).await? {
        Some(upload) if upload.user == principal.user.to_string() => Ok(upload),
        _ => Err(ApiError::not_found("upload")),
    }
}

fn offsets(upload: &UploadRecord, status: StatusCode) -> Response {
    (
        status,
        [
            ("upload-offset", upload.received.to_string()),
            ("upload-length", upload.length.to_string()),
            ("cache-control", "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// 409 `offset_mismatch`, with the bytes the server holds (where to send from).
fn offset_mismatch(received: i64, en: String, zh: String) -> Response {
    let mut refused = ApiError::new(StatusCode::CONFLICT, "offset_mismatch", en, zh).into_response();
    refused.headers_mut().insert("upload-offset", HeaderValue::from(received));
    refused
}

/// `HEAD /api/v1/uploads/{id}`.
pub async fn head(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let mut upload = own(&state, &principal, &id).await?;
    // A request still receiving this upload's bytes (its client gone, and the server about to
    // notice) would make the offset stale: the client would send again what is arriving. Its
    // end is waited for, a few seconds at most.
    if state.uploading.wait_idle(&upload.id, HEAD_WAITS).await {
        upload = own(&state, &principal, &id).await?;
    }
    if upload.state == "failed" {
        // Not an offset a client would take for a finished upload (tus: 410 for an upload
        // that is no more); the fault is said too.
        let mut gone = ended(&upload).into_response();
        if let Some(fault) = upload.fault.as_deref().and_then(|f| HeaderValue::from_str(f).ok()) {
            gone.headers_mut().insert("loopwork-upload-fault", fault);
        }
        return Ok(gone);
    }
    if upload.state == "open" && upload.received == upload.length {
        // Every byte arrived but the blob was not made (a failure cut it off): made now.
        return finish(&state, upload, StatusCode::OK).await;
    }
    if upload.state == "open" && upload.received > 0 {
        // A client asking where to go on from: an upload resumed (tus's way).
        state.metrics.uploads.with_label_values(&["resumed"]).inc();
    }
    Ok(offsets(&upload, StatusCode::OK))
}

fn ended(upload: &UploadRecord) -> ApiError {
    let fault = upload.fault.clone().unwrap_or_default();
    ApiError::new(
        StatusCode::GONE,
        "upload_failed",
        format!("the upload failed ({fault}): start a new one"),
        format!("上传失败({fault}),请重新上传"),
    )
}

/// `PATCH /api/v1/uploads/{id}`.
pub async fn patch(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let upload = match ready(&state, &principal, &id, &headers).await {
        Ok(Ok(upload)) if upload.received == upload.length => {
            drain(&state, body).await;
            return finish(&state, upload, StatusCode::NO_CONTENT).await;
        }
        Ok(Ok(upload)) => upload,
        // An answer before the bytes: they are read (up to a bound) and dropped first, so that
        // the client, still sending, reads the answer rather than a closed connection.
        Ok(Err(answer)) => {
            drain(&state, body).await;
            return Ok(answer);
        }
        Err(refused) => {
            drain(&state, body).await;
            return Err(refused);
        }
    };
    // One request at a time adds to an upload (in this process): another answers 423, which
    // tus clients retry.
    let Some(guard) = Receiving::take(&state, &upload.id) else {
        drain(&state, body).await;
        return Err(busy());
    };
    // Received by a task of its own: when the client's connection drops, the server stops
    // serving this request, but the task still keeps what arrived (the client resumes after it).
    let task = tokio::spawn(async move {
        let _guard = guard;
        receive(state.clone(), principal, upload, body).await
    });
    task.await.map_err(|e| store_failed(e.to_string()))?
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::LOCKED,
        "upload_busy",
        "another request is adding to this upload: try again when it is done",
        "该上传正在接收另一请求的内容,请稍后重试",
    )
}

/// The uploads receiving a request's bytes in this process.
#[derive(Debug, Default)]
pub struct Uploading(std::sync::Mutex<std::collections::HashSet<String>>);

/// How long a `HEAD` waits for a request still receiving the upload's bytes.
const HEAD_WAITS: std::time::Duration = std::time::Duration::from_secs(3);

impl Uploading {
    fn busy(&self, id: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    /// Waits (at most `bound`) until no request in this process receives the upload: whether
    /// one did when asked.
    async fn wait_idle(&self, id: &str, bound: std::time::Duration) -> bool {
        if !self.busy(id) {
            return false;
        }
        let until = tokio::time::Instant::now() + bound;
        while self.busy(id) && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }
}

/// An upload taken for one request's bytes, given back when dropped.
struct Receiving {
    state: AppState,
    id: String,
}

impl Receiving {
    fn take(state: &AppState, id: &str) -> Option<Receiving> {
        let mut taken = state.uploading.0.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = taken.insert(id.to_owned());
        state.metrics.uploads_in_progress.set(taken.len() as i64);
        fresh.then(|| Receiving { state: state.clone(), id: id.to_owned() })
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let mut taken = self.state.uploading.0.lock().unwrap_or_else(|p| p.into_inner());
        taken.remove(&self.id);
        self.state.metrics.uploads_in_progress.set(taken.len() as i64);
    }
}

/// Makes the blob of an upload whose every byte arrived; answers `status` with its offsets.
async fn finish(state: &AppState, mut upload: UploadRecord, status: StatusCode) -> Result<Response, ApiError> {
    let Some(_guard) = Receiving::take(state, &upload.id) else { return Err(busy()) };
    let blobs = blobs(state)?;
    complete(state, blobs, &mut upload).await?;
    Ok(offsets(&upload, status))
}

/// What the server reads of a refused `PATCH`'s bytes before answering.
const DRAINED: usize = 16 << 20;

async fn drain(state: &AppState, body: Body) {
    let mut stream = body.into_data_stream();
    let mut read = 0;
    while let Some(Ok(frame)) = futures_util::StreamExt::next(&mut stream).await {
        read += frame.len();
        if read > DRAINED {
            break;
        }
    }
    state.metrics.upload_bytes.with_label_values(&["discarded"]).inc_by(read as u64);
}

/// The open upload a `PATCH` may add to, or the answer it gets without reading its bytes.
async fn ready(
    state: &AppState,
    principal: &crate::replication::Principal,
    id: &str,
    headers: &HeaderMap,
) -> Result<Result<UploadRecord, Response>, ApiError> {
    require_tus(headers)?;
    blobs(state)?;
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/offset+octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_content_type",
            "a PATCH's Content-Type is application/offset+octet-stream",
            "PATCH 请求的 Content-Type 须为 application/offset+octet-stream",
        ));
    }
    let offset = number(headers, "upload-offset", "invalid_upload_offset")?;
    let upload = own(state, principal, id).await?;
    if upload.state == "failed" {
        return Err(ended(&upload));
    }
    if offset != upload.received || upload.state == "complete" && offset != upload.length {
        return Ok(Err(offset_mismatch(
            upload.received,
            format!("the server holds {} bytes: send from there", upload.received),
            format!("服务器已有 {} 字节,请从此处续传", upload.received),
        )));
    }
    if upload.state == "complete" {
        return Ok(Err(offsets(&upload, StatusCode::NO_CONTENT)));
    }
    Ok(Ok(upload))
}

/// The bytes of a `PATCH` into a chunk, recorded; the blob made when they were the last.
async fn receive(
    state: AppState,
    principal: crate::replication::Principal,
    mut upload: UploadRecord,
    body: Body,
) -> Result<Response, ApiError> {
    let blobs = blobs(&state)?;
    let id = upload.id.clone();
    let room = upload.length - upload.received;
    let (object, length, over) =
        blobs.write_chunk(&upload.id, upload.received, body.into_data_stream(), room).await.map_err(store_failed)?;
    if over {
        blobs.delete_object(&object).await;
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "beyond_length",
            "the bytes go past the upload's length",
            "上传内容超出声明的长度",
        ));
    }
    if length > 0 {
        let chunk = ChunkRecord { start: upload.received, length, object: object.clone() };
        if !state.db.add_chunk(&upload.id, &chunk, state.clock.now_ms()).await? {
            // Another request's chunk at this offset came first.
            blobs.delete_object(&object).await;
            let current = own(&state, &principal, &id).await?;
            return Ok(offset_mismatch(
                current.received,
                "another request sent these bytes first".into(),
                "另一请求已先上传这些内容".into(),
            ));
        }
        upload.received += length;
        state.metrics.upload_bytes.with_label_values(&["received"]).inc_by(length as u64);
    } else {
        blobs.delete_object(&object).await;
    }
    if upload.received == upload.length {
        complete(&state, blobs, &mut upload).await?;
    }
    Ok(offsets(&upload, StatusCode::NO_CONTENT))
}

/// The last byte arrived: the chunks become the blob, or the upload fails.
async fn complete(state: &AppState, blobs: &Blobs, upload: &mut UploadRecord) -> Result<(), ApiError> {
    let chunks: Vec<String> = state.db.chunks(&upload.id).await?.into_iter().map(|c| c.object).collect();
    let verdict =
        blobs.assemble(&upload.org, &upload.id, &chunks, &upload.sha256, &upload.kind).await.map_err(store_failed)?;
    let now = state.clock.now_ms();
    let recorded = match &verdict {
        Ok(kept) => {
            let blob = BlobRecord {
                sha256: upload.sha256.clone(),
                size: upload.length,
                mime: kept.mime.clone(),
                created_at: now,
                thumbnail: kept.thumbnail,
            };
            state.db.finish_upload(&upload.id, Ok(&blob), &upload.user, now).await
        }
        Err(refusal) => state.db.finish_upload(&upload.id, Err(refusal.code()), &upload.user, now).await,
    };
    recorded?;
    // The verdict is recorded: the chunks are no longer needed to make it again.
    for chunk in &chunks {
        blobs.delete_object(chunk).await;
    }
    let outcome = match &verdict {
        Ok(_) => "completed",
        Err(refusal) => refusal.code(),
    };
    state.metrics.uploads.with_label_values(&[outcome]).inc();
    match verdict {
        Ok(kept) => {
            state.metrics.upload_bytes.with_label_values(&["stored"]).inc_by(kept.size as u64);
            if let Some(seconds) = kept.picture_seconds {
                state.metrics.picture_seconds.observe(seconds);
            }
            upload.state = "complete".into();
            Ok(())
        }
        Err(refusal) => {
            let (status, en, zh) = match refusal {
                crate::blobs::Refusal::HashMismatch => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the bytes do not hash to the declared sha256: the upload failed, start a new one",
                    "内容与声明的 sha256 不符,上传失败,请重新上传",
                ),
                crate::blobs::Refusal::UnsupportedType => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the bytes are not a type this kind of attachment takes (photos and signatures: JPEG, PNG, WebP; files: those and PDF)",
                    "附件类型不受支持(照片与签名:JPEG、PNG、WebP;文件另可 PDF)",
                ),
                crate::blobs::Refusal::PictureTooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a picture is at most 40 MiB, even as a file",
                    "图片不得超过 40 MiB(作为文件上传亦然)",
                ),
                crate::blobs::Refusal::UnreadablePicture => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the picture's structure cannot be read, so its metadata cannot be removed: send it again as the camera saved it",
                    "图片结构无法读取,无法去除其元数据,请重新上传原图",
                ),
            };
            Err(ApiError::new(status, refusal.code(), en, zh))
        }
    }
}

/// `DELETE /api/v1/uploads/{id}`: an unfinished upload ends, its bytes go.
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let blobs = blobs(&state)?;
    let upload = own(&state, &principal, &id).await?;
    if upload.state == "open" {
        for chunk in state.db.chunks(&upload.id).await? {
            blobs.delete_object(&chunk.object).await;
        }
        state.db.delete_upload(&upload.id).await?;
        state.metrics.uploads.with_label_values(&["ended"]).inc();
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
