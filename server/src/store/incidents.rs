//! Complaint surges and incidents (docs/incidents.md): the reports the surge detector has seen
//! (`surge_reports`), incidents (`incidents`) and their member orders (`incident_members`). The
//! detector itself is sync-core's `surge`; `crate::incidents` runs it and hands this file a plan.

use super::*;

/// A report as the surge detector keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurgeRow {
    pub order: String,
    pub at_ms: i64,
    pub household: String,
    pub project: String,
    pub building: Option<String>,
    pub riser: Option<String>,
    pub category: String,
    pub life_safety: bool,
}

/// An order as the detector reads it: where, what, who reported it (and whether an owner did),
/// when it was created, and the assistant's life-safety rule that matched its description
/// (`order_triage.rule`).
#[derive(Clone, Debug)]
pub struct SurgeOrder {
    pub order: String,
    pub created_at: i64,
    pub project: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
    pub category: String,
    pub reporter: String,
    pub by_owner: bool,
    pub rule: Option<String>,
}

/// An incident (事件单) as stored and listed.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IncidentRecord {
    /// The organization's number for it (事件 #12).
    pub number: i64,
    pub project: String,
    pub building: Option<String>,
    /// The riser (`3-*02`: entrance 3, the units ending in 02), when the incident is a riser's.
    pub riser: Option<String>,
    /// A category code, or `*` (every category).
    pub category: String,
    /// `IV`, `III`, `II` or `I`.
    pub level: String,
    /// `open`, `resolved`, or `merged` (into `merged_into`).
    pub state: String,
    pub merged_into: Option<i64>,
    pub opened_at: i64,
    pub first_report_at: i64,
    /// The score (log-likelihood ratio) of the surge that opened or last widened it, in
    /// thousandths.
    pub score_milli: i64,
    pub life_safety: bool,
    pub resolved_at: Option<i64>,
    /// Distinct households among its members.
    pub households: i64,
    /// Its member orders.
    pub orders: i64,
    /// Later reports suggested to join it, awaiting a dispatcher's answer (not members yet:
    /// not counted above, not covered, not told as the incident's).
    pub suggestions: i64,
}

/// A member of an incident, as the detector resumes it.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub order: String,
    pub household: String,
    pub building: Option<String>,
    pub life_safety: bool,
    /// `member`, `suggested` or `dismissed` (held by the incident, counted by none).
    pub standing: String,
}

/// An order a scan puts in an incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMember {
    pub incident: i64,
    pub order: String,
    pub household: String,
    pub joined_at: i64,
    /// Suggested to the dispatcher rather than a member at once (its join was not sure enough:
    /// the surge rules' `auto_join_confidence`).
    pub suggested: bool,
}

/// What a dispatcher's answer to a suggested member did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuggestionAnswer {
    /// The order is now a member (or dismissed).
    Answered,
    /// The incident is not open.
    NotOpen,
    /// The order is not a suggestion of the incident awaiting an answer.
    NotSuggested,
}

/// A member of an incident, as the desk lists it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IncidentMember {
    pub order_id: String,
    pub number: String,
    pub status: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
    pub category: String,
    pub created_at: i64,
    pub joined_at: i64,
    /// `member`, or `suggested` (awaiting a dispatcher's answer).
    pub standing: String,
}

/// What the detector needs of an organization to go on: the new orders it has not seen, the
/// reports it saw recently, its open incidents with their members, and the next number.
#[derive(Clone, Debug, Default)]
pub struct SurgeState {
    pub fresh: Vec<SurgeOrder>,
    pub recent: Vec<SurgeRow>,
    pub open: Vec<(IncidentRecord, Vec<MemberRow>)>,
    pub next_number: i64,
    /// The organization's surge revision the state was read at.
    pub revision: i64,
}

/// An incident written by a scan: a new one, or an open one that grew, widened or rose a level.
#[derive(Clone, Debug)]
pub struct IncidentWrite {
    pub number: i64,
    pub new: bool,
    pub project: String,
    pub building: Option<String>,
    pub riser: Option<String>,
    pub category: String,
    pub level: &'static str,
    pub opened_at: i64,
    pub first_report_at: i64,
    pub score_milli: i64,
    pub life_safety: bool,
    /// The level is new to the incident: who is told (once per incident and level, whichever
    /// process writes it first).
    pub alert: Option<IncidentAlert>,
}

