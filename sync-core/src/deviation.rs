//! Deviations from the service standard (服务标准偏离监测, docs/incidents.md): the company's own
//! promises — a response within 30 minutes, owners satisfied at 85 % or more, deadlines kept —
//! measured over a rolling window per project (and per project and category for deadlines), and
//! judged here: a figure below its target opens an episode, told once; the episode closes when
//! the figure is back above its target by a margin, so that a figure hovering at the target does
//! not tell anyone again and again.

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The share of orders responded to (accepted) within the standard's minutes, among the
    /// orders created in the window whose minutes have passed.
    Response,
    /// The share of owners' own ratings of 4 or 5 stars, among the orders finished in the window.
    Satisfaction,
    /// The share of orders that breached no deadline, among the orders created in the window
    /// that are judged (completed, or already breached).
    Deadlines,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::Response, Measure::Satisfaction, Measure::Deadlines];

    pub fn code(self) -> &'static str {
        match self {
            Measure::Response => "response",
            Measure::Satisfaction => "satisfaction",
            Measure::Deadlines => "deadlines",
        }
    }

    pub fn from_code(code: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Measure::Response => "响应及时率",
            Measure::Satisfaction => "满意率",
            Measure::Deadlines => "时限达标率",
        }
    }

    /// Whether the measure is kept per category within a project (deadlines), or per project.
    pub fn per_category(self) -> bool {
        self == Measure::Deadlines
    }
}

/// An organization's service standard and how it is watched (`GET`/`PUT
/// /api/v1/settings/service-standard`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Standard {
    /// The rolling window, hours.
    pub window_hours: u32,
    /// The least orders a figure needs to be judged (fewer: no judgement either way).
    pub min_orders: u32,
    /// The promised response, minutes (接单响应).
    pub response_minutes: u32,
    /// The least share of orders responded to within `response_minutes`.
    pub response_target: f64,
    /// The least share of owners' ratings of 4 or 5 stars.
    pub satisfaction_target: f64,
    /// The least share of orders that breached no deadline.
    pub deadlines_target: f64,
    /// How far above its target a figure must come back to close an episode.
    pub recovery_margin: f64,
    /// Office roles told when an episode opens: `dispatcher`, `supervisor`, `manager`, `admin`.
    pub notify: Vec<String>,
}

impl Default for Standard {
    fn default() -> Self {
        Standard {
            window_hours: 168,
            min_orders: 10,
            response_minutes: 30,
            response_target: 0.95,
            satisfaction_target: 0.85,
            deadlines_target: 0.90,
            recovery_margin: 0.02,
            notify: vec!["supervisor".to_owned(), "manager".to_owned()],
        }
    }
}

/// What makes a standard unusable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StandardFault {
    #[error("the window must be 1 to 2,160 hours (90 days); the least orders 1 to 100,000")]
    Window,
    #[error("the response must be 1 to 1,440 minutes")]
    Response,
    #[error("targets must be above 0 and at most 1; the recovery margin 0 to 0.2")]
    Target,
    #[error("the standard notifies 1 to 4 distinct office roles (dispatcher, supervisor, manager, admin)")]
    Notify,
}

impl Standard {
    pub fn check(&self) -> Result<(), StandardFault> {
        if !(1..=2_160).contains(&self.window_hours) || !(1..=100_000).contains(&self.min_orders) {
            return Err(StandardFault::Window);
        }
        if !(1..=1_440).contains(&self.response_minutes) {
            return Err(StandardFault::Response);
        }
        let targets = [self.response_target, self.satisfaction_target, self.deadlines_target];
        if targets.iter().any(|t| !(*t > 0.0 && *t <= 1.0)) || !(0.0..=0.2).contains(&self.recovery_margin) {
            return Err(StandardFault::Target);
        }
        if !crate::surge::notifiable(&self.notify) {
            return Err(StandardFault::Notify);
        }
        Ok(())
    }

    pub fn target(&self, measure: Measure) -> f64 {
        match measure {
            Measure::Response => self.response_target,
            Measure::Satisfaction => self.satisfaction_target,
            Measure::Deadlines => self.deadlines_target,
        }
    }

    pub fn window_ms(&self) -> i64 {
        i64::from(self.window_hours) * 3_600_000
    }

