//! The HTTP layer's one error: a stable machine-readable code, an HTTP status, and messages in
//! zh-CN and English. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loopwork_sync_core::CoreError;
use loopwork_sync_core::protocol::{CONTENT_TYPE, ErrorFrame, FrameError};

/// Every JSON error's body: `{"error": {"code", "message", "message_zh"}}`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable (docs/errors in the API guide).
    pub code: &'static str,
    /// English.
    pub message: String,
    /// Chinese (zh-CN).
    pub message_zh: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message_en: String,
    pub message_zh: String,
    /// Answer as a binary sync frame rather than JSON.
    pub binary: bool,
    /// Seconds after which trying again may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        ApiError { status, code, message_en: en.into(), message_zh: zh.into(), binary: false, retry_after: None }
    }

    pub fn binary(mut self) -> Self {
        self.binary = true;
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Too many attempts: wait `seconds` (429 with `Retry-After`).
    pub fn throttled(seconds: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many attempts; try again in {seconds} s"),
            format!("尝试次数过多,请 {seconds} 秒后再试"),
        )
        .retry_after(seconds)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in again: the token is missing, unknown or revoked",
            "请重新登录:令牌缺失、无效或已被吊销",
        )
    }

    pub fn bad_credentials() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "bad_credentials", "wrong login or password", "账号或密码错误")
    }

    pub fn forbidden(en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", en, zh)
    }

    /// An order set aside because its stored history does not load (see
    /// `Database::load_stored`): 409, never a 500 again and again.
    pub fn quarantined(order: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "order_quarantined",
            format!("order {order}'s stored history is damaged; it is set aside until an administrator repairs it"),
            "该工单的存储记录已损坏,已隔离,待管理员修复",
        )
    }

    pub fn login_taken() -> Self {
        Self::new(StatusCode::CONFLICT, "login_taken", "that login is taken", "该账号已存在")
    }

    pub fn out_of_scope(order: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "out_of_scope",
            format!("order {order} is outside what this device may write"),
            format!("工单 {order} 不在本设备的权限范围内"),
        )
    }

    pub fn invalid(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, en, zh)
    }

    /// A request body over its route's limit (`limit` bytes).
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over its limit of {limit} bytes"),
            "请求体超出大小限制",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"), "未找到")
    }

    pub fn upgrade_required(version: u8) -> Self {
        Self::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            format!("sync protocol version {version} is not supported; update the app"),
            "当前App版本过旧,请升级后再同步",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; try again",
            "服务器内部错误,请稍后重试",
        )
    }

    /// The process is shutting down: try another, or again shortly.
    pub fn draining() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down; try again",
            "服务器正在停止,请稍后重试",
        )
        .retry_after(1)
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database is unavailable; try again",
            "数据库暂不可用,请稍后重试",
        )
    }
}

impl From<FrameError> for ApiError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::UnsupportedVersion(v) => ApiError::upgrade_required(v),
            FrameError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is decoding too many large requests at once; try again",
                "服务器正忙,请稍后重试",
            )
            .retry_after(1),
            FrameError::TooLarge(what) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request exceeds a limit ({what})"),
                "请求超出大小限制",
            ),
            other => ApiError::invalid(
                "malformed_frame",
                format!("the sync frame is unreadable: {other}"),
                "同步数据格式错误",
            ),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Document(d) => ApiError::invalid(
                "invalid_change",
                format!("the changes do not make a valid work order: {d}"),
                "提交的修改无法构成有效工单",
            ),
            CoreError::InvalidInput(m) => ApiError::invalid("invalid_input", m, "输入无效"),
            CoreError::Refused(why) => {
                ApiError::new(StatusCode::CONFLICT, "refused", why.message_en(), why.message_zh())
            }
            other => {
                tracing::error!(error = %other, "core error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = if self.binary {
            let frame = ErrorFrame { code: self.code.into(), message_en: self.message_en, message_zh: self.message_zh };
            let mut response = (self.status, frame.encode()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        } else {
            let body = ErrorBody {
                error: ErrorDetail { code: self.code, message: self.message_en, message_zh: self.message_zh },
            };
            (self.status, axum::Json(body)).into_response()
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod store_errors {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn each_store_error_is_answered_with_its_documented_code() {
        let order: loopwork_sync_core::OrderId = "7d0c4d2e-9a51-4a59-9d4b-6a9f0f0e2b11".parse().expect("id");
        let cases = [
            (StoreError::from(sqlx::Error::PoolTimedOut), StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            (StoreError::from(sqlx::Error::RowNotFound), StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            (StoreError::corrupt("role", "`janitor`"), StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            (StoreError::Task("panicked".into()), StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            (StoreError::WriterStopped, StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            (StoreError::Quarantined(order), StatusCode::CONFLICT, "order_quarantined"),
            (StoreError::OutOfScope(order), StatusCode::FORBIDDEN, "out_of_scope"),
            (StoreError::LoginTaken, StatusCode::CONFLICT, "login_taken"),
            (StoreError::NotADispatcher, StatusCode::BAD_REQUEST, "not_a_dispatcher"),
            (StoreError::UnknownProject("hy-garden".into()), StatusCode::BAD_REQUEST, "unknown_project"),
            (
                StoreError::Refused(ApiError::invalid("invalid_change", "x", "x")),
                StatusCode::BAD_REQUEST,
                "invalid_change",
            ),
        ];
        for (error, status, code) in cases {
            let server_fault = error.is_server_error();
            let text = error.to_string();
            let answered = ApiError::from(error);
            assert_eq!((answered.status, answered.code), (status, code), "{text}");
            assert_eq!(server_fault, status.is_server_error(), "{text}");
        }
        // The cause stays in the error (and its log line), not in the answer.
        let corrupt = StoreError::corrupt("role", "`janitor` names no role");
        assert_eq!(corrupt.to_string(), "stored role does not read: `janitor` names no role");
        assert!(!ApiError::from(corrupt).message_en.contains("janitor"));
    }
}
