//! The preventive maintenance scheduler (sync-core's `maintenance`) over years of an estate's
//! calendar, day by day (docs/maintenance.md; `loopwork-sim maintenance`).
//!
//! Lifts (at most 15 days between services) and secondary water tanks (at most six months)
//! have plans; several server replicas each run the scheduler once a day from what the store
//! held at the start of the day (so two replicas often make the same occurrence at once: the
//! store's unique key keeps one); replicas are restarted at random (a day without their tick);
//! technicians' phones report services up to a few days late (offline); the store is restored
//! from a backup a few days old now and then, and phones push back what it lost. Technicians do
//! each service on a working day between the day its order reaches them and its due day (as
//! they know it that day).
//!
//! Checked: every gap between two services of an asset within its maximum; every occurrence of
//! every rule made, and made once; each work order's id the same whoever made it (derived from
//! the occurrence's key), so that a phone's copy pushed back after a restore and the order made
//! again are one order.

use std::collections::BTreeMap;

use jiff::ToSpan;
use jiff::civil::{Date, date};
use loopwork_sync_core::calendar::WorkingHours;
use loopwork_sync_core::maintenance::{Made, Plan, Schedule, days_between};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// What a run simulates.
#[derive(Clone, Debug)]
pub struct Settings {
    pub lifts: usize,
    pub tanks: usize,
    pub from: Date,
    pub to: Date,
    pub replicas: usize,
    /// The chance a replica is down (restarting) on a given day.
    pub restart_chance: f64,
    /// Restores of the store from a backup, on random days.
    pub restores: usize,
    /// How old the backup is, in days.
    pub restore_age_days: i32,
    /// The most days a phone stays offline before its services reach the server.
    pub offline_days: i32,
    pub seed: u64,
}

