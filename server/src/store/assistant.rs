//! The knowledge base (`kb_articles`, `kb_versions`) and the owner bot's conversations
//! (`conversations`, `conversation_messages`): docs/triage.md, "The owner bot".

use super::*;

/// An article as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ArticleRecord {
    pub id: String,
    pub title: String,
    pub keywords: Vec<String>,
    pub body: String,
    /// Only published articles answer owners.
    pub published: bool,
    pub updated_at: i64,
}

/// An article's fields as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArticleInput {
    pub title: String,
    pub keywords: Vec<String>,
    pub body: String,
    pub published: bool,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MessageRecord {
    pub seq: i64,
    /// `owner`, `bot` or `staff`.
    pub author: String,
    /// A staff member's name (`staff` messages).
    pub by: Option<String>,
    pub text: String,
    /// What the bot did (`bot` messages).
    #[schemars(with = "Option<crate::assistant::BotTurn>")]
    pub turn: Option<serde_json::Value>,
    pub at: i64,
}

/// What a conversation is, with or without its messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConversationHead {
    pub id: String,
    /// The owner (a user id).
    pub owner: String,
    /// The owner's first unit (by building and code) in the conversation's project, and its
    /// building, for the desk.
    pub unit: Option<String>,
    pub building: Option<String>,
    pub project: Option<String>,
    /// `bot`, `waiting` (handed over to a person), `answered` (a person replied) or `closed`.
    pub state: String,
    /// The order it created.
    pub order_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub waiting_since: Option<i64>,
}

/// A conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConversationRecord {
    #[serde(flatten)]
    pub head: ConversationHead,
    pub messages: Vec<MessageRecord>,
}

/// A conversation in a list: its last message instead of all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub head: ConversationHead,
    pub last: Option<MessageRecord>,
}

/// A message to append.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub author: &'static str,
    pub user: Option<String>,
    pub text: String,
    pub turn: Option<serde_json::Value>,
}

/// Which conversations a list holds.
#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    /// One owner's.
    pub owner: Option<String>,
    pub state: Option<String>,
    /// Those of a dispatcher's projects (a dispatcher bound to projects: their user id).
    pub served_by: Option<String>,
    pub limit: i64,
}

/// The conversation states.
pub const CONVERSATION_STATES: [&str; 4] = ["bot", "waiting", "answered", "closed"];

#[async_trait]
pub trait Assistant: Send + Sync {
    /// The organization's articles, by title.
    async fn articles(&self, org: &str) -> Result<Vec<ArticleRecord>>;
    /// A number that moves with every change of the organization's articles; 0 for an
    /// organization that never had a knowledge base (one from before it existed).
    async fn knowledge_version(&self, org: &str) -> Result<i64>;
    /// Gives an organization that never had a knowledge base the starter articles, once (of two
    /// processes at once, one writes them); whether this call did.
    async fn seed_knowledge_once(&self, org: &str, now_ms: i64) -> Result<bool>;
    /// Writes an article: a new one (`id` `None`) or a change; `None` when `id` is not one of the
    /// organization's.
    async fn save_article(
        &self,
        org: &str,
        id: Option<&str>,
        article: &ArticleInput,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<ArticleRecord>>;
    /// Deletes an article; whether it was the organization's.
    async fn delete_article(&self, org: &str, id: &str) -> Result<bool>;

    /// Begins a conversation of an owner.
    async fn open_conversation(&self, org: &str, owner: &str, project: Option<&str>, now_ms: i64) -> Result<String>;
    /// A conversation of the organization with its messages.
    async fn conversation(&self, org: &str, id: &str) -> Result<Option<ConversationRecord>>;
    /// The conversation an order was created from.
    async fn order_conversation(&self, org: &str, order_id: &str) -> Result<Option<String>>;
    /// Conversations, the latest first.
    async fn conversations(&self, org: &str, filter: &ConversationFilter) -> Result<Vec<ConversationSummary>>;
    /// Appends messages, in order, and moves the conversation to `state` (when given; `waiting`
    /// stamps `waiting_since` unless already waiting) and to `project` (when given). `false`
    /// when it is not the organization's, or is closed (unless `state` closes it).
    async fn add_messages(
        &self,
        org: &str,
        id: &str,
        messages: &[NewMessage],
        change: ConversationChange<'_>,
        now_ms: i64,
    ) -> Result<bool>;
    /// Records the order a conversation creates, before the order is made; `false` when it
    /// already has one, is closed or is not the organization's.
    async fn link_conversation(&self, org: &str, id: &str, order_id: &str, now_ms: i64) -> Result<bool>;
    /// Undoes [`Assistant::link_conversation`] when the order could not be made.
    async fn unlink_conversation(&self, org: &str, id: &str, order_id: &str) -> Result<()>;
    /// How many conversations the owner began since `since_ms`.
    async fn conversations_begun(&self, org: &str, owner: &str, since_ms: i64) -> Result<i64>;
}

/// How [`Assistant::add_messages`] moves a conversation.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConversationChange<'a> {
    pub state: Option<&'a str>,
    /// The project the conversation is about (a proposed report's unit's).
    pub project: Option<&'a str>,
}

