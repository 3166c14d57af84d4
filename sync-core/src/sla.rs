//! SLA policies (时限节点): per organization, an ordered list of policies matching orders by
//! kind, category and grade (first match wins; the last must match everything), each setting
//! targets for response (the assigned technician accepts), on-site arrival and resolution, each
//! counted on a named [`Calendar`].
//!
//! The response clock never pauses. The resolution clock stops while the order is on a hold
//! that pauses it (waiting for parts, owner not home): the working time spent paused is added
//! to the target. Changing an order's grade or category re-targets it from its creation time,
//! keeping its paused time, because deadlines are always computed from the document.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, WorkingHours};
use crate::classification::{Category, Grade, Kind};
use crate::lifecycle::{OrderState, Status};

const MINUTE_MS: i64 = 60_000;

/// The longest target a policy may set: a year of minutes. Deadline arithmetic saturates
/// besides, so no book, valid or not, yields a deadline before the order's creation.
pub const MAX_TARGET_MINUTES: i64 = 366 * 24 * 60;

/// One target: so many minutes of working time on a calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub minutes: i64,
    /// A key of [`SlaBook::calendars`].
    pub calendar: String,
}

impl Target {
    pub fn new(minutes: i64, calendar: &str) -> Self {
        Target { minutes, calendar: calendar.to_owned() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    /// Orders of these kinds (empty: any).
    pub kinds: Vec<Kind>,
    /// Orders of these category codes (empty: any).
    pub categories: Vec<String>,
    /// Orders of these grades (empty: any).
    pub grades: Vec<Grade>,
    /// Until the assigned technician accepts (响应).
    pub response: Target,
    /// Until the technician is on site (到场), if the policy sets it.
    pub arrival: Option<Target>,
    /// Until the work is completed (处理完成).
    pub resolution: Target,
}

impl Policy {
    pub fn matches(&self, kind: Kind, category: &Category, grade: Grade) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.categories.is_empty() || self.categories.contains(&category.code()))
            && (self.grades.is_empty() || self.grades.contains(&grade))
    }

    fn matches_everything(&self) -> bool {
        self.kinds.is_empty() && self.categories.is_empty() && self.grades.is_empty()
    }
}

/// An organization's calendars and policies.
#[derive(Clone, Debug, PartialEq)]
pub struct SlaBook {
    pub calendars: BTreeMap<String, Calendar>,
    pub policies: Vec<Policy>,
}

/// Why a book of policies is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the last policy must match every order (no kinds, categories or grades)")]
    NoDefault,
    #[error("policy `{0}` names an unknown calendar `{1}`")]
    UnknownCalendar(String, String),
    #[error("policy `{0}` has a target that is not positive")]
    NotPositive(String),
    #[error("policy `{0}` has a target over {MAX_TARGET_MINUTES} minutes (a year)")]
    TooLong(String),
    #[error("policy `{0}` allows more time to respond than to resolve")]
    ResponseAfterResolution(String),
    #[error("policy `{0}` allows more time to arrive than to resolve")]
    ArrivalAfterResolution(String),
    #[error("{0}")]
    Invalid(String),
}

/// An order's deadlines under its policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlines {
    pub policy: String,
    pub response_due_ms: i64,
    pub arrival_due_ms: Option<i64>,
    /// `None` while a pausing hold stops the clock.
    pub resolution_due_ms: Option<i64>,
    /// Working time spent on pausing holds, added to the resolution target.
    pub paused_ms: i64,
}

