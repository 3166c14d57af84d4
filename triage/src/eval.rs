//! The evaluation of docs/triage.md: per field macro-F1 and confusion matrix, urgent recall and
//! precision, abstention, accuracy at each coverage level, and the time per message.

use std::time::Instant;

use serde::Serialize;

use crate::{Example, Field, Model, TriageError};

/// One class's scores.
#[derive(Debug, Serialize)]
pub struct ClassScore {
    pub code: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// One field's scores over every message (abstained ones included: the labels are given).
#[derive(Debug, Serialize)]
pub struct FieldReport {
    pub field: &'static str,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub classes: Vec<ClassScore>,
    /// `confusion[truth][predicted]`, in the order of `classes`.
    pub confusion: Vec<Vec<usize>>,
}

/// Accuracy of the most confident `coverage` share of messages.
#[derive(Debug, Serialize)]
pub struct Coverage {
    pub coverage: f64,
    pub kind: f64,
    pub category: f64,
    pub grade: f64,
    /// Kind, category and grade all right.
    pub all_three: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub messages: usize,
    pub fields: Vec<FieldReport>,
    /// `None` when no message is urgent (recall) or none was flagged (precision).
    pub urgent_recall: Option<f64>,
    pub urgent_precision: Option<f64>,
    pub abstention: f64,
    /// Accuracy (all three fields right) of the messages the assistant did not abstain on.
    /// (Coverage ranks messages by the reported confidence, the least of the three fields'.)
    pub answered_accuracy: f64,
    pub coverage: Vec<Coverage>,
    /// Microseconds per message, one thread.
    pub p50_us: f64,
    pub p99_us: f64,
    pub model_bytes: usize,
}

/// Scores `model` on `examples`.
pub fn evaluate(model: &Model, examples: &[Example]) -> Result<Report, TriageError> {
    let mut rows = Vec::with_capacity(examples.len());
    let mut times = Vec::with_capacity(examples.len());
    for example in examples {
        let truth = example.labels()?;
        let started = Instant::now();
        let got = model.classify(&example.text);
        times.push(started.elapsed().as_secs_f64() * 1e6);
        let predicted =
            crate::Labels { kind: got.kind, category: got.category.clone(), grade: got.grade, urgent: got.urgent };
        rows.push((truth, predicted, got.confidence, got.abstain));
    }
    let n = rows.len().max(1) as f64;
    let mut fields = Vec::new();
    for field in Field::ALL.iter().filter(|f| **f != Field::Urgent) {
        let codes = field.codes();
        let index = |code: &str| {
            codes
                .iter()
                .position(|c| c == code)
                .ok_or_else(|| TriageError::Data(format!("{} is not a {} code", code, field.name())))
        };
        let mut confusion = vec![vec![0usize; codes.len()]; codes.len()];
        for (truth, predicted, _, _) in &rows {
            confusion[index(&field.code(truth))?][index(&field.code(predicted))?] += 1;
        }
        fields.push({
            let classes: Vec<ClassScore> = codes
                .iter()
                .enumerate()
                .map(|(i, code)| {
                    let tp = confusion[i][i] as f64;
                    let predicted: usize = confusion.iter().map(|row| row[i]).sum();
                    let support: usize = confusion[i].iter().sum();
                    let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
                    let recall = if support > 0 { tp / support as f64 } else { 0.0 };
                    let f1 =
                        if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
                    ClassScore { code: code.clone(), precision, recall, f1, support }
                })
                .collect();
            // Classes in the truth or in the answers (a class answered but never true counts,
            // with its F1 of 0); classes in neither are left out.
            let present: Vec<&ClassScore> = classes
                .iter()
                .enumerate()
                .filter(|(i, c)| c.support > 0 || confusion.iter().any(|row| row[*i] > 0))
                .map(|(_, c)| c)
                .collect();
            let macro_f1 = present.iter().map(|c| c.f1).sum::<f64>() / present.len().max(1) as f64;
            let accuracy = (0..codes.len()).map(|i| confusion[i][i]).sum::<usize>() as f64 / n;
            FieldReport { field: field.name(), accuracy, macro_f1, classes, confusion }
        });
    }
    let urgent_true = rows.iter().filter(|r| r.0.urgent).count();
    let flagged = rows.iter().filter(|r| r.1.urgent).count();
    let caught = rows.iter().filter(|r| r.0.urgent && r.1.urgent).count();
    let all_three =
        |t: &crate::Labels, p: &crate::Labels| t.kind == p.kind && t.category == p.category && t.grade == p.grade;
    let answered: Vec<_> = rows.iter().filter(|r| !r.3).collect();
    let mut by_confidence: Vec<_> = rows.iter().collect();
    by_confidence.sort_by(|a, b| b.2.total_cmp(&a.2));
    let coverage = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0]
        .iter()
        .map(|share| {
            let top = &by_confidence[..((share * n).ceil() as usize).min(by_confidence.len())];
            let m = top.len().max(1) as f64;
            let rate = |f: &dyn Fn(&crate::Labels, &crate::Labels) -> bool| {
                top.iter().filter(|r| f(&r.0, &r.1)).count() as f64 / m
            };
            Coverage {
                coverage: *share,
                kind: rate(&|t, p| t.kind == p.kind),
                category: rate(&|t, p| t.category == p.category),
                grade: rate(&|t, p| t.grade == p.grade),
                all_three: rate(&all_three),
            }
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let quantile = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    Ok(Report {
        model: model.version().to_owned(),
        messages: rows.len(),
        fields,
        urgent_recall: (urgent_true > 0).then(|| caught as f64 / urgent_true as f64),
        urgent_precision: (flagged > 0).then(|| caught as f64 / flagged as f64),
        abstention: rows.iter().filter(|r| r.3).count() as f64 / n,
        answered_accuracy: answered.iter().filter(|r| all_three(&r.0, &r.1)).count() as f64
            / answered.len().max(1) as f64,
        coverage,
        p50_us: quantile(0.5),
        p99_us: quantile(0.99),
        model_bytes: model.to_bytes().len(),
    })
}

fn share(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

impl Report {
    /// The report as Markdown (docs/triage.md).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "model `{}`, {} messages, {:.2} MB\n\n| measure | value |\n|---|---|\n",
            self.model,
            self.messages,
            self.model_bytes as f64 / 1e6
        );
        for f in &self.fields {
            out += &format!("| {} macro-F1 | {:.3} (accuracy {:.3}) |\n", f.field, f.macro_f1, f.accuracy);
        }
        out += &format!(
            "| urgent recall | {} |\n| urgent precision | {} |\n| abstention | {:.3} |\n| accuracy when answering (all three) | {:.3} |\n| time per message p50 / p99 | {:.0} / {:.0} µs |\n\n",
            share(self.urgent_recall),
            share(self.urgent_precision),
            self.abstention,
            self.answered_accuracy,
            self.p50_us,
            self.p99_us
        );
        out += "| coverage | kind | category | grade | all three |\n|---|---|---|---|---|\n";
        for c in &self.coverage {
            out += &format!(
                "| {:.0} % | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                c.coverage * 100.0,
                c.kind,
                c.category,
                c.grade,
                c.all_three
            );
        }
        for f in &self.fields {
            out += &format!("\n**{}** (rows: truth, columns: predicted)\n\n| |", f.field);
            for c in &f.classes {
                out += &format!(" {} |", c.code);
            }
            out += " recall |\n|---|";
            out += &"---|".repeat(f.classes.len() + 1);
            out += "\n";
            for (i, row) in f.confusion.iter().enumerate() {
                out += &format!("| {} |", f.classes[i].code);
                for cell in row {
                    out += &format!(" {cell} |");
                }
                out += &format!(" {:.2} |\n", f.classes[i].recall);
            }
        }
        out
    }
}

/// The frozen evaluation set (`data/eval.jsonl`), built in: a new model is judged on it.
pub fn frozen() -> Result<Vec<Example>, TriageError> {
    crate::read_examples(include_str!("../data/eval.jsonl"))
}

/// A model's figures on the frozen set that decide whether it may replace another.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Scores {
    pub kind_f1: f64,
    pub category_f1: f64,
    pub grade_f1: f64,
    pub urgent_recall: f64,
    #[serde(default)]
    pub urgent_precision: f64,
    pub abstention: f64,
}

