//! Repeated failures (predictive maintenance, 问题单) and the reliability of assets in business
//! hours: MTBF and MTTR (docs/maintenance.md).
//!
//! Two rules raise a problem record on an asset, each measured on a labelled synthetic history
//! (`loopwork-sim failures`):
//! - **repeated**: at least [`Rules::repeat_count`] corrective orders on one asset within
//!   [`Rules::repeat_window_ms`], a count whose Poisson probability at the rate of its peers is
//!   at most [`Rules::repeat_max_p_value`] (four repairs in a month is news for a lift, not for
//!   a type that fails weekly);
//! - **outlier**: over the look-back, the asset failed far more often than the other assets of
//!   its type: the Poisson probability of as many failures or more, at the rate of its peers
//!   (leave-one-out) over its own time in service, is at most [`Rules::max_p_value`].
//!
//! Both count **faults**, not orders: an order reported within [`Rules::same_fault_ms`] of its
//! fault's first order is a repair that did not hold (返修), the same fault again ([`new_faults`]); that is the
//! repair's quality (the repeat-repair rate), not the asset wearing out. A problem is not raised
//! again on the same asset within [`Rules::cooldown_ms`] of the last, nor after it without a
//! fault since, so that a known problem does not nag while its preventive work is done.

use std::collections::HashMap;

use statrs::distribution::{DiscreteCDF, Poisson};

use crate::calendar::Calendar;

const DAY_MS: i64 = 86_400_000;

/// An asset as the rules see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Asset {
    pub id: String,
    /// Its type (`elevator`, `water_pump`): peers are assets of the same type.
    pub asset_type: String,
    /// When it entered service (its time of exposure starts then).
    pub in_service_ms: i64,
}

/// A corrective order on an asset (a repair, not planned work).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub order: String,
    pub asset: String,
    pub reported_ms: i64,
    /// When the asset worked again (`None`: not yet).
    pub restored_ms: Option<i64>,
}

/// An organization's thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub repeat_count: u32,
    pub repeat_window_ms: i64,
    pub repeat_max_p_value: f64,
    /// The outlier rule's look-backs: a count improbable over any of them raises (each at
    /// `max_p_value` divided by their number).
    pub lookbacks_ms: Vec<i64>,
    pub max_p_value: f64,
    /// The fewest failures the outlier rule raises on.
    pub min_outlier_count: u32,
    pub cooldown_ms: i64,
    /// An order this soon after its fault's first order is the same fault again.
    pub same_fault_ms: i64,
}

impl Default for Rules {
    /// Four faults in 30 days, improbable at the peers' rate (10⁻³); or, over 180 days, a count
    /// with a Poisson probability of at most 10⁻³ at its peers' rate (and at least 3); 30 days'
    /// cooldown. Chosen on the synthetic history (docs/maintenance.md gives what other choices
    /// cost: shorter look-backs added nothing).
    fn default() -> Self {
        Rules {
            repeat_count: 4,
            repeat_window_ms: 30 * DAY_MS,
            repeat_max_p_value: 1e-3,
            lookbacks_ms: vec![180 * DAY_MS],
            max_p_value: 1e-3,
            min_outlier_count: 3,
            cooldown_ms: 30 * DAY_MS,
            same_fault_ms: 7 * DAY_MS,
        }
    }
}

/// An organization's failure rules as it sets them (the `failure-rules` setting,
/// docs/maintenance.md), in days; the probabilities are the built-in ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "FailureRules"))]
#[serde(deny_unknown_fields)]
pub struct FailureSettings {
    /// The repeated rule: this many faults (2 to 20)…
    pub repeat_count: u32,
    /// …within this many days (1 to 365).
    pub repeat_window_days: i64,
    /// No second problem on an asset within this many days of its last (1 to 365).
    pub cooldown_days: i64,
    /// An order within this many days of its fault's first order is that fault again, a repair
    /// that did not hold (0 to 30).
    pub same_fault_days: i64,
}