impl SlaBook {
    /// The seeded defaults: planned maintenance taken up within a working day and done within
    /// five (office calendar); otherwise responses within 30 minutes round the clock; arrival within 2 hours;
    /// resolution by grade (一般 48 h, 较重 24 h, 严重 8 h, 重大 4 h) round the clock; complaints
    /// of grade 一般 resolved within 3 working days of the office calendar.
    pub fn defaults() -> Self {
        let mut calendars = BTreeMap::new();
        calendars.insert("24x7".to_owned(), Calendar::AlwaysOpen);
        calendars.insert("office".to_owned(), Calendar::Working(WorkingHours::china_office()));
        let by_grade = |name: &str, grade: Grade, hours: i64| Policy {
            name: name.to_owned(),
            kinds: Vec::new(),
            categories: Vec::new(),
            grades: vec![grade],
            response: Target::new(30, "24x7"),
            arrival: Some(Target::new(120, "24x7")),
            resolution: Target::new(hours * 60, "24x7"),
        };
        let policies = vec![
            // Planned work (计划维保) is made days ahead of its due day: taken up within a working
            // day, done within five; whether it was done by its due day is the plan's compliance
            // (docs/maintenance.md).
            Policy {
                name: "maintenance".into(),
                kinds: vec![Kind::Maintenance],
                categories: Vec::new(),
                grades: Vec::new(),
                response: Target::new(9 * 60, "office"),
                arrival: None,
                resolution: Target::new(5 * 9 * 60, "office"),
            },
            Policy {
                name: "complaint-minor".into(),
                kinds: vec![Kind::Complaint],
                categories: Vec::new(),
                grades: vec![Grade::Minor],
                response: Target::new(30, "24x7"),
                arrival: None,
                resolution: Target::new(3 * 9 * 60, "office"),
            },
            by_grade("critical", Grade::Critical, 4),
            by_grade("severe", Grade::Severe, 8),
            by_grade("serious", Grade::Serious, 24),
            Policy { name: "default".into(), grades: Vec::new(), ..by_grade("default", Grade::Minor, 48) },
        ];
        SlaBook { calendars, policies }
    }

    /// Checks the book: a default policy last, known calendars, positive targets, and response
    /// and arrival no later than resolution (compared in minutes of their own calendars).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !self.policies.last().is_some_and(Policy::matches_everything) {
            return Err(PolicyError::NoDefault);
        }
        for p in &self.policies {
            let targets = [Some(&p.response), p.arrival.as_ref(), Some(&p.resolution)];
            for t in targets.into_iter().flatten() {
                if !self.calendars.contains_key(&t.calendar) {
                    return Err(PolicyError::UnknownCalendar(p.name.clone(), t.calendar.clone()));
                }
                if t.minutes <= 0 {
                    return Err(PolicyError::NotPositive(p.name.clone()));
                }
                if t.minutes > MAX_TARGET_MINUTES {
                    return Err(PolicyError::TooLong(p.name.clone()));
                }
            }
            if p.response.minutes > p.resolution.minutes {
                return Err(PolicyError::ResponseAfterResolution(p.name.clone()));
            }
            if p.arrival.as_ref().is_some_and(|a| a.minutes > p.resolution.minutes) {
                return Err(PolicyError::ArrivalAfterResolution(p.name.clone()));
            }
        }
        Ok(())
    }

    /// The first policy that matches (the last one matches everything in a valid book).
    pub fn policy_for(&self, kind: Kind, category: &Category, grade: Grade) -> Option<&Policy> {
        self.policies.iter().find(|p| p.matches(kind, category, grade))
    }

    fn calendar(&self, name: &str) -> &Calendar {
        self.calendars.get(name).unwrap_or(&Calendar::AlwaysOpen)
    }

    /// An order's deadlines: every target counted from the order's creation on its calendar;
    /// the resolution target extended by the working time spent on pausing holds.
    pub fn deadlines(
        &self,
        kind: Kind,
        category: &Category,
        grade: Grade,
        state: &OrderState,
        created_at_ms: i64,
    ) -> Option<Deadlines> {
        let policy = self.policy_for(kind, category, grade)?;
        let due = |t: &Target, extra_ms: i64| {
            self.calendar(&t.calendar).add(created_at_ms, t.minutes.saturating_mul(MINUTE_MS).saturating_add(extra_ms))
        };
        let paused_ms = self.paused_ms(policy, state);
        Some(Deadlines {
            policy: policy.name.clone(),
            response_due_ms: due(&policy.response, 0),
            arrival_due_ms: policy.arrival.as_ref().map(|t| due(t, 0)),
            resolution_due_ms: (!Progress::of(state).on_pausing_hold).then(|| due(&policy.resolution, paused_ms)),
            paused_ms,
        })
    }

    /// Working time, on the resolution target's calendar, spent on finished pausing holds.
    fn paused_ms(&self, policy: &Policy, state: &OrderState) -> i64 {
        let calendar = self.calendar(&policy.resolution.calendar);
        state.pauses.iter().filter_map(|(start, end)| end.map(|end| calendar.working_between(*start, end))).sum()
    }
}

