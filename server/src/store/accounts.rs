//! Organizations, projects, people and their devices: who may sign in, as whom, and which
//! orders and units they serve.

use super::*;

/// A user to create (the admin CLI, the demo data, tests).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub org: String,
    pub login: String,
    pub password_hash: String,
    pub role: Role,
    pub display_name: String,
    pub phone: Option<String>,
}

/// A user as login needs it.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: UserId,
    pub org: String,
    pub role: Role,
    pub password_hash: String,
}

/// The device, user, role and organization of a bearer token's hash ($1), and whether the user
/// is a dispatcher bound to projects: nothing if the device is revoked or the user disabled.
pub(crate) const PRINCIPAL_BY_TOKEN: &str = "SELECT d.id, u.id, u.role, u.org_id,
        u.role = 'dispatcher' AND EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = u.id)
     FROM devices d JOIN users u ON u.id = d.user_id
     WHERE d.token_hash = $1 AND d.revoked_at IS NULL AND u.disabled_at IS NULL";

/// The signed-in user as the pages show them.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct MeRecord {
    pub name: String,
    pub units: Vec<UnitRef>,
    pub projects: Vec<ProjectRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitRef {
    pub project: String,
    pub building: String,
    pub unit: String,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ProjectRef {
    pub code: String,
    pub name: String,
}

/// A technician as the assignment picker shows them.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TechnicianLoad {
    pub user_id: String,
    pub name: String,
    pub open_orders: i64,
    pub last_seen_at: Option<i64>,
}

pub(crate) fn principal_from(row: (String, String, String, String, bool)) -> Result<Principal> {
    let (device, user, role, org, project_bound) = row;
    let role = Role::from_code(&role).map_err(|e| StoreError::corrupt("role", e))?;
    Ok(Principal {
        device: device.parse().map_err(|e| StoreError::corrupt("device id", e))?,
        user: user.parse().map_err(|e| StoreError::corrupt("user id", e))?,
        project_bound: role == Role::Dispatcher && project_bound,
        role,
        org,
    })
}

#[async_trait]
pub trait Accounts: Send + Sync {
    async fn has_organizations(&self) -> Result<bool>;
    /// After a restore: moves the day's official-number count of every organization forward
    /// by `by` (the day of `now_ms` in China Standard Time), so that numbers given out after the
    /// backup and lost with it are not given again. Each organization's new count, by id.
    async fn skip_numbers(&self, by: i64, now_ms: i64) -> Result<Vec<(String, i64)>>;
    async fn create_organization(&self, name: &str, now_ms: i64) -> Result<String>;
    async fn create_project(&self, org: &str, code: &str, name: &str) -> Result<()>;
    async fn has_project(&self, org: &str, code: &str) -> Result<bool>;
    async fn create_user(&self, user: &NewUser, now_ms: i64) -> Result<UserId>;
    async fn bind_unit(&self, user: UserId, project: &str, building: &str, unit: &str) -> Result<()>;
    /// Binds a dispatcher to a project of their organization, which they then serve (with any
    /// others they are bound to) instead of the whole organization.
    async fn bind_project(&self, user: UserId, project: &str) -> Result<()>;
    /// The projects a dispatcher bound to projects serves; `None` for everyone whose scope is
    /// not a set of projects.
    async fn served_projects(&self, principal: &Principal) -> Result<Option<Vec<String>>>;
    /// Whether the order is one the principal's scope holds.
    async fn order_in_scope(&self, principal: &Principal, order: OrderId) -> Result<bool>;
    async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>>;
    async fn register_device(&self, user: &UserRecord, name: &str, token_hash: &str, now_ms: i64) -> Result<DeviceId>;
    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>>;
    /// Revokes a device of the organization; its next request is refused.
    async fn revoke_device(&self, org: &str, device: DeviceId, now_ms: i64) -> Result<bool>;
    async fn me(&self, principal: &Principal) -> Result<MeRecord>;
    async fn technicians(&self, org: &str) -> Result<Vec<TechnicianLoad>>;
    /// Whether the user is an active technician of the organization.
    async fn is_technician(&self, org: &str, user: UserId) -> Result<bool>;
    /// Display names of the organization's staff (never owners') by user id.
    async fn staff_names(&self, org: &str) -> Result<HashMap<String, String>>;
    /// The owner an order registered by phone is for: the owner of the unit with this phone,
    /// else the unit's first owner.
    async fn owner_of_unit(
        &self,
        org: &str,
        location: &loopwork_sync_core::Location,
        phone: Option<&str>,
    ) -> Result<Option<UserId>>;
}

