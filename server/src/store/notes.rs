//! Internal notes (内部备注): staff's notes about an order for each other, kept out of the order's
//! Automerge document (which owners' devices hold) in a table of their own.

use super::*;

/// One internal note, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalNote {
    pub id: String,
    pub author: String,
    /// The author's `Role` code when they wrote it.
    pub author_role: String,
    pub at_ms: i64,
    pub text: String,
    /// The English of a note the server wrote itself; `None` for what people wrote.
    pub text_en: Option<String>,
}

#[async_trait]
pub trait Notes: Send + Sync {
    /// Records an internal note on an order of `org`; its id.
    async fn add_internal_note(
        &self,
        org: &str,
        order: OrderId,
        author: &Identity,
        at_ms: i64,
        text: &str,
        text_en: Option<&str>,
    ) -> Result<String>;
    /// The order's internal notes, oldest first. Callers decide who may read them (never an
    /// owner: see `http/desk/detail.rs`).
    async fn internal_notes(&self, org: &str, order: OrderId) -> Result<Vec<InternalNote>>;
}

#[async_trait]
impl<B: Backend> Notes for Store<B>
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
    async fn add_internal_note(
        &self,
        org: &str,
        order: OrderId,
        author: &Identity,
        at_ms: i64,
        text: &str,
        text_en: Option<&str>,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO internal_notes (id, org_id, order_id, author, author_role, at_ms, text, text_en)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.as_str())
        .bind(org)
        .bind(order.to_string())
        .bind(author.user.to_string())
        .bind(author.role.code())
        .bind(at_ms)
        .bind(text)
        .bind(text_en)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn internal_notes(&self, org: &str, order: OrderId) -> Result<Vec<InternalNote>> {
        let rows = sqlx::query(
            "SELECT id, author, author_role, at_ms, text, text_en FROM internal_notes
             WHERE org_id = $1 AND order_id = $2 ORDER BY at_ms, id",
        )
        .bind(org)
        .bind(order.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InternalNote {
                    id: row.try_get("id")?,
                    author: row.try_get("author")?,
                    author_role: row.try_get("author_role")?,
                    at_ms: row.try_get("at_ms")?,
                    text: row.try_get("text")?,
                    text_en: row.try_get("text_en")?,
                })
            })
            .collect()
    }
}
