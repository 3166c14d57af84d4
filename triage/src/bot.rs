//! The owner bot's judgement of one message (docs/triage.md, "The owner bot"). In order:
//!
//! 1. The owner asks for a person (转人工, 人工客服, 真人, …): **hand over**.
//! 2. The classifier (with the life-safety rules) says urgent: **propose a report**, urgent.
//! 3. The message is a question ([`is_question`]) and an article answers it ([`Hit::answers`]):
//!    **answer** with the article.
//! 4. The classifier says repair or complaint and does not abstain on the kind: **propose a
//!    report**.
//! 5. An article answers it: **answer**.
//! 6. The classifier says repair or complaint but abstained: **propose a report** (the owner
//!    confirms or changes every field before anything is sent).
//! 7. Otherwise the bot is unsure: **hand over** to a person.
//!
//! The bot never files anything itself: a proposal becomes an order only when the owner
//! confirms it.

use loopwork_sync_core::{Category, Grade, Kind};
use serde::{Deserialize, Serialize};

use crate::knowledge::{Hit, KnowledgeIndex};
use crate::{Model, TriageError};

/// How many articles an answer lists (the first answers, the others are "see also").
pub const ANSWER_HITS: usize = 3;

/// Why the bot hands a conversation to a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverReason {
    /// The owner asked for a person.
    Asked,
    /// Neither a report nor an article fits.
    Unsure,
}

/// The report the bot proposes; the owner confirms or changes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub kind: Kind,
    pub category: Category,
    pub grade: Grade,
    pub urgent: bool,
    pub confidence: f32,
    /// The life-safety rule that made it urgent, if one did.
    pub rule: Option<&'static str>,
}

/// The bot's turn.
#[derive(Clone, Debug, PartialEq)]
pub enum Turn {
    /// Articles that answer the question, the best first.
    Answer { hits: Vec<Hit> },
    /// A report for the owner to confirm.
    Report(Proposal),
    /// A person takes over.
    Handover(HandoverReason),
}

impl Turn {
    /// The turn's name: `answer`, `report` or `handover` (the evaluation set's `expect`).
    pub fn name(&self) -> &'static str {
        match self {
            Turn::Answer { .. } => "answer",
            Turn::Report(_) => "report",
            Turn::Handover(_) => "handover",
        }
    }
}

/// Phrases with which owners ask for a person (人工 itself, but not 人工费, is one).
const ASK_FOR_PERSON: &[&str] =
    &["人工", "真人", "活人", "找客服", "客服在吗", "有人吗", "有没有人", "机器人", "不要自动回复"];
/// Phrases that hold a phrase of [`ASK_FOR_PERSON`] without asking for a person.
const NOT_ASKING: &[&str] = &["人工费", "人工成本", "人工湖", "人工草"];

/// Whether the owner asks for a person.
pub fn asks_for_person(text: &str) -> bool {
    let mut compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for phrase in NOT_ASKING {
        compact = compact.replace(phrase, "·");
    }
    ASK_FOR_PERSON.iter().any(|p| compact.contains(p))
}

/// Words that make a message a question (为什么 and 为啥 are left out: owners complain with
/// them, 为什么还没人来修).
const QUESTION_WORDS: &[&str] = &[
    "怎么",
    "怎样",
    "如何",
    "哪里",
    "哪儿",
    "哪个",
    "在哪",
    "多久",
    "多长时间",
    "多少",
    "几点",
    "几天",
    "能不能",
    "可不可以",
    "可以吗",
    "是不是",
    "要不要",
    "会不会",
    "有没有",
    "行不行",
    "吗",
    "么",
    "请问",
    "找谁",
];

/// Whether a message asks something: a question mark, a question word, or a clause ending in
/// 不/没 (收钱不, 有人接不).
pub fn is_question(text: &str) -> bool {
    let text = &text.replace("为什么", "·").replace("为啥", "·");
    text.contains(['？', '?'])
        || QUESTION_WORDS.iter().any(|w| text.contains(w))
        || text
            .split(|c: char| c.is_whitespace() || "，,。.！!；;".contains(c))
            .any(|clause| clause.ends_with('不') || clause.ends_with("没有") || clause.ends_with('没'))
}

/// The bot's judgement of one message.
pub fn respond(model: &Model, knowledge: &KnowledgeIndex, text: &str) -> Turn {
    if asks_for_person(text) {
        return Turn::Handover(HandoverReason::Asked);
    }
    let c = model.classify(text);
    let reportable = matches!(c.kind, Kind::Repair | Kind::Complaint);
    let proposal = || {
        Turn::Report(Proposal {
            kind: if reportable { c.kind } else { Kind::Repair },
            category: c.category.clone(),
            grade: c.grade,
            urgent: c.urgent,
            confidence: c.confidence,
            rule: c.rule.map(|r| r.code),
        })
    };
    if c.urgent {
        return proposal();
    }
    let hits = knowledge.search(text, ANSWER_HITS);
    let answered = hits.first().is_some_and(Hit::answers);
    if answered && is_question(text) {
        return Turn::Answer { hits };
    }
    if reportable && !c.fields[0].abstain {
        return proposal();
    }
    if answered {
        return Turn::Answer { hits };
    }
    if reportable {
        return proposal();
    }
    Turn::Handover(HandoverReason::Unsure)
}

/// One line of `data/bot_eval.jsonl`: a message and what the bot should do with it
/// (`answer:<article id>`, `report` or `handover`).
#[derive(Clone, Debug, Deserialize)]
pub struct BotExample {
    pub id: String,
    pub text: String,
    pub expect: String,
}

