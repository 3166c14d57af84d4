//! People as the admin console keeps them: the organization's accounts listed and changed
//! (name, role, phone, disabled, a technician's trades, a dispatcher's projects, an owner's
//! units), passwords reset, and each account's devices. Creating an account is
//! [`Accounts::create_user`].

use super::*;
use crate::error::ApiError;

/// An account as the admin console lists it. The phone is as stored (digits); the HTTP layer
/// masks it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct UserRecordFull {
    pub id: String,
    pub login: String,
    pub name: String,
    pub role: String,
    pub phone: Option<String>,
    pub created_at: i64,
    /// When the account was disabled; it signs in no more and its devices stop syncing.
    pub disabled_at: Option<i64>,
    /// A technician's trades: category codes.
    pub trades: Vec<String>,
    /// The projects a dispatcher serves (none: every project).
    pub projects: Vec<String>,
    /// An owner's units.
    pub units: Vec<UnitRef>,
    /// Devices signed in and not revoked.
    pub active_devices: i64,
    /// The last sync of any of its devices.
    pub last_seen_at: Option<i64>,
    /// Open orders assigned to the account (a technician leaving hands these over).
    pub open_orders: i64,
}

/// Which accounts a listing holds.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub role: Option<Role>,
    /// Part of the login or the name.
    pub q: Option<String>,
    /// Only disabled (`Some(true)`) or only active (`Some(false)`) accounts.
    pub disabled: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

/// What an administrator changes of an account; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` removes the phone.
    pub phone: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub trades: Option<Vec<String>>,
    pub projects: Option<Vec<String>>,
    pub units: Option<Vec<UnitRef>>,
}

/// A device of an account.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct DeviceRecord {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_sync_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait People: Send + Sync {
    /// A page of the organization's accounts (active first, then by role from admin to owner,
    /// then by name) and how many match in all.
    async fn users(&self, org: &str, query: &UserQuery) -> Result<(Vec<UserRecordFull>, i64)>;
    /// One account of the organization.
    async fn user(&self, org: &str, id: &str) -> Result<Option<UserRecordFull>>;
    /// Applies `change` in one transaction; `false` when the organization has no such account.
    /// Trades are kept for technicians only, projects for dispatchers only, units for owners
    /// only: a role change drops the others'.
    async fn change_user(&self, org: &str, id: &str, change: &UserChange, now_ms: i64) -> Result<bool>;
    /// Creates an account with `change`'s trades, projects and units in one transaction (a
    /// refused binding creates nothing). 409 `login_taken` when the login is someone's.
    async fn create_account(&self, user: &NewUser, change: &UserChange, now_ms: i64) -> Result<UserId>;
    /// Sets a new password hash; with `revoke_devices`, every device of the account stops
    /// syncing (they sign in again). `false` when there is no such account.
    async fn set_password(&self, org: &str, id: &str, hash: &str, revoke_devices: bool, now_ms: i64) -> Result<bool>;
    /// The account's devices, newest first; `None` when there is no such account.
    async fn user_devices(&self, org: &str, id: &str) -> Result<Option<Vec<DeviceRecord>>>;
    /// The trades of the organization's technicians, by user id.
    async fn trades(&self, org: &str) -> Result<HashMap<String, Vec<String>>>;
    /// Accounts' phones as digits (`normalize_phone`), for those stored as typed by earlier
    /// versions: signing in by code finds accounts by digits. Numbers that do not read stay as
    /// they are. How many changed.
    async fn normalize_account_phones(&self) -> Result<usize>;
}

