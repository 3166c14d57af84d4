//! `POST /api/v1/triage`: the customer-service assistant for office staff (docs/triage.md).
//!
//! The message is classified by the organization's model (its own if it has one, else the
//! built-in one: `crate::triage`),
//! open orders of the same place and category from the last hours that read alike are offered
//! as duplicates, and a reply is suggested with the SLA promise the organization's calendar
//! gives for that classification.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use loopwork_sync_core::{OrderState, china_time};
use loopwork_triage::{Classification, duplicates, replies};
use schemas::*;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::Body;
use crate::store::OrderFilter;

/// The longest message the assistant reads.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Open orders created this recently are compared with a new message.
pub const DUPLICATE_HOURS: i64 = 12;
/// A candidate counts from these similarities (in the same unit, elsewhere in the building).
pub use loopwork_triage::duplicates::{SIMILAR, SIMILAR_SAME_UNIT};
/// At most this many duplicates are offered.
pub const MAX_DUPLICATES: usize = 5;

pub mod schemas {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use crate::store::OrderListItem;

    /// What the assistant is asked about.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TriageRequest {
        /// The owner's words, 1 to 2,000 characters.
        pub text: String,
        /// Where (a project code, and optionally a building and unit code): duplicates are
        /// looked for there; without a project none are.
        #[serde(default)]
        pub project: Option<String>,
        #[serde(default)]
        pub building: Option<String>,
        #[serde(default)]
        pub unit: Option<String>,
    }

    /// One field's own answer from the model.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct FieldAnswer {
        pub field: &'static str,
        pub code: String,
        pub confidence: f32,
        /// Below this class's threshold.
        pub abstain: bool,
    }

    /// The life-safety rule that matched.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct RuleAnswer {
        pub code: &'static str,
        pub zh: &'static str,
        pub en: &'static str,
    }

    /// An open order that may be the same incident.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct DuplicateAnswer {
        /// The overlap of the texts' character bigrams (shared over the shorter's; 0 under
        /// three shared), 0..1.
        pub similarity: f32,
        pub order: OrderListItem,
    }

    /// The assistant's answer: `loopwork triage classify`'s object plus what the desk shows.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TriageAnswer {
        pub kind: &'static str,
        pub category: String,
        pub grade: &'static str,
        pub urgent: bool,
        /// The least of the kind's, category's and grade's confidences, 0..1.
        pub confidence: f32,
        /// A person should decide (the labels are still given); never when `rule` is set.
        pub abstain: bool,
        pub fields: Vec<FieldAnswer>,
        pub rule: Option<RuleAnswer>,
        /// The model's version.
        pub model: String,
        pub duplicates: Vec<DuplicateAnswer>,
        /// A suggested reply to the owner (zh-CN), `{number}` left for the order's number.
        pub reply: String,
        /// The response deadline the SLA book gives this classification if registered now (ms).
        pub promise_at: Option<i64>,
    }
}

/// `POST /api/v1/triage` (office staff).
pub async fn triage(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<TriageRequest>,
) -> Result<Json<TriageAnswer>, ApiError> {
    crate::auth::require_staff(
        &principal,
        "only office staff use the assistant",
        "只有客服及管理人员可以使用智能分类",
    )?;
    let text = checked_text(&body.text, MAX_TEXT_CHARS)?;
    let model = state.triage.for_org(state.db.as_ref(), &principal.org).await?;
    let c = model.classify(text);
    let now = state.clock.now_ms();
    let book = crate::settings::sla_book(state.db.as_ref(), &principal.org).await?;
    let deadlines = book.deadlines(c.kind, &c.category, c.grade, &OrderState::initial(), now);
    let promise_at = deadlines.as_ref().map(|d| d.response_due_ms);
    let arrival_at = deadlines.as_ref().and_then(|d| d.arrival_due_ms).or(promise_at);
    let mut found = Vec::new();
    if let Some(project) = body.project.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        let filter = OrderFilter {
            status: Some("open".into()),
            category: Some(c.category.code()),
            project: Some(project.to_owned()),
            building: body.building.as_deref().map(str::trim).filter(|b| !b.is_empty()).map(str::to_owned),
            from: Some(now - DUPLICATE_HOURS * 3_600_000),
            limit: Some(100),
            sort: Some("created".into()),
            ..OrderFilter::default()
        };
        let unit = body.unit.as_deref().map(str::trim).filter(|u| !u.is_empty());
        for order in state.db.query_orders(&principal, &filter, now).await? {
            let similarity = duplicates::similarity(text, order.description.as_deref().unwrap_or(""));
            let same_unit = unit.is_some()
                && order.unit.as_deref() == unit
                && order.building.as_deref() == filter.building.as_deref();
            if similarity >= if same_unit { SIMILAR_SAME_UNIT } else { SIMILAR } {
                found.push(DuplicateAnswer { similarity: (similarity * 1000.0).round() / 1000.0, order });
            }
        }
        found.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        found.truncate(MAX_DUPLICATES);
    }
    let own = crate::settings::read::<crate::triage::ReplyTemplates>(state.db.as_ref(), &principal.org).await?.own();
    let template = replies::template(c.kind, &c.category, &own);
    Ok(Json(answer(&c, model.version(), template, found, promise_at, arrival_at)))
}

/// A message's text, trimmed: 1 to `max` characters, else 400 `invalid_text` (the assistant's
/// routes: `POST /api/v1/triage`, the owner bot's messages and staff replies).
pub(crate) fn checked_text(text: &str, max: usize) -> Result<&str, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(ApiError::invalid(
            "invalid_text",
            format!("text is 1 to {max} characters"),
            format!("内容须为 1 至 {max} 个字符"),
        ));
    }
    Ok(text)
}

fn answer(
    c: &Classification,
    version: &str,
    template: &str,
    duplicates: Vec<DuplicateAnswer>,
    promise_at: Option<i64>,
    arrival_at: Option<i64>,
) -> TriageAnswer {
    let when = |at: Option<i64>| at.map(china_time::minute).unwrap_or_else(|| "尽快".into());
    let slots = BTreeMap::from([
        ("category", c.category.label_zh().to_owned()),
        ("promise", when(promise_at)),
        ("arrival", when(arrival_at)),
        ("assignee", "维修师傅".to_owned()),
        ("next", String::new()),
    ]);
    let round = |x: f32| (x * 1000.0).round() / 1000.0;
    TriageAnswer {
        kind: c.kind.code(),
        category: c.category.code(),
        grade: c.grade.code(),
        urgent: c.urgent,
        confidence: round(c.confidence),
        abstain: c.abstain,
        fields: loopwork_triage::Field::ALL
            .iter()
            .zip(&c.fields)
            .map(|(field, guess)| FieldAnswer {
                field: field.name(),
                code: guess.code.clone(),
                confidence: round(guess.confidence),
                abstain: guess.abstain,
            })
            .collect(),
        rule: c.rule.map(|r| RuleAnswer { code: r.code, zh: r.label_zh, en: r.label_en }),
        model: version.to_owned(),
        duplicates,
        reply: replies::render(template, &slots),
        promise_at,
    }
}