impl Default for FailureSettings {
    fn default() -> Self {
        FailureSettings::of(&Rules::default())
    }
}

impl FailureSettings {
    fn of(rules: &Rules) -> Self {
        FailureSettings {
            repeat_count: rules.repeat_count,
            repeat_window_days: rules.repeat_window_ms / DAY_MS,
            cooldown_days: rules.cooldown_ms / DAY_MS,
            same_fault_days: rules.same_fault_ms / DAY_MS,
        }
    }

    /// Whether each value is in its range; the fault named when not.
    pub fn check(&self) -> Result<(), String> {
        if !(2..=20).contains(&self.repeat_count) {
            return Err("repeat_count is 2 to 20".into());
        }
        if !(1..=365).contains(&self.repeat_window_days) {
            return Err("repeat_window_days is 1 to 365".into());
        }
        if !(1..=365).contains(&self.cooldown_days) {
            return Err("cooldown_days is 1 to 365".into());
        }
        if !(0..=30).contains(&self.same_fault_days) {
            return Err("same_fault_days is 0 to 30".into());
        }
        Ok(())
    }

    /// The rules these settings give.
    pub fn rules(&self) -> Rules {
        Rules {
            repeat_count: self.repeat_count,
            repeat_window_ms: self.repeat_window_days * DAY_MS,
            cooldown_ms: self.cooldown_days * DAY_MS,
            same_fault_ms: self.same_fault_days * DAY_MS,
            ..Rules::default()
        }
    }
}

/// Why a problem was raised.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    Repeated { count: u32, window_days: i64, p_value: f64 },
    Outlier { count: u32, days: i64, expected: f64, p_value: f64 },
}

/// A problem record raised on an asset, with the orders that raised it.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub asset: String,
    pub raised_ms: i64,
    pub reason: Reason,
    pub orders: Vec<String>,
}

/// Of one asset's failures sorted by report time, which are faults of their own (`true`): an
/// order reported within `same_fault_ms` of its fault's first order is that fault again, a repair
/// that did not hold (返修), not the asset wearing out.
pub fn new_faults(sorted: &[&Failure], same_fault_ms: i64) -> Vec<bool> {
    let mut fault: Option<i64> = None;
    sorted
        .iter()
        .map(|f| {
            let again = fault.is_some_and(|at| f.reported_ms - at < same_fault_ms);
            if !again {
                fault = Some(f.reported_ms);
            }
            !again
        })
        .collect()
}

/// A look-back: where it starts, and per asset type the faults and the exposure in it.
type Window<'a> = (i64, HashMap<&'a str, (u64, i64)>);

