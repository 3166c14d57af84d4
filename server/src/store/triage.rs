//! The assistant's readings of orders (`order_triage`; written by the scanner in
//! `scans.rs`) and a person's answer to them.

use super::*;

/// A person's answer to the assistant's reading of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The suggestion was taken.
    Accepted,
    /// It was set aside; the order keeps its classification.
    Dismissed,
    /// The order was classified by hand.
    Reclassified,
}

impl Answer {
    pub fn code(self) -> &'static str {
        match self {
            Answer::Accepted => "accepted",
            Answer::Dismissed => "dismissed",
            Answer::Reclassified => "reclassified",
        }
    }
}

/// An order a person classified: a label for the organization's model.
#[derive(Clone, Debug)]
pub struct LabelRow {
    pub order: String,
    pub description: String,
    pub kind: String,
    pub category: String,
    pub grade: String,
    pub urgent: bool,
}

/// One of an organization's models.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ModelRecord {
    pub version: String,
    pub trained_at: i64,
    /// Labelled orders it learnt from.
    pub labels: i64,
    /// The frozen set's figures (`loopwork_triage::eval::Scores` as JSON).
    pub scores: serde_json::Value,
    pub active: bool,
    pub activated_at: Option<i64>,
}

/// Where labelled orders come from ([`Triage::triage_labels`]): answered readings of orders
/// that are not quarantined and whose description the scanner has read.
const LABELLED: &str = "order_triage t JOIN orders o ON o.id = t.order_id JOIN order_texts x ON x.order_id = t.order_id
    WHERE t.confirmed_at IS NOT NULL AND o.quarantined_at IS NULL AND COALESCE(t.answer, '') <> 'preexisting'
      AND ((t.answer = 'accepted' AND o.category = t.category AND o.grade = t.grade)
           OR t.answer = 'reclassified'
           OR o.kind <> t.kind OR o.category <> t.category OR o.grade <> t.grade)";

/// Models kept per organization besides those ever in use (the oldest go).
pub const MODELS_KEPT: i64 = 5;

#[async_trait]
pub trait Triage: Send + Sync {
    /// The organization's labelled orders, with their classification now: those whose reading
    /// a person took or overrode by hand, and those a person classified otherwise than the
    /// reading (at the desk, or by setting it aside). An order classified as the assistant
    /// read it without a person saying so (a desk registration filled by the suggestion) is no
    /// label: the model would learn from itself. `urgent` is whether the grade is 严重 or 重大.
    async fn triage_labels(&self, org: &str) -> Result<Vec<LabelRow>>;
    /// Takes back `by`'s answer (the change it stood for failed).
    async fn release_triage(&self, org: &str, order: OrderId, by: UserId) -> Result<()>;
    /// How many labelled orders ([`Triage::triage_labels`]'s) each organization has
    /// (organizations with none left out).
    async fn triage_label_counts(&self) -> Result<Vec<(String, i64)>>;
    /// Keeps a trained model (inactive), dropping the oldest never-used ones past
    /// [`MODELS_KEPT`] (a model that was ever in use stays: a rollback may need it).
    async fn save_triage_model(&self, org: &str, record: &ModelRecord, model: &[u8]) -> Result<()>;
    /// Makes `version` the organization's active model (`None`: the built-in one); `retire`
    /// forgets that the one active until now ever was (a rollback). Whether `version` exists.
    async fn activate_triage_model(&self, org: &str, version: Option<&str>, now_ms: i64, retire: bool) -> Result<bool>;
    /// The organization's models, newest first.
    async fn triage_models(&self, org: &str) -> Result<Vec<ModelRecord>>;
    /// The active model's version and bytes.
    async fn active_triage_model(&self, org: &str) -> Result<Option<(String, Vec<u8>)>>;
    /// Marks the assistant's reading of an order answered by `by` at `now_ms` (before the first
    /// reading: keeps that a person answered, so that the reading stays quiet). Whether it was
    /// still unanswered.
    async fn confirm_triage(&self, org: &str, order: OrderId, by: UserId, answer: Answer, now_ms: i64) -> Result<bool>;
}

