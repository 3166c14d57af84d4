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

#[async_trait]
pub trait Triage: Send + Sync {
    /// Marks the assistant's reading of an order answered by `by` at `now_ms`. Whether it was
    /// still unanswered.
    async fn confirm_triage(&self, org: &str, order: OrderId, by: UserId, answer: Answer, now_ms: i64) -> Result<bool>;
}

#[async_trait]
impl<B: Backend> Triage for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    for<'s> &'s str: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    String: Column<B>,
{
    async fn confirm_triage(&self, org: &str, order: OrderId, by: UserId, answer: Answer, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE order_triage SET confirmed_by = $1, confirmed_at = $2, answer = $3
             WHERE org_id = $4 AND order_id = $5 AND confirmed_at IS NULL",
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