/// Office roles first, owners last.
const ROLE_RANK: &str = "CASE u.role WHEN 'admin' THEN 0 WHEN 'manager' THEN 1 WHEN 'supervisor' THEN 2
    WHEN 'dispatcher' THEN 3 WHEN 'technician' THEN 4 ELSE 5 END";

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn refused(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> StoreError {
    StoreError::Refused(ApiError::invalid(code, en, zh))
}

type UserRow = (String, String, String, String, Option<String>, i64, Option<i64>);

#[async_trait]
impl<B: Backend> People for Store<B>
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
    async fn users(&self, org: &str, query: &UserQuery) -> Result<(Vec<UserRecordFull>, i64)> {
        let pattern = query.q.as_deref().map(like_pattern);
        let filter = "u.org_id = $1 AND ($2 IS NULL OR u.role = $2)
            AND ($3 IS NULL OR LOWER(u.login) LIKE LOWER($3) ESCAPE '\\' OR LOWER(u.display_name) LIKE LOWER($3) ESCAPE '\\')
            AND ($4 = 0 OR ($4 = 1) = (u.disabled_at IS NOT NULL))";
        let disabled: i64 = match query.disabled {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        };
        let role = query.role.map(|r| r.code());
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM users u WHERE {filter}")))
            .bind(org)
            .bind(role)
            .bind(pattern.as_deref())
            .bind(disabled)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT u.id, u.login, u.display_name, u.role, u.phone, u.created_at, u.disabled_at
             FROM users u WHERE {filter}
             ORDER BY u.disabled_at IS NOT NULL, {ROLE_RANK}, u.display_name, u.id LIMIT $5 OFFSET $6"
        )))
        .bind(org)
        .bind(role)
        .bind(pattern.as_deref())
        .bind(disabled)
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((self.complete(org, rows).await?, total))
    }

    async fn user(&self, org: &str, id: &str) -> Result<Option<UserRecordFull>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.login, u.display_name, u.role, u.phone, u.created_at, u.disabled_at
             FROM users u WHERE u.org_id = $1 AND u.id = $2",
        )
        .bind(org)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(self.complete(org, rows).await?.pop())
    }

    async fn change_user(&self, org: &str, id: &str, change: &UserChange, now_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let current: Option<(String,)> = sqlx::query_as("SELECT role FROM users WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((current,)) = current else { return Ok(false) };
        apply_change(&mut tx, org, id, current, change, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_account(&self, user: &NewUser, change: &UserChange, now_ms: i64) -> Result<UserId> {
        let id = UserId::new();
        let mut tx = B::begin_write(&self.pool).await?;
        let done = sqlx::query(
            "INSERT INTO users (id, org_id, login, password_hash, role, display_name, phone, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (login) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(user.org.as_str())
        .bind(user.login.as_str())
        .bind(user.password_hash.as_str())
        .bind(user.role.code())
        .bind(user.display_name.as_str())
        .bind(user.phone.as_deref())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LoginTaken);
        }
        apply_change(&mut tx, &user.org, &id.to_string(), user.role.code().to_owned(), change, now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn set_password(&self, org: &str, id: &str, hash: &str, revoke_devices: bool, now_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE org_id = $2 AND id = $3")
            .bind(hash)
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if revoke_devices {
            sqlx::query("UPDATE devices SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn user_devices(&self, org: &str, id: &str) -> Result<Option<Vec<DeviceRecord>>> {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE org_id = $1 AND id = $2)")
            .bind(org)
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Ok(None);
        }
        let rows: Vec<(String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT id, name, created_at, last_sync_at, revoked_at FROM devices
             WHERE org_id = $1 AND user_id = $2 ORDER BY created_at DESC, id LIMIT 200",
        )
        .bind(org)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(|(id, name, created_at, last_sync_at, revoked_at)| DeviceRecord {
                    id,
                    name,
                    created_at,
                    last_sync_at,
                    revoked_at,
                })
                .collect(),
        ))
    }

    async fn normalize_account_phones(&self) -> Result<usize> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, phone FROM users WHERE phone IS NOT NULL").fetch_all(&self.pool).await?;
        let mut changed = 0;
        for (id, phone) in rows {
            if let Ok(digits) = loopwork_sync_core::estate::normalize_phone(&phone)
                && digits != phone
            {
                sqlx::query("UPDATE users SET phone = $1 WHERE id = $2 AND phone = $3")
                    .bind(digits.as_str())
                    .bind(id.as_str())
                    .bind(phone.as_str())
                    .execute(&self.pool)
                    .await?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    async fn trades(&self, org: &str) -> Result<HashMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT t.user_id, t.trade FROM user_trades t JOIN users u ON u.id = t.user_id
             WHERE u.org_id = $1 ORDER BY t.user_id, t.trade",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for (user, trade) in rows {
            by_user.entry(user).or_default().push(trade);
        }
        Ok(by_user)
    }
}

/// Writes `change` to account `id` (of role `current`) inside `tx`.
async fn apply_change<B: Backend>(
    tx: &mut sqlx::Transaction<'_, B>,
    org: &str,
    id: &str,
    current: String,
    change: &UserChange,
    now_ms: i64,
) -> Result<()>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    let role = change.role.map_or(current, |r| r.code().to_owned());
    if let Some(name) = &change.name {
        sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(phone) = &change.phone {
        sqlx::query("UPDATE users SET phone = $1 WHERE id = $2")
            .bind(phone.as_deref())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if change.role.is_some() {
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role.as_str()).bind(id).execute(&mut **tx).await?;
    }
    match change.disabled {
        Some(true) => {
            sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(now_ms)
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        Some(false) => {
            sqlx::query("UPDATE users SET disabled_at = NULL WHERE id = $1").bind(id).execute(&mut **tx).await?;
        }
        None => {}
    }
    // What belongs to one role only goes with it.
    let (trades, projects, units) = match role.as_str() {
        "technician" => (change.trades.clone(), Some(Vec::new()), Some(Vec::new())),
        "dispatcher" => (Some(Vec::new()), change.projects.clone(), Some(Vec::new())),
        "owner" => (Some(Vec::new()), Some(Vec::new()), change.units.clone()),
        _ => (Some(Vec::new()), Some(Vec::new()), Some(Vec::new())),
    };
    for (asked, kept, what) in [(&change.trades, &trades, "trades"), (&change.projects, &projects, "projects")] {
        if asked.as_ref().is_some_and(|a| !a.is_empty()) && kept.as_ref().is_some_and(Vec::is_empty) {
            return Err(refused(
                "not_for_role",
                format!("{what} are kept for {} only", if what == "trades" { "technicians" } else { "dispatchers" }),
                if what == "trades" { "只有维修工有工种" } else { "只有客服/调度可以绑定项目" },
            ));
        }
    }
    if change.units.as_ref().is_some_and(|u| !u.is_empty()) && role != "owner" {
        return Err(refused("not_for_role", "units are bound to owners only", "只有业主可以绑定房屋"));
    }
    if let Some(trades) = trades {
        sqlx::query("DELETE FROM user_trades WHERE user_id = $1").bind(id).execute(&mut **tx).await?;
        for trade in &trades {
            sqlx::query("INSERT INTO user_trades (user_id, trade) VALUES ($1, $2)")
                .bind(id)
                .bind(trade.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    if let Some(projects) = projects {
        sqlx::query("DELETE FROM staff_projects WHERE user_id = $1").bind(id).execute(&mut **tx).await?;
        for project in &projects {
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND code = $2)")
                    .bind(org)
                    .bind(project.as_str())
                    .fetch_one(&mut **tx)
                    .await?;
            if !known {
                return Err(StoreError::UnknownProject(project.chars().take(40).collect()));
            }
            sqlx::query("INSERT INTO staff_projects (user_id, project) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(project.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    if let Some(units) = units {
        sqlx::query("DELETE FROM owner_units WHERE user_id = $1").bind(id).execute(&mut **tx).await?;
        for u in &units {
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM estate_units
                        WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4)",
            )
            .bind(org)
            .bind(u.project.as_str())
            .bind(u.building.as_str())
            .bind(u.unit.as_str())
            .fetch_one(&mut **tx)
            .await?;
            if !known {
                let place: String = format!("{}/{}/{}", u.project, u.building, u.unit).chars().take(80).collect();
                return Err(refused(
                    "unknown_unit",
                    format!("the estate register has no unit {place}"),
                    format!("房屋档案中没有 {place}"),
                ));
            }
            sqlx::query(
                "INSERT INTO owner_units (user_id, project, building, unit) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(u.project.as_str())
            .bind(u.building.as_str())
            .bind(u.unit.as_str())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

impl<B: Backend> Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    String: Column<B>,
    Option<i64>: Column<B>,
{
    /// The listed accounts with their trades, projects, units, devices and open orders: one
    /// query per kind for the whole page.
    async fn complete(&self, org: &str, rows: Vec<UserRow>) -> Result<Vec<UserRecordFull>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let list = placeholders(2, ids.len());
        // A query of rows `$t` over the page's accounts: `$1` the organization, then the ids.
        macro_rules! for_ids {
            ($t:ty, $sql:expr) => {{
                let mut q = sqlx::query_as::<B, $t>(AssertSqlSafe($sql)).bind(org);
                for id in &ids {
                    q = q.bind(*id);
                }
                q
            }};
        }
        let mut trades: HashMap<String, Vec<String>> = HashMap::new();
        for (user, trade) in for_ids!(
            (String, String),
            format!("SELECT user_id, trade FROM user_trades WHERE $1 = $1 AND user_id IN ({list}) ORDER BY trade")
        )
        .fetch_all(&self.pool)
        .await?
        {
            trades.entry(user).or_default().push(trade);
        }
        let mut projects: HashMap<String, Vec<String>> = HashMap::new();
        for (user, project) in for_ids!(
            (String, String),
            format!(
                "SELECT user_id, project FROM staff_projects WHERE $1 = $1 AND user_id IN ({list}) ORDER BY project"
            )
        )
        .fetch_all(&self.pool)
        .await?
        {
            projects.entry(user).or_default().push(project);
        }
        let mut units: HashMap<String, Vec<UnitRef>> = HashMap::new();
        let q = for_ids!(
            (String, String, String, String),
            format!(
                "SELECT user_id, project, building, unit FROM owner_units WHERE $1 = $1 AND user_id IN ({list})
             ORDER BY project, building, unit"
            )
        );
        for (user, project, building, unit) in q.fetch_all(&self.pool).await? {
            units.entry(user).or_default().push(UnitRef { project, building, unit });
        }
        let q = for_ids!(
            (String, i64, Option<i64>),
            format!(
                "SELECT user_id, SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), MAX(last_sync_at)
             FROM devices WHERE org_id = $1 AND user_id IN ({list}) GROUP BY user_id"
            )
        );
        let devices: HashMap<String, (i64, Option<i64>)> =
            q.fetch_all(&self.pool).await?.into_iter().map(|(u, n, at)| (u, (n, at))).collect();
        let q = for_ids!(
            (String, i64),
            format!(
                "SELECT assignee, COUNT(*) FROM order_facts WHERE org_id = $1 AND is_open = TRUE
                AND assignee IN ({list}) GROUP BY assignee"
            )
        );
        let open: HashMap<String, i64> = q.fetch_all(&self.pool).await?.into_iter().collect();
        Ok(rows
            .into_iter()
            .map(|(id, login, name, role, phone, created_at, disabled_at)| {
                let (active_devices, last_seen_at) = devices.get(&id).copied().unwrap_or((0, None));
                UserRecordFull {
                    trades: trades.remove(&id).unwrap_or_default(),
                    projects: projects.remove(&id).unwrap_or_default(),
                    units: units.remove(&id).unwrap_or_default(),
                    open_orders: open.get(&id).copied().unwrap_or(0),
                    active_devices,
                    last_seen_at,
                    id,
                    login,
                    name,
                    role,
                    phone,
                    created_at,
                    disabled_at,
                }
            })
            .collect())
    }
}