/// The graded response's notice of an incident reaching a level.
#[derive(Clone, Debug)]
pub struct IncidentAlert {
    /// The office roles told.
    pub roles: Vec<Role>,
    pub households: i64,
}

/// A notice of an incident to owners (停水通知).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IncidentNotice {
    /// 1, 2, …: the incident's notices in the order they were written (the last is current).
    pub seq: i64,
    pub body: String,
    /// When service is expected back (ms), if said.
    pub expected_at: Option<i64>,
    pub at: i64,
}

/// Of some orders, one that is a member of an open incident.
#[derive(Clone, Debug)]
pub struct OpenMembership {
    pub order: String,
    pub incident: i64,
    /// The incident's level code.
    pub level: String,
    /// Whether it is the incident's first member (its earliest report).
    pub first: bool,
}

/// What one scan of an organization writes, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct SurgePlan {
    /// The reports seen (each order once).
    pub seen: Vec<SurgeRow>,
    pub incidents: Vec<IncidentWrite>,
    /// New members and suggestions. A merged incident's members move.
    pub members: Vec<NewMember>,
    /// Incidents merged into another: (merged, into).
    pub merged: Vec<(i64, i64)>,
    /// The revision the plan was made from: another write since (another process's plan, a
    /// resolve) makes it stale.
    pub revision: i64,
    /// When the plan was made (alerts are stamped with it).
    pub now_ms: i64,
}

/// Whom an incident list is for: every project, or a dispatcher's.
#[derive(Clone, Debug)]
pub struct IncidentFilter {
    /// Open incidents only.
    pub open: bool,
    /// A dispatcher bound to projects: only incidents of those.
    pub served_by: Option<String>,
    pub limit: i64,
}

const INCIDENT_COLUMNS: &str = "i.number, i.project, i.building, i.riser, i.category, i.level, i.state, i.merged_into,
     i.opened_at, i.first_report_at, i.score_milli, i.life_safety, i.resolved_at,
     (SELECT COUNT(DISTINCT m.household) FROM incident_members m
      WHERE m.org_id = i.org_id AND m.incident = i.number AND m.standing = 'member'),
     (SELECT COUNT(*) FROM incident_members m WHERE m.org_id = i.org_id AND m.incident = i.number AND m.standing = 'member'),
     (SELECT COUNT(*) FROM incident_members m WHERE m.org_id = i.org_id AND m.incident = i.number AND m.standing = 'suggested')";

type IncidentTuple = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    bool,
    Option<i64>,
    i64,
    i64,
    i64,
);

fn incident_of(row: IncidentTuple) -> IncidentRecord {
    let (
        number,
        project,
        building,
        riser,
        category,
        level,
        state,
        merged_into,
        opened_at,
        first_report_at,
        score_milli,
        life_safety,
        resolved_at,
        households,
        orders,
        suggestions,
    ) = row;
    IncidentRecord {
        number,
        project,
        building,
        riser,
        category,
        level,
        state,
        merged_into,
        opened_at,
        first_report_at,
        score_milli,
        life_safety,
        resolved_at,
        households,
        orders,
        suggestions,
    }
}

type OrderTuple =
    (String, i64, String, Option<String>, Option<String>, Option<String>, String, String, bool, Option<String>);

fn order_of(row: OrderTuple) -> SurgeOrder {
    let (order, created_at, project, building, unit, area, category, reporter, by_owner, rule) = row;
    SurgeOrder { order, created_at, project, building, unit, area, category, reporter, by_owner, rule }
}

/// A report's columns as `surge_reports` holds them (order, at, household, project, building,
/// riser, category, life safety).
type SurgeTuple = (String, i64, String, String, Option<String>, Option<String>, String, bool);

fn surge_row_of(row: SurgeTuple) -> SurgeRow {
    let (order, at_ms, household, project, building, riser, category, life_safety) = row;
    SurgeRow { order, at_ms, household, project, building, riser, category, life_safety }
}

/// An order's columns for the detector.
const ORDER_COLUMNS: &str = "o.id, o.created_at, o.project, o.building, o.unit, o.area, o.category, o.reporter,
     EXISTS (SELECT 1 FROM users u WHERE u.id = o.reporter AND u.role = 'owner'),
     (SELECT t.rule FROM order_triage t WHERE t.order_id = o.id)";

