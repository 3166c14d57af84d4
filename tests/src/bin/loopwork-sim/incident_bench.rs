//! `loopwork-sim incidents`: the surge detector's backtest (docs/incidents.md).
//!
//! One community of 3,000 households (10 buildings × 3 entrances × 25 floors × 4 units) over
//! two weeks of warm-up and eight scored weeks from Monday 5 January 2026, which hold the Spring
//! Festival (15–23 February), its 调休 Saturdays and the backlog of the first working day after
//! it. Background reports arrive at a rate that follows the hour and the kind of day; twenty
//! outages are injected (nine risers, five buildings, two stopped lifts, four of the whole
//! community; 5 to 300 households). Every report goes through `surge::Detector` in time order,
//! with the baseline relearned each midnight from the history outside incidents, and an incident
//! resolved four hours after it opened. Prints one JSON object with the figures and the targets.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use loopwork_sync_core::Location;
use loopwork_sync_core::calendar::WorkingHours;
use loopwork_sync_core::surge::{self, Baseline, DayKind, Detector, Level, Node, Outcome, Report, Scope, SurgeRules};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Monday 2026-01-05 00:00 in Shanghai.
const SCORED_FROM: i64 = 1_767_542_400_000;
const WARM_UP_DAYS: i64 = 14;

const BUILDINGS: u32 = 10;
const ENTRANCES: u32 = 3;
const FLOORS: u32 = 25;
const ROOMS: u32 = 4;

/// Reports per household and day on an ordinary working day (18 a day in the community).
const DAILY_RATE: f64 = 0.006;
/// How much busier each kind of day is than a working day.
fn day_factor(kind: DayKind) -> f64 {
    match kind {
        DayKind::Working => 1.0,
        DayKind::Rest => 1.15,
        // The holiday's backlog.
        DayKind::AfterBreak => 2.5,
    }
}
/// The hour profile (mean 1): quiet nights, mornings and evenings busiest.
const WORKING_HOURS: [f64; 24] = [
    0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 1.8, 1.9, 1.7, 1.4, 1.1, 1.2, 1.4, 1.4, 1.3, 1.3, 1.6, 1.8, 1.6, 1.2, 0.6,
    0.3,
];
const REST_HOURS: [f64; 24] = [
    0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 1.2, 1.7, 1.9, 1.7, 1.3, 1.3, 1.5, 1.5, 1.4, 1.3, 1.5, 1.7, 1.6, 1.3, 0.8,
    0.4,
];
const CATEGORIES: [(&str, f64); 10] = [
    ("water_electric", 0.34),
    ("doors_windows", 0.14),
    ("public_facilities", 0.14),
    ("cleaning", 0.1),
    ("elevator", 0.06),
    ("security", 0.05),
    ("parking", 0.05),
    ("noise", 0.05),
    ("greening", 0.04),
    ("other", 0.03),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Riser,
    Building,
    Lift,
    Community,
}

impl Shape {
    fn scope(self) -> Scope {
        match self {
            Shape::Riser => Scope::Riser,
            Shape::Building | Shape::Lift => Scope::Building,
            Shape::Community => Scope::Project,
        }
    }
}

struct Outage {
    shape: Shape,
    households: usize,
    orders: BTreeSet<String>,
    first_ms: i64,
    fifth_ms: i64,
    detected_ms: Option<i64>,
}

fn unit_code(entrance: u32, floor: u32, room: u32) -> String {
    format!("{entrance}-{floor:02}{room:02}")
}

fn node_of(building: u32, unit: &str) -> Node {
    Node::of(&Location::unit("sim", &building.to_string(), unit))
}

fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

fn pick_category(rng: &mut StdRng) -> &'static str {
    let mut x = rng.random::<f64>() * CATEGORIES.iter().map(|c| c.1).sum::<f64>();
    for (code, weight) in CATEGORIES {
        if x < weight {
            return code;
        }
        x -= weight;
    }
    "other"
}

struct Run {
    reports: Vec<Report>,
    outages: Vec<Outage>,
    /// Injected order → its outage.
    injected: HashMap<String, usize>,
}

