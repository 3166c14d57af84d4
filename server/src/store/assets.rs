//! The asset register (设备台账, docs/maintenance.md): equipment at a place of a project, and
//! each asset's preventive maintenance plans. The rules (types, names, plans' rules and due
//! days) are sync-core's `asset` and `maintenance`; this concern stores what `http/assets.rs`
//! checked.

use super::*;

/// An asset as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AssetRecord {
    pub id: String,
    pub project: String,
    /// `None`: a place of the whole project.
    pub building: Option<String>,
    pub place: String,
    pub name: String,
    pub asset_type: String,
    pub make: String,
    /// YYYY-MM-DD.
    pub installed_on: Option<String>,
    /// The next legal inspection (年检), YYYY-MM-DD.
    pub inspection_due_on: Option<String>,
    pub updated_at: i64,
}

/// A preventive maintenance plan as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlanRecord {
    pub id: String,
    pub asset_id: String,
    pub rule: String,
    pub starts_on: String,
    pub max_gap_days: i64,
    pub lead_days: i64,
    pub checklist: Vec<String>,
    pub created_at: i64,
}

/// An occurrence of a plan whose work order the server made or reserved (docs/maintenance.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OccurrenceRecord {
    #[serde(skip)]
    pub org: String,
    /// `pm:{plan}:{YYYY-MM-DD}`.
    pub key: String,
    pub plan_id: String,
    pub asset_id: String,
    /// The rule's date, the day it is due, the day its order was issued: YYYY-MM-DD.
    pub nominal: String,
    pub due: String,
    pub issue_on: String,
    pub order_id: String,
    /// When its order was made (`None`: reserved, not made yet).
    pub made_at: Option<i64>,
    /// The day its order was completed (China Standard Time), YYYY-MM-DD.
    pub done: Option<String>,
}

type OccurrenceTuple = (String, String, String, String, String, String, String, String, Option<i64>, Option<String>);
const OCCURRENCE_COLUMNS: &str =
    "org_id, occurrence_key, plan_id, asset_id, nominal, due, issue_on, order_id, made_at, done";

fn occurrence_of(row: OccurrenceTuple) -> OccurrenceRecord {
    let (org, key, plan_id, asset_id, nominal, due, issue_on, order_id, made_at, done) = row;
    OccurrenceRecord { org, key, plan_id, asset_id, nominal, due, issue_on, order_id, made_at, done }
}

/// An occurrence with what its order is now, for an asset's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ServiceRecord {
    #[serde(flatten)]
    pub occurrence: OccurrenceRecord,
    /// The order's official number and status, once the order is stored.
    pub number: Option<String>,
    pub status: Option<String>,
}

type AssetTuple = (String, String, Option<String>, String, String, String, String, Option<String>, Option<String>, i64);
const ASSET_COLUMNS: &str =
    "id, project, building, place, name, asset_type, make, installed_on, inspection_due_on, updated_at";

fn asset_of(row: AssetTuple) -> AssetRecord {
    let (id, project, building, place, name, asset_type, make, installed_on, inspection_due_on, updated_at) = row;
    AssetRecord { id, project, building, place, name, asset_type, make, installed_on, inspection_due_on, updated_at }
}

type PlanTuple = (String, String, String, String, i64, i64, String, i64);
const PLAN_COLUMNS: &str = "id, asset_id, rule, starts_on, max_gap_days, lead_days, checklist, created_at";

fn plan_of(row: PlanTuple) -> Result<PlanRecord> {
    let (id, asset_id, rule, starts_on, max_gap_days, lead_days, checklist, created_at) = row;
    let checklist = serde_json::from_str(&checklist)
        .map_err(|e| StoreError::Corrupt { what: "maintenance plan checklist", detail: format!("{id}: {e}") })?;
    Ok(PlanRecord { id, asset_id, rule, starts_on, max_gap_days, lead_days, checklist, created_at })
}

