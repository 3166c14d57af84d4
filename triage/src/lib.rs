//! Loopwork's customer-service assistant (AI客服): triage of owners' Chinese messages.
//!
//! - [`Model::classify`]: kind, category, grade and `urgent` with a confidence per field and
//!   abstention below a per-class threshold; four fastText classifiers over character n-grams
//!   ([`features`]) with the life-safety [`rules`] above them.
//! - [`generator`]: the training data, generated from `data/scenarios.txt`.
//! - [`eval`]: the figures of docs/triage.md (macro-F1, confusion matrices, coverage).
//! - [`duplicates`]: how alike two reports are.
//! - [`replies`]: suggested replies with slots filled from the order.
//!
//! The labels follow `data/LABELS.md`.

pub mod bot;
pub mod cli;
pub mod duplicates;
pub mod eval;
pub mod features;
pub mod generator;
pub mod knowledge;
mod model;
pub mod replies;
pub mod rules;

use loopwork_sync_core::{Category, Grade, Kind};
use serde::{Deserialize, Serialize};

pub use model::{Classification, Field, FieldGuess, Model, TrainOptions, default_model};

/// What can go wrong reading data or a model, or training.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("invalid data: {0}")]
    Data(String),
    #[error("invalid model: {0}")]
    Model(String),
    #[error("training failed: {0}")]
    Training(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The four labels of a message (data/LABELS.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    pub kind: Kind,
    pub category: Category,
    pub grade: Grade,
    pub urgent: bool,
}

/// A labelled message as kept in JSON lines (`data/eval.jsonl`, the generator's output, the
/// desk's reclassifications): the codes of `GET /api/v1/vocabulary`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Example {
    #[serde(default)]
    pub id: String,
    pub text: String,
    pub kind: String,
    pub category: String,
    pub grade: String,
    pub urgent: bool,
}

impl Example {
    pub fn new(id: String, text: String, labels: &Labels) -> Self {
        Example {
            id,
            text,
            kind: labels.kind.code().to_owned(),
            category: labels.category.code(),
            grade: labels.grade.code().to_owned(),
            urgent: labels.urgent,
        }
    }

    /// The labels, checked against the vocabulary (custom categories are kept as `other`).
    pub fn labels(&self) -> Result<Labels, TriageError> {
        let bad = |e: loopwork_sync_core::DocumentError| TriageError::Data(format!("{}: {e}", self.id));
        let category = match Category::from_code(&self.category).map_err(bad)? {
            Category::Custom(_) => Category::Other,
            builtin => builtin,
        };
        Ok(Labels {
            kind: Kind::from_code(&self.kind).map_err(bad)?,
            category,
            grade: Grade::from_code(&self.grade).map_err(bad)?,
            urgent: self.urgent,
        })
    }
}

/// Examples from JSON lines; a line that does not parse or holds an unknown code is an error
/// naming its line.
pub fn read_examples(text: &str) -> Result<Vec<Example>, TriageError> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let example: Example =
            serde_json::from_str(line).map_err(|e| TriageError::Data(format!("line {}: {e}", number + 1)))?;
        example.labels().map_err(|e| TriageError::Data(format!("line {}: {e}", number + 1)))?;
        out.push(example);
    }
    Ok(out)
}