/// Where an order stands against its stages, as its state says.
struct Progress {
    /// It still owes work (open, and not waiting for the owner's answer).
    owes: bool,
    /// Accepted, or past it.
    responded: bool,
    /// On site, or past it.
    arrived: bool,
    /// On a hold that stops the resolution clock.
    on_pausing_hold: bool,
}

impl Progress {
    fn of(state: &OrderState) -> Self {
        Progress {
            owes: state.status.is_open() && state.status != Status::AwaitingConfirmation,
            responded: !matches!(state.status, Status::New | Status::Assigned),
            arrived: state.arrived_at_ms.is_some() || matches!(state.status, Status::InProgress | Status::OnHold),
            on_pausing_hold: state.status == Status::OnHold
                && state.pauses.last().is_some_and(|(_, end)| end.is_none()),
        }
    }
}

/// A stage of an order that has a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// 响应: the assigned technician accepts.
    Response,
    /// 到场
    Arrival,
    /// 处理完成
    Resolution,
}

impl Stage {
    pub fn code(self) -> &'static str {
        match self {
            Stage::Response => "response",
            Stage::Arrival => "arrival",
            Stage::Resolution => "resolution",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Stage::Response => "响应",
            Stage::Arrival => "到场",
            Stage::Resolution => "处理完成",
        }
    }
}

/// How far into a target's time an order is: warnings at half and three quarters, then breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Half,
    ThreeQuarters,
    Breach,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Half, Level::ThreeQuarters, Level::Breach];

    pub fn code(self) -> &'static str {
        match self {
            Level::Half => "warn_50",
            Level::ThreeQuarters => "warn_75",
            Level::Breach => "breach",
        }
    }

    fn fraction(self) -> (i64, i64) {
        match self {
            Level::Half => (1, 2),
            Level::ThreeQuarters => (3, 4),
            Level::Breach => (1, 1),
        }
    }
}

/// One instant at which an order crosses a level of a stage's target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    pub at_ms: i64,
    pub stage: Stage,
    pub level: Level,
    /// The stage's deadline, which identifies the target the checkpoint belongs to (a new
    /// grade, a pause or a rework moves it, and its checkpoints with it).
    pub due_ms: i64,
}

impl SlaBook {
    /// The checkpoints of every stage the order has not yet met, in time order. A stage is met
    /// once the order is past it (accepted; on site; completed), and an order that no longer owes
    /// work has none; the resolution stage has none while a pausing hold stops its clock.
    pub fn checkpoints(
        &self,
        kind: Kind,
        category: &Category,
        grade: Grade,
        state: &OrderState,
        created_at_ms: i64,
    ) -> Vec<Checkpoint> {
        let Some(policy) = self.policy_for(kind, category, grade) else { return Vec::new() };
        let progress = Progress::of(state);
        if !progress.owes {
            return Vec::new();
        }
        let mut stages: Vec<(Stage, &Target, i64)> = Vec::new();
        if !progress.responded {
            stages.push((Stage::Response, &policy.response, 0));
        }
        if let Some(arrival) = policy.arrival.as_ref().filter(|_| !progress.arrived) {
            stages.push((Stage::Arrival, arrival, 0));
        }
        if !progress.on_pausing_hold {
            stages.push((Stage::Resolution, &policy.resolution, self.paused_ms(policy, state)));
        }
        let mut out = Vec::new();
        for (stage, target, extra_ms) in stages {
            let calendar = self.calendar(&target.calendar);
            let target_ms = target.minutes.saturating_mul(MINUTE_MS);
            let due_ms = calendar.add(created_at_ms, target_ms.saturating_add(extra_ms));
            for level in Level::ALL {
                let (num, den) = level.fraction();
                let at_ms = calendar.add(created_at_ms, (target_ms / den).saturating_mul(num).saturating_add(extra_ms));
                out.push(Checkpoint { at_ms, stage, level, due_ms });
            }
        }
        out.sort();
        out
    }
}