type ConversationRow =
    (String, String, Option<String>, Option<String>, Option<String>, String, Option<String>, i64, i64, Option<i64>);

const CONVERSATION_COLUMNS: &str = "id, owner_id,
     (SELECT unit FROM owner_units WHERE user_id = c.owner_id AND project = c.project ORDER BY building, unit LIMIT 1),
     (SELECT building FROM owner_units WHERE user_id = c.owner_id AND project = c.project ORDER BY building, unit LIMIT 1),
     project, state, order_id, created_at, updated_at, waiting_since";

type MessageRow = (i64, String, Option<String>, String, Option<String>, i64);

fn head(row: ConversationRow) -> ConversationHead {
    let (id, owner, unit, building, project, state, order_id, created_at, updated_at, waiting_since) = row;
    ConversationHead { id, owner, unit, building, project, state, order_id, created_at, updated_at, waiting_since }
}

fn message(row: MessageRow) -> MessageRecord {
    let (seq, author, by, text, turn, at) = row;
    MessageRecord { seq, author, by, text, turn: turn.and_then(|t| serde_json::from_str(&t).ok()), at }
}

const MESSAGE_COLUMNS: &str =
    "m.seq, m.author, (SELECT display_name FROM users WHERE id = m.user_id AND m.author = 'staff'),
     m.text, m.turn, m.at";

