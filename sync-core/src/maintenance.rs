//! Preventive maintenance plans (维保计划): when each service of an asset falls due
//! (docs/maintenance.md).
//!
//! A plan repeats by an RFC 5545 recurrence rule (`FREQ=WEEKLY;INTERVAL=2`, the `rrule` crate)
//! from a first date, and carries a **maximum gap**: the longest the asset may go between two
//! services (a lift 15 days, 特种设备安全监察条例; a secondary water tank six months). Each date
//! the rule gives is an *occurrence*, named for good by its plan and that date (its key), so
//! that every replica, after any restart or restore, makes the same one work order of it and
//! never a second.
//!
//! Its **due day** is the rule's date moved to a working day of the plan's calendar (holidays and
//! 调休 included), always earlier, never later, and never later than the maximum gap after the
//! last service: so the gap holds whatever the calendar does. Where the window since the last
//! service holds no working day at all, the due day is the last day the gap allows (the law
//! wins over the calendar; the roster's holiday duty does it); where the last service came after
//! the rule's date, it is the first working day after that service. The server computes an
//! occurrence from the last service it knows when it makes the occurrence's order; a service it
//! learns of later does not move that order's due day (docs/maintenance.md).

use jiff::ToSpan;
use jiff::civil::Date;

use crate::asset::AssetType;
use crate::calendar::WorkingHours;
use crate::classification::{Channel, Grade, Kind};
use crate::ids::UserId;
use crate::location::Location;
use crate::work_order::NewOrder;

/// A preventive maintenance plan of one asset.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The plan's id: part of every occurrence's key, so it never changes.
    pub id: String,
    /// The rule's first date (DTSTART), a civil date in the estate's zone.
    pub starts: Date,
    /// An RFC 5545 recurrence rule without DTSTART (`FREQ=MONTHLY;INTERVAL=6`).
    pub rule: String,
    /// The longest time between two services, in days.
    pub max_gap_days: u16,
    /// How many days before its due day an occurrence's work order is made.
    pub lead_days: u16,
}

/// Why a plan cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the recurrence rule cannot be read: {0}")]
    Rule(String),
    #[error("the maximum gap must be between 1 and 3,660 days")]
    Gap,
    #[error("the lead time must be shorter than the maximum gap")]
    Lead,
    #[error("the rule leaves {gap} days between {from} and {to}, more than the maximum gap")]
    RuleExceedsGap { from: Date, to: Date, gap: i32 },
    #[error("the rule gives no date")]
    Empty,
}

/// One service of a plan, as the server makes its work order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// `pm:{plan}:{YYYY-MM-DD}` of the rule's date: the same on every replica, whatever each knew.
    pub key: String,
    /// The date the rule gives.
    pub nominal: Date,
    /// The day the service is due (see the module's documentation).
    pub due: Date,
    /// The day its work order is made: the lead time before the due day.
    pub issue_on: Date,
}

/// What the store holds of an occurrence whose work order was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Made {
    pub nominal: Date,
    pub due: Date,
    /// The day it was done, when the server knows.
    pub done: Option<Date>,
}

/// A plan with its rule read, and the rule's dates over its first years (later ones are read
/// when asked for).
#[derive(Clone, Debug)]
pub struct Schedule {
    plan: Plan,
    rule: rrule::RRuleSet,
    /// Whether `dates` holds every date the rule gives (it ended within the years read).
    complete: bool,
    dates: Vec<Date>,
}

/// How many of a plan's first years are read at once, and checked against its maximum gap.
const RULE_YEARS: i16 = 10;
/// The most times the rule is stepped to reach one date (a rule stepping by the day reads 365
/// a year, and a plan is at most daily).
const RULE_MAX_STEPS: usize = 200_000;

/// The rule's step as a civil date.
fn civil(at: &chrono::DateTime<rrule::Tz>) -> Option<Date> {
    use chrono::Datelike;
    Date::new(i16::try_from(at.year()).ok()?, i8::try_from(at.month()).ok()?, i8::try_from(at.day()).ok()?).ok()
}

