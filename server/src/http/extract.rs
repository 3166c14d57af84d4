//! The JSON API's extractors: a body or a query string whose rejection is the one error
//! envelope ([`ApiError`]) with a precise message, on every route.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Json, RequestExt};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest JSON body a route takes (64 KiB).
pub const MAX_JSON_BODY: usize = 64 << 10;

/// A JSON body whose rejection is an [`ApiError`] with a precise message.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + 'static> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let Json(value) = req.extract::<Json<T>, _>().await.map_err(|e: JsonRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                // A body with no length given, cut off at the limit as it arrived.
                return ApiError::body_too_large(MAX_JSON_BODY);
            }
            ApiError::invalid("invalid_json", e.body_text(), "请求内容不是有效的 JSON 或缺少必填项")
        })?;
        Ok(Body(value))
    }
}

/// A query string whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| ApiError::invalid("invalid_query", e.body_text(), "查询参数无效"))?;
        Ok(Params(value))
    }
}