#[async_trait]
impl<B: Backend> Triage for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
{
    async fn release_triage(&self, org: &str, order: OrderId, by: UserId) -> Result<()> {
        sqlx::query(
            "UPDATE order_triage SET confirmed_by = NULL, confirmed_at = NULL, answer = NULL
             WHERE org_id = $1 AND order_id = $2 AND confirmed_by = $3",
        )
        .bind(org)
        .bind(order.to_string())
        .bind(by.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn triage_labels(&self, org: &str) -> Result<Vec<LabelRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT o.id, x.description, o.kind, o.category, o.grade FROM {LABELLED} AND t.org_id = $1 ORDER BY t.created_at"
        )))
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let grade: String = r.try_get(4)?;
            let urgent =
                loopwork_sync_core::Grade::from_code(&grade).is_ok_and(|g| g >= loopwork_sync_core::Grade::Severe);
            out.push(LabelRow {
                order: r.try_get(0)?,
                description: r.try_get(1)?,
                kind: r.try_get(2)?,
                category: r.try_get(3)?,
                urgent,
                grade,
            });
        }
        Ok(out)
    }

    async fn triage_label_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT t.org_id, COUNT(*) FROM {LABELLED} GROUP BY t.org_id ORDER BY t.org_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn save_triage_model(&self, org: &str, record: &ModelRecord, model: &[u8]) -> Result<()> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO triage_models (org_id, version, model, trained_at, labels, scores, active, activated_at)
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, NULL)
             ON CONFLICT (org_id, version) DO UPDATE SET trained_at = excluded.trained_at",
        )
        .bind(org)
        .bind(&record.version)
        .bind(model)
        .bind(record.trained_at)
        .bind(record.labels)
        .bind(record.scores.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM triage_models WHERE org_id = $1 AND active = FALSE AND activated_at IS NULL AND version NOT IN (
                SELECT version FROM triage_models WHERE org_id = $1 ORDER BY trained_at DESC LIMIT $2)",
        )
        .bind(org)
        .bind(MODELS_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn activate_triage_model(&self, org: &str, version: Option<&str>, now_ms: i64, retire: bool) -> Result<bool> {
        // The organization's lock: two processes activating at once take turns (the unique
        // index would otherwise refuse the second).
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        if let Some(version) = version {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT version FROM triage_models WHERE org_id = $1 AND version = $2")
                    .bind(org)
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Ok(false);
            }
        }
        sqlx::query(
            "UPDATE triage_models SET active = FALSE, activated_at = CASE WHEN $2 THEN NULL ELSE activated_at END
             WHERE org_id = $1 AND active = TRUE",
        )
        .bind(org)
        .bind(retire)
        .execute(&mut *tx)
        .await?;
        if let Some(version) = version {
            sqlx::query("UPDATE triage_models SET active = TRUE, activated_at = $3 WHERE org_id = $1 AND version = $2")
                .bind(org)
                .bind(version)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn triage_models(&self, org: &str) -> Result<Vec<ModelRecord>> {
        let rows = sqlx::query(
            "SELECT version, trained_at, labels, scores, active, activated_at FROM triage_models
             WHERE org_id = $1 ORDER BY trained_at DESC",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let scores: String = r.try_get(3)?;
            out.push(ModelRecord {
                version: r.try_get(0)?,
                trained_at: r.try_get(1)?,
                labels: r.try_get(2)?,
                scores: serde_json::from_str(&scores).unwrap_or(serde_json::Value::Null),
                active: r.try_get(4)?,
                activated_at: r.try_get(5)?,
            });
        }
        Ok(out)
    }

    async fn active_triage_model(&self, org: &str) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT version, model FROM triage_models WHERE org_id = $1 AND active = TRUE")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    async fn confirm_triage(&self, org: &str, order: OrderId, by: UserId, answer: Answer, now_ms: i64) -> Result<bool> {
        // Before the scanner's first reading: a row that says so, which the reading then leaves.
        let done = sqlx::query(
            "INSERT INTO order_triage (order_id, org_id, kind, category, grade, urgent, confidence_permille,
                abstain, rule, model, created_at, confirmed_by, confirmed_at, answer)
             SELECT o.id, o.org_id, o.kind, o.category, o.grade, FALSE, 0, TRUE, NULL, 'none', $2, $1, $2, $3
             FROM orders o WHERE o.org_id = $4 AND o.id = $5
             ON CONFLICT (order_id) DO UPDATE SET confirmed_by = excluded.confirmed_by,
                confirmed_at = excluded.confirmed_at, answer = excluded.answer
             WHERE order_triage.confirmed_at IS NULL",
        )
        .bind(by.to_string())
        .bind(now_ms)
        .bind(answer.code())
        .bind(org)
        .bind(order.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
