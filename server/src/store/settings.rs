//! Organization settings: the closing authority, the SLA book, auto-confirmation and other
//! named settings.

use super::*;

/// How many days an order waits for its owner's confirmation before the server confirms for
/// them, unless the organization sets otherwise.
pub const DEFAULT_AUTO_CONFIRM_DAYS: i64 = 3;

/// The closing authority from its rows (grade, least senior role); missing grades keep the
/// default.
pub(crate) fn closing_from_rows(rows: Vec<(String, String)>) -> Result<ClosingAuthority> {
    let mut closing = ClosingAuthority::default();
    for (grade, role) in rows {
        let grade = Grade::from_code(&grade).map_err(|_| ApiError::internal())?;
        let role = Role::from_code(&role).map_err(|_| ApiError::internal())?;
        closing.set(grade, role);
    }
    Ok(closing)
}

#[async_trait]
pub trait Settings: Send + Sync {
    async fn auto_confirm_days(&self, org: &str) -> Result<i64>;
    /// A setting of the organization as stored (JSON), if it set one (`org_settings`).
    async fn org_setting(&self, org: &str, name: &str) -> Result<Option<String>>;
    async fn set_org_setting(&self, org: &str, name: &str, value: &str) -> Result<()>;
    /// The organization's SLA book as stored (JSON), if it set one.
    async fn sla_book(&self, org: &str) -> Result<Option<String>>;
    /// Stores the organization's SLA book and has the scanner look at every open order again.
    async fn set_sla_book(&self, org: &str, book: &str) -> Result<()>;
    async fn set_auto_confirm_days(&self, org: &str, days: i64) -> Result<()>;
    /// Who may close an order of each grade in the organization.
    async fn closing_authority(&self, org: &str) -> Result<ClosingAuthority>;
    async fn set_closing_authority(&self, org: &str, closing: &ClosingAuthority) -> Result<()>;
}

#[async_trait]
impl<B: Backend> Settings for Store<B>
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
    async fn org_setting(&self, org: &str, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM org_settings WHERE org_id = $1 AND name = $2")
            .bind(org)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_org_setting(&self, org: &str, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO org_settings (org_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (org_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(org)
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sla_book(&self, org: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT book FROM sla_books WHERE org_id = $1")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_sla_book(&self, org: &str, book: &str) -> Result<()> {
        let mut tx = B::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO sla_books (org_id, book) VALUES ($1, $2)
             ON CONFLICT (org_id) DO UPDATE SET book = excluded.book",
        )
        .bind(org)
        .bind(book)
        .execute(&mut *tx)
        .await?;
        // Every open order's deadlines may move: the scanner looks at each at once.
        sqlx::query("UPDATE orders SET next_check = 0 WHERE org_id = $1 AND is_open = TRUE")
            .bind(org)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn auto_confirm_days(&self, org: &str) -> Result<i64> {
        let days: Option<i64> =
            sqlx::query_scalar("SELECT CAST(auto_confirm_days AS BIGINT) FROM closed_loop_settings WHERE org_id = $1")
                .bind(org)
                .fetch_optional(&self.pool)
                .await?;
        Ok(days.unwrap_or(DEFAULT_AUTO_CONFIRM_DAYS))
    }

    async fn set_auto_confirm_days(&self, org: &str, days: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO closed_loop_settings (org_id, auto_confirm_days) VALUES ($1, $2)
             ON CONFLICT (org_id) DO UPDATE SET auto_confirm_days = excluded.auto_confirm_days",
        )
        .bind(org)
        .bind(days as i32)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn closing_authority(&self, org: &str) -> Result<ClosingAuthority> {
        Self::read_closing(&self.pool, org).await
    }

    async fn set_closing_authority(&self, org: &str, closing: &ClosingAuthority) -> Result<()> {
        let mut tx = B::begin_write(&self.pool).await?;
        for grade in Grade::ALL {
            sqlx::query(
                "INSERT INTO closing_authority (org_id, grade, min_role) VALUES ($1, $2, $3)
                 ON CONFLICT (org_id, grade) DO UPDATE SET min_role = excluded.min_role",
            )
            .bind(org)
            .bind(grade.code())
            .bind(closing.required(*grade).code())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
