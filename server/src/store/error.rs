//! Why a storage call failed, with its cause; and how it is answered ([`ApiError`]), the cause
//! logged, never sent.

use std::sync::Arc;

use loopwork_sync_core::OrderId;

use crate::error::ApiError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached (shared: one failed commit answers every push
    /// of its batch).
    #[error("database: {0}")]
    Database(Arc<sqlx::Error>),
    /// What the database holds does not read back as what it should be (a role code, an id, a
    /// setting's JSON, a change): stored data is damaged or was written by a newer server.
    #[error("stored {what} does not read: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A task the store ran beside the request failed (it panicked).
    #[error("a storage task failed: {0}")]
    Task(String),
    /// The writer task has stopped (the process is shutting down).
    #[error("the writer has stopped")]
    WriterStopped,
    /// The order's stored history does not load: it is set aside (409 `order_quarantined`).
    #[error("order {0}'s stored history does not load")]
    Quarantined(OrderId),
    /// The order is outside what the writing device may write (403 `out_of_scope`).
    #[error("order {0} is outside what this device may write")]
    OutOfScope(OrderId),
    /// An account with that login exists in the organization (409 `login_taken`).
    #[error("that login is taken")]
    LoginTaken,
    /// Only dispatchers are bound to projects (400 `not_a_dispatcher`).
    #[error("only dispatchers are bound to projects")]
    NotADispatcher,
    /// The organization has no such project (400 `unknown_project`).
    #[error("the organization has no project {0}")]
    UnknownProject(String),
    /// A rule of `replication` refused the push (changes that make no valid work order, a
    /// relayed change without its receipt, …): answered to the client as it is.
    #[error("{}", .0.message_en)]
    Refused(ApiError),
}

impl StoreError {
    /// Stored `what` that does not read, for `detail`'s reason.
    pub fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt { what, detail: detail.to_string() }
    }
}

impl StoreError {
    /// Whether the server is at fault (as against a refusal of what was asked).
    pub fn is_server_error(&self) -> bool {
        match self {
            StoreError::Database(_) | StoreError::Corrupt { .. } | StoreError::Task(_) | StoreError::WriterStopped => {
                true
            }
            StoreError::Refused(e) => e.status.is_server_error(),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl From<ApiError> for StoreError {
    fn from(e: ApiError) -> Self {
        StoreError::Refused(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database error");
                match *e {
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => ApiError::unavailable(),
                    _ => ApiError::internal(),
                }
            }
            StoreError::Corrupt { what, detail } => {
                tracing::error!(what, detail, "stored data does not read");
                ApiError::internal()
            }
            StoreError::Task(e) => {
                tracing::error!(error = e, "a storage task failed");
                ApiError::internal()
            }
            StoreError::WriterStopped => ApiError::unavailable(),
            StoreError::Quarantined(order) => ApiError::quarantined(order),
            StoreError::OutOfScope(order) => ApiError::out_of_scope(order),
            StoreError::LoginTaken => ApiError::login_taken(),
            StoreError::NotADispatcher => ApiError::invalid(
                "not_a_dispatcher",
                "only dispatchers are bound to projects",
                "只有客服/调度可以绑定项目",
            ),
            e @ StoreError::UnknownProject(_) => {
                ApiError::invalid("unknown_project", e.to_string(), "本机构没有这个项目")
            }
            StoreError::Refused(e) => e,
        }
    }
}
