//! The training data: realistic owners' messages generated from `data/scenarios.txt`.
//!
//! A scenario is one situation with its labels and the ways owners say it. A message is a
//! scenario's phrase with the owner's address filled in, wrapped the way messages arrive: a
//! greeting or none, the time it started, a second request, emotion, a closing line, and the
//! noise of phones (homophones, repeated characters, missing punctuation). Repairs that were
//! ignored or failed come back as complaints (data/LABELS.md). Nothing here reads the evaluation
//! sets.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};

use crate::{Example, Labels, TriageError};
use loopwork_sync_core::{Category, Grade, Kind};

const SCENARIOS: &str = include_str!("../data/scenarios.txt");

/// One situation and the ways it is said.
#[derive(Debug)]
pub struct Scenario {
    pub labels: Labels,
    pub phrases: Vec<&'static str>,
}

/// The scenarios of `data/scenarios.txt`.
pub fn scenarios() -> Result<Vec<Scenario>, TriageError> {
    let mut out: Vec<Scenario> = Vec::new();
    for (number, line) in SCENARIOS.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (line.starts_with('#') && !line.starts_with("## ")) {
            continue;
        }
        if let Some(header) = line.strip_prefix("## ") {
            let parts: Vec<&str> = header.split_whitespace().collect();
            let bad = |what: &str| TriageError::Data(format!("scenarios.txt line {}: {what}", number + 1));
            let [kind, category, grade, urgent] = parts[..] else {
                return Err(bad("a header is `## kind category grade urgent`"));
            };
            let labels = Labels {
                kind: Kind::from_code(kind).map_err(|e| bad(&e.to_string()))?,
                category: Category::from_code(category).map_err(|e| bad(&e.to_string()))?,
                grade: Grade::from_code(grade).map_err(|e| bad(&e.to_string()))?,
                urgent: urgent.parse().map_err(|_| bad("urgent is true or false"))?,
            };
            out.push(Scenario { labels, phrases: Vec::new() });
        } else {
            let Some(scenario) = out.last_mut() else {
                return Err(TriageError::Data(format!(
                    "scenarios.txt line {}: a phrase before any header",
                    number + 1
                )));
            };
            scenario.phrases.push(line);
        }
    }
    Ok(out)
}

const GREETINGS: &[&str] = &[
    "你好",
    "您好",
    "你好物业",
    "物业你好",
    "喂",
    "师傅",
    "管家你好",
    "麻烦一下",
    "打扰一下",
    "物业",
    "客服",
    "在吗",
    "有人吗",
    "请问",
    "",
];
const INTROS: &[&str] = &["我是{loc}的业主", "我家是{loc}", "{loc}", "我住{loc}", "{loc}业主", "这里是{loc}"];
const TIMES: &[&str] =
    &["昨晚开始", "今天早上", "刚才", "从{t}开始", "前两天就", "这几天", "一大早", "半夜", "下午", "已经{n}个小时了"];