#[async_trait]
impl<B: Backend> Accounts for Store<B>
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
    async fn has_organizations(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    async fn skip_numbers(&self, by: i64, now_ms: i64) -> Result<Vec<(String, i64)>> {
        let day = loopwork_sync_core::china_time::day_code(now_ms);
        let mut tx = B::begin_write(&self.pool).await?;
        let orgs: Vec<String> =
            sqlx::query_scalar("SELECT id FROM organizations ORDER BY id").fetch_all(&mut *tx).await?;
        let mut counts = Vec::new();
        for org in orgs {
            let next: i64 = sqlx::query_scalar(
                "INSERT INTO number_counters (org_id, day, next) VALUES ($1, $2, $3)
                 ON CONFLICT (org_id, day) DO UPDATE SET next = number_counters.next + $3
                 RETURNING next",
            )
            .bind(org.as_str())
            .bind(day.as_str())
            .bind(by)
            .fetch_one(&mut *tx)
            .await?;
            counts.push((org, next));
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn create_organization(&self, name: &str, now_ms: i64) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = B::begin_write(&self.pool).await?;
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(name)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        // The knowledge base starts with the starter articles, for the owner bot's first day.
        super::assistant::seed_articles(&mut tx, &id, now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn create_project(&self, org: &str, code: &str, name: &str) -> Result<()> {
        sqlx::query("INSERT INTO projects (org_id, code, name) VALUES ($1, $2, $3)")
            .bind(org)
            .bind(code)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_user(&self, user: &NewUser, now_ms: i64) -> Result<UserId> {
        let id = UserId::new();
        let done = sqlx::query(
            "INSERT INTO users (id, org_id, login, password_hash, role, display_name, phone, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (login) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&user.org)
        .bind(&user.login)
        .bind(&user.password_hash)
        .bind(user.role.code())
        .bind(&user.display_name)
        .bind(&user.phone)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LoginTaken);
        }
        Ok(id)
    }

    async fn bind_unit(&self, user: UserId, project: &str, building: &str, unit: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO owner_units (user_id, project, building, unit) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(user.to_string())
        .bind(project)
        .bind(building)
        .bind(unit)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn has_project(&self, org: &str, code: &str) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND code = $2)")
            .bind(org)
            .bind(code)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn bind_project(&self, user: UserId, project: &str) -> Result<()> {
        let (dispatcher, known): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'dispatcher'),
                EXISTS (SELECT 1 FROM users u JOIN projects p ON p.org_id = u.org_id WHERE u.id = $1 AND p.code = $2)",
        )
        .bind(user.to_string())
        .bind(project)
        .fetch_one(&self.pool)
        .await?;
        if !dispatcher {
            return Err(StoreError::NotADispatcher);
        }
        if !known {
            return Err(StoreError::UnknownProject(project.to_owned()));
        }
        sqlx::query("INSERT INTO staff_projects (user_id, project) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(user.to_string())
            .bind(project)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn served_projects(&self, principal: &Principal) -> Result<Option<Vec<String>>> {
        if !matches!(Scope::of(principal), Scope::Projects(_)) {
            return Ok(None);
        }
        let projects: Vec<String> =
            sqlx::query_scalar("SELECT project FROM staff_projects WHERE user_id = $1 ORDER BY project")
                .bind(principal.user.to_string())
                .fetch_all(&self.pool)
                .await?;
        Ok(Some(projects))
    }

    async fn order_in_scope(&self, principal: &Principal, order: OrderId) -> Result<bool> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE org_id = $1 AND id = $2 AND $3 = $3 AND {})",
            scope_filter(Scope::of(principal), "id")
        );
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(&principal.org)
            .bind(order.to_string())
            .bind(principal.user.to_string())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, org_id, role, password_hash FROM users WHERE login = $1 AND disabled_at IS NULL",
        )
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, org, role, password_hash)| {
            Ok(UserRecord {
                id: id.parse().map_err(|e| StoreError::corrupt("user id", e))?,
                org,
                role: Role::from_code(&role).map_err(|e| StoreError::corrupt("role", e))?,
                password_hash,
            })
        })
        .transpose()
    }

    async fn register_device(&self, user: &UserRecord, name: &str, token_hash: &str, now_ms: i64) -> Result<DeviceId> {
        let id = DeviceId::new();
        sqlx::query(
            "INSERT INTO devices (id, user_id, org_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(user.id.to_string())
        .bind(&user.org)
        .bind(name)
        .bind(token_hash)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let row: Option<(String, String, String, String, bool)> =
            sqlx::query_as(PRINCIPAL_BY_TOKEN).bind(token_hash).fetch_optional(&self.pool).await?;
        row.map(principal_from).transpose()
    }

    async fn revoke_device(&self, org: &str, device: DeviceId, now_ms: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(device.to_string())
                .bind(org)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn me(&self, principal: &Principal) -> Result<MeRecord> {
        let user = principal.user.to_string();
        let name: String = sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
            .bind(&user)
            .fetch_one(&self.pool)
            .await?;
        let units: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT project, building, unit FROM owner_units WHERE user_id = $1 ORDER BY project, building, unit",
        )
        .bind(&user)
        .fetch_all(&self.pool)
        .await?;
        // A dispatcher bound to projects registers orders in those only.
        let projects: Vec<(String, String)> = sqlx::query_as(
            "SELECT code, name FROM projects WHERE org_id = $1
                AND ($2 = 0 OR code IN (SELECT project FROM staff_projects WHERE user_id = $3)) ORDER BY code",
        )
        .bind(&principal.org)
        .bind(i32::from(principal.project_bound))
        .bind(&user)
        .fetch_all(&self.pool)
        .await?;
        Ok(MeRecord {
            name,
            units: units.into_iter().map(|(project, building, unit)| UnitRef { project, building, unit }).collect(),
            projects: projects.into_iter().map(|(code, name)| ProjectRef { code, name }).collect(),
        })
    }

    async fn technicians(&self, org: &str) -> Result<Vec<TechnicianLoad>> {
        let people: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT u.id, u.display_name,
                (SELECT MAX(d.last_sync_at) FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL)
             FROM users u WHERE u.org_id = $1 AND u.role = 'technician' AND u.disabled_at IS NULL
             ORDER BY u.display_name, u.id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        // Open orders per technician in one pass of the open orders' facts.
        let load: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT assignee, COUNT(*) FROM order_facts WHERE org_id = $1 AND is_open = TRUE
                AND assignee IS NOT NULL GROUP BY assignee",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(people
            .into_iter()
            .map(|(user_id, name, last_seen_at)| TechnicianLoad {
                open_orders: load.get(&user_id).copied().unwrap_or(0),
                user_id,
                name,
                last_seen_at,
            })
            .collect())
    }

    async fn is_technician(&self, org: &str, user: UserId) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND org_id = $2 AND role = 'technician'
                AND disabled_at IS NULL)",
        )
        .bind(user.to_string())
        .bind(org)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn staff_names(&self, org: &str) -> Result<HashMap<String, String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, display_name FROM users WHERE org_id = $1 AND role <> 'owner'")
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    async fn owner_of_unit(
        &self,
        org: &str,
        location: &loopwork_sync_core::Location,
        phone: Option<&str>,
    ) -> Result<Option<UserId>> {
        // Accounts keep phones as they were typed; callers' are digits: compared as digits.
        let owners: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT u.id, u.phone FROM owner_units w JOIN users u ON u.id = w.user_id
             WHERE u.org_id = $1 AND w.project = $2 AND w.building = $3 AND w.unit = $4
               AND u.role = 'owner' AND u.disabled_at IS NULL
             ORDER BY u.id",
        )
        .bind(org)
        .bind(&location.project)
        .bind(&location.building)
        .bind(&location.unit)
        .fetch_all(&self.pool)
        .await?;
        let digits = |p: &str| loopwork_sync_core::estate::normalize_phone(p).ok();
        let wanted = phone.and_then(digits);
        let chosen = owners
            .iter()
            .find(|(_, p)| wanted.is_some() && p.as_deref().and_then(digits) == wanted)
            .or(owners.first())
            .map(|(id, _)| id.clone());
        chosen.map(|id| id.parse().map_err(|e| StoreError::corrupt("user id", e))).transpose()
    }
}
