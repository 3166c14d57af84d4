//! The desk's queue: orders listed and filtered, possible duplicates, the caller an order was
//! registered for.

use super::*;

/// An order as lists show it (JSON).
#[derive(Clone, Debug, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct OrderListItem {
    pub id: String,
    pub number: String,
    pub kind: String,
    pub category: String,
    pub grade: String,
    pub status: String,
    pub assignee: Option<String>,
    /// The assignee's display name (staff names are not personal data of owners).
    pub assignee_name: Option<String>,
    pub project: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub area: Option<String>,
    pub created_at: i64,
    pub next_deadline: Option<i64>,
    /// The most urgent unmet stage's checkpoints under the organization's SLA book (what the
    /// queue colours by); `None` when nothing is owed or the scanner has not looked yet.
    pub sla: Option<SlaMarks>,
    pub rating: Option<i64>,
    pub reopen_count: i64,
    /// The description's first 120 characters (absent until the scanner has read the order, and
    /// in an order's detail, which has the whole description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Why an order on hold waits (a hold reason code of the vocabulary).
    pub hold_reason: Option<String>,
    /// When an order awaiting its owner's confirmation is confirmed by the server if the owner
    /// does not answer (the organization's closed-loop wait after the completion's receipt).
    pub auto_confirm_at: Option<i64>,
    /// The assistant's reading of the order's description (docs/triage.md); `null` until the
    /// scanner has read the order.
    pub suggestion: Option<Suggestion>,
}

/// What the assistant made of an order when it arrived (`order_triage`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Suggestion {
    pub kind: String,
    pub category: String,
    pub grade: String,
    pub urgent: bool,
    /// 0..1, in thousandths.
    pub confidence: f64,
    /// The assistant was unsure: a person decides.
    pub abstain: bool,
    /// The life-safety rule that matched (a code of docs/triage.md's table).
    pub rule: Option<String>,
    /// A person has confirmed or set aside the order's classification since (or registered it
    /// at the desk): the suggestion is history, no longer a question.
    pub confirmed: bool,
}

// `confidence` is a count of thousandths over 1000: never NaN.
impl Eq for Suggestion {}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SlaMarks {
    pub stage: String,
    pub half_at: Option<i64>,
    pub warn_at: Option<i64>,
    pub due_at: i64,
}

/// The queue's filters (`GET /api/v1/orders`); every one optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderFilter {
    /// A status code, or `open` for every open status.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub grade: Option<String>,
    pub category: Option<String>,
    pub project: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub assignee: Option<String>,
    /// Open orders whose current stage is past its deadline.
    #[serde(default)]
    pub overdue: bool,
    /// Part of the number, of the unit or of the description; or a caller's or a resident's
    /// whole name or phone number (matched, never shown: rows show no caller).
    pub q: Option<String>,
    /// Orders whose assistant's reading no person has confirmed yet: `pending` all of them,
    /// `urgent` the urgent ones (the desk's strip above the queue).
    pub suggested: Option<String>,
    /// Created at or after (ms).
    pub from: Option<i64>,
    /// Created before (ms).
    pub to: Option<i64>,
    /// Created in this hour of the week (Monday 00:00 = 0, China Standard Time).
    pub hour_of_week: Option<i64>,
    pub limit: Option<i64>,
    /// Rows skipped before the page (paging).
    pub offset: Option<i64>,
    /// The order of the rows: `priority` (the default: open first, then the more serious grade,
    /// then the nearest deadline), `deadline`, `created` (newest first), `created_asc`, `number`.
    pub sort: Option<String>,
    /// One order (the detail view reads its row through the same query).
    #[serde(skip)]
    pub id: Option<String>,
}

/// The columns of a queue row (`order_item` reads them by position) and where they come from.
pub(crate) const ITEM_COLUMNS: &str =
    "o.id, o.number, o.kind, o.category, o.grade, o.status, o.assignee, u.display_name, o.project,
    o.building, o.unit, o.area, o.created_at, o.next_deadline, o.sla_stage, o.sla_half_at, o.sla_warn_at, o.sla_due_at,
    f.rating, COALESCE(f.reopen_count, 0), SUBSTR(x.description, 1, 120), x.hold_reason, o.awaiting_since,
    t.kind, t.category, t.grade, t.urgent, t.confidence_permille, t.abstain, t.rule, t.confirmed_at";

pub(crate) const ITEM_FROM: &str = "orders o LEFT JOIN users u ON u.id = o.assignee
    LEFT JOIN order_facts f ON f.order_id = o.id LEFT JOIN order_texts x ON x.order_id = o.id
    LEFT JOIN order_triage t ON t.order_id = o.id";

