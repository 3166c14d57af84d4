//! Planned and predictive maintenance on the server (docs/maintenance.md): each pass of the
//! scheduler makes the work order of every plan's occurrence whose issue day has come
//! (sync-core's `maintenance`), once ([`tick`]), and raises the problem records (问题单) the
//! failure rules find over the repairs naming each asset ([`raise_problems`]); the office makes
//! a problem's preventive order ([`order_problem`]).
//!
//! - **Once across replicas:** an occurrence is reserved by its key in
//!   `maintenance_occurrences` (unique per organization) before its order is made; of several
//!   replicas, the one whose insert lands makes it. A reservation whose order was not made (the
//!   process stopped in between) is made by a later pass.
//! - **Once across restores:** the order's id is a keyed hash (the database's secret) of the
//!   organization, the key and everything the order holds ([`ServerOrder::id`]); its changes
//!   are made by a server actor derived from the id, at the start of its issue day: a replica
//!   that makes it again (a restored database that lost it) makes the same changes, byte for
//!   byte, which merge with the copy the phones push back as one. Made again with other content
//!   (the restored database lost the last service's completion), it is another order.
//! - **The next due day** counts from the last service: an order completed is recorded as done
//!   on its completion's day (China Standard Time), and the plan's next occurrence is due at
//!   most the maximum gap after it.

use jiff::civil::Date;
use loopwork_sync_core::asset::AssetType;
use loopwork_sync_core::calendar::WorkingHours;
use loopwork_sync_core::failures::{self, FailureSettings};
use loopwork_sync_core::maintenance::{self, AssetPlace, Made, Occurrence, Plan, PlanError, Schedule};
use loopwork_sync_core::work_order::{NewOrder, WorkOrder, parse_change};
use loopwork_sync_core::{DeviceId, OrderId, Role};

use crate::AppState;
use crate::error::ApiError;
use crate::replication::Principal;
use crate::store::{AssetRecord, OccurrenceRecord, PlanRecord, ProblemRecord, RuledAsset};

/// A reservation older than this whose order is not made was left by a stopped process.
const ABANDONED_AFTER_MS: i64 = 5 * 60_000;
/// At most this many abandoned reservations, and completions, are taken per pass.
const PER_PASS: i64 = 500;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Occurrences whose work orders this pass made (or found made by a process that stopped
    /// before it recorded so).
    pub made: usize,
    /// Occurrences found done.
    pub done: usize,
    /// Plans whose rule no longer reads (left alone, logged).
    pub unreadable: usize,
    /// Occurrences whose order could not be made (logged; retaken after [`ABANDONED_AFTER_MS`]).
    pub failed: usize,
}

/// One pass at `now_ms`: records the completions of preventive orders, makes the orders of
/// reservations left unmade, then those of every occurrence issued by today. An order that
/// cannot be made is logged and left for a later pass; the others are made.
pub async fn tick(state: &AppState, now_ms: i64) -> Result<Pass, ApiError> {
    let mut pass = Pass::default();
    for (org, key, completed_at) in state.db.completed_occurrences(PER_PASS).await? {
        let done = loopwork_sync_core::china_time::date(completed_at).to_string();
        state.db.occurrence_done(&org, &key, &done).await?;
        pass.done += 1;
    }
    let plans = state.db.scheduled_plans().await?;
    let calendar = WorkingHours::china_office();
    let today = loopwork_sync_core::china_time::date(now_ms);
    let secret = state.db.receipt_secret().to_owned();
    let server = state.db.server_identity().await?.user;
    for abandoned in state.db.unmade_occurrences(now_ms - ABANDONED_AFTER_MS, PER_PASS).await? {
        let plan = plans.iter().find(|(org, _, plan)| *org == abandoned.org && plan.id == abandoned.plan_id);
        let (Some((_, asset, plan)), Ok(occurrence)) = (plan, occurrence_of_record(&abandoned)) else {
            // Its plan was removed before its order was made: nothing to make, ever.
            state.db.forget_occurrence(&abandoned.org, &abandoned.key).await?;
            continue;
        };
        if !state.db.retake_occurrence(&abandoned.org, &abandoned.key, now_ms - ABANDONED_AFTER_MS, now_ms).await? {
            continue;
        }
        let order = occurrence_order(asset, plan, &occurrence, &calendar, server);
        made(state, &abandoned.org, &secret, &order, &abandoned.key, now_ms, &mut pass).await?;
    }
    for (org, asset, plan) in &plans {
        let Ok(schedule) = schedule_of(plan) else {
            tracing::warn!(plan = %plan.id, "a maintenance plan's rule does not read; no order is made of it");
            pass.unreadable += 1;
            continue;
        };
        let last = state.db.last_occurrence(org, &plan.id).await?;
        let last = last.as_ref().and_then(|o| made_of(o).ok());
        for occurrence in schedule.to_issue(today, last.as_ref(), None, &calendar) {
            let order = occurrence_order(asset, plan, &occurrence, &calendar, server);
            let record = OccurrenceRecord {
                org: org.clone(),
                key: occurrence.key.clone(),
                plan_id: plan.id.clone(),
                asset_id: asset.id.clone(),
                nominal: occurrence.nominal.to_string(),
                due: occurrence.due.to_string(),
                issue_on: occurrence.issue_on.to_string(),
                order_id: order.id(&secret, org).to_string(),
                made_at: None,
                done: None,
            };
            if !state.db.reserve_occurrence(&record, now_ms).await? {
                continue;
            }
            made(state, org, &secret, &order, &occurrence.key, now_ms, &mut pass).await?;
        }
    }
    Ok(pass)
}