impl Report {
    pub fn scores(&self) -> Scores {
        let f1 = |name: &str| self.fields.iter().find(|f| f.field == name).map_or(0.0, |f| f.macro_f1);
        Scores {
            kind_f1: f1("kind"),
            category_f1: f1("category"),
            grade_f1: f1("grade"),
            urgent_recall: self.urgent_recall.unwrap_or(0.0),
            urgent_precision: self.urgent_precision.unwrap_or(0.0),
            abstention: self.abstention,
        }
    }
}

/// How much worse a retrained model may score (rounding and the randomness of training).
pub const TOLERANCE: f64 = 0.005;

impl Scores {
    /// Whether a model scoring `self` may replace one scoring `before`: no field's macro-F1,
    /// not the urgent recall and not the urgent precision lower, and the abstention not higher,
    /// by more than [`TOLERANCE`]. (A model that flags everything urgent, or answers nothing,
    /// does not pass.)
    pub fn no_worse_than(&self, before: &Scores) -> bool {
        self.kind_f1 + TOLERANCE >= before.kind_f1
            && self.category_f1 + TOLERANCE >= before.category_f1
            && self.grade_f1 + TOLERANCE >= before.grade_f1
            && self.urgent_recall + TOLERANCE >= before.urgent_recall
            && self.urgent_precision + TOLERANCE >= before.urgent_precision
            && self.abstention <= before.abstention + TOLERANCE
    }
}

