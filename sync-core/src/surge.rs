//! Complaint surges (投诉激增): many households reporting the same trouble at one place within
//! minutes (a burst riser, a building without power, a stopped lift), found as the reports arrive
//! and graded from level IV to level I. docs/incidents.md explains the method and its figures.
//!
//! Pure, as every rule here: the server runs a [`Detector`] on every registration; the backtest
//! (`loopwork-sim incidents`) replays weeks of history through the same code.
//!
//! - **Households, not orders:** a household reporting twice counts once.
//! - **Places form a tree:** project (小区) → building → riser (立管: the units of one entrance
//!   stacked floor above floor, `3-1502`, `3-1402`, …) → unit; a common area belongs to its
//!   building or, without one, to the project. Categories form a tree of two levels: a category
//!   and every category (`*`); the detector scans a report's own category (reports of several
//!   categories at once make incidents side by side), `*` is the baseline's and a hand merge's.
//! - **The baseline** ([`Baseline`]) is the rate of reports per node × category × hour of the day
//!   on three kinds of day that the business calendar tells apart: working days, rest days
//!   (weekends and public holidays, but not 调休 working weekends) and the first working day after
//!   a break of three days or more, when the backlog arrives. A node's own history is shrunk
//!   towards its share of the project's rate. The server learns it from history that excludes the
//!   members of incidents, so a surge never becomes the baseline; the detector's baseline does not
//!   move while it runs.
//! - **A surge** is a window (10, 30 or 60 minutes by default) in which a riser or a building
//!   (or a common area of the project) counts at least [`SurgeRules::min_households`] households
//!   of one category (the plain rule) *and* a count that the baseline makes improbable: the
//!   Poisson probability of as many or more is at most [`SurgeRules::max_p_value`] (the
//!   expectation-based Poisson scan statistic). The critical counts are computed once per set of
//!   rules ([`Thresholds`]). Every node and category is a candidate cluster scored by its
//!   log-likelihood ratio; the most likely one names the incident's node, and only if it passes.
//! - **An incident** absorbs the reports that made it and every later report under its node and
//!   category while it is open; it widens (a riser's incident becomes its building's, a building's
//!   its project's, merging the incidents below) when households outside it surge too; it takes no
//!   reports once resolved.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rustc_hash::{FxHashMap, FxHashSet};

use jiff::Timestamp;
use jiff::civil::Date;
use statrs::distribution::{DiscreteCDF, Poisson};

use crate::calendar::WorkingHours;
use crate::location::Location;

/// The category node that holds every category.
pub const ANY_CATEGORY: &str = "*";

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// How deep a node sits in the place tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One riser (立管) of an entrance: the same unit position on every floor.
    Riser,
    Building,
    Project,
}

/// A node of the place tree. A riser's node names its building; a building's names no riser.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub project: String,
    pub building: Option<String>,
    pub riser: Option<String>,
}

impl Node {
    pub fn project(project: &str) -> Node {
        Node { project: project.to_owned(), building: None, riser: None }
    }

    pub fn building(project: &str, building: &str) -> Node {
        Node { project: project.to_owned(), building: Some(building.to_owned()), riser: None }
    }

    pub fn scope(&self) -> Scope {
        match (&self.building, &self.riser) {
            (Some(_), Some(_)) => Scope::Riser,
            (Some(_), None) => Scope::Building,
            _ => Scope::Project,
        }
    }

    pub fn parent(&self) -> Option<Node> {
        match self.scope() {
            Scope::Riser => Some(Node { riser: None, ..self.clone() }),
            Scope::Building => Some(Node::project(&self.project)),
            Scope::Project => None,
        }
    }

    /// This node, then its ancestors up to the project.
    pub fn lineage(&self) -> impl Iterator<Item = Node> {
        std::iter::successors(Some(self.clone()), Node::parent)
    }

    /// Whether `other` is this node or lies below it.
    pub fn contains(&self, other: &Node) -> bool {
        self.project == other.project
            && match self.scope() {
                Scope::Project => true,
                Scope::Building => self.building == other.building,
                Scope::Riser => self == other,
            }
    }

    /// The lowest node holding both (`None` across projects).
    pub fn common(&self, other: &Node) -> Option<Node> {
        self.lineage().find(|n| n.contains(other))
    }

    /// The node of a report's location: a unit's riser, a common area's building, or the
    /// project when a common area names no building.
    pub fn of(location: &Location) -> Node {
        let building = location.building.clone().filter(|b| !b.is_empty());
        let riser = match (&building, &location.unit) {
            (Some(_), Some(unit)) => riser_of(unit),
            _ => None,
        };
        Node { project: location.project.clone(), riser: riser.filter(|_| building.is_some()), building }
    }

    /// zh-CN, as the desk shows it: `3栋 3单元02立管`, `3栋`, `全小区`.
    pub fn label_zh(&self) -> String {
        match (&self.building, &self.riser) {
            (Some(b), Some(r)) => match r.split_once('*') {
                Some((entrance, room)) if !entrance.is_empty() => {
                    format!("{b}栋 {}单元{room}立管", entrance.trim_end_matches('-'))
                }
                Some((_, room)) => format!("{b}栋 {room}立管"),
                None => format!("{b}栋 {r}"),
            },
            (Some(b), None) => format!("{b}栋"),
            _ => "全小区".to_owned(),
        }
    }
}

/// The riser of a unit code: the entrance and the unit's position on its floor, the floor left
/// out (`3-1502` and `3-0802` share riser `3-*02`; `1502` is riser `*02`). A unit code that does
/// not end in a floor and a two-digit position (three digits or more) has no riser.
pub fn riser_of(unit: &str) -> Option<String> {
    let digits = unit.chars().rev().take_while(char::is_ascii_digit).count();
    if digits < 3 {
        return None;
    }
    let split = unit.len() - digits;
    let (prefix, number) = unit.split_at(split);
    Some(format!("{prefix}*{}", &number[number.len() - 2..]))
}

/// One registration as the detector sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The order's id (or any key the caller tracks it by).
    pub order: String,
    /// Registration time, Unix milliseconds.
    pub at_ms: i64,
    /// The household: its unit code, or for a report about a common area the reporter's own unit
    /// or user id. Counts are of distinct households.
    pub household: String,
    pub node: Node,
    /// The category code (`water_electric`, …).
    pub category: String,
    /// A life-safety rule matched (trapped in a lift, gas, fire, …): an incident holding one is
    /// level I.
    pub life_safety: bool,
}

/// The kind of day an hour belongs to, by the business calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    Working,
    /// Weekends and public holidays (a 调休 working weekend is a working day).
    Rest,
    /// The first working day after three or more rest days: the backlog of a long holiday.
    AfterBreak,
}

impl DayKind {
    fn index(self) -> usize {
        match self {
            DayKind::Working => 0,
            DayKind::Rest => 1,
            DayKind::AfterBreak => 2,
        }
    }

    fn of_day(calendar: &WorkingHours, day: Date) -> DayKind {
        if !calendar.is_working_day(day) {
            return DayKind::Rest;
        }
        let rest_before = std::iter::successors(day.yesterday().ok(), |d| d.yesterday().ok())
            .take(3)
            .filter(|d| !calendar.is_working_day(*d))
            .count();
        if rest_before == 3 { DayKind::AfterBreak } else { DayKind::Working }
    }
}

/// The kind of day of an instant, by the business calendar.
pub fn day_kind(calendar: &WorkingHours, at_ms: i64) -> DayKind {
    match Timestamp::from_millisecond(at_ms) {
        Ok(at) => DayKind::of_day(calendar, at.to_zoned(calendar.zone.clone()).date()),
        Err(_) => DayKind::Working,
    }
}

const SLOTS: usize = 3 * 24;

/// An instant's slot of the baseline: its kind of day and its local hour.
fn slot(calendar: &WorkingHours, at_ms: i64) -> usize {
    let Ok(at) = Timestamp::from_millisecond(at_ms) else { return 0 };
    let local = at.to_zoned(calendar.zone.clone());
    DayKind::of_day(calendar, local.date()).index() * 24 + local.hour() as usize
}

/// With no hour of the kind observed yet (a first long holiday), the first working day after a
/// break is expected at this multiple of a working day.
const AFTER_BREAK_PRIOR: f64 = 2.0;