impl Schedule {
    /// Reads a plan's rule and checks that the rule itself never leaves more than the maximum gap
    /// between two of its dates.
    pub fn new(plan: Plan) -> Result<Schedule, PlanError> {
        if plan.max_gap_days == 0 || plan.max_gap_days > 3_660 {
            return Err(PlanError::Gap);
        }
        if plan.lead_days >= plan.max_gap_days {
            return Err(PlanError::Lead);
        }
        let rule = plan.rule.trim();
        if rule.contains(['\n', '\r']) || rule.to_ascii_uppercase().contains("DTSTART") {
            return Err(PlanError::Rule("one RRULE line, without DTSTART".into()));
        }
        let text = format!(
            "DTSTART:{:04}{:02}{:02}T000000Z\nRRULE:{}",
            plan.starts.year(),
            plan.starts.month(),
            plan.starts.day(),
            rule.trim_start_matches("RRULE:")
        );
        let set: rrule::RRuleSet = text.parse().map_err(|e: rrule::RRuleError| PlanError::Rule(e.to_string()))?;
        let Some(first) = set.get_rrule().first() else { return Err(PlanError::Empty) };
        if matches!(
            first.get_freq(),
            rrule::Frequency::Hourly | rrule::Frequency::Minutely | rrule::Frequency::Secondly
        ) {
            return Err(PlanError::Rule("a plan repeats at most daily".into()));
        }
        let finite = first.get_count().is_some() || first.get_until().is_some();
        // The crate's limits stop a rule that gives no more dates (`BYMONTHDAY=31;BYMONTH=2`).
        let set = set.limit();
        let until = plan.starts.saturating_add(RULE_YEARS.years());
        let mut dates: Vec<Date> = Vec::new();
        let mut steps = 0;
        let mut complete = true;
        for at in &set {
            steps += 1;
            if steps > RULE_MAX_STEPS {
                return Err(PlanError::Rule("the rule gives too many dates".into()));
            }
            let Some(date) = civil(&at) else { break };
            if date > until {
                complete = false;
                break;
            }
            // Several times a day (BYHOUR) is one date.
            if dates.last() != Some(&date) {
                dates.push(date);
            }
        }
        let Some(&last) = dates.last() else { return Err(PlanError::Empty) };
        for pair in dates.windows(2) {
            let gap = days_between(pair[0], pair[1]);
            if gap > i32::from(plan.max_gap_days) {
                return Err(PlanError::RuleExceedsGap { from: pair[0], to: pair[1], gap });
            }
        }
        // A rule that does not end must give a date within the gap of the years read too
        // (`FREQ=YEARLY;INTERVAL=20` reads one date).
        let gap = days_between(last, until);
        if !finite && gap > i32::from(plan.max_gap_days) {
            return Err(PlanError::RuleExceedsGap { from: last, to: until, gap });
        }
        Ok(Schedule { plan, rule: set, complete, dates })
    }