/// One run's history: background and injected reports, in time order.
fn simulate(seed: u64, weeks: i64, calendar: &WorkingHours) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let households = (BUILDINGS * ENTRANCES * FLOORS * ROOMS) as f64;
    let from = SCORED_FROM - WARM_UP_DAYS * DAY_MS;
    let to = SCORED_FROM + weeks * 7 * DAY_MS;
    let mut reports = Vec::new();
    let mut n = 0usize;
    let random_unit = |rng: &mut StdRng| {
        let b = rng.random_range(1..=BUILDINGS);
        (b, unit_code(rng.random_range(1..=ENTRANCES), rng.random_range(1..=FLOORS), rng.random_range(1..=ROOMS)))
    };
    // Background: each hour's arrivals at that hour's rate.
    let mut hour = from;
    while hour < to {
        let kind = surge::day_kind(calendar, hour);
        let local_hour = ((hour + 8 * HOUR_MS).rem_euclid(DAY_MS) / HOUR_MS) as usize;
        let profile = if kind == DayKind::Rest { REST_HOURS[local_hour] } else { WORKING_HOURS[local_hour] };
        let per_hour = households * DAILY_RATE / 24.0 * profile * day_factor(kind);
        let mut t = hour as f64 + exponential(&mut rng, HOUR_MS as f64 / per_hour);
        while t < (hour + HOUR_MS) as f64 {
            let (b, unit) = random_unit(&mut rng);
            n += 1;
            reports.push(Report {
                order: format!("bg{n}"),
                at_ms: t as i64,
                household: format!("{b}/{unit}"),
                node: node_of(b, &unit),
                category: pick_category(&mut rng).to_owned(),
                life_safety: false,
            });
            t += exponential(&mut rng, HOUR_MS as f64 / per_hour);
        }
        hour += HOUR_MS;
    }
    // Twenty outages in the scored weeks.
    let shapes =
        [[Shape::Riser; 9].as_slice(), &[Shape::Building; 5], &[Shape::Lift; 2], &[Shape::Community; 4]].concat();
    let mut outages = Vec::new();
    let mut onsets = Vec::new();
    let mut injected = HashMap::new();
    for (k, shape) in shapes.into_iter().enumerate() {
        // Outages eight hours apart at least: two at once in one place would be one incident by
        // design (the wider absorbs the narrower), which this backtest does not score.
        let onset = loop {
            let at = SCORED_FROM + rng.random_range(0..(weeks * 7 * DAY_MS - 6 * HOUR_MS));
            if onsets.iter().all(|o: &i64| (o - at).abs() >= 8 * HOUR_MS) {
                onsets.push(at);
                break at;
            }
        };
        let building = rng.random_range(1..=BUILDINGS);
        let entrance = rng.random_range(1..=ENTRANCES);
        let room = rng.random_range(1..=ROOMS);
        // The households affected, and where each report is.
        let (mut pool, size, category, mean_minutes): (Vec<(u32, String, Node)>, usize, &str, f64) = match shape {
            Shape::Riser => {
                let pool = (1..=FLOORS)
                    .map(|f| unit_code(entrance, f, room))
                    .map(|u| (building, u.clone(), node_of(building, &u)));
                (pool.collect(), rng.random_range(5..=25), "water_electric", 6.0)
            }
            Shape::Building => {
                let mut pool = Vec::new();
                for e in 1..=ENTRANCES {
                    for f in 1..=FLOORS {
                        for r in 1..=ROOMS {
                            let u = unit_code(e, f, r);
                            pool.push((building, u.clone(), node_of(building, &u)));
                        }
                    }
                }
                (pool, rng.random_range(30..=200), "water_electric", 6.0)
            }
            Shape::Lift => {
                // One entrance's lift: its households report the building's lift (a common area).
                let lift = Node::of(&Location {
                    building: Some(building.to_string()),
                    ..Location::common_area("sim", &format!("{entrance}单元电梯"))
                });
                let pool = (1..=FLOORS).flat_map(|f| (1..=ROOMS).map(move |r| unit_code(entrance, f, r)));
                (pool.map(|u| (building, u, lift.clone())).collect(), rng.random_range(8..=40), "elevator", 6.0)
            }
            Shape::Community => {
                let mut pool = Vec::new();
                for b in 1..=BUILDINGS {
                    for e in 1..=ENTRANCES {
                        for f in 1..=FLOORS {
                            for r in 1..=ROOMS {
                                let u = unit_code(e, f, r);
                                pool.push((b, u.clone(), node_of(b, &u)));
                            }
                        }
                    }
                }
                (pool, rng.random_range(150..=300), "water_electric", 10.0)
            }
        };
        // A random `size` of the pool.
        for i in 0..size {
            let j = rng.random_range(i..pool.len());
            pool.swap(i, j);
        }
        let mut times = Vec::new();
        let mut orders = BTreeSet::new();
        for (b, unit, node) in pool.into_iter().take(size) {
            // Each household reports once, one in ten twice.
            let repeats = if rng.random::<f64>() < 0.1 { 2 } else { 1 };
            for _ in 0..repeats {
                let at = onset
                    + (exponential(&mut rng, mean_minutes) * MINUTE_MS as f64).min(150.0 * MINUTE_MS as f64) as i64;
                n += 1;
                let order = format!("out{k}-{n}");
                orders.insert(order.clone());
                injected.insert(order.clone(), k);
                reports.push(Report {
                    order,
                    at_ms: at,
                    household: format!("{b}/{unit}"),
                    node: node.clone(),
                    category: category.to_owned(),
                    life_safety: false,
                });
                times.push((at, format!("{b}/{unit}")));
            }
        }
        times.sort();
        let mut seen = BTreeSet::new();
        let fifth = times.iter().find(|(_, h)| seen.insert(h.clone()) && seen.len() == 5).map_or(onset, |(t, _)| *t);
        outages.push(Outage {
            shape,
            households: size,
            orders,
            first_ms: times[0].0,
            fifth_ms: fifth,
            detected_ms: None,
        });
    }
    reports.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.order.cmp(&b.order)));
    Run { reports, outages, injected }
}