impl Settings {
    /// Two years (the 2025 and 2026 calendars), 500 lifts and 50 tanks, three replicas.
    pub fn two_years() -> Settings {
        Settings {
            lifts: 500,
            tanks: 50,
            from: date(2025, 1, 1),
            to: date(2026, 12, 31),
            replicas: 3,
            restart_chance: 0.1,
            restores: 3,
            restore_age_days: 5,
            offline_days: 3,
            seed: 1,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub plans: usize,
    pub days: i32,
    /// Rule dates whose orders were due to be made within the period.
    pub occurrences_expected: usize,
    pub made: usize,
    pub missed: usize,
    /// Occurrences with more than one work order id.
    pub duplicated: usize,
    /// Makes the store's unique key refused (another replica had made it).
    pub makes_refused: usize,
    /// Orders a phone pushed back after a restore that the scheduler had made again: one order.
    pub pushed_back_merged: usize,
    /// What those would have been with a random order id per make: two orders for one service.
    pub duplicated_with_random_ids: usize,
    pub services: usize,
    pub max_gap_days_lift: i32,
    pub max_gap_days_tank: i32,
    pub gaps_over_maximum: usize,
    /// Due days moved earlier than the rule's date (a holiday, a weekend, or the gap).
    pub dues_moved: usize,
    /// Due days on a day off (no working day within the gap).
    pub dues_on_days_off: usize,
    /// How far before the rule's date due days came, mean and most (services done early pull
    /// the next due day earlier, and that adds up).
    pub due_days_before_rule_mean: f64,
    pub due_days_before_rule_max: i32,
    /// Due days moved earlier after a late-reported service arrived.
    pub dues_moved_after_late_reports: usize,
    pub services_reported_late: usize,
    pub replica_days_down: usize,
    pub restores: usize,
    /// Services done after their due day (the order reached the phone after it).
    pub services_after_due: usize,
    /// Orders due within the period never done (0: every one reached a phone).
    pub services_missing: usize,
    pub elapsed_ms: u128,
}

#[derive(Clone, Debug)]
struct Record {
    order_id: u64,
    nominal: Date,
    due: Date,
    /// The day the service was done, when the server knows it.
    done: Option<Date>,
}

/// A service as the technician's phone holds it.
#[derive(Clone, Debug)]
struct Job {
    plan: usize,
    key: String,
    order_id: u64,
    nominal: Date,
    due: Date,
    /// The day the technician means to do it.
    planned: Date,
    done: Option<Date>,
    /// The day the phone's report reaches the server.
    reported_on: Option<Date>,
}

/// The work order id of an occurrence: the same whoever makes it.
fn order_id(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn plans(settings: &Settings, rng: &mut StdRng) -> Vec<Schedule> {
    let mut out = Vec::new();
    for i in 0..settings.lifts {
        // Every other Monday, every other Saturday (mostly moved to a Friday), or every 14 days
        // from any date.
        let (rule, offset): (&str, i32) = match i % 3 {
            0 => ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", 0),
            1 => ("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", 0),
            _ => ("FREQ=DAILY;INTERVAL=14", rng.random_range(0..14)),
        };
        let plan = Plan {
            id: format!("lift-{i}"),
            starts: settings.from.saturating_add(offset.days()),
            rule: rule.into(),
            max_gap_days: 15,
            lead_days: 3,
        };
        out.push(Schedule::new(plan).expect("a lift plan"));
    }
    for i in 0..settings.tanks {
        let plan = Plan {
            id: format!("tank-{i}"),
            starts: settings.from.saturating_add(rng.random_range(0..60_i32).days()),
            rule: "FREQ=MONTHLY;INTERVAL=6".into(),
            max_gap_days: 184,
            lead_days: 14,
        };
        out.push(Schedule::new(plan).expect("a tank plan"));
    }
    out
}

/// A working day chosen at random from `from` to `to` (`to` itself if none).
fn some_working_day(rng: &mut StdRng, calendar: &WorkingHours, from: Date, to: Date) -> Date {
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        if calendar.is_working_day(day) {
            days.push(day);
        }
        day = day.saturating_add(1_i32.day());
    }
    if days.is_empty() { to } else { days[rng.random_range(0..days.len())] }
}

pub fn run(settings: &Settings) -> Report {
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let calendar = WorkingHours::china_office();
    let schedules = plans(settings, &mut rng);
    let mut report =
        Report { plans: schedules.len(), days: days_between(settings.from, settings.to) + 1, ..Report::default() };
    // The store: occurrences made, by plan and key.
    let mut store: Vec<BTreeMap<String, Record>> = vec![BTreeMap::new(); schedules.len()];
    let mut backups: Vec<(Date, Vec<BTreeMap<String, Record>>)> = Vec::new();
    // The phones' jobs, by key.
    let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
    // The store as it was a day before: a replica whose cache is a day old schedules from it.
    let mut yesterday = store.clone();
    let mut restore_days: Vec<Date> = (0..settings.restores)
        .map(|_| settings.from.saturating_add(rng.random_range(30..report.days - 30).days()))
        .collect();
    restore_days.sort();
    let mut merged: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    // Orders phones push back after a restore: the day, the plan, the key.
    let mut pushbacks: Vec<(Date, usize, String)> = Vec::new();

    let mut today = settings.from;
    while today <= settings.to {
        // Phones' reports that reach the server today.
        let mut arriving: Vec<(usize, String, Date)> = jobs
            .values()
            .filter(|j| j.reported_on == Some(today))
            .map(|j| (j.plan, j.key.clone(), j.done.expect("done")))
            .collect();
        arriving.sort();
        for (plan, key, done) in arriving {
            learn_service(&schedules[plan], &calendar, &mut store[plan], &mut jobs, &key, done, &mut report);
        }
        // Orders not done yet that phones push back after a restore (the scheduler may have
        // made some again meanwhile: the same id, so one order).
        for (_, plan, key) in pushbacks.iter().filter(|(day, _, _)| *day == today) {
            let job = &jobs[key];
            store[*plan].entry(key.clone()).or_insert(Record {
                order_id: job.order_id,
                nominal: job.nominal,
                due: job.due,
                done: job.done.filter(|_| job.reported_on.is_some_and(|r| r <= today)),
            });
        }
        pushbacks.retain(|(day, _, _)| *day > today);

        // The replicas' scheduler, each from the store as it was at the start of the day.
        let up: Vec<usize> = (0..settings.replicas).filter(|_| !rng.random_bool(settings.restart_chance)).collect();
        report.replica_days_down += settings.replicas - up.len();
        let mut proposals: Vec<(usize, Vec<loopwork_sync_core::maintenance::Occurrence>)> = Vec::new();
        for _ in &up {
            // What this replica knows: the store this morning, or as it was a day before (a
            // stale cache): the keys must not depend on it.
            let view = if rng.random_bool(0.5) { &store } else { &yesterday };
            for (p, schedule) in schedules.iter().enumerate() {
                let last = view[p].values().max_by_key(|r| r.nominal).map(|r| Made {
                    nominal: r.nominal,
                    due: r.due,
                    done: r.done,
                });
                let issue = schedule.to_issue(today, last.as_ref(), None, &calendar);
                if !issue.is_empty() {
                    proposals.push((p, issue));
                }
            }
        }
        for (p, occurrences) in proposals {
            for occurrence in occurrences {
                if store[p].contains_key(&occurrence.key) {
                    report.makes_refused += 1;
                    continue;
                }
                let id = order_id(&occurrence.key);
                store[p].insert(
                    occurrence.key.clone(),
                    Record { order_id: id, nominal: occurrence.nominal, due: occurrence.due, done: None },
                );
                match jobs.get_mut(&occurrence.key) {
                    // Made again after a restore, before the phone pushed its copy back.
                    Some(job) => {
                        job.due = job.due.min(occurrence.due);
                        report.pushed_back_merged += 1;
                        merged.insert(occurrence.key.clone());
                    }
                    None => {
                        let planned =
                            some_working_day(&mut rng, &calendar, today.max(occurrence.issue_on), occurrence.due);
                        jobs.insert(
                            occurrence.key.clone(),
                            Job {
                                plan: p,
                                key: occurrence.key.clone(),
                                order_id: id,
                                nominal: occurrence.nominal,
                                due: occurrence.due,
                                planned: planned.max(today),
                                done: None,
                                reported_on: None,
                            },
                        );
                    }
                }
            }
        }

        // Technicians: each job is done on its planned day, or today if its due day (as the
        // phone knows it, synced each morning) came earlier; the report reaches the server when
        // the phone next has signal.
        let due_today: Vec<String> = jobs
            .values()
            .filter(|j| j.done.is_none() && (j.planned <= today || j.due <= today))
            .map(|j| j.key.clone())
            .collect();
        for key in due_today {
            let late = rng.random_range(0..=settings.offline_days);
            let job = jobs.get_mut(&key).expect("job");
            job.done = Some(today);
            if today > job.due {
                report.services_after_due += 1;
            }
            if late > 0 {
                report.services_reported_late += 1;
            }
            job.reported_on = Some(today.saturating_add(late.days()));
            if late == 0 {
                let (plan, done) = (job.plan, today);
                learn_service(&schedules[plan], &calendar, &mut store[plan], &mut jobs, &key, done, &mut report);
            }
        }

        yesterday = store.clone();
        // A backup each night; now and then the store is restored from one a few days old, and
        // the phones push back what it lost over the next days.
        backups.push((today, store.clone()));
        backups.retain(|(day, _)| days_between(*day, today) <= settings.restore_age_days);
        if restore_days.first() == Some(&today) {
            restore_days.remove(0);
            let (_, old) = backups.first().cloned().expect("a backup");
            store = old;
            report.restores += 1;
            for job in jobs.values_mut() {
                let plan = &store[job.plan];
                let known = plan.get(&job.key).is_some_and(|r| r.done.is_some() || job.done.is_none());
                if known {
                    continue;
                }
                // The phone pushes the order back (with the service, when done) within days.
                let back = today.saturating_add(rng.random_range(1..=settings.offline_days.max(1)).days());
                if job.done.is_some() {
                    job.reported_on = Some(back.max(job.reported_on.unwrap_or(back)));
                } else {
                    // Not done yet: the order itself comes back at the phone's next sync.
                    pushbacks.push((back, job.plan, job.key.clone()));
                }
            }
        }
        today = today.saturating_add(1_i32.day());
    }

    // What should have been made: every rule date whose order was due by the end.
    for (p, schedule) in schedules.iter().enumerate() {
        let mut previous: Option<Made> = None;
        for nominal in schedule.nominal_between(settings.from, settings.to) {
            let made = store[p].get(&schedule.key(nominal));
            let Some(next) = schedule.next(previous.as_ref(), None, &calendar) else { break };
            if next.issue_on > settings.to {
                break;
            }
            report.occurrences_expected += 1;
            match made {
                Some(record) => {
                    report.made += 1;
                    previous = Some(Made { nominal, due: record.due, done: record.done });
                }
                None => {
                    report.missed += 1;
                    previous = Some(Made { nominal, due: next.due, done: None });
                }
            }
        }
        // Gaps between services, as done on the phones.
        let mut done: Vec<Date> = jobs.values().filter(|j| j.plan == p).filter_map(|j| j.done).collect();
        done.sort();
        report.services += done.len();
        let lift = schedule.plan().id.starts_with("lift");
        for pair in done.windows(2) {
            let gap = days_between(pair[0], pair[1]);
            if lift {
                report.max_gap_days_lift = report.max_gap_days_lift.max(gap);
            } else {
                report.max_gap_days_tank = report.max_gap_days_tank.max(gap);
            }
            if gap > i32::from(schedule.plan().max_gap_days) {
                report.gaps_over_maximum += 1;
            }
        }
        for record in store[p].values() {
            if record.due < record.nominal {
                report.dues_moved += 1;
            }
            let before = days_between(record.due, record.nominal);
            report.due_days_before_rule_mean += f64::from(before);
            report.due_days_before_rule_max = report.due_days_before_rule_max.max(before);
            if !calendar.is_working_day(record.due) {
                report.dues_on_days_off += 1;
            }
        }
    }
    // Two orders for one occurrence: the store's and a phone's under different ids, or a
    // store holding one occurrence under two keys.
    report.duplicated =
        jobs.values().filter(|j| store[j.plan].get(&j.key).is_some_and(|r| r.order_id != j.order_id)).count()
            + store
                .iter()
                .map(|plan| {
                    let nominals: std::collections::BTreeSet<Date> = plan.values().map(|r| r.nominal).collect();
                    plan.len() - nominals.len()
                })
                .sum::<usize>();
    report.duplicated_with_random_ids = merged.len();
    report.due_days_before_rule_mean /= report.made.max(1) as f64;
    report.services_missing = jobs.values().filter(|j| j.done.is_none() && j.due < settings.to).count();
    report.elapsed_ms = started.elapsed().as_millis();
    report
}

/// The server learns that an occurrence was done on `done`: it records it, and the due day of
/// the plan's next occurrence, if made and not done, is computed again (it can only move
/// earlier); the phone holding that job learns the new due day at its next sync.
fn learn_service(
    schedule: &Schedule,
    calendar: &WorkingHours,
    store: &mut BTreeMap<String, Record>,
    jobs: &mut BTreeMap<String, Job>,
    key: &str,
    done: Date,
    report: &mut Report,
) {
    let Some(record) = store.get_mut(key) else {
        // Lost in a restore and not pushed back yet: the phone's push brings the order with it.
        let job = &jobs[key];
        store.insert(
            key.to_owned(),
            Record { order_id: job.order_id, nominal: job.nominal, due: job.due, done: Some(done) },
        );
        return;
    };
    record.done = Some(done);
    let nominal = record.nominal;
    let Some((next_key, next)) = store.iter_mut().find(|(_, r)| r.nominal > nominal) else { return };
    if next.done.is_some() {
        return;
    }
    let again = schedule.occurrence(next.nominal, Some(done), calendar);
    if again.due < next.due {
        next.due = again.due;
        report.dues_moved_after_late_reports += 1;
        if let Some(job) = jobs.get_mut(next_key.as_str()) {
            job.due = job.due.min(again.due);
            job.planned = job.planned.min(again.due);
        }
    }
}