    /// The rule's first date after `after`: from the years read, else read on from the rule.
    fn date_after(&self, after: Date) -> Option<Date> {
        let at = self.dates.partition_point(|&d| d <= after);
        if let Some(&date) = self.dates.get(at) {
            return Some(date);
        }
        if self.complete {
            return None;
        }
        (&self.rule).into_iter().take(RULE_MAX_STEPS).filter_map(|at| civil(&at)).find(|&date| date > after)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The rule's dates from `from` to `to`, both included.
    pub fn nominal_between(&self, from: Date, to: Date) -> Vec<Date> {
        let mut out = Vec::new();
        let mut at = from.yesterday().ok();
        while let Some(date) = at.and_then(|d| self.date_after(d)).filter(|&d| d <= to) {
            out.push(date);
            at = Some(date);
        }
        out
    }

    /// The occurrence of the rule's date `nominal`, given the last service before it (`None`:
    /// none yet, or none known).
    pub fn occurrence(&self, nominal: Date, last_service: Option<Date>, calendar: &WorkingHours) -> Occurrence {
        let gap = i32::from(self.plan.max_gap_days);
        let target = match last_service {
            Some(done) => nominal.min(done.saturating_add(gap.days())),
            None => nominal,
        };
        // Never earlier than the day after the last service (the rule's previous date may be
        // later: a service moved before a holiday pulls the next one earlier than it).
        let floor = last_service.map(|d| d.saturating_add(1.day()));
        let due = match floor {
            // The last service came after the rule's date (done late): due from the day after
            // it, the first working day within the gap.
            Some(floor) if target < floor => {
                let last = floor.saturating_add((gap - 1).days());
                let mut day = floor;
                while !calendar.is_working_day(day) && day < last {
                    day = day.saturating_add(1.day());
                }
                if calendar.is_working_day(day) { day } else { floor }
            }
            _ => {
                let mut due = target;
                let mut day = target;
                loop {
                    if calendar.is_working_day(day) {
                        due = day;
                        break;
                    }
                    let Ok(before) = day.yesterday() else { break };
                    if floor.is_some_and(|floor| before < floor) || days_between(before, target) >= gap {
                        // No working day in the window: the last day the gap allows.
                        break;
                    }
                    day = before;
                }
                due
            }
        };
        let issue_on = due.saturating_sub(i32::from(self.plan.lead_days).days());
        Occurrence { key: self.key(nominal), nominal, due, issue_on }
    }

    /// An occurrence's key.
    pub fn key(&self, nominal: Date) -> String {
        format!("pm:{}:{nominal}", self.plan.id)
    }

    /// The occurrence after the one made (`None`: the first, after `service_before` when the
    /// asset's last service before the plan is known), or `None` past the years read.
    pub fn next(
        &self,
        previous: Option<&Made>,
        service_before: Option<Date>,
        calendar: &WorkingHours,
    ) -> Option<Occurrence> {
        let (nominal, last_service) = match previous {
            None => (*self.dates.first()?, service_before),
            // Not done yet: as if done on its due day (computed again when it is).
            Some(made) => (self.date_after(made.nominal)?, Some(made.done.unwrap_or(made.due))),
        };
        Some(self.occurrence(nominal, last_service, calendar))
    }

    /// The occurrence of the rule's first date on or after `from`, after the asset's last
    /// service `service_before` when known.
    pub fn first_from(&self, from: Date, service_before: Option<Date>, calendar: &WorkingHours) -> Option<Occurrence> {
        let nominal = self.date_after(from.yesterday().unwrap_or(from))?;
        Some(self.occurrence(nominal, service_before, calendar))
    }

    /// The occurrences whose work orders are due to be made by `today`, after the last one made:
    /// each issued on or before `today`. The same inputs give the same keys on every replica;
    /// the caller makes each whose key the store does not hold (a unique key).
    ///
    /// With nothing made yet, the first is the rule's first date not before `today` less the
    /// lead time: a plan whose rule began years ago does not make the years past at once.
    pub fn to_issue(
        &self,
        today: Date,
        last: Option<&Made>,
        service_before: Option<Date>,
        calendar: &WorkingHours,
    ) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let mut previous = last.copied();
        let mut first = None;
        if previous.is_none() {
            let from = today.saturating_sub(i32::from(self.plan.lead_days).days());
            first = self.first_from(from, service_before, calendar);
            if first.is_none() {
                return out;
            }
        }
        while let Some(next) = first.take().or_else(|| self.next(previous.as_ref(), service_before, calendar)) {
            if next.issue_on > today {
                break;
            }
            previous = Some(Made { nominal: next.nominal, due: next.due, done: None });
            out.push(next);
        }
        out
    }
}

