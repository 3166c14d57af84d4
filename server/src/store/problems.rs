//! Problem records (问题单, docs/maintenance.md): an asset's repeated failures, raised by the
//! server's pass (`crate::preventive::raise_problems`) from sync-core's `failures` rules over the
//! repairs that name the asset, and closed by the office with a preventive order or dismissed.

use super::*;

/// A problem record as stored.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ProblemRecord {
    /// A hash of the organization, the asset and the last fault that raised it: every replica
    /// raising it from the same evidence writes the same row.
    pub id: String,
    pub asset_id: String,
    pub raised_at: i64,
    /// `repeated` (so many faults within the window) or `outlier` (far more than its peers).
    pub reason: String,
    /// Faults counted, over how many days.
    pub count: i64,
    pub days: i64,
    /// The Poisson probability of as many at the peers' rate (0: no peers, the count decided).
    pub p_value: f64,
    /// The outlier rule's expected count at the peers' rate.
    pub expected: Option<f64>,
    /// The orders whose faults raised it.
    pub orders: Vec<String>,
    /// `open`, `ordered` (a preventive order was made of it) or `dismissed`.
    pub status: String,
    /// The preventive order made of it.
    pub order_id: Option<String>,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
}

/// An order naming an asset, for the asset's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AssetOrderRecord {
    pub order_id: String,
    pub number: Option<String>,
    pub kind: String,
    pub status: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

/// An asset as the failure rules see it, with its organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuledAsset {
    pub id: String,
    pub project: String,
    pub asset_type: String,
    /// YYYY-MM-DD, when known.
    pub installed_on: Option<String>,
    pub created_at: i64,
}

/// A repair naming an asset (from the scanner's facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetRepair {
    pub order: String,
    pub asset: String,
    pub reported_at: i64,
    pub completed_at: Option<i64>,
}

type ProblemTuple = (
    String,
    String,
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);
const PROBLEM_COLUMNS: &str =
    "id, asset_id, raised_at, reason, count, days, p_value, expected, orders, status, order_id, closed_at, closed_by";

fn problem_of(row: ProblemTuple) -> Result<ProblemRecord> {
    let (
        id,
        asset_id,
        raised_at,
        reason,
        count,
        days,
        p_value,
        expected,
        orders,
        status,
        order_id,
        closed_at,
        closed_by,
    ) = row;
    let orders = serde_json::from_str(&orders)
        .map_err(|e| StoreError::Corrupt { what: "problem record orders", detail: format!("{id}: {e}") })?;
    // Kept as text (both stores read it alike); written by `raise_problem`.
    let number = |text: &str| {
        text.parse::<f64>()
            .map_err(|e| StoreError::Corrupt { what: "problem record probability", detail: format!("{id}: {e}") })
    };
    let p_value = number(&p_value)?;
    let expected = expected.as_deref().map(number).transpose()?;
    Ok(ProblemRecord {
        id,
        asset_id,
        raised_at,
        reason,
        count,
        days,
        p_value,
        expected,
        orders,
        status,
        order_id,
        closed_at,
        closed_by,
    })
}