/// The problems to raise at `now_ms` from the failures reported by then, given those raised
/// before (for the cooldown). At most one per asset; the repeated rule first.
pub fn detect(assets: &[Asset], failures: &[Failure], raised: &[Problem], now_ms: i64, rules: &Rules) -> Vec<Problem> {
    let mut by_asset: HashMap<&str, Vec<&Failure>> = HashMap::new();
    for failure in failures.iter().filter(|f| f.reported_ms <= now_ms) {
        by_asset.entry(failure.asset.as_str()).or_default().push(failure);
    }
    for list in by_asset.values_mut() {
        list.sort_by_key(|f| f.reported_ms);
        // Each fault once: its first order.
        let mut fresh = new_faults(list, rules.same_fault_ms).into_iter();
        list.retain(|_| fresh.next().unwrap_or(true));
    }
    let last_raised: HashMap<&str, i64> = raised.iter().fold(HashMap::new(), |mut last, p| {
        let at = last.entry(p.asset.as_str()).or_insert(p.raised_ms);
        *at = (*at).max(p.raised_ms);
        last
    });
    // Per look-back and type: faults and exposure, to take each asset's own out of.
    let exposure = |asset: &Asset, since: i64| (now_ms - asset.in_service_ms.max(since)).max(0);
    let count = |id: &str, since: i64| {
        by_asset.get(id).map_or(0, |l| l.iter().filter(|f| f.reported_ms > since).count()) as u64
    };
    let mut lookbacks: Vec<i64> = rules.lookbacks_ms.iter().copied().filter(|&l| l > 0).collect();
    lookbacks.sort();
    let windows: Vec<Window> = lookbacks
        .iter()
        .map(|&length| {
            let since = now_ms - length;
            let mut types: HashMap<&str, (u64, i64)> = HashMap::new();
            for asset in assets {
                let entry = types.entry(asset.asset_type.as_str()).or_default();
                entry.0 += count(&asset.id, since);
                entry.1 += exposure(asset, since);
            }
            (since, types)
        })
        .collect();
    // P(X ≥ n) at a mean.
    let tail = |mean: f64, n: u64| Poisson::new(mean.max(1e-9)).map_or(1.0, |p| p.sf(n.saturating_sub(1)));
    let mut out = Vec::new();
    for asset in assets {
        let Some(list) = by_asset.get(asset.id.as_str()) else { continue };
        // Raised before: not within the cooldown, and again only for a fault since (the same
        // evidence does not nag).
        if let Some(&at) = last_raised.get(asset.id.as_str())
            && (now_ms - at < rules.cooldown_ms || list.last().is_none_or(|f| f.reported_ms <= at))
        {
            continue;
        }
        // The peers' rate per millisecond over a window; peers that never failed still have
        // one: half a fault over their exposure. Peers observed for less than the repeated
        // rule's window together (a second pump registered yesterday) are none yet: half a
        // fault over a day would make anything probable.
        let rate = |(since, types): &Window| {
            let (type_count, type_exposure) = types[asset.asset_type.as_str()];
            let peer_exposure = type_exposure - exposure(asset, *since);
            (peer_exposure >= rules.repeat_window_ms.max(1))
                .then(|| ((type_count - count(&asset.id, *since)) as f64).max(0.5) / peer_exposure as f64)
        };
        let in_window: Vec<&Failure> =
            list.iter().copied().filter(|f| f.reported_ms > now_ms - rules.repeat_window_ms).collect();
        // An asset with no peers of its type in service (the estate's one pump) has no rate to
        // be improbable against: its count alone decides, and the outlier rule does not apply.
        let long_rate = windows.last().and_then(&rate);
        let window_p = long_rate.map_or(0.0, |r| tail(r * rules.repeat_window_ms as f64, in_window.len() as u64));
        if in_window.len() as u32 >= rules.repeat_count.max(1) && window_p <= rules.repeat_max_p_value {
            out.push(Problem {
                asset: asset.id.clone(),
                raised_ms: now_ms,
                reason: Reason::Repeated {
                    count: in_window.len() as u32,
                    window_days: rules.repeat_window_ms / DAY_MS,
                    p_value: window_p,
                },
                orders: in_window.iter().map(|f| f.order.clone()).collect(),
            });
            continue;
        }
        if long_rate.is_none() {
            continue;
        }
        // The most improbable look-back.
        let mut best: Option<(f64, i64, u64, f64)> = None;
        for window in &windows {
            let n = count(&asset.id, window.0);
            let Some(rate) = rate(window) else { continue };
            if n < u64::from(rules.min_outlier_count) {
                continue;
            }
            let expected = rate * exposure(asset, window.0) as f64;
            let p = tail(expected, n);
            if best.is_none_or(|b| p < b.0) {
                best = Some((p, window.0, n, expected));
            }
        }
        let Some((p_value, since, n, expected)) = best else { continue };
        if p_value * windows.len() as f64 <= rules.max_p_value {
            out.push(Problem {
                asset: asset.id.clone(),
                raised_ms: now_ms,
                reason: Reason::Outlier { count: n as u32, days: (now_ms - since) / DAY_MS, expected, p_value },
                orders: list.iter().filter(|f| f.reported_ms > since).map(|f| f.order.clone()).collect(),
            });
        }
    }
    out
}

