//! The one error type an app handles: each variant is something the app can act on.

use loopwork_sync_core::CoreError;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum LoopworkError {
    /// Nobody is signed in, or the server no longer accepts the token (expired, device revoked):
    /// show the sign-in screen. Local data stays.
    #[error("not signed in: {detail}")]
    NotSignedIn { detail: String },
    /// The transport failed (no signal, timeout, TLS): keep working offline and sync later.
    #[error("offline: {detail}")]
    Offline { detail: String },
    /// The server refused the request, with its reason.
    #[error("rejected by the server ({code}): {message_en}")]
    Rejected { code: String, message_en: String, message_zh: String },
    /// The signed-in user may not do this to this order (role, assignee, state, read-only).
    #[error("not permitted ({code}): {message_en}")]
    NotPermitted { code: String, message_en: String, message_zh: String },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("invalid input: {detail}")]
    InvalidInput { detail: String },
    /// The local store failed (disk full, corrupt file).
    #[error("storage failed: {detail}")]
    Storage { detail: String },
    /// The server or the local store needs a newer app: ask the user to update.
    #[error("upgrade required: {message_en}")]
    UpgradeRequired { message_en: String, message_zh: String },
}

impl LoopworkError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        LoopworkError::InvalidInput { detail: message.into() }
    }

    pub(crate) fn storage(message: impl std::fmt::Display) -> Self {
        LoopworkError::Storage { detail: message.to_string() }
    }

    pub(crate) fn not_signed_in() -> Self {
        LoopworkError::NotSignedIn { detail: "sign in first".into() }
    }
}

impl From<CoreError> for LoopworkError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Refused(why) => LoopworkError::NotPermitted {
                code: why.code().into(),
                message_en: why.message_en().into(),
                message_zh: why.message_zh().into(),
            },
            CoreError::ReadOnly { reason, .. } => LoopworkError::NotPermitted {
                message_en: format!("this order is read-only on this device ({reason})"),
                message_zh: "此工单在本设备上只读".into(),
                code: reason,
            },
            CoreError::NotFound(what) => LoopworkError::NotFound { what: format!("order {what}") },
            CoreError::InvalidInput(message) => LoopworkError::InvalidInput { detail: message },
            CoreError::Document(e) => LoopworkError::InvalidInput { detail: e.to_string() },
            CoreError::Storage(message) => LoopworkError::Storage { detail: message },
            CoreError::StoreTooNew { .. } => LoopworkError::UpgradeRequired {
                message_en: e.to_string(),
                message_zh: "本地数据由更新版本的应用写入,请升级应用".into(),
            },
        }
    }
}

/// What the host's transport reports when a request did not complete.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    #[error("transport failed: {detail}")]
    Failed { detail: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Failed { detail: e.reason }
    }
}
