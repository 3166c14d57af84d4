//! Deadline arithmetic on business calendars and SLA policies: properties that must hold for any
//! start and duration, and the scenarios the service standard cares about.

use jiff::civil::date;
use jiff::tz::TimeZone;
use loopwork_sync_core::calendar::{Calendar, WorkingHours};
use loopwork_sync_core::sla::{Policy, PolicyError, SlaBook, Stage, Target};
use loopwork_sync_core::{
    Action, Category, Channel, Grade, HoldReason, Identity, Kind, Location, NewOrder, Role, WorkOrder,
};
use proptest::prelude::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn shanghai(y: i16, m: i8, d: i8, h: i8, min: i8) -> i64 {
    at("Asia/Shanghai", y, m, d, h, min)
}

fn at(zone: &str, y: i16, m: i8, d: i8, h: i8, min: i8) -> i64 {
    date(y, m, d).at(h, min, 0, 0).to_zoned(TimeZone::get(zone).unwrap()).unwrap().timestamp().as_millisecond()
}

fn office() -> Calendar {
    Calendar::Working(WorkingHours::china_office())
}

/// Working hours in Berlin, a zone with daylight saving, no holidays.
fn berlin() -> Calendar {
    Calendar::Working(WorkingHours {
        zone: TimeZone::get("Europe/Berlin").unwrap(),
        holidays: Default::default(),
        working_days: Default::default(),
        ..WorkingHours::china_office()
    })
}

#[test]
fn a_30_minute_response_at_17_50_on_the_friday_before_a_holiday() {
    // 2026-04-03 is a Friday; 4–6 April is the Qingming holiday.
    let created = shanghai(2026, 4, 3, 17, 50);
    assert_eq!(office().add(created, 30 * MINUTE), shanghai(2026, 4, 7, 9, 20), "10 minutes Friday, 20 on Tuesday");
    assert_eq!(Calendar::AlwaysOpen.add(created, 30 * MINUTE), shanghai(2026, 4, 3, 18, 20));
}

#[test]
fn an_adjusted_saturday_is_a_working_day_and_the_spring_festival_is_not() {
    // 2026-02-14 (Saturday) is worked; 15–23 February is the Spring Festival holiday.
    let friday = shanghai(2026, 2, 13, 17, 30);
    assert_eq!(office().add(friday, 2 * HOUR), shanghai(2026, 2, 14, 10, 30));
    assert_eq!(office().add(friday, 10 * HOUR), shanghai(2026, 2, 24, 9, 30), "over the whole holiday");
    assert_eq!(office().working_between(friday, shanghai(2026, 2, 24, 9, 30)), 10 * HOUR);
}

#[test]
fn working_hours_stay_local_across_a_daylight_saving_change() {
    // Berlin moves to summer time on Sunday 2026-03-29.
    let friday = at("Europe/Berlin", 2026, 3, 27, 17, 0);
    let due = berlin().add(friday, 2 * HOUR);
    assert_eq!(due, at("Europe/Berlin", 2026, 3, 30, 10, 0));
    assert_eq!(due - friday, 2 * 24 * HOUR + 17 * HOUR - HOUR, "the wall-clock hour lost that night");
}

fn order_with_hold(created: i64, hold: i64, resume: Option<i64>) -> WorkOrder {
    let desk = Identity::fresh(Role::Dispatcher);
    let tech = Identity::fresh(Role::Technician);
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::Elevator,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::common_area("hy-garden", "5号楼2号电梯"),
        description: "电梯异响".into(),
        reporter: Identity::fresh(Role::Owner).user,
        occurred_at_ms: None,
    };
    let mut order = WorkOrder::create(&new, &desk, created).unwrap();
    order.transition(&desk, Action::Assign(tech.user), None, created).unwrap();
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        order.transition(&tech, action, None, created + HOUR).unwrap();
    }
    order.transition(&tech, Action::Hold(HoldReason::WaitingForParts), None, hold).unwrap();
    if let Some(resume) = resume {
        order.transition(&tech, Action::Resume, None, resume).unwrap();
    }
    order
}

/// One policy: resolution in 24 working hours of the office calendar.
fn office_book() -> SlaBook {
    let mut book = SlaBook::defaults();
    book.policies = vec![Policy {
        name: "office".into(),
        kinds: vec![],
        categories: vec![],
        grades: vec![],
        response: Target::new(30, "24x7"),
        arrival: None,
        resolution: Target::new(24 * 60, "office"),
    }];
    book
}