#[async_trait]
pub trait Problems: Send + Sync {
    /// Organizations with assets.
    async fn asset_orgs(&self) -> Result<Vec<String>>;
    /// The organization's assets as the rules see them.
    async fn ruled_assets(&self, org: &str) -> Result<Vec<RuledAsset>>;
    /// Repairs (kind `repair`, not cancelled) naming an asset of their own project, registered
    /// since `since_ms`.
    async fn asset_repairs(&self, org: &str, since_ms: i64) -> Result<Vec<AssetRepair>>;
    /// An order's official number, if it is stored.
    async fn order_number(&self, org: &str, order: &str) -> Result<Option<String>>;
    /// The orders of the asset's project naming it, newest first (as the scanner last read them):
    /// an order of another project naming it is not its history.
    async fn asset_orders(&self, org: &str, asset: &str, limit: i64) -> Result<Vec<AssetOrderRecord>>;
    /// The services due from `from` to `to` (YYYY-MM-DD, both included) of a project's assets
    /// (or all): each one's due day and done day.
    async fn services_due(
        &self,
        org: &str,
        project: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Option<String>)>>;
    /// Orders of kind `repair` and `maintenance` registered in the period (not cancelled).
    async fn reactive_and_preventive(&self, org: &str, period: &Period) -> Result<(i64, i64)>;
    /// Each asset's latest problem: when it was raised (the rules' cooldown).
    async fn last_problems(&self, org: &str) -> Result<Vec<(String, i64)>>;
    /// The organization's problems, newest first: of one asset, or in one status, when given.
    async fn problems(
        &self,
        org: &str,
        asset: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProblemRecord>>;
    async fn problem(&self, org: &str, id: &str) -> Result<Option<ProblemRecord>>;
    /// Stores a problem raised: `false` when a replica stored it already.
    async fn raise_problem(&self, org: &str, problem: &ProblemRecord) -> Result<bool>;
    /// Opens again a problem whose preventive order could not be made.
    async fn reopen_problem(&self, org: &str, id: &str, order: &str) -> Result<()>;
    /// Closes an open problem (`ordered` with its order, or `dismissed`): `false` when it was
    /// not open.
    async fn close_problem(
        &self,
        org: &str,
        id: &str,
        status: &str,
        order: Option<&str>,
        by: &str,
        now_ms: i64,
    ) -> Result<bool>;
}

#[async_trait]
impl<B: Backend> Problems for Store<B>
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
    async fn asset_orgs(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT org_id FROM assets ORDER BY org_id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(org,)| org).collect())
    }

    async fn ruled_assets(&self, org: &str) -> Result<Vec<RuledAsset>> {
        let rows: Vec<(String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, project, asset_type, installed_on, created_at FROM assets WHERE org_id = $1 ORDER BY id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, project, asset_type, installed_on, created_at)| RuledAsset {
                id,
                project,
                asset_type,
                installed_on,
                created_at,
            })
            .collect())
    }

    async fn asset_repairs(&self, org: &str, since_ms: i64) -> Result<Vec<AssetRepair>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT f.order_id, f.asset_id, f.created_at, f.completed_at FROM order_facts f
             JOIN assets a ON a.org_id = f.org_id AND a.id = f.asset_id AND a.project = f.project
             WHERE f.org_id = $1 AND f.asset_id IS NOT NULL AND f.kind = 'repair' AND f.status <> 'cancelled'
               AND f.created_at >= $2
             ORDER BY f.created_at, f.order_id",
        )
        .bind(org)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(order, asset, reported_at, completed_at)| AssetRepair { order, asset, reported_at, completed_at })
            .collect())
    }

    async fn order_number(&self, org: &str, order: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT number FROM orders WHERE id = $1 AND org_id = $2")
            .bind(order)
            .bind(org)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(number,)| number))
    }

    async fn asset_orders(&self, org: &str, asset: &str, limit: i64) -> Result<Vec<AssetOrderRecord>> {
        let rows: Vec<(String, Option<String>, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT f.order_id, o.number, f.kind, f.status, f.created_at, f.completed_at
             FROM order_facts f
             JOIN assets a ON a.org_id = f.org_id AND a.id = f.asset_id AND a.project = f.project
             LEFT JOIN orders o ON o.id = f.order_id AND o.org_id = f.org_id
             WHERE f.org_id = $1 AND f.asset_id = $2 ORDER BY f.created_at DESC, f.order_id LIMIT $3",
        )
        .bind(org)
        .bind(asset)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(order_id, number, kind, status, created_at, completed_at)| AssetOrderRecord {
                order_id,
                number,
                kind,
                status,
                created_at,
                completed_at,
            })
            .collect())
    }

    async fn problems(
        &self,
        org: &str,
        asset: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProblemRecord>> {
        let rows: Vec<ProblemTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PROBLEM_COLUMNS} FROM problems
             WHERE org_id = $1 AND ($2 IS NULL OR asset_id = $2) AND ($3 IS NULL OR status = $3)
             ORDER BY raised_at DESC, id LIMIT $4"
        )))
        .bind(org)
        .bind(asset)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(problem_of).collect()
    }

    async fn services_due(
        &self,
        org: &str,
        project: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT o.due, o.done FROM maintenance_occurrences o
             JOIN assets a ON a.org_id = o.org_id AND a.id = o.asset_id
             WHERE o.org_id = $1 AND ($2 IS NULL OR a.project = $2) AND o.due >= $3 AND o.due <= $4
               AND o.made_at IS NOT NULL",
        )
        .bind(org)
        .bind(project)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn reactive_and_preventive(&self, org: &str, period: &Period) -> Result<(i64, i64)> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM order_facts
             WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
               AND kind IN ('repair', 'maintenance') AND status <> 'cancelled'
             GROUP BY kind",
        )
        .bind(org)
        .bind(period.from)
        .bind(period.to)
        .bind(period.project.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let count = |kind: &str| rows.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
        Ok((count("repair"), count("maintenance")))
    }

    async fn last_problems(&self, org: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as("SELECT asset_id, MAX(raised_at) FROM problems WHERE org_id = $1 GROUP BY asset_id")
            .bind(org)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn problem(&self, org: &str, id: &str) -> Result<Option<ProblemRecord>> {
        let row: Option<ProblemTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PROBLEM_COLUMNS} FROM problems WHERE org_id = $1 AND id = $2"
        )))
        .bind(org)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(problem_of).transpose()
    }

    async fn raise_problem(&self, org: &str, p: &ProblemRecord) -> Result<bool> {
        let orders = serde_json::to_string(&p.orders)
            .map_err(|e| StoreError::Corrupt { what: "problem record orders", detail: e.to_string() })?;
        let done = sqlx::query(
            "INSERT INTO problems (id, org_id, asset_id, raised_at, reason, count, days, p_value, expected, orders,
                                   status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open') ON CONFLICT DO NOTHING",
        )
        .bind(p.id.as_str())
        .bind(org)
        .bind(p.asset_id.as_str())
        .bind(p.raised_at)
        .bind(p.reason.as_str())
        .bind(p.count)
        .bind(p.days)
        .bind(p.p_value.to_string())
        .bind(p.expected.map(|e| e.to_string()))
        .bind(orders.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn reopen_problem(&self, org: &str, id: &str, order: &str) -> Result<()> {
        sqlx::query(
            "UPDATE problems SET status = 'open', order_id = NULL, closed_by = NULL, closed_at = NULL
             WHERE org_id = $1 AND id = $2 AND status = 'ordered' AND order_id = $3",
        )
        .bind(org)
        .bind(id)
        .bind(order)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn close_problem(
        &self,
        org: &str,
        id: &str,
        status: &str,
        order: Option<&str>,
        by: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE problems SET status = $3, order_id = $4, closed_by = $5, closed_at = $6
             WHERE org_id = $1 AND id = $2 AND status = 'open'",
        )
        .bind(org)
        .bind(id)
        .bind(status)
        .bind(order)
        .bind(by)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
