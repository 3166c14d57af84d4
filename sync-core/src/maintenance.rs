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
//! wins over the calendar; the roster's holiday duty does it). The due day is computed again
//! whenever a service is learnt (a phone that was offline syncs): it can only move earlier.

use jiff::ToSpan;
use jiff::civil::Date;

use crate::calendar::WorkingHours;

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

/// A plan with its rule read, and the rule's dates over the years ahead.
#[derive(Clone, Debug)]
pub struct Schedule {
    plan: Plan,
    dates: Vec<Date>,
}

/// How far ahead a plan's rule is read (and checked against its maximum gap).
const RULE_YEARS: i16 = 10;
/// The most dates a rule gives over those years (a daily rule gives 3,653).
const RULE_MAX_DATES: usize = 4_000;

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
        // The crate's limits stop a rule that gives no more dates (`BYMONTHDAY=31;BYMONTH=2`).
        let set = set.limit();
        let until = plan.starts.saturating_add(RULE_YEARS.years());
        let mut dates = Vec::new();
        for at in (&set).into_iter().take(RULE_MAX_DATES) {
            use chrono::Datelike;
            let Ok(date) = Date::new(i16::try_from(at.year()).unwrap_or(i16::MAX), at.month() as i8, at.day() as i8)
            else {
                break;
            };
            if date > until {
                break;
            }
            dates.push(date);
        }
        if dates.is_empty() {
            return Err(PlanError::Empty);
        }
        for pair in dates.windows(2) {
            let gap = days_between(pair[0], pair[1]);
            if gap > i32::from(plan.max_gap_days) {
                return Err(PlanError::RuleExceedsGap { from: pair[0], to: pair[1], gap });
            }
        }
        Ok(Schedule { plan, dates })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The rule's dates from `from` to `to`, both included (within the years read).
    pub fn nominal_between(&self, from: Date, to: Date) -> &[Date] {
        let start = self.dates.partition_point(|&d| d < from);
        let end = self.dates.partition_point(|&d| d <= to);
        &self.dates[start..end.max(start)]
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
            Some(made) => {
                let at = self.dates.partition_point(|&d| d <= made.nominal);
                // Not done yet: as if done on its due day (computed again when it is).
                (*self.dates.get(at)?, Some(made.done.unwrap_or(made.due)))
            }
        };
        Some(self.occurrence(nominal, last_service, calendar))
    }

    /// The occurrences whose work orders are due to be made by `today`, after the last one made:
    /// each issued on or before `today`. The same inputs give the same keys on every replica;
    /// the caller makes each whose key the store does not hold (a unique key).
    pub fn to_issue(
        &self,
        today: Date,
        last: Option<&Made>,
        service_before: Option<Date>,
        calendar: &WorkingHours,
    ) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let mut previous = last.copied();
        while let Some(next) = self.next(previous.as_ref(), service_before, calendar) {
            if next.issue_on > today {
                break;
            }
            previous = Some(Made { nominal: next.nominal, due: next.due, done: None });
            out.push(next);
        }
        out
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
        let first = schedule.to_issue(date(2026, 3, 1), None, None, &calendar);
        let keys: Vec<&str> = first.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
        assert!(first.iter().all(|o| o.issue_on <= date(2026, 3, 1) && calendar.is_working_day(o.due)));
        // A replica that knows the first two were done early computes other due days, the same keys.
        let known =
            Made { nominal: first[1].nominal, due: first[1].due, done: Some(first[1].due.saturating_sub(4.days())) };
        let later = schedule.to_issue(date(2026, 3, 1), Some(&known), None, &calendar);
        let later_keys: Vec<&str> = later.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(later_keys, keys[2..]);
    }
}
