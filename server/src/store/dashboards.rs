//! The dashboards' counts: efficiency, backlog, heatmap and each person's figures.

use super::*;

/// The period and project a dashboard counts: orders created in `[from, to)`.
#[derive(Clone, Debug)]
pub struct Period {
    pub project: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// Counts over a period's orders (cancelled ones left out), for the efficiency dashboard.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct EfficiencyCounts {
    pub orders: i64,
    pub breached: i64,
    pub completed: i64,
    /// Orders whose deadlines were put to the test: completed, or breached on the way.
    pub judged: i64,
    pub fixed_first_time: i64,
    pub reworked: i64,
    pub rated: i64,
    pub rating_sum: i64,
    pub rated_4_or_more: i64,
}

/// How many orders took each whole number of minutes, ascending: a duration's distribution read
/// in one pass of the period, however many orders it holds.
pub type Histogram = Vec<(i64, i64)>;

/// Minutes from creation to each milestone, of the period's orders that reached it.
#[derive(Clone, Debug, Default)]
pub struct MilestoneDurations {
    pub response: Histogram,
    pub arrival: Histogram,
    pub resolution: Histogram,
}

/// Open orders now, counted three ways.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    /// (bucket, count): `lt_1d`, `1_3d`, `3_7d`, `gt_7d`.
    pub by_age: Vec<(String, i64)>,
    /// (user id, name, count); unassigned orders under `None`.
    pub by_technician: Vec<(Option<String>, Option<String>, i64)>,
    pub by_grade: Vec<(String, i64)>,
}

/// One person's figures over a period, for the KPIs.
#[derive(Clone, Debug, Default)]
pub struct StaffCounts {
    pub user_id: String,
    pub name: String,
    pub role: String,
    /// Orders assigned to them (technicians) or registered by them (customer service).
    pub orders: i64,
    pub completed: i64,
    pub accepted: i64,
    pub accepted_on_time: i64,
    pub completed_on_time: i64,
    pub reworked: i64,
    pub rated: i64,
    pub rating_sum: i64,
    pub return_visits: i64,
    /// Minutes from creation to assignment of the orders they registered.
    pub assign_minutes: Histogram,
}

#[async_trait]
pub trait Dashboards: Send + Sync {
    async fn efficiency(&self, org: &str, period: &Period) -> Result<(EfficiencyCounts, MilestoneDurations)>;
    async fn backlog(&self, org: &str, project: Option<&str>, now_ms: i64) -> Result<Backlog>;
    /// Complaint (or `kind`) counts by (building, category) and by hour of the week.
    async fn heatmap(
        &self,
        org: &str,
        period: &Period,
        kind: Option<&str>,
    ) -> Result<(Vec<(String, String, i64)>, Vec<(i64, i64)>)>;
    async fn staff_counts(&self, org: &str, period: &Period) -> Result<Vec<StaffCounts>>;
}