#[test]
fn a_pause_across_a_weekend_adds_only_its_working_time() {
    // Created Thursday 09:00: 9 h Thursday + 9 h Friday + 6 h Monday = Monday 15:00.
    let created = shanghai(2026, 3, 12, 9, 0);
    let book = office_book();
    // Waiting for parts from Friday 17:00 to Monday 10:00: one working hour each side.
    let hold = shanghai(2026, 3, 13, 17, 0);
    let resume = shanghai(2026, 3, 16, 10, 0);
    let paused = order_with_hold(created, hold, None);
    let d =
        book.deadlines(Kind::Repair, &Category::Elevator, Grade::Serious, &paused.state().unwrap(), created).unwrap();
    assert_eq!(d.resolution_due_ms, None, "the resolution clock stops while waiting for parts");
    assert_eq!(d.response_due_ms, created + 30 * MINUTE, "the response clock never pauses");

    let resumed = order_with_hold(created, hold, Some(resume));
    let d =
        book.deadlines(Kind::Repair, &Category::Elevator, Grade::Serious, &resumed.state().unwrap(), created).unwrap();
    assert_eq!(d.paused_ms, 2 * HOUR);
    assert_eq!(d.resolution_due_ms, Some(shanghai(2026, 3, 16, 17, 0)), "Monday 15:00 plus the two paused hours");
}

#[test]
fn a_new_grade_retargets_from_creation_keeping_paused_time() {
    let created = shanghai(2026, 3, 12, 9, 0);
    let resumed = order_with_hold(created, created + 2 * HOUR, Some(created + 3 * HOUR));
    let state = resumed.state().unwrap();
    let book = SlaBook::defaults();
    let serious = book.deadlines(Kind::Repair, &Category::Elevator, Grade::Serious, &state, created).unwrap();
    let critical = book.deadlines(Kind::Repair, &Category::Elevator, Grade::Critical, &state, created).unwrap();
    assert_eq!(serious.resolution_due_ms, Some(created + 24 * HOUR + HOUR));
    assert_eq!(critical.resolution_due_ms, Some(created + 4 * HOUR + HOUR));
    assert_eq!(critical.policy, "critical");
}

#[test]
fn policies_are_validated() {
    let book = SlaBook::defaults();
    assert_eq!(book.validate(), Ok(()));
    let complaint = book.policy_for(Kind::Complaint, &Category::Noise, Grade::Minor).unwrap();
    assert_eq!(complaint.name, "complaint-minor");
    assert_eq!(book.policy_for(Kind::Repair, &Category::Noise, Grade::Minor).unwrap().name, "default");

    let mut no_default = book.clone();
    no_default.policies.pop();
    assert_eq!(no_default.validate(), Err(PolicyError::NoDefault));
    let mut slow_response = book.clone();
    slow_response.policies[1].response.minutes = 10_000;
    assert!(matches!(slow_response.validate(), Err(PolicyError::ResponseAfterResolution(_))));
    let mut unknown = book.clone();
    unknown.policies[0].resolution.calendar = "night-shift".into();
    assert!(matches!(unknown.validate(), Err(PolicyError::UnknownCalendar(_, _))));
    let mut zero = book;
    zero.policies[0].response.minutes = 0;
    assert!(matches!(zero.validate(), Err(PolicyError::NotPositive(_))));
}

