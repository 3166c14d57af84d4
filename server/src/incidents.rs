//! Complaint surges answered as incidents (docs/incidents.md), as the server runs them. After a
//! scan reads new orders (`escalation::scan`, about a second after they arrive), sync-core's
//! surge `Detector`, resumed from storage, sees them in order of creation, and what it did (an
//! incident opened, grown, widened, merged or raised a level) is written as one plan in one
//! transaction under the organization's lock. Another process that saw the same orders first
//! wins: this plan is dropped, and two replicas never open the same incident twice.
//!
//! The baseline is relearned per organization once a day, from ten weeks of its orders outside
//! incidents (fewer when its first order is more recent), on the working calendar of its SLA
//! book (China's holidays and 调休 by default).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use loopwork_sync_core::calendar::Calendar;
use loopwork_sync_core::calendar::WorkingHours;
use loopwork_sync_core::surge::{Baseline, Detector, Incident, Node, Report, SurgeRules, Thresholds};
use loopwork_sync_core::{Location, Role, surge};

use crate::AppState;
use crate::error::ApiError;
use crate::settings::{self, Readers, Setting};
use crate::store::{IncidentAlert, IncidentWrite, NewMember, SurgeOrder, SurgePlan, SurgeRow};

/// How far back a new order's creation may be and still be news: older ones (an offline phone's
/// week-old report, orders from before an upgrade) are history, not a surge.
pub const FRESH_MS: i64 = 2 * 3_600_000;
/// How much history the baseline learns from.
const HISTORY_MS: i64 = 70 * 86_400_000;
const DAY_MS: i64 = 86_400_000;

impl Setting for SurgeRules {
    const NAME: &'static str = "surge-rules";
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the surge rules", "只有管理员可以修改事件识别规则");

    fn seeded() -> Self {
        SurgeRules::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        // The rules' own check (the inherent one), not this trait's.
        SurgeRules::check(&self)
            .map_err(|e| ApiError::invalid("invalid_surge_rules", e.to_string(), "事件识别规则不合规"))?;
        Ok(self)
    }
}

/// How many times a scan makes its plan again when another write made it stale.
const ATTEMPTS: usize = 8;

/// Each organization's baseline, learned once a (China) day, and the critical counts of each
/// p-value in use.
#[derive(Debug, Default)]
pub struct Surges {
    baselines: Mutex<HashMap<String, (i64, Arc<Baseline>)>>,
    thresholds: Mutex<HashMap<u64, Thresholds>>,
}

impl Surges {
    /// Forgets an organization's baseline: it is relearned at the next scan (after its estate
    /// register or its calendars changed).
    pub fn forget(&self, org: &str) {
        self.baselines.lock().unwrap_or_else(|p| p.into_inner()).remove(org);
    }

    fn thresholds(&self, max_p_value: f64) -> Thresholds {
        let mut cache = self.thresholds.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(max_p_value.to_bits()).or_insert_with(|| Thresholds::new(max_p_value)).clone()
    }
}

/// The household of an order: its unit; for a common area, the owner who reported it, or the
/// call itself when the desk registered it (each caller a household: the desk's reporter is the
/// dispatcher, and callers' phone numbers are not kept here).
fn household(order: &SurgeOrder) -> String {
    match (&order.building, &order.unit) {
        (Some(b), Some(u)) => format!("{b}/{u}"),
        (None, Some(u)) => u.clone(),
        _ if order.by_owner => format!("user:{}", order.reporter),
        _ => format!("order:{}", order.order),
    }
}

/// Whether the assistant's rule for an order puts lives at risk (a level I incident).
fn endangers_life(rule: Option<&str>) -> bool {
    rule.is_some_and(|code| loopwork_triage::rules::LIFE_SAFETY.iter().any(|r| r.code == code && r.life))
}

fn location(order: &SurgeOrder) -> Location {
    Location {
        project: order.project.clone(),
        building: order.building.clone(),
        unit: order.unit.clone(),
        area: order.area.clone(),
    }
}

fn report_of(order: &SurgeOrder, at_ms: i64) -> Report {
    Report {
        order: order.order.clone(),
        at_ms,
        household: household(order),
        node: Node::of(&location(order)),
        category: order.category.clone(),
        life_safety: endangers_life(order.rule.as_deref()),
    }
}

fn row_of(report: &Report) -> SurgeRow {
    SurgeRow {
        order: report.order.clone(),
        at_ms: report.at_ms,
        household: report.household.clone(),
        project: report.node.project.clone(),
        building: report.node.building.clone(),
        riser: report.node.riser.clone(),
        category: report.category.clone(),
        life_safety: report.life_safety,
    }
}

