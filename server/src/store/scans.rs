//! The deadline scan's storage: orders due a check or a server action, the SLA events they
//! fire and the notifications they leave.

use super::*;

/// An order the escalation scanner must look at.
#[derive(Clone, Debug)]
pub struct CheckDue {
    pub org: String,
    pub order: OrderId,
    pub doc: Vec<u8>,
    pub next_check: i64,
    /// The assistant has read the order already (`order_triage`): it is not read again.
    pub read: bool,
}

/// What one scan found for one order (see [`Database::record_checks`]).
#[derive(Clone, Debug)]
pub struct CheckRecord {
    pub due: CheckDue,
    pub fired: Vec<Fired>,
    pub facts: OrderFacts,
    pub next_check: Option<i64>,
    /// The assistant's reading of the description, kept the first time the order is recorded.
    pub triage: Option<TriageRecord>,
}

/// The assistant's reading of an order (`order_triage`; docs/triage.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriageRecord {
    pub kind: &'static str,
    pub category: String,
    pub grade: &'static str,
    pub urgent: bool,
    /// In thousandths.
    pub confidence_permille: i64,
    pub abstain: bool,
    pub rule: Option<&'static str>,
    pub model: String,
}

/// An order first read later than this after its creation is history, not news (`preexisting`).
pub const TRIAGE_FRESH_MS: i64 = 3_600_000;

/// Who hears of an urgent report no person has classified: the project's dispatchers and the
/// organization's supervisors.
const URGENT_REPORT_ROLES: [Role; 2] = [Role::Dispatcher, Role::Supervisor];

/// A checkpoint that fired, and whom it concerns: the order's assignee (if any) and everyone of
/// these roles in the organization.
#[derive(Clone, Debug)]
pub struct Fired {
    pub stage: &'static str,
    pub level: &'static str,
    pub at_ms: i64,
    pub due_ms: i64,
    pub assignee: Option<String>,
    pub roles: Vec<Role>,
    /// Passed while the order was covered by its incident (docs/incidents.md): recorded, so
    /// that it never fires later, and told to no one.
    pub covered: bool,
}

