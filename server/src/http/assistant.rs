//! The knowledge base and the owner bot (docs/triage.md, "The owner bot").
//!
//! - `GET/POST /api/v1/knowledge`, `PUT/DELETE /api/v1/knowledge/{id}`: the organization's
//!   articles; office staff read them all, owners the published ones; supervisors, managers and
//!   administrators write them.
//! - `POST /api/v1/assistant/messages`: an owner writes to the bot; the bot answers from an
//!   article, proposes a report (which becomes an order only through `POST /api/v1/orders` with
//!   the `conversation`), or hands over to a person.
//! - `GET /api/v1/assistant/conversations[/{id}]`: an owner's own, or office staff's (a
//!   dispatcher bound to projects: those of their projects: the owner's first unit's project,
//!   or that of the unit of the bot's last proposal); `…/{id}/handover` (the owner asks for a
//!   person), `…/{id}/replies` and `…/{id}/close` (office staff).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loopwork_sync_core::Role;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::AppState;
use crate::assistant::{BotTurn, ConversationChanged, bot_turn};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::http::extract::{Body, Params};
use crate::replication::Principal;
use crate::store::{
    ArticleInput, ArticleRecord, CONVERSATION_STATES, ConversationChange, ConversationFilter, ConversationRecord,
    ConversationSummary, NewMessage,
};

/// The longest message an owner or a staff member writes.
pub const MAX_MESSAGE_CHARS: usize = 1_000;
/// The most messages a conversation holds.
pub const MAX_MESSAGES: usize = 200;
/// An article's limits: title, body, keywords (count and each).
pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_BODY_CHARS: usize = 5_000;
pub const MAX_KEYWORDS: usize = 20;
pub const MAX_KEYWORD_CHARS: usize = 20;
/// The most articles an organization keeps.
pub const MAX_ARTICLES: usize = 500;
/// The most conversations an owner begins in 24 hours.
pub const MAX_CONVERSATIONS_A_DAY: i64 = 50;

/// An article as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleBody {
    /// 1 to 100 characters.
    pub title: String,
    /// At most 20, each 1 to 20 characters: words owners use for the article's topic.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// 1 to 5,000 characters.
    pub body: String,
    /// Whether it answers owners (default true).
    #[serde(default = "yes")]
    pub published: bool,
}

fn yes() -> bool {
    true
}

/// A message to the bot.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerMessage {
    /// The conversation it continues; none begins one.
    #[serde(default)]
    pub conversation: Option<String>,
    /// 1 to 1,000 characters.
    pub text: String,
}

/// A staff member's reply.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffReply {
    /// 1 to 1,000 characters.
    pub text: String,
}

/// `GET /api/v1/assistant/conversations`'s query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// `bot`, `waiting`, `answered` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
    /// 1 to 100 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Gives an organization from before the knowledge base its starter articles, once, before its
/// articles are read or written.
async fn starter_articles(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    crate::assistant::knowledge_version(state.db.as_ref(), &principal.org, state.clock.now_ms()).await?;
    Ok(())
}

fn may_write_articles(principal: &Principal) -> Result<(), ApiError> {
    if matches!(principal.role, Role::Supervisor | Role::Manager | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "supervisors, managers and administrators keep the knowledge base",
            "只有主管、经理和管理员可以维护知识库",
        ))
    }
}

fn text(value: &str) -> Result<String, ApiError> {
    crate::http::triage::checked_text(value, MAX_MESSAGE_CHARS).map(str::to_owned)
}

/// The bot's message for a turn: its words and the turn itself.
fn bot_message(bot: &BotTurn) -> Result<NewMessage, ApiError> {
    Ok(NewMessage {
        author: "bot",
        user: None,
        text: bot.text(),
        turn: Some(serde_json::to_value(bot).map_err(|_| ApiError::internal())?),
    })
}