/// What a phone shows: each stage's deadline under the policy and the next thing due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Countdown {
    pub policy: String,
    pub response_due_ms: i64,
    pub responded_at_ms: Option<i64>,
    pub arrival_due_ms: Option<i64>,
    pub arrived_at_ms: Option<i64>,
    /// `None` while a pausing hold stops the clock.
    pub resolution_due_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub paused: bool,
    /// The deadline of the first stage not yet met (`None` when nothing is owed).
    pub next_due_ms: Option<i64>,
}

impl SlaBook {
    /// The order's countdown under its policy, the same arithmetic the server's scan uses.
    pub fn countdown(
        &self,
        kind: Kind,
        category: &Category,
        grade: Grade,
        state: &OrderState,
        created_at_ms: i64,
    ) -> Option<Countdown> {
        let d = self.deadlines(kind, category, grade, state, created_at_ms)?;
        let Progress { owes, responded, arrived, .. } = Progress::of(state);
        let next_due_ms = if !owes {
            None
        } else if !responded {
            Some(d.response_due_ms)
        } else if let Some(arrival) = d.arrival_due_ms.filter(|_| !arrived) {
            Some(arrival)
        } else {
            d.resolution_due_ms
        };
        Some(Countdown {
            policy: d.policy,
            response_due_ms: d.response_due_ms,
            responded_at_ms: state.accepted_at_ms,
            arrival_due_ms: d.arrival_due_ms,
            arrived_at_ms: state.arrived_at_ms,
            resolution_due_ms: d.resolution_due_ms,
            resolved_at_ms: state.completed_at_ms,
            paused: owes && d.resolution_due_ms.is_none(),
            next_due_ms,
        })
    }
}

// ----- the book as JSON: how an organization edits it and how devices receive it -----

/// An organization's SLA book as JSON (`GET`/`PUT /api/v1/settings/sla`): its calendars by name,
/// and its policies, the first that matches an order applying (the last matches every order).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "SlaBook"))]
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookJson {
    pub calendars: BTreeMap<String, CalendarJson>,
    pub policies: Vec<PolicyJson>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "Calendar"))]
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum CalendarJson {
    #[serde(rename = "24x7")]
    AlwaysOpen,
    #[serde(rename = "working_hours")]
    WorkingHours {
        zone: String,
        open: String,
        close: String,
        /// ISO weekdays: 1 is Monday, 7 Sunday.
        weekdays: Vec<u8>,
        #[serde(default)]
        holidays: Vec<String>,
        #[serde(default)]
        working_days: Vec<String>,
    },
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "Policy"))]
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyJson {
    pub name: String,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub grades: Vec<String>,
    pub response: TargetJson,
    #[serde(default)]
    pub arrival: Option<TargetJson>,
    pub resolution: TargetJson,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "Target"))]
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetJson {
    pub minutes: i64,
    pub calendar: String,
}

fn invalid(en: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(en.into())
}

fn minute_of(text: &str) -> Result<u32, PolicyError> {
    let (h, m) = text.split_once(':').ok_or_else(|| invalid(format!("`{text}` is not HH:MM")))?;
    let (h, m): (u32, u32) =
        (h.parse().map_err(|_| invalid("hours are digits"))?, m.parse().map_err(|_| invalid("minutes are digits"))?);
    if h > 24 || m > 59 || h * 60 + m > 24 * 60 {
        return Err(invalid(format!("`{text}` is not a time of day")));
    }
    Ok(h * 60 + m)
}

fn dates(list: &[String]) -> Result<std::collections::BTreeSet<Date>, PolicyError> {
    list.iter().map(|d| d.parse::<Date>().map_err(|_| invalid(format!("`{d}` is not a date (YYYY-MM-DD)")))).collect()
}