/// The working calendar of an organization's SLA book (its first), else China's office hours.
async fn calendar(state: &AppState, org: &str) -> Result<WorkingHours, ApiError> {
    let book = settings::sla_book(&*state.db, org).await?;
    Ok(book
        .calendars
        .values()
        .find_map(|c| match c {
            Calendar::Working(hours) => Some(hours.clone()),
            Calendar::AlwaysOpen => None,
        })
        .unwrap_or_else(WorkingHours::china_office))
}

async fn baseline(state: &AppState, org: &str, now_ms: i64) -> Result<Arc<Baseline>, ApiError> {
    // China Standard Time's day: relearned after midnight.
    let day = (now_ms + 8 * 3_600_000).div_euclid(DAY_MS);
    if let Some((learned, baseline)) = state.surges.baselines.lock().unwrap_or_else(|p| p.into_inner()).get(org)
        && *learned == day
    {
        return Ok(baseline.clone());
    }
    let midnight = day * DAY_MS - 8 * 3_600_000;
    let calendar = calendar(state, org).await?;
    // The history starts with the organization's first order: the weeks before it were not
    // weeks when nothing happened (they would make a new organization's first weeks, and the
    // kinds of day it has not lived yet, look quieter than they are).
    let from =
        state.db.first_order_at(org).await?.map_or(midnight, |first| first.clamp(midnight - HISTORY_MS, midnight));
    let history = state.db.surge_history(org, from, midnight).await?;
    let reports: Vec<Report> = history.iter().map(|o| report_of(o, o.created_at)).collect();
    let units = state.db.estate_unit_codes(org).await?;
    let units = units.iter().map(|(p, b, u)| Node::of(&Location::unit(p, b, u)));
    let learned = Arc::new(Baseline::learn(&calendar, units, &reports, from, midnight));
    state.surges.baselines.lock().unwrap_or_else(|p| p.into_inner()).insert(org.to_owned(), (day, learned.clone()));
    Ok(learned)
}

/// Whether an order an incident holds is its member (not a suggestion, nor dismissed): only
/// members count towards its households, buildings, life safety and level.
fn counts(member: &crate::store::MemberRow) -> bool {
    member.standing == "member"
}

/// The detector's view of an incident stored open.
fn incident_of(record: &crate::store::IncidentRecord, members: &[crate::store::MemberRow]) -> Incident {
    let level = surge::Level::from_code(&record.level).unwrap_or(surge::Level::Four);
    Incident {
        id: record.number as u64,
        node: Node { project: record.project.clone(), building: record.building.clone(), riser: record.riser.clone() },
        category: record.category.clone(),
        level,
        opened_ms: record.opened_at,
        first_report_ms: record.first_report_at,
        // Every order it holds (a suggestion or a dismissed one too: it is not taken again, nor
        // counted towards another surge); households, buildings and life safety of its members.
        members: members.iter().map(|m| m.order.clone()).collect(),
        households: members.iter().filter(|m| counts(m)).map(|m| m.household.clone()).collect(),
        buildings: members.iter().filter(|m| counts(m)).filter_map(|m| m.building.clone()).collect(),
        score: record.score_milli as f64 / 1000.0,
        life_safety: members.iter().any(|m| counts(m) && m.life_safety),
        resolved: false,
    }
}