#[async_trait]
pub trait Assets: Send + Sync {
    /// A project's assets, by name.
    async fn assets(&self, org: &str, project: &str) -> Result<Vec<AssetRecord>>;
    async fn asset(&self, org: &str, id: &str) -> Result<Option<AssetRecord>>;
    /// A new asset: `false` when the project has one of that name.
    async fn add_asset(&self, org: &str, asset: &AssetRecord, now_ms: i64) -> Result<bool>;
    /// Removes an asset and its plans: whether it was there.
    async fn remove_asset(&self, org: &str, id: &str) -> Result<bool>;
    /// An asset's plans, oldest first.
    async fn plans(&self, org: &str, asset: &str) -> Result<Vec<PlanRecord>>;
    async fn add_plan(&self, org: &str, plan: &PlanRecord) -> Result<()>;
    /// Removes a plan of the asset: whether it was there.
    async fn remove_plan(&self, org: &str, asset: &str, id: &str) -> Result<bool>;
    /// Every plan of every organization, with its organization and asset: what the scheduler
    /// walks.
    async fn scheduled_plans(&self) -> Result<Vec<(String, AssetRecord, PlanRecord)>>;
    /// The plan's occurrence of the latest rule's date made or reserved.
    async fn last_occurrence(&self, org: &str, plan: &str) -> Result<Option<OccurrenceRecord>>;
    /// Reserves an occurrence for this process to make its order: `false` when it is reserved
    /// already (by this or another replica).
    async fn reserve_occurrence(&self, occurrence: &OccurrenceRecord, now_ms: i64) -> Result<bool>;
    /// Occurrences reserved before `before_ms` whose orders were not made (their process
    /// stopped in between), oldest first.
    async fn unmade_occurrences(&self, before_ms: i64, limit: i64) -> Result<Vec<OccurrenceRecord>>;
    /// Takes over a reservation left unmade since before `before_ms`: `false` when another
    /// process took it (or made it) first.
    async fn retake_occurrence(&self, org: &str, key: &str, before_ms: i64, now_ms: i64) -> Result<bool>;
    /// Records an occurrence's order made, under the id it was made with.
    async fn occurrence_made(&self, org: &str, key: &str, order: &str, now_ms: i64) -> Result<()>;
    /// Forgets a reservation whose order was never made (its plan was removed).
    async fn forget_occurrence(&self, org: &str, key: &str) -> Result<()>;
    /// Whether the organization's order is stored.
    async fn order_stored(&self, org: &str, order: &str) -> Result<bool>;
    /// Occurrences made but not known done whose orders were completed (organization, key),
    /// with the completion's time (the dashboards' facts).
    async fn completed_occurrences(&self, limit: i64) -> Result<Vec<(String, String, i64)>>;
    async fn occurrence_done(&self, org: &str, key: &str, done: &str) -> Result<()>;
    /// An asset's occurrences, the latest rule's date first, with their orders' numbers and
    /// statuses.
    async fn services(&self, org: &str, asset: &str, limit: i64) -> Result<Vec<ServiceRecord>>;
}

