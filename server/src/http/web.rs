//! The pages the server serves itself (docs/web.md): the dispatcher desk at `/`, the owner's H5
//! page at `/h5`, their assets under `/assets/`, and the API's OpenAPI document at
//! `/openapi.json`. Everything is embedded in the binary at build time; there is no front-end
//! build step and nothing is fetched from elsewhere.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// (file name, content type, content)
const ASSETS: &[(&str, &str, &str)] = &[
    ("admin.js", "text/javascript; charset=utf-8", include_str!("../../web/admin.js")),
    ("chats.js", "text/javascript; charset=utf-8", include_str!("../../web/chats.js")),
    ("equipment.js", "text/javascript; charset=utf-8", include_str!("../../web/equipment.js")),
    ("incidents.js", "text/javascript; charset=utf-8", include_str!("../../web/incidents.js")),
    ("photos.js", "text/javascript; charset=utf-8", include_str!("../../web/photos.js")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("../../web/common.js")),
    ("desk.js", "text/javascript; charset=utf-8", include_str!("../../web/desk.js")),
    ("h5.js", "text/javascript; charset=utf-8", include_str!("../../web/h5.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../web/style.css")),
];

/// Pages change with the binary: the browser revalidates each load.
fn page(html: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

pub async fn desk() -> Response {
    page(include_str!("../../web/desk.html"))
}

pub async fn h5() -> Response {
    page(include_str!("../../web/h5.html"))
}

pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) =
        ASSETS.iter().find(|(file, _, _)| *file == name).ok_or_else(|| ApiError::not_found("asset"))?;
    let mut response = ([(header::CONTENT_TYPE, *content_type)], *body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}

/// A QR code of `link` as SVG (an order's dispatch slip, an asset's sticker): a link, not the
/// thing, so that scanning tells nothing without signing in.
pub fn qr_svg(link: &str) -> Result<Response, ApiError> {
    let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| ApiError::internal())?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(160, 160).quiet_zone(true).build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, max-age=3600")], svg)
        .into_response())
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::OPENAPI.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths `http::router` routes (read from its source), and those the document describes.
    fn routed() -> std::collections::BTreeSet<String> {
        let source = include_str!("mod.rs");
        let router = &source
            [source.find("pub fn router(").expect("router")..source.find("pub fn metrics_router(").expect("metrics")];
        [router, include_str!("settings.rs")]
            .concat()
            .split(".route(")
            .skip(1)
            .map(|rest| {
                let path = rest.trim_start().strip_prefix('"').expect("a route's path");
                path[..path.find('"').expect("closing quote")].to_owned()
            })
            .collect()
    }

    #[test]
    fn the_openapi_document_describes_every_route_and_no_other() {
        let doc = super::super::openapi::document();
        assert_eq!(doc["openapi"], "3.1.0");
        let described: std::collections::BTreeSet<String> =
            doc["paths"].as_object().expect("paths").keys().cloned().collect();
        let routed = routed();
        assert!(routed.len() > 30, "{routed:?}");
        assert_eq!(described, routed, "paths in openapi.json vs routes in http/");
        for (path, operations) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                assert!(operation["summary"].is_string(), "{method} {path} has no summary");
                assert!(operation["responses"]["4XX"].is_object(), "{method} {path} documents no error");
            }
        }
    }

    #[test]
    fn every_asset_is_embedded_and_not_empty() {
        for (name, _, body) in ASSETS {
            assert!(body.len() > 100, "{name} is empty");
        }
    }
}
