//! One-time sign-in codes (`login_codes`) and whom a phone number signs in: an owner's account
//! with that number, or the estate register's residents with it (an account is made for them on
//! their first sign-in).

use super::*;

/// A code lives this long.
pub const LOGIN_CODE_TTL_MS: i64 = 5 * 60_000;
/// Wrong tries one code takes before it is dead.
pub const LOGIN_CODE_TRIES: i64 = 5;
/// The least time between two codes for one number.
pub const LOGIN_CODE_GAP_MS: i64 = 60_000;
/// The most codes one number gets in an hour.
pub const LOGIN_CODES_PER_HOUR: i64 = 5;

/// What a code someone typed is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The number's latest code, in time and not used: it is used now.
    Accepted,
    /// Wrong (a try counted), expired, used, tried too often, or none was sent.
    Refused,
}

/// An account holding a phone number.
#[derive(Clone, Debug)]
pub struct PhoneAccount {
    pub user: UserRecord,
    pub disabled: bool,
}

/// A resident of the estate register with a phone number.
#[derive(Clone, Debug)]
pub struct PhoneResident {
    pub org: String,
    pub unit: UnitRef,
    pub name: String,
}

#[async_trait]
pub trait LoginCodes: Send + Sync {
    /// Keeps a new code for `phone` (its hash), unless the number had one within
    /// [`LOGIN_CODE_GAP_MS`] or [`LOGIN_CODES_PER_HOUR`] in the last hour: then `Err` with the
    /// milliseconds to wait. Rows older than a day are deleted on the way.
    async fn issue_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<Result<(), i64>>;
    /// Checks a typed code against the number's latest one.
    async fn verify_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<CodeVerdict>;
    /// Owner accounts (active or disabled) whose phone is `phone` (digits).
    async fn owner_accounts_by_phone(&self, phone: &str) -> Result<Vec<PhoneAccount>>;
    /// The register's residents with `phone`, in every organization.
    async fn residents_for_sign_in(&self, phone: &str) -> Result<Vec<PhoneResident>>;
}

#[async_trait]
impl<B: Backend> LoginCodes for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
{
    async fn issue_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<Result<(), i64>> {
        let mut tx = B::begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM login_codes WHERE created_at < $1")
            .bind(now_ms - 86_400_000)
            .execute(&mut *tx)
            .await?;
        let recent: Vec<(i64,)> = sqlx::query_as(
            "SELECT created_at FROM login_codes WHERE phone = $1 AND created_at > $2 ORDER BY created_at",
        )
        .bind(phone)
        .bind(now_ms - 3_600_000)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(&(last,)) = recent.last()
            && now_ms - last < LOGIN_CODE_GAP_MS
        {
            return Ok(Err(last + LOGIN_CODE_GAP_MS - now_ms));
        }
        if recent.len() as i64 >= LOGIN_CODES_PER_HOUR {
            return Ok(Err(recent[0].0 + 3_600_000 - now_ms));
        }
        sqlx::query(
            "INSERT INTO login_codes (id, phone, code_hash, created_at, expires_at, attempts)
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(phone)
        .bind(code_hash)
        .bind(now_ms)
        .bind(now_ms + LOGIN_CODE_TTL_MS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn verify_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<CodeVerdict> {
        let mut tx = B::begin_write(&self.pool).await?;
        let latest: Option<(String, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, code_hash, expires_at, attempts, used_at FROM login_codes WHERE phone = $1
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(phone)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, hash, expires_at, attempts, used_at)) = latest else { return Ok(CodeVerdict::Refused) };
        if used_at.is_some() || expires_at <= now_ms || attempts >= LOGIN_CODE_TRIES {
            return Ok(CodeVerdict::Refused);
        }
        // Compared in constant time: the hash is an HMAC the caller cannot compute.
        let same = hash.len() == code_hash.len()
            && hash.bytes().zip(code_hash.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same {
            sqlx::query("UPDATE login_codes SET used_at = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE login_codes SET attempts = attempts + 1 WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(if same { CodeVerdict::Accepted } else { CodeVerdict::Refused })
    }

    async fn owner_accounts_by_phone(&self, phone: &str) -> Result<Vec<PhoneAccount>> {
        let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
            "SELECT id, org_id, role, password_hash, disabled_at IS NOT NULL FROM users
             WHERE phone = $1 AND role = 'owner' ORDER BY created_at, id",
        )
        .bind(phone)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, org, role, password_hash, disabled)| {
                Ok(PhoneAccount {
                    user: UserRecord {
                        id: id.parse().map_err(|e| StoreError::corrupt("user id", e))?,
                        org,
                        role: Role::from_code(&role).map_err(|e| StoreError::corrupt("role", e))?,
                        password_hash,
                    },
                    disabled,
                })
            })
            .collect()
    }

    async fn residents_for_sign_in(&self, phone: &str) -> Result<Vec<PhoneResident>> {
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT org_id, project, building, unit, name FROM estate_residents WHERE phone = $1
             ORDER BY org_id, project, building, unit",
        )
        .bind(phone)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(org, project, building, unit, name)| PhoneResident {
                org,
                unit: UnitRef { project, building, unit },
                name,
            })
            .collect())
    }
}
