//! The classifier: four fastText models (kind, category, grade, urgent) in one versioned file,
//! the per-class abstention thresholds, and the life-safety rules above them.
//!
//! The file: `LWTRIAGE` and a format number (u32 LE), a JSON header (u32 LE length: version,
//! options, thresholds), then for each field its fastText model (u64 LE length, fastText's own
//! format, quantized). The version is the first 12 hex digits of the SHA-256 of the models.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

use fasttext::FastText;
use fasttext::args::{Args, LossName, ModelName};
use loopwork_sync_core::{Category, Grade, Kind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::generator::{Phrases, generate_from};
use crate::rules::{self, Rule};
use crate::{Example, Labels, TriageError, features};

const MAGIC: &[u8; 8] = b"LWTRIAGE";
/// Format 1: characters only (a header without `features`, or with 1); format 2: the header's
/// `features` says what the model reads (1 or 2). A build that reads only format 1 refuses a
/// model of words rather than reading it with characters.
const FORMAT: u32 = 2;
/// A class's threshold is set from at least this many validation answers (else the field's).
const MIN_ANSWERS: usize = 30;
/// No model file may claim more than this (a corrupt length must not allocate gigabytes).
const MAX_PART: u64 = 64 << 20;

static DEFAULT: &[u8] = include_bytes!("../model/default.ltm");

/// The model the server ships with (`triage/model/default.ltm`, made by `loopwork triage train`).
pub fn default_model() -> Result<&'static Model, &'static TriageError> {
    static MODEL: OnceLock<Result<Model, TriageError>> = OnceLock::new();
    MODEL.get_or_init(|| Model::parse(std::borrow::Cow::Borrowed(DEFAULT))).as_ref()
}

/// The four things the assistant decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Kind,
    Category,
    Grade,
    Urgent,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Kind, Field::Category, Field::Grade, Field::Urgent];

    pub fn name(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Category => "category",
            Field::Grade => "grade",
            Field::Urgent => "urgent",
        }
    }

    /// This field's code in `labels`.
    pub fn code(self, labels: &Labels) -> String {
        match self {
            Field::Kind => labels.kind.code().to_owned(),
            Field::Category => labels.category.code(),
            Field::Grade => labels.grade.code().to_owned(),
            Field::Urgent => labels.urgent.to_string(),
        }
    }

    /// Every code of this field, in the vocabulary's order.
    pub fn codes(self) -> Vec<String> {
        match self {
            Field::Kind => Kind::REPORTED.iter().map(|k| k.code().to_owned()).collect(),
            Field::Category => Category::BUILT_IN.iter().map(|c| c.code()).collect(),
            Field::Grade => Grade::ALL.iter().map(|g| g.code().to_owned()).collect(),
            Field::Urgent => vec!["false".into(), "true".into()],
        }
    }
}

/// How a model is trained (kept in its header).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The generator's seed; the validation set uses `seed + 1`.
    pub seed: u64,
    /// Generated training messages.
    pub generated: usize,
    /// Generated validation messages (for the abstention thresholds).
    pub validation: usize,
    pub epochs: i32,
    pub dim: i32,
    pub learning_rate: f64,
    pub word_ngrams: i32,
    pub bucket: i32,
    /// The precision a class's answers must reach on the validation set to be given.
    pub target_precision: f32,
    /// No answer below this confidence, whatever the validation set says.
    pub floor: f32,
    /// When the model was trained (RFC 3339, from the caller's clock).
    pub trained_at: String,
    /// Product-quantize the models (a quarter of the size; most of the training time).
    #[serde(default = "yes")]
    pub quantize: bool,
    /// What the model reads (`features::tokens_for`): 1, characters; 2, characters and jieba's
    /// words. Models from before the field read characters.
    #[serde(default = "one")]
    pub features: u8,
}

fn yes() -> bool {
    true
}

fn one() -> u8 {
    1
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 20261206,
            generated: 24_000,
            validation: 3_000,
            epochs: 8,
            dim: 24,
            learning_rate: 0.5,
            word_ngrams: 3,
            bucket: 60_000,
            target_precision: 0.75,
            floor: 0.3,
            trained_at: String::new(),
            features: 2,
            quantize: true,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: String,
    options: TrainOptions,
    /// Labelled examples besides the generated ones (an organization's reclassifications).
    extra_examples: usize,
    /// Per field, per class: the least confidence at which the answer is given.
    thresholds: BTreeMap<String, BTreeMap<String, f32>>,
}

/// One field's answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FieldGuess {
    pub code: String,
    pub confidence: f32,
    /// Below this class's threshold: a person decides.
    pub abstain: bool,
}

