//! The core's errors: typed, never a panic, and free of personal data.

use crate::lifecycle::Supersession;

/// A document that cannot be read as a Loopwork work order.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("the bytes are not an Automerge document: {0}")]
    Corrupt(String),
    #[error("the document is not a Loopwork work order (no `{0}` field)")]
    Foreign(&'static str),
    #[error("work-order schema version {0} is newer than this build understands")]
    UnsupportedSchema(i64),
    #[error("field `{field}` has an invalid value `{value}`")]
    InvalidField { field: &'static str, value: String },
    #[error("the document does not hold order {0}")]
    WrongOrder(String),
    /// A change whose bytes are not Automerge's own encoding of its content: stored, it would
    /// come back under another hash, and every change depending on it would lose its dependency.
    #[error("change {0} is not canonically encoded")]
    NonCanonical(String),
}

/// Everything the core can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("refused: {0}")]
    Refused(Supersession),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("order {order} is read-only on this device: {reason}")]
    ReadOnly { order: String, reason: String },
    #[error("order {0} is not in this store")]
    NotFound(String),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("the store was written by a newer version (schema {found}, this build knows {known})")]
    StoreTooNew { found: i64, known: i64 },
}

impl From<automerge::AutomergeError> for CoreError {
    fn from(e: automerge::AutomergeError) -> Self {
        CoreError::Document(DocumentError::Corrupt(e.to_string()))
    }
}

impl From<rusqlite::Error> for CoreError {
    fn from(e: rusqlite::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}