/// The statuses of an order that still owes deadlines: the earliest member of an incident in
/// one of them carries the incident's (a cancelled or finished first report hands it on).
const OWING: &str = "'new', 'assigned', 'accepted', 'on_site', 'in_progress', 'on_hold', 'rework'";

/// The organization's surge revision (0 before its first write).
const REVISION: &str = "SELECT (SELECT revision FROM surge_revisions WHERE org_id = $1)";

/// Moves the organization's surge revision on.
const BUMP: &str = "INSERT INTO surge_revisions (org_id, revision) VALUES ($1, 1)
     ON CONFLICT (org_id) DO UPDATE SET revision = surge_revisions.revision + 1";

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
    /// Whether the organization's incidents were written since `revision` (inside a writing
    /// transaction, under the organization's lock).
    async fn stale(tx: &mut sqlx::Transaction<'_, B>, org: &str, revision: i64) -> Result<bool> {
        let (current,): (Option<i64>,) = sqlx::query_as(REVISION).bind(org).fetch_one(&mut **tx).await?;
        Ok(current.unwrap_or(0) != revision)
    }

    /// The graded response of an incident reaching a level, inside the plan's transaction: once
    /// per incident and level (`incident_alerts`), the level's office roles notified and the
    /// organization's webhooks told (`incident.level`).
    async fn alert(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        write: &IncidentWrite,
        alert: &IncidentAlert,
        now_ms: i64,
    ) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO incident_alerts (org_id, number, level, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(org)
        .bind(write.number)
        .bind(write.level)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(());
        }
        let subject = write.number.to_string();
        let hooks = Self::org_hooks(tx, org).await?;
        let body = serde_json::json!({
            "event": "incident.level",
            "org_id": org,
            "incident": write.number,
            "level": write.level,
            "project": write.project,
            "building": write.building,
            "riser": write.riser,
            "category": write.category,
            "households": alert.households,
            "life_safety": write.life_safety,
            "opened_at_ms": write.opened_at,
            "at_ms": now_ms,
        });
        let key = format!("incident/{}", write.number);
        Self::enqueue(tx, org, &hooks, (&key, "incident", write.level, 0), body, now_ms).await?;
        // The incident's first report (members are written, and moved by merges, before this).
        let first: Option<String> = sqlx::query_scalar(
            "SELECT order_id FROM incident_members WHERE org_id = $1 AND incident = $2 AND standing = 'member'
             ORDER BY joined_at, order_id LIMIT 1",
        )
        .bind(org)
        .bind(write.number)
        .fetch_optional(&mut **tx)
        .await?;
        // (A plan writes an incident with its members: an incident without one is not stored.)
        let order = first.unwrap_or_default();
        for user in Self::project_recipients(tx, org, Some(&write.project), &alert.roles).await? {
            Self::notify(tx, org, &user, &order, ("incident", write.level, write.opened_at), Some(&subject), now_ms)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
pub trait Incidents: Send + Sync {
    /// The organization's surge state for a scan of `orders` (new orders; those already seen
    /// are left out of `fresh`), with the reports seen since `recent_from_ms`.
    async fn surge_state(&self, org: &str, orders: &[String], recent_from_ms: i64) -> Result<SurgeState>;
    /// Writes a scan's plan in one transaction under the organization's lock; `false` (nothing
    /// written) when the organization's incidents were written since the plan's state was read
    /// (another process's plan, a resolve).
    async fn apply_surges(&self, org: &str, plan: &SurgePlan) -> Result<bool>;
    /// The organization's orders created in `[from_ms, to_ms)` outside every incident: the
    /// baseline's history.
    async fn surge_history(&self, org: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SurgeOrder>>;
    /// When the organization's first order was created (quarantined ones included), if it has
    /// one: the baseline's history starts there.
    async fn first_order_at(&self, org: &str) -> Result<Option<i64>>;
    /// Every unit of the estate register: (project, building, unit).
    async fn estate_unit_codes(&self, org: &str) -> Result<Vec<(String, String, String)>>;
    /// Incidents, newest first.
    async fn incidents(&self, org: &str, filter: &IncidentFilter) -> Result<Vec<IncidentRecord>>;
    /// One incident, for a dispatcher bound to projects only one of theirs.
    async fn incident(&self, org: &str, number: i64, served_by: Option<&str>) -> Result<Option<IncidentRecord>>;
    /// The incident an order is a member of, if any.
    async fn order_incident(&self, org: &str, order: &str) -> Result<Option<IncidentRecord>>;
    /// An incident's member orders, in the order they joined.
    async fn incident_members(&self, org: &str, number: i64) -> Result<Vec<IncidentMember>>;
    /// Resolves an open incident (what is still suggested to it is dismissed); whether it was
    /// open.
    async fn resolve_incident(&self, org: &str, number: i64, by: &str, now_ms: i64) -> Result<bool>;
    /// An incident's members (not its suggestions nor dismissed orders) as the detector saw them
    /// (place, household, category).
    async fn member_reports(&self, org: &str, number: i64) -> Result<Vec<SurgeRow>>;
    /// Merges the open incident `gone` into the open incident `into.number` by hand, in one
    /// transaction under the organization's lock: `gone`'s members move, `into` takes the merged
    /// place, category, level and first report. `false` when either is not open, or the
    /// organization's incidents were written since `revision` (then nothing is written).
    async fn merge_incident(&self, org: &str, gone: i64, into: &IncidentWrite, revision: i64) -> Result<bool>;
    /// Splits `orders` off the open incident `from` into the new incident `new` (numbered
    /// next), `from` keeping its first report at `rest_first_report_at`. `false` when `from` is
    /// not open, the organization's incidents were written since `revision`, or an order is not
    /// its member.
    async fn split_incident(
        &self,
        org: &str,
        from: i64,
        rest_first_report_at: i64,
        new: &IncidentWrite,
        orders: &[String],
        revision: i64,
    ) -> Result<bool>;
    /// A dispatcher's answer to an order suggested to the open incident `number`: it joins
    /// (`join`) or is dismissed, in one transaction under the organization's lock.
    async fn answer_suggestion(&self, org: &str, number: i64, order: &str, join: bool) -> Result<SuggestionAnswer>;
    /// Of these orders, the members of open incidents.
    async fn open_memberships(&self, org: &str, orders: &[String]) -> Result<Vec<OpenMembership>>;
    /// Adds a notice to an incident that is not merged; its number in the incident's notices.
    async fn add_incident_notice(
        &self,
        org: &str,
        number: i64,
        body: &str,
        expected_at: Option<i64>,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<i64>>;
    /// An incident's notices, oldest first.
    async fn incident_notices(&self, org: &str, number: i64) -> Result<Vec<IncidentNotice>>;
    /// The incidents an owner may be told of: open ones, and those resolved since `since_ms`,
    /// with whether the owner (or a unit of theirs) reported into each.
    async fn incidents_for_owner(&self, org: &str, user: &str, since_ms: i64) -> Result<Vec<(IncidentRecord, bool)>>;
}

#[async_trait]
impl<B: Backend> Incidents for Store<B>
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
    async fn surge_state(&self, org: &str, orders: &[String], recent_from_ms: i64) -> Result<SurgeState> {
        let mut state = SurgeState::default();
        // The revision first: whatever is written after it makes the plan stale.
        let (revision,): (Option<i64>,) = sqlx::query_as(REVISION).bind(org).fetch_one(&self.pool).await?;
        state.revision = revision.unwrap_or(0);
        // Quarantined orders are left out, as every reader does.
        for chunk in orders.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM orders o
                 WHERE o.org_id = $1 AND o.id IN ({}) AND o.quarantined_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM surge_reports s WHERE s.order_id = o.id)",
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<B, OrderTuple>(AssertSqlSafe(sql)).bind(org);
            for order in chunk {
                query = query.bind(order.as_str());
            }
            state.fresh.extend(query.fetch_all(&self.pool).await?.into_iter().map(order_of));
        }
        let recent: Vec<SurgeTuple> = sqlx::query_as(
            // A resolved incident's members no longer count towards a new surge.
            "SELECT order_id, at, household, project, building, riser, category, life_safety FROM surge_reports s
             WHERE org_id = $1 AND at > $2
               AND NOT EXISTS (SELECT 1 FROM incident_members m JOIN incidents i ON i.org_id = m.org_id AND i.number = m.incident
                               WHERE m.org_id = s.org_id AND m.order_id = s.order_id AND i.state = 'resolved')
             ORDER BY at, order_id",
        )
        .bind(org)
        .bind(recent_from_ms)
        .fetch_all(&self.pool)
        .await?;
        state.recent = recent.into_iter().map(surge_row_of).collect();
        let open: Vec<IncidentTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.org_id = $1 AND i.state = 'open' ORDER BY i.number"
        )))
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        // Every open incident's members in one statement, then each incident's own.
        let members: Vec<(i64, String, String, Option<String>, bool, String)> = sqlx::query_as(
            "SELECT m.incident, m.order_id, m.household, s.building, COALESCE(s.life_safety, FALSE), m.standing
             FROM incident_members m JOIN incidents i ON i.org_id = m.org_id AND i.number = m.incident
             LEFT JOIN surge_reports s ON s.order_id = m.order_id
             WHERE m.org_id = $1 AND i.state = 'open' ORDER BY m.joined_at, m.order_id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let mut by_incident: HashMap<i64, Vec<MemberRow>> = HashMap::new();
        for (incident, order, household, building, life_safety, standing) in members {
            by_incident.entry(incident).or_default().push(MemberRow {
                order,
                household,
                building,
                life_safety,
                standing,
            });
        }
        for incident in open.into_iter().map(incident_of) {
            let members = by_incident.remove(&incident.number).unwrap_or_default();
            state.open.push((incident, members));
        }
        let (next,): (Option<i64>,) = sqlx::query_as("SELECT MAX(number) FROM incidents WHERE org_id = $1")
            .bind(org)
            .fetch_one(&self.pool)
            .await?;
        state.next_number = next.unwrap_or(0) + 1;
        Ok(state)
    }

    async fn apply_surges(&self, org: &str, plan: &SurgePlan) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        if Self::stale(&mut tx, org, plan.revision).await? {
            return Ok(false);
        }
        sqlx::query(BUMP).bind(org).execute(&mut *tx).await?;
        for row in &plan.seen {
            let inserted = sqlx::query(
                "INSERT INTO surge_reports (order_id, org_id, at, household, project, building, riser, category, life_safety)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(row.order.as_str())
            .bind(org)
            .bind(row.at_ms)
            .bind(row.household.as_str())
            .bind(row.project.as_str())
            .bind(row.building.as_deref())
            .bind(row.riser.as_deref())
            .bind(row.category.as_str())
            .bind(row.life_safety)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                // Seen meanwhile: the revision would have moved; never twice all the same.
                return Ok(false);
            }
        }
        for i in &plan.incidents {
            if i.new {
                sqlx::query(
                    "INSERT INTO incidents (org_id, number, project, building, riser, category, level, state,
                                            opened_at, first_report_at, score_milli, life_safety)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11)",
                )
                .bind(org)
                .bind(i.number)
                .bind(i.project.as_str())
                .bind(i.building.as_deref())
                .bind(i.riser.as_deref())
                .bind(i.category.as_str())
                .bind(i.level)
                .bind(i.opened_at)
                .bind(i.first_report_at)
                .bind(i.score_milli)
                .bind(i.life_safety)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE incidents SET building = $3, riser = $4, category = $5, level = $6, first_report_at = $7,
                                          score_milli = $8, life_safety = $9
                     WHERE org_id = $1 AND number = $2 AND state = 'open'",
                )
                .bind(org)
                .bind(i.number)
                .bind(i.building.as_deref())
                .bind(i.riser.as_deref())
                .bind(i.category.as_str())
                .bind(i.level)
                .bind(i.first_report_at)
                .bind(i.score_milli)
                .bind(i.life_safety)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (merged, into) in &plan.merged {
            sqlx::query(
                "UPDATE incidents SET state = 'merged', merged_into = $3 WHERE org_id = $1 AND number = $2 AND state = 'open'",
            )
            .bind(org)
            .bind(merged)
            .bind(into)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE incident_members SET incident = $3 WHERE org_id = $1 AND incident = $2")
                .bind(org)
                .bind(merged)
                .bind(into)
                .execute(&mut *tx)
                .await?;
        }
        for m in &plan.members {
            sqlx::query(
                "INSERT INTO incident_members (org_id, incident, order_id, household, joined_at, standing)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, order_id) DO NOTHING",
            )
            .bind(org)
            .bind(m.incident)
            .bind(m.order.as_str())
            .bind(m.household.as_str())
            .bind(m.joined_at)
            .bind(if m.suggested { "suggested" } else { "member" })
            .execute(&mut *tx)
            .await?;
        }
        for write in &plan.incidents {
            if let Some(alert) = &write.alert {
                Self::alert(&mut tx, org, write, alert, plan.now_ms).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn member_reports(&self, org: &str, number: i64) -> Result<Vec<SurgeRow>> {
        let rows: Vec<SurgeTuple> = sqlx::query_as(
            "SELECT s.order_id, s.at, s.household, s.project, s.building, s.riser, s.category, s.life_safety
             FROM incident_members m JOIN surge_reports s ON s.order_id = m.order_id
             WHERE m.org_id = $1 AND m.incident = $2 AND m.standing = 'member' ORDER BY m.joined_at, m.order_id",
        )
        .bind(org)
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(surge_row_of).collect())
    }

    async fn merge_incident(&self, org: &str, gone: i64, into: &IncidentWrite, revision: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        if Self::stale(&mut tx, org, revision).await? {
            return Ok(false);
        }
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM incidents WHERE org_id = $1 AND number IN ($2, $3) AND state = 'open'",
        )
        .bind(org)
        .bind(gone)
        .bind(into.number)
        .fetch_one(&mut *tx)
        .await?;
        if open != 2 || gone == into.number {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE incidents SET building = $3, riser = $4, category = $5, level = $6, first_report_at = $7, life_safety = $8
             WHERE org_id = $1 AND number = $2",
        )
        .bind(org)
        .bind(into.number)
        .bind(into.building.as_deref())
        .bind(into.riser.as_deref())
        .bind(into.category.as_str())
        .bind(into.level)
        .bind(into.first_report_at)
        .bind(into.life_safety)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE incidents SET state = 'merged', merged_into = $3 WHERE org_id = $1 AND number = $2")
            .bind(org)
            .bind(gone)
            .bind(into.number)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE incident_members SET incident = $3 WHERE org_id = $1 AND incident = $2")
            .bind(org)
            .bind(gone)
            .bind(into.number)
            .execute(&mut *tx)
            .await?;
        sqlx::query(BUMP).bind(org).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn split_incident(
        &self,
        org: &str,
        from: i64,
        rest_first_report_at: i64,
        new: &IncidentWrite,
        orders: &[String],
        revision: i64,
    ) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        if Self::stale(&mut tx, org, revision).await? {
            return Ok(false);
        }
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM incidents WHERE org_id = $1 AND number = $2")
            .bind(org)
            .bind(from)
            .fetch_optional(&mut *tx)
            .await?;
        let (next,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(number) FROM incidents WHERE org_id = $1").bind(org).fetch_one(&mut *tx).await?;
        if state.as_deref() != Some("open") || next.unwrap_or(0) + 1 != new.number {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO incidents (org_id, number, project, building, riser, category, level, state,
                                    opened_at, first_report_at, score_milli, life_safety)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11)",
        )
        .bind(org)
        .bind(new.number)
        .bind(new.project.as_str())
        .bind(new.building.as_deref())
        .bind(new.riser.as_deref())
        .bind(new.category.as_str())
        .bind(new.level)
        .bind(new.opened_at)
        .bind(new.first_report_at)
        .bind(new.score_milli)
        .bind(new.life_safety)
        .execute(&mut *tx)
        .await?;
        for order in orders {
            let moved = sqlx::query(
                "UPDATE incident_members SET incident = $4
                 WHERE org_id = $1 AND incident = $2 AND order_id = $3 AND standing = 'member'",
            )
            .bind(org)
            .bind(from)
            .bind(order.as_str())
            .bind(new.number)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                // Not a member (any more): nothing of the split is written.
                return Ok(false);
            }
        }
        sqlx::query("UPDATE incidents SET first_report_at = $3 WHERE org_id = $1 AND number = $2")
            .bind(org)
            .bind(from)
            .bind(rest_first_report_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(BUMP).bind(org).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn answer_suggestion(&self, org: &str, number: i64, order: &str, join: bool) -> Result<SuggestionAnswer> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM incidents WHERE org_id = $1 AND number = $2")
            .bind(org)
            .bind(number)
            .fetch_optional(&mut *tx)
            .await?;
        if state.as_deref() != Some("open") {
            return Ok(SuggestionAnswer::NotOpen);
        }
        let answered = sqlx::query(
            "UPDATE incident_members SET standing = $4
             WHERE org_id = $1 AND incident = $2 AND order_id = $3 AND standing = 'suggested'",
        )
        .bind(org)
        .bind(number)
        .bind(order)
        .bind(if join { "member" } else { "dismissed" })
        .execute(&mut *tx)
        .await?;
        if answered.rows_affected() != 1 {
            return Ok(SuggestionAnswer::NotSuggested);
        }
        // A plan made before the answer must be made again from it.
        sqlx::query(BUMP).bind(org).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(SuggestionAnswer::Answered)
    }

    async fn open_memberships(&self, org: &str, orders: &[String]) -> Result<Vec<OpenMembership>> {
        let mut out = Vec::new();
        for chunk in orders.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT m.order_id, m.incident, i.level,
                    NOT EXISTS (SELECT 1 FROM incident_members f JOIN orders fo ON fo.id = f.order_id
                        WHERE f.org_id = m.org_id AND f.incident = m.incident AND f.standing = 'member'
                        AND fo.status IN ({OWING})
                        AND (f.joined_at < m.joined_at OR (f.joined_at = m.joined_at AND f.order_id < m.order_id)))
                 FROM incident_members m JOIN incidents i ON i.org_id = m.org_id AND i.number = m.incident
                 WHERE m.org_id = $1 AND i.state = 'open' AND m.standing = 'member' AND m.order_id IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<B, (String, i64, String, bool)>(AssertSqlSafe(sql)).bind(org);
            for order in chunk {
                query = query.bind(order.as_str());
            }
            out.extend(
                query.fetch_all(&self.pool).await?.into_iter().map(|(order, incident, level, first)| OpenMembership {
                    order,
                    incident,
                    level,
                    first,
                }),
            );
        }
        Ok(out)
    }

    async fn add_incident_notice(
        &self,
        org: &str,
        number: i64,
        body: &str,
        expected_at: Option<i64>,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM incidents WHERE org_id = $1 AND number = $2")
            .bind(org)
            .bind(number)
            .fetch_optional(&mut *tx)
            .await?;
        if state.as_deref().is_none_or(|s| s == "merged") {
            return Ok(None);
        }
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(seq) FROM incident_notices WHERE org_id = $1 AND number = $2")
                .bind(org)
                .bind(number)
                .fetch_one(&mut *tx)
                .await?;
        let seq = last.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO incident_notices (org_id, number, seq, body, expected_at, by_user, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(org)
        .bind(number)
        .bind(seq)
        .bind(body)
        .bind(expected_at)
        .bind(by)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(seq))
    }

    async fn incident_notices(&self, org: &str, number: i64) -> Result<Vec<IncidentNotice>> {
        let rows: Vec<(i64, String, Option<i64>, i64)> = sqlx::query_as(
            // With the notices of the incidents merged into it: owners keep what they were told.
            "SELECT seq, body, expected_at, at FROM incident_notices
             WHERE org_id = $1 AND (number = $2 OR number IN (SELECT number FROM incidents WHERE org_id = $1 AND merged_into = $2))
             ORDER BY at, number, seq",
        )
        .bind(org)
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(seq, body, expected_at, at)| IncidentNotice { seq, body, expected_at, at }).collect())
    }

    async fn incidents_for_owner(&self, org: &str, user: &str, since_ms: i64) -> Result<Vec<(IncidentRecord, bool)>> {
        let rows: Vec<(i64, bool)> = sqlx::query_as(
            "SELECT i.number, EXISTS (SELECT 1 FROM incident_members m JOIN orders o ON o.id = m.order_id AND o.org_id = m.org_id
                    WHERE m.org_id = i.org_id AND m.incident = i.number AND m.standing = 'member'
                      AND (o.reporter = $2 OR EXISTS (SELECT 1 FROM owner_units u WHERE u.user_id = $2
                           AND u.project = o.project AND u.building = o.building AND u.unit = o.unit)))
             FROM incidents i
             WHERE i.org_id = $1 AND i.state <> 'merged' AND (i.state = 'open' OR i.resolved_at >= $3)
               AND (i.project IN (SELECT project FROM owner_units WHERE user_id = $2)
                    OR EXISTS (SELECT 1 FROM incident_members m JOIN orders o ON o.id = m.order_id AND o.org_id = m.org_id
                               WHERE m.org_id = i.org_id AND m.incident = i.number AND m.standing = 'member'
                                 AND o.reporter = $2))
             ORDER BY i.opened_at DESC LIMIT 500",
        )
        .bind(org)
        .bind(user)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for (number, reported) in rows {
            if let Some(incident) = self.incident(org, number, None).await? {
                out.push((incident, reported));
            }
        }
        Ok(out)
    }

    async fn surge_history(&self, org: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SurgeOrder>> {
        let rows: Vec<OrderTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders o
             WHERE o.org_id = $1 AND o.created_at >= $2 AND o.created_at < $3 AND o.quarantined_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM incident_members m
                               WHERE m.org_id = o.org_id AND m.order_id = o.id AND m.standing <> 'dismissed')"
        )))
        .bind(org)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(order_of).collect())
    }

    async fn first_order_at(&self, org: &str) -> Result<Option<i64>> {
        let (first,): (Option<i64>,) = sqlx::query_as("SELECT MIN(created_at) FROM orders WHERE org_id = $1")
            .bind(org)
            .fetch_one(&self.pool)
            .await?;
        Ok(first)
    }

    async fn estate_unit_codes(&self, org: &str) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as("SELECT project, building, unit FROM estate_units WHERE org_id = $1")
            .bind(org)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn incidents(&self, org: &str, filter: &IncidentFilter) -> Result<Vec<IncidentRecord>> {
        let rows: Vec<IncidentTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i
             WHERE i.org_id = $1 AND ($2 = 0 OR i.state = 'open') AND i.state <> 'merged'
               AND ($3 IS NULL OR i.project IN (SELECT project FROM staff_projects WHERE user_id = $3))
             ORDER BY i.opened_at DESC, i.number DESC LIMIT $4"
        )))
        .bind(org)
        .bind(i64::from(filter.open))
        .bind(filter.served_by.as_deref())
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(incident_of).collect())
    }

    async fn incident(&self, org: &str, number: i64, served_by: Option<&str>) -> Result<Option<IncidentRecord>> {
        let row: Option<IncidentTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i
             WHERE i.org_id = $1 AND i.number = $2
               AND ($3 IS NULL OR i.project IN (SELECT project FROM staff_projects WHERE user_id = $3))"
        )))
        .bind(org)
        .bind(number)
        .bind(served_by)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(incident_of))
    }

    async fn order_incident(&self, org: &str, order: &str) -> Result<Option<IncidentRecord>> {
        let row: Option<IncidentTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incident_members o JOIN incidents i ON i.org_id = o.org_id AND i.number = o.incident
             WHERE o.org_id = $1 AND o.order_id = $2 AND o.standing = 'member'"
        )))
        .bind(org)
        .bind(order)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(incident_of))
    }

    async fn incident_members(&self, org: &str, number: i64) -> Result<Vec<IncidentMember>> {
        type Row = (String, String, String, Option<String>, Option<String>, Option<String>, String, i64, i64, String);
        let rows: Vec<Row> =
            sqlx::query_as(
                "SELECT o.id, o.number, o.status, o.building, o.unit, o.area, o.category, o.created_at, m.joined_at, m.standing
                 FROM incident_members m JOIN orders o ON o.id = m.order_id AND o.org_id = m.org_id
                 WHERE m.org_id = $1 AND m.incident = $2 AND m.standing <> 'dismissed'
                 ORDER BY m.joined_at, o.created_at, o.id",
            )
            .bind(org)
            .bind(number)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(order_id, number, status, building, unit, area, category, created_at, joined_at, standing)| {
                IncidentMember {
                    order_id,
                    number,
                    status,
                    building,
                    unit,
                    area,
                    category,
                    created_at,
                    joined_at,
                    standing,
                }
            })
            .collect())
    }

    async fn resolve_incident(&self, org: &str, number: i64, by: &str, now_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        let done = sqlx::query(
            "UPDATE incidents SET state = 'resolved', resolved_at = $3, resolved_by = $4
             WHERE org_id = $1 AND number = $2 AND state = 'open'",
        )
        .bind(org)
        .bind(number)
        .bind(now_ms)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            // A plan made before the resolve must not add to it.
            sqlx::query(BUMP).bind(org).execute(&mut *tx).await?;
            // What is still suggested is not the incident's: those orders go on as their
            // households' own (and the baseline learns from them).
            sqlx::query(
                "UPDATE incident_members SET standing = 'dismissed'
                 WHERE org_id = $1 AND incident = $2 AND standing = 'suggested'",
            )
            .bind(org)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