fn calendars() -> impl Strategy<Value = Calendar> {
    prop_oneof![Just(office()), Just(berlin()), Just(Calendar::AlwaysOpen)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn deadline_arithmetic_is_consistent(
        calendar in calendars(),
        // Any instant in 2026 (Shanghai), to the minute.
        start_minute in 0i64..(365 * 24 * 60),
        a in 1i64..6_000,
        b in 1i64..6_000,
    ) {
        let start = shanghai(2026, 1, 1, 0, 0) + start_minute * MINUTE;
        let (a, b) = (a * MINUTE, b * MINUTE);
        let due_a = calendar.add(start, a);
        prop_assert!(due_a >= start + a, "never faster than the wall clock");
        prop_assert!(calendar.is_working(due_a - 1), "a deadline lands at the end of working time");
        prop_assert!(calendar.add(start, a + b) > due_a, "monotonic");
        prop_assert_eq!(calendar.add(due_a, b), calendar.add(start, a + b), "associative");
        prop_assert_eq!(calendar.working_between(start, due_a), a, "measuring undoes adding");
    }
}

#[test]
fn checkpoints_warn_at_half_and_three_quarters_then_breach_and_stop_when_met() {
    let book = SlaBook::defaults();
    let created = shanghai(2026, 3, 12, 9, 0);
    let desk = Identity::fresh(Role::Dispatcher);
    let tech = Identity::fresh(Role::Technician);
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Critical,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "总水管爆裂".into(),
        reporter: Identity::fresh(Role::Owner).user,
        occurred_at_ms: None,
    };
    let mut order = WorkOrder::create(&new, &desk, created).unwrap();
    order.transition(&desk, Action::Assign(tech.user), None, created).unwrap();
    let points = |order: &WorkOrder| {
        book.checkpoints(Kind::Repair, &Category::WaterElectric, Grade::Critical, &order.state().unwrap(), created)
    };
    let all = points(&order);
    let response: Vec<i64> = all.iter().filter(|c| c.stage == Stage::Response).map(|c| c.at_ms - created).collect();
    assert_eq!(response, vec![15 * MINUTE, 22 * MINUTE + 30_000, 30 * MINUTE]);
    assert_eq!(all.iter().rfind(|c| c.stage == Stage::Resolution).unwrap().at_ms, created + 4 * HOUR);
    assert!(all.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "in time order");
    assert!(all.iter().all(|c| c.due_ms >= c.at_ms));

    order.transition(&tech, Action::Accept, None, created + 10 * MINUTE).unwrap();
    assert!(points(&order).iter().all(|c| c.stage != Stage::Response), "met once accepted");
    for action in [Action::Arrive, Action::Start, Action::Complete] {
        order.transition(&tech, action, None, created + HOUR).unwrap();
    }
    assert!(points(&order).is_empty(), "nothing is due while the owner decides");
}

/// Any book, even one `validate` would refuse, at the extremes of its targets and of time: no
/// deadline or checkpoint before the order's creation, and no panic.
fn extreme_book(minutes: i64, calendar: &str) -> SlaBook {
    let mut book = SlaBook::defaults();
    book.policies = vec![Policy {
        name: "extreme".into(),
        kinds: vec![],
        categories: vec![],
        grades: vec![],
        response: Target::new(minutes, calendar),
        arrival: Some(Target::new(minutes, calendar)),
        resolution: Target::new(minutes, calendar),
    }];
    book
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn no_target_yields_a_deadline_before_the_order(
        minutes in prop_oneof![1i64..1_000, Just(i64::MAX / 60_000), Just(i64::MAX), Just(1i64 << 62), 1i64..i64::MAX],
        created in prop_oneof![0i64..(1i64 << 45), Just(i64::MAX - 1), Just(i64::MAX / 2)],
        office_hours in any::<bool>(),
    ) {
        let book = extreme_book(minutes, if office_hours { "office" } else { "24x7" });
        let order = order_with_hold(shanghai(2026, 3, 12, 9, 0), shanghai(2026, 3, 13, 17, 0), Some(shanghai(2026, 3, 16, 10, 0)));
        let state = order.state().unwrap();
        let d = book.deadlines(Kind::Repair, &Category::Elevator, Grade::Serious, &state, created).unwrap();
        prop_assert!(d.response_due_ms >= created);
        prop_assert!(d.arrival_due_ms.is_none_or(|a| a >= created));
        prop_assert!(d.resolution_due_ms.is_none_or(|r| r >= created));
        for checkpoint in book.checkpoints(Kind::Repair, &Category::Elevator, Grade::Serious, &state, created) {
            prop_assert!(checkpoint.at_ms >= created && checkpoint.due_ms >= checkpoint.at_ms);
        }
        prop_assert_eq!(book.validate().is_ok(), minutes <= loopwork_sync_core::sla::MAX_TARGET_MINUTES);
    }
}

/// Found by fuzzing: working hours that close at 24:00 made the calendar panic.
#[test]
fn working_hours_may_close_at_midnight() {
    let calendar =
        Calendar::Working(WorkingHours { open_minute: 7 * 60, close_minute: 24 * 60, ..WorkingHours::china_office() });
    // Friday 2026-03-13, 23:30: half an hour left that day, then Monday from 07:00.
    let start = shanghai(2026, 3, 13, 23, 30);
    assert_eq!(calendar.add(start, 30 * MINUTE), shanghai(2026, 3, 14, 0, 0));
    assert_eq!(calendar.add(start, 60 * MINUTE), shanghai(2026, 3, 16, 7, 30));
}