/// Scans an organization's new orders for surges; how many incidents it opened or changed.
pub async fn observe(state: &AppState, org: &str, orders: &[String], now_ms: i64) -> Result<usize, ApiError> {
    if orders.is_empty() {
        return Ok(0);
    }
    let rules = settings::read::<SurgeRules>(&*state.db, org).await?;
    let thresholds = state.surges.thresholds(rules.max_p_value);
    let baseline = baseline(state, org, now_ms).await?;
    let window_ms = i64::from(rules.windows_minutes.iter().copied().max().unwrap_or(60)) * 60_000;
    // A plan another write made stale (another process's, a resolve) is made again from what
    // that wrote, after a pause that grows and differs between processes (so that two replicas
    // scanning the same organization at once stop meeting).
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
            tokio::time::sleep(std::time::Duration::from_millis(10 * attempt as u64 + jitter)).await;
        }
        let stored = state.db.surge_state(org, orders, now_ms - window_ms).await?;
        let fresh: Vec<&SurgeOrder> = stored.fresh.iter().filter(|o| o.created_at >= now_ms - FRESH_MS).collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let recent: Vec<Report> = stored.recent.iter().map(row_report).collect();
        let before: Vec<Incident> = stored.open.iter().map(|(i, m)| incident_of(i, m)).collect();
        let last = recent.last().map_or(i64::MIN, |r| r.at_ms);
        let mut detector = Detector::with_thresholds(rules.clone(), thresholds.clone()).resume(
            before.clone(),
            recent.clone(),
            stored.next_number as u64,
        );
        // What is known of every order an incident holds, and which are not members.
        let mut known: HashMap<String, (String, Option<String>, bool)> = HashMap::new();
        let mut excluded: HashSet<String> = HashSet::new();
        for row in stored.open.iter().flat_map(|(_, members)| members) {
            known.insert(row.order.clone(), (row.household.clone(), row.building.clone(), row.life_safety));
            if !counts(row) {
                excluded.insert(row.order.clone());
                detector.hold_uncertain(&row.order);
            }
        }
        // In order of creation, never after now (a device's clock is a claim), never before
        // what was seen already (another process's now may be ahead of this one's).
        let mut reports: Vec<Report> = fresh.iter().map(|o| report_of(o, o.created_at.min(now_ms).max(last))).collect();
        reports.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.order.cmp(&b.order)));
        for r in recent.iter().chain(&reports) {
            known.insert(r.order.clone(), (r.household.clone(), r.node.building.clone(), r.life_safety));
        }
        // A later join the detector is not sure enough of is suggested to the dispatcher (at 1,
        // every later join).
        let mut suggested = HashSet::new();
        for report in &reports {
            if let surge::Outcome::Joined { confidence, .. } = detector.observe(report.clone(), &baseline)
                && (confidence < rules.auto_join_confidence || rules.auto_join_confidence >= 1.0)
            {
                suggested.insert(report.order.clone());
                detector.hold_uncertain(&report.order);
            }
        }
        excluded.extend(suggested.iter().cloned());
        let after = counted(detector.incidents(), &before, &excluded, &known, &rules, &baseline);
        let mut plan = plan(&before, &after, &reports, &recent, &suggested, stored.revision);
        plan.now_ms = now_ms;
        respond(&mut plan, &before, &after, &rules);
        let changed = plan.incidents.len();
        if state.db.apply_surges(org, &plan).await? {
            if changed > 0 {
                let _ = state.notified.send(org.to_owned());
            }
            // The members' documents say which incident they joined (for the phones). Written
            // after the plan: a failure leaves the desk right and those phones without the
            // grouping, logged.
            let marks = marks(&plan, &before);
            if let Err(e) = state.db.mark_incidents(org, &marks, now_ms).await {
                tracing::warn!(orders = marks.len(), error = %e, "members' documents not marked with their incident");
            }
            return Ok(changed);
        }
    }
    tracing::warn!(orders = orders.len(), "surge scan gave up: its plan was made stale {ATTEMPTS} times");
    Ok(0)
}

/// The incidents as they count: the households, buildings and life safety of their members only
/// (not the orders suggested to them, nor those dismissed), and the level that calls for (levels
/// only rise). The detector holds suggestions like members; the response and the desk do not.
fn counted(
    after: &[Incident],
    before: &[Incident],
    excluded: &HashSet<String>,
    known: &HashMap<String, (String, Option<String>, bool)>,
    rules: &SurgeRules,
    baseline: &Baseline,
) -> Vec<Incident> {
    after
        .iter()
        .map(|incident| {
            let members: Vec<&(String, Option<String>, bool)> =
                incident.members.iter().filter(|m| !excluded.contains(*m)).filter_map(|m| known.get(m)).collect();
            let mut view = incident.clone();
            view.households = members.iter().map(|(household, _, _)| household.clone()).collect();
            view.buildings = members.iter().filter_map(|(_, building, _)| building.clone()).collect();
            view.life_safety = members.iter().any(|(_, _, life)| *life);
            let floor = before.iter().find(|b| b.id == incident.id).map_or(surge::Level::Four, |b| b.level);
            view.level = floor.max(rules.grade(&view, baseline.buildings(&view.node.project).max(1)));
            view
        })
        .collect()
}

/// Whose documents must say their incident after a plan: the new members (not suggestions), and
/// the members of incidents merged away (the store reads which incident each belongs to, as a
/// member, when it writes).
fn marks(plan: &SurgePlan, before: &[Incident]) -> Vec<loopwork_sync_core::OrderId> {
    let new = plan.members.iter().filter(|m| !m.suggested).map(|m| &m.order);
    let moved = plan
        .merged
        .iter()
        .flat_map(|(gone, _)| before.iter().filter(move |b| b.id as i64 == *gone))
        .flat_map(|b| &b.members);
    new.chain(moved).filter_map(|order| order.parse().ok()).collect()
}