#[async_trait]
impl<B: Backend> Assets for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    String: Column<B>,
    Option<String>: Column<B>,
    Option<i64>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    async fn assets(&self, org: &str, project: &str) -> Result<Vec<AssetRecord>> {
        let rows: Vec<AssetTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE org_id = $1 AND project = $2"
        )))
        .bind(org)
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        let mut assets: Vec<AssetRecord> = rows.into_iter().map(asset_of).collect();
        assets.sort_by(|a, b| loopwork_sync_core::estate::natural_cmp(&a.name, &b.name));
        Ok(assets)
    }

    async fn asset(&self, org: &str, id: &str) -> Result<Option<AssetRecord>> {
        let row: Option<AssetTuple> =
            sqlx::query_as(AssertSqlSafe(format!("SELECT {ASSET_COLUMNS} FROM assets WHERE org_id = $1 AND id = $2")))
                .bind(org)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(asset_of))
    }

    async fn add_asset(&self, org: &str, asset: &AssetRecord, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO assets (id, org_id, project, building, place, name, asset_type, make, installed_on,
                                 inspection_due_on, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT DO NOTHING",
        )
        .bind(asset.id.as_str())
        .bind(org)
        .bind(asset.project.as_str())
        .bind(asset.building.as_deref())
        .bind(asset.place.as_str())
        .bind(asset.name.as_str())
        .bind(asset.asset_type.as_str())
        .bind(asset.make.as_str())
        .bind(asset.installed_on.as_deref())
        .bind(asset.inspection_due_on.as_deref())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_asset(&self, org: &str, id: &str) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM maintenance_plans WHERE org_id = $1 AND asset_id = $2")
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM assets WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn plans(&self, org: &str, asset: &str) -> Result<Vec<PlanRecord>> {
        let rows: Vec<PlanTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM maintenance_plans WHERE org_id = $1 AND asset_id = $2 ORDER BY created_at, id"
        )))
        .bind(org)
        .bind(asset)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(plan_of).collect()
    }

    async fn add_plan(&self, org: &str, plan: &PlanRecord) -> Result<()> {
        let checklist = serde_json::to_string(&plan.checklist)
            .map_err(|e| StoreError::Corrupt { what: "maintenance plan checklist", detail: e.to_string() })?;
        sqlx::query(
            "INSERT INTO maintenance_plans (id, org_id, asset_id, rule, starts_on, max_gap_days, lead_days, checklist,
                                            created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(plan.id.as_str())
        .bind(org)
        .bind(plan.asset_id.as_str())
        .bind(plan.rule.as_str())
        .bind(plan.starts_on.as_str())
        .bind(plan.max_gap_days)
        .bind(plan.lead_days)
        .bind(checklist.as_str())
        .bind(plan.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_plan(&self, org: &str, asset: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM maintenance_plans WHERE org_id = $1 AND asset_id = $2 AND id = $3")
            .bind(org)
            .bind(asset)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn scheduled_plans(&self) -> Result<Vec<(String, AssetRecord, PlanRecord)>> {
        let assets: Vec<(
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
        )> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT org_id, {ASSET_COLUMNS} FROM assets WHERE id IN (SELECT asset_id FROM maintenance_plans)"
        )))
        .fetch_all(&self.pool)
        .await?;
        let assets: std::collections::HashMap<(String, String), AssetRecord> = assets
            .into_iter()
            .map(
                |(
                    org,
                    id,
                    project,
                    building,
                    place,
                    name,
                    asset_type,
                    make,
                    installed_on,
                    inspection_due_on,
                    updated_at,
                )| {
                    let asset = asset_of((
                        id,
                        project,
                        building,
                        place,
                        name,
                        asset_type,
                        make,
                        installed_on,
                        inspection_due_on,
                        updated_at,
                    ));
                    ((org, asset.id.clone()), asset)
                },
            )
            .collect();
        let plans: Vec<(String, String, String, String, String, i64, i64, String, i64)> =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT org_id, {PLAN_COLUMNS} FROM maintenance_plans ORDER BY org_id, asset_id, created_at, id"
            )))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(plans.len());
        for (org, id, asset_id, rule, starts_on, max_gap_days, lead_days, checklist, created_at) in plans {
            let plan = plan_of((id, asset_id, rule, starts_on, max_gap_days, lead_days, checklist, created_at))?;
            // A plan's asset is of its organization (both written by `http/assets.rs`).
            if let Some(asset) = assets.get(&(org.clone(), plan.asset_id.clone())) {
                out.push((org, asset.clone(), plan));
            }
        }
        Ok(out)
    }

    async fn last_occurrence(&self, org: &str, plan: &str) -> Result<Option<OccurrenceRecord>> {
        let row: Option<OccurrenceTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM maintenance_occurrences WHERE org_id = $1 AND plan_id = $2
             ORDER BY nominal DESC LIMIT 1"
        )))
        .bind(org)
        .bind(plan)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(occurrence_of))
    }

    async fn reserve_occurrence(&self, o: &OccurrenceRecord, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO maintenance_occurrences (org_id, occurrence_key, plan_id, asset_id, nominal, due, issue_on,
                                                  order_id, reserved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(o.org.as_str())
        .bind(o.key.as_str())
        .bind(o.plan_id.as_str())
        .bind(o.asset_id.as_str())
        .bind(o.nominal.as_str())
        .bind(o.due.as_str())
        .bind(o.issue_on.as_str())
        .bind(o.order_id.as_str())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unmade_occurrences(&self, before_ms: i64, limit: i64) -> Result<Vec<OccurrenceRecord>> {
        let rows: Vec<OccurrenceTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM maintenance_occurrences WHERE made_at IS NULL AND reserved_at < $1
             ORDER BY reserved_at LIMIT $2"
        )))
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(occurrence_of).collect())
    }

    async fn retake_occurrence(&self, org: &str, key: &str, before_ms: i64, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE maintenance_occurrences SET reserved_at = $4
             WHERE org_id = $1 AND occurrence_key = $2 AND made_at IS NULL AND reserved_at < $3",
        )
        .bind(org)
        .bind(key)
        .bind(before_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn order_stored(&self, org: &str, order: &str) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM orders WHERE id = $1 AND org_id = $2")
            .bind(order)
            .bind(org)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn occurrence_made(&self, org: &str, key: &str, order: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE maintenance_occurrences SET made_at = $3, order_id = $4
             WHERE org_id = $1 AND occurrence_key = $2 AND made_at IS NULL",
        )
        .bind(org)
        .bind(key)
        .bind(now_ms)
        .bind(order)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn forget_occurrence(&self, org: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM maintenance_occurrences WHERE org_id = $1 AND occurrence_key = $2 AND made_at IS NULL",
        )
        .bind(org)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn completed_occurrences(&self, limit: i64) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT o.org_id, o.occurrence_key, f.completed_at
             FROM maintenance_occurrences o JOIN order_facts f ON f.order_id = o.order_id AND f.org_id = o.org_id
             WHERE o.done IS NULL AND o.made_at IS NOT NULL AND f.completed_at IS NOT NULL
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn occurrence_done(&self, org: &str, key: &str, done: &str) -> Result<()> {
        sqlx::query("UPDATE maintenance_occurrences SET done = $3 WHERE org_id = $1 AND occurrence_key = $2")
            .bind(org)
            .bind(key)
            .bind(done)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn services(&self, org: &str, asset: &str, limit: i64) -> Result<Vec<ServiceRecord>> {
        let rows: Vec<(
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
        )> = sqlx::query_as(
            "SELECT o.org_id, o.occurrence_key, o.plan_id, o.asset_id, o.nominal, o.due, o.issue_on, o.order_id,
                        o.made_at, o.done, r.number, r.status
                 FROM maintenance_occurrences o LEFT JOIN orders r ON r.id = o.order_id AND r.org_id = o.org_id
                 WHERE o.org_id = $1 AND o.asset_id = $2
                 ORDER BY o.nominal DESC, o.occurrence_key LIMIT $3",
        )
        .bind(org)
        .bind(asset)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(org, key, plan_id, asset_id, nominal, due, issue_on, order_id, made_at, done, number, status)| {
                ServiceRecord {
                    occurrence: occurrence_of((
                        org, key, plan_id, asset_id, nominal, due, issue_on, order_id, made_at, done,
                    )),
                    number,
                    status,
                }
            })
            .collect())
    }
}
