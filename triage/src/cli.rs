//! `loopwork triage classify`: JSON lines in, one classification out per line.

use std::io::{BufRead, Write};

use serde::Serialize;

use crate::{Classification, Model, TriageError};

/// One line of `loopwork triage classify`'s output (the codes of `GET /api/v1/vocabulary`).
#[derive(Debug, Serialize)]
pub struct ClassifyLine<'a> {
    pub id: &'a serde_json::Value,
    pub kind: &'static str,
    pub category: String,
    pub grade: &'static str,
    pub urgent: bool,
    pub confidence: f32,
    pub abstain: bool,
}

impl<'a> ClassifyLine<'a> {
    pub fn new(id: &'a serde_json::Value, c: &Classification) -> Self {
        ClassifyLine {
            id,
            kind: c.kind.code(),
            category: c.category.code(),
            grade: c.grade.code(),
            urgent: c.urgent,
            confidence: (c.confidence * 1000.0).round() / 1000.0,
            abstain: c.abstain,
        }
    }
}

/// Reads `{"id", "text"}` lines and writes one classification per line. A line that is not
/// such an object gets `{"id", "error"}` (with the id when there is one) and the rest go on.
/// Returns how many lines failed.
pub fn classify(model: &Model, input: impl BufRead, mut output: impl Write) -> Result<usize, TriageError> {
    let mut failed = 0;
    let null = serde_json::Value::Null;
    let mut input = input;
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        if input.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        // A line that is not UTF-8 is a line that is not JSON: answered, and the rest go on.
        let line = String::from_utf8_lossy(&bytes);
        if line.trim().is_empty() {
            continue;
        }
        let value: Result<serde_json::Value, _> = serde_json::from_str(&line);
        let (id, text) = match &value {
            Ok(v) => (v.get("id").unwrap_or(&null), v.get("text").and_then(|t| t.as_str())),
            Err(_) => (&null, None),
        };
        let written = match text {
            Some(text) => serde_json::to_string(&ClassifyLine::new(id, &model.classify(text))),
            None => {
                failed += 1;
                let error = match &value {
                    Err(e) => format!("not JSON: {e}"),
                    Ok(_) => "each line is an object {\"id\", \"text\"} with text a string".to_owned(),
                };
                serde_json::to_string(&serde_json::json!({ "id": id, "error": error }))
            }
        }
        .map_err(|e| TriageError::Data(e.to_string()))?;
        writeln!(output, "{written}")?;
    }
    output.flush()?;
    Ok(failed)
}