/// Makes a reserved occurrence's order and records it made (with its id); a failure is logged
/// and counted, and the reservation left for a later pass.
async fn made(
    state: &AppState,
    org: &str,
    secret: &str,
    order: &ServerOrder<'_>,
    key: &str,
    now_ms: i64,
    pass: &mut Pass,
) -> Result<(), ApiError> {
    match make_order(state, org, secret, order, now_ms).await {
        Ok(id) => {
            state.db.occurrence_made(org, key, &id.to_string(), now_ms).await?;
            pass.made += 1;
        }
        Err(e) => {
            tracing::error!(
                key,
                code = e.code,
                "a maintenance plan's order could not be made; a later pass tries again"
            );
            pass.failed += 1;
        }
    }
    Ok(())
}

/// How far back the failure rules read repairs, beyond their longest window.
const REPAIRS_MARGIN_MS: i64 = 31 * 86_400_000;

/// Raises the problem records (问题单) sync-core's failure rules find at `now_ms` in every
/// organization with assets, under its `failure-rules` setting, over the repairs naming each
/// asset (docs/maintenance.md). Each is stored once whichever replica raises it first (its id
/// is a hash of the evidence). Returns how many this call stored.
pub async fn raise_problems(state: &AppState, now_ms: i64) -> Result<usize, ApiError> {
    let mut raised = 0;
    for org in state.db.asset_orgs().await? {
        match raise_in(state, &org, now_ms).await {
            Ok(n) => raised += n,
            // One organization's trouble does not stop the others'.
            Err(e) => tracing::warn!(
                code = e.code,
                "an organization's repeated failures could not be read; the next pass tries again"
            ),
        }
    }
    Ok(raised)
}

/// [`raise_problems`] in one organization.
async fn raise_in(state: &AppState, org: &str, now_ms: i64) -> Result<usize, ApiError> {
    let mut raised = 0;
    let settings = crate::settings::read::<FailureSettings>(&*state.db, org).await?;
    let rules = settings.rules();
    let longest = rules.lookbacks_ms.iter().copied().chain([rules.repeat_window_ms]).max().unwrap_or(0);
    let assets: Vec<failures::Asset> = state.db.ruled_assets(org).await?.into_iter().map(observed).collect();
    let repairs: Vec<failures::Failure> = state
        .db
        .asset_repairs(org, now_ms - longest - rules.same_fault_ms - REPAIRS_MARGIN_MS)
        .await?
        .into_iter()
        .map(|r| failures::Failure {
            order: r.order,
            asset: r.asset,
            reported_ms: r.reported_at,
            restored_ms: r.completed_at,
        })
        .collect();
    if repairs.is_empty() {
        return Ok(0);
    }
    // The rules read only which asset and when, for the cooldown: each asset's latest.
    let before: Vec<failures::Problem> = state
        .db
        .last_problems(org)
        .await?
        .into_iter()
        .map(|(asset, raised_ms)| failures::Problem {
            asset,
            raised_ms,
            reason: failures::Reason::Repeated { count: 0, window_days: 0, p_value: 1.0 },
            orders: Vec::new(),
        })
        .collect();
    for problem in failures::detect(&assets, &repairs, &before, now_ms, &rules) {
        let (reason, count, days, p_value, expected) = match problem.reason {
            failures::Reason::Repeated { count, window_days, p_value } => {
                ("repeated", count, window_days, p_value, None)
            }
            failures::Reason::Outlier { count, days, expected, p_value } => {
                ("outlier", count, days, p_value, Some(expected))
            }
        };
        let record = ProblemRecord {
            id: problem_id(org, &problem),
            asset_id: problem.asset.clone(),
            raised_at: now_ms,
            reason: reason.to_owned(),
            count: i64::from(count),
            days,
            p_value,
            expected,
            orders: problem.orders.clone(),
            status: "open".into(),
            order_id: None,
            closed_at: None,
            closed_by: None,
        };
        if state.db.raise_problem(org, &record).await? {
            raised += 1;
        }
    }
    Ok(raised)
}