fn article(body: ArticleBody) -> Result<ArticleInput, ApiError> {
    let bad = |en: String, zh: String| Err(ApiError::invalid("invalid_article", en, zh));
    let title = body.title.trim().to_owned();
    let text = body.body.trim().to_owned();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return bad(
            format!("title is 1 to {MAX_TITLE_CHARS} characters"),
            format!("标题须为 1 至 {MAX_TITLE_CHARS} 个字符"),
        );
    }
    if text.is_empty() || text.chars().count() > MAX_BODY_CHARS {
        return bad(
            format!("body is 1 to {MAX_BODY_CHARS} characters"),
            format!("正文须为 1 至 {MAX_BODY_CHARS} 个字符"),
        );
    }
    let mut keywords: Vec<String> = Vec::new();
    for k in body.keywords {
        let k = k.trim().to_owned();
        if k.is_empty() || k.chars().count() > MAX_KEYWORD_CHARS {
            return bad(
                format!("each keyword is 1 to {MAX_KEYWORD_CHARS} characters"),
                format!("每个关键词须为 1 至 {MAX_KEYWORD_CHARS} 个字符"),
            );
        }
        if !keywords.contains(&k) {
            keywords.push(k);
        }
    }
    if keywords.len() > MAX_KEYWORDS {
        return bad(format!("at most {MAX_KEYWORDS} keywords"), format!("关键词最多 {MAX_KEYWORDS} 个"));
    }
    Ok(ArticleInput { title, keywords, body: text, published: body.published })
}

/// `GET /api/v1/knowledge`: office staff read every article, owners the published ones.
pub async fn list_articles(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<ArticleRecord>>, ApiError> {
    let staff = principal.role.is_staff();
    if !staff && principal.role != Role::Owner {
        return Err(ApiError::forbidden(
            "owners and office staff read the knowledge base",
            "只有业主和客服人员可以查看知识库",
        ));
    }
    starter_articles(&state, &principal).await?;
    let mut articles = state.db.articles(&principal.org).await?;
    if !staff {
        articles.retain(|a| a.published);
    }
    Ok(Json(articles))
}

/// `POST /api/v1/knowledge` (201).
pub async fn create_article(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<ArticleBody>,
) -> Result<(StatusCode, Json<ArticleRecord>), ApiError> {
    may_write_articles(&principal)?;
    starter_articles(&state, &principal).await?;
    let input = article(body)?;
    if state.db.articles(&principal.org).await?.len() >= MAX_ARTICLES {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_articles",
            format!("an organization keeps at most {MAX_ARTICLES} articles"),
            format!("知识库最多 {MAX_ARTICLES} 篇文章"),
        ));
    }
    let saved = state
        .db
        .save_article(&principal.org, None, &input, &principal.user.to_string(), state.clock.now_ms())
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// `PUT /api/v1/knowledge/{id}`.
pub async fn update_article(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<ArticleBody>,
) -> Result<Json<ArticleRecord>, ApiError> {
    may_write_articles(&principal)?;
    starter_articles(&state, &principal).await?;
    let input = article(body)?;
    let saved = state
        .db
        .save_article(&principal.org, Some(&id), &input, &principal.user.to_string(), state.clock.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("article"))?;
    Ok(Json(saved))
}

/// `DELETE /api/v1/knowledge/{id}` (204).
pub async fn delete_article(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    may_write_articles(&principal)?;
    starter_articles(&state, &principal).await?;
    if !state.db.delete_article(&principal.org, &id).await? {
        return Err(ApiError::not_found("article"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The conversation if the caller may see it: its owner, or office staff serving its project;
/// 404 otherwise (as if there were none).
pub(crate) async fn visible(state: &AppState, principal: &Principal, id: &str) -> Result<ConversationRecord, ApiError> {
    let found = state.db.conversation(&principal.org, id).await?;
    let Some(c) = found else { return Err(ApiError::not_found("conversation")) };
    let allowed = if principal.role == Role::Owner {
        c.head.owner == principal.user.to_string()
    } else if principal.role.is_staff() {
        match state.db.served_projects(principal).await? {
            None => true,
            Some(projects) => c.head.project.as_ref().is_some_and(|p| projects.contains(p)),
        }
    } else {
        false
    };
    if allowed { Ok(c) } else { Err(ApiError::not_found("conversation")) }
}

fn waiting() -> ConversationChange<'static> {
    ConversationChange { state: Some("waiting"), project: None }
}

fn closed() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conversation_closed",
        "the conversation is closed; begin a new one",
        "会话已结束，请开始新的会话",
    )
}

fn full() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conversation_full",
        format!("a conversation holds at most {MAX_MESSAGES} messages; begin a new one"),
        format!("一次会话最多 {MAX_MESSAGES} 条消息，请开始新的会话"),
    )
}

