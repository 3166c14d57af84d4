//! The owner bot as the server runs it (docs/triage.md, "The owner bot"): each organization's
//! knowledge base as a search index, rebuilt when its articles change; and the bot's turn as it
//! is stored with the conversation and sent to the owner's page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use loopwork_triage::bot::{HandoverReason, Turn};
use loopwork_triage::knowledge::{Article, KnowledgeIndex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{Database, StoreError, UnitRef};

/// A conversation changed in this process (a message, a hand-over, an order).
#[derive(Clone, Debug)]
pub struct ConversationChanged {
    pub org: String,
    /// The owner whose conversation it is: only they and the office staff serving `project` are
    /// told.
    pub owner: String,
    pub project: Option<String>,
    pub id: String,
    /// Whether office staff are told (not for the bot's own turns in a conversation no person
    /// has).
    pub staff: bool,
}

/// Each organization's published articles as a search index, rebuilt when the organization's
/// knowledge version moves (a change in any process is seen at the next question).
#[derive(Debug, Default)]
pub struct Knowledge {
    cache: Mutex<HashMap<String, (i64, Arc<KnowledgeIndex>)>>,
    /// One rebuild at a time (questions arriving meanwhile wait for it, then find it cached).
    rebuilding: tokio::sync::Mutex<()>,
}

impl Knowledge {
    /// The organization's index.
    pub async fn for_org(&self, db: &dyn Database, org: &str, now_ms: i64) -> Result<Arc<KnowledgeIndex>, StoreError> {
        let version = knowledge_version(db, org, now_ms).await?;
        let cached = |cache: &Mutex<HashMap<String, (i64, Arc<KnowledgeIndex>)>>| {
            cache.lock().expect("knowledge cache").get(org).filter(|(v, _)| *v == version).map(|(_, i)| i.clone())
        };
        if let Some(index) = cached(&self.cache) {
            return Ok(index);
        }
        let _one = self.rebuilding.lock().await;
        if let Some(index) = cached(&self.cache) {
            return Ok(index);
        }
        let articles: Vec<Article> = db
            .articles(org)
            .await?
            .into_iter()
            .filter(|a| a.published)
            .map(|a| Article { id: a.id, title: a.title, keywords: a.keywords, body: a.body })
            .collect();
        let index = tokio::task::spawn_blocking(move || KnowledgeIndex::build(&articles))
            .await
            .map_err(|e| StoreError::Corrupt { what: "knowledge index", detail: e.to_string() })?
            .map_err(|e| StoreError::Corrupt { what: "knowledge index", detail: e.to_string() })?;
        let index = Arc::new(index);
        self.cache.lock().expect("knowledge cache").insert(org.to_owned(), (version, index.clone()));
        Ok(index)
    }
}

/// The organization's knowledge version, after giving an organization from before the knowledge
/// base its starter articles (once: deleting every article later does not bring them back).
pub async fn knowledge_version(db: &dyn Database, org: &str, now_ms: i64) -> Result<i64, StoreError> {
    match db.knowledge_version(org).await? {
        0 => {
            if db.seed_knowledge_once(org, now_ms).await? {
                tracing::info!(%org, "an organization from before the knowledge base was given the starter articles");
            }
            db.knowledge_version(org).await
        }
        version => Ok(version),
    }
}

/// An article in the bot's answer.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ArticleRef {
    pub id: String,
    pub title: String,
    /// The whole body for the first article, the beginning for the others.
    pub text: String,
}

/// A life-safety rule the report matched.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RuleRef {
    pub code: String,
    pub zh: String,
    pub en: String,
}

/// The report the bot proposes, for the owner to confirm (`POST /api/v1/orders` with
/// `conversation`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReportProposal {
    pub kind: String,
    pub category: String,
    pub grade: String,
    pub urgent: bool,
    pub rule: Option<RuleRef>,
    /// The owner's unit the message names, else their first; none for an owner with no unit.
    pub unit: Option<UnitRef>,
    /// The owner's words, as the order's description.
    pub description: String,
}

