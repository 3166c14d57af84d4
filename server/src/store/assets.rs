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
}