/// The queue's orders (`sort`): each name and its `ORDER BY` over `orders o`.
pub const QUEUE_SORTS: &[&str] = &["priority", "deadline", "created", "created_asc", "number"];

/// The `ORDER BY` of a sort of [`QUEUE_SORTS`] (the default, `priority`, for any other).
fn queue_order(sort: Option<&str>) -> String {
    match sort {
        Some("deadline") => "o.is_open DESC, o.next_deadline IS NULL, o.next_deadline, o.created_at DESC, o.id".into(),
        Some("created") => "o.created_at DESC, o.id".into(),
        Some("created_asc") => "o.created_at, o.id".into(),
        Some("number") => "o.number, o.id".into(),
        _ => format!("o.is_open DESC, {} DESC, {}, o.created_at DESC, o.id", grade_rank("o."), deadline_key("o.")),
    }
}

/// An order's grade as a number, more serious higher (sync-core's order: minor < … < critical).
/// The priority index (`orders_open_priority`) holds this very expression.
pub(crate) fn grade_rank(prefix: &str) -> String {
    let arms: Vec<String> = loopwork_sync_core::Grade::ALL
        .iter()
        .enumerate()
        .map(|(i, g)| format!("WHEN '{}' THEN {i}", g.code()))
        .collect();
    format!("(CASE {prefix}grade {} ELSE 0 END)", arms.join(" "))
}

/// The next deadline, none last (an index can hold this order; `IS NULL, …` it cannot).
pub(crate) fn deadline_key(prefix: &str) -> String {
    format!("COALESCE({prefix}next_deadline, 9223372036854775807)")
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// The queue: orders in the principal's scope matching the filter, most urgent first.
    async fn query_orders(
        &self,
        principal: &Principal,
        filter: &OrderFilter,
        now_ms: i64,
    ) -> Result<Vec<OrderListItem>>;
    /// How many orders the filter matches in all (the queue's total; `limit` and `offset` aside).
    async fn count_orders(&self, principal: &Principal, filter: &OrderFilter, now_ms: i64) -> Result<i64>;
    /// Open orders of the same unit and category created since `since_ms` (duplicates).
    async fn possible_duplicates(
        &self,
        principal: &Principal,
        location: &loopwork_sync_core::Location,
        category: &str,
        since_ms: i64,
        except: OrderId,
    ) -> Result<Vec<OrderListItem>>;
    /// The caller of an order registered by phone (personal data: only `privacy.rs` reads it).
    async fn save_caller(
        &self,
        org: &str,
        order: OrderId,
        name: Option<&str>,
        phone: Option<&str>,
        now_ms: i64,
    ) -> Result<()>;
    async fn caller(&self, org: &str, order: OrderId) -> Result<Option<(Option<String>, Option<String>)>>;
    /// Reserves the user's `Idempotency-Key` for a registration (`request`: its hash) about to
    /// make `order`: `None` when this call reserved it, else the `(request, order)` an earlier
    /// registration reserved it for. Keys older than [`IDEMPOTENCY_WINDOW_MS`] are forgotten.
    async fn reserve_idempotency_key(
        &self,
        principal: &Principal,
        key: &str,
        request: &str,
        order: OrderId,
        now_ms: i64,
    ) -> Result<Option<(String, String)>>;
    /// Forgets a reservation whose registration did not make its order.
    async fn release_idempotency_key(&self, principal: &Principal, key: &str) -> Result<()>;
}

/// How long a registration's `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3_600_000;

/// A value the queue's SQL binds.
enum Bound {
    Text(String),
    Int(i64),
}

/// The queue's `WHERE` over `orders o`: the principal's scope and only the filters the request
/// gives, as plain conditions the planner can answer from indexes (the open queue in priority
/// order reads `orders_open_priority` in its order and stops at the page). `$1` is the
/// organization, `$2` the page's size, `$3` the user (the scope); the filters' values follow.
struct QueueWhere {
    sql: Vec<String>,
    values: Vec<Bound>,
    /// A search's orders as one set of ids (`f.id`), read first: the rows read are those.
    found: Option<String>,
}

impl QueueWhere {
    /// Binds `value` next; its placeholder.
    fn bind(&mut self, value: Bound) -> String {
        self.values.push(value);
        format!("${}", self.values.len() + 3)
    }