/// What the assistant makes of a message.
#[derive(Clone, Debug)]
pub struct Classification {
    pub kind: Kind,
    pub category: Category,
    pub grade: Grade,
    pub urgent: bool,
    /// The least of the kind's, category's and grade's confidences.
    pub confidence: f32,
    /// A person should decide (the labels are still given). Never for a life-safety rule.
    pub abstain: bool,
    /// Each field's own answer from the model, before the rules.
    pub fields: [FieldGuess; 4],
    /// The life-safety rule that matched.
    pub rule: Option<&'static Rule>,
}

/// A trained assistant.
#[derive(Debug)]
pub struct Model {
    header: Header,
    fields: Vec<FastText>,
    bytes: std::borrow::Cow<'static, [u8]>,
}

impl Model {
    /// The model's version: the first 12 hex digits of its models' SHA-256.
    pub fn version(&self) -> &str {
        &self.header.version
    }

    pub fn options(&self) -> &TrainOptions {
        &self.header.options
    }

    /// The model file.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Reads a model file; anything else is a typed error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, TriageError> {
        Model::parse(std::borrow::Cow::Owned(bytes.to_vec()))
    }

    fn parse(file: std::borrow::Cow<'static, [u8]>) -> Result<Model, TriageError> {
        let bytes: &[u8] = &file;
        let bad = |what: &str| TriageError::Model(what.to_owned());
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("not a Loopwork triage model"))?;
        let (format, rest) = take_u32(rest).ok_or_else(|| bad("truncated"))?;
        if !(1..=FORMAT).contains(&format) {
            return Err(bad(&format!("format {format}; this build reads formats 1 to {FORMAT}")));
        }
        let (length, rest) = take_u32(rest).ok_or_else(|| bad("truncated"))?;
        let (header, mut rest) = split(rest, u64::from(length)).ok_or_else(|| bad("truncated header"))?;
        let header: Header = serde_json::from_slice(header).map_err(|e| bad(&format!("header: {e}")))?;
        match (format, header.options.features) {
            (1, 1) | (2, 1 | 2) => {}
            (_, features) => return Err(bad(&format!("features version {features} in a format {format} model"))),
        }
        // Every part is checked against the version before fastText parses any: a damaged file
        // is refused here. (The hash catches damage, not forgery: model files are made by
        // `loopwork triage train` and trusted like the binary.)
        let mut parts = Vec::new();
        let mut hasher = Sha256::new();
        for _ in Field::ALL {
            let (length, after) = take_u64(rest).ok_or_else(|| bad("truncated"))?;
            let (part, after) = split(after, length).ok_or_else(|| bad("truncated model"))?;
            hasher.update(part);
            parts.push(part);
            rest = after;
        }
        if !rest.is_empty() {
            return Err(bad("bytes after the last model"));
        }
        if hex(&hasher.finalize())[..12] != header.version {
            return Err(bad("the models do not match the version in the header"));
        }
        let mut fields = Vec::new();
        for (field, part) in Field::ALL.iter().zip(parts) {
            let model = FastText::load(&mut &part[..]).map_err(|e| bad(&format!("{}: {e}", field.name())))?;
            let (labels, _) = model.get_labels();
            let want: Vec<String> = field.codes().iter().map(|c| format!("__label__{c}")).collect();
            if labels.is_empty() || labels.iter().any(|l| !want.contains(l)) {
                return Err(bad(&format!("{}: labels {labels:?} are not this field's codes", field.name())));
            }
            fields.push(model);
        }
        Ok(Model { header, fields, bytes: file })
    }

    /// Trains on `extra` (an organization's labelled messages, given three times the weight of
    /// a generated one) and the generated messages of `options`.
    pub fn train(options: TrainOptions, extra: &[Example]) -> Result<Model, TriageError> {
        let mut examples = crate::generator::generate(options.seed, options.generated)?;
        for _ in 0..3 {
            examples.extend(extra.iter().cloned());
        }
        // Thresholds come from a model that has not seen the validation phrases.
        let mut held_out = generate_from(options.seed, options.generated / 2, Phrases::Training)?;
        for _ in 0..3 {
            held_out.extend(extra.iter().cloned());
        }
        let validation = generate_from(options.seed.wrapping_add(1), options.validation, Phrases::Validation)?;
        let tokenized = |examples: &[Example]| -> Result<Vec<(String, Labels)>, TriageError> {
            examples.iter().map(|e| Ok((features::tokens_for(options.features, &e.text), e.labels()?))).collect()
        };
        let labelled = tokenized(&examples)?;
        let held_out = tokenized(&held_out)?;
        let mut parts = Vec::new();
        let mut thresholds = BTreeMap::new();
        for field in Field::ALL {
            let probe = train_field(field, &options, &held_out, false)?;
            thresholds.insert(field.name().to_owned(), calibrate(field, &probe, &validation, &options)?);
            let model = train_field(field, &options, &labelled, options.quantize)?;
            let mut bytes = Vec::new();
            model.save(&mut bytes).map_err(|e| TriageError::Training(e.to_string()))?;
            parts.push(bytes);
        }
        let mut hasher = Sha256::new();
        for part in &parts {
            hasher.update(part);
        }
        let header = Header {
            version: hex(&hasher.finalize())[..12].to_owned(),
            options,
            extra_examples: extra.len(),
            thresholds,
        };
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        // Characters only stay format 1, which earlier builds read as they were trained.
        let format: u32 = if header.options.features == 1 { 1 } else { FORMAT };
        bytes.extend_from_slice(&format.to_le_bytes());
        let json = serde_json::to_vec(&header).map_err(|e| TriageError::Training(e.to_string()))?;
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        for part in &parts {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        Model::from_bytes(&bytes)
    }

    /// One field's answer for already tokenized text: the best code and its probability.
    fn guess(&self, field: Field, tokens: &str) -> (String, f32, BTreeMap<String, f32>) {
        let model = &self.fields[field as usize];
        let predictions = model.predict(tokens, 16, 0.0);
        let mut all = BTreeMap::new();
        for p in &predictions {
            all.insert(p.label.trim_start_matches("__label__").to_owned(), p.prob);
        }
        match predictions.first() {
            Some(best) => (best.label.trim_start_matches("__label__").to_owned(), best.prob.clamp(0.0, 1.0), all),
            None => (String::new(), 0.0, all),
        }
    }

    fn threshold(&self, field: Field, code: &str) -> f32 {
        self.header.thresholds.get(field.name()).and_then(|t| t.get(code)).copied().unwrap_or(self.header.options.floor)
    }

    /// Classifies one message. Text with nothing to read (empty, only punctuation or digits)
    /// abstains and is not urgent unless a rule says so.
    pub fn classify(&self, text: &str) -> Classification {
        let tokens = features::tokens_for(self.header.options.features, text);
        let rules = rules::life_safety_all(text);
        let mut guesses: Vec<FieldGuess> = Vec::with_capacity(4);
        let mut urgent_probability = 0.0;
        for field in Field::ALL {
            let (code, confidence, all) = self.guess(field, &tokens);
            if field == Field::Urgent {
                urgent_probability = all.get("true").copied().unwrap_or(0.0);
            }
            let abstain = code.is_empty() || confidence < self.threshold(field, &code);
            guesses.push(FieldGuess { code, confidence, abstain });
        }
        let kind = Kind::from_code(&guesses[0].code).unwrap_or(Kind::Repair);
        let mut category = Category::from_code(&guesses[1].code).unwrap_or(Category::Other);
        let mut grade = Grade::from_code(&guesses[2].code).unwrap_or(Grade::Minor);
        // Only punctuation and numbers: nothing to judge, a person reads it.
        let readable = tokens.split(' ').any(|t| !matches!(t, "!" | "?" | "<n>" | ""));
        let by_model = readable && urgent_probability >= 0.5;
        let urgent = !rules.is_empty() || by_model;
        // The rules: the highest grade among them, and the first category that is one.
        for rule in &rules {
            grade = grade.max(rule.grade);
        }
        if guesses[1].abstain
            && let Some(rule) = rules.iter().find(|r| r.category != Category::Other)
        {
            category = rule.category.clone();
        }
        let raised = urgent && grade < Grade::Severe;
        if urgent {
            grade = grade.max(Grade::Severe);
        }
        let confidence = guesses[..3].iter().map(|g| g.confidence).fold(1.0_f32, f32::min);
        // A grade raised by the urgent model alone is as sure as that model.
        let abstain =
            rules.is_empty() && (!readable || guesses[..3].iter().any(|g| g.abstain) || (raised && guesses[3].abstain));
        let fields: [FieldGuess; 4] = guesses.try_into().expect("four fields");
        Classification { kind, category, grade, urgent, confidence, abstain, fields, rule: rules.first().copied() }
    }
}

