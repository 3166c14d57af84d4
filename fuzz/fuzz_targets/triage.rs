//! The assistant's inputs: any text an owner or a client sends (classified by the built-in
//! model, the life-safety rules and the duplicate measure), a `loopwork triage classify` input
//! line, any bytes offered as a model file, and any question to the owner bot (the knowledge
//! base's search and the bot's turn). Nothing may panic; a confidence stays in 0..1; a rule's
//! message is urgent and never abstained; a hit's coverage stays in 0..1; a life-safety message
//! is never answered with an article.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use loopwork_triage::bot::{self, Turn};
use loopwork_triage::knowledge::{KnowledgeIndex, starter_articles};
use loopwork_triage::{Model, cli, default_model, duplicates, rules};

fn knowledge() -> &'static KnowledgeIndex {
    static INDEX: OnceLock<KnowledgeIndex> = OnceLock::new();
    INDEX.get_or_init(|| KnowledgeIndex::build(&starter_articles()).expect("the starter articles index"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
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
        2 => {
            let model = default_model().expect("the built-in model loads");
            let mut out = Vec::new();
            let _ = cli::classify(model, rest, &mut out);
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            for hit in knowledge().search(&text, 3) {
                assert!((0.0..=1.0 + 1e-4).contains(&hit.coverage), "coverage {}", hit.coverage);
            }
            let model = default_model().expect("the built-in model loads");
            let turn = bot::respond(model, knowledge(), &text);
            if rules::life_safety(&text).is_some() && !bot::asks_for_person(&text) {
                assert!(matches!(turn, Turn::Report(ref p) if p.urgent), "{turn:?}");
            }
        }
    }
});