    fn equals(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            let at = self.bind(Bound::Text(value.clone()));
            self.sql.push(format!("{column} = {at}"));
        }
    }

    fn new(principal: &Principal, filter: &OrderFilter, now_ms: i64) -> QueueWhere {
        let mut w = QueueWhere {
            // A quarantined order is in nobody's scope: its history does not load.
            sql: vec!["o.org_id = $1".into(), "$3 = $3".into(), "o.quarantined_at IS NULL".into()],
            values: Vec::new(),
            found: None,
        };
        if let Some(scoped) = scope_on_orders(Scope::of(principal), "o") {
            w.sql.push(scoped);
        }
        match filter.status.as_deref() {
            None => {}
            Some("open") => w.sql.push("o.is_open = TRUE".into()),
            Some("not_cancelled") => w.sql.push("o.status <> 'cancelled'".into()),
            Some(status) => {
                let at = w.bind(Bound::Text(status.to_owned()));
                w.sql.push(format!("o.status = {at}"));
            }
        }
        w.equals("o.kind", &filter.kind);
        w.equals("o.grade", &filter.grade);
        w.equals("o.category", &filter.category);
        w.equals("o.project", &filter.project);
        w.equals("o.building", &filter.building);
        w.equals("o.unit", &filter.unit);
        w.equals("o.assignee", &filter.assignee);
        if filter.overdue {
            let at = w.bind(Bound::Int(now_ms));
            w.sql.push(format!("o.is_open = TRUE AND o.next_deadline < {at}"));
        }
        // What the user typed, matched literally: `%` and `_` are escaped, not wildcards.
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            // The orders found, as one set of ids (each part answered from its own index or
            // table), so that only those orders' rows are read.
            let like = w.bind(Bound::Text(like_pattern(q)));
            let mut found = vec![
                format!(
                    "SELECT s.id FROM orders s WHERE s.org_id = $1
                        AND (s.number LIKE {like} ESCAPE '\\' OR s.unit LIKE {like} ESCAPE '\\')"
                ),
                format!("SELECT order_id FROM order_texts WHERE org_id = $1 AND description LIKE {like} ESCAPE '\\'"),
            ];
            // A whole name or number: a caller's, or a resident's of the order's unit; office
            // staff only (they see callers and residents; a technician or an owner may not test
            // a guess).
            if principal.role.is_staff() {
                let name = w.bind(Bound::Text(q.to_owned()));
                found.push(format!("SELECT order_id FROM order_callers WHERE org_id = $1 AND name = {name}"));
                let mut residents = format!("r.name = {name}");
                if let Ok(phone) = loopwork_sync_core::estate::normalize_phone(q) {
                    let phone = w.bind(Bound::Text(phone));
                    found.push(format!("SELECT order_id FROM order_callers WHERE org_id = $1 AND phone = {phone}"));
                    residents = format!("{residents} OR r.phone = {phone}");
                }
                found.push(format!(
                    "SELECT s.id FROM estate_residents r JOIN orders s ON s.org_id = r.org_id
                        AND s.project = r.project AND s.building = r.building AND s.unit = r.unit
                     WHERE r.org_id = $1 AND ({residents})"
                ));
            }
            w.found = Some(found.join(" UNION "));
            w.sql.push("o.id = f.id".into());
        }
        match filter.suggested.as_deref() {
            Some("urgent") => w.sql.push(
                "o.id IN (SELECT order_id FROM order_triage WHERE org_id = $1 AND urgent = TRUE AND confirmed_at IS NULL)"
                    .into(),
            ),
            Some("pending") => w.sql.push(
                "o.id IN (SELECT order_id FROM order_triage WHERE org_id = $1 AND confirmed_at IS NULL)".into(),
            ),
            _ => {}
        }
        if let Some(from) = filter.from {
            let at = w.bind(Bound::Int(from));
            w.sql.push(format!("o.created_at >= {at}"));
        }
        if let Some(to) = filter.to {
            let at = w.bind(Bound::Int(to));
            w.sql.push(format!("o.created_at < {at}"));
        }
        if let Some(hour) = filter.hour_of_week {
            let at = w.bind(Bound::Int(hour));
            w.sql.push(format!("o.id IN (SELECT order_id FROM order_facts WHERE org_id = $1 AND created_how = {at})"));
        }
        w.equals("o.id", &filter.id);
        w
    }

    /// `$1` to `$3`, then the filters' values.
    fn bind_all<'q, B: Backend>(
        &self,
        mut query: sqlx::query::Query<'q, B, <B as sqlx::Database>::Arguments>,
        principal: &Principal,
        limit: i64,
    ) -> sqlx::query::Query<'q, B, <B as sqlx::Database>::Arguments>
    where
        i64: Column<B>,
        String: Column<B>,
    {
        query = query.bind(principal.org.clone()).bind(limit).bind(principal.user.to_string());
        for value in &self.values {
            query = match value {
                Bound::Text(text) => query.bind(text.clone()),
                Bound::Int(n) => query.bind(*n),
            };
        }
        query
    }

    /// What the queue reads: the orders, or a search's found ids first and their orders
    /// (`CROSS JOIN` keeps that order on SQLite, whose planner would otherwise walk every order
    /// of the organization testing each against the set).
    fn from(&self) -> String {
        match &self.found {
            Some(found) => format!("({found}) f CROSS JOIN orders o"),
            None => "orders o".into(),
        }
    }

    /// The placeholder after the filters' values.
    fn next(&self) -> String {
        format!("${}", self.values.len() + 4)
    }
}