fn train_field(
    field: Field,
    options: &TrainOptions,
    examples: &[(String, Labels)],
    quantize: bool,
) -> Result<FastText, TriageError> {
    let mut file = tempfile::NamedTempFile::new()?;
    {
        let mut out = std::io::BufWriter::new(file.as_file_mut());
        for (tokens, labels) in examples {
            if tokens.is_empty() {
                continue;
            }
            writeln!(out, "__label__{} {tokens}", field.code(labels))?;
        }
        out.flush()?;
    }
    let args = Args {
        input: file.path().to_path_buf(),
        model: ModelName::Supervised,
        loss: LossName::Softmax,
        dim: options.dim,
        epoch: options.epochs,
        lr: options.learning_rate,
        word_ngrams: options.word_ngrams,
        bucket: options.bucket,
        minn: 0,
        maxn: 0,
        min_count: 1,
        thread: 1,
        seed: (options.seed % i32::MAX as u64) as i32,
        verbose: 0,
        ..Args::default()
    };
    let mut model = FastText::train(args.clone()).map_err(|e| TriageError::Training(e.to_string()))?;
    if quantize {
        let qargs = Args { dsub: 2, qnorm: true, cutoff: 0, retrain: false, qout: false, ..args };
        model.quantize(&qargs).map_err(|e| TriageError::Training(e.to_string()))?;
    }
    Ok(model)
}

