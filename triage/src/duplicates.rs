//! How alike two reports are: the overlap coefficient of their character-bigram sets (shared
//! bigrams over the smaller set's size). Jaccard punishes a short second report for not
//! repeating the first one's detail ("5栋也停水了" against a long first report); the overlap
//! does not.
//!
//! The server compares a new report only with the few open orders of the same place and
//! category from the last hours, so the exact similarity costs microseconds and needs no
//! MinHash sketch (whose error at two dozen characters would be larger than the signal).

use std::collections::BTreeSet;

use crate::features::{fold, is_cjk};

/// The character bigrams of `text`'s Chinese characters and Latin letters (digits, which are
/// the address, and punctuation left out).
pub fn shingles(text: &str) -> BTreeSet<(char, char)> {
    let chars: Vec<char> = text
        .chars()
        .map(fold)
        .filter(|c| is_cjk(*c) || c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    chars.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Fewer shared bigrams than this say nothing ("停电了" is in every outage report).
pub const MIN_SHARED: usize = 3;

/// The overlap of the two texts' bigram sets, 0..=1 (0 when they share fewer than
/// [`MIN_SHARED`]).
pub fn similarity(a: &str, b: &str) -> f32 {
    let (a, b) = (shingles(a), shingles(b));
    let common = a.intersection(&b).count();
    if common < MIN_SHARED {
        return 0.0;
    }
    common as f32 / a.len().min(b.len()) as f32
}

/// From this similarity a report is offered as a duplicate of an open order elsewhere in the
/// building ([`SIMILAR_SAME_UNIT`] in the same unit, where more of it is the same incident);
/// the evaluation reports at it.
pub const SIMILAR: f32 = 0.25;
pub const SIMILAR_SAME_UNIT: f32 = 0.15;

/// A way of telling how alike two reports are, for the evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// [`similarity`]: the overlap coefficient of character bigrams (shipped).
    BigramOverlap,
    /// Jaccard of character bigrams, exactly: what a MinHash sketch estimates (so its ceiling).
    BigramJaccard,
    /// The overlap coefficient of jieba's words.
    WordOverlap,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::BigramOverlap, Measure::BigramJaccard, Measure::WordOverlap];

    pub fn score(self, a: &str, b: &str) -> f32 {
        match self {
            Measure::BigramOverlap => similarity(a, b),
            Measure::BigramJaccard => {
                let (a, b) = (shingles(a), shingles(b));
                let union = a.union(&b).count();
                if union == 0 { 0.0 } else { a.intersection(&b).count() as f32 / union as f32 }
            }
            Measure::WordOverlap => {
                let a: BTreeSet<String> = crate::features::words(a).into_iter().collect();
                let b: BTreeSet<String> = crate::features::words(b).into_iter().collect();
                let smaller = a.len().min(b.len());
                if smaller == 0 { 0.0 } else { a.intersection(&b).count() as f32 / smaller as f32 }
            }
        }
    }
}

/// A pair of reports of one building and category, and whether they are one incident
/// (`data/duplicate_pairs.jsonl`).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Pair {
    pub id: String,
    pub a: String,
    pub b: String,
    pub same: bool,
}

/// One measure's figures on the pairs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MeasureReport {
    pub measure: Measure,
    /// The chance a pair of the same incident scores above a pair of two (ties count half):
    /// the area under the ROC curve, whatever the threshold.
    pub auc: f64,
    /// The best F1 over every threshold, and that threshold.
    pub best_f1: f64,
    pub best_threshold: f32,
    /// Precision, recall and F1 at [`SIMILAR`] (for the shipped measure).
    pub shipped: Option<(f64, f64, f64)>,
}

fn prf(scored: &[(f32, bool)], threshold: f32) -> (f64, f64, f64) {
    let tp = scored.iter().filter(|(s, same)| *same && *s >= threshold).count() as f64;
    let fp = scored.iter().filter(|(s, same)| !*same && *s >= threshold).count() as f64;
    let positives = scored.iter().filter(|(_, same)| *same).count() as f64;
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if positives > 0.0 { tp / positives } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    (precision, recall, f1)
}

/// Every measure's figures on `pairs`.
pub fn evaluate(pairs: &[Pair]) -> Vec<MeasureReport> {
    Measure::ALL
        .iter()
        .map(|&measure| {
            let scored: Vec<(f32, bool)> = pairs.iter().map(|p| (measure.score(&p.a, &p.b), p.same)).collect();
            let (pos, neg): (Vec<f32>, Vec<f32>) = (
                scored.iter().filter(|(_, s)| *s).map(|(x, _)| *x).collect(),
                scored.iter().filter(|(_, s)| !*s).map(|(x, _)| *x).collect(),
            );
            let mut wins = 0.0;
            for p in &pos {
                for n in &neg {
                    wins += if p > n {
                        1.0
                    } else if p == n {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
            let auc = if pos.is_empty() || neg.is_empty() { 0.0 } else { wins / (pos.len() * neg.len()) as f64 };
            let (mut best_f1, mut best_threshold) = (0.0, 0.0);
            for &(threshold, _) in &scored {
                let (_, _, f1) = prf(&scored, threshold);
                if f1 > best_f1 || (f1 == best_f1 && threshold < best_threshold) {
                    (best_f1, best_threshold) = (f1, threshold);
                }
            }
            MeasureReport {
                measure,
                auc,
                best_f1,
                best_threshold,
                shipped: (measure == Measure::BigramOverlap).then(|| prf(&scored, SIMILAR)),
            }
        })
        .collect()
}

/// Reads `data/duplicate_pairs.jsonl`-style lines.
pub fn read_pairs(text: &str) -> Result<Vec<Pair>, crate::TriageError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| crate::TriageError::Data(format!("line {}: {e}", i + 1))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_incident_in_other_words_is_alike_and_others_are_not() {
        let first = "5栋没水了，一滴都没有";
        let again = "五栋这边也没水了，一滴都没有了";
        let other = "楼道灯不亮了";
        assert!(similarity(first, again) > similarity(first, other));
        assert_eq!(similarity(first, first), 1.0);
        assert_eq!(similarity("", first), 0.0);
        assert_eq!(similarity("1502", "1502"), 0.0);
        assert_eq!(similarity("停电了", "整栋楼停电了，电梯也停了"), 0.0, "two shared bigrams say nothing");
    }

    #[test]
    fn the_evaluation_ranks_and_thresholds() {
        let pairs = [
            Pair {
                id: "1".into(), a: first().into(), b: "五栋这边也没水了，一滴都没有了".into(), same: true
            },
            Pair { id: "2".into(), a: first().into(), b: "楼道灯不亮了".into(), same: false },
        ];
        let reports = evaluate(&pairs);
        assert_eq!(reports.len(), 3);
        let shipped = &reports[0];
        assert_eq!((shipped.auc, shipped.best_f1), (1.0, 1.0));
        assert_eq!(shipped.shipped, Some((1.0, 1.0, 1.0)));
    }

    fn first() -> &'static str {
        "5栋没水了，一滴都没有"
    }
}