/// The most rows one query of the queue reads (an export's; a page of the desk's is at most 500).
pub const MAX_ROWS: i64 = 10_000;

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
    /// One queue row, from a query that selects [`ITEM_COLUMNS`] `FROM` [`ITEM_FROM`].
    pub(crate) fn order_item(r: &<B as sqlx::Database>::Row) -> Result<OrderListItem, sqlx::Error> {
        let stage: Option<String> = r.try_get(14)?;
        let due: Option<i64> = r.try_get(17)?;
        Ok(OrderListItem {
            id: r.try_get(0)?,
            number: r.try_get(1)?,
            kind: r.try_get(2)?,
            category: r.try_get(3)?,
            grade: r.try_get(4)?,
            status: r.try_get(5)?,
            assignee: r.try_get(6)?,
            assignee_name: r.try_get(7)?,
            project: r.try_get(8)?,
            building: r.try_get(9)?,
            unit: r.try_get(10)?,
            area: r.try_get(11)?,
            created_at: r.try_get(12)?,
            next_deadline: r.try_get(13)?,
            sla: match (stage, due) {
                (Some(stage), Some(due_at)) => {
                    Some(SlaMarks { stage, half_at: r.try_get(15)?, warn_at: r.try_get(16)?, due_at })
                }
                _ => None,
            },
            rating: r.try_get(18)?,
            reopen_count: r.try_get(19)?,
            description: r.try_get(20)?,
            hold_reason: r.try_get(21)?,
            // The completion's receipt for now: `with_auto_confirm` adds the organization's wait.
            auto_confirm_at: r.try_get(22)?,
            suggestion: match r.try_get::<Option<String>, _>(23)? {
                Some(kind) => Some(Suggestion {
                    kind,
                    category: r.try_get(24)?,
                    grade: r.try_get(25)?,
                    urgent: r.try_get(26)?,
                    confidence: r.try_get::<i64, _>(27)? as f64 / 1000.0,
                    abstain: r.try_get(28)?,
                    rule: r.try_get(29)?,
                    confirmed: r.try_get::<Option<i64>, _>(30)?.is_some(),
                }),
                None => None,
            },
        })
    }

    /// Rows read by [`Self::order_item`] with `auto_confirm_at` made the instant it stands for:
    /// the completion's receipt plus the organization's closed-loop wait.
    async fn with_auto_confirm(&self, org: &str, mut rows: Vec<OrderListItem>) -> Result<Vec<OrderListItem>> {
        if rows.iter().all(|r| r.auto_confirm_at.is_none()) {
            return Ok(rows);
        }
        let days: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT {} FROM org_settings s WHERE s.org_id = $1 AND s.name = '{CLOSED_LOOP}'",
            B::json_integer("s.value", "auto_confirm_days")
        )))
        .bind(org)
        .fetch_optional(&self.pool)
        .await?
        .flatten();
        let wait = days.unwrap_or(DEFAULT_AUTO_CONFIRM_DAYS) * 86_400_000;
        for row in &mut rows {
            row.auto_confirm_at = row.auto_confirm_at.map(|since| since + wait);
        }
        Ok(rows)
    }
}