/// Reliability over a period in business hours: failures, the working time the assets were in
/// service and up, and the working time to restore them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reliability {
    pub failures: u32,
    /// Failures restored within the period (MTTR's count).
    pub restored: u32,
    /// Working milliseconds in service and up.
    pub up_ms: i64,
    /// Working milliseconds from report to restoration, of those restored.
    pub repair_ms: i64,
}

impl Reliability {
    /// Mean time between failures, in working milliseconds (`None` without a failure).
    pub fn mtbf_ms(&self) -> Option<f64> {
        (self.failures > 0).then(|| self.up_ms as f64 / f64::from(self.failures))
    }

    /// Mean time to repair, in working milliseconds (`None` without a restoration).
    pub fn mttr_ms(&self) -> Option<f64> {
        (self.restored > 0).then(|| self.repair_ms as f64 / f64::from(self.restored))
    }

    fn add(&mut self, other: Reliability) {
        self.failures += other.failures;
        self.restored += other.restored;
        self.up_ms += other.up_ms;
        self.repair_ms += other.repair_ms;
    }
}

/// One asset's reliability over `[from_ms, to_ms)` by `calendar`: its failures reported in the
/// period; its up time the working time in service in the period less the working time it was
/// down (from each report to its restoration, or to the period's end).
pub fn reliability(asset: &Asset, failures: &[Failure], from_ms: i64, to_ms: i64, calendar: &Calendar) -> Reliability {
    let start = from_ms.max(asset.in_service_ms);
    let mut out = Reliability { up_ms: calendar.working_between(start, to_ms), ..Reliability::default() };
    for failure in failures.iter().filter(|f| f.asset == asset.id && f.reported_ms >= start && f.reported_ms < to_ms) {
        out.failures += 1;
        let end = failure.restored_ms.unwrap_or(to_ms).min(to_ms);
        out.up_ms -= calendar.working_between(failure.reported_ms, end);
        if let Some(restored) = failure.restored_ms {
            out.restored += 1;
            out.repair_ms += calendar.working_between(failure.reported_ms, restored);
        }
    }
    out.up_ms = out.up_ms.max(0);
    out
}

