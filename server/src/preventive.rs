//! The preventive maintenance scheduler (docs/maintenance.md): each pass makes the work order of
//! every plan's occurrence whose issue day has come (sync-core's `maintenance`), once.
//!
//! - **Once across replicas:** an occurrence is reserved by its key in
//!   `maintenance_occurrences` (unique per organization) before its order is made; of several
//!   replicas, the one whose insert lands makes it. A reservation whose order was not made (the
//!   process stopped in between) is made by a later pass, under the same id.
//! - **Once across restores:** the order's id is a hash of the organization and the key, and
//!   its creating change is made by a server actor derived from the database's secret and the
//!   order's content, at the start of its issue day: a replica that makes it again (a restored
//!   database that lost it) makes the same change, byte for byte, which merges with the copy
//!   the phones push back as one.
//! - **The next due day** counts from the last service: an order completed is recorded as done
//!   on its completion's day (China Standard Time), and the plan's next occurrence is due at
//!   most the maximum gap after it.

use jiff::civil::Date;
use loopwork_sync_core::asset::AssetType;
use loopwork_sync_core::calendar::WorkingHours;
use loopwork_sync_core::maintenance::{self, AssetPlace, Made, Occurrence, Plan, PlanError, Schedule};
use loopwork_sync_core::work_order::{NewOrder, WorkOrder, parse_change};
use loopwork_sync_core::{DeviceId, OrderId, Role};

use crate::AppState;
use crate::error::ApiError;
use crate::replication::Principal;
use crate::store::{AssetRecord, OccurrenceRecord, PlanRecord};

/// A reservation older than this whose order is not made was left by a stopped process.
const ABANDONED_AFTER_MS: i64 = 5 * 60_000;
/// At most this many abandoned reservations, and completions, are taken per pass.
const PER_PASS: i64 = 500;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Work orders made.
    pub made: usize,
    /// Occurrences found done.
    pub done: usize,
    /// Plans whose rule no longer reads (left alone, logged).
    pub unreadable: usize,
}

/// One pass at `now_ms`: records the completions of preventive orders, makes the orders of
/// reservations left unmade, then those of every occurrence issued by today.
pub async fn tick(state: &AppState, now_ms: i64) -> Result<Pass, ApiError> {
    let mut pass = Pass::default();
    for (occurrence, completed_at) in state.db.completed_occurrences(PER_PASS).await? {
        let done = loopwork_sync_core::china_time::date(completed_at).to_string();
        state.db.occurrence_done(&occurrence.org, &occurrence.key, &done).await?;
        pass.done += 1;
    }
    let plans = state.db.scheduled_plans().await?;
    let calendar = WorkingHours::china_office();
    let today = loopwork_sync_core::china_time::date(now_ms);
    for abandoned in state.db.unmade_occurrences(now_ms - ABANDONED_AFTER_MS, PER_PASS).await? {
        let Some((_, asset, plan)) =
            plans.iter().find(|(org, _, plan)| *org == abandoned.org && plan.id == abandoned.plan_id)
        else {
            // Its plan was removed before its order was made: nothing to make.
            continue;
        };
        let Ok(occurrence) = occurrence_of_record(&abandoned) else { continue };
        if !state.db.retake_occurrence(&abandoned.org, &abandoned.key, now_ms - ABANDONED_AFTER_MS, now_ms).await? {
            continue;
        }
        make(state, &abandoned.org, asset, plan, &occurrence, &calendar, now_ms).await?;
        state.db.occurrence_made(&abandoned.org, &abandoned.key, now_ms).await?;
        pass.made += 1;
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
            let record = OccurrenceRecord {
                org: org.clone(),
                key: occurrence.key.clone(),
                plan_id: plan.id.clone(),
                asset_id: asset.id.clone(),
                nominal: occurrence.nominal.to_string(),
                due: occurrence.due.to_string(),
                issue_on: occurrence.issue_on.to_string(),
                order_id: maintenance::order_id(org, &occurrence.key).to_string(),
                made_at: None,
                done: None,
            };
            if !state.db.reserve_occurrence(&record, now_ms).await? {
                continue;
            }
            make(state, org, asset, plan, &occurrence, &calendar, now_ms).await?;
            state.db.occurrence_made(org, &occurrence.key, now_ms).await?;
            pass.made += 1;
        }
    }
    Ok(pass)
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

/// Makes an occurrence's work order through the writer, as the server (see the module's
/// documentation); an order already stored is left as it is.
async fn make(
    state: &AppState,
    org: &str,
    asset: &AssetRecord,
    plan: &PlanRecord,
    occurrence: &Occurrence,
    calendar: &WorkingHours,
    now_ms: i64,
) -> Result<(), ApiError> {
    let id = maintenance::order_id(org, &occurrence.key);
    let server = state.db.server_identity().await?;
    let place = AssetPlace {
        name: &asset.name,
        asset_type: AssetType::from_code(&asset.asset_type).unwrap_or(AssetType::Other),
        project: &asset.project,
        building: asset.building.as_deref(),
        place: &asset.place,
    };
    let new = maintenance::work_order(&place, occurrence, &plan.checklist, server.user);
    let at_ms = maintenance::issued_at_ms(occurrence, &calendar.zone);
    let device = actor_of(state.db.receipt_secret(), org, id, &new, &plan.checklist, at_ms);
    let principal =
        Principal { user: server.user, role: Role::System, org: org.to_owned(), device, project_bound: false };
    let mut order = WorkOrder::create_with_id(id, &new, &principal.identity(), at_ms).map_err(ApiError::from)?;
    let items = maintenance::checklist_items(occurrence, &plan.checklist);
    if !items.is_empty() {
        order.add_checklist_items(&items, at_ms).map_err(ApiError::from)?;
    }
    let changes = order
        .automerge()
        .get_changes(&[])
        .into_iter()
        .map(|c| parse_change(c.raw_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::internal())?;
    // Made already: by a process that stopped before it recorded so, or by one that was slow
    // past `ABANDONED_AFTER_MS` (the order is the same either way).
    if state.db.order_stored(org, &id.to_string()).await? {
        return Ok(());
    }
    let outcome = match state.db.push(&principal, &[(id, changes)], &[], now_ms).await {
        Ok(outcome) => outcome,
        Err(_) if state.db.order_stored(org, &id.to_string()).await? => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = outcome.rejected.first() {
        tracing::error!(%id, reason, "the server's own preventive order was compensated");
    }
    Ok(())
}

/// The server actor that makes an occurrence's order: one of the database's server actors
/// (recognised from its secret), whose random half is a keyed hash of the order's id and
/// everything its creating change holds, so that the same order is made by the same actor and
/// a changed one by another.
fn actor_of(secret: &str, org: &str, id: OrderId, new: &NewOrder, plan_items: &[String], at_ms: i64) -> DeviceId {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new()
        .chain_update(b"loopwork preventive order\0")
        .chain_update(secret.as_bytes())
        .chain_update([0])
        .chain_update(org.as_bytes())
        .chain_update([0])
        .chain_update(id.to_string().as_bytes());
    for part in [
        new.kind.code(),
        &new.category.code(),
        new.grade.code(),
        new.channel.code(),
        &new.location.project,
        new.location.building.as_deref().unwrap_or(""),
        new.location.area.as_deref().unwrap_or(""),
        &new.description,
        &new.reporter.to_string(),
        &at_ms.to_string(),
    ]
    .into_iter()
    .chain(plan_items.iter().map(String::as_str))
    {
        hash.update([0]);
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&digest[..16]);
    crate::store::server_actor(secret, Some(raw))
}
