//! Webhooks and their outbox: endpoints, deliveries due, claims and results.

use super::*;

/// A delivery's id (`x-loopwork-delivery`, the outbox row's key): derived from the endpoint and
/// the event (order, stage, level, deadline), so that an event recorded again (after a restore
/// lost its first record) is delivered under the same id, which receivers drop as a repeat.
pub fn delivery_id(webhook: &str, order: &str, stage: &str, level: &str, due_ms: i64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [webhook.as_bytes(), order.as_bytes(), stage.as_bytes(), level.as_bytes(), &due_ms.to_le_bytes()] {
        h.update((part.len() as u32).to_le_bytes());
        h.update(part);
    }
    let bytes: [u8; 16] = h.finalize()[..16].try_into().unwrap_or_default();
    uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
}

impl<B: Backend> Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    /// The organization's endpoints, inside the caller's transaction.
    pub(crate) async fn org_hooks(tx: &mut sqlx::Transaction<'_, B>, org: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL")
            .bind(org)
            .fetch_all(&mut **tx)
            .await?)
    }

    /// Queues an event for each of `hooks`, in the transaction that records the event (so it is
    /// announced once, exactly when it is recorded): each delivery's id from [`delivery_id`] of
    /// the endpoint and `(subject, stage, level, due_ms)`, its body `body` with that id as
    /// `delivery_id`.
    pub(crate) async fn enqueue(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        hooks: &[String],
        (subject, stage, level, due_ms): (&str, &str, &str, i64),
        body: serde_json::Value,
        now_ms: i64,
    ) -> Result<()> {
        for hook in hooks {
            let delivery = delivery_id(hook, subject, stage, level, due_ms);
            let mut body = body.clone();
            body["delivery_id"] = serde_json::Value::String(delivery.clone());
            sqlx::query(
                "INSERT INTO webhook_outbox (id, org_id, webhook_id, body, attempts, next_attempt_at)
                 VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&delivery)
            .bind(org)
            .bind(hook.as_str())
            .bind(body.to_string())
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// An organization's webhook endpoint (its secret is shown once, when it is created).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    pub created_at_ms: i64,
}

/// A delivery waiting in the outbox.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: String,
    /// The organization whose webhook it is (its destination settings apply).
    pub org: String,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

#[async_trait]
pub trait Webhooks: Send + Sync {
    async fn create_webhook(&self, org: &str, url: &str, secret: &str, now_ms: i64) -> Result<String>;
    async fn webhooks(&self, org: &str) -> Result<Vec<WebhookRecord>>;
    async fn delete_webhook(&self, org: &str, id: &str, now_ms: i64) -> Result<bool>;
    /// Deliveries due by `now_ms`, oldest first.
    async fn outbox_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>>;
    /// Takes a delivery for this process until `until_ms`, if nobody else took it since it was
    /// read (several server processes deliver from one outbox).
    async fn claim_delivery(&self, row: &OutboxRow, until_ms: i64) -> Result<bool>;
    /// Records an attempt: delivered, or failed with the next attempt's time (`None`: given up).
    async fn finish_delivery(
        &self,
        id: &str,
        delivered_at: Option<i64>,
        next_attempt_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<()>;
}

#[async_trait]
impl<B: Backend> Webhooks for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    async fn create_webhook(&self, org: &str, url: &str, secret: &str, now_ms: i64) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO webhooks (id, org_id, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(org)
            .bind(url)
            .bind(secret)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    async fn webhooks(&self, org: &str) -> Result<Vec<WebhookRecord>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, url, created_at FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, url, created_at_ms)| WebhookRecord { id, url, created_at_ms }).collect())
    }

    async fn delete_webhook(&self, org: &str, id: &str, now_ms: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND org_id = $3 AND deleted_at IS NULL")
                .bind(now_ms)
                .bind(id)
                .bind(org)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows: Vec<(String, String, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT o.id, w.org_id, w.url, w.secret, o.body, CAST(o.attempts AS BIGINT), o.next_attempt_at
             FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.delivered_at IS NULL AND o.next_attempt_at IS NOT NULL AND o.next_attempt_at <= $1
               AND w.deleted_at IS NULL
             ORDER BY o.next_attempt_at LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, org, url, secret, body, attempts, next_attempt_at)| OutboxRow {
                id,
                org,
                url,
                secret,
                body,
                attempts,
                next_attempt_at,
            })
            .collect())
    }

    async fn claim_delivery(&self, row: &OutboxRow, until_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_outbox SET next_attempt_at = $1
             WHERE id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL",
        )
        .bind(until_ms)
        .bind(&row.id)
        .bind(row.next_attempt_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_delivery(
        &self,
        id: &str,
        delivered_at: Option<i64>,
        next_attempt_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_outbox SET delivered_at = $1, next_attempt_at = $2, last_error = $3,
                    attempts = attempts + 1 WHERE id = $4",
        )
        .bind(delivered_at)
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
