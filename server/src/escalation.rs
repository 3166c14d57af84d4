//! Escalation (时限预警与升级): every open order's stages (response, arrival, resolution) are
//! checked against its SLA policy; at half and three quarters of a target a warning fires, at the
//! deadline a breach. Each fires once — the record's key is (order, stage, level, deadline), so
//! two server processes, or a restart mid-scan, never fire it twice — and breaches are never
//! cleared: a later acceptance stops further warnings, not the record.
//!
//! The scanner's work is proportional to what is due: every push sets the order's `next_check`
//! to its own time, and each scan looks only at orders whose `next_check` has come, computes
//! their checkpoints, records the ones that have passed and sets `next_check` to the next one.
//!
//! Who is told (in-app notification feed and webhooks) follows the organization's escalation
//! chain ([`EscalationChain`]); the seeded one: a warning at half reaches the assignee (or,
//! unassigned, customer service); at three quarters also the supervisors; a breach also
//! customer service, and for 严重 and 重大 orders the managers.
//!
//! - `GET /api/v1/notifications`: the signed-in user's feed; `POST …/{id}/read`.
//! - `GET /api/v1/orders/{id}/sla-events`: what fired on an order (office staff).
//! - `GET`/`PUT /api/v1/settings/escalation`: the escalation chain (`crate::settings`).

use loopwork_sync_core::signature::{self, SignatureRules};
use loopwork_sync_core::sla::{Checkpoint, Level, SlaBook, Stage};
use loopwork_sync_core::{Grade, OrderId, Role, WorkOrder};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;
use crate::settings::{self, Readers, Setting};
use crate::store::{CheckRecord, Fired, OrderFacts, TriageRecord};

/// Orders looked at per tick at most; the rest wait for the next tick.
const PER_TICK: i64 = 1_000;
/// Orders whose results one transaction records.
const PER_TRANSACTION: usize = 100;

/// Who hears each level (at half, at three quarters, at the breach) of each grade: an
/// organization's escalation chain (时限升级链), `GET`/`PUT /api/v1/settings/escalation`.
/// Recipients are `assignee` (customer service while the order is unassigned) and the office
/// roles `dispatcher`, `supervisor`, `manager`, `admin` (everyone active in that role).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationChain {
    pub warn_50: ByGrade,
    pub warn_75: ByGrade,
    pub breach: ByGrade,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByGrade {
    pub minor: Vec<String>,
    pub serious: Vec<String>,
    pub severe: Vec<String>,
    pub critical: Vec<String>,
}

impl ByGrade {
    fn all(recipients: &[&str]) -> Self {
        let list: Vec<String> = recipients.iter().map(|r| (*r).to_owned()).collect();
        ByGrade { minor: list.clone(), serious: list.clone(), severe: list.clone(), critical: list }
    }

    fn of(&self, grade: Grade) -> &[String] {
        match grade {
            Grade::Minor => &self.minor,
            Grade::Serious => &self.serious,
            Grade::Severe => &self.severe,
            Grade::Critical => &self.critical,
        }
    }
}

const ASSIGNEE: &str = "assignee";

impl Default for EscalationChain {
    /// The seeded chain: the technician at half (customer service while unassigned); the
    /// supervisors too at three quarters; at the breach customer service as well, and for 严重 and
    /// 重大 orders the managers.
    fn default() -> Self {
        let mut breach = ByGrade::all(&[ASSIGNEE, "dispatcher", "supervisor"]);
        breach.severe.push("manager".into());
        breach.critical.push("manager".into());
        EscalationChain { warn_50: ByGrade::all(&[ASSIGNEE]), warn_75: ByGrade::all(&[ASSIGNEE, "supervisor"]), breach }
    }
}

impl EscalationChain {
    /// Every recipient known, none twice, and every breach heard by someone.
    pub fn validate(&self) -> Result<(), String> {
        for (level, by_grade) in [("warn_50", &self.warn_50), ("warn_75", &self.warn_75), ("breach", &self.breach)] {
            for grade in Grade::ALL {
                let list = by_grade.of(*grade);
                for (i, who) in list.iter().enumerate() {
                    let known = who == ASSIGNEE || Role::from_code(who).is_ok_and(|r| r.is_staff());
                    if !known {
                        return Err(format!(
                            "{level}.{}: `{}` is not a recipient (assignee, dispatcher, supervisor, manager, admin)",
                            grade.code(),
                            who.chars().take(32).collect::<String>()
                        ));
                    }
                    if list[..i].contains(who) {
                        return Err(format!("{level}.{}: `{who}` is listed twice", grade.code()));
                    }
                }
                if level == "breach" && list.is_empty() {
                    return Err(format!("breach.{}: a breach must reach someone", grade.code()));
                }
            }
        }
        Ok(())
    }