const REPAIR_CLOSERS: &[&str] = &[
    "麻烦尽快派人来修",
    "请安排师傅上门",
    "谢谢",
    "尽快处理一下",
    "麻烦看一下",
    "什么时候能来",
    "急",
    "辛苦了",
    "麻烦了",
    "请派人来",
    "师傅今天能来吗",
    "",
];
const COMPLAINT_CLOSERS: &[&str] = &[
    "请给个说法",
    "再不处理我就打12345了",
    "太过分了",
    "你们管不管",
    "必须处理",
    "我要投诉",
    "物业到底管不管",
    "希望尽快解决",
    "真的受不了了",
    "请领导重视",
    "",
];
const INQUIRY_CLOSERS: &[&str] = &["谢谢", "麻烦告知一下", "急等回复", "谢谢啦", "", "", "请回复"];
const SUGGESTION_CLOSERS: &[&str] = &["谢谢", "希望采纳", "辛苦了", "大家都有这个想法", "", ""];
const PRAISE_CLOSERS: &[&str] = &["点赞", "辛苦了", "谢谢你们", "", "要表扬", "给你们点赞"];
const EMOTIONS: &[&str] = &["真的是服了", "气死了", "烦死了", "太急了", "怎么办啊", "急死了", "唉", "无语"];
/// A failed or ignored repair reported again (a complaint).
const AGAIN: &[&str] = &[
    "报修{n}天了还没人来，",
    "上次修过了又坏了，",
    "打了{n}次电话都没人管，",
    "说好今天来修的结果没人来，",
    "修了{n}次还是这样，",
    "报修了一个礼拜没人理，",
    "师傅来了看一眼就走了，",
    "这个问题反映很多次了，",
];
const AGAIN_TAIL: &[&str] = &["你们到底管不管", "到底什么时候修", "物业费白交了", "太不负责了", "请给个说法", ""];
/// Second requests, which do not change the labels (the main request is first).
const ASIDES: &[&str] =
    &["顺便问一下物业费怎么交", "另外楼道灯也不太亮", "还有快递柜满了", "顺便问下停车费", "另外门禁卡也有点不灵"];
/// Homophones and slips of phone keyboards and voice input.
const SLIPS: &[(&str, &str)] = &[
    ("电梯", "电涕"),
    ("维修", "为修"),
    ("已经", "以经"),
    ("物业", "物页"),
    ("漏水", "露水"),
    ("马桶", "马通"),
    ("师傅", "师父"),
    ("坏了", "坏啦"),
    ("的", "得"),
    ("在", "再"),
    ("停车", "亭车"),
    ("插座", "插坐"),
    ("垃圾", "拉圾"),
    ("麻烦", "麻凡"),
    ("什么", "神马"),
    ("没有", "木有"),
    ("装修", "装休"),
    ("门禁", "门进"),
];

/// Which of a scenario's phrases a generation uses: all of them, or one of two disjoint parts
/// (for validation every fifth phrase and the last of every scenario that has two or more; the
/// others for training), so that the abstention thresholds are set on wordings the model has
/// not seen, in every scenario that can spare one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phrases {
    All,
    Training,
    Validation,
}

impl Phrases {
    fn keeps(self, index: usize, of: usize) -> bool {
        let validation = index % 5 == 4 || (of >= 2 && index == of - 1);
        match self {
            Phrases::All => true,
            Phrases::Training => !validation,
            Phrases::Validation => validation,
        }
    }
}

/// `count` examples from `seed`; the same seed always gives the same examples.
pub fn generate(seed: u64, count: usize) -> Result<Vec<Example>, TriageError> {
    generate_from(seed, count, Phrases::All)
}

/// `count` examples from `seed` using `phrases` of each scenario.
pub fn generate_from(seed: u64, count: usize, phrases: Phrases) -> Result<Vec<Example>, TriageError> {
    let scenarios: Vec<Scenario> = scenarios()?
        .into_iter()
        .map(|s| {
            let of = s.phrases.len();
            Scenario {
                labels: s.labels,
                phrases: s
                    .phrases
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| phrases.keeps(*i, of))
                    .map(|(_, p)| p)
                    .collect(),
            }
        })
        .filter(|s| !s.phrases.is_empty())
        .collect();
    if scenarios.is_empty() {
        return Err(TriageError::Data("no scenario has a phrase to generate from".into()));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let scenario = &scenarios[rng.random_range(0..scenarios.len())];
        let (text, labels) = message(&mut rng, scenario);
        out.push(Example::new(format!("g{seed}-{i}"), text, &labels));
    }
    Ok(out)
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