/// An asset as the failure rules see it: in service from its registration (repairs name it only
/// once it is registered), or from its installation if later.
pub fn observed(asset: RuledAsset) -> failures::Asset {
    let installed = asset.installed_on.as_deref().and_then(|d| d.parse::<Date>().ok()).and_then(|d| {
        // China Standard Time, as every civil date of the register.
        d.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))).ok().map(|at| at.timestamp().as_millisecond())
    });
    let in_service_ms = installed.map_or(asset.created_at, |at| at.max(asset.created_at));
    failures::Asset { id: asset.id, asset_type: asset.asset_type, in_service_ms }
}

/// A problem's id: the organization, the asset and the last order among its evidence.
fn problem_id(org: &str, problem: &failures::Problem) -> String {
    use sha2::{Digest, Sha256};
    let last = problem.orders.last().map(String::as_str).unwrap_or("");
    let digest = Sha256::new()
        .chain_update(b"loopwork problem\0")
        .chain_update(org.as_bytes())
        .chain_update([0])
        .chain_update(problem.asset.as_bytes())
        .chain_update([0])
        .chain_update(last.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// The preventive order a problem proposes, registered at `at_ms` (when the office asked for
/// it): by the server, its id a keyed hash of the problem and its content.
fn problem_order<'a>(
    server: loopwork_sync_core::UserId,
    problem: &ProblemRecord,
    asset: &'a AssetRecord,
    at_ms: i64,
) -> ServerOrder<'a> {
    ServerOrder {
        source: format!("problem:{}", problem.id),
        new: maintenance::problem_order(&place_of(asset), problem.count, problem.days, server),
        items: Vec::new(),
        asset: &asset.id,
        at_ms,
    }
}

/// The id of the preventive order a problem proposes, registered at `at_ms`.
pub async fn problem_order_id(
    state: &AppState,
    org: &str,
    problem: &ProblemRecord,
    asset: &AssetRecord,
    at_ms: i64,
) -> Result<OrderId, ApiError> {
    let server = state.db.server_identity().await?.user;
    Ok(problem_order(server, problem, asset, at_ms).id(state.db.receipt_secret(), org))
}

/// Makes the preventive order a problem proposes, registered at `at_ms` (the same id and
/// changes as [`problem_order_id`] gives for it), and returns its id.
pub async fn order_problem(
    state: &AppState,
    org: &str,
    problem: &ProblemRecord,
    asset: &AssetRecord,
    at_ms: i64,
    now_ms: i64,
) -> Result<OrderId, ApiError> {
    let server = state.db.server_identity().await?.user;
    let order = problem_order(server, problem, asset, at_ms);
    make_order(state, org, state.db.receipt_secret(), &order, now_ms).await
}

/// The schedule of a stored plan.
pub fn schedule_of(plan: &PlanRecord) -> Result<Schedule, PlanError> {
    let starts = plan.starts_on.parse::<Date>().map_err(|e| PlanError::Rule(e.to_string()))?;
    Schedule::new(Plan {
        id: plan.id.clone(),
        starts,
        rule: plan.rule.clone(),
        max_gap_days: u16::try_from(plan.max_gap_days).unwrap_or(u16::MAX),
        lead_days: u16::try_from(plan.lead_days).unwrap_or(u16::MAX),
    })
}

/// A stored occurrence as the plan's rules read it.
pub fn made_of(record: &OccurrenceRecord) -> Result<Made, jiff::Error> {
    Ok(Made {
        nominal: record.nominal.parse()?,
        due: record.due.parse()?,
        done: record.done.as_deref().map(str::parse).transpose()?,
    })
}

fn occurrence_of_record(record: &OccurrenceRecord) -> Result<Occurrence, jiff::Error> {
    Ok(Occurrence {
        key: record.key.clone(),
        nominal: record.nominal.parse()?,
        due: record.due.parse()?,
        issue_on: record.issue_on.parse()?,
    })
}

/// An occurrence's work order (see the module's documentation).
fn occurrence_order<'a>(
    asset: &'a AssetRecord,
    plan: &PlanRecord,
    occurrence: &Occurrence,
    calendar: &WorkingHours,
    server: loopwork_sync_core::UserId,
) -> ServerOrder<'a> {
    ServerOrder {
        source: occurrence.key.clone(),
        new: maintenance::work_order(&place_of(asset), occurrence, &plan.checklist, server),
        items: maintenance::checklist_items(occurrence, &plan.checklist),
        asset: &asset.id,
        at_ms: maintenance::issued_at_ms(occurrence, &calendar.zone),
    }
}