#[async_trait]
impl<B: Backend> Queue for Store<B>
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
    async fn query_orders(
        &self,
        principal: &Principal,
        filter: &OrderFilter,
        now_ms: i64,
    ) -> Result<Vec<OrderListItem>> {
        // The page is chosen on the orders table alone, then joined: the open queue in priority
        // order reads its page's index entries in order and joins those rows only.
        let order = queue_order(filter.sort.as_deref());
        let w = QueueWhere::new(principal, filter, now_ms);
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM} JOIN (
             SELECT o.id FROM {} WHERE {}
             ORDER BY {order} LIMIT $2 OFFSET {}) page ON page.id = o.id
             ORDER BY {order}",
            w.from(),
            w.sql.join(" AND "),
            w.next()
        );
        let limit = filter.limit.unwrap_or(200).clamp(1, MAX_ROWS);
        let rows = w
            .bind_all(sqlx::query(AssertSqlSafe(sql)), principal, limit)
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        let mut rows: Vec<OrderListItem> = rows.iter().map(Self::order_item).collect::<Result<_, sqlx::Error>>()?;
        // The assistant's readings are the office's working notes: owners and technicians get none.
        if !principal.role.is_staff() {
            rows.iter_mut().for_each(|r| r.suggestion = None);
        }
        self.with_auto_confirm(&principal.org, rows).await
    }

    async fn count_orders(&self, principal: &Principal, filter: &OrderFilter, now_ms: i64) -> Result<i64> {
        // $2 (the page's size) is not used by a count; it is bound all the same.
        let w = QueueWhere::new(principal, filter, now_ms);
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {} AND $2 = $2", w.from(), w.sql.join(" AND "));
        let row = w.bind_all(sqlx::query(AssertSqlSafe(sql)), principal, 0).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    async fn possible_duplicates(
        &self,
        principal: &Principal,
        location: &loopwork_sync_core::Location,
        category: &str,
        since_ms: i64,
        except: OrderId,
    ) -> Result<Vec<OrderListItem>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM}
             WHERE o.org_id = $1 AND o.project = $2 AND o.building = $3 AND o.unit = $4 AND o.category = $5
               AND o.created_at >= $6 AND o.id <> $7 AND o.is_open = TRUE
             ORDER BY o.created_at DESC LIMIT 10"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&principal.org)
            .bind(&location.project)
            .bind(&location.building)
            .bind(&location.unit)
            .bind(category)
            .bind(since_ms)
            .bind(except.to_string())
            .fetch_all(&self.pool)
            .await?;
        let rows = rows.iter().map(Self::order_item).collect::<Result<_, sqlx::Error>>()?;
        self.with_auto_confirm(&principal.org, rows).await
    }

    async fn save_caller(
        &self,
        org: &str,
        order: OrderId,
        name: Option<&str>,
        phone: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO order_callers (order_id, org_id, name, phone, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.to_string())
        .bind(org)
        .bind(name)
        .bind(phone)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn caller(&self, org: &str, order: OrderId) -> Result<Option<(Option<String>, Option<String>)>> {
        Ok(sqlx::query_as("SELECT name, phone FROM order_callers WHERE org_id = $1 AND order_id = $2")
            .bind(org)
            .bind(order.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn reserve_idempotency_key(
        &self,
        principal: &Principal,
        key: &str,
        request: &str,
        order: OrderId,
        now_ms: i64,
    ) -> Result<Option<(String, String)>> {
        let (org, user) = (principal.org.as_str(), principal.user.to_string());
        sqlx::query("DELETE FROM idempotency_keys WHERE org_id = $1 AND user_id = $2 AND key = $3 AND created_at < $4")
            .bind(org)
            .bind(user.as_str())
            .bind(key)
            .bind(now_ms - IDEMPOTENCY_WINDOW_MS)
            .execute(&self.pool)
            .await?;
        let reserved = sqlx::query(
            "INSERT INTO idempotency_keys (org_id, user_id, key, request, order_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(org)
        .bind(user.as_str())
        .bind(key)
        .bind(request)
        .bind(order.to_string())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if reserved.rows_affected() == 1 {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "SELECT request, order_id FROM idempotency_keys WHERE org_id = $1 AND user_id = $2 AND key = $3",
        )
        .bind(org)
        .bind(user.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn release_idempotency_key(&self, principal: &Principal, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE org_id = $1 AND user_id = $2 AND key = $3")
            .bind(principal.org.as_str())
            .bind(principal.user.to_string())
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The priority index holds the expressions the queue orders by: were they to differ, the
    /// open queue would sort every open order again (and stay right, only slow).
    #[test]
    fn the_priority_index_holds_the_queue_s_expressions() {
        for migration in [
            include_str!("../../../migrations/sqlite/0024_queue_priority.sql"),
            include_str!("../../../migrations/postgres/0025_queue_priority.sql"),
        ] {
            assert!(migration.contains(&format!("{} DESC", grade_rank(""))), "{}", grade_rank(""));
            assert!(migration.contains(&format!("({})", deadline_key(""))), "{}", deadline_key(""));
            assert!(migration.contains("WHERE is_open = TRUE AND quarantined_at IS NULL"));
        }
        let order = queue_order(None);
        assert!(order.contains(&format!("{} DESC, {}, o.created_at DESC, o.id", grade_rank("o."), deadline_key("o."))));
    }
}
