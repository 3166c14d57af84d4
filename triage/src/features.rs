//! What the classifier reads: a message normalized and cut into tokens.
//!
//! Chinese has no spaces, so every CJK character is a token and the model's word n-grams
//! (`word_ngrams = 3`) are character bigrams and trigrams. Digits carry the address
//! (3栋2单元1502), never the meaning, so each run of digits becomes one `<n>` token; Latin
//! words are lowercased; full-width forms are folded to half-width; `!` and `?` are kept (they
//! carry urgency and questions); other punctuation and spaces are dropped. Models of features
//! version 2 (the default) also read jieba's words after the characters ([`tokens_for`]).

/// The features a model reads, by the version its options name (`TrainOptions::features`):
/// 1, characters only ([`tokens`]); 2, characters and then jieba's words of two characters or
/// more, each as `w:` and the word ([`words`]).
pub fn tokens_for(version: u8, text: &str) -> String {
    match version {
        1 => tokens(text),
        // 2 (the model file's check refuses any other)
        _ => {
            let mut out = tokens(text);
            for word in words(text) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str("w:");
                out.push_str(&word);
            }
            out
        }
    }
}

/// The process's one jieba (its dictionary loads at the first use, about 0.2 s): the
/// classifier's words and the knowledge base's search.
pub fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: std::sync::OnceLock<jieba_rs::Jieba> = std::sync::OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

/// jieba's words of `text` of two or more CJK characters (digits and Latin are in [`tokens`]).
pub fn words(text: &str) -> Vec<String> {
    let folded: String = text.chars().map(fold).collect();
    jieba()
        .cut(&folded, true)
        .into_iter()
        .filter(|w| w.chars().count() >= 2 && w.chars().all(is_cjk))
        .map(str::to_owned)
        .collect()
}

/// The model's tokens for `text`, joined by single spaces (fastText splits on whitespace).
pub fn tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut word = String::new();
    let mut in_digits = false;
    let push = |out: &mut String, token: &str| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(token);
    };
    for raw in text.chars() {
        let c = fold(raw);
        if c.is_ascii_digit() {
            if !word.is_empty() {
                push(&mut out, &word);
                word.clear();
            }
            if !in_digits {
                push(&mut out, "<n>");
                in_digits = true;
            }
            continue;
        }
        in_digits = false;
        if c.is_ascii_alphabetic() {
            word.push(c.to_ascii_lowercase());
            continue;
        }
        if !word.is_empty() {
            push(&mut out, &word);
            word.clear();
        }
        if c == '!' || c == '?' {
            push(&mut out, if c == '!' { "!" } else { "?" });
        } else if is_cjk(c) {
            let mut buf = [0u8; 4];
            push(&mut out, c.encode_utf8(&mut buf));
        }
    }
    if !word.is_empty() {
        push(&mut out, &word);
    }
    out
}

/// Full-width ASCII forms (Ｕ+FF01..FF5E) and the ideographic space folded to ASCII.
pub fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// CJK ideographs (the basic block and extension A) and the compatibility block.
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_become_one_token_and_punctuation_is_dropped() {
        assert_eq!(tokens("3栋2单元1502漏水了！！"), "<n> 栋 <n> 单 元 <n> 漏 水 了 ! !");
        assert_eq!(tokens("Ｂ２车位被占，速处理?"), "b <n> 车 位 被 占 速 处 理 ?");
        assert_eq!(tokens("  "), "");
    }

    #[test]
    fn words_follow_the_characters_in_version_2() {
        assert_eq!(tokens_for(1, "电梯坏了"), "电 梯 坏 了");
        let v2 = tokens_for(2, "3栋电梯坏了，有人被困");
        assert!(v2.starts_with("<n> 栋 电 梯 坏 了 有 人 被 困 "), "{v2}");
        assert!(v2.contains("w:电梯"), "{v2}");
        assert!(!v2.contains("w:了"), "{v2}");
    }
}