/// An asset as its orders name it.
fn place_of(asset: &AssetRecord) -> AssetPlace<'_> {
    AssetPlace {
        name: &asset.name,
        asset_type: AssetType::from_code(&asset.asset_type).unwrap_or(AssetType::Other),
        project: &asset.project,
        building: asset.building.as_deref(),
        place: &asset.place,
    }
}

/// An order the server makes of its own accord: a plan's service, a problem's preventive work.
struct ServerOrder<'a> {
    /// What it is made of: an occurrence's key, or `problem:{id}`.
    source: String,
    new: NewOrder,
    /// Checklist items (id, label), written with the order.
    items: Vec<(String, String)>,
    /// The asset the order names.
    asset: &'a str,
    /// When it is registered: fixed by what it is, not by when it is made.
    at_ms: i64,
}

/// The version of what [`ServerOrder::id`] hashes: a later layout of the order's changes takes
/// another, so that a server of another version never makes other bytes under the same actor.
const SERVER_ORDER_FORMAT: &[u8] = b"loopwork server order v1";

impl ServerOrder<'_> {
    /// The order's id: a keyed hash, under the database's secret (which no device knows and a
    /// restore keeps), of the organization, its source and everything its changes hold. Every
    /// replica makes the same order; no device can compute the id ahead and take it; and made
    /// again with other content (a restored database that lost a service's completion computes
    /// another due day), it is another order, never a second creation of this one (which every
    /// phone holding the first would push back in vain).
    fn id(&self, secret: &str, org: &str) -> OrderId {
        use sha2::{Digest, Sha256};
        let new = &self.new;
        let schema = loopwork_sync_core::work_order::SCHEMA_VERSION.to_string();
        let mut hash = Sha256::new().chain_update(SERVER_ORDER_FORMAT).chain_update(secret.as_bytes());
        for part in [
            schema.as_str(),
            org,
            &self.source,
            new.kind.code(),
            &new.category.code(),
            new.grade.code(),
            new.channel.code(),
            &new.location.project,
            new.location.building.as_deref().unwrap_or(""),
            new.location.unit.as_deref().unwrap_or(""),
            new.location.area.as_deref().unwrap_or(""),
            &new.description,
            &new.reporter.to_string(),
            self.asset,
            &self.at_ms.to_string(),
        ]
        .into_iter()
        .chain(self.items.iter().flat_map(|(id, label)| [id.as_str(), label.as_str()]))
        {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        OrderId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// The server actor that makes an order: one of the database's server actors (recognised from
/// its secret), whose random half is a keyed hash of the order's id (which covers everything
/// the order holds): the same order is made by the same actor, another by another.
fn actor_of(secret: &str, id: OrderId) -> DeviceId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(SERVER_ORDER_FORMAT)
        .chain_update(b" actor\0")
        .chain_update(secret.as_bytes())
        .chain_update(id.as_uuid().as_bytes())
        .finalize();
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&digest[..16]);
    crate::store::server_actor(secret, Some(raw))
}

/// Makes a server order through the writer: its registration, then its checklist and asset in
/// a second change, both by the actor [`actor_of`] derives, so that making it again (another
/// replica, a restored database) makes the same changes. An order already stored under its id
/// (which only the server can compute) is this one, left as it is. Returns its id.
async fn make_order(
    state: &AppState,
    org: &str,
    secret: &str,
    made: &ServerOrder<'_>,
    now_ms: i64,
) -> Result<OrderId, ApiError> {
    let id = made.id(secret, org);
    if state.db.order_stored(org, &id.to_string()).await? {
        return Ok(id);
    }
    let server = state.db.server_identity().await?;
    let device = actor_of(secret, id);
    let principal =
        Principal { user: server.user, role: Role::System, org: org.to_owned(), device, project_bound: false };
    let mut order =
        WorkOrder::create_with_id(id, &made.new, &principal.identity(), made.at_ms).map_err(ApiError::from)?;
    if !made.items.is_empty() {
        order.add_checklist_items(&made.items, made.at_ms).map_err(ApiError::from)?;
    }
    order.set_asset(Some(made.asset), made.at_ms).map_err(ApiError::from)?;
    let changes = order
        .automerge()
        .get_changes(&[])
        .into_iter()
        .map(|c| parse_change(c.raw_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::internal())?;
    let outcome = match state.db.push(&principal, &[(id, changes)], &[], now_ms).await {
        Ok(outcome) => outcome,
        // Made meanwhile by another process (a reservation retaken from a slow one).
        Err(_) if state.db.order_stored(org, &id.to_string()).await? => return Ok(id),
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = outcome.rejected.first() {
        tracing::error!(%id, reason, "the server's own order was compensated");
    }
    Ok(id)
}