/// How many hours of its project's rate a node's own history is weighed against.
const PRIOR_HOURS: f64 = 8.0;

/// Reports per household and day a new organization is assumed to make, before its history
/// (weighed as [`NEW_PRIOR_HOURS`] hours of it) says otherwise; and one category's share of them.
const NEW_DAILY_RATE: f64 = 0.006;
const NEW_CATEGORY_SHARE: f64 = 0.2;
const NEW_PRIOR_HOURS: f64 = 48.0;

/// The least rate per household and hour assumed for any category: a category never seen still
/// needs a surge to be a surge.
const FLOOR_RATE: f64 = 2e-6;

/// Expected reports per node × category × slot, learned from history (docs/incidents.md).
#[derive(Clone, Debug)]
pub struct Baseline {
    calendar: Option<WorkingHours>,
    /// Households under each node (from the estate register).
    households: HashMap<Node, u32>,
    /// Distinct household-hours reported per node, category and slot (`*` holds every category).
    counts: HashMap<Node, HashMap<String, [u32; SLOTS]>>,
    /// Hours of each slot the history covered.
    exposure: [f64; SLOTS],
}

impl Baseline {
    /// Learns from `history` (reports outside incidents) between `from_ms` and `to_ms`.
    /// `households` holds every unit as its node (a unit's riser, or its building where it has
    /// none); the counts of buildings and the project are summed from it.
    pub fn learn(
        calendar: &WorkingHours,
        units: impl IntoIterator<Item = Node>,
        history: &[Report],
        from_ms: i64,
        to_ms: i64,
    ) -> Baseline {
        let mut households: HashMap<Node, u32> = HashMap::new();
        for unit in units {
            for node in unit.lineage() {
                *households.entry(node).or_default() += 1;
            }
        }
        let mut exposure = [0.0; SLOTS];
        let mut hour = from_ms - from_ms.rem_euclid(HOUR_MS);
        while hour < to_ms {
            exposure[slot(calendar, hour)] += 1.0;
            hour += HOUR_MS;
        }
        let mut seen = BTreeSet::new();
        let mut counts: HashMap<Node, HashMap<String, [u32; SLOTS]>> = HashMap::new();
        for report in history.iter().filter(|r| (from_ms..to_ms).contains(&r.at_ms)) {
            if !seen.insert((report.household.as_str(), report.category.as_str(), report.at_ms.div_euclid(HOUR_MS))) {
                continue;
            }
            let s = slot(calendar, report.at_ms);
            for node in report.node.lineage() {
                let node = counts.entry(node).or_default();
                for category in [report.category.as_str(), ANY_CATEGORY] {
                    node.entry(category.to_owned()).or_insert([0; SLOTS])[s] += 1;
                }
            }
        }
        Baseline { calendar: Some(calendar.clone()), households, counts, exposure }
    }

    /// Households under a node (0 for a node the register does not know).
    pub fn households(&self, node: &Node) -> u32 {
        self.households.get(node).copied().unwrap_or(0)
    }

    /// The buildings of a project the register knows.
    pub fn buildings(&self, project: &str) -> usize {
        self.households.keys().filter(|n| n.project == project && n.scope() == Scope::Building).count()
    }

    /// Reports expected at a node in a category in the `window_ms` before `at_ms`.
    pub fn expected(&self, node: &Node, category: &str, at_ms: i64, window_ms: i64) -> f64 {
        let Some(calendar) = &self.calendar else { return 0.0 };
        let s = slot(calendar, at_ms);
        let hours = window_ms as f64 / HOUR_MS as f64;
        const NONE: [u32; SLOTS] = [0; SLOTS];
        let counts = |n: &Node| self.counts.get(n).and_then(|c| c.get(category)).unwrap_or(&NONE);
        let project = Node::project(&node.project);
        let (own, all) = (counts(node), counts(&project));
        let share = match self.households(&project) {
            0 => 1.0,
            all => f64::from(self.households(node)) / f64::from(all),
        };
        // What a new organization is expected to report before its history says otherwise.
        let category_share = if category == ANY_CATEGORY { 1.0 } else { NEW_CATEGORY_SHARE };
        let new_rate = NEW_DAILY_RATE / 24.0 * f64::from(self.households(&project)) * category_share;
        let working_seen = self.exposure[..24].iter().sum::<f64>() > 0.0;
        let per_hour = |s: usize| -> Option<f64> {
            // The project's rate at this hour, shrunk towards its rate over the whole kind of day
            // (an hour with few reports in history is not an hour when nothing happens), itself
            // shrunk towards a new organization's rate …
            let kind = s - s % 24..s - s % 24 + 24;
            let day_exposure: f64 = self.exposure[kind.clone()].iter().sum();
            if day_exposure <= 0.0 && s / 24 == DayKind::AfterBreak.index() && working_seen {
                return None;
            }
            let day_count = all[kind].iter().map(|c| f64::from(*c)).sum::<f64>();
            let day_rate = (day_count + NEW_PRIOR_HOURS * new_rate) / (day_exposure + NEW_PRIOR_HOURS);
            let exposure = self.exposure[s];
            let project_rate = (f64::from(all[s]) + PRIOR_HOURS * day_rate) / (exposure + PRIOR_HOURS);
            // … and the node's own history shrunk towards its share of the project's.
            Some((f64::from(own[s]) + PRIOR_HOURS * project_rate * share) / (exposure + PRIOR_HOURS))
        };
        let rate = per_hour(s).or_else(|| {
            // A kind of day never seen: a first working day after a break is a busy working day;
            // anything else falls back to the working day's hour.
            let hour = s % 24;
            let factor = if s / 24 == DayKind::AfterBreak.index() { AFTER_BREAK_PRIOR } else { 1.0 };
            per_hour(hour).map(|r| r * factor)
        });
        let floor = FLOOR_RATE * f64::from(self.households(node).max(1));
        rate.unwrap_or(0.0).max(floor) * hours
    }
}

/// The response levels, from the least to the most serious (Ⅳ级 … Ⅰ级).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Level {
    #[serde(rename = "IV")]
    Four,
    #[serde(rename = "III")]
    Three,
    #[serde(rename = "II")]
    Two,
    #[serde(rename = "I")]
    One,
}

impl Level {
    pub fn label_zh(self) -> &'static str {
        match self {
            Level::Four => "Ⅳ级(一般)",
            Level::Three => "Ⅲ级(较大)",
            Level::Two => "Ⅱ级(重大)",
            Level::One => "Ⅰ级(特别重大)",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Level::Four => "IV",
            Level::Three => "III",
            Level::Two => "II",
            Level::One => "I",
        }
    }

    /// The level of a code [`Level::code`] gives (`IV` … `I`).
    pub fn from_code(code: &str) -> Option<Level> {
        [Level::Four, Level::Three, Level::Two, Level::One].into_iter().find(|l| l.code() == code)
    }
}

/// An organization's rules for surges (its own copy; these defaults are docs/incidents.md's).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "SurgeRules"))]
#[serde(deny_unknown_fields, default)]
pub struct SurgeRules {
    /// The scanning windows, minutes.
    pub windows_minutes: Vec<u32>,
    /// The least households that make a surge (the plain rule: ≥ N households, one node, one
    /// category, within a window).
    pub min_households: u32,
    /// The largest Poisson probability of the count under the baseline that is still a surge.
    pub max_p_value: f64,
    /// The least households outside an open incident, under its parent node, that widen it.
    pub widen_min_households: u32,
    /// Level III from this many households, or any incident of a whole building.
    pub level_three_households: u32,
    /// Level II from this many households, or an incident over several buildings.
    pub level_two_households: u32,
    /// Level I when an incident covers this share of the project's buildings (or holds a
    /// life-safety report).
    pub level_one_building_share: f64,
    /// What each level sets in motion (the graded response).
    pub response: Responses,
    /// A report that joins an open incident later (not in the surge that opened or widened it)
    /// becomes a member at once when the confidence that it belongs ([`join_confidence`]) is
    /// at least this; below it, it is suggested to the dispatcher, who accepts or dismisses it.
    /// 0 makes every join automatic, 1 every later join a suggestion.
    pub auto_join_confidence: f64,
}