/// What the scanner materializes from an order's document and its organization's SLA book: the
/// queue's colours (the checkpoints of the most urgent unmet stage) on `orders`, and the row the
/// dashboards count in `order_facts`. Times are device claims clamped as for deadlines
/// (docs/deadlines.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFacts {
    pub sla_stage: Option<&'static str>,
    pub sla_half_at: Option<i64>,
    pub sla_warn_at: Option<i64>,
    pub sla_due_at: Option<i64>,
    pub project: String,
    pub building: Option<String>,
    pub kind: &'static str,
    pub category: String,
    pub grade: &'static str,
    pub status: &'static str,
    pub is_open: bool,
    pub assignee: Option<String>,
    pub created_at: i64,
    /// Hour of the week the order was created, Monday 00:00 = 0, China Standard Time.
    pub created_how: i64,
    pub assigned_at: Option<i64>,
    pub accepted_at: Option<i64>,
    pub arrived_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// When the loop closed: the owner's confirmation, the automatic one, or the close.
    pub finished_at: Option<i64>,
    pub rating: Option<i64>,
    pub reopen_count: i64,
    pub auto_confirmed: bool,
    /// Who recorded the return visit.
    pub visited_by: Option<String>,
    /// The description (the queue's column and search; kept in `order_texts`).
    pub description: String,
    /// Why the order is on hold (a `HoldReason` code), while it is.
    pub hold_reason: Option<&'static str>,
    /// The asset the order names (the failure rules count an asset's repairs by it).
    pub asset: Option<String>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SlaEventRecord {
    pub stage: String,
    pub level: String,
    pub at_ms: i64,
    pub due_ms: i64,
    pub fired_at_ms: i64,
    /// Passed while the order was covered by its incident: recorded, told to no one, and not
    /// counted as the order's breach.
    pub covered: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct NotificationRecord {
    pub id: String,
    pub order_id: String,
    pub stage: String,
    pub level: String,
    pub due_ms: i64,
    pub created_at_ms: i64,
    pub read_at_ms: Option<i64>,
    /// The order as the desk names it: its number, what and where, and who works it (`null`s
    /// for an order the user can no longer see).
    pub number: Option<String>,
    pub kind: Option<String>,
    pub category: Option<String>,
    pub grade: Option<String>,
    pub project: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
    pub assignee_name: Option<String>,
    /// What the notification is about when `stage` is not an order's: `incident` (the
    /// incident's number), `deviation` (the scope: `project` or `project/category`).
    pub subject: Option<String>,
}

#[async_trait]
pub trait Scans: Send + Sync {
    /// Orders (organization, id) that have awaited their owner's confirmation longer than their
    /// organization allows at `now_ms`, oldest first.
    async fn awaiting_due(&self, now_ms: i64, limit: i64) -> Result<Vec<(String, OrderId)>>;
    /// The server acts on an order (auto-confirmation): written only if, merged with whatever
    /// the order holds by then, it produces `expect`. Whether it was written.
    async fn server_action(
        &self,
        org: &str,
        order: OrderId,
        action: Action,
        expect: Status,
        now_ms: i64,
    ) -> Result<bool>;
    /// Records in each order's document the incident it belongs to now (`incident`, a
    /// server-only field: the phones group and work an incident's orders offline), read from the
    /// membership as stored when the documents are written (a later merge or split is not undone
    /// by an earlier mark), in one push of the server's own through the writer; an order whose
    /// document says so already, or that does not load, is left alone. How many documents
    /// changed.
    async fn mark_incidents(&self, org: &str, orders: &[OrderId], now_ms: i64) -> Result<usize>;
    /// Records in each order's document whether completing it needs the owner's signature
    /// (`signature_required`, a server-only field), as `sync_core::signature::to_record` decides
    /// on the document as stored now (`bool`: the server's first look at the order), in one push
    /// of the server's own through the writer; an order with nothing to record, or that does not
    /// load, is left alone. How many documents changed.
    async fn require_signatures(
        &self,
        org: &str,
        rules: &loopwork_sync_core::signature::SignatureRules,
        orders: &[(OrderId, bool)],
        now_ms: i64,
    ) -> Result<usize>;
    /// Orders of the organization in these states, with their documents.
    /// Orders of the principal's scope in these statuses, whole, oldest first (at most `limit`
    /// per status).
    async fn orders_in_status(
        &self,
        principal: &Principal,
        statuses: &[Status],
        limit: i64,
    ) -> Result<Vec<(OrderId, Vec<u8>)>>;
    /// Open orders the escalation scanner must look at by `now_ms` (org, id, document, the
    /// `next_check` it was read at), soonest first.
    async fn checks_due(&self, now_ms: i64, limit: i64) -> Result<Vec<CheckDue>>;
    /// For each looked-at order, in one transaction: records the checkpoints that fired (once
    /// each: an existing record wins) with a notification for each recipient role, and, unless a
    /// push moved the order's next check since it was read, sets it and the order's facts.
    /// Returns, per order, the indexes (into its `fired`) of the checkpoints this call recorded.
    async fn record_checks(&self, checks: &[CheckRecord], now_ms: i64) -> Result<Vec<Vec<usize>>>;
    async fn sla_events(&self, org: &str, order: OrderId) -> Result<Vec<SlaEventRecord>>;
    async fn notifications(&self, principal: &Principal, limit: i64) -> Result<Vec<NotificationRecord>>;
    async fn mark_read(&self, principal: &Principal, id: &str, now_ms: i64) -> Result<bool>;
    /// Marks every unread notification of the user read; how many.
    async fn mark_all_read(&self, principal: &Principal, now_ms: i64) -> Result<u64>;
    /// How many of the user's notifications are unread.
    async fn unread_count(&self, principal: &Principal) -> Result<i64>;
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
    /// This server process as the principal of its own pushes in the organization.
    fn system(&self, org: &str) -> Principal {
        let server = self.fixed.server;
        Principal {
            user: server.user,
            role: Role::System,
            org: org.to_owned(),
            device: server.device,
            project_bound: false,
        }
    }

    /// One order of [`Database::record_checks`], inside its transaction.
    pub(crate) async fn record_one(
        tx: &mut sqlx::Transaction<'_, B>,
        check: &CheckRecord,
        now_ms: i64,
    ) -> Result<Vec<usize>> {
        let (due, fired, facts, next_check) = (&check.due, &check.fired, &check.facts, check.next_check);
        let order_id = due.order.to_string();
        let mut recorded = Vec::new();
        for (index, f) in fired.iter().enumerate() {
            let inserted: Option<String> = sqlx::query_scalar(
                "INSERT INTO sla_events (org_id, order_id, stage, level, due_at, at, fired_at, covered)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING order_id",
            )
            .bind(&due.org)
            .bind(&order_id)
            .bind(f.stage)
            .bind(f.level)
            .bind(f.due_ms)
            .bind(f.at_ms)
            .bind(now_ms)
            .bind(f.covered)
            .fetch_optional(&mut **tx)
            .await?;
            if inserted.is_none() {
                continue;
            }
            recorded.push(index);
            if f.covered {
                continue;
            }
            // Announced to the organization's webhooks in the same transaction: once.
            let hooks = Self::org_hooks(tx, &due.org).await?;
            let body = serde_json::json!({
                "event": format!("sla.{}", f.level),
                "org_id": due.org,
                "order_id": order_id,
                "stage": f.stage,
                "level": f.level,
                "at_ms": f.at_ms,
                "due_ms": f.due_ms,
                "fired_at_ms": now_ms,
            });
            Self::enqueue(tx, &due.org, &hooks, (&order_id, f.stage, f.level, f.due_ms), body, now_ms).await?;
            let mut users = Self::recipients(tx, &due.org, &order_id, &f.roles).await?;
            users.extend(f.assignee.clone());
            users.sort();
            users.dedup();
            for user in users {
                Self::notify(tx, &due.org, &user, &order_id, (f.stage, f.level, f.due_ms), None, now_ms).await?;
            }
        }
        // A push since the read set `next_check` to its own time: leave that (and the
        // facts of the document it read) for the next tick.
        let current = sqlx::query(
            "UPDATE orders SET next_check = $1, sla_stage = $4, sla_half_at = $5, sla_warn_at = $6,
                sla_due_at = $7, next_deadline = $7
             WHERE id = $2 AND next_check = $3",
        )
        .bind(next_check)
        .bind(&order_id)
        .bind(due.next_check)
        .bind(facts.sla_stage)
        .bind(facts.sla_half_at)
        .bind(facts.sla_warn_at)
        .bind(facts.sla_due_at)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if current {
            // Breaches are never cleared: they are read from the records, these included. A
            // breach covered by the order's incident is not the order's (docs/incidents.md).
            let breached = |stage: &str| {
                format!(
                    "CASE WHEN EXISTS (SELECT 1 FROM sla_events WHERE order_id = $1 AND stage = '{stage}'
                        AND level = 'breach' AND covered = FALSE) THEN 1 ELSE 0 END"
                )
            };
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO order_facts (order_id, org_id, project, building, kind, category, grade, status,
                    is_open, assignee, registered_by, created_at, created_how, assigned_at, accepted_at,
                    arrived_at, completed_at, finished_at, rating, reopen_count, auto_confirmed, visited_by,
                    response_breached, arrival_breached, resolution_breached, asset_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                    (SELECT registered_by FROM orders WHERE id = $1), $11, $12, $13, $14, $15, $16, $17, $18,
                    $19, $20, $21, {}, {}, {}, $22)
                 ON CONFLICT (order_id) DO UPDATE SET project = excluded.project,
                    building = excluded.building, kind = excluded.kind, category = excluded.category,
                    grade = excluded.grade, status = excluded.status, is_open = excluded.is_open,
                    assignee = excluded.assignee, registered_by = excluded.registered_by,
                    created_at = excluded.created_at, created_how = excluded.created_how,
                    assigned_at = excluded.assigned_at, accepted_at = excluded.accepted_at,
                    arrived_at = excluded.arrived_at, completed_at = excluded.completed_at,
                    finished_at = excluded.finished_at, rating = excluded.rating,
                    reopen_count = excluded.reopen_count, auto_confirmed = excluded.auto_confirmed,
                    visited_by = excluded.visited_by, response_breached = excluded.response_breached,
                    arrival_breached = excluded.arrival_breached,
                    resolution_breached = excluded.resolution_breached, asset_id = excluded.asset_id",
                breached("response"),
                breached("arrival"),
                breached("resolution"),
            )))
            .bind(&order_id)
            .bind(&due.org)
            .bind(&facts.project)
            .bind(facts.building.as_deref())
            .bind(facts.kind)
            .bind(&facts.category)
            .bind(facts.grade)
            .bind(facts.status)
            .bind(facts.is_open)
            .bind(facts.assignee.as_deref())
            .bind(facts.created_at)
            .bind(facts.created_how)
            .bind(facts.assigned_at)
            .bind(facts.accepted_at)
            .bind(facts.arrived_at)
            .bind(facts.completed_at)
            .bind(facts.finished_at)
            .bind(facts.rating)
            .bind(facts.reopen_count)
            .bind(i64::from(facts.auto_confirmed))
            .bind(facts.visited_by.as_deref())
            .bind(facts.asset.as_deref())
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO order_texts (order_id, org_id, description, hold_reason) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (order_id) DO UPDATE SET description = excluded.description,
                    hold_reason = excluded.hold_reason",
            )
            .bind(&order_id)
            .bind(&due.org)
            .bind(facts.description.as_str())
            .bind(facts.hold_reason)
            .execute(&mut **tx)
            .await?;
            if let Some(t) = &check.triage {
                Self::record_triage(tx, &due.org, &order_id, t, now_ms).await?;
            }
        }
        Ok(recorded)
    }

    /// Keeps the assistant's first reading of an order. Registered by office staff, it is
    /// confirmed at once (a person chose); read first long after the server received it (an
    /// order from before the assistant, read after an upgrade: by the server's clock, never the
    /// creating phone's), it is history (`preexisting`). Otherwise
    /// an urgent one is told at once to the project's dispatchers and the supervisors (stage
    /// `report`, level `urgent`) while the order is fresh and nobody has taken it.
    async fn record_triage(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        t: &TriageRecord,
        now_ms: i64,
    ) -> Result<()> {
        let staff =
            loopwork_sync_core::role::STAFF.iter().map(|r| format!("'{}'", r.code())).collect::<Vec<_>>().join(", ");
        let inserted: Option<(Option<String>, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO order_triage (order_id, org_id, kind, category, grade, urgent, confidence_permille,
                abstain, rule, model, created_at, confirmed_by, confirmed_at, answer)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, u.id,
                CASE WHEN u.id IS NOT NULL OR first.at < $11 - $12 THEN $11 END,
                CASE WHEN first.at < $11 - $12 THEN 'preexisting' END
             FROM orders o LEFT JOIN users u ON u.id = o.registered_by AND u.role IN ({staff})
                CROSS JOIN (SELECT MIN(f.received_at) AS at FROM feed f WHERE f.order_id = $1) first
             WHERE o.id = $1
             ON CONFLICT (order_id) DO NOTHING RETURNING confirmed_by, answer"
        )))
        .bind(order_id)
        .bind(org)
        .bind(t.kind)
        .bind(&t.category)
        .bind(t.grade)
        .bind(t.urgent)
        .bind(t.confidence_permille)
        .bind(t.abstain)
        .bind(t.rule)
        .bind(&t.model)
        .bind(now_ms)
        .bind(TRIAGE_FRESH_MS)
        .fetch_optional(&mut **tx)
        .await?;
        if !t.urgent || !matches!(inserted, Some((None, None))) {
            return Ok(());
        }
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
        if matches!(status.as_deref(), Some("new" | "assigned")) {
            for user in Self::recipients(tx, org, order_id, &URGENT_REPORT_ROLES).await? {
                Self::notify(tx, org, &user, order_id, ("report", "urgent", now_ms), None, now_ms).await?;
            }
        }
        Ok(())
    }

    /// The active users of these roles who hear of an order: dispatchers bound to projects
    /// hear of their projects' orders only.
    async fn recipients(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        roles: &[Role],
    ) -> Result<Vec<String>> {
        let project: Option<String> = sqlx::query_scalar("SELECT project FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
        Self::project_recipients(tx, org, project.as_deref(), roles).await
    }

    /// The active users of these roles who hear of a project: dispatchers bound to projects
    /// hear of theirs only (of none when there is no project: an order not stored).
    pub(crate) async fn project_recipients(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        project: Option<&str>,
        roles: &[Role],
    ) -> Result<Vec<String>> {
        let mut users: Vec<String> = Vec::new();
        for role in roles {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM users WHERE org_id = $1 AND role = $2 AND disabled_at IS NULL
                    AND (role <> 'dispatcher' OR NOT EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = users.id)
                        OR EXISTS (SELECT 1 FROM staff_projects s WHERE s.user_id = users.id AND s.project = $3))
                 ORDER BY id",
            )
            .bind(org)
            .bind(role.code())
            .bind(project)
            .fetch_all(&mut **tx)
            .await?;
            users.extend(ids);
        }
        users.sort();
        users.dedup();
        Ok(users)
    }

    /// One notification: `(stage, level, due_ms)` of the order for the user; `subject` names
    /// what it is about when that is not the order's deadline (an incident's number, a
    /// deviation's scope).
    pub(crate) async fn notify(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        user: &str,
        order_id: &str,
        (stage, level, due_ms): (&str, &str, i64),
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO notifications (id, org_id, user_id, order_id, stage, level, due_at, created_at, subject)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(org)
        .bind(user)
        .bind(order_id)
        .bind(stage)
        .bind(level)
        .bind(due_ms)
        .bind(now_ms)
        .bind(subject)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> Scans for Store<B>
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
    async fn awaiting_due(&self, now_ms: i64, limit: i64) -> Result<Vec<(String, OrderId)>> {
        // At least a day old by the index, then each organization's own wait.
        let days = B::json_integer("s.value", "auto_confirm_days");
        let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT o.org_id, o.id FROM orders o
             LEFT JOIN org_settings s ON s.org_id = o.org_id AND s.name = '{CLOSED_LOOP}'
             WHERE o.awaiting_since IS NOT NULL AND o.awaiting_since <= $1 - 86400000
               AND o.awaiting_since <= $1 - COALESCE({days}, {DEFAULT_AUTO_CONFIRM_DAYS}) * 86400000
             ORDER BY o.awaiting_since LIMIT $2"
        )))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(org, id)| Ok((org, id.parse().map_err(|e| StoreError::corrupt("order id", e))?)))
            .collect()
    }

    async fn server_action(
        &self,
        org: &str,
        order: OrderId,
        action: Action,
        expect: Status,
        now_ms: i64,
    ) -> Result<bool> {
        let Some(doc) = self.stored_document(org, &order.to_string()).await? else { return Ok(false) };
        let mut document = self.load_stored(org, order, &doc).await?.with_device(self.fixed.server.device);
        let before = document.heads();
        if document.transition(&self.fixed.server, action, None, now_ms).is_err() {
            return Ok(false);
        }
        let changes = server_changes(&document, &before)?;
        let outcome = self.push_job(&self.system(org), &[(order, changes)], &[], now_ms, Some(expect)).await?;
        Ok(outcome.merged > 0)
    }

    async fn mark_incidents(&self, org: &str, orders: &[OrderId], now_ms: i64) -> Result<usize> {
        let mut marks = Vec::new();
        for order in orders {
            let current: Option<(i64, String, Option<String>, Option<String>, String)> = sqlx::query_as(
                "SELECT i.number, i.project, i.building, i.riser, i.category
                 FROM incident_members m JOIN incidents i ON i.org_id = m.org_id AND i.number = m.incident
                 WHERE m.org_id = $1 AND m.order_id = $2 AND m.standing = 'member'",
            )
            .bind(org)
            .bind(order.to_string())
            .fetch_optional(&self.pool)
            .await?;
            let Some((number, project, building, riser, category)) = current else { continue };
            let place = loopwork_sync_core::surge::Node { project, building, riser }.label_zh();
            marks.push((*order, loopwork_sync_core::IncidentRef { number, place, category }));
        }
        self.server_edits(org, marks, now_ms, |document, incident| {
            document.incident().as_ref() != Some(&incident) && document.set_incident(&incident, now_ms).is_ok()
        })
        .await
    }

    async fn require_signatures(
        &self,
        org: &str,
        rules: &loopwork_sync_core::signature::SignatureRules,
        orders: &[(OrderId, bool)],
        now_ms: i64,
    ) -> Result<usize> {
        self.server_edits(org, orders.to_vec(), now_ms, |document, first_look| {
            // Decided again on the order as stored now: a push since the scan read it counts.
            let Ok(state) = document.state() else { return false };
            loopwork_sync_core::signature::to_record(rules, document, &state, first_look)
                .is_some_and(|required| document.set_signature_required(required, now_ms).is_ok())
        })
        .await
    }

    async fn checks_due(&self, now_ms: i64, limit: i64) -> Result<Vec<CheckDue>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String, String, i64, Vec<u8>, Option<i64>, i32, bool)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT org_id, id, next_check, {DOC_COLUMNS},
                EXISTS (SELECT 1 FROM order_triage t WHERE t.order_id = orders.id)
             FROM orders
             WHERE next_check IS NOT NULL AND next_check <= $1 ORDER BY next_check LIMIT $2"
        )))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        let mut stored = Vec::with_capacity(rows.len());
        for (org, id, next_check, doc, doc_seq, tail, read) in rows {
            due.push((org, id.parse().map_err(|e| StoreError::corrupt("order id", e))?, next_check, read));
            stored.push((id, doc, doc_seq, tail));
        }
        let docs = Self::whole_documents(&mut conn, stored).await?;
        Ok(due
            .into_iter()
            .zip(docs)
            .map(|((org, order, next_check, read), (_, doc))| CheckDue { org, order, doc, next_check, read })
            .collect())
    }

    async fn record_checks(&self, checks: &[CheckRecord], now_ms: i64) -> Result<Vec<Vec<usize>>> {
        let mut tx = B::begin_write(&self.pool).await?;
        // The organizations' write locks first, in one order: the writers (of this process and
        // others) update the same order rows in their own order, and without the lock the two
        // transactions could each wait for the other (PostgreSQL then aborts one).
        let orgs: std::collections::BTreeSet<&str> = checks.iter().map(|c| c.due.org.as_str()).collect();
        for org in orgs {
            B::lock_org(&mut tx, org).await?;
        }
        let mut recorded = Vec::with_capacity(checks.len());
        for check in checks {
            recorded.push(Self::record_one(&mut tx, check, now_ms).await?);
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn sla_events(&self, org: &str, order: OrderId) -> Result<Vec<SlaEventRecord>> {
        let rows: Vec<(String, String, i64, i64, i64, bool)> = sqlx::query_as(
            "SELECT stage, level, at, due_at, fired_at, covered FROM sla_events WHERE order_id = $1 AND org_id = $2
             ORDER BY at, stage, level",
        )
        .bind(order.to_string())
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(stage, level, at_ms, due_ms, fired_at_ms, covered)| SlaEventRecord {
                stage,
                level,
                at_ms,
                due_ms,
                fired_at_ms,
                covered,
            })
            .collect())
    }

    async fn notifications(&self, principal: &Principal, limit: i64) -> Result<Vec<NotificationRecord>> {
        // The order's fields only while the order is in the user's scope ($1 the organization, $3
        // the user, as `scope_filter` names them).
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT n.id, n.order_id, n.stage, n.level, n.due_at, n.created_at, n.read_at, o.number, o.kind,
                    o.category, o.grade, o.project, o.building, o.unit, o.area, u.display_name, n.subject
             FROM notifications n LEFT JOIN orders o ON o.id = n.order_id AND o.org_id = n.org_id AND {}
             LEFT JOIN users u ON u.id = o.assignee
             WHERE n.user_id = $3 AND n.org_id = $1 ORDER BY n.created_at DESC, n.id DESC LIMIT $2",
            scope_filter(Scope::of(principal), "o.id")
        )))
        .bind(&principal.org)
        .bind(limit)
        .bind(principal.user.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NotificationRecord {
                    id: r.try_get(0)?,
                    order_id: r.try_get(1)?,
                    stage: r.try_get(2)?,
                    level: r.try_get(3)?,
                    due_ms: r.try_get(4)?,
                    created_at_ms: r.try_get(5)?,
                    read_at_ms: r.try_get(6)?,
                    number: r.try_get(7)?,
                    kind: r.try_get(8)?,
                    category: r.try_get(9)?,
                    grade: r.try_get(10)?,
                    project: r.try_get(11)?,
                    building: r.try_get(12)?,
                    unit: r.try_get(13)?,
                    area: r.try_get(14)?,
                    assignee_name: r.try_get(15)?,
                    subject: r.try_get(16)?,
                })
            })
            .collect()
    }

    async fn mark_all_read(&self, principal: &Principal, now_ms: i64) -> Result<u64> {
        let done =
            sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND org_id = $3 AND read_at IS NULL")
                .bind(now_ms)
                .bind(principal.user.to_string())
                .bind(&principal.org)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn unread_count(&self, principal: &Principal) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND org_id = $2 AND read_at IS NULL",
        )
        .bind(principal.user.to_string())
        .bind(&principal.org)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn mark_read(&self, principal: &Principal, id: &str, now_ms: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3")
                .bind(now_ms)
                .bind(id)
                .bind(principal.user.to_string())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn orders_in_status(
        &self,
        principal: &Principal,
        statuses: &[Status],
        limit: i64,
    ) -> Result<Vec<(OrderId, Vec<u8>)>> {
        let mut out = Vec::new();
        let sql = format!(
            "SELECT id, {DOC_COLUMNS} FROM orders WHERE org_id = $1 AND status = $2 AND $3 = $3 AND {}
             ORDER BY created_at LIMIT $4",
            scope_filter(Scope::of(principal), "id")
        );
        for status in statuses {
            let mut conn = self.pool.acquire().await?;
            let rows: Vec<StoredDocRow> = sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(&principal.org)
                .bind(status.code())
                .bind(principal.user.to_string())
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
            for (id, doc) in Self::whole_documents(&mut conn, rows).await? {
                out.push((id.parse().map_err(|e| StoreError::corrupt("order id", e))?, doc));
            }
        }
        Ok(out)
    }
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
    /// The server's own edit of some orders' documents as stored now, written through the
    /// writer in one push: `edit` makes its change on each loaded document (under the server's
    /// device) with that order's value, or answers `false` when there is nothing to change; an
    /// order that is gone or does not load is left alone. How many documents changed.
    async fn server_edits<T>(
        &self,
        org: &str,
        orders: Vec<(OrderId, T)>,
        now_ms: i64,
        mut edit: impl FnMut(&mut WorkOrder, T) -> bool,
    ) -> Result<usize> {
        let mut pushes = Vec::new();
        for (order, value) in orders {
            let Some(doc) = self.stored_document(org, &order.to_string()).await? else { continue };
            let Ok(document) = self.load_stored(org, order, &doc).await else { continue };
            let mut document = document.with_device(self.fixed.server.device);
            let before = document.heads();
            if edit(&mut document, value) {
                pushes.push((order, server_changes(&document, &before)?));
            }
        }
        if pushes.is_empty() {
            return Ok(0);
        }
        let count = pushes.len();
        self.push_job(&self.system(org), &pushes, &[], now_ms, None).await?;
        Ok(count)
    }
}

/// The changes an edit of the server's made since `before`, parsed as a push carries them.
fn server_changes(document: &WorkOrder, before: &[ChangeHash]) -> Result<Vec<Change>> {
    document
        .changes_since(before)
        .into_iter()
        .map(|(_, bytes)| {
            loopwork_sync_core::work_order::parse_change(&bytes).map_err(|e| StoreError::corrupt("change", e))
        })
        .collect()
}
