//! The assistant's models as the server uses them: each organization's active model (or the
//! built-in one), cached; and retraining on the organization's labelled orders, judged on the
//! frozen set before it may replace the model before (docs/triage.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loopwork_triage::eval::{self, Scores};
use loopwork_triage::{Example, Model, TrainOptions, TriageError, default_model};
use serde::Serialize;

use crate::error::ApiError;
use crate::settings::{Readers, Setting};
use crate::store::{Database, ModelRecord, StoreError};

/// How long a process keeps an organization's model before asking the database again (a model
/// activated by another process, or by `loopwork triage retrain`, is used within this).
pub const MODEL_TTL: Duration = Duration::from_secs(60);

/// A model in use: the built-in one or an organization's.
#[derive(Clone, Debug)]
pub enum ActiveModel {
    BuiltIn(&'static Model),
    Own(Arc<Model>),
}

impl std::ops::Deref for ActiveModel {
    type Target = Model;
    fn deref(&self) -> &Model {
        match self {
            ActiveModel::BuiltIn(model) => model,
            ActiveModel::Own(model) => model,
        }
    }
}

/// Each organization's model, read from the database at most once per [`MODEL_TTL`].
#[derive(Debug, Default)]
pub struct Models {
    cache: Mutex<HashMap<String, (Instant, ActiveModel)>>,
}

impl Models {
    /// The organization's active model; the built-in one when it has none, or when its stored
    /// model does not load (logged).
    pub async fn for_org(&self, db: &dyn Database, org: &str) -> Result<ActiveModel, StoreError> {
        if let Some((at, model)) = self.cache.lock().expect("model cache").get(org)
            && at.elapsed() < MODEL_TTL
        {
            return Ok(model.clone());
        }
        let built_in = || {
            default_model().map(ActiveModel::BuiltIn).map_err(|e| {
                tracing::error!(error = %e, "the built-in triage model does not load");
                StoreError::Corrupt { what: "built-in triage model", detail: e.to_string() }
            })
        };
        let model = match db.active_triage_model(org).await? {
            Some((version, bytes)) => match Model::from_bytes(&bytes) {
                Ok(model) => ActiveModel::Own(Arc::new(model)),
                Err(e) => {
                    tracing::error!(error = %e, %version, "an organization's triage model does not load; the built-in one is used");
                    built_in()?
                }
            },
            None => built_in()?,
        };
        let mut cache = self.cache.lock().expect("model cache");
        cache.retain(|_, (at, _)| at.elapsed() < MODEL_TTL);
        cache.insert(org.to_owned(), (Instant::now(), model.clone()));
        Ok(model)
    }