    /// Whom a checkpoint reaches: whether the assignee is told, and which roles.
    pub fn recipients(&self, level: Level, grade: Grade, assigned: bool) -> (bool, Vec<Role>) {
        let by_grade = match level {
            Level::Half => &self.warn_50,
            Level::ThreeQuarters => &self.warn_75,
            Level::Breach => &self.breach,
        };
        let mut tell_assignee = false;
        let mut roles = Vec::new();
        for who in by_grade.of(grade) {
            match (who.as_str(), assigned) {
                (ASSIGNEE, true) => tell_assignee = true,
                (ASSIGNEE, false) => roles.push(Role::Dispatcher),
                (code, _) => roles.extend(Role::from_code(code).ok()),
            }
        }
        roles.sort();
        roles.dedup();
        (tell_assignee, roles)
    }
}

impl Setting for EscalationChain {
    const NAME: &'static str = "escalation";
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the escalation chain", "只有管理员可以修改升级链");

    fn seeded() -> Self {
        EscalationChain::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        self.validate().map_err(|e| ApiError::invalid("invalid_escalation", e, "升级链不合规"))?;
        Ok(self)
    }
}

/// The assistant's reading of a description (kept once per order by `record_checks`).
fn triage_of(model: &loopwork_triage::Model, description: &str) -> TriageRecord {
    let c = model.classify(description);
    TriageRecord {
        kind: c.kind.code(),
        category: c.category.code(),
        grade: c.grade.code(),
        urgent: c.urgent,
        confidence_permille: (f64::from(c.confidence) * 1000.0).round() as i64,
        abstain: c.abstain,
        rule: c.rule.map(|r| r.code),
        model: model.version().to_owned(),
    }
}

/// One scan: records every checkpoint passed by `now_ms`. Returns how many it recorded.
pub async fn tick(state: &AppState, now_ms: i64) -> Result<usize, ApiError> {
    Ok(scan(state, now_ms).await?.recorded)
}

/// What one scan did.
#[derive(Clone, Copy, Debug)]
pub struct Scanned {
    /// Checkpoints recorded.
    pub recorded: usize,
    /// Whether it took as many orders as one scan takes: more may be due (a backlog after an
    /// upgrade or an SLA book's change), and the scanner goes on without waiting.
    pub full: bool,
}

/// One scan, as [`tick`], saying whether more may be due.
pub async fn scan(state: &AppState, now_ms: i64) -> Result<Scanned, ApiError> {
    let mut books: std::collections::HashMap<String, (SlaBook, EscalationChain, SignatureRules)> =
        std::collections::HashMap::new();
    // Per organization, the orders whose record of a required signature changes.
    let mut signatures: std::collections::BTreeMap<String, Vec<(OrderId, bool)>> = std::collections::BTreeMap::new();
    let mut checks = Vec::new();
    let due = state.db.checks_due(now_ms, PER_TICK).await?;
    let full = due.len() as i64 >= PER_TICK;
    let covered = crate::incidents::covered(state, &due).await?;
    for due in due {
        if !books.contains_key(&due.org) {
            let book = settings::sla_book(&*state.db, &due.org).await?;
            let chain = settings::read::<EscalationChain>(&*state.db, &due.org).await?;
            books.insert(due.org.clone(), (book, chain, settings::read::<SignatureRules>(&*state.db, &due.org).await?));
        }
        let (book, chain, rules) = &books[&due.org];
        let covered = covered.contains(&due.order.to_string());
        let Ok(order) = state.db.load_stored(&due.org, due.order, &due.doc).await else { continue };
        // Deadlines are enforced with device times clamped into what the server can vouch for.
        let times = state.db.clamped_times(due.order).await?;
        let (Ok(kind), Ok(category), Ok(grade), Ok(order_state)) =
            (order.kind(), order.category(), order.grade(), order.state_with_times(&times))
        else {
            continue;
        };
        if signature::to_record(rules, &order, &order_state, !due.read).is_some() {
            signatures.entry(due.org.clone()).or_default().push((due.order, !due.read));
        }
        let checkpoints = book.checkpoints(kind, &category, grade, &order_state, order.created_at_ms());
        let assignee = order_state.assignee.map(|a| a.to_string());
        let fired: Vec<Fired> = checkpoints
            .iter()
            .filter(|c| c.at_ms <= now_ms)
            .map(|c| {
                let (tell_assignee, roles) = chain.recipients(c.level, grade, assignee.is_some());
                Fired {
                    stage: c.stage.code(),
                    level: c.level.code(),
                    at_ms: c.at_ms,
                    due_ms: c.due_ms,
                    assignee: assignee.clone().filter(|_| tell_assignee),
                    roles,
                    covered,
                }
            })
            .collect();
        let next = checkpoints.iter().map(|c| c.at_ms).filter(|at| *at > now_ms).min();
        let Some(facts) = facts_of(&order, &order_state, &checkpoints) else { continue };
        // The deadlines do not wait for the assistant: without a model the reading waits.
        // Read once: the first reading is the one kept.
        let triage = if due.read {
            None
        } else {
            match state.triage.for_org(state.db.as_ref(), &due.org).await {
                Ok(model) => Some(triage_of(&model, &facts.description)),
                Err(e) => {
                    tracing::error!(error = %e, "no triage model; the order is read again within a minute");
                    None
                }
            }
        };
        // Not read (no model): looked at again within a minute, not at the next checkpoint.
        let next = match (due.read, &triage) {
            (false, None) => Some(next.map_or(now_ms + 60_000, |n| n.min(now_ms + 60_000))),
            _ => next,
        };
        checks.push(CheckRecord { due, fired, facts, next_check: next, triage });
    }
    // Into the documents first, so that the technicians' phones know before they complete; a
    // failure ends the scan before its checks are recorded, so that the first look (an order
    // not read before) comes again.
    for (org, orders) in &signatures {
        state.db.require_signatures(org, &books[org].2, orders, now_ms).await?;
    }
    let mut recorded = 0;
    let mut notified = std::collections::BTreeSet::new();
    // A few transactions per scan, not one per order: the scanner shares the database's one
    // writer with the devices' pushes.
    for chunk in checks.chunks(PER_TRANSACTION) {
        let done = state.db.record_checks(chunk, now_ms).await?;
        for (check, done) in chunk.iter().zip(done) {
            if !done.is_empty() {
                notified.insert(check.due.org.clone());
            }
            for i in done {
                state.metrics.sla_events.with_label_values(&[check.fired[i].stage, check.fired[i].level]).inc();
                recorded += 1;
            }
        }
    }
    // The desks of those organizations reload their notifications now, not at their next poll.
    for org in notified {
        let _ = state.notified.send(org);
    }
    // The orders read for the first time are the new registrations: the surge detector sees
    // them (docs/incidents.md). A failure leaves the deadlines recorded; its orders are not
    // seen (the next scan reads only new ones).
    let mut fresh: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for check in checks.iter().filter(|c| c.triage.is_some()) {
        fresh.entry(check.due.org.as_str()).or_default().push(check.due.order.to_string());
    }
    for (org, orders) in fresh {
        if let Err(e) = crate::incidents::observe(state, org, &orders, now_ms).await {
            tracing::warn!(code = e.code, "surge scan failed");
        }
    }
    Ok(Scanned { recorded, full })
}