/// Where an asset is and what it is, as its preventive work orders name it.
#[derive(Clone, Copy, Debug)]
pub struct AssetPlace<'a> {
    pub name: &'a str,
    pub asset_type: AssetType,
    pub project: &'a str,
    /// `None`: a place of the whole project.
    pub building: Option<&'a str>,
    pub place: &'a str,
}

/// The work order of an occurrence (kind [`Kind::Maintenance`], channel [`Channel::Plan`], the
/// asset's trade, grade 一般) at the asset's place, reported by `server` (the server's own
/// user): its description names the asset and the due day; the plan's checklist goes on the
/// order as items to tick ([`checklist_items`]). Nothing in it names a person.
pub fn work_order(asset: &AssetPlace<'_>, occurrence: &Occurrence, checklist: &[String], server: UserId) -> NewOrder {
    let mut description = format!(
        "计划维保：{}（{}）\n到期日：{}（计划日 {}）",
        asset.name, asset.place, occurrence.due, occurrence.nominal
    );
    if !checklist.is_empty() {
        description.push_str(&format!("\n检查项 {} 项，逐项勾选", checklist.len()));
    }
    NewOrder {
        kind: Kind::Maintenance,
        category: asset.asset_type.category(),
        grade: Grade::Minor,
        channel: Channel::Plan,
        location: Location {
            project: asset.project.to_owned(),
            building: asset.building.map(str::to_owned),
            unit: None,
            area: Some(asset.place.to_owned()),
        },
        description,
        reporter: server,
        occurred_at_ms: None,
    }
}

/// The plan's checklist as the occurrence's order holds it: (id, label), each id the
/// occurrence's key and the item's place (`pm:lift-3:2026-02-16#1`), the same on every replica.
pub fn checklist_items(occurrence: &Occurrence, checklist: &[String]) -> Vec<(String, String)> {
    checklist.iter().enumerate().map(|(n, label)| (format!("{}#{}", occurrence.key, n + 1), label.clone())).collect()
}

/// When an occurrence's work order is registered: the start of its issue day in `zone`, the same
/// on every replica however late the server makes it.
pub fn issued_at_ms(occurrence: &Occurrence, zone: &jiff::tz::TimeZone) -> i64 {
    occurrence.issue_on.to_zoned(zone.clone()).map_or(0, |at| at.timestamp().as_millisecond())
}

/// The preventive work order proposed by a problem record (问题单): an asset that failed `count`
/// times in `days` days is looked at as planned work (kind [`Kind::Maintenance`], channel
/// [`Channel::Plan`]), at the asset's place, reported by `server`. Nothing in it names a person.
pub fn problem_order(asset: &AssetPlace<'_>, count: i64, days: i64, server: UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Maintenance,
        category: asset.asset_type.category(),
        grade: Grade::Serious,
        channel: Channel::Plan,
        location: Location {
            project: asset.project.to_owned(),
            building: asset.building.map(str::to_owned),
            unit: None,
            area: Some(asset.place.to_owned()),
        },
        description: format!(
            "预防性检修：{}（{}）\n问题单：{days} 天内故障 {count} 次，请查明原因，防止再次发生",
            asset.name, asset.place
        ),
        reporter: server,
        occurred_at_ms: None,
    }
}