#[async_trait]
impl<B: Backend> Dashboards for Store<B>
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
    async fn efficiency(&self, org: &str, period: &Period) -> Result<(EfficiencyCounts, MilestoneDurations)> {
        let within = "org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
            AND status <> 'cancelled'";
        let row: (i64, i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT COUNT(*),
                COUNT(CASE WHEN response_breached + arrival_breached + resolution_breached > 0 THEN 1 END),
                COUNT(completed_at),
                COUNT(CASE WHEN completed_at IS NOT NULL AND reopen_count = 0 THEN 1 END),
                COUNT(CASE WHEN reopen_count > 0 THEN 1 END),
                COUNT(CASE WHEN rating IS NOT NULL AND auto_confirmed = 0 THEN 1 END),
                CAST(COALESCE(SUM(CASE WHEN auto_confirmed = 0 THEN rating END), 0) AS BIGINT),
                COUNT(CASE WHEN rating >= 4 AND auto_confirmed = 0 THEN 1 END),
                COUNT(CASE WHEN completed_at IS NOT NULL
                    OR response_breached + arrival_breached + resolution_breached > 0 THEN 1 END)
             FROM order_facts WHERE {within}"
        )))
        .bind(org)
        .bind(period.from)
        .bind(period.to)
        .bind(period.project.as_deref())
        .fetch_one(&self.pool)
        .await?;
        let counts = EfficiencyCounts {
            orders: row.0,
            breached: row.1,
            completed: row.2,
            judged: row.8,
            fixed_first_time: row.3,
            reworked: row.4,
            rated: row.5,
            rating_sum: row.6,
            rated_4_or_more: row.7,
        };
        let mut durations = MilestoneDurations::default();
        for (column, out) in [
            ("accepted_at", &mut durations.response),
            ("arrived_at", &mut durations.arrival),
            ("completed_at", &mut durations.resolution),
        ] {
            *out = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT ({column} - created_at) / 60000, COUNT(*) FROM order_facts
                 WHERE {within} AND {column} IS NOT NULL GROUP BY ({column} - created_at) / 60000 ORDER BY 1"
            )))
            .bind(org)
            .bind(period.from)
            .bind(period.to)
            .bind(period.project.as_deref())
            .fetch_all(&self.pool)
            .await?;
        }
        Ok((counts, durations))
    }

    async fn backlog(&self, org: &str, project: Option<&str>, now_ms: i64) -> Result<Backlog> {
        const DAY: i64 = 86_400_000;
        // One pass over the open orders, counted by (age, technician, grade), summed three
        // ways here.
        let rows: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CASE WHEN created_at > $3 - {DAY} THEN 'lt_1d' WHEN created_at > $3 - {} THEN '1_3d'
                WHEN created_at > $3 - {} THEN '3_7d' ELSE 'gt_7d' END, assignee, grade, COUNT(*)
             FROM order_facts WHERE org_id = $1 AND is_open = TRUE AND ($2 IS NULL OR project = $2)
             GROUP BY 1, 2, 3",
            3 * DAY,
            7 * DAY
        )))
        .bind(org)
        .bind(project)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let names = self.staff_names(org).await?;
        let mut by_age: BTreeMap<String, i64> = BTreeMap::new();
        let mut by_technician: HashMap<Option<String>, i64> = HashMap::new();
        let mut by_grade: BTreeMap<String, i64> = BTreeMap::new();
        for (age, assignee, grade, count) in rows {
            *by_age.entry(age).or_default() += count;
            *by_technician.entry(assignee).or_default() += count;
            *by_grade.entry(grade).or_default() += count;
        }
        let mut by_technician: Vec<(Option<String>, Option<String>, i64)> = by_technician
            .into_iter()
            .map(|(id, count)| (id.clone(), id.and_then(|id| names.get(&id).cloned()), count))
            .collect();
        by_technician.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        Ok(Backlog {
            by_age: ["lt_1d", "1_3d", "3_7d", "gt_7d"]
                .iter()
                .filter_map(|bucket| by_age.remove(*bucket).map(|count| ((*bucket).to_owned(), count)))
                .collect(),
            by_technician,
            by_grade: by_grade.into_iter().collect(),
        })
    }

    async fn heatmap(
        &self,
        org: &str,
        period: &Period,
        kind: Option<&str>,
    ) -> Result<(Vec<(String, String, i64)>, Vec<(i64, i64)>)> {
        let within = "org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
            AND ($5 IS NULL OR kind = $5)";
        let cells: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT COALESCE(building, ''), category, COUNT(*) FROM order_facts WHERE {within}
             GROUP BY COALESCE(building, ''), category ORDER BY 1, 2"
        )))
        .bind(org)
        .bind(period.from)
        .bind(period.to)
        .bind(period.project.as_deref())
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        let hours: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT created_how, COUNT(*) FROM order_facts WHERE {within} AND created_how IS NOT NULL
             GROUP BY created_how ORDER BY 1"
        )))
        .bind(org)
        .bind(period.from)
        .bind(period.to)
        .bind(period.project.as_deref())
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        Ok((cells, hours))
    }

    async fn staff_counts(&self, org: &str, period: &Period) -> Result<Vec<StaffCounts>> {
        let within = "org_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4 IS NULL OR project = $4)
            AND status <> 'cancelled'";
        let figures = "COUNT(*), COUNT(completed_at), COUNT(accepted_at),
            COUNT(CASE WHEN accepted_at IS NOT NULL AND response_breached = 0 THEN 1 END),
            COUNT(CASE WHEN completed_at IS NOT NULL AND resolution_breached = 0 THEN 1 END),
            COUNT(CASE WHEN reopen_count > 0 THEN 1 END),
            COUNT(CASE WHEN rating IS NOT NULL AND auto_confirmed = 0 THEN 1 END),
            CAST(COALESCE(SUM(CASE WHEN auto_confirmed = 0 THEN rating END), 0) AS BIGINT)";
        type Figures = (String, i64, i64, i64, i64, i64, i64, i64, i64);
        let mut by_person: HashMap<(String, &str), Figures> = HashMap::new();
        for (column, group) in [("assignee", "technician"), ("registered_by", "agent")] {
            let rows: Vec<Figures> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {column}, {figures} FROM order_facts WHERE {within} AND {column} IS NOT NULL
                 GROUP BY {column}"
            )))
            .bind(org)
            .bind(period.from)
            .bind(period.to)
            .bind(period.project.as_deref())
            .fetch_all(&self.pool)
            .await?;
            by_person.extend(rows.into_iter().map(|row| ((row.0.clone(), group), row)));
        }
        let visits: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT visited_by, COUNT(*) FROM order_facts WHERE {within} AND visited_by IS NOT NULL
             GROUP BY visited_by"
        )))
        .bind(org)
        .bind(period.from)
        .bind(period.to)
        .bind(period.project.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let delays: Vec<(String, i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT registered_by, (assigned_at - created_at) / 60000, COUNT(*) FROM order_facts
             WHERE {within} AND registered_by IS NOT NULL AND assigned_at IS NOT NULL
             GROUP BY registered_by, (assigned_at - created_at) / 60000 ORDER BY 1, 2"
        )))
        .bind(org)
        .bind(period.from)
        .bind(period.to)
        .bind(period.project.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let staff: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, display_name, role FROM users
             WHERE org_id = $1 AND role IN ('technician', 'dispatcher', 'supervisor') AND disabled_at IS NULL
             ORDER BY role, display_name, id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let visits: HashMap<String, i64> = visits.into_iter().collect();
        let mut delays_of: HashMap<String, Histogram> = HashMap::new();
        for (user, minutes, count) in delays {
            delays_of.entry(user).or_default().push((minutes, count));
        }
        Ok(staff
            .into_iter()
            .map(|(user_id, name, role)| {
                let group = if role == "technician" { "technician" } else { "agent" };
                let f = by_person.remove(&(user_id.clone(), group)).unwrap_or_default();
                StaffCounts {
                    return_visits: visits.get(&user_id).copied().unwrap_or(0),
                    assign_minutes: delays_of.remove(&user_id).unwrap_or_default(),
                    user_id,
                    name,
                    role,
                    orders: f.1,
                    completed: f.2,
                    accepted: f.3,
                    accepted_on_time: f.4,
                    completed_on_time: f.5,
                    reworked: f.6,
                    rated: f.7,
                    rating_sum: f.8,
                }
            })
            .collect())
    }
}
