//! Owners' personal data: contact reveals, the audit of an order's sources, export and erasure.

use super::*;

/// Where an order's changes came from, for its audit trail: the document, and per change hash
/// when the server received it and from which device (and that device's user and role; none
/// for the server's own changes).
#[derive(Clone, Debug)]
pub struct AuditSources {
    pub doc: Vec<u8>,
    pub received: HashMap<Vec<u8>, Received>,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub at_ms: i64,
    pub device: Option<String>,
    pub user: Option<String>,
    pub role: Option<String>,
}

/// The owner behind an order, and what decides who may see their contact.
#[derive(Clone, Debug)]
pub struct ContactSource {
    pub reporter: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub assignee: Option<String>,
    pub is_open: bool,
    /// The principal (a technician) has ever been given the order.
    pub ever_given: bool,
}

/// One time someone saw an owner's full phone number.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RevealRecord {
    pub user_id: String,
    pub device_id: String,
    pub revealed_at_ms: i64,
}

/// Everything the server holds about a user (`GET /api/v1/me/export`, 个人信息导出).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct UserExport {
    pub user: ExportedUser,
    pub units: Vec<UnitRef>,
    pub devices: Vec<ExportedDevice>,
    /// The orders they reported.
    pub orders: Vec<ExportedOrder>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ExportedUser {
    pub id: String,
    pub login: String,
    pub role: String,
    pub name: String,
    pub phone: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ExportedDevice {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ExportedOrder {
    pub id: String,
    pub number: String,
    pub kind: &'static str,
    pub category: String,
    pub location: ExportedLocation,
    pub description: String,
    pub created_at_ms: i64,
    pub status: &'static str,
    pub rating: Option<u8>,
    pub rating_comment: Option<String>,
    /// Their own notes on it.
    pub notes_by_me: Vec<ExportedNote>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ExportedLocation {
    pub project: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ExportedNote {
    pub at_ms: i64,
    pub text: String,
}

#[async_trait]
pub trait Privacy: Send + Sync {
    /// An order of the organization with where each of its changes came from; `None` if the
    /// organization has no such order.
    async fn audit_sources(&self, org: &str, order: OrderId) -> Result<Option<AuditSources>>;
    /// The owner behind an order of the organization, for contact masking and reveals.
    async fn order_contact(&self, principal: &Principal, order: OrderId) -> Result<Option<ContactSource>>;
    async fn log_reveal(&self, principal: &Principal, order: OrderId, now_ms: i64) -> Result<()>;
    async fn reveals(&self, org: &str, order: OrderId) -> Result<Vec<RevealRecord>>;
    /// Everything the server holds about a user, for their export (JSON).
    async fn export_user(&self, principal: &Principal) -> Result<UserExport>;
    /// Erases a user's personal data (name, phone, login, unit bindings) and revokes their
    /// devices; their orders keep only their id, as documents always did.
    async fn erase_user(&self, principal: &Principal, now_ms: i64) -> Result<()>;
}

#[async_trait]
impl<B: Backend> Privacy for Store<B>
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
    async fn order_contact(&self, principal: &Principal, order: OrderId) -> Result<Option<ContactSource>> {
        let row: Option<(String, Option<String>, Option<String>, Option<String>, bool, bool)> = sqlx::query_as(
            "SELECT o.reporter, u.display_name, u.phone, o.assignee, o.is_open,
                    EXISTS (SELECT 1 FROM order_access a WHERE a.order_id = o.id AND a.user_id = $3)
             FROM orders o LEFT JOIN users u ON u.id = o.reporter
             WHERE o.id = $1 AND o.org_id = $2",
        )
        .bind(order.to_string())
        .bind(&principal.org)
        .bind(principal.user.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(reporter, name, phone, assignee, is_open, ever_given)| ContactSource {
            reporter,
            name,
            phone,
            assignee,
            is_open,
            ever_given,
        }))
    }

    async fn log_reveal(&self, principal: &Principal, order: OrderId, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO contact_reveals (org_id, order_id, user_id, device_id, revealed_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&principal.org)
        .bind(order.to_string())
        .bind(principal.user.to_string())
        .bind(principal.device.to_string())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reveals(&self, org: &str, order: OrderId) -> Result<Vec<RevealRecord>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT user_id, device_id, revealed_at FROM contact_reveals
             WHERE order_id = $1 AND org_id = $2 ORDER BY revealed_at",
        )
        .bind(order.to_string())
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, device_id, revealed_at_ms)| RevealRecord { user_id, device_id, revealed_at_ms })
            .collect())
    }

    async fn export_user(&self, principal: &Principal) -> Result<UserExport> {
        let user = principal.user.to_string();
        let (login, role, name, phone, created_at): (String, String, String, Option<String>, i64) =
            sqlx::query_as("SELECT login, role, display_name, phone, created_at FROM users WHERE id = $1")
                .bind(&user)
                .fetch_one(&self.pool)
                .await?;
        let units: Vec<(String, String, String)> =
            sqlx::query_as("SELECT project, building, unit FROM owner_units WHERE user_id = $1 ORDER BY 1, 2, 3")
                .bind(&user)
                .fetch_all(&self.pool)
                .await?;
        let devices: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, name, created_at, revoked_at FROM devices WHERE user_id = $1 ORDER BY created_at",
        )
        .bind(&user)
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<StoredDocRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, {DOC_COLUMNS} FROM orders WHERE reporter = $1 AND org_id = $2 ORDER BY created_at"
        )))
        .bind(&user)
        .bind(&principal.org)
        .fetch_all(&mut *conn)
        .await?;
        let docs = Self::whole_documents(&mut conn, rows).await?;
        let mut orders = Vec::new();
        for (id, doc) in docs {
            let id_parsed: OrderId = id.parse().map_err(|e| StoreError::corrupt("order id", e))?;
            let order = self.load_stored(&principal.org, id_parsed, &doc).await?;
            let state = order.state().map_err(|e| StoreError::corrupt("order state", e))?;
            let location = order.location();
            orders.push(ExportedOrder {
                id,
                number: order.display_number(),
                kind: order.kind().map(|k| k.code()).unwrap_or_default(),
                category: order.category().map(|c| c.code()).unwrap_or_default(),
                location: ExportedLocation {
                    project: location.project,
                    building: location.building,
                    unit: location.unit,
                    area: location.area,
                },
                description: order.description(),
                created_at_ms: order.created_at_ms(),
                status: state.status.code(),
                rating: state.rating,
                rating_comment: state.rating_comment,
                notes_by_me: order
                    .notes()
                    .into_iter()
                    .filter(|n| n.by == principal.user)
                    .map(|n| ExportedNote { at_ms: n.at_ms, text: n.text })
                    .collect(),
            });
        }
        Ok(UserExport {
            user: ExportedUser { id: user, login, role, name, phone, created_at_ms: created_at },
            units: units.into_iter().map(|(project, building, unit)| UnitRef { project, building, unit }).collect(),
            devices: devices
                .into_iter()
                .map(|(id, name, created_at_ms, revoked_at_ms)| ExportedDevice {
                    id,
                    name,
                    created_at_ms,
                    revoked_at_ms,
                })
                .collect(),
            orders,
        })
    }

    async fn erase_user(&self, principal: &Principal, now_ms: i64) -> Result<()> {
        let user = principal.user.to_string();
        let mut tx = B::begin_write(&self.pool).await?;
        // Their entries in the estate register (by their number, however it was written) go.
        let phone: Option<String> = sqlx::query_scalar("SELECT phone FROM users WHERE id = $1")
            .bind(&user)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
        // Callers' and residents' numbers are stored as digits; the account's as it was typed.
        let digits = phone.as_deref().and_then(|p| loopwork_sync_core::estate::normalize_phone(p).ok());
        if let Some(digits) = &digits {
            sqlx::query("DELETE FROM estate_residents WHERE org_id = $1 AND phone = $2")
                .bind(&principal.org)
                .bind(digits.as_str())
                .execute(&mut *tx)
                .await?;
        }
        // Calls registered for them, or from their number: the caller's record goes too.
        sqlx::query(
            "UPDATE order_callers SET name = NULL, phone = NULL
             WHERE org_id = $2 AND (order_id IN (SELECT id FROM orders WHERE reporter = $1 AND org_id = $2)
                OR phone = (SELECT phone FROM users WHERE id = $1) OR phone = $3)",
        )
        .bind(&user)
        .bind(&principal.org)
        .bind(digits.as_deref())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE users SET display_name = '已注销用户', phone = NULL, login = $2, password_hash = '',
                    disabled_at = $3 WHERE id = $1",
        )
        .bind(&user)
        .bind(format!("erased-{user}"))
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM owner_units WHERE user_id = $1").bind(&user).execute(&mut *tx).await?;
        sqlx::query("UPDATE devices SET revoked_at = $2, name = '' WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(&user)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_sources(&self, org: &str, order: OrderId) -> Result<Option<AuditSources>> {
        let id = order.to_string();
        let Some(doc) = self.stored_document(org, &id).await? else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT f.hash, f.received_at, f.device_id, d.user_id, u.role
             FROM feed f LEFT JOIN devices d ON d.id = f.device_id LEFT JOIN users u ON u.id = d.user_id
             WHERE f.order_id = $1 AND f.kind = 'change'",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        let mut received = HashMap::new();
        for r in rows {
            let hash: Vec<u8> = r.try_get(0)?;
            let at_ms: i64 = r.try_get(1)?;
            received.insert(hash, Received { at_ms, device: r.try_get(2)?, user: r.try_get(3)?, role: r.try_get(4)? });
        }
        Ok(Some(AuditSources { doc, received }))
    }
}