/// The graded response (分级响应): what each level of incident sets in motion.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Responses {
    #[serde(rename = "IV")]
    pub four: LevelResponse,
    #[serde(rename = "III")]
    pub three: LevelResponse,
    #[serde(rename = "II")]
    pub two: LevelResponse,
    #[serde(rename = "I")]
    pub one: LevelResponse,
}

/// Who is told when an incident reaches a level, whether its members' deadlines are covered by
/// the incident, and which owners get its notice.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LevelResponse {
    /// Office roles told (in-app and through the webhooks) when an incident reaches the level:
    /// `dispatcher` (customer service on duty), `supervisor` (the duty manager, 值班主管),
    /// `manager` (project manager), `admin` (the company's regional management).
    pub notify: Vec<String>,
    /// Whether the incident's members, but its first, stop firing deadline warnings and
    /// breaches of their own while it is open (the first member carries the incident's).
    pub cover_members: bool,
    /// Who sees the incident's notice (停水通知): `affected`, every owner of a unit under the
    /// incident's place; `reporters`, the households that reported.
    pub notice: NoticeReach,
}

/// Which owners see an incident's notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NoticeReach {
    Affected,
    Reporters,
}

/// The office roles a level (or the service standard) may notify.
pub const NOTIFIABLE: &[&str] = &["dispatcher", "supervisor", "manager", "admin"];

/// Whether roles to notify are 1 to 4 distinct office roles ([`NOTIFIABLE`]).
pub fn notifiable(roles: &[String]) -> bool {
    let distinct: FxHashSet<&String> = roles.iter().collect();
    !roles.is_empty() && distinct.len() == roles.len() && roles.iter().all(|r| NOTIFIABLE.contains(&r.as_str()))
}

impl Default for Responses {
    fn default() -> Self {
        let level = |notify: &[&str], cover_members: bool| LevelResponse {
            notify: notify.iter().map(|r| (*r).to_owned()).collect(),
            cover_members,
            notice: NoticeReach::Affected,
        };
        Responses {
            four: level(&["dispatcher", "supervisor"], true),
            three: level(&["dispatcher", "supervisor", "manager"], true),
            two: level(&["dispatcher", "supervisor", "manager", "admin"], true),
            // Lives at risk: every household's own deadlines stand.
            one: level(&["dispatcher", "supervisor", "manager", "admin"], false),
        }
    }
}

impl Responses {
    pub fn of(&self, level: Level) -> &LevelResponse {
        match level {
            Level::Four => &self.four,
            Level::Three => &self.three,
            Level::Two => &self.two,
            Level::One => &self.one,
        }
    }
}

impl Default for SurgeRules {
    fn default() -> Self {
        SurgeRules {
            windows_minutes: vec![10, 30, 60],
            min_households: 5,
            max_p_value: 1e-6,
            widen_min_households: 3,
            level_three_households: 30,
            level_two_households: 200,
            level_one_building_share: 0.5,
            response: Responses::default(),
            auto_join_confidence: 0.9,
        }
    }
}

/// What makes a set of surge rules unusable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SurgeRulesFault {
    #[error("windows must be 1 to 5 values of 1 to 240 minutes")]
    Windows,
    #[error("auto_join_confidence must be 0 to 1")]
    Confidence,
    #[error("households thresholds must be 2 to 100,000, levels in order (IV < III < II)")]
    Households,
    #[error("the p-value must be above 0 and at most 0.05; the building share above 0 and at most 1")]
    Probability,
    #[error("a level notifies 1 to 4 distinct office roles (dispatcher, supervisor, manager, admin)")]
    Notify,
}

impl SurgeRules {
    pub fn check(&self) -> Result<(), SurgeRulesFault> {
        let windows = &self.windows_minutes;
        if windows.is_empty() || windows.len() > 5 || windows.iter().any(|w| !(1..=240).contains(w)) {
            return Err(SurgeRulesFault::Windows);
        }
        let counts =
            [self.min_households, self.widen_min_households, self.level_three_households, self.level_two_households];
        if counts.iter().any(|c| !(2..=100_000).contains(c))
            || self.min_households > self.level_three_households
            || self.level_three_households > self.level_two_households
        {
            return Err(SurgeRulesFault::Households);
        }
        let p = self.max_p_value;
        let share = self.level_one_building_share;
        if !(p > 0.0 && p <= 0.05 && share > 0.0 && share <= 1.0) {
            return Err(SurgeRulesFault::Probability);
        }
        if !(0.0..=1.0).contains(&self.auto_join_confidence) {
            return Err(SurgeRulesFault::Confidence);
        }
        if [Level::Four, Level::Three, Level::Two, Level::One].iter().any(|l| !notifiable(&self.response.of(*l).notify))
        {
            return Err(SurgeRulesFault::Notify);
        }
        Ok(())
    }

    /// The level an incident's extent calls for, among `all_buildings` of its project: level
    /// I for a life-safety report or half the buildings (by default), II from 200 households or
    /// several buildings, III from 30 or a whole building, else IV.
    pub fn grade(&self, incident: &Incident, all_buildings: usize) -> Level {
        let households = incident.households.len() as u32;
        let buildings = incident.buildings.len();
        if incident.life_safety
            || (incident.node.scope() == Scope::Project
                && buildings as f64 >= self.level_one_building_share * all_buildings.max(1) as f64
                && buildings >= 2)
        {
            Level::One
        } else if households >= self.level_two_households || buildings >= 2 {
            Level::Two
        } else if households >= self.level_three_households || incident.node.scope() >= Scope::Building {
            Level::Three
        } else {
            Level::Four
        }
    }

    fn max_window_ms(&self) -> i64 {
        i64::from(self.windows_minutes.iter().copied().max().unwrap_or(60)) * MINUTE_MS
    }
}

/// The critical counts of a set of rules, computed once: for expectations on a logarithmic grid,
/// the least count whose Poisson probability of as many or more is at most the rules' p-value.
/// An expectation is rounded up to the grid (the conservative side).
#[derive(Clone, Debug)]
pub struct Thresholds {
    critical: Vec<u32>,
}

const GRID_LOW: f64 = 1e-5;
const GRID_RATIO: f64 = 1.25;
const GRID_POINTS: usize = 90;

impl Thresholds {
    pub fn new(max_p_value: f64) -> Thresholds {
        // The critical count never falls as the expectation rises: each point's search starts
        // at the last point's count.
        let mut c = 1u32;
        let critical = (0..GRID_POINTS)
            .map(|k| {
                let mean = GRID_LOW * GRID_RATIO.powi(k as i32);
                let poisson = Poisson::new(mean).expect("a positive mean");
                // P(X ≥ c) = sf(c − 1).
                while c < u32::MAX && poisson.sf(u64::from(c) - 1) > max_p_value {
                    c += 1;
                }
                c
            })
            .collect();
        Thresholds { critical }
    }

    /// The least count that is improbable at this expectation.
    pub fn critical(&self, expected: f64) -> u32 {
        let k = if expected <= GRID_LOW { 0 } else { ((expected / GRID_LOW).ln() / GRID_RATIO.ln()).ceil() as usize };
        self.critical.get(k).copied().unwrap_or(u32::MAX)
    }
}

/// The expectation-based Poisson log-likelihood ratio of `count` against `expected` (0 when the
/// count is not above it).
pub fn log_likelihood_ratio(count: u32, expected: f64) -> f64 {
    let c = f64::from(count);
    if c <= expected || expected <= 0.0 { 0.0 } else { c * (c / expected).ln() - (c - expected) }
}

/// An incident (事件单) as the detector keeps it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Incident {
    pub id: u64,
    pub node: Node,
    /// A category code, or [`ANY_CATEGORY`].
    pub category: String,
    pub level: Level,
    /// When the detector opened it.
    pub opened_ms: i64,
    /// Its earliest member's registration.
    pub first_report_ms: i64,
    /// Its member orders, in the order they joined.
    pub members: Vec<String>,
    pub households: BTreeSet<String>,
    pub buildings: BTreeSet<String>,
    /// The score (log-likelihood ratio) of the test that opened or last widened it.
    pub score: f64,
    pub life_safety: bool,
    pub resolved: bool,
}

/// What refuses a merge or a split made by hand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandFault {
    #[error("incidents of different projects are not merged")]
    OtherProject,
    #[error("an incident is not merged into itself")]
    Itself,
    #[error("a split takes some of the incident's member orders, not none and not all")]
    SplitWhole,
}