/// `POST /api/v1/assistant/messages` (owners): the owner's message and the bot's turn, if it
/// takes one (it is silent while a person has the conversation, unless the message is urgent).
pub async fn owner_message(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Body(body): Body<OwnerMessage>,
) -> Result<Json<ConversationRecord>, ApiError> {
    if principal.role != Role::Owner {
        return Err(ApiError::forbidden("the assistant answers owners", "智能客服只回答业主"));
    }
    let said = text(&body.text)?;
    let now = state.clock.now_ms();
    let me = state.db.me(&principal).await?;
    let owner = principal.user.to_string();
    let c = match body.conversation.as_deref() {
        Some(id) => {
            let c = visible(&state, &principal, id).await?;
            if c.head.state == "closed" {
                return Err(closed());
            }
            if c.messages.len() + 2 > MAX_MESSAGES {
                return Err(full());
            }
            c
        }
        None => {
            if state.db.conversations_begun(&principal.org, &owner, now - 86_400_000).await? >= MAX_CONVERSATIONS_A_DAY
            {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_conversations",
                    format!("an owner begins at most {MAX_CONVERSATIONS_A_DAY} conversations a day"),
                    format!("每天最多发起 {MAX_CONVERSATIONS_A_DAY} 次咨询"),
                ));
            }
            let project = me.units.first().map(|u| u.project.as_str());
            let id = state.db.open_conversation(&principal.org, &owner, project, now).await?;
            visible(&state, &principal, &id).await?
        }
    };
    let model = state.triage.for_org(state.db.as_ref(), &principal.org).await?;
    let knowledge = state.knowledge.for_org(state.db.as_ref(), &principal.org, now).await?;
    // The classifier and the search take the CPU for a moment: off the request threads.
    let (words, units) = (said.clone(), me.units.clone());
    let bot = tokio::task::spawn_blocking(move || {
        let turn = loopwork_triage::bot::respond(&model, &knowledge, &words);
        bot_turn(&turn, &knowledge, &words, &units)
    })
    .await
    .map_err(|_| ApiError::internal())?;
    // A person has the conversation: the bot speaks only for an urgent report, and the owner's
    // words make it wait for that person again.
    let with_person = matches!(c.head.state.as_str(), "waiting" | "answered");
    let speaks = !with_person || matches!(&bot, BotTurn::Report { proposal } if proposal.urgent);
    let mut messages = vec![NewMessage { author: "owner", user: Some(owner), text: said, turn: None }];
    let mut change = ConversationChange { state: with_person.then_some("waiting"), project: None };
    if speaks {
        match &bot {
            BotTurn::Handover { .. } => change.state = Some("waiting"),
            BotTurn::Report { proposal } => change.project = proposal.unit.as_ref().map(|u| u.project.as_str()),
            _ => {}
        }
        messages.push(bot_message(&bot)?);
    }
    if !state.db.add_messages(&principal.org, &c.head.id, &messages, change, now).await? {
        return Err(closed());
    }
    let now_c = visible(&state, &principal, &c.head.id).await?;
    changed(&state, &principal.org, &now_c, with_person || change.state.is_some());
    Ok(Json(now_c))
}

/// Tells this process's live listeners that a conversation changed: its owner, and office staff
/// serving its project when `staff`.
pub(crate) fn changed(state: &AppState, org: &str, c: &ConversationRecord, staff: bool) {
    let _ = state.conversations.send(ConversationChanged {
        org: org.to_owned(),
        owner: c.head.owner.clone(),
        project: c.head.project.clone(),
        id: c.head.id.clone(),
        staff,
    });
}

/// Says in the conversation that its order was made (the registration's `conversation`; the
/// link was claimed before the order was made: [`claim`]).
pub(crate) async fn filed(
    state: &AppState,
    org: &str,
    c: &ConversationRecord,
    order: loopwork_sync_core::OrderId,
    number: &str,
    now: i64,
) -> Result<(), ApiError> {
    let bot = BotTurn::Filed { order: order.to_string(), number: number.to_owned() };
    let message = bot_message(&bot)?;
    state.db.add_messages(org, &c.head.id, &[message], ConversationChange::default(), now).await?;
    changed(state, org, c, true);
    Ok(())
}

/// Claims a conversation for the order about to be made from it: 409 `conversation_closed` or
/// `conversation_has_order` when it cannot be (another registration claimed it first).
pub(crate) async fn claim(
    state: &AppState,
    org: &str,
    c: &ConversationRecord,
    order: loopwork_sync_core::OrderId,
    now: i64,
) -> Result<(), ApiError> {
    if c.head.state == "closed" {
        return Err(closed());
    }
    if c.head.order_id.is_some() || !state.db.link_conversation(org, &c.head.id, &order.to_string(), now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conversation_has_order",
            "this conversation has already created an order",
            "该会话已生成工单",
        ));
    }
    Ok(())
}

