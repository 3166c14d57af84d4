//! Organization settings: one table (`org_settings`), one JSON value per organization and name,
//! each with a seeded default in code (`crate::settings`). The store reads and writes the text;
//! only the closing authority is also read here, inside the writer's transaction.

use super::*;

/// The closing authority's name in `org_settings`.
pub const CLOSING_AUTHORITY: &str = "closing-authority";
/// The closed-loop settings' name in `org_settings` (`{"auto_confirm_days": 3}`), read by the
/// scanner's query for orders due to be confirmed.
pub const CLOSED_LOOP: &str = "closed-loop";
/// How many days an order waits for its owner's confirmation before the server confirms for
/// them, unless the organization sets otherwise.
pub const DEFAULT_AUTO_CONFIRM_DAYS: i64 = 3;

/// Who may close an order of each grade, as stored and as `GET`/`PUT
/// /api/v1/settings/closing-authority` carry it: the least senior role per grade,
/// `{"minor": "dispatcher", "serious": "supervisor", "severe": "manager", "critical": "manager"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ClosingAuthority")]
pub struct ClosingAuthorityCodes {
    pub minor: String,
    pub serious: String,
    pub severe: String,
    pub critical: String,
}

impl ClosingAuthorityCodes {
    /// The roles the codes name, or the first code that names no role.
    pub fn authority(&self) -> std::result::Result<ClosingAuthority, String> {
        let role = |code: &str| Role::from_code(code).map_err(|_| code.chars().take(32).collect::<String>());
        Ok(ClosingAuthority {
            minor: role(&self.minor)?,
            serious: role(&self.serious)?,
            severe: role(&self.severe)?,
            critical: role(&self.critical)?,
        })
    }
}

impl From<&ClosingAuthority> for ClosingAuthorityCodes {
    fn from(c: &ClosingAuthority) -> Self {
        ClosingAuthorityCodes {
            minor: c.minor.code().into(),
            serious: c.serious.code().into(),
            severe: c.severe.code().into(),
            critical: c.critical.code().into(),
        }
    }
}

/// The closing authority from its stored value; none stored is the default.
pub(crate) fn closing_from_stored(stored: Option<String>) -> Result<ClosingAuthority> {
    let Some(text) = stored else { return Ok(ClosingAuthority::default()) };
    let codes: ClosingAuthorityCodes =
        serde_json::from_str(&text).map_err(|e| StoreError::corrupt("closing authority", e))?;
    codes.authority().map_err(|code| StoreError::corrupt("closing authority", format!("`{code}` names no role")))
}

#[async_trait]
pub trait Settings: Send + Sync {
    /// A setting of the organization as stored (JSON), if it set one.
    async fn setting(&self, org: &str, name: &str) -> Result<Option<String>>;
    /// Stores a setting; with `rescan`, the scanner looks at every open order of the
    /// organization again (their deadlines may have moved).
    async fn set_setting(&self, org: &str, name: &str, value: &str, rescan: bool) -> Result<()>;
    /// Who may close an order of each grade in the organization, as committed.
    async fn closing_authority(&self, org: &str) -> Result<ClosingAuthority>;
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
    async fn setting(&self, org: &str, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM org_settings WHERE org_id = $1 AND name = $2")
            .bind(org)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_setting(&self, org: &str, name: &str, value: &str, rescan: bool) -> Result<()> {
        let mut tx = B::begin_write(&self.pool).await?;
        if rescan {
            // Every open order's row is updated below: under the organization's write lock, as
            // the writers update them (see `Scans::record_checks`).
            B::lock_org(&mut tx, org).await?;
        }
        sqlx::query(
            "INSERT INTO org_settings (org_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (org_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(org)
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        if rescan {
            sqlx::query("UPDATE orders SET next_check = 0 WHERE org_id = $1 AND is_open = TRUE")
                .bind(org)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn closing_authority(&self, org: &str) -> Result<ClosingAuthority> {
        Self::read_closing(&self.pool, org).await
    }
}
