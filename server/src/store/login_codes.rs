//! One-time sign-in codes (`login_codes`, one row per number) and whom a phone number signs in:
//! an owner's account with that number, or the estate register's residents with it (an account
//! is made for them on their first sign-in).

use super::*;

/// A code lives this long.
pub const LOGIN_CODE_TTL_MS: i64 = 5 * 60_000;
/// Tries one code takes (the right one included).
pub const LOGIN_CODE_TRIES: i64 = 5;
/// The least time between two codes for one number.
pub const LOGIN_CODE_GAP_MS: i64 = 60_000;
/// The most codes one number gets in an hour, and in a day.
pub const LOGIN_CODES_PER_HOUR: i64 = 5;
pub const LOGIN_CODES_PER_DAY: i64 = 10;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// What a code someone typed is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The number's latest code, in time, not used and within its tries: it is used now.
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
    /// Keeps a new code for `phone` (its hash), replacing the number's earlier one, unless the
    /// number had one within [`LOGIN_CODE_GAP_MS`], or [`LOGIN_CODES_PER_HOUR`] this hour, or
    /// [`LOGIN_CODES_PER_DAY`] this day: then `Err` with the milliseconds to wait.
    async fn issue_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<Result<(), i64>>;
    /// Checks a typed code against the number's latest one; each check is a try.
    async fn verify_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<CodeVerdict>;
    /// Accounts of any role (active or disabled) whose phone is `phone` (digits).
    async fn accounts_by_phone(&self, phone: &str) -> Result<Vec<PhoneAccount>>;
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
        sqlx::query("DELETE FROM login_codes WHERE sent_at < $1").bind(now_ms - 2 * DAY_MS).execute(&self.pool).await?;
        // One statement: the limits are checked and the counts moved on under the row's lock.
        let done = sqlx::query(
            "INSERT INTO login_codes
                (phone, code_hash, sent_at, expires_at, attempts, used_at, hour_from, hour_count, day_from, day_count)
             VALUES ($1, $2, $3, $4, 0, NULL, $3, 1, $3, 1)
             ON CONFLICT (phone) DO UPDATE SET
                code_hash = excluded.code_hash, sent_at = excluded.sent_at, expires_at = excluded.expires_at,
                attempts = 0, used_at = NULL,
                hour_count = CASE WHEN login_codes.hour_from <= $3 - $5 THEN 1 ELSE login_codes.hour_count + 1 END,
                hour_from = CASE WHEN login_codes.hour_from <= $3 - $5 THEN $3 ELSE login_codes.hour_from END,
                day_count = CASE WHEN login_codes.day_from <= $3 - $6 THEN 1 ELSE login_codes.day_count + 1 END,
                day_from = CASE WHEN login_codes.day_from <= $3 - $6 THEN $3 ELSE login_codes.day_from END
             WHERE login_codes.sent_at <= $3 - $7
                AND (login_codes.hour_from <= $3 - $5 OR login_codes.hour_count < $8)
                AND (login_codes.day_from <= $3 - $6 OR login_codes.day_count < $9)",
        )
        .bind(phone)
        .bind(code_hash)
        .bind(now_ms)
        .bind(now_ms + LOGIN_CODE_TTL_MS)
        .bind(HOUR_MS)
        .bind(DAY_MS)
        .bind(LOGIN_CODE_GAP_MS)
        .bind(LOGIN_CODES_PER_HOUR)
        .bind(LOGIN_CODES_PER_DAY)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        // Refused: how long until the first limit that holds it lets go.
        let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT sent_at, hour_from, hour_count, day_from, day_count FROM login_codes WHERE phone = $1",
        )
        .bind(phone)
        .fetch_optional(&self.pool)
        .await?;
        let Some((sent_at, hour_from, hour_count, day_from, day_count)) = row else { return Ok(Err(1_000)) };
        let mut wait = sent_at + LOGIN_CODE_GAP_MS - now_ms;
        if hour_from > now_ms - HOUR_MS && hour_count >= LOGIN_CODES_PER_HOUR {
            wait = wait.max(hour_from + HOUR_MS - now_ms);
        }
        if day_from > now_ms - DAY_MS && day_count >= LOGIN_CODES_PER_DAY {
            wait = wait.max(day_from + DAY_MS - now_ms);
        }
        Ok(Err(wait.max(1_000)))
    }

    async fn verify_login_code(&self, phone: &str, code_hash: &str, now_ms: i64) -> Result<CodeVerdict> {
        // The try is counted first, only while the code lives and has tries left; then the code
        // is used only if it is the right one and no other request used it meanwhile.
        let tried = sqlx::query(
            "UPDATE login_codes SET attempts = attempts + 1
             WHERE phone = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3",
        )
        .bind(phone)
        .bind(now_ms)
        .bind(LOGIN_CODE_TRIES)
        .execute(&self.pool)
        .await?;
        if tried.rows_affected() != 1 {
            return Ok(CodeVerdict::Refused);
        }
        let used = sqlx::query(
            "UPDATE login_codes SET used_at = $2
             WHERE phone = $1 AND used_at IS NULL AND expires_at > $2 AND code_hash = $3",
        )
        .bind(phone)
        .bind(now_ms)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(if used.rows_affected() == 1 { CodeVerdict::Accepted } else { CodeVerdict::Refused })
    }

    async fn accounts_by_phone(&self, phone: &str) -> Result<Vec<PhoneAccount>> {
        let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
            "SELECT id, org_id, role, password_hash, disabled_at IS NOT NULL FROM users
             WHERE phone = $1 ORDER BY created_at, id",
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