    /// What a figure means for its scope's episode: open one, close the open one, or nothing.
    pub fn judge(&self, measure: Measure, figure: Figure, open: bool) -> Judgement {
        let Some(value) = figure.value().filter(|_| figure.of >= u64::from(self.min_orders)) else {
            return Judgement::Stay;
        };
        let target = self.target(measure);
        match open {
            false if value < target => Judgement::Open,
            true if value >= (target + self.recovery_margin).min(1.0) => Judgement::Close,
            _ => Judgement::Stay,
        }
    }
}

/// A figure: `met` of `of` orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Figure {
    pub met: u64,
    pub of: u64,
}

impl Figure {
    /// The share met, when there is anything to share.
    pub fn value(self) -> Option<f64> {
        (self.of > 0).then(|| self.met as f64 / self.of as f64)
    }

    /// The share in thousandths (0 when empty).
    pub fn permille(self) -> i64 {
        self.value().map_or(0, |v| (v * 1000.0).round() as i64)
    }
}

/// What a figure does to its scope's episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    Open,
    Close,
    Stay,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(met: u64, of: u64) -> Figure {
        Figure { met, of }
    }

    #[test]
    fn an_episode_opens_below_the_target_and_closes_above_it_by_the_margin() {
        let s = Standard::default();
        // 0.80 < 0.85: opens; while open, 0.86 (between target and target + margin) stays open.
        assert_eq!(s.judge(Measure::Satisfaction, f(8, 10), false), Judgement::Open);
        assert_eq!(s.judge(Measure::Satisfaction, f(8, 10), true), Judgement::Stay);
        assert_eq!(s.judge(Measure::Satisfaction, f(86, 100), true), Judgement::Stay);
        assert_eq!(s.judge(Measure::Satisfaction, f(87, 100), true), Judgement::Close);
        // At the target exactly, nothing opens.
        assert_eq!(s.judge(Measure::Satisfaction, f(85, 100), false), Judgement::Stay);
    }

    #[test]
    fn too_few_orders_judge_nothing_either_way() {
        let s = Standard::default();
        assert_eq!(s.judge(Measure::Response, f(0, 9), false), Judgement::Stay);
        assert_eq!(s.judge(Measure::Response, f(9, 9), true), Judgement::Stay);
        assert_eq!(s.judge(Measure::Response, f(0, 0), true), Judgement::Stay);
        assert_eq!(s.judge(Measure::Response, f(0, 10), false), Judgement::Open);
    }

    #[test]
    fn a_target_of_one_closes_at_one() {
        let s = Standard { response_target: 1.0, ..Standard::default() };
        assert_eq!(s.judge(Measure::Response, f(9, 10), false), Judgement::Open);
        assert_eq!(s.judge(Measure::Response, f(10, 10), true), Judgement::Close);
    }

    #[test]
    fn standards_are_checked() {
        assert_eq!(Standard::default().check(), Ok(()));
        let bad = [
            (Standard { window_hours: 0, ..Standard::default() }, StandardFault::Window),
            (Standard { min_orders: 0, ..Standard::default() }, StandardFault::Window),
            (Standard { response_minutes: 0, ..Standard::default() }, StandardFault::Response),
            (Standard { satisfaction_target: 0.0, ..Standard::default() }, StandardFault::Target),
            (Standard { deadlines_target: f64::NAN, ..Standard::default() }, StandardFault::Target),
            (Standard { recovery_margin: 0.5, ..Standard::default() }, StandardFault::Target),
            (Standard { notify: vec![], ..Standard::default() }, StandardFault::Notify),
            (Standard { notify: vec!["owner".into()], ..Standard::default() }, StandardFault::Notify),
            (
                Standard { notify: vec!["manager".into(), "manager".into()], ..Standard::default() },
                StandardFault::Notify,
            ),
        ];
        for (standard, fault) in bad {
            assert_eq!(standard.check(), Err(fault), "{standard:?}");
        }
    }

    #[test]
    fn measures_have_codes() {
        for m in Measure::ALL {
            assert_eq!(Measure::from_code(m.code()), Some(m));
        }
        assert_eq!(Measure::from_code("speed"), None);
    }
}