/// `POST /api/v1/assistant/conversations/{id}/handover` (its owner): a person takes over.
/// Already with a person: unchanged.
pub async fn handover(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ConversationRecord>, ApiError> {
    if principal.role != Role::Owner {
        return Err(ApiError::forbidden("owners ask for a person", "只有业主可以转人工"));
    }
    let c = visible(&state, &principal, &id).await?;
    match c.head.state.as_str() {
        "closed" => return Err(closed()),
        "waiting" => return Ok(Json(c)),
        _ => {}
    }
    if c.messages.len() + 1 > MAX_MESSAGES {
        return Err(full());
    }
    let bot = BotTurn::Handover { reason: "asked".into() };
    let message = bot_message(&bot)?;
    if !state.db.add_messages(&principal.org, &c.head.id, &[message], waiting(), state.clock.now_ms()).await? {
        return Err(closed());
    }
    changed(&state, &principal.org, &c, true);
    Ok(Json(visible(&state, &principal, &c.head.id).await?))
}

/// `POST /api/v1/assistant/conversations/{id}/replies` (office staff): a person answers; the
/// conversation is `answered`.
pub async fn reply(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Body(body): Body<StaffReply>,
) -> Result<Json<ConversationRecord>, ApiError> {
    crate::auth::require_staff(&principal, "office staff answer owners", "只有客服人员可以回复业主")?;
    let said = text(&body.text)?;
    let c = visible(&state, &principal, &id).await?;
    if c.head.state == "closed" {
        return Err(closed());
    }
    if c.messages.len() + 1 > MAX_MESSAGES {
        return Err(full());
    }
    let message = NewMessage { author: "staff", user: Some(principal.user.to_string()), text: said, turn: None };
    let answered = ConversationChange { state: Some("answered"), project: None };
    if !state.db.add_messages(&principal.org, &c.head.id, &[message], answered, state.clock.now_ms()).await? {
        return Err(closed());
    }
    changed(&state, &principal.org, &c, true);
    Ok(Json(visible(&state, &principal, &c.head.id).await?))
}

/// `POST /api/v1/assistant/conversations/{id}/close` (office staff).
pub async fn close(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ConversationRecord>, ApiError> {
    crate::auth::require_staff(&principal, "office staff close conversations", "只有客服人员可以结束会话")?;
    let c = visible(&state, &principal, &id).await?;
    if c.head.state != "closed" {
        let closing = ConversationChange { state: Some("closed"), project: None };
        state.db.add_messages(&principal.org, &c.head.id, &[], closing, state.clock.now_ms()).await?;
        changed(&state, &principal.org, &c, true);
    }
    Ok(Json(visible(&state, &principal, &c.head.id).await?))
}

/// `GET /api/v1/assistant/conversations/{id}`.
pub async fn conversation(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ConversationRecord>, ApiError> {
    Ok(Json(visible(&state, &principal, &id).await?))
}

/// `GET /api/v1/assistant/conversations`: an owner's own; office staff's (bound dispatchers:
/// their projects'), the latest first.
pub async fn conversations(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Params(query): Params<ConversationQuery>,
) -> Result<Json<Vec<ConversationSummary>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("invalid_limit", "limit is 1 to 100", "limit 须为 1 至 100"));
    }
    if let Some(s) = query.state.as_deref()
        && !CONVERSATION_STATES.contains(&s)
    {
        return Err(ApiError::invalid(
            "invalid_state",
            "state is bot, waiting, answered or closed",
            "state 须为 bot、waiting、answered 或 closed",
        ));
    }
    let mut filter = ConversationFilter { state: query.state, limit, ..ConversationFilter::default() };
    if principal.role == Role::Owner {
        filter.owner = Some(principal.user.to_string());
    } else if principal.role.is_staff() {
        if state.db.served_projects(&principal).await?.is_some() {
            filter.served_by = Some(principal.user.to_string());
        }
    } else {
        return Err(ApiError::forbidden(
            "owners and office staff read conversations",
            "只有业主和客服人员可以查看会话",
        ));
    }
    Ok(Json(state.db.conversations(&principal.org, &filter).await?))
}