impl Incident {
    /// `other` merged into this one by hand: its members join; the place is the lowest node
    /// holding both, the category theirs if they share it (else every category); the level
    /// the higher of the two and of what the whole calls for.
    pub fn merged_with(
        &self,
        other: &Incident,
        rules: &SurgeRules,
        all_buildings: usize,
    ) -> Result<Incident, HandFault> {
        if self.id == other.id {
            return Err(HandFault::Itself);
        }
        let node = self.node.common(&other.node).ok_or(HandFault::OtherProject)?;
        let mut merged = self.clone();
        merged.node = node;
        if merged.category != other.category {
            merged.category = ANY_CATEGORY.to_owned();
        }
        merged.members.extend(other.members.iter().filter(|m| !self.members.contains(m)).cloned());
        merged.households.extend(other.households.iter().cloned());
        merged.buildings.extend(other.buildings.iter().cloned());
        merged.first_report_ms = self.first_report_ms.min(other.first_report_ms);
        merged.life_safety |= other.life_safety;
        merged.level = self.level.max(other.level).max(rules.grade(&merged, all_buildings));
        Ok(merged)
    }

    /// Some of this incident's members (`taken`) split off by hand into a new incident
    /// numbered `id`, given every member's report (`reports`, with their places): the new one's
    /// place is the lowest node holding its reports, its category theirs if they share one, its
    /// level what they call for. This incident keeps the rest, its households and buildings
    /// recounted (its place and level unchanged: levels only rise).
    pub fn split_off(
        &self,
        reports: &[Report],
        taken: &[String],
        id: u64,
        now_ms: i64,
        rules: &SurgeRules,
        all_buildings: usize,
    ) -> Result<(Incident, Incident), HandFault> {
        let moving: Vec<&Report> = reports.iter().filter(|r| taken.contains(&r.order)).collect();
        if moving.is_empty()
            || moving.len() != taken.len()
            || taken.iter().any(|t| !self.members.contains(t))
            || moving.len() >= self.members.len()
        {
            return Err(HandFault::SplitWhole);
        }
        let node = moving
            .iter()
            .skip(1)
            .try_fold(moving[0].node.clone(), |n, r| n.common(&r.node))
            .ok_or(HandFault::OtherProject)?;
        let category = if moving.iter().all(|r| r.category == moving[0].category) {
            moving[0].category.clone()
        } else {
            ANY_CATEGORY.to_owned()
        };
        let mut new = Incident {
            id,
            node,
            category,
            level: Level::Four,
            opened_ms: now_ms,
            first_report_ms: moving.iter().map(|r| r.at_ms).min().unwrap_or(now_ms),
            members: moving.iter().map(|r| r.order.clone()).collect(),
            households: moving.iter().map(|r| r.household.clone()).collect(),
            buildings: moving.iter().filter_map(|r| r.node.building.clone()).collect(),
            score: 0.0,
            life_safety: moving.iter().any(|r| r.life_safety),
            resolved: false,
        };
        new.level = rules.grade(&new, all_buildings);
        let mut rest = self.clone();
        rest.members.retain(|m| !taken.contains(m));
        let staying: Vec<&Report> = reports.iter().filter(|r| rest.members.contains(&r.order)).collect();
        rest.households = staying.iter().map(|r| r.household.clone()).collect();
        rest.buildings = staying.iter().filter_map(|r| r.node.building.clone()).collect();
        rest.first_report_ms = staying.iter().map(|r| r.at_ms).min().unwrap_or(rest.first_report_ms);
        rest.life_safety = staying.iter().any(|r| r.life_safety);
        Ok((rest, new))
    }

    fn takes(&self, report: &Report) -> bool {
        !self.resolved
            && self.node.contains(&report.node)
            && (self.category == ANY_CATEGORY || self.category == report.category)
    }
}

/// The confidence that a report belongs to an incident whose place counts `households` in a
/// window where the baseline expects `expected`: the share of them the incident explains
/// (the attributable fraction `1 − expected / households`, 0 when the count is not above the
/// expectation). At a riser, where a report an hour is rare, even one report is near 1; over a
/// whole community, where reports come anyway, a lone later report is less sure.
pub fn join_confidence(households: u32, expected: f64) -> f64 {
    if households == 0 || !expected.is_finite() {
        return 0.0;
    }
    (1.0 - expected.max(0.0) / f64::from(households)).clamp(0.0, 1.0)
}

/// What one report did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// No surge: the report stands alone.
    Quiet,
    /// It joined an open incident, with the confidence that it belongs ([`join_confidence`]).
    Joined { incident: u64, confidence: f64 },
    /// It completed a surge: a new incident with the reports of its window.
    Opened { incident: u64 },
    /// It made an incident wider (its node moved up), merging the incidents named.
    Widened { incident: u64, merged: Vec<u64> },
}

/// A test that fired: a node, a category and a window with its counts.
#[derive(Clone, Debug)]
struct Firing {
    node: Node,
    category: String,
    window_ms: i64,
    score: f64,
    /// Open incidents under the node this firing widens.
    widens: Vec<u64>,
}

/// The detector: the reports of the longest window and the incidents. The server rebuilds it from
/// storage; the backtest keeps one for the whole replay.
#[derive(Clone, Debug)]
pub struct Detector {
    rules: SurgeRules,
    thresholds: Thresholds,
    recent: VecDeque<Report>,
    incidents: Vec<Incident>,
    /// Which open incident holds each order of `recent`.
    held: FxHashMap<String, u64>,
    /// Held orders that are not their incident's members (suggested to, or dismissed by, a
    /// dispatcher): a later join's confidence does not count them.
    uncertain: FxHashSet<String>,
    next_id: u64,
}

impl Detector {
    pub fn new(rules: SurgeRules) -> Detector {
        let thresholds = Thresholds::new(rules.max_p_value);
        Detector::with_thresholds(rules, thresholds)
    }

    /// A detector with critical counts computed before for the rules' p-value (a server keeps
    /// them: computing them takes milliseconds).
    pub fn with_thresholds(rules: SurgeRules, thresholds: Thresholds) -> Detector {
        Detector {
            rules,
            thresholds,
            recent: VecDeque::new(),
            incidents: Vec::new(),
            held: FxHashMap::default(),
            uncertain: FxHashSet::default(),
            next_id: 1,
        }
    }

    /// A detector as storage left it: the open incidents (their members' recent reports among
    /// `recent`), the reports of the longest window before now in time order, and the next
    /// incident's number.
    pub fn resume(mut self, incidents: Vec<Incident>, recent: Vec<Report>, next_id: u64) -> Detector {
        let holders: FxHashMap<&str, u64> = incidents
            .iter()
            .filter(|i| !i.resolved)
            .flat_map(|i| i.members.iter().map(move |m| (m.as_str(), i.id)))
            .collect();
        for report in &recent {
            if let Some(holder) = holders.get(report.order.as_str()) {
                self.held.insert(report.order.clone(), *holder);
            }
        }
        self.recent = recent.into();
        self.incidents = incidents.into_iter().filter(|i| !i.resolved).collect();
        self.next_id = next_id.max(1);
        self
    }

    pub fn rules(&self) -> &SurgeRules {
        &self.rules
    }

    /// An order its incident holds without counting it as a member (a suggestion, or one a
    /// dispatcher dismissed): later joins' confidence leaves it out.
    pub fn hold_uncertain(&mut self, order: &str) {
        self.uncertain.insert(order.to_owned());
    }

    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    pub fn incident(&self, id: u64) -> Option<&Incident> {
        self.incidents.iter().find(|i| i.id == id)
    }

    /// The incident resolved: it takes no more reports, and its members no longer count towards
    /// a new surge (a new one needs new households).
    pub fn resolve(&mut self, id: u64) {
        let Some(incident) = self.incidents.iter_mut().find(|i| i.id == id) else { return };
        incident.resolved = true;
        let members: BTreeSet<&str> = incident.members.iter().map(String::as_str).collect();
        self.recent.retain(|r| !members.contains(r.order.as_str()));
        self.held.retain(|_, holder| *holder != id);
    }