/// The bot's figures on an evaluation set.
#[derive(Clone, Debug, Serialize)]
pub struct BotReport {
    pub messages: usize,
    /// The share of messages where the bot did what was expected (for answers: the right
    /// article first).
    pub accuracy: f64,
    /// Per expected action (`answer`, `report`, `handover`): messages, and how many became
    /// each action.
    pub confusion: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
    /// Answers given with the wrong article first.
    pub wrong_article: usize,
    /// The messages the bot got wrong: id, expected, given.
    pub misses: Vec<(String, String, String)>,
    /// The time of one turn ([`respond`]: the classifier and the search), median and 99th
    /// percentile over the set, in microseconds on this machine.
    pub turn_p50_us: u64,
    pub turn_p99_us: u64,
}

/// The bot's figures on `examples`.
pub fn evaluate(model: &Model, knowledge: &KnowledgeIndex, examples: &[BotExample]) -> BotReport {
    let mut confusion: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>> =
        Default::default();
    let (mut right, mut wrong_article, mut misses) = (0, 0, Vec::new());
    let mut times = Vec::with_capacity(examples.len());
    // The first turn of a process loads jieba's dictionary (about 0.2 s): not a turn's time.
    respond(model, knowledge, "预热");
    for e in examples {
        let started = std::time::Instant::now();
        let turn = respond(model, knowledge, &e.text);
        times.push(started.elapsed().as_micros() as u64);
        let given = match &turn {
            Turn::Answer { hits } => format!("answer:{}", hits[0].id),
            other => other.name().to_owned(),
        };
        let expected_action = e.expect.split(':').next().unwrap_or_default().to_owned();
        *confusion.entry(expected_action.clone()).or_default().entry(turn.name().to_owned()).or_default() += 1;
        if given == e.expect {
            right += 1;
        } else {
            if expected_action == "answer" && turn.name() == "answer" {
                wrong_article += 1;
            }
            misses.push((e.id.clone(), e.expect.clone(), given));
        }
    }
    times.sort_unstable();
    let at = |q: f64| times.get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
    BotReport {
        turn_p50_us: at(0.5),
        turn_p99_us: at(0.99),
        messages: examples.len(),
        accuracy: if examples.is_empty() { 0.0 } else { right as f64 / examples.len() as f64 },
        confusion,
        wrong_article,
        misses,
    }
}

/// Reads `data/bot_eval.jsonl`-style lines.
pub fn read_bot_examples(text: &str) -> Result<Vec<BotExample>, TriageError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| TriageError::Data(format!("line {}: {e}", i + 1))))
        .collect()
}

/// The bot's evaluation set, shipped in the repository.
pub fn bot_eval_set() -> Vec<BotExample> {
    read_bot_examples(include_str!("../data/bot_eval.jsonl")).expect("data/bot_eval.jsonl is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_model;
    use crate::knowledge::starter_articles;

    fn kb() -> KnowledgeIndex {
        KnowledgeIndex::build(&starter_articles()).unwrap()
    }

    #[test]
    fn asking_for_a_person_hands_over_whatever_else_is_said() {
        let kb = kb();
        for text in ["转人工", "人工", "我要找真人客服", "电梯坏了，转人工！", " 人工 "] {
            assert_eq!(respond(default_model().unwrap(), &kb, text), Turn::Handover(HandoverReason::Asked), "{text}");
        }
        assert!(!asks_for_person("人工费怎么算"));
        assert!(asks_for_person("麻烦转一下人工"));
        assert!(is_question("修要收钱不"));
        assert!(is_question("驿站在哪个门"));
        assert!(!is_question("为什么停水三天了没人管"));
    }

    #[test]
    fn life_safety_is_a_report_even_in_a_question() {
        let kb = kb();
        let Turn::Report(p) = respond(default_model().unwrap(), &kb, "电梯里有人困住了怎么办") else {
            panic!()
        };
        assert!(p.urgent);
        assert!(p.grade >= Grade::Severe);
        assert!(p.rule.is_some());
    }

    #[test]
    fn a_question_an_article_answers_is_answered_and_a_fault_reported() {
        let kb = kb();
        let Turn::Answer { hits } = respond(default_model().unwrap(), &kb, "请问物业费可以用微信交吗")
        else {
            panic!()
        };
        assert_eq!(hits[0].id, "property-fee");
        let Turn::Report(p) = respond(default_model().unwrap(), &kb, "3栋2单元1502卫生间水管漏水了") else {
            panic!()
        };
        assert_eq!(p.kind, Kind::Repair);
        assert!(!p.urgent);
    }

    #[test]
    fn nothing_to_answer_hands_over() {
        assert_eq!(
            respond(default_model().unwrap(), &kb(), "小区附近有什么好的幼儿园推荐吗"),
            Turn::Handover(HandoverReason::Unsure)
        );
    }

    #[test]
    fn the_evaluation_set_reads_and_scores() {
        let set = bot_eval_set();
        assert!(set.len() >= 90);
        let report = evaluate(default_model().unwrap(), &kb(), &set);
        assert_eq!(report.messages, set.len());
        // The figure docs/triage.md reports; a fall below it is a regression.
        // docs/triage.md reports 0.77 with the starter articles and the default model; below
        // 0.75 is a regression.
        assert!(report.accuracy >= 0.75, "{}", serde_json::to_string_pretty(&report).unwrap());
    }
}