/// What the queue and the dashboards read of an order, from its document, its state (with
/// clamped times) and its checkpoints: the most urgent unmet stage's checkpoints, milestones,
/// rating, rework.
pub fn facts_of(
    order: &WorkOrder,
    state: &loopwork_sync_core::OrderState,
    checkpoints: &[Checkpoint],
) -> Option<OrderFacts> {
    use loopwork_sync_core::lifecycle::{Action, Verdict};
    let urgent = checkpoints.iter().min_by_key(|c| (c.due_ms, c.stage));
    let at =
        |stage: Stage, level: Level| checkpoints.iter().find(|c| c.stage == stage && c.level == level).map(|c| c.at_ms);
    let applied = || state.history.iter().filter(|f| f.verdict == Verdict::Applied).map(|f| &f.transition);
    let first = |code: &str| applied().find(|t| t.action.code() == code).map(|t| t.at_ms);
    let finished = applied()
        .filter(|t| matches!(t.action, Action::Confirm { .. } | Action::AutoConfirm | Action::Close))
        .map(|t| t.at_ms)
        .next();
    let location = order.location();
    let rated_by_staff = applied()
        .rfind(|t| matches!(t.action, Action::Confirm { .. }))
        .is_some_and(|t| t.role != loopwork_sync_core::Role::Owner);
    Some(OrderFacts {
        sla_stage: urgent.map(|c| c.stage.code()),
        sla_half_at: urgent.and_then(|c| at(c.stage, Level::Half)),
        sla_warn_at: urgent.and_then(|c| at(c.stage, Level::ThreeQuarters)),
        sla_due_at: urgent.map(|c| c.due_ms),
        project: location.project,
        building: location.building,
        kind: order.kind().ok()?.code(),
        category: order.category().ok()?.code(),
        grade: order.grade().ok()?.code(),
        status: state.status.code(),
        is_open: state.status.is_open(),
        assignee: state.assignee.map(|a| a.to_string()),
        created_at: order.created_at_ms(),
        created_how: loopwork_sync_core::china_time::hour_of_week(order.created_at_ms()),
        assigned_at: first("assign"),
        accepted_at: state.accepted_at_ms,
        arrived_at: state.arrived_at_ms,
        completed_at: state.completed_at_ms,
        finished_at: finished,
        // Satisfaction counts the owners' own ratings: one given by phone and recorded by staff is
        // kept on the order, not counted (staff could otherwise rate their own work).
        rating: state.rating.filter(|_| !rated_by_staff).map(i64::from),
        reopen_count: i64::from(state.reopen_count),
        auto_confirmed: state.auto_confirmed,
        visited_by: applied().filter(|t| t.action == Action::ReturnVisit).map(|t| t.by.to_string()).next_back(),
        description: order.description(),
        hold_reason: state.hold_reason.filter(|_| state.status == loopwork_sync_core::Status::OnHold).map(|r| r.code()),
        asset: order.asset(),
    })
}