/// The graded response: an incident new, or risen to a level it had not reached, tells that
/// level's office roles (docs/incidents.md); the store names its first member.
fn respond(plan: &mut SurgePlan, before: &[Incident], after: &[Incident], rules: &SurgeRules) {
    for write in &mut plan.incidents {
        let Some(incident) = after.iter().find(|a| a.id as i64 == write.number) else { continue };
        let risen = before.iter().find(|b| b.id == incident.id).is_none_or(|b| b.level != incident.level);
        if !risen {
            continue;
        }
        write.alert = Some(IncidentAlert {
            roles: rules.response.of(incident.level).notify.iter().filter_map(|r| Role::from_code(r).ok()).collect(),
            households: incident.households.len() as i64,
        });
    }
}

/// Of the orders a scan looks at, those whose deadlines their incident covers: members of an
/// open incident, but its first, at a level whose response covers members (docs/incidents.md).
pub async fn covered(state: &AppState, due: &[crate::store::CheckDue]) -> Result<HashSet<String>, ApiError> {
    let mut by_org: HashMap<&str, Vec<String>> = HashMap::new();
    for d in due {
        by_org.entry(d.org.as_str()).or_default().push(d.order.to_string());
    }
    let mut covered = HashSet::new();
    for (org, orders) in by_org {
        let members = state.db.open_memberships(org, &orders).await?;
        if members.is_empty() {
            continue;
        }
        let rules = settings::read::<SurgeRules>(&*state.db, org).await?;
        for m in members {
            let level = surge::Level::from_code(&m.level).unwrap_or(surge::Level::Four);
            if !m.first && rules.response.of(level).cover_members {
                covered.insert(m.order);
            }
        }
    }
    Ok(covered)
}

/// What a scan writes: the reports seen, the incidents that are new or changed, their new
/// members (those of `suggested` as suggestions), and the incidents merged away.
fn plan(
    before: &[Incident],
    after: &[Incident],
    seen: &[Report],
    recent: &[Report],
    suggested: &HashSet<String>,
    revision: i64,
) -> SurgePlan {
    // Members join from this scan's reports or from the recent window's.
    let reports: HashMap<&str, &Report> = recent.iter().chain(seen).map(|r| (r.order.as_str(), r)).collect();
    let mut plan = SurgePlan { seen: seen.iter().map(row_of).collect(), revision, ..SurgePlan::default() };
    for incident in after {
        let old = before.iter().find(|b| b.id == incident.id);
        if old == Some(incident) {
            continue;
        }
        plan.incidents.push(write_of(incident, old.is_none()));
    }
    for gone in before.iter().filter(|b| after.iter().all(|a| a.id != b.id)) {
        if let Some(into) = after.iter().find(|a| gone.members.iter().any(|m| a.members.contains(m))) {
            plan.merged.push((gone.id as i64, into.id as i64));
        }
    }
    for incident in after {
        let had: HashSet<&String> = before.iter().filter(|b| b.id == incident.id).flat_map(|b| &b.members).collect();
        let moved: HashSet<&String> = plan
            .merged
            .iter()
            .filter(|(_, into)| *into == incident.id as i64)
            .filter_map(|(gone, _)| before.iter().find(|b| b.id as i64 == *gone))
            .flat_map(|b| &b.members)
            .collect();
        for member in &incident.members {
            if had.contains(&member) || moved.contains(&member) {
                continue;
            }
            let Some(report) = reports.get(member.as_str()) else { continue };
            plan.members.push(NewMember {
                incident: incident.id as i64,
                order: member.clone(),
                household: report.household.clone(),
                joined_at: report.at_ms,
                suggested: suggested.contains(member),
            });
        }
    }
    plan
}

/// What refused a merge or a split by hand.
#[derive(Debug)]
pub enum HandRefusal {
    /// An incident is not open (resolved, merged, or gone meanwhile).
    NotOpen,
    /// The rules refuse it (sync-core's `HandFault`).
    Fault(surge::HandFault),
    /// Other writes kept making the state it was made from stale.
    Busy,
}

fn row_report(r: &SurgeRow) -> Report {
    Report {
        order: r.order.clone(),
        at_ms: r.at_ms,
        household: r.household.clone(),
        node: Node { project: r.project.clone(), building: r.building.clone(), riser: r.riser.clone() },
        category: r.category.clone(),
        life_safety: r.life_safety,
    }
}

