//! Attachments' bytes, downloaded through the order that references them (docs/attachments.md):
//! - `GET /api/v1/orders/{id}/attachments/{sha256}`: the bytes as the server keeps them (a
//!   picture's metadata stripped but for capture time and orientation);
//! - `GET /api/v1/orders/{id}/attachments/{sha256}/thumbnail`: a picture's JPEG thumbnail.
//!
//! Only a principal whose scope holds the order may download, and only a blob the order's
//! document references now (a compensated reference no longer does). Streamed from the blob
//! store: memory does not grow with the file.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::store::Referenced;

/// `GET /api/v1/orders/{id}/attachments/{sha256}`.
pub async fn original(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((id, sha256)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download(&state, &principal, &id, &sha256, &headers, false).await
}

/// `GET /api/v1/orders/{id}/attachments/{sha256}/thumbnail`.
pub async fn thumbnail(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((id, sha256)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download(&state, &principal, &id, &sha256, &headers, true).await
}

async fn download(
    state: &AppState,
    principal: &crate::replication::Principal,
    id: &str,
    sha256: &str,
    headers: &HeaderMap,
    thumbnail: bool,
) -> Result<Response, ApiError> {
    let order = crate::http::desk::parse_order(id)?;
    require_sha256(sha256)?;
    crate::auth::require_served(state, principal, order).await?;
    let blob = match state.db.referenced(&principal.org, order, sha256).await? {
        Referenced::No => return Err(ApiError::not_found("attachment")),
        Referenced::NotUploaded => return Err(not_uploaded()),
        Referenced::Blob(blob) => blob,
    };
    if thumbnail && !blob.thumbnail {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_thumbnail",
            "this attachment has no thumbnail (not a picture, or one that could not be decoded): download it",
            "该附件无缩略图(非图片或无法解码),请下载原件",
        ));
    }
    // The bytes under a name change only if the server's way of keeping pictures does (the
    // version in the tag): a client holding them asks, and need not fetch them again.
    let etag = format!("\"{sha256}{}.{KEPT_VERSION}\"", if thumbnail { "-thumbnail" } else { "" });
    let cached = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
    });
    let blobs = state.blobs.as_ref().ok_or_else(crate::http::uploads::no_blob_store)?;
    let variant = match (cached, thumbnail) {
        (true, _) => "not_modified",
        (false, true) => "thumbnail",
        (false, false) => "original",
    };
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // Each download holds one of a bounded number of places while it sends: slow readers
        // cannot take every connection the server serves.
        let Ok(place) = state.downloads.clone().try_acquire_owned() else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_downloads",
                format!("{MAX_DOWNLOADS} downloads are being sent: try again shortly"),
                "下载请求过多,请稍后再试",
            ));
        };
        let Some(got) =
            blobs.open(&principal.org, sha256, thumbnail).await.map_err(crate::http::uploads::store_failed)?
        else {
            tracing::warn!(sha256, thumbnail, "a recorded blob is missing from the blob store");
            return Err(not_uploaded());
        };
        let length = got.meta.size;
        let stream = got.into_stream().map(move |chunk| {
            let _held = &place;
            chunk.map_err(std::io::Error::other)
        });
        let mut response = Body::from_stream(stream).into_response();
        let mime = if thumbnail { "image/jpeg" } else { blob.mime.as_str() };
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(mime).map_err(|_| ApiError::internal())?);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        // Pictures show in the page; anything else (a PDF) is saved, never rendered here.
        let disposition = if crate::blobs::is_picture(mime) { "inline" } else { "attachment" };
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
        response
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?);
    // Kept by the browser, but asked for each time: a signed-out or reassigned user's browser
    // shows nothing the server would no longer send.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    state.metrics.downloads.with_label_values(&[variant]).inc();
    Ok(response)
}

/// Downloads sent at once, per process.
pub const MAX_DOWNLOADS: usize = 256;

/// The version of how pictures are kept (`loopwork_pictures`), in every download's `ETag`.
const KEPT_VERSION: u32 = 1;

/// 400 `invalid_sha256` unless `text` names a blob (64 lowercase hex digits).
pub(crate) fn require_sha256(text: &str) -> Result<(), ApiError> {
    if crate::blobs::is_sha256(text) {
        return Ok(());
    }
    Err(ApiError::invalid(
        "invalid_sha256",
        "an attachment is named by its SHA-256 (64 lowercase hex digits)",
        "附件以 sha256 命名(64 位小写十六进制)",
    ))
}

fn not_uploaded() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_uploaded",
        "the order references this attachment, but its bytes have not reached the server yet",
        "工单引用了该附件,但其内容尚未上传到服务器",
    )
}