#[async_trait]
impl<B: Backend> Assistant for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    async fn articles(&self, org: &str) -> Result<Vec<ArticleRecord>> {
        let rows: Vec<(String, String, String, String, bool, i64)> = sqlx::query_as(
            "SELECT id, title, keywords, body, published, updated_at FROM kb_articles WHERE org_id = $1 ORDER BY title, id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, title, keywords, body, published, updated_at)| {
                let keywords = serde_json::from_str(&keywords)
                    .map_err(|e| StoreError::Corrupt { what: "an article's keywords", detail: e.to_string() })?;
                Ok(ArticleRecord { id, title, keywords, body, published, updated_at })
            })
            .collect()
    }

    async fn knowledge_version(&self, org: &str) -> Result<i64> {
        let version: Option<(i64,)> = sqlx::query_as("SELECT version FROM kb_versions WHERE org_id = $1")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?;
        Ok(version.map_or(0, |(v,)| v))
    }

    async fn seed_knowledge_once(&self, org: &str, now_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let claimed =
            sqlx::query("INSERT INTO kb_versions (org_id, version) VALUES ($1, 0) ON CONFLICT (org_id) DO NOTHING")
                .bind(org)
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        seed_articles(&mut tx, org, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn save_article(
        &self,
        org: &str,
        id: Option<&str>,
        article: &ArticleInput,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<ArticleRecord>> {
        let keywords = serde_json::to_string(&article.keywords).expect("strings serialize");
        let mut tx = B::begin_write(&self.pool).await?;
        let id = match id {
            Some(id) => {
                let done = sqlx::query(
                    "UPDATE kb_articles SET title = $3, keywords = $4, body = $5, published = $6, updated_at = $7, updated_by = $8
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(org)
                .bind(id)
                .bind(article.title.as_str())
                .bind(keywords.as_str())
                .bind(article.body.as_str())
                .bind(article.published)
                .bind(now_ms)
                .bind(by)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                id.to_owned()
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                insert_article(&mut tx, org, &id, article, &keywords, Some(by), now_ms).await?;
                id
            }
        };
        bump_knowledge::<B>(&mut tx, org).await?;
        tx.commit().await?;
        Ok(Some(ArticleRecord {
            id,
            title: article.title.clone(),
            keywords: article.keywords.clone(),
            body: article.body.clone(),
            published: article.published,
            updated_at: now_ms,
        }))
    }

    async fn delete_article(&self, org: &str, id: &str) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let done = sqlx::query("DELETE FROM kb_articles WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_knowledge::<B>(&mut tx, org).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn open_conversation(&self, org: &str, owner: &str, project: Option<&str>, now_ms: i64) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO conversations (id, org_id, owner_id, project, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'bot', $5, $5)",
        )
        .bind(id.as_str())
        .bind(org)
        .bind(owner)
        .bind(project)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn conversation(&self, org: &str, id: &str) -> Result<Option<ConversationRecord>> {
        let row: Option<ConversationRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE org_id = $1 AND id = $2"
        )))
        .bind(org)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let head = head(row);
        let messages: Vec<MessageRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM conversation_messages m WHERE m.conversation_id = $1 ORDER BY m.seq"
        )))
        .bind(head.id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(ConversationRecord { head, messages: messages.into_iter().map(message).collect() }))
    }

    async fn order_conversation(&self, org: &str, order_id: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM conversations WHERE org_id = $1 AND order_id = $2")
            .bind(org)
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn conversations(&self, org: &str, filter: &ConversationFilter) -> Result<Vec<ConversationSummary>> {
        let rows: Vec<ConversationRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c
             WHERE org_id = $1 AND ($2 IS NULL OR owner_id = $2) AND ($3 IS NULL OR state = $3)
               AND ($4 IS NULL OR project IN (SELECT project FROM staff_projects WHERE user_id = $4))
             ORDER BY updated_at DESC, id DESC LIMIT $5"
        )))
        .bind(org)
        .bind(filter.owner.as_deref())
        .bind(filter.state.as_deref())
        .bind(filter.served_by.as_deref())
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        // The last message of each, in one statement.
        let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let mut last: HashMap<String, MessageRecord> = HashMap::new();
        if !ids.is_empty() {
            let marks = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT m.conversation_id, {MESSAGE_COLUMNS} FROM conversation_messages m
                 WHERE m.conversation_id IN ({marks})
                   AND m.seq = (SELECT MAX(seq) FROM conversation_messages WHERE conversation_id = m.conversation_id)"
            );
            let mut query = sqlx::query_as::<_, (String, i64, String, Option<String>, String, Option<String>, i64)>(
                AssertSqlSafe(sql),
            );
            for id in &ids {
                query = query.bind(*id);
            }
            for (conversation, seq, author, by, text, turn, at) in query.fetch_all(&self.pool).await? {
                last.insert(conversation, message((seq, author, by, text, turn, at)));
            }
        }
        let out = rows
            .into_iter()
            .map(|row| {
                let head = head(row);
                let last = last.remove(&head.id);
                ConversationSummary { head, last }
            })
            .collect();
        Ok(out)
    }

    async fn add_messages(
        &self,
        org: &str,
        id: &str,
        messages: &[NewMessage],
        change: ConversationChange<'_>,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let done = sqlx::query(
            "UPDATE conversations SET updated_at = $3, state = COALESCE($4, state), project = COALESCE($5, project),
                    waiting_since = CASE WHEN $4 = 'waiting' THEN COALESCE(waiting_since, $3)
                                         WHEN $4 IS NULL THEN waiting_since ELSE NULL END
             WHERE org_id = $1 AND id = $2 AND (state <> 'closed' OR $4 = 'closed')",
        )
        .bind(org)
        .bind(id)
        .bind(now_ms)
        .bind(change.state)
        .bind(change.project)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(seq) FROM conversation_messages WHERE conversation_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let mut seq = last.unwrap_or(0);
        for m in messages {
            seq += 1;
            let turn = m.turn.as_ref().map(|t| t.to_string());
            sqlx::query(
                "INSERT INTO conversation_messages (conversation_id, seq, author, user_id, text, turn, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(seq)
            .bind(m.author)
            .bind(m.user.as_deref())
            .bind(m.text.as_str())
            .bind(turn.as_deref())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn link_conversation(&self, org: &str, id: &str, order_id: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE conversations SET order_id = $3, updated_at = $4
             WHERE org_id = $1 AND id = $2 AND order_id IS NULL AND state <> 'closed'",
        )
        .bind(org)
        .bind(id)
        .bind(order_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unlink_conversation(&self, org: &str, id: &str, order_id: &str) -> Result<()> {
        sqlx::query("UPDATE conversations SET order_id = NULL WHERE org_id = $1 AND id = $2 AND order_id = $3")
            .bind(org)
            .bind(id)
            .bind(order_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn conversations_begun(&self, org: &str, owner: &str, since_ms: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM conversations WHERE org_id = $1 AND owner_id = $2 AND created_at >= $3",
        )
        .bind(org)
        .bind(owner)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}

/// Inserts an article (a new organization's starter articles, an administrator's new one).
pub(crate) async fn insert_article<B: Backend>(
    tx: &mut sqlx::Transaction<'_, B>,
    org: &str,
    id: &str,
    article: &ArticleInput,
    keywords: &str,
    by: Option<&str>,
    now_ms: i64,
) -> Result<()>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    for<'s> &'s str: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    bool: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    sqlx::query(
        "INSERT INTO kb_articles (org_id, id, title, keywords, body, published, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(org)
    .bind(id)
    .bind(article.title.as_str())
    .bind(keywords)
    .bind(article.body.as_str())
    .bind(article.published)
    .bind(now_ms)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the organization's knowledge version.
pub(crate) async fn bump_knowledge<B: Backend>(tx: &mut sqlx::Transaction<'_, B>, org: &str) -> Result<()>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    for<'s> &'s str: sqlx::Encode<'s, B> + sqlx::Type<B>,
{
    sqlx::query(
        "INSERT INTO kb_versions (org_id, version) VALUES ($1, 1)
         ON CONFLICT (org_id) DO UPDATE SET version = kb_versions.version + 1",
    )
    .bind(org)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the starter articles (`loopwork_triage::knowledge::starter_articles`) of a new
/// organization.
pub(crate) async fn seed_articles<B: Backend>(tx: &mut sqlx::Transaction<'_, B>, org: &str, now_ms: i64) -> Result<()>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    for<'s> &'s str: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    bool: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    for a in loopwork_triage::knowledge::starter_articles() {
        let input = ArticleInput { title: a.title, keywords: a.keywords, body: a.body, published: true };
        let keywords = serde_json::to_string(&input.keywords).expect("strings serialize");
        insert_article(tx, org, &uuid::Uuid::now_v7().to_string(), &input, &keywords, None, now_ms).await?;
    }
    bump_knowledge::<B>(tx, org).await
}