/// What the bot did, kept with its message (`turn`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BotTurn {
    /// Articles that answer the question.
    Answer { articles: Vec<ArticleRef> },
    /// A report to confirm.
    Report { proposal: ReportProposal },
    /// Handed over to a person: `asked` (the owner asked) or `unsure`.
    Handover { reason: String },
    /// The order the conversation created.
    Filed { order: String, number: String },
}

impl BotTurn {
    /// The bot's words (zh-CN; the page shows its own language from the turn).
    pub fn text(&self) -> String {
        match self {
            BotTurn::Answer { articles } => match articles.first() {
                Some(a) => format!("关于「{}」：{}", a.title, a.text),
                None => String::new(),
            },
            BotTurn::Report { proposal } if proposal.urgent => {
                "这可能危及人身或财产安全，请确认下面的信息并立即提交；情况危急请同时拨打客服热线。".to_owned()
            }
            BotTurn::Report { .. } => "看起来需要报修或投诉，请确认下面的信息后提交。".to_owned(),
            BotTurn::Handover { reason } if reason == "asked" => "已为您转接人工客服，请稍候。".to_owned(),
            BotTurn::Handover { .. } => "这个问题我还不能确定，已为您转接人工客服，请稍候。".to_owned(),
            BotTurn::Filed { number, .. } => format!("已为您登记工单 {number}，可在「我的报修」查看进度。"),
        }
    }
}

/// The unit of `units` the message names (its code's last part, e.g. 1502 of 3-1502), else the
/// first.
pub fn unit_named(text: &str, units: &[UnitRef]) -> Option<UnitRef> {
    units
        .iter()
        .find(|u| {
            let room = u.unit.rsplit(['-', '_', ' ']).next().unwrap_or(&u.unit);
            room.chars().count() >= 3 && text.contains(room)
        })
        .or(units.first())
        .cloned()
}

/// The bot's turn as stored and sent.
pub fn bot_turn(turn: &Turn, knowledge: &KnowledgeIndex, text: &str, units: &[UnitRef]) -> BotTurn {
    match turn {
        Turn::Answer { hits } => BotTurn::Answer {
            // The first article, and those others that would answer too (no loose "see also").
            articles: hits
                .iter()
                .enumerate()
                .filter(|(i, h)| *i == 0 || h.answers())
                .map(|(i, h)| ArticleRef {
                    id: h.id.clone(),
                    title: h.title.clone(),
                    text: match knowledge.article(&h.id) {
                        Some(a) if i == 0 => a.body.clone(),
                        _ => h.excerpt.clone(),
                    },
                })
                .collect(),
        },
        Turn::Report(p) => BotTurn::Report {
            proposal: ReportProposal {
                kind: p.kind.code().to_owned(),
                category: p.category.code(),
                grade: p.grade.code().to_owned(),
                urgent: p.urgent,
                rule: p.rule.and_then(|code| {
                    loopwork_triage::rules::LIFE_SAFETY.iter().find(|r| r.code == code).map(|r| RuleRef {
                        code: r.code.to_owned(),
                        zh: r.label_zh.to_owned(),
                        en: r.label_en.to_owned(),
                    })
                }),
                unit: unit_named(text, units),
                description: text.to_owned(),
            },
        },
        Turn::Handover(reason) => BotTurn::Handover {
            reason: match reason {
                HandoverReason::Asked => "asked",
                HandoverReason::Unsure => "unsure",
            }
            .to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(building: &str, unit: &str) -> UnitRef {
        UnitRef { project: "p".into(), building: building.into(), unit: unit.into() }
    }

    #[test]
    fn the_unit_the_message_names() {
        let units = [unit("3", "3-1502"), unit("5", "5-0801")];
        assert_eq!(unit_named("5栋0801厨房漏水", &units).unwrap().unit, "5-0801");
        assert_eq!(unit_named("厨房漏水", &units).unwrap().unit, "3-1502");
        assert!(unit_named("厨房漏水", &[]).is_none());
    }
}
