//! Deviations from the service standard (docs/incidents.md): the figures the standard is
//! measured by, read from the orders' facts (`order_facts`), and the episodes of a figure below
//! its target (`deviation_episodes`). The judgement is sync-core's `deviation`;
//! `crate::deviations` runs it and hands this file what changed.

use loopwork_sync_core::deviation::{Figure, Measure};

use super::*;

/// One figure of one scope: a project (`category` empty), or a project's category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopedFigure {
    pub measure: Measure,
    pub project: String,
    pub category: String,
    pub figure: Figure,
}

/// An episode of a deviation, as stored and listed.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DeviationEpisode {
    pub id: String,
    /// `response`, `satisfaction` or `deadlines`.
    pub measure: String,
    pub project: String,
    /// The category of a per-category measure (`deadlines`); empty for a project's.
    pub category: String,
    pub opened_at: i64,
    /// The figure when the episode opened, and the lowest since, in thousandths.
    pub opened_value_permille: i64,
    pub worst_value_permille: i64,
    /// The orders the figure counted when it opened.
    pub opened_orders: i64,
    /// When the figure came back (`null` while the episode is open).
    pub closed_at: Option<i64>,
}

/// What a watch writes for one organization.
#[derive(Clone, Debug, Default)]
pub struct DeviationChanges {
    /// Figures that open an episode.
    pub open: Vec<ScopedFigure>,
    /// Figures that close their scope's open episode.
    pub close: Vec<ScopedFigure>,
    /// Figures of scopes whose episode stays open (its worst value kept).
    pub stay: Vec<ScopedFigure>,
    /// Who is told of an episode opening.
    pub notify: Vec<Role>,
    /// The standard's target of each measure, for the webhooks, in thousandths.
    pub targets: Vec<(Measure, i64)>,
}

#[async_trait]
pub trait Deviations: Send + Sync {
    /// Organizations with orders, for the watch.
    async fn organizations_with_orders(&self) -> Result<Vec<String>>;
    /// The organization's figures at `now_ms` over the window from `from_ms`: response within
    /// `response_ms` and satisfaction per project, deadlines kept per project and category.
    async fn deviation_figures(
        &self,
        org: &str,
        from_ms: i64,
        now_ms: i64,
        response_ms: i64,
    ) -> Result<Vec<ScopedFigure>>;
    /// Every episode open now, and the 200 latest closed since `since_ms`, newest first.
    async fn deviation_episodes(&self, org: &str, since_ms: i64) -> Result<Vec<DeviationEpisode>>;
    /// Writes a watch's changes in one transaction: an episode opens once per scope (another
    /// process's open one wins), telling `notify` and the webhooks; a close tells the webhooks.
    /// Returns the episodes opened and closed by this call.
    async fn apply_deviations(&self, org: &str, changes: &DeviationChanges, now_ms: i64) -> Result<(usize, usize)>;
}