/// The built-in labelled set (`data/dev.jsonl`) that every model learns from besides the
/// generated messages.
pub fn dev_set() -> Result<Vec<Example>, TriageError> {
    crate::read_examples(include_str!("../data/dev.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_worse_in_any_field_or_in_urgent_recall_may_not_replace_another() {
        let before = Scores {
            kind_f1: 0.9,
            category_f1: 0.8,
            grade_f1: 0.75,
            urgent_recall: 0.95,
            urgent_precision: 0.8,
            abstention: 0.3,
        };
        assert!(before.no_worse_than(&before));
        assert!(Scores { abstention: 0.2, ..before.clone() }.no_worse_than(&before));
        assert!(!Scores { abstention: 0.9, ..before.clone() }.no_worse_than(&before), "answers less");
        assert!(
            !Scores { urgent_precision: 0.3, urgent_recall: 1.0, ..before.clone() }.no_worse_than(&before),
            "flags all"
        );
        assert!(Scores { kind_f1: 0.896, ..before.clone() }.no_worse_than(&before));
        assert!(!Scores { kind_f1: 0.89, ..before.clone() }.no_worse_than(&before));
        assert!(!Scores { category_f1: 0.7, kind_f1: 0.99, ..before.clone() }.no_worse_than(&before));
        assert!(!Scores { urgent_recall: 0.9, ..before.clone() }.no_worse_than(&before));
    }

    #[test]
    fn the_frozen_set_is_built_in_and_scores_the_built_in_model() {
        let examples = frozen().expect("the frozen set parses");
        assert!(examples.len() >= 250);
        let report = evaluate(crate::default_model().expect("model"), &examples).expect("report");
        let scores = report.scores();
        assert!(scores.kind_f1 > 0.5 && scores.urgent_recall > 0.5, "{scores:?}");
    }
}
