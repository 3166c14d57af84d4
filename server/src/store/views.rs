//! The desk's saved views: a user's named queue filters (`saved_views`).

use super::*;

/// A saved view: its name and the queue's query string it stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SavedView {
    pub id: String,
    pub name: String,
    /// The queue's query string, e.g. `status=open&grade=severe`.
    pub query: String,
    pub created_at: i64,
}

/// The most views one user keeps.
pub const MAX_SAVED_VIEWS: i64 = 50;

#[async_trait]
pub trait Views: Send + Sync {
    /// The user's views, by name.
    async fn saved_views(&self, principal: &Principal) -> Result<Vec<SavedView>>;
    /// Saves a view under a name (replacing the user's view of that name); `None` when the user
    /// already keeps [`MAX_SAVED_VIEWS`] others.
    async fn save_view(&self, principal: &Principal, name: &str, query: &str, now_ms: i64)
    -> Result<Option<SavedView>>;
    /// Deletes one of the user's views; whether it was theirs.
    async fn delete_view(&self, principal: &Principal, id: &str) -> Result<bool>;
}

#[async_trait]
impl<B: Backend> Views for Store<B>
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
    async fn saved_views(&self, principal: &Principal) -> Result<Vec<SavedView>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, query, created_at FROM saved_views WHERE org_id = $1 AND user_id = $2 ORDER BY name",
        )
        .bind(principal.org.as_str())
        .bind(principal.user.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, name, query, created_at)| SavedView { id, name, query, created_at }).collect())
    }

    async fn save_view(
        &self,
        principal: &Principal,
        name: &str,
        query: &str,
        now_ms: i64,
    ) -> Result<Option<SavedView>> {
        let user = principal.user.to_string();
        let mut tx = B::begin_write(&self.pool).await?;
        let (others, existing): (i64, Option<String>) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM saved_views WHERE user_id = $1 AND name <> $2),
                    (SELECT id FROM saved_views WHERE user_id = $1 AND name = $2)",
        )
        .bind(user.as_str())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if existing.is_none() && others >= MAX_SAVED_VIEWS {
            return Ok(None);
        }
        let id = existing.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        sqlx::query(
            "INSERT INTO saved_views (id, org_id, user_id, name, query, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, name) DO UPDATE SET query = excluded.query, created_at = excluded.created_at",
        )
        .bind(id.as_str())
        .bind(principal.org.as_str())
        .bind(user.as_str())
        .bind(name)
        .bind(query)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(SavedView { id, name: name.to_owned(), query: query.to_owned(), created_at: now_ms }))
    }

    async fn delete_view(&self, principal: &Principal, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM saved_views WHERE id = $1 AND org_id = $2 AND user_id = $3")
            .bind(id)
            .bind(principal.org.as_str())
            .bind(principal.user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