fn message(rng: &mut StdRng, scenario: &Scenario) -> (String, Labels) {
    let mut labels = scenario.labels.clone();
    let mut parts: Vec<String> = Vec::new();
    if rng.random_bool(0.4) {
        parts.push(pick(rng, GREETINGS).to_owned());
    }
    let template = pick(rng, &scenario.phrases);
    let chosen = fill(rng, template);
    let phrase = drop_span(rng, &chosen);
    let phrase = phrase.as_str();
    if !template.contains("{loc}") && rng.random_bool(0.35) {
        parts.push(pick(rng, INTROS).to_owned());
    }
    let repeat = labels.kind == Kind::Repair && !labels.urgent && rng.random_bool(0.18);
    if repeat {
        labels.kind = Kind::Complaint;
        labels.grade = labels.grade.max(Grade::Serious);
        parts.push(pick(rng, AGAIN).trim_end_matches('，').to_owned());
    }
    if matches!(labels.kind, Kind::Repair | Kind::Complaint) && rng.random_bool(0.25) {
        parts.push(format!("{}{phrase}", pick(rng, TIMES)));
    } else {
        parts.push(phrase.to_owned());
    }
    if rng.random_bool(0.07) {
        parts.push(pick(rng, ASIDES).to_owned());
    }
    if labels.urgent && rng.random_bool(0.4) || labels.kind == Kind::Complaint && rng.random_bool(0.25) {
        parts.push(pick(rng, EMOTIONS).to_owned());
    }
    let closer = if repeat {
        pick(rng, AGAIN_TAIL)
    } else {
        match labels.kind {
            Kind::Repair | Kind::Maintenance => pick(rng, REPAIR_CLOSERS),
            Kind::Complaint => pick(rng, COMPLAINT_CLOSERS),
            Kind::Inquiry => pick(rng, INQUIRY_CLOSERS),
            Kind::Suggestion => pick(rng, SUGGESTION_CLOSERS),
            Kind::Praise => pick(rng, PRAISE_CLOSERS),
        }
    };
    if rng.random_bool(0.6) {
        parts.push(closer.to_owned());
    }
    let separator = *[",", "，", "。", " ", "", "，", "，"].choose(rng).unwrap_or(&"，");
    let mut text = parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(separator);
    text.push_str(match labels.kind {
        Kind::Inquiry if rng.random_bool(0.6) => "？",
        _ if labels.urgent && rng.random_bool(0.6) => "！！",
        _ => ["", "。", "！", "", "~"].choose(rng).unwrap_or(&""),
    });
    let text = fill(rng, &text);
    (slips(rng, text), labels)
}

/// The alternatives (`[水管|水龙头]`, one chosen), the address, building, number and time slots.
fn fill(rng: &mut StdRng, text: &str) -> String {
    let mut text = text.to_owned();
    while let (Some(open), Some(close)) = (text.find('['), text.find(']')) {
        if close < open {
            break;
        }
        let choice = pick(rng, &text[open + 1..close].split('|').collect::<Vec<_>>()).to_owned();
        text.replace_range(open..=close, &choice);
    }
    while let Some(at) = text.find("{loc}") {
        let b = rng.random_range(1..=30);
        let u = rng.random_range(1..=4);
        let floor = rng.random_range(1..=33);
        let room = format!("{floor}{:02}", rng.random_range(1..=4));
        let loc = match rng.random_range(0..7) {
            0 => format!("{b}栋{u}单元{room}"),
            1 => format!("{b}-{u}-{room}"),
            2 => format!("{b}号楼{room}"),
            3 => format!("{b}幢{u}单元{room}室"),
            4 => format!("{b}#{room}"),
            5 => format!("{b}栋{room}"),
            _ => "我家".to_owned(),
        };
        text.replace_range(at..at + 5, &loc);
    }
    while let Some(at) = text.find("{bld}") {
        let b = rng.random_range(1..=30);
        let bld = match rng.random_range(0..5) {
            0 => format!("{b}栋"),
            1 => format!("{b}号楼"),
            2 => format!("{}号楼", chinese_number(b)),
            3 => format!("{b}幢"),
            _ => format!("{b}#楼"),
        };
        text.replace_range(at..at + 5, &bld);
    }
    while let Some(at) = text.find("{n}") {
        let n = rng.random_range(2..=30).to_string();
        text.replace_range(at..at + 3, &n);
    }
    while let Some(at) = text.find("{t}") {
        let t = pick(rng, &["早上八点", "晚上十一点", "凌晨两点", "中午", "昨天下午", "七点多"]).to_owned();
        text.replace_range(at..at + 3, &t);
    }
    text
}