    /// One registration, in time order.
    pub fn observe(&mut self, report: Report, baseline: &Baseline) -> Outcome {
        let horizon = report.at_ms - self.rules.max_window_ms();
        while self.recent.front().is_some_and(|r| r.at_ms <= horizon) {
            if let Some(gone) = self.recent.pop_front() {
                self.held.remove(&gone.order);
            }
        }
        // The narrowest open incident that takes it.
        let joined = self.incidents.iter().filter(|i| i.takes(&report)).min_by_key(|i| i.node.scope()).map(|i| i.id);
        self.recent.push_back(report.clone());
        if let Some(id) = joined {
            self.absorb(id, &report);
            self.regrade(id, baseline);
        }
        let Some(firing) = self.scan(&report, baseline) else {
            return joined.map_or(Outcome::Quiet, |incident| Outcome::Joined {
                incident,
                confidence: self.confidence(incident, &report, baseline),
            });
        };
        let members: Vec<Report> = self
            .recent
            .iter()
            .filter(|r| r.at_ms > report.at_ms - firing.window_ms)
            .filter(|r| firing.node.contains(&r.node))
            .filter(|r| firing.category == ANY_CATEGORY || firing.category == r.category)
            .cloned()
            .collect();
        let outcome = if let Some((&keep, merged)) = firing.widens.split_first() {
            for id in merged {
                let Some(gone) = self.incidents.iter().position(|i| i.id == *id) else { continue };
                let gone = self.incidents.remove(gone);
                let target = self.incidents.iter_mut().find(|i| i.id == keep).expect("kept incident");
                let had: FxHashSet<String> = target.members.iter().cloned().collect();
                for member in gone.members {
                    if let Some(holder) = self.held.get_mut(&member) {
                        *holder = keep;
                    }
                    if !had.contains(&member) {
                        target.members.push(member);
                    }
                }
                target.households.extend(gone.households);
                target.buildings.extend(gone.buildings);
                target.first_report_ms = target.first_report_ms.min(gone.first_report_ms);
                target.life_safety |= gone.life_safety;
            }
            let target = self.incidents.iter_mut().find(|i| i.id == keep).expect("kept incident");
            target.node = firing.node.clone();
            target.category = firing.category.clone();
            target.score = firing.score;
            Outcome::Widened { incident: keep, merged: merged.to_vec() }
        } else {
            let id = self.next_id;
            self.next_id += 1;
            self.incidents.push(Incident {
                id,
                node: firing.node.clone(),
                category: firing.category.clone(),
                level: Level::Four,
                opened_ms: report.at_ms,
                first_report_ms: report.at_ms,
                members: Vec::new(),
                households: BTreeSet::new(),
                buildings: BTreeSet::new(),
                score: firing.score,
                life_safety: false,
                resolved: false,
            });
            Outcome::Opened { incident: id }
        };
        let id = match &outcome {
            Outcome::Opened { incident } | Outcome::Widened { incident, .. } => *incident,
            _ => unreachable!("a firing opens or widens"),
        };
        for member in &members {
            // A report another open incident holds stays there unless this one merged it.
            if self.held.get(&member.order).is_some_and(|holder| *holder != id) {
                continue;
            }
            self.absorb(id, member);
        }
        self.regrade(id, baseline);
        outcome
    }

    /// The confidence that a report joining the open incident `id` belongs to it: of the
    /// households the incident holds in the longest window up to the report, the share above
    /// what the baseline expects there ([`join_confidence`]).
    fn confidence(&self, id: u64, report: &Report, baseline: &Baseline) -> f64 {
        let Some(incident) = self.incident(id) else { return 0.0 };
        let window_ms = self.rules.max_window_ms();
        let households: FxHashSet<&str> = self
            .recent
            .iter()
            .filter(|r| r.at_ms > report.at_ms - window_ms && self.held.get(&r.order) == Some(&id))
            .filter(|r| r.order == report.order || !self.uncertain.contains(&r.order))
            .map(|r| r.household.as_str())
            .collect();
        let expected = baseline.expected(&incident.node, &incident.category, report.at_ms, window_ms);
        join_confidence(households.len() as u32, expected)
    }

    fn absorb(&mut self, id: u64, report: &Report) {
        // Every member of an open incident was a recent report when it joined: `held` knows.
        if self.held.get(&report.order) == Some(&id) {
            return;
        }
        let Some(incident) = self.incidents.iter_mut().find(|i| i.id == id) else { return };
        incident.members.push(report.order.clone());
        self.held.insert(report.order.clone(), id);
        incident.households.insert(report.household.clone());
        if let Some(building) = &report.node.building {
            incident.buildings.insert(building.clone());
        }
        incident.first_report_ms = incident.first_report_ms.min(report.at_ms);
        incident.life_safety |= report.life_safety;
    }

    /// The level an incident has reached (levels only rise).
    fn regrade(&mut self, id: u64, baseline: &Baseline) {
        let rules = &self.rules;
        let Some(incident) = self.incidents.iter_mut().find(|i| i.id == id) else { return };
        let all_buildings = baseline.buildings(&incident.node.project).max(1);
        incident.level = incident.level.max(rules.grade(incident, all_buildings));
    }