#[derive(Default)]
struct Totals {
    outages: usize,
    detected: usize,
    right_node: usize,
    delays_after_fifth: Vec<f64>,
    delays_after_first: Vec<f64>,
    false_alarms: usize,
    false_alarms_three_up: usize,
    members: usize,
    members_right: usize,
    injected_reports: usize,
    injected_absorbed: usize,
    observe_ns: Vec<u64>,
    relearn_ms: Vec<f64>,
    building_weeks: f64,
    background_reports: usize,
    incidents: usize,
    by_shape: HashMap<&'static str, (usize, usize, usize)>,
    /// Outages whose incident sits at another level: what was injected, what was found.
    wrong_node: Vec<String>,
    /// False alarms by the day they opened (`YYYYMMDD`).
    false_alarm_days: std::collections::BTreeMap<String, usize>,
    /// Outages no incident was mostly made of.
    missed: Vec<String>,
    /// Later joins to an open incident: [automatic, suggested] × [from an injected outage,
    /// background].
    joins: [[usize; 2]; 2],
}

fn replay(run: &mut Run, rules: &SurgeRules, calendar: &WorkingHours, totals: &mut Totals) {
    let units: Vec<Node> = (1..=BUILDINGS)
        .flat_map(|b| {
            (1..=ENTRANCES).flat_map(move |e| {
                (1..=FLOORS).flat_map(move |f| (1..=ROOMS).map(move |r| node_of(b, &unit_code(e, f, r))))
            })
        })
        .collect();
    let from = SCORED_FROM - WARM_UP_DAYS * DAY_MS;
    let mut detector = Detector::new(rules.clone());
    let mut history: Vec<Report> = Vec::new();
    // Orders some incident ever held: the baseline never learns from them.
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut baseline = Baseline::learn(calendar, units.iter().cloned(), &[], from, from + HOUR_MS);
    let mut learned_day = i64::MIN;
    let mut resolve_at: Vec<(i64, u64)> = Vec::new();
    let mut closed: Vec<surge::Incident> = Vec::new();
    for report in run.reports.clone() {
        if report.at_ms < SCORED_FROM {
            history.push(report);
            continue;
        }
        // Midnight (Shanghai): relearn from everything before today outside incidents.
        let day = (report.at_ms + 8 * HOUR_MS).div_euclid(DAY_MS);
        if day != learned_day {
            learned_day = day;
            let midnight = day * DAY_MS - 8 * HOUR_MS;
            let started = Instant::now();
            let clean: Vec<Report> = history.iter().filter(|r| !held.contains(&r.order)).cloned().collect();
            baseline = Baseline::learn(calendar, units.iter().cloned(), &clean, from, midnight);
            totals.relearn_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        // The dispatcher resolves each incident four hours after it opened.
        resolve_at.sort();
        while resolve_at.first().is_some_and(|(t, _)| *t <= report.at_ms) {
            let (_, id) = resolve_at.remove(0);
            if let Some(incident) = detector.incident(id) {
                closed.push(incident.clone());
            }
            detector.resolve(id);
        }
        let started = Instant::now();
        let outcome = detector.observe(report.clone(), &baseline);
        totals.observe_ns.push(started.elapsed().as_nanos() as u64);
        if let Outcome::Opened { incident } = outcome {
            resolve_at.push((report.at_ms + 4 * HOUR_MS, incident));
        }
        if let Outcome::Joined { confidence, .. } = outcome {
            let suggested = usize::from(confidence < rules.auto_join_confidence);
            let background = usize::from(!run.injected.contains_key(&report.order));
            totals.joins[suggested][background] += 1;
        }
        if !matches!(outcome, Outcome::Quiet) {
            for incident in detector.incidents().iter().filter(|i| !i.resolved) {
                held.extend(incident.members.iter().cloned());
                for outage in run.outages.iter_mut().filter(|o| o.detected_ms.is_none()) {
                    if incident.members.iter().any(|m| outage.orders.contains(m)) {
                        outage.detected_ms = Some(report.at_ms);
                    }
                }
            }
        }
        history.push(report);
    }
    closed.extend(detector.incidents().iter().filter(|i| !i.resolved).cloned());
    // Score: each incident against the outage most of its members came from.
    totals.incidents += closed.len();
    totals.background_reports += run.reports.iter().filter(|r| !run.injected.contains_key(&r.order)).count();
    totals.building_weeks +=
        f64::from(BUILDINGS) * (run.reports.last().map_or(0, |r| r.at_ms) - SCORED_FROM) as f64 / (7 * DAY_MS) as f64;
    let mut best_incident: HashMap<usize, (usize, &surge::Incident)> = HashMap::new();
    for incident in &closed {
        let mut per_outage: HashMap<usize, usize> = HashMap::new();
        for member in &incident.members {
            if let Some(k) = run.injected.get(member) {
                *per_outage.entry(*k).or_default() += 1;
            }
        }
        let top = per_outage.iter().max_by_key(|(k, c)| (**c, std::cmp::Reverse(**k))).map(|(k, c)| (*k, *c));
        match top {
            Some((k, count)) if count * 2 > incident.members.len() => {
                totals.members += incident.members.len();
                totals.members_right += count;
                if best_incident.get(&k).is_none_or(|(c, _)| count > *c) {
                    best_incident.insert(k, (count, incident));
                }
            }
            _ => {
                totals.false_alarms += 1;
                let day = loopwork_sync_core::china_time::day_code(incident.opened_ms);
                *totals.false_alarm_days.entry(day).or_default() += 1;
                if incident.level >= Level::Three {
                    totals.false_alarms_three_up += 1;
                }
            }
        }
    }
    for (k, outage) in run.outages.iter().enumerate() {
        totals.outages += 1;
        totals.injected_reports += outage.orders.len();
        let shape = match outage.shape {
            Shape::Riser => "riser",
            Shape::Building => "building",
            Shape::Lift => "lift",
            Shape::Community => "community",
        };
        let entry = totals.by_shape.entry(shape).or_default();
        entry.0 += 1;
        let Some((count, incident)) = best_incident.get(&k) else {
            // Not the majority of any incident: found inside another outage's, or not at all.
            let inside = closed.iter().find(|i| i.members.iter().any(|m| outage.orders.contains(m)));
            totals.missed.push(match inside {
                Some(i) => format!(
                    "{shape} of {} households inside an incident of {} households at {}",
                    outage.households,
                    i.households.len(),
                    i.node.label_zh()
                ),
                None => format!("{shape} of {} households not found", outage.households),
            });
            continue;
        };
        totals.injected_absorbed += count;
        if let Some(at) = outage.detected_ms {
            totals.detected += 1;
            entry.1 += 1;
            totals.delays_after_fifth.push((at - outage.fifth_ms).max(0) as f64 / MINUTE_MS as f64);
            totals.delays_after_first.push((at - outage.first_ms) as f64 / MINUTE_MS as f64);
        }
        if incident.node.scope() == outage.shape.scope() {
            totals.right_node += 1;
            entry.2 += 1;
        } else {
            totals.wrong_node.push(format!(
                "{shape} of {} households: {} households at {:?} {}",
                outage.households,
                incident.households.len(),
                incident.node.scope(),
                incident.node.label_zh()
            ));
        }
    }
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// What a run varies: the rules, and whether the detector's calendar knows the holidays.
pub struct Options {
    pub runs: u64,
    pub seed: u64,
    pub weeks: i64,
    pub min_households: Option<u32>,
    pub max_p_value: Option<f64>,
    pub auto_join_confidence: Option<f64>,
    /// The detector's calendar without holidays and 调休 (the history is still China's).
    pub naive_calendar: bool,
}

pub fn run(options: Options) {
    let Options { runs, seed, weeks, .. } = options;
    let calendar = WorkingHours::china_office();
    let detector_calendar = if options.naive_calendar {
        WorkingHours { holidays: Default::default(), working_days: Default::default(), ..calendar.clone() }
    } else {
        calendar.clone()
    };
    let defaults = SurgeRules::default();
    let rules = SurgeRules {
        min_households: options.min_households.unwrap_or(defaults.min_households),
        max_p_value: options.max_p_value.unwrap_or(defaults.max_p_value),
        auto_join_confidence: options.auto_join_confidence.unwrap_or(defaults.auto_join_confidence),
        ..defaults
    };
    if let Err(fault) = rules.check() {
        eprintln!("loopwork-sim incidents: {fault}");
        std::process::exit(2);
    }
    let mut totals = Totals::default();
    for r in 0..runs {
        let mut run = simulate(seed + r, weeks, &calendar);
        replay(&mut run, &rules, &detector_calendar, &mut totals);
    }
    let mut observe_us: Vec<f64> = totals.observe_ns.iter().map(|ns| *ns as f64 / 1e3).collect();
    let mean_us = observe_us.iter().sum::<f64>() / observe_us.len().max(1) as f64;
    let p99_us = quantile(&mut observe_us, 0.99);
    let max_us = quantile(&mut observe_us, 1.0);
    let precision = totals.members_right as f64 / totals.members.max(1) as f64;
    let recall = totals.injected_absorbed as f64 / totals.injected_reports.max(1) as f64;
    let right_node = totals.right_node as f64 / totals.outages.max(1) as f64;
    let false_per_1000 = totals.false_alarms_three_up as f64 / totals.building_weeks * 1000.0;
    let within =
        |delays: &[f64], limit: f64| delays.iter().filter(|d| **d <= limit).count() as f64 / delays.len().max(1) as f64;
    let after_fifth_within = within(&totals.delays_after_fifth, 5.0);
    let after_first_within = within(&totals.delays_after_first, 10.0);
    let after_first_p90 = quantile(&mut totals.delays_after_first, 0.9);
    let after_fifth_p50 = quantile(&mut totals.delays_after_fifth, 0.5);
    let after_fifth_max = quantile(&mut totals.delays_after_fifth, 1.0);
    let after_first_p50 = quantile(&mut totals.delays_after_first, 0.5);
    let after_first_max = quantile(&mut totals.delays_after_first, 1.0);
    let mut most_days: Vec<(&String, &usize)> = totals.false_alarm_days.iter().collect();
    most_days.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let most_days: serde_json::Map<String, serde_json::Value> =
        most_days.into_iter().take(5).map(|(d, n)| (d.clone(), serde_json::json!(n))).collect();
    let shapes: serde_json::Map<String, serde_json::Value> = totals
        .by_shape
        .iter()
        .map(|(k, (n, d, r))| (k.to_string(), serde_json::json!({"injected": n, "detected": d, "right_node": r})))
        .collect();
    let out = serde_json::json!({
        "runs": runs,
        "rules": {"min_households": rules.min_households, "max_p_value": rules.max_p_value,
            "calendar": if options.naive_calendar { "no holidays" } else { "China 2026" }},
        "seed": seed,
        "weeks": weeks,
        "households": BUILDINGS * ENTRANCES * FLOORS * ROOMS,
        "background_reports": totals.background_reports,
        "injected_outages": totals.outages,
        "injected_reports": totals.injected_reports,
        "detected": totals.detected,
        "missed": totals.missed,
        "by_shape": shapes,
        "incidents": totals.incidents,
        "delay_after_fifth_household_minutes": {"p50": after_fifth_p50, "max": after_fifth_max,
            "share_within_target": after_fifth_within, "target_max": 5.0},
        "delay_after_first_report_minutes": {"p50": after_first_p50, "p90": after_first_p90, "max": after_first_max,
            "share_within_target": after_first_within, "target_max": 10.0},
        "right_node": {"share": right_node, "target": 0.95, "misses": totals.wrong_node},
        "false_alarms": {"all": totals.false_alarms, "level_three_or_above": totals.false_alarms_three_up,
            "building_weeks": totals.building_weeks,
            "level_three_or_above_per_1000_building_weeks": false_per_1000, "target_max": 1.0,
            "days_with_most": most_days},
        "members": {"precision": precision, "recall": recall, "target_precision": 0.95, "target_recall": 0.90},
        "later_joins": {"auto_join_confidence": rules.auto_join_confidence,
            "automatic": {"from_outage": totals.joins[0][0], "background": totals.joins[0][1]},
            "suggested": {"from_outage": totals.joins[1][0], "background": totals.joins[1][1]}},
        "observe_us": {"mean": mean_us, "p99": p99_us, "max": max_us, "target_mean": 50.0},
        "baseline_relearn_ms": {"p50": quantile(&mut totals.relearn_ms, 0.5), "max": quantile(&mut totals.relearn_ms, 1.0)},
    });
    println!("{out}");
}