/// The book the JSON describes, validated.
pub fn book_from_json(json: &BookJson) -> Result<SlaBook, PolicyError> {
    if json.calendars.len() > 20 || json.policies.len() > 200 {
        return Err(invalid("at most 20 calendars and 200 policies"));
    }
    let mut calendars = BTreeMap::new();
    for (name, c) in &json.calendars {
        let calendar = match c {
            CalendarJson::AlwaysOpen => Calendar::AlwaysOpen,
            CalendarJson::WorkingHours { zone, open, close, weekdays, holidays, working_days } => {
                let zone = jiff::tz::TimeZone::get(zone).map_err(|_| invalid(format!("unknown time zone `{zone}`")))?;
                let (open_minute, close_minute) = (minute_of(open)?, minute_of(close)?);
                if open_minute >= close_minute {
                    return Err(invalid(format!("calendar `{name}` closes before it opens")));
                }
                let mut days = [false; 7];
                for d in weekdays {
                    if !(1..=7).contains(d) {
                        return Err(invalid("weekdays are 1 (Monday) to 7 (Sunday)"));
                    }
                    days[usize::from(*d - 1)] = true;
                }
                Calendar::Working(WorkingHours {
                    zone,
                    open_minute,
                    close_minute,
                    weekdays: days,
                    holidays: dates(holidays)?,
                    working_days: dates(working_days)?,
                })
            }
        };
        calendars.insert(name.clone(), calendar);
    }
    let target = |t: &TargetJson| Target { minutes: t.minutes, calendar: t.calendar.clone() };
    let mut policies = Vec::new();
    for p in &json.policies {
        let kinds =
            p.kinds.iter().map(|k| Kind::from_code(k).map_err(|e| invalid(e.to_string()))).collect::<Result<_, _>>()?;
        let grades = p
            .grades
            .iter()
            .map(|g| Grade::from_code(g).map_err(|e| invalid(e.to_string())))
            .collect::<Result<_, _>>()?;
        let categories = p
            .categories
            .iter()
            .map(|c| Category::from_code(c).map(|c| c.code()).map_err(|e| invalid(e.to_string())))
            .collect::<Result<_, _>>()?;
        policies.push(Policy {
            name: p.name.chars().take(64).collect(),
            kinds,
            categories,
            grades,
            response: target(&p.response),
            arrival: p.arrival.as_ref().map(target),
            resolution: target(&p.resolution),
        });
    }
    let book = SlaBook { calendars, policies };
    book.validate()?;
    Ok(book)
}

/// The JSON of a book.
pub fn book_to_json(book: &SlaBook) -> BookJson {
    let day_list = |set: &std::collections::BTreeSet<Date>| set.iter().map(ToString::to_string).collect();
    let time = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let calendars = book
        .calendars
        .iter()
        .map(|(name, c)| {
            let json = match c {
                Calendar::AlwaysOpen => CalendarJson::AlwaysOpen,
                Calendar::Working(w) => CalendarJson::WorkingHours {
                    zone: w.zone.iana_name().unwrap_or("UTC").to_owned(),
                    open: time(w.open_minute),
                    close: time(w.close_minute),
                    weekdays: (1..=7u8).filter(|d| w.weekdays[usize::from(d - 1)]).collect(),
                    holidays: day_list(&w.holidays),
                    working_days: day_list(&w.working_days),
                },
            };
            (name.clone(), json)
        })
        .collect();
    let target = |t: &Target| TargetJson { minutes: t.minutes, calendar: t.calendar.clone() };
    let policies = book
        .policies
        .iter()
        .map(|p| PolicyJson {
            name: p.name.clone(),
            kinds: p.kinds.iter().map(|k| k.code().to_owned()).collect(),
            categories: p.categories.clone(),
            grades: p.grades.iter().map(|g| g.code().to_owned()).collect(),
            response: target(&p.response),
            arrival: p.arrival.as_ref().map(target),
            resolution: target(&p.resolution),
        })
        .collect();
    BookJson { calendars, policies }
}