/// Days from `a` to `b`.
pub fn days_between(a: Date, b: Date) -> i32 {
    (b - a).get_days()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn lift(rule: &str, starts: Date) -> Schedule {
        Schedule::new(Plan { id: "lift-3".into(), starts, rule: rule.into(), max_gap_days: 15, lead_days: 3 })
            .expect("a lift plan")
    }

    #[test]
    fn a_lift_s_service_before_spring_festival_moves_earlier_and_the_next_keeps_the_gap() {
        let calendar = WorkingHours::china_office();
        // Every other Monday from 5 January 2026: 2 February, then 16 February, in the middle of
        // the Spring Festival holiday (15–23 February), whose Saturday the 14th is a working day
        // (调休).
        let schedule = lift("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", date(2026, 1, 5));
        let done = Made { nominal: date(2026, 2, 2), due: date(2026, 2, 2), done: Some(date(2026, 2, 2)) };
        let festival = schedule.next(Some(&done), None, &calendar).expect("next");
        assert_eq!(
            (festival.nominal, festival.due, festival.issue_on),
            (date(2026, 2, 16), date(2026, 2, 14), date(2026, 2, 11))
        );
        assert_eq!(festival.key, "pm:lift-3:2026-02-16");
        // Done on the 14th: the rule's next date, Monday 2 March, is 16 days later; the gap
        // allows Sunday 1 March at the latest, a day off, so Saturday 28 February (调休).
        let served = Made { nominal: festival.nominal, due: festival.due, done: Some(date(2026, 2, 14)) };
        let after = schedule.next(Some(&served), None, &calendar).expect("next");
        assert_eq!((after.nominal, after.due), (date(2026, 3, 2), date(2026, 2, 28)));
        // Not known to be done yet: as if done on its due day, the same.
        let unknown = Made { done: None, ..served };
        assert_eq!(schedule.next(Some(&unknown), None, &calendar).expect("next").due, date(2026, 2, 28));
        // Known done on the 12th instead (a phone offline reports it late): earlier still.
        let early = Made { done: Some(date(2026, 2, 12)), ..served };
        assert_eq!(schedule.next(Some(&early), None, &calendar).expect("next").due, date(2026, 2, 27));
    }

    #[test]
    fn a_rule_that_leaves_more_than_the_gap_is_refused() {
        let plan = |rule: &str, max_gap_days| Plan {
            id: "p".into(),
            starts: date(2026, 1, 1),
            rule: rule.into(),
            max_gap_days,
            lead_days: 3,
        };
        assert!(matches!(
            Schedule::new(plan("FREQ=WEEKLY;INTERVAL=3", 15)),
            Err(PlanError::RuleExceedsGap { gap: 21, .. })
        ));
        // Six months from 1 January: 181 days to July, 184 back to January.
        assert!(matches!(
            Schedule::new(plan("FREQ=MONTHLY;INTERVAL=6", 181)),
            Err(PlanError::RuleExceedsGap { gap: 184, .. })
        ));
        assert!(Schedule::new(plan("FREQ=MONTHLY;INTERVAL=6", 184)).is_ok());
        assert!(matches!(Schedule::new(plan("FREQ=SOMETIMES", 15)), Err(PlanError::Rule(_))));
        assert!(matches!(Schedule::new(plan("FREQ=DAILY\nDTSTART:19700101T000000Z", 15)), Err(PlanError::Rule(_))));
        assert_eq!(Schedule::new(plan("FREQ=DAILY", 3)).err(), Some(PlanError::Lead));
        assert_eq!(Schedule::new(plan("FREQ=DAILY", 0)).err(), Some(PlanError::Gap));
    }

    #[test]
    fn with_no_working_day_in_the_gap_the_law_wins_over_the_calendar() {
        let mut closed = WorkingHours::china_office();
        closed.weekdays = [false; 7];
        closed.working_days.clear();
        let schedule = lift("FREQ=DAILY;INTERVAL=14", date(2026, 1, 5));
        let done = Made { nominal: date(2026, 1, 5), due: date(2026, 1, 5), done: Some(date(2026, 1, 3)) };
        let next = schedule.next(Some(&done), None, &closed).expect("next");
        // Due by the gap on the 18th; no working day since the 4th: the 18th, a day off.
        assert_eq!((next.nominal, next.due), (date(2026, 1, 19), date(2026, 1, 18)));
    }

    #[test]
    fn what_is_to_issue_is_the_same_whatever_each_replica_knew() {
        let calendar = WorkingHours::china_office();
        let schedule = lift("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", date(2026, 1, 3));
        let first = schedule.to_issue(date(2026, 1, 1), None, None, &calendar);
        assert_eq!(first.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["pm:lift-3:2026-01-03"]);
        // One replica knows the first was done on its due day, another that it was done three
        // days early: other due days, the same keys.
        let made = Made { nominal: first[0].nominal, due: first[0].due, done: Some(first[0].due) };
        let early = Made { done: Some(first[0].due.saturating_sub(3.days())), ..made };
        let one = schedule.to_issue(date(2026, 3, 1), Some(&made), None, &calendar);
        let other = schedule.to_issue(date(2026, 3, 1), Some(&early), None, &calendar);
        let keys = |list: &[Occurrence]| list.iter().map(|o| o.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&one), keys(&other));
        assert_eq!(keys(&one).len(), 4, "{:?}", keys(&one));
        assert_ne!(one[0].due, other[0].due);
        assert!(one.iter().chain(&other).all(|o| calendar.is_working_day(o.due)));
    }

    #[test]
    fn a_plan_begun_years_ago_starts_today_and_goes_on_past_the_years_read() {
        let calendar = WorkingHours::china_office();
        let schedule = lift("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", date(2012, 1, 2));
        // Nothing made yet: not the 370 dates since 2012, the first from today on.
        let first = schedule.to_issue(date(2026, 3, 10), None, None, &calendar);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].nominal, date(2026, 3, 9));
        // Past the ten years read at once (2022): the rule is read on.
        let made = Made { nominal: first[0].nominal, due: first[0].due, done: Some(first[0].due) };
        assert_eq!(schedule.next(Some(&made), None, &calendar).map(|o| o.nominal), Some(date(2026, 3, 23)));
    }

    #[test]
    fn a_late_service_makes_the_next_due_from_the_day_after_it() {
        let calendar = WorkingHours::china_office();
        let schedule = lift("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", date(2026, 1, 5));
        // The 16 February service was done on Wednesday 4 March, after the next date (2 March).
        let late = Made { nominal: date(2026, 2, 16), due: date(2026, 2, 14), done: Some(date(2026, 3, 4)) };
        let next = schedule.next(Some(&late), None, &calendar).expect("next");
        assert_eq!((next.nominal, next.due), (date(2026, 3, 2), date(2026, 3, 5)));
    }

    #[test]
    fn rules_more_often_than_daily_or_rarer_than_the_gap_are_refused() {
        let plan = |rule: &str| Plan {
            id: "p".into(),
            starts: date(2026, 1, 1),
            rule: rule.into(),
            max_gap_days: 15,
            lead_days: 3,
        };
        assert!(matches!(Schedule::new(plan("FREQ=HOURLY")), Err(PlanError::Rule(_))));
        assert!(matches!(Schedule::new(plan("FREQ=SECONDLY")), Err(PlanError::Rule(_))));
        // One date in the ten years read: the rule leaves more than the gap after it.
        assert!(matches!(Schedule::new(plan("FREQ=YEARLY;INTERVAL=20")), Err(PlanError::RuleExceedsGap { .. })));
        // A rule that ends is a plan that ends.
        let ends = Schedule::new(plan("FREQ=WEEKLY;COUNT=3")).expect("three services");
        let calendar = WorkingHours::china_office();
        let last = Made { nominal: date(2026, 1, 15), due: date(2026, 1, 15), done: None };
        assert_eq!(schedule_next_nominal(&ends, &last, &calendar), None);
        // Several times a day is one date.
        let daily = Schedule::new(plan("FREQ=DAILY;BYHOUR=8,14")).expect("daily");
        assert_eq!(daily.nominal_between(date(2026, 1, 1), date(2026, 1, 3)).len(), 3);
    }

    fn schedule_next_nominal(schedule: &Schedule, made: &Made, calendar: &WorkingHours) -> Option<Date> {
        schedule.next(Some(made), None, calendar).map(|o| o.nominal)
    }

    #[test]
    fn an_occurrence_s_work_order_is_the_server_s_and_the_same_on_every_replica() {
        use crate::identity::Identity;
        use crate::ids::DeviceId;
        use crate::role::Role;
        use crate::work_order::WorkOrder;
        let schedule = lift("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", date(2026, 1, 5));
        let calendar = WorkingHours::china_office();
        let occurrence = schedule.first_from(date(2026, 2, 10), None, &calendar).expect("one");
        let asset = AssetPlace {
            name: "3号电梯",
            asset_type: AssetType::Elevator,
            project: "hy-garden",
            building: Some("3"),
            place: "3栋电梯井",
        };
        let checklist: Vec<String> = vec!["检查曳引机".into(), "润滑导轨".into()];
        let server = Identity::new(UserId::new(), Role::System, DeviceId::new());
        let new = work_order(&asset, &occurrence, &checklist, server.user);
        assert_eq!(
            (new.kind, new.channel, new.category.clone()),
            (Kind::Maintenance, Channel::Plan, crate::Category::Elevator)
        );
        assert_eq!(
            new.description,
            "计划维保：3号电梯（3栋电梯井）\n到期日：2026-02-14（计划日 2026-02-16）\n检查项 2 项，逐项勾选"
        );
        assert_eq!(
            checklist_items(&occurrence, &checklist),
            [
                ("pm:lift-3:2026-02-16#1".to_owned(), "检查曳引机".to_owned()),
                ("pm:lift-3:2026-02-16#2".to_owned(), "润滑导轨".to_owned())
            ]
        );
        let id = crate::OrderId::new();
        // Registered by the server, it passes the creation rules; by anyone else, it does not.
        let at = issued_at_ms(&occurrence, &calendar.zone);
        let made = WorkOrder::create_with_id(id, &new, &server, at).expect("registered");
        let creating = made.automerge().get_changes(&[]).into_iter().next().expect("a change").clone();
        assert_eq!(crate::creation::review_creation(&creating, &server), Ok(()));
        for role in [Role::Owner, Role::Dispatcher, Role::Supervisor, Role::Technician] {
            let someone = Identity::new(UserId::new(), role, DeviceId::new());
            let theirs =
                WorkOrder::create_with_id(id, &NewOrder { reporter: someone.user, ..new.clone() }, &someone, at)
                    .expect("registered");
            let creating = theirs.automerge().get_changes(&[]).into_iter().next().expect("a change").clone();
            assert!(crate::creation::review_creation(&creating, &someone).is_err(), "{role:?}");
        }
        // And the server registers nothing but planned maintenance through a plan.
        for (kind, channel) in [(Kind::Repair, Channel::Plan), (Kind::Maintenance, Channel::Hotline)] {
            let other = NewOrder { kind, channel, ..new.clone() };
            let made = WorkOrder::create_with_id(id, &other, &server, at).expect("registered");
            let creating = made.automerge().get_changes(&[]).into_iter().next().expect("a change").clone();
            assert!(crate::creation::review_creation(&creating, &server).is_err(), "{kind:?} {channel:?}");
        }
        // A dispatcher registers planned maintenance through the hotline; an owner does not.
        let kefu = Identity::new(UserId::new(), Role::Dispatcher, DeviceId::new());
        let theirs = NewOrder { channel: Channel::Hotline, reporter: kefu.user, ..new.clone() };
        let made = WorkOrder::create_with_id(id, &theirs, &kefu, at).expect("registered");
        let creating = made.automerge().get_changes(&[]).into_iter().next().expect("a change").clone();
        assert_eq!(crate::creation::review_creation(&creating, &kefu), Ok(()));
        let owner = Identity::new(UserId::new(), Role::Owner, DeviceId::new());
        let theirs = NewOrder { channel: Channel::App, reporter: owner.user, ..new.clone() };
        let made = WorkOrder::create_with_id(id, &theirs, &owner, at).expect("registered");
        let creating = made.automerge().get_changes(&[]).into_iter().next().expect("a change").clone();
        assert!(crate::creation::review_creation(&creating, &owner).is_err(), "kind maintenance by an owner");
    }
}