#[async_trait]
impl<B: Backend> Deviations for Store<B>
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
    async fn organizations_with_orders(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT org_id FROM order_facts ORDER BY org_id").fetch_all(&self.pool).await?)
    }

    async fn deviation_figures(
        &self,
        org: &str,
        from_ms: i64,
        now_ms: i64,
        response_ms: i64,
    ) -> Result<Vec<ScopedFigure>> {
        let mut out = Vec::new();
        let mut push = |measure: Measure, rows: Vec<(String, String, i64, i64)>| {
            out.extend(rows.into_iter().map(|(project, category, of, met)| ScopedFigure {
                measure,
                project,
                category,
                figure: Figure { met: met.max(0) as u64, of: of.max(0) as u64 },
            }));
        };
        // Response: orders old enough to have owed it, accepted within the minutes.
        let rows = sqlx::query_as(
            "SELECT project, '', COUNT(*),
                COUNT(CASE WHEN accepted_at IS NOT NULL AND accepted_at - created_at <= $4 THEN 1 END)
             FROM order_facts WHERE org_id = $1 AND created_at >= $2 AND created_at <= $3 - $4
                AND status <> 'cancelled'
             GROUP BY project ORDER BY project",
        )
        .bind(org)
        .bind(from_ms)
        .bind(now_ms)
        .bind(response_ms)
        .fetch_all(&self.pool)
        .await?;
        push(Measure::Response, rows);
        // Satisfaction: owners' own ratings of the orders finished in the window.
        let rows = sqlx::query_as(
            "SELECT project, '', COUNT(*), COUNT(CASE WHEN rating >= 4 THEN 1 END)
             FROM order_facts WHERE org_id = $1 AND finished_at >= $2 AND finished_at <= $3
                AND rating IS NOT NULL AND auto_confirmed = 0
             GROUP BY project ORDER BY project",
        )
        .bind(org)
        .bind(from_ms)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        push(Measure::Satisfaction, rows);
        // Deadlines: orders judged (completed, or breached already) without a breach.
        let rows = sqlx::query_as(
            "SELECT project, category, COUNT(*),
                COUNT(CASE WHEN response_breached + arrival_breached + resolution_breached = 0 THEN 1 END)
             FROM order_facts WHERE org_id = $1 AND created_at >= $2 AND created_at <= $3
                AND status <> 'cancelled'
                AND (completed_at IS NOT NULL OR response_breached + arrival_breached + resolution_breached > 0)
             GROUP BY project, category ORDER BY project, category",
        )
        .bind(org)
        .bind(from_ms)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        push(Measure::Deadlines, rows);
        Ok(out)
    }

    async fn deviation_episodes(&self, org: &str, since_ms: i64) -> Result<Vec<DeviationEpisode>> {
        type Row = (String, String, String, String, i64, i64, i64, i64, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, measure, project, category, opened_at, opened_value_permille, worst_value_permille,
                opened_orders, closed_at
             FROM deviation_episodes WHERE org_id = $1 AND closed_at IS NULL
             UNION ALL
             SELECT * FROM (SELECT id, measure, project, category, opened_at, opened_value_permille, worst_value_permille,
                opened_orders, closed_at
             FROM deviation_episodes WHERE org_id = $1 AND closed_at >= $2 ORDER BY closed_at DESC LIMIT 200) closed
             ORDER BY 5 DESC, 1",
        )
        .bind(org)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, measure, project, category, opened_at, opened, worst, orders, closed_at)| DeviationEpisode {
                id,
                measure,
                project,
                category,
                opened_at,
                opened_value_permille: opened,
                worst_value_permille: worst,
                opened_orders: orders,
                closed_at,
            })
            .collect())
    }

    async fn apply_deviations(&self, org: &str, changes: &DeviationChanges, now_ms: i64) -> Result<(usize, usize)> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        let hooks = Self::org_hooks(&mut tx, org).await?;
        let target = |m: Measure| changes.targets.iter().find(|(t, _)| *t == m).map_or(0, |(_, v)| *v);
        let (mut opened, mut closed) = (0, 0);
        for f in &changes.open {
            let id = uuid::Uuid::now_v7().to_string();
            let value = f.figure.permille();
            let inserted = sqlx::query(
                "INSERT INTO deviation_episodes (id, org_id, measure, project, category, opened_at,
                    opened_value_permille, opened_orders, worst_value_permille)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(org)
            .bind(f.measure.code())
            .bind(&f.project)
            .bind(&f.category)
            .bind(now_ms)
            .bind(value)
            .bind(f.figure.of as i64)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                continue;
            }
            opened += 1;
            Self::tell_deviation(&mut tx, org, &hooks, (&id, "deviation.opened"), f, target(f.measure), now_ms).await?;
            let subject = scope_of(f);
            for user in Self::project_recipients(&mut tx, org, Some(&f.project), &changes.notify).await? {
                Self::notify(&mut tx, org, &user, "", ("deviation", f.measure.code(), now_ms), Some(&subject), now_ms)
                    .await?;
            }
        }
        for f in &changes.close {
            let id: Option<String> = sqlx::query_scalar(
                "UPDATE deviation_episodes SET closed_at = $5
                 WHERE org_id = $1 AND measure = $2 AND project = $3 AND category = $4 AND closed_at IS NULL
                 RETURNING id",
            )
            .bind(org)
            .bind(f.measure.code())
            .bind(&f.project)
            .bind(&f.category)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id {
                closed += 1;
                Self::tell_deviation(&mut tx, org, &hooks, (&id, "deviation.recovered"), f, target(f.measure), now_ms)
                    .await?;
            }
        }
        for f in &changes.stay {
            sqlx::query(
                "UPDATE deviation_episodes SET worst_value_permille = $5
                 WHERE org_id = $1 AND measure = $2 AND project = $3 AND category = $4 AND closed_at IS NULL
                    AND worst_value_permille > $5",
            )
            .bind(org)
            .bind(f.measure.code())
            .bind(&f.project)
            .bind(&f.category)
            .bind(f.figure.permille())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((opened, closed))
    }
}

/// A scope as notifications name it: `project`, or `project/category`.
fn scope_of(f: &ScopedFigure) -> String {
    if f.category.is_empty() { f.project.clone() } else { format!("{}/{}", f.project, f.category) }
}

impl<B: Backend> Store<B>
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
    /// An episode's opening or recovery announced to the organization's webhooks, once each.
    async fn tell_deviation(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        hooks: &[String],
        (episode, event): (&str, &str),
        f: &ScopedFigure,
        target_permille: i64,
        now_ms: i64,
    ) -> Result<()> {
        let body = serde_json::json!({
            "event": event,
            "org_id": org,
            "episode": episode,
            "measure": f.measure.code(),
            "project": f.project,
            "category": (!f.category.is_empty()).then_some(&f.category),
            "value_permille": f.figure.permille(),
            "target_permille": target_permille,
            "orders": f.figure.of,
            "at_ms": now_ms,
        });
        Self::enqueue(tx, org, hooks, (episode, "deviation", event, 0), body, now_ms).await
    }
}