/// The reliability of every asset of each type over the period, pooled per type.
pub fn reliability_by_type(
    assets: &[Asset],
    failures: &[Failure],
    from_ms: i64,
    to_ms: i64,
    calendar: &Calendar,
) -> HashMap<String, Reliability> {
    let mut out: HashMap<String, Reliability> = HashMap::new();
    for asset in assets {
        out.entry(asset.asset_type.clone()).or_default().add(reliability(asset, failures, from_ms, to_ms, calendar));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::WorkingHours;

    fn at(text: &str) -> i64 {
        let zoned: jiff::Zoned = format!("{text}[Asia/Shanghai]").parse().expect("a time");
        zoned.timestamp().as_millisecond()
    }

    fn failure(order: &str, asset: &str, reported: &str, restored: Option<&str>) -> Failure {
        Failure { order: order.into(), asset: asset.into(), reported_ms: at(reported), restored_ms: restored.map(at) }
    }

    #[test]
    fn mtbf_and_mttr_count_business_hours_to_the_minute() {
        // 09:00–18:00, Monday to Friday. Two weeks from Monday 2 March 2026: ten working days,
        // 90 hours (5,400 minutes).
        let calendar = Calendar::Working(WorkingHours::china_office());
        let lift = Asset { id: "lift-3".into(), asset_type: "elevator".into(), in_service_ms: at("2020-01-01T00:00") };
        let failures = [
            // Friday 17:00 to Monday 10:00: an hour on Friday, an hour on Monday.
            failure("o1", "lift-3", "2026-03-06T17:00", Some("2026-03-09T10:00")),
            // Wednesday 09:30 to 11:45: 135 minutes.
            failure("o2", "lift-3", "2026-03-11T09:30", Some("2026-03-11T11:45")),
            // Another lift's, and one before the period: not counted.
            failure("o3", "lift-4", "2026-03-10T09:30", Some("2026-03-10T10:00")),
            failure("o4", "lift-3", "2026-02-27T09:30", Some("2026-02-27T10:00")),
        ];
        let got = reliability(&lift, &failures, at("2026-03-02T00:00"), at("2026-03-14T00:00"), &calendar);
        let minute = 60_000.0;
        assert_eq!((got.failures, got.restored), (2, 2));
        assert_eq!(got.mttr_ms().map(|ms| ms / minute), Some(127.5));
        // (5,400 − 120 − 135) / 2.
        assert_eq!(got.mtbf_ms().map(|ms| ms / minute), Some(2_572.5));
        // Still down at the period's end (Friday 13 March 17:00): down an hour, not restored.
        let open = [failure("o5", "lift-3", "2026-03-13T17:00", None)];
        let got = reliability(&lift, &open, at("2026-03-02T00:00"), at("2026-03-14T00:00"), &calendar);
        assert_eq!((got.failures, got.restored, got.up_ms / 60_000), (1, 0, 5_340));
        assert_eq!(got.mttr_ms(), None);
    }

    #[test]
    fn the_estate_s_one_pump_is_judged_by_its_count_alone() {
        let pump = [Asset { id: "pump-1".into(), asset_type: "water_pump".into(), in_service_ms: 0 }];
        // Three faults in 60 days (each more than a week after the one before); a lift never fails.
        let lift = Asset { id: "lift-1".into(), asset_type: "elevator".into(), in_service_ms: 0 };
        let day = |d: i64| 400 * DAY_MS + d * DAY_MS;
        let failures: Vec<Failure> = [0, 20, 45]
            .iter()
            .enumerate()
            .map(|(n, &d)| Failure {
                order: format!("o{n}"),
                asset: "pump-1".into(),
                reported_ms: day(d),
                restored_ms: None,
            })
            .collect();
        let rules = Rules { repeat_count: 3, repeat_window_ms: 60 * DAY_MS, ..Rules::default() };
        let assets = [pump[0].clone(), lift];
        assert!(detect(&assets, &failures[..2], &[], day(30), &rules).is_empty(), "two are not three");
        let raised = detect(&assets, &failures, &[], day(45), &rules);
        assert_eq!(raised.len(), 1);
        assert!(matches!(raised[0].reason, Reason::Repeated { count: 3, window_days: 60, p_value } if p_value == 0.0));
        assert_eq!(raised[0].orders, ["o0", "o1", "o2"]);
        // Without peers there is no outlier to be: three faults over a year, too spread out for
        // the repeated rule, raise nothing.
        let spread: Vec<Failure> = [0, 100, 200]
            .iter()
            .enumerate()
            .map(|(n, &d)| Failure {
                order: format!("s{n}"),
                asset: "pump-1".into(),
                reported_ms: day(d),
                restored_ms: None,
            })
            .collect();
        assert!(detect(&pump, &spread, &[], day(200), &rules).is_empty());
        // A second pump registered the day before is no peer yet: the count still decides.
        let newcomer = Asset { id: "pump-2".into(), asset_type: "water_pump".into(), in_service_ms: day(44) };
        let with_newcomer = [pump[0].clone(), newcomer];
        assert_eq!(detect(&with_newcomer, &failures, &[], day(45), &rules).len(), 1);
    }

    #[test]
    fn four_failures_in_a_month_raise_a_problem_once_per_cooldown() {
        let assets: Vec<Asset> = (0..20)
            .map(|i| Asset { id: format!("pump-{i}"), asset_type: "water_pump".into(), in_service_ms: 0 })
            .collect();
        let day = |d: i64| 400 * DAY_MS + d * DAY_MS;
        // Every other pump failed once in the half year before.
        let peers: Vec<Failure> = (0..20)
            .filter(|&i| i != 7)
            .map(|i| Failure {
                order: format!("q{i}"),
                asset: format!("pump-{i}"),
                reported_ms: day(-100 + i),
                restored_ms: None,
            })
            .collect();
        let mut failures: Vec<Failure> = (0..4)
            .map(|i| Failure {
                order: format!("o{i}"),
                asset: "pump-7".into(),
                reported_ms: day(i * 7),
                restored_ms: None,
            })
            .collect();
        // The first three: not yet (three at once their peers' rate is no outlier either).
        let first_three: Vec<Failure> = peers.iter().chain(&failures[..3]).cloned().collect();
        assert!(detect(&assets, &first_three, &[], day(15), &Rules::default()).is_empty());
        failures.extend(peers);
        let raised = detect(&assets, &failures, &[], day(21), &Rules::default());
        assert_eq!(raised.len(), 1);
        assert!(matches!(raised[0].reason, Reason::Repeated { count: 4, window_days: 30, p_value } if p_value < 1e-3));
        assert_eq!(raised[0].orders, ["o0", "o1", "o2", "o3"]);
        // A fifth a week later: within the cooldown, nothing; after it, again.
        failures.push(Failure { order: "o4".into(), asset: "pump-7".into(), reported_ms: day(28), restored_ms: None });
        assert!(detect(&assets, &failures, &raised, day(28), &Rules::default()).is_empty());
        failures.extend((0..4).map(|i| Failure {
            order: format!("p{i}"),
            asset: "pump-7".into(),
            reported_ms: day(52 + i * 8),
            restored_ms: None,
        }));
        assert_eq!(detect(&assets, &failures, &raised, day(76), &Rules::default()).len(), 1);
        // An order two days after another is the same fault (a repair that did not hold): four
        // orders, three faults, nothing raised.
        let mut again: Vec<Failure> = failures.iter().filter(|f| !f.order.starts_with('o')).cloned().collect();
        again.push(Failure { order: "r".into(), asset: "pump-7".into(), reported_ms: day(54), restored_ms: None });
        again.retain(|f| f.order != "p3");
        assert!(detect(&assets, &again, &[], day(76), &Rules::default()).is_empty());
    }

    #[test]
    fn an_asset_failing_far_more_often_than_its_peers_is_an_outlier() {
        // 100 lifts in service for a year; each failed once in the last 180 days, but lift 0
        // failed 7 times, never 4 within 30 days.
        let assets: Vec<Asset> = (0..100)
            .map(|i| Asset { id: format!("lift-{i}"), asset_type: "elevator".into(), in_service_ms: 0 })
            .collect();
        let now = 365 * DAY_MS;
        let mut failures: Vec<Failure> = (1..100)
            .map(|i| Failure {
                order: format!("o{i}"),
                asset: format!("lift-{i}"),
                reported_ms: now - i * DAY_MS,
                restored_ms: None,
            })
            .collect();
        failures.extend((0..7).map(|i| Failure {
            order: format!("x{i}"),
            asset: "lift-0".into(),
            reported_ms: now - 170 * DAY_MS + i * 25 * DAY_MS,
            restored_ms: None,
        }));
        let raised = detect(&assets, &failures, &[], now, &Rules::default());
        assert_eq!(raised.len(), 1, "{raised:?}");
        let Reason::Outlier { count, days, expected, p_value } = raised[0].reason else { panic!("{raised:?}") };
        assert_eq!(days, 180);
        assert_eq!((raised[0].asset.as_str(), count), ("lift-0", 7));
        // P(X ≥ 7) at a mean of 1: 8.3 × 10⁻⁵.
        assert!((expected - 1.0).abs() < 0.01 && (p_value - 8.3e-5).abs() < 1e-6, "{expected} {p_value}");
        // Three times its peers' rate is not enough.
        failures.retain(|f| !f.order.starts_with('x') || f.order.as_str() < "x3");
        assert!(detect(&assets, &failures, &[], now, &Rules::default()).is_empty());
    }
}