    /// The surge the report completes, if any. Every node from the report's own up to the
    /// project, in the report's category, over every window, is a
    /// candidate cluster scored by its log-likelihood ratio; the most likely one (Kulldorff's
    /// most likely cluster) opens or widens an incident if it passes the rules (enough
    /// households, improbable under the baseline). A likelier cluster that does not pass yet
    /// (four households of one riser) holds back a wider one that would (those four and a stray
    /// report elsewhere in the project): the fifth household of the riser opens the riser's.
    fn scan(&self, report: &Report, baseline: &Baseline) -> Option<Firing> {
        let mut best: Option<(Firing, bool)> = None;
        let mut windows: Vec<(i64, FxHashSet<&str>, FxHashSet<&str>)> = self
            .rules
            .windows_minutes
            .iter()
            .map(|m| (i64::from(*m) * MINUTE_MS, FxHashSet::default(), FxHashSet::default()))
            .collect();
        let horizon = report.at_ms - self.rules.max_window_ms();
        // The report's category only: reports of different categories at one place at once (a power
        // cut stopping lifts and pumps) are incidents side by side, not one guessed.
        let category = report.category.as_str();
        let takes = |i: &Incident| i.category == ANY_CATEGORY || i.category == category;
        for node in report.node.lineage() {
            // An open incident at or above this node that takes this category already holds
            // whatever would open here.
            if self.incidents.iter().any(|i| !i.resolved && i.node.contains(&node) && takes(i)) {
                continue;
            }
            // Open incidents below this node in this category: a surge here widens them.
            let below: Vec<&Incident> = self
                .incidents
                .iter()
                .filter(|i| !i.resolved && node.contains(&i.node))
                .filter(|i| category == ANY_CATEGORY || i.category == category)
                .collect();
            // The plain rule: an incident opens at one building (or at the place itself: a
            // common area of the project); the project is reached by widening.
            if below.is_empty() && node.scope() == Scope::Project && node != report.node {
                continue;
            }
            for (_, households, outside) in &mut windows {
                households.clear();
                outside.clear();
            }
            for r in self.recent.iter().rev().take_while(|r| r.at_ms > horizon) {
                if !node.contains(&r.node) || (category != ANY_CATEGORY && r.category != category) {
                    continue;
                }
                // A report another open incident holds is that incident's, not a new surge's.
                if self.held.get(&r.order).is_some_and(|holder| below.iter().all(|i| i.id != *holder)) {
                    continue;
                }
                let is_outside = !below.iter().any(|i| i.node.contains(&r.node));
                for (window_ms, households, outside) in &mut windows {
                    if r.at_ms > report.at_ms - *window_ms {
                        households.insert(&r.household);
                        if is_outside {
                            outside.insert(&r.household);
                        }
                    }
                }
            }
            for (window_ms, households, outside) in &windows {
                let all = households.len() as u32;
                if all < 2 {
                    continue;
                }
                let expected = baseline.expected(&node, category, report.at_ms, *window_ms);
                // Opening: every household against the node's expectation. Widening: the
                // households outside the incidents below against the rest of it (what is
                // new), so that an incident's own members never make a wider cluster likely.
                let (count, against, least) = if below.is_empty() {
                    (all, expected, self.rules.min_households)
                } else {
                    let inside: f64 =
                        below.iter().map(|i| baseline.expected(&i.node, category, report.at_ms, *window_ms)).sum();
                    let rest = (expected - inside).max(expected * 0.01);
                    (outside.len() as u32, rest, self.rules.widen_min_households)
                };
                let score = log_likelihood_ratio(count, against);
                if count < 2 || best.as_ref().is_some_and(|(b, _)| b.score >= score) {
                    continue;
                }
                let passes = count >= least && count >= self.thresholds.critical(against);
                let mut widens: Vec<u64> = below.iter().map(|i| i.id).collect();
                widens.sort_unstable();
                let firing =
                    Firing { node: node.clone(), category: category.to_owned(), window_ms: *window_ms, score, widens };
                best = Some((firing, passes));
            }
        }
        best.filter(|(_, passes)| *passes).map(|(firing, _)| firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONDAY: i64 = 1_795_363_200_000; // 2026-11-23 00:00 +08:00

    fn estate() -> Vec<Node> {
        // 4 buildings × 2 entrances × 20 floors × 2 units = 320 households.
        let mut units = Vec::new();
        for b in 1..=4 {
            for e in 1..=2 {
                for floor in 1..=20 {
                    for room in 1..=2 {
                        let unit = format!("{e}-{floor:02}{room:02}");
                        units.push(Node::of(&Location::unit("p", &b.to_string(), &unit)));
                    }
                }
            }
        }
        units
    }

    fn report(n: usize, at_ms: i64, building: u32, unit: &str, category: &str) -> Report {
        Report {
            order: format!("o{n}"),
            at_ms,
            household: format!("{building}/{unit}"),
            node: Node::of(&Location::unit("p", &building.to_string(), unit)),
            category: category.to_owned(),
            life_safety: false,
        }
    }

    /// Four weeks of quiet history: a report every hour but the hours from 10 to 11, somewhere,
    /// categories in turn.
    fn history(until: i64) -> Vec<Report> {
        let from = until - 28 * 24 * HOUR_MS;
        (0..28 * 24)
            .filter(|h| h % 24 != 10)
            .map(|h| {
                let b = (h % 4 + 1) as u32;
                let unit = format!("{}-{:02}{:02}", h % 2 + 1, h % 20 + 1, h % 2 + 1);
                let category = ["doors_windows", "water_electric", "cleaning"][(h + h / 24) % 3];
                report(100_000 + h, from + h as i64 * HOUR_MS + 17 * MINUTE_MS, b, &unit, category)
            })
            .collect()
    }

    fn baseline(until: i64) -> Baseline {
        Baseline::learn(&WorkingHours::china_office(), estate(), &history(until), until - 28 * 24 * HOUR_MS, until)
    }

    #[test]
    fn a_riser_is_the_entrance_and_the_position_on_the_floor() {
        assert_eq!(riser_of("3-1502").as_deref(), Some("3-*02"));
        assert_eq!(riser_of("3-0802"), riser_of("3-1502"));
        assert_ne!(riser_of("3-1501"), riser_of("3-1502"));
        assert_eq!(riser_of("1502").as_deref(), Some("*02"));
        assert_eq!(riser_of("B2"), None);
        let node = Node::of(&Location::unit("p", "3", "3-1502"));
        assert_eq!(node.scope(), Scope::Riser);
        assert_eq!(node.label_zh(), "3栋 3单元02立管");
        assert_eq!(node.lineage().count(), 3);
        assert!(Node::building("p", "3").contains(&node));
        assert!(!Node::building("p", "4").contains(&node));
        let lift = Node::of(&Location { building: Some("3".into()), ..Location::common_area("p", "电梯") });
        assert_eq!(lift, Node::building("p", "3"));
    }

    #[test]
    fn critical_counts_rise_with_the_expectation_and_round_up() {
        let t = Thresholds::new(1e-6);
        assert!(t.critical(1e-4) <= 2);
        assert!(t.critical(0.5) > t.critical(0.01));
        assert!(t.critical(5.0) >= 15, "{}", t.critical(5.0));
        // Exactly the statistic: at the critical count the tail is within the p-value, one less is not.
        let mean = 2.0;
        let c = t.critical(mean);
        let tail = |c: u32| Poisson::new(mean).unwrap().sf(u64::from(c) - 1);
        assert!(tail(c) <= 1e-6 && tail(c - 1) > 1e-6 || c > 1, "{c}");
        assert!(tail(c) <= 1e-6);
        assert!(log_likelihood_ratio(10, 1.0) > log_likelihood_ratio(5, 1.0));
        assert_eq!(log_likelihood_ratio(1, 2.0), 0.0);
    }

    #[test]
    fn five_households_of_one_riser_open_a_level_four_incident_and_a_sixth_joins() {
        let at = MONDAY + 7 * 24 * HOUR_MS + 2 * HOUR_MS; // a Monday, 02:00
        let base = baseline(at - HOUR_MS);
        let mut detector = Detector::new(SurgeRules::default());
        for floor in 1..=4 {
            let outcome = detector.observe(
                report(floor, at + floor as i64 * MINUTE_MS, 3, &format!("1-{floor:02}02"), "water_electric"),
                &base,
            );
            assert_eq!(outcome, Outcome::Quiet, "floor {floor}");
        }
        // The same household again does not count.
        assert_eq!(
            detector.observe(report(50, at + 5 * MINUTE_MS, 3, "1-0402", "water_electric"), &base),
            Outcome::Quiet
        );
        let fifth = detector.observe(report(5, at + 6 * MINUTE_MS, 3, "1-0502", "water_electric"), &base);
        assert_eq!(fifth, Outcome::Opened { incident: 1 });
        let incident = detector.incident(1).unwrap();
        assert_eq!(incident.node, Node::of(&Location::unit("p", "3", "1-0102")));
        assert_eq!(incident.category, "water_electric");
        assert_eq!(incident.level, Level::Four);
        assert_eq!(incident.households.len(), 5);
        assert_eq!(incident.members.len(), 6);
        let joined = detector.observe(report(6, at + 9 * MINUTE_MS, 3, "1-0902", "water_electric"), &base);
        assert!(
            matches!(joined, Outcome::Joined { incident: 1, confidence } if confidence > 0.99),
            "a riser expects almost nothing: {joined:?}"
        );
        // Another category at the same riser is not this incident.
        assert_eq!(detector.observe(report(7, at + 9 * MINUTE_MS, 3, "1-1002", "cleaning"), &base), Outcome::Quiet);
        // Resolved, it takes nothing more.
        detector.resolve(1);
        assert_eq!(
            detector.observe(report(8, at + 10 * MINUTE_MS, 3, "1-1102", "water_electric"), &base),
            Outcome::Quiet
        );
    }

    #[test]
    fn scattered_reports_of_one_category_across_the_project_are_no_surge() {
        let at = MONDAY + 7 * 24 * HOUR_MS + 12 * HOUR_MS;
        let base = baseline(at - HOUR_MS);
        let mut detector = Detector::new(SurgeRules::default());
        // Six households in six places over an hour: a busy hour, not an incident.
        for n in 0..6u32 {
            let outcome = detector.observe(
                report(
                    n as usize,
                    at + i64::from(n) * 10 * MINUTE_MS,
                    n % 4 + 1,
                    &format!("{}-{:02}01", n % 2 + 1, n + 3),
                    "water_electric",
                ),
                &base,
            );
            assert_eq!(outcome, Outcome::Quiet, "report {n}");
        }
    }

    #[test]
    fn a_riser_incident_widens_to_its_building_when_other_risers_surge() {
        let at = MONDAY + 7 * 24 * HOUR_MS + 3 * HOUR_MS;
        let base = baseline(at - HOUR_MS);
        let mut detector = Detector::new(SurgeRules::default());
        let mut n = 0;
        let mut next = |detector: &mut Detector, unit: String, minute: i64| {
            n += 1;
            detector.observe(report(n, at + minute * MINUTE_MS, 2, &unit, "water_electric"), &base)
        };
        for floor in 1..=5 {
            next(&mut detector, format!("1-{floor:02}01"), floor);
        }
        assert_eq!(detector.incident(1).unwrap().node.scope(), Scope::Riser);
        // Other risers of building 2: two are not enough (the rules' least), a fourth within
        // minutes is improbable at this building's rate.
        assert_eq!(next(&mut detector, "2-0102".into(), 7), Outcome::Quiet);
        assert_eq!(next(&mut detector, "2-0301".into(), 8), Outcome::Quiet);
        assert_eq!(next(&mut detector, "1-0702".into(), 9), Outcome::Quiet, "three, at this building's rate");
        assert_eq!(next(&mut detector, "2-0902".into(), 9), Outcome::Widened { incident: 1, merged: vec![] });
        let incident = detector.incident(1).unwrap();
        assert_eq!(incident.node, Node::building("p", "2"));
        assert_eq!(incident.households.len(), 9);
        assert_eq!(incident.level, Level::Three, "a whole building");
        let joined = next(&mut detector, "2-1202".into(), 10);
        assert!(matches!(joined, Outcome::Joined { incident: 1, confidence } if confidence > 0.9), "{joined:?}");
    }

    #[test]
    fn a_join_is_as_sure_as_the_incident_explains_its_place_s_count() {
        assert!((join_confidence(10, 0.01) - 0.999).abs() < 1e-12);
        assert_eq!(join_confidence(1, 0.5), 0.5);
        assert_eq!(join_confidence(2, 3.0), 0.0, "no more than expected: nothing explained");
        assert_eq!(join_confidence(0, 0.0), 0.0);
        assert_eq!(join_confidence(3, f64::NAN), 0.0);
        // A whole project's incident: a lone report long after its surge is less sure than one
        // in the thick of it.
        let at = MONDAY + 7 * 24 * HOUR_MS + 12 * HOUR_MS;
        let base = baseline(at - HOUR_MS);
        let mut detector = Detector::new(SurgeRules::default());
        let incident = Incident {
            id: 1,
            node: Node::project("p"),
            category: "water_electric".into(),
            level: Level::Two,
            opened_ms: at - 3 * HOUR_MS,
            first_report_ms: at - 3 * HOUR_MS,
            members: vec![],
            households: BTreeSet::new(),
            buildings: BTreeSet::new(),
            score: 30.0,
            life_safety: false,
            resolved: false,
        };
        detector = detector.resume(vec![incident], vec![], 2);
        let lone = detector.observe(report(1, at, 3, "1-0902", "water_electric"), &base);
        let Outcome::Joined { incident: 1, confidence: lone } = lone else { panic!("{lone:?}") };
        // Suggested (not a member), it does not vouch for the next report.
        detector.hold_uncertain("o1");
        let second = detector.observe(report(2, at + MINUTE_MS, 2, "1-0802", "water_electric"), &base);
        let Outcome::Joined { incident: 1, confidence: second } = second else { panic!("{second:?}") };
        assert!((second - lone).abs() < 1e-9, "a suggestion does not count: {lone} then {second}");
        let mut thick = 0.0;
        for n in 3..=12u32 {
            let outcome = detector.observe(
                report(n as usize, at + i64::from(n) * MINUTE_MS, n % 4 + 1, &format!("1-{n:02}01"), "water_electric"),
                &base,
            );
            if let Outcome::Joined { confidence, .. } = outcome {
                thick = confidence;
            }
        }
        assert!(lone < 0.9 && thick > 0.9 && thick > lone, "lone {lone}, in the thick of it {thick}");
    }

    #[test]
    fn surges_in_several_buildings_merge_into_one_incident_of_the_project() {
        let at = MONDAY + 7 * 24 * HOUR_MS + 20 * HOUR_MS;
        let base = baseline(at - HOUR_MS);
        let mut detector = Detector::new(SurgeRules::default());
        let mut n = 0;
        for minute in 0..40i64 {
            let building = (minute % 4 + 1) as u32;
            let unit = format!("{}-{:02}{:02}", minute % 2 + 1, minute / 4 + 1, minute % 3 % 2 + 1);
            n += 1;
            detector.observe(report(n, at + minute * MINUTE_MS / 2, building, &unit, "water_electric"), &base);
        }
        let open: Vec<&Incident> = detector.incidents().iter().filter(|i| !i.resolved).collect();
        assert_eq!(open.len(), 1, "{open:#?}");
        assert_eq!(open[0].node, Node::project("p"));
        assert_eq!(open[0].level, Level::One, "every building");
        assert_eq!(open[0].members.len(), 40);
    }

    #[test]
    fn a_detector_resumed_from_storage_goes_on_as_the_one_that_stopped() {
        let at = MONDAY + 7 * 24 * HOUR_MS + 2 * HOUR_MS;
        let base = baseline(at - HOUR_MS);
        let mut running = Detector::new(SurgeRules::default());
        let mut reports = Vec::new();
        for floor in 1..=7 {
            let r = report(floor, at + floor as i64 * MINUTE_MS, 3, &format!("1-{floor:02}02"), "water_electric");
            reports.push(r.clone());
            running.observe(r, &base);
        }
        let resumed =
            |d: &Detector| Detector::new(SurgeRules::default()).resume(d.incidents().to_vec(), reports.clone(), 2);
        let mut again = resumed(&running);
        let next = report(8, at + 9 * MINUTE_MS, 3, "1-0802", "water_electric");
        assert_eq!(again.observe(next.clone(), &base), running.observe(next, &base));
        assert_eq!(again.incidents(), running.incidents());
        // A new surge of another kind elsewhere gets the next number.
        for floor in 1..=5 {
            let r = report(20 + floor, at + 10 * MINUTE_MS, 1, &format!("2-{floor:02}01"), "cleaning");
            let outcome = again.observe(r, &base);
            assert_eq!(outcome == Outcome::Opened { incident: 2 }, floor == 5, "{outcome:?}");
        }
    }

    #[test]
    fn a_life_safety_report_makes_an_incident_level_one() {
        let at = MONDAY + 7 * 24 * HOUR_MS + 2 * HOUR_MS;
        let base = baseline(at - HOUR_MS);
        let mut detector = Detector::new(SurgeRules::default());
        for floor in 1..=5 {
            let mut r = report(floor, at + floor as i64 * MINUTE_MS, 1, &format!("2-{floor:02}01"), "elevator");
            r.life_safety = floor == 3;
            detector.observe(r, &base);
        }
        assert_eq!(detector.incident(1).unwrap().level, Level::One);
    }

    #[test]
    fn the_first_working_day_after_a_long_break_is_its_own_kind_of_day() {
        let calendar = WorkingHours::china_office();
        let day = |m, d| jiff::civil::date(2026, m, d);
        assert_eq!(DayKind::of_day(&calendar, day(2, 24)), DayKind::AfterBreak, "after the Spring Festival");
        assert_eq!(DayKind::of_day(&calendar, day(2, 20)), DayKind::Rest);
        assert_eq!(DayKind::of_day(&calendar, day(2, 14)), DayKind::Working, "调休 Saturday");
        assert_eq!(DayKind::of_day(&calendar, day(11, 23)), DayKind::Working, "an ordinary Monday");
        assert_eq!(DayKind::of_day(&calendar, day(1, 4)), DayKind::AfterBreak, "a Sunday worked after New Year");
    }

    #[test]
    fn the_baseline_learns_each_kind_of_day_and_hour_and_shrinks_small_nodes_to_their_share() {
        let at = MONDAY + 7 * 24 * HOUR_MS;
        let base = baseline(at);
        let project = base.expected(&Node::project("p"), ANY_CATEGORY, at + 12 * HOUR_MS, HOUR_MS);
        let quiet_hour = base.expected(&Node::project("p"), ANY_CATEGORY, at + 10 * HOUR_MS, HOUR_MS);
        assert!(
            quiet_hour > 0.05 && quiet_hour < project,
            "an hour with no history keeps part of the day's rate: {quiet_hour}"
        );
        assert!((project - 1.0).abs() < 0.05, "a report an hour: {project}");
        // Riser 1-*02 of building 1 has no history of its own.
        let riser =
            base.expected(&Node::of(&Location::unit("p", "1", "1-0102")), ANY_CATEGORY, at + 12 * HOUR_MS, HOUR_MS);
        assert!(riser < project / 4.0 && riser > 0.0, "{riser}");
        let never = base.expected(&Node::project("p"), "parking", at + 12 * HOUR_MS, HOUR_MS);
        assert!(never > 0.0 && never < 0.01, "a category never seen keeps a floor: {never}");
        assert_eq!(base.households(&Node::project("p")), 320);
        assert_eq!(base.buildings("p"), 4);
    }

    #[test]
    fn the_backlog_of_the_first_working_day_after_the_spring_festival_is_no_surge() {
        // Rules an organization might tighten to (three households, p ≤ 0.001), so that the kind
        // of day decides: reports at building 1's plant room, two an hour from 09:00 on every
        // working day of the four weeks before Tuesday 24 February 2026.
        let china = WorkingHours::china_office();
        let naive = WorkingHours { holidays: BTreeSet::new(), working_days: BTreeSet::new(), ..china.clone() };
        let at = |m: i8, d: i8, h: i8, min: i8| {
            jiff::civil::date(2026, m, d)
                .at(h, min, 0, 0)
                .to_zoned(china.zone.clone())
                .unwrap()
                .timestamp()
                .as_millisecond()
        };
        let plant_room = Node::of(&Location { building: Some("1".into()), ..Location::common_area("p", "水泵房") });
        let mut history = Vec::new();
        let (from, to) = (at(1, 26, 0, 0), at(2, 24, 0, 0));
        let mut day = from;
        while day < to {
            if day_kind(&china, day + 10 * HOUR_MS) != DayKind::Rest {
                for k in 0..2 {
                    history.push(Report {
                        order: format!("h{day}-{k}"),
                        at_ms: day + 9 * HOUR_MS + (10 + 25 * k) * MINUTE_MS,
                        household: format!("1/history-{k}"),
                        node: plant_room.clone(),
                        category: "water_electric".into(),
                        life_safety: false,
                    });
                }
            }
            day += 24 * HOUR_MS;
        }
        let rules = SurgeRules { min_households: 3, max_p_value: 1e-3, ..SurgeRules::default() };
        let thresholds = Thresholds::new(rules.max_p_value);
        let morning = at(2, 24, 9, 55);
        let knowing = Baseline::learn(&china, estate(), &history, from, to);
        let not_knowing = Baseline::learn(&naive, estate(), &history, from, to);
        let needed = |b: &Baseline| {
            thresholds.critical(b.expected(&Node::building("p", "1"), "water_electric", morning, HOUR_MS))
        };
        // Knowing the holiday, the morning after it is expected busier than a working day.
        let (backlog, knowing_needs) = (needed(&not_knowing), needed(&knowing));
        assert!(backlog >= 3 && backlog < knowing_needs, "{backlog} households, {knowing_needs} needed");
        let replay = |baseline: &Baseline| {
            let mut detector = Detector::new(rules.clone());
            (0..backlog)
                .map(|n| Report {
                    order: format!("o{n}"),
                    at_ms: at(2, 24, 9, 0) + i64::from(n) * 55 * MINUTE_MS / i64::from(backlog),
                    household: format!("1/backlog-{n}"),
                    node: plant_room.clone(),
                    category: "water_electric".into(),
                    life_safety: false,
                })
                .map(|r| detector.observe(r, baseline))
                .filter(|o| *o != Outcome::Quiet)
                .count()
        };
        assert_eq!(replay(&knowing), 0, "the backlog after the Spring Festival is not a surge");
        assert_eq!(replay(&not_knowing), 1, "a calendar without the holiday raises a false alarm");
    }

    #[test]
    fn rules_are_checked() {
        assert_eq!(SurgeRules::default().check(), Ok(()));
        let bad = SurgeRules { windows_minutes: vec![], ..SurgeRules::default() };
        assert_eq!(bad.check(), Err(SurgeRulesFault::Windows));
        let bad = SurgeRules { level_three_households: 3, ..SurgeRules::default() };
        assert_eq!(bad.check(), Err(SurgeRulesFault::Households));
        let bad = SurgeRules { max_p_value: 0.0, ..SurgeRules::default() };
        assert_eq!(bad.check(), Err(SurgeRulesFault::Probability));
        let bad = SurgeRules { max_p_value: f64::NAN, ..SurgeRules::default() };
        assert_eq!(bad.check(), Err(SurgeRulesFault::Probability));
        for confidence in [-0.1, 1.01, f64::NAN] {
            let bad = SurgeRules { auto_join_confidence: confidence, ..SurgeRules::default() };
            assert_eq!(bad.check(), Err(SurgeRulesFault::Confidence), "{confidence}");
        }
        for notify in [vec![], vec!["owner"], vec!["technician"], vec!["manager", "manager"]] {
            let mut bad = SurgeRules::default();
            bad.response.three.notify = notify.iter().map(|r| (*r).to_owned()).collect();
            assert_eq!(bad.check(), Err(SurgeRulesFault::Notify), "{notify:?}");
        }
    }

    #[test]
    fn incidents_merge_and_split_by_hand() {
        let rules = SurgeRules::default();
        let at = 1_790_000_000_000;
        let report = |order: &str, building: &str, unit: &str, category: &str| Report {
            order: order.into(),
            at_ms: at,
            household: format!("{building}/{unit}"),
            node: Node::of(&Location::unit("p", building, unit)),
            category: category.into(),
            life_safety: false,
        };
        let incident = |id: u64, reports: &[&Report]| Incident {
            id,
            node: reports[0].node.clone(),
            category: reports[0].category.clone(),
            level: Level::Four,
            opened_ms: at,
            first_report_ms: at,
            members: reports.iter().map(|r| r.order.clone()).collect(),
            households: reports.iter().map(|r| r.household.clone()).collect(),
            buildings: reports.iter().filter_map(|r| r.node.building.clone()).collect(),
            score: 1.0,
            life_safety: false,
            resolved: false,
        };
        let (a1, a2) = (report("a1", "3", "2-0101", "water_electric"), report("a2", "3", "2-0201", "water_electric"));
        let (b1, b2) = (report("b1", "3", "2-0102", "water_electric"), report("b2", "4", "1-0101", "elevator"));
        let a = incident(1, &[&a1, &a2]);
        let mut b = incident(2, &[&b1, &b2]);
        b.node = Node::project("p");
        b.category = ANY_CATEGORY.to_owned();
        // Two risers of building 3 and building 4: the project, every category, two buildings.
        let merged = a.merged_with(&b, &rules, 10).expect("merged");
        assert_eq!(merged.node, Node::project("p"));
        assert_eq!(merged.category, ANY_CATEGORY);
        assert_eq!(merged.members, ["a1", "a2", "b1", "b2"]);
        assert_eq!(merged.level, Level::Two, "several buildings");
        assert_eq!(a.merged_with(&a, &rules, 10), Err(HandFault::Itself));
        let mut elsewhere = b.clone();
        elsewhere.node = Node::project("q");
        assert_eq!(a.merged_with(&elsewhere, &rules, 10), Err(HandFault::OtherProject));

        // Building 4's lift report split off again: its own place and category; the rest keeps
        // its place, with its households recounted.
        let all = [a1.clone(), a2.clone(), b1.clone(), b2.clone()];
        let (rest, new) = merged.split_off(&all, &["b2".to_owned()], 3, at + 1, &rules, 10).expect("split");
        assert_eq!((new.id, &new.node, new.category.as_str()), (3, &b2.node, "elevator"));
        assert_eq!(new.level, Level::Four);
        assert_eq!(rest.members, ["a1", "a2", "b1"]);
        assert_eq!(rest.households.len(), 3);
        assert_eq!(rest.buildings.len(), 1);
        for bad in
            [vec![], vec!["a1".to_owned(), "a2".to_owned(), "b1".to_owned(), "b2".to_owned()], vec!["zz".to_owned()]]
        {
            assert_eq!(merged.split_off(&all, &bad, 3, at, &rules, 10).err(), Some(HandFault::SplitWhole), "{bad:?}");
        }
    }

    #[test]
    fn the_graded_response_reads_and_defaults_per_level() {
        let rules = SurgeRules::default();
        assert!(rules.response.of(Level::Four).cover_members);
        assert!(!rules.response.of(Level::One).cover_members, "lives at risk: every household's deadlines stand");
        assert!(rules.response.of(Level::Two).notify.contains(&"admin".to_owned()));
        // Rules stored before the graded response read with its defaults.
        let old: SurgeRules = serde_json::from_str(r#"{"min_households": 6}"#).expect("reads");
        assert_eq!(old.response, Responses::default());
        let json = serde_json::to_value(&rules).expect("json");
        assert_eq!(json["response"]["IV"]["notice"], "affected");
    }
}