/// 1..=99 in Chinese numerals (三, 十一, 二十, 二十六).
fn chinese_number(n: u32) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    let (tens, ones) = ((n / 10 % 10) as usize, (n % 10) as usize);
    let mut out = String::new();
    if tens > 1 {
        out.push_str(DIGITS[tens]);
    }
    if tens > 0 {
        out.push('十');
    }
    if ones > 0 || tens == 0 {
        out.push_str(DIGITS[ones]);
    }
    out
}

/// Now and then a short span of the phrase left out, so that no single word carries a label.
fn drop_span(rng: &mut StdRng, phrase: &str) -> String {
    let chars: Vec<char> = phrase.chars().collect();
    if chars.len() < 8 || !rng.random_bool(0.2) {
        return phrase.to_owned();
    }
    let length = rng.random_range(1..=2);
    let at = rng.random_range(0..chars.len() - length);
    chars[..at].iter().chain(&chars[at + length..]).collect()
}

/// Slips of the keyboard: a homophone now and then, a repeated character, dropped punctuation.
fn slips(rng: &mut StdRng, mut text: String) -> String {
    for (from, to) in SLIPS {
        if text.contains(from) && rng.random_bool(0.06) {
            text = text.replacen(from, to, 1);
        }
    }
    if rng.random_bool(0.05) {
        text = text.replacen('了', "了了", 1);
    }
    if rng.random_bool(0.1) {
        text.retain(|c| !matches!(c, '，' | ',' | '。'));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenarios_parse_and_cover_every_label() {
        let scenarios = scenarios().expect("parse");
        for kind in Kind::REPORTED {
            assert!(scenarios.iter().any(|s| s.labels.kind == *kind), "{kind}");
        }
        for category in Category::BUILT_IN {
            assert!(scenarios.iter().any(|s| &s.labels.category == category), "{category}");
        }
        for grade in Grade::ALL {
            assert!(scenarios.iter().any(|s| s.labels.grade == *grade), "{grade}");
        }
        assert!(scenarios.iter().all(|s| !s.phrases.is_empty()));
    }

    #[test]
    fn chinese_numerals_are_written_as_people_write_them() {
        let got: Vec<String> = [1, 10, 11, 20, 26, 30].into_iter().map(chinese_number).collect();
        assert_eq!(got, ["一", "十", "十一", "二十", "二十六", "三十"]);
    }

    #[test]
    fn the_validation_phrases_are_not_trained_on_and_every_scenario_with_two_gives_one() {
        for (i, of) in [(0, 1), (0, 2), (1, 2), (4, 9), (8, 9), (3, 9)] {
            assert_ne!(Phrases::Training.keeps(i, of), Phrases::Validation.keeps(i, of), "{i} of {of}");
        }
        assert!(Phrases::Validation.keeps(1, 2) && Phrases::Training.keeps(0, 1));
    }

    #[test]
    fn the_same_seed_gives_the_same_messages_and_slots_are_filled() {
        let a = generate(7, 500).expect("generate");
        let b = generate(7, 500).expect("generate");
        assert_eq!(a.iter().map(|e| &e.text).collect::<Vec<_>>(), b.iter().map(|e| &e.text).collect::<Vec<_>>());
        assert!(a.iter().all(|e| !e.text.contains('{') && !e.text.is_empty()));
        let c = generate(8, 500).expect("generate");
        assert_ne!(a[0].text, c[0].text);
    }
}