fn write_of(incident: &Incident, new: bool) -> IncidentWrite {
    IncidentWrite {
        number: incident.id as i64,
        new,
        project: incident.node.project.clone(),
        building: incident.node.building.clone(),
        riser: incident.node.riser.clone(),
        category: incident.category.clone(),
        level: incident.level.code(),
        opened_at: incident.opened_ms,
        first_report_at: incident.first_report_ms,
        score_milli: (incident.score * 1000.0).round() as i64,
        life_safety: incident.life_safety,
        alert: None,
    }
}

/// Merges the open incident `gone` into the open incident `into` by a dispatcher's hand
/// (sync-core's `Incident::merged_with`); the moved members' documents name `into`.
pub async fn merge_by_hand(
    state: &AppState,
    org: &str,
    gone: i64,
    into: i64,
    now_ms: i64,
) -> Result<Result<(), HandRefusal>, ApiError> {
    // Made from the state at a revision and written only at that revision (a scan's plan, a
    // resolve or another hand's edit since makes it again).
    for _ in 0..ATTEMPTS {
        let stored = state.db.surge_state(org, &[], now_ms).await?;
        let open: Vec<Incident> = stored.open.iter().map(|(i, m)| incident_of(i, m)).collect();
        let (Some(a), Some(b)) = (open.iter().find(|i| i.id as i64 == into), open.iter().find(|i| i.id as i64 == gone))
        else {
            return Ok(Err(HandRefusal::NotOpen));
        };
        let rules = settings::read::<SurgeRules>(&*state.db, org).await?;
        let buildings = baseline(state, org, now_ms).await?.buildings(&a.node.project);
        let merged = match a.merged_with(b, &rules, buildings) {
            Ok(merged) => merged,
            Err(fault) => return Ok(Err(HandRefusal::Fault(fault))),
        };
        if state.db.merge_incident(org, gone, &write_of(&merged, false), stored.revision).await? {
            let marks: Vec<_> = merged.members.iter().filter_map(|m| m.parse().ok()).collect();
            if let Err(e) = state.db.mark_incidents(org, &marks, now_ms).await {
                tracing::warn!(orders = marks.len(), error = %e, "members' documents not marked with their incident");
            }
            let _ = state.notified.send(org.to_owned());
            return Ok(Ok(()));
        }
    }
    Ok(Err(HandRefusal::Busy))
}

/// Splits `orders` off the open incident `from` into a new incident by a dispatcher's hand
/// (sync-core's `Incident::split_off`); its number.
pub async fn split_by_hand(
    state: &AppState,
    org: &str,
    from: i64,
    orders: &[String],
    now_ms: i64,
) -> Result<Result<i64, HandRefusal>, ApiError> {
    for _ in 0..ATTEMPTS {
        let stored = state.db.surge_state(org, &[], now_ms).await?;
        // Its members only: a suggestion or a dismissed order is not split off.
        let Some(incident) = stored.open.iter().find(|(i, _)| i.number == from).map(|(i, m)| {
            let members: Vec<crate::store::MemberRow> = m.iter().filter(|r| counts(r)).cloned().collect();
            incident_of(i, &members)
        }) else {
            return Ok(Err(HandRefusal::NotOpen));
        };
        let reports: Vec<Report> = state.db.member_reports(org, from).await?.iter().map(row_report).collect();
        let rules = settings::read::<SurgeRules>(&*state.db, org).await?;
        let buildings = baseline(state, org, now_ms).await?.buildings(&incident.node.project);
        let number = stored.next_number;
        let (rest, new) = match incident.split_off(&reports, orders, number as u64, now_ms, &rules, buildings) {
            Ok(split) => split,
            Err(fault) => return Ok(Err(HandRefusal::Fault(fault))),
        };
        if state
            .db
            .split_incident(org, from, rest.first_report_ms, &write_of(&new, true), orders, stored.revision)
            .await?
        {
            let marks: Vec<_> = new.members.iter().filter_map(|m| m.parse().ok()).collect();
            if let Err(e) = state.db.mark_incidents(org, &marks, now_ms).await {
                tracing::warn!(orders = marks.len(), error = %e, "members' documents not marked with their incident");
            }
            let _ = state.notified.send(org.to_owned());
            return Ok(Ok(number));
        }
        // Another write since the state was read (a scan's plan, a resolve): made again.
    }
    Ok(Err(HandRefusal::Busy))
}