    /// Forgets the organization's model (after this process activated another).
    pub fn forget(&self, org: &str) {
        self.cache.lock().expect("model cache").remove(org);
    }
}

/// What a retraining did.
#[derive(Debug, Serialize)]
pub struct Retrained {
    pub version: String,
    /// Labelled orders it learnt from.
    pub labels: usize,
    pub scores: Scores,
    /// The active model's version before (`built-in` for the built-in one) and its scores.
    pub before: String,
    pub before_scores: Scores,
    /// Whether it is now the organization's model (no worse than the one before, or forced).
    pub activated: bool,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Triage(#[from] TriageError),
}

/// Trains a model on the generated messages, the built-in labelled set and the organization's
/// labelled orders; scores it and the active model on the frozen set; keeps it, and makes it
/// the organization's model if it is no worse (or `force`). Runs on a blocking thread: it
/// takes tens of seconds.
pub async fn retrain(
    db: &dyn Database,
    models: &Models,
    org: &str,
    options: TrainOptions,
    force: bool,
    now_ms: i64,
) -> Result<Retrained, RetrainError> {
    let started = Instant::now();
    let labels = db.triage_labels(org).await?;
    let mut extra: Vec<Example> = eval::dev_set()?;
    extra.extend(labels.iter().map(|l| Example {
        id: l.order.clone(),
        text: l.description.clone(),
        kind: l.kind.clone(),
        category: l.category.clone(),
        grade: l.grade.clone(),
        urgent: l.urgent,
    }));
    let before = models.for_org(db, org).await?;
    let before_version = match &before {
        ActiveModel::BuiltIn(_) => "built-in".to_owned(),
        ActiveModel::Own(model) => model.version().to_owned(),
    };
    let (model, scores, before_scores) = tokio::task::spawn_blocking(move || {
        let frozen = eval::frozen()?;
        let model = Model::train(options, &extra)?;
        let scores = eval::evaluate(&model, &frozen)?.scores();
        let before_scores = eval::evaluate(&before, &frozen)?.scores();
        Ok::<_, TriageError>((model, scores, before_scores))
    })
    .await
    .map_err(|e| TriageError::Training(e.to_string()))??;
    let record = ModelRecord {
        version: model.version().to_owned(),
        trained_at: now_ms,
        labels: labels.len() as i64,
        scores: serde_json::to_value(&scores).unwrap_or_default(),
        active: false,
        activated_at: None,
    };
    db.save_triage_model(org, &record, model.to_bytes()).await?;
    let activated = force || scores.no_worse_than(&before_scores);
    if activated {
        db.activate_triage_model(org, Some(model.version()), now_ms, false).await?;
        models.forget(org);
    }
    Ok(Retrained {
        version: model.version().to_owned(),
        labels: labels.len(),
        scores,
        before: before_version,
        before_scores,
        activated,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Makes the organization's model the one active before the current one (by when each was
/// activated), or the built-in one if there was none; the current one is retired (a second
/// rollback goes further back, not forth). The version now in use (`None`: built-in).
pub async fn rollback(
    db: &dyn Database,
    models: &Models,
    org: &str,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    let list = db.triage_models(org).await?;
    let mut earlier: Vec<&ModelRecord> = list.iter().filter(|m| !m.active && m.activated_at.is_some()).collect();
    earlier.sort_by_key(|m| std::cmp::Reverse(m.activated_at));
    let target = earlier.first().map(|m| m.version.clone());
    db.activate_triage_model(org, target.as_deref(), now_ms, true).await?;
    models.forget(org);
    Ok(target)
}

/// A scheduled retraining waits for at least this many labels more than the organization's
/// newest model learnt from.
pub const NEW_LABELS_TO_RETRAIN: i64 = 20;

/// One scheduled round: every organization with [`NEW_LABELS_TO_RETRAIN`] new labels is
/// retrained (never forced: a worse model is kept but not used). What each did.
pub async fn retrain_due(
    state: &crate::AppState,
    options: &TrainOptions,
) -> Result<Vec<(String, Retrained)>, RetrainError> {
    let mut done = Vec::new();
    for (org, labels) in state.db.triage_label_counts().await? {
        let last = state.db.triage_models(&org).await?.first().map_or(0, |m| m.labels);
        if labels - last < NEW_LABELS_TO_RETRAIN {
            continue;
        }
        let options = TrainOptions { trained_at: jiff::Timestamp::now().to_string(), ..options.clone() };
        // One organization's failure does not stop the others'.
        match retrain(state.db.as_ref(), &state.triage, &org, options, false, state.clock.now_ms()).await {
            Ok(outcome) => done.push((org, outcome)),
            Err(e) => tracing::error!(%org, error = %e, "triage retraining failed"),
        }
    }
    Ok(done)
}

/// The most templates an organization keeps, and the longest one.
pub const MAX_TEMPLATES: usize = 100;
pub const MAX_TEMPLATE_CHARS: usize = 500;

/// The organization's own reply templates (`GET`/`PUT /api/v1/settings/reply-templates`; office
/// staff read them, administrators write them): the suggested reply of `POST /api/v1/triage`
/// uses the one for the kind and category, else the one for the kind, else the built-in one
/// (`loopwork_triage::replies::template`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyTemplates {
    pub templates: Vec<ReplyTemplate>,
}

/// One template: `{number}`, `{category}`, `{promise}`, `{arrival}`, `{assignee}` and `{next}`
/// are filled from the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyTemplate {
    /// A kind code.
    pub kind: String,
    /// A category code; none: every category of the kind.
    #[serde(default)]
    pub category: Option<String>,
    /// 1 to 500 characters.
    pub text: String,
}

impl ReplyTemplates {
    /// The templates as the assistant uses them (stored ones were checked when written).
    pub fn own(&self) -> Vec<loopwork_triage::replies::OwnTemplate> {
        use loopwork_sync_core::{Category, Kind};
        self.templates
            .iter()
            .filter_map(|t| {
                Some(loopwork_triage::replies::OwnTemplate {
                    kind: Kind::from_code(&t.kind).ok()?,
                    category: match &t.category {
                        Some(c) => Some(Category::from_code(c).ok()?),
                        None => None,
                    },
                    text: t.text.clone(),
                })
            })
            .collect()
    }
}

impl Setting for ReplyTemplates {
    const NAME: &'static str = "reply-templates";
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the reply templates", "只有管理员可以修改回复模板");

    fn seeded() -> Self {
        ReplyTemplates::default()
    }

    /// Known kind and category codes, 1 to 500 characters with no unknown slot, one template per
    /// kind and category, at most 100.
    fn check(self) -> Result<Self, ApiError> {
        use loopwork_sync_core::{Category, Kind};
        let bad = |en: String, zh: String| Err(ApiError::invalid("invalid_template", en, zh));
        if self.templates.len() > MAX_TEMPLATES {
            return bad(format!("at most {MAX_TEMPLATES} templates"), format!("回复模板最多 {MAX_TEMPLATES} 条"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(self.templates.len());
        for (i, t) in self.templates.into_iter().enumerate() {
            let n = i + 1;
            if Kind::from_code(&t.kind).is_err() {
                return bad(
                    format!("template {n}: `{}` is not a kind", t.kind.chars().take(40).collect::<String>()),
                    format!("第 {n} 条:类型无效"),
                );
            }
            let category = t.category.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
            if let Some(c) = &category
                && Category::from_code(c).is_err()
            {
                return bad(
                    format!("template {n}: `{}` is not a category", c.chars().take(40).collect::<String>()),
                    format!("第 {n} 条:类别无效"),
                );
            }
            let text = t.text.trim().to_owned();
            if text.is_empty() || text.chars().count() > MAX_TEMPLATE_CHARS {
                return bad(
                    format!("template {n}: the text is 1 to {MAX_TEMPLATE_CHARS} characters"),
                    format!("第 {n} 条:内容须为 1 至 {MAX_TEMPLATE_CHARS} 个字符"),
                );
            }
            let unknown = loopwork_triage::replies::unknown_slots(&text);
            if !unknown.is_empty() {
                let names = unknown
                    .iter()
                    .map(|u| format!("{{{}}}", u.chars().take(20).collect::<String>()))
                    .collect::<Vec<_>>()
                    .join(" ");
                return bad(
                    format!(
                        "template {n}: unknown slots {names} (known: {{number}} {{category}} {{promise}} {{arrival}} {{assignee}} {{next}})"
                    ),
                    format!("第 {n} 条:未知的占位符 {names}"),
                );
            }
            if !seen.insert((t.kind.clone(), category.clone())) {
                return bad(
                    format!("template {n}: a second template for the same kind and category"),
                    format!("第 {n} 条:同一类型和类别只能有一条模板"),
                );
            }
            out.push(ReplyTemplate { kind: t.kind, category, text });
        }
        Ok(ReplyTemplates { templates: out })
    }
}
