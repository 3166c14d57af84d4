//! Repeated-failure detection (sync-core's `failures`) on a labelled synthetic history
//! (docs/maintenance.md; `loopwork-sim failures`).
//!
//! Lifts and water pumps fail at their type's rate (a Poisson process per asset); after a
//! failure, one repair in ten does not hold and the asset fails again within five days (what a
//! dispatcher sees as a repeat repair, and no sign of a worn asset). A share of the assets, the
//! labelled ones, start to wear out on a random day and fail several times as often from then
//! on. The rules run once a day over everything reported so far; a problem raised on a labelled
//! asset after its wear began is right, any other is wrong.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use loopwork_sync_core::failures::{Asset, Failure, Problem, Reason, Rules, detect};

const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug)]
pub struct Settings {
    pub lifts: usize,
    pub pumps: usize,
    /// Days scored (after a year of history).
    pub days: i64,
    /// The share of assets that wear out.
    pub worn_share: f64,
    /// How many times as often a worn asset fails.
    pub worn_factor: f64,
    /// The chance a repair does not hold.
    pub repeat_repair: f64,
    pub rules: Rules,
    pub seed: u64,
}

impl Settings {
    pub fn default_history() -> Settings {
        Settings {
            lifts: 500,
            pumps: 200,
            days: 365,
            worn_share: 0.05,
            worn_factor: 5.0,
            repeat_repair: 0.1,
            rules: Rules::default(),
            seed: 1,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleScore {
    pub raised: usize,
    pub right: usize,
    pub precision: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub assets: usize,
    pub worn: usize,
    pub failures: usize,
    pub repeated: RuleScore,
    pub outlier: RuleScore,
    pub all: RuleScore,
    /// Worn assets (worn at least 30 days before the end) with a problem raised after their wear
    /// began, over all such assets.
    pub recall: f64,
    /// Days from the wear's start to the first problem raised, median and 90th percentile.
    pub delay_days_p50: i64,
    pub delay_days_p90: i64,
    pub elapsed_ms: u128,
}

/// The next failure of a Poisson process at `rate` per day after `from` (in days).
fn next_after(rng: &mut StdRng, from: f64, rate: f64) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    from - u.ln() / rate
}

pub fn run(settings: &Settings) -> Report {
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    // A year of history before the scored days; time 0 is the first scored day.
    let history = 365.0;
    let end = settings.days as f64;
    let mut assets = Vec::new();
    // The day each worn asset's wear begins.
    let mut worn: Vec<Option<f64>> = Vec::new();
    let mut failures = Vec::new();
    // A lift fails about six times a year, a pump three (an older estate's figures).
    for (kind, count, rate) in [("elevator", settings.lifts, 1.0 / 60.0), ("water_pump", settings.pumps, 1.0 / 120.0)] {
        for i in 0..count {
            let id = format!("{kind}-{i}");
            let onset = rng.random_bool(settings.worn_share).then(|| rng.random_range(0.0..end));
            let mut at = -history;
            loop {
                let rate_now = if onset.is_some_and(|o| at >= o) { rate * settings.worn_factor } else { rate };
                let mut next = next_after(&mut rng, at, rate_now);
                // Crossing into the wear: draw again from its start at the worn rate.
                if let Some(o) = onset
                    && at < o
                    && next > o
                {
                    next = next_after(&mut rng, o, rate * settings.worn_factor);
                }
                if next >= end {
                    break;
                }
                let fail = |failures: &mut Vec<Failure>, day: f64| {
                    let order = format!("{id}/{}", failures.len());
                    failures.push(Failure {
                        order,
                        asset: id.clone(),
                        reported_ms: (day * DAY_MS as f64) as i64,
                        restored_ms: None,
                    });
                };
                fail(&mut failures, next);
                at = next;
                if rng.random_bool(settings.repeat_repair) {
                    let again = at + rng.random_range(0.2..5.0);
                    if again < end {
                        fail(&mut failures, again);
                        at = again;
                    }
                }
            }
            assets.push(Asset { id, asset_type: kind.into(), in_service_ms: (-history * DAY_MS as f64) as i64 });
            worn.push(onset);
        }
    }
    failures.sort_by_key(|f| f.reported_ms);

    let mut raised: Vec<Problem> = Vec::new();
    for day in 1..=settings.days {
        let now = day * DAY_MS;
        let known = failures.partition_point(|f| f.reported_ms <= now);
        let new = detect(&assets, &failures[..known], &raised, now, &settings.rules);
        raised.extend(new);
    }

    let index = |id: &str| assets.iter().position(|a| a.id == id).expect("an asset");
    let right = |p: &Problem| worn[index(&p.asset)].is_some_and(|o| p.raised_ms as f64 >= o * DAY_MS as f64);
    let score = |filter: &dyn Fn(&Problem) -> bool| {
        let mine: Vec<&Problem> = raised.iter().filter(|p| filter(p)).collect();
        let right = mine.iter().filter(|p| right(p)).count();
        RuleScore {
            raised: mine.len(),
            right,
            precision: if mine.is_empty() { 1.0 } else { right as f64 / mine.len() as f64 },
        }
    };
    let mut delays = Vec::new();
    let mut eligible = 0;
    for (i, onset) in worn.iter().enumerate() {
        let Some(onset) = onset else { continue };
        if *onset > end - 30.0 {
            continue;
        }
        eligible += 1;
        let first = raised
            .iter()
            .filter(|p| p.asset == assets[i].id && p.raised_ms as f64 >= onset * DAY_MS as f64)
            .map(|p| p.raised_ms)
            .min();
        if let Some(first) = first {
            delays.push(((first as f64 / DAY_MS as f64) - onset).round() as i64);
        }
    }
    delays.sort();
    let pick = |q: f64| delays.get(((delays.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(-1);
    Report {
        assets: assets.len(),
        worn: worn.iter().filter(|w| w.is_some()).count(),
        failures: failures.iter().filter(|f| f.reported_ms > 0).count(),
        repeated: score(&|p| matches!(p.reason, Reason::Repeated { .. })),
        outlier: score(&|p| matches!(p.reason, Reason::Outlier { .. })),
        all: score(&|_| true),
        recall: if eligible == 0 { 1.0 } else { delays.len() as f64 / eligible as f64 },
        delay_days_p50: pick(0.5),
        delay_days_p90: pick(0.9),
        elapsed_ms: started.elapsed().as_millis(),
    }
}
