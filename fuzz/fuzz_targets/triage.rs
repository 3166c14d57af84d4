//! The assistant's inputs: any text an owner or a client sends (classified by the built-in
//! model, the life-safety rules and the duplicate measure), a `loopwork triage classify` input
//! line, and any bytes offered as a model file. Nothing may panic; a confidence stays in 0..1;
//! a rule's message is urgent and never abstained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loopwork_triage::{Model, cli, default_model, duplicates};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            let _ = Model::from_bytes(rest);
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            let model = default_model().expect("the built-in model loads");
            let c = model.classify(&text);
            assert!((0.0..=1.0).contains(&c.confidence), "confidence {}", c.confidence);
            if c.rule.is_some() {
                assert!(c.urgent && !c.abstain);
            }
            let (a, b) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
            let s = duplicates::similarity(a, b);
            assert!((0.0..=1.0).contains(&s));
        }
        _ => {
            let model = default_model().expect("the built-in model loads");
            let mut out = Vec::new();
            let _ = cli::classify(model, rest, &mut out);
        }
    }
});
