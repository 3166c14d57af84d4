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
}