/// Per class: the least confidence at which the class's answers on the validation set reach
/// the target precision (never below the floor).
fn calibrate(
    field: Field,
    model: &FastText,
    validation: &[Example],
    options: &TrainOptions,
) -> Result<BTreeMap<String, f32>, TriageError> {
    let mut by_class: BTreeMap<String, Vec<(f32, bool)>> = BTreeMap::new();
    for example in validation {
        let truth = field.code(&example.labels()?);
        let tokens = features::tokens_for(options.features, &example.text);
        if let Some(best) = model.predict(&tokens, 1, 0.0).first() {
            let code = best.label.trim_start_matches("__label__").to_owned();
            by_class.entry(code.clone()).or_default().push((best.prob, code == truth));
        }
    }
    // The lowest confidence down to which the answers given are precise enough; a class never
    // precise enough is never given without a person. A class with too few answers to tell
    // takes the field's threshold over all its answers.
    let threshold_of = |answers: &mut Vec<(f32, bool)>| {
        answers.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut right, mut threshold) = (0usize, 1.0_f32);
        for (i, (confidence, correct)) in answers.iter().enumerate() {
            right += usize::from(*correct);
            if right as f32 / (i + 1) as f32 >= options.target_precision {
                threshold = *confidence;
            }
        }
        threshold.max(options.floor)
    };
    let mut pooled: Vec<(f32, bool)> = by_class.values().flatten().copied().collect();
    let pooled = threshold_of(&mut pooled);
    let mut out = BTreeMap::new();
    for code in field.codes() {
        let mut answers = by_class.remove(&code).unwrap_or_default();
        let threshold = if answers.len() < MIN_ANSWERS { pooled } else { threshold_of(&mut answers) };
        out.insert(code, threshold);
    }
    Ok(out)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_at_checked(4)?;
    Some((u32::from_le_bytes(head.try_into().ok()?), rest))
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_at_checked(8)?;
    Some((u64::from_le_bytes(head.try_into().ok()?), rest))
}

fn split(bytes: &[u8], length: u64) -> Option<(&[u8], &[u8])> {
    if length > MAX_PART {
        return None;
    }
    bytes.split_at_checked(usize::try_from(length).ok()?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_model_loads_and_answers_the_issue_s_examples() {
        let model = default_model().expect("the built-in model loads");
        assert_eq!(model.version().len(), 12);
        let lift = model.classify("3栋电梯又坏了有人困在里面");
        assert!(lift.urgent && !lift.abstain && lift.grade >= Grade::Severe);
        assert_eq!(lift.rule.map(|r| r.code), Some("lift_trapped"));
        let fee = model.classify("请问物业费怎么交");
        assert_eq!((fee.kind, fee.urgent), (Kind::Inquiry, false));
        let empty = model.classify("!!!");
        assert!(empty.abstain && !empty.urgent);
    }

    #[test]
    fn a_damaged_model_file_is_a_typed_error_never_a_panic() {
        let bytes = default_model().expect("model").to_bytes();
        for cut in [0, 7, 8, 12, 16, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(Model::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Model::from_bytes(&longer).is_err());
        // A flipped byte inside a model no longer matches the version.
        let mut flipped = bytes.to_vec();
        let at = bytes.len() - 1000;
        flipped[at] ^= 0x55;
        assert!(Model::from_bytes(&flipped).is_err());
        let mut huge = bytes.to_vec();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Model::from_bytes(&huge).is_err());
    }

    #[test]
    fn a_model_of_words_is_format_2_and_format_1_is_characters_only() {
        let bytes = default_model().expect("model").to_bytes();
        assert_eq!(default_model().unwrap().options().features, 2);
        assert_eq!(bytes[8..12], 2u32.to_le_bytes(), "a model of words is format 2");
        // The same file said to be format 1 (characters only) is refused, not misread.
        let mut as_one = bytes.to_vec();
        as_one[8..12].copy_from_slice(&1u32.to_le_bytes());
        let refused = Model::from_bytes(&as_one).expect_err("format 1 with words");
        assert!(refused.to_string().contains("features version 2"), "{refused}");
        let mut as_three = bytes.to_vec();
        as_three[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert!(Model::from_bytes(&as_three).is_err());
    }
}
