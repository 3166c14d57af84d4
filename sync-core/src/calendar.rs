//! Business calendars: when the service clock runs. Either round the clock, or working hours in
//! a time zone (default 09:00–18:00 Monday to Friday, Asia/Shanghai) with public holidays and
//! China's adjusted working days (调休: a Saturday or Sunday that is a working day).
//!
//! Deadline arithmetic adds *working time*: [`Calendar::add`] gives the instant at which a
//! duration of working time has elapsed since a start, and [`Calendar::working_between`]
//! measures working time between two instants; each undoes the other. Both are computed the
//! same way on a phone offline and on the server. Instants are Unix milliseconds; days are the
//! zone's civil days, so a zone with daylight saving keeps its working hours in local time.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;

/// How many days a computation may look ahead for working time (a calendar with no working
/// day at all would otherwise never end).
const HORIZON_DAYS: usize = 3_700;

/// When the service clock runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Calendar {
    /// 24×7.
    AlwaysOpen,
    Working(WorkingHours),
}

/// Working hours in a zone, with holidays and adjusted working days.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkingHours {
    pub zone: TimeZone,
    /// Local opening time, minutes after midnight.
    pub open_minute: u32,
    /// Local closing time, minutes after midnight (after `open_minute`).
    pub close_minute: u32,
    /// Monday first: which weekdays are working days.
    pub weekdays: [bool; 7],
    /// Days off, whatever the weekday.
    pub holidays: BTreeSet<Date>,
    /// Working days, whatever the weekday (调休); they win over `holidays`.
    pub working_days: BTreeSet<Date>,
}

/// China's public holidays of 2025, from the State Council's notice of 12 November 2024
/// (国务院办公厅关于2025年部分节假日安排的通知).
pub const CHINA_HOLIDAYS_2025: &[(i16, i8, i8)] = &[
    (2025, 1, 1),
    (2025, 1, 28),
    (2025, 1, 29),
    (2025, 1, 30),
    (2025, 1, 31),
    (2025, 2, 1),
    (2025, 2, 2),
    (2025, 2, 3),
    (2025, 2, 4),
    (2025, 4, 4),
    (2025, 4, 5),
    (2025, 4, 6),
    (2025, 5, 1),
    (2025, 5, 2),
    (2025, 5, 3),
    (2025, 5, 4),
    (2025, 5, 5),
    (2025, 5, 31),
    (2025, 6, 1),
    (2025, 6, 2),
    (2025, 10, 1),
    (2025, 10, 2),
    (2025, 10, 3),
    (2025, 10, 4),
    (2025, 10, 5),
    (2025, 10, 6),
    (2025, 10, 7),
    (2025, 10, 8),
];

/// The weekend days of 2025 that are working days (调休上班), from the same notice.
pub const CHINA_WORKING_WEEKENDS_2025: &[(i16, i8, i8)] =
    &[(2025, 1, 26), (2025, 2, 8), (2025, 4, 27), (2025, 9, 28), (2025, 10, 11)];

/// China's public holidays of 2026, from the State Council's notice of 4 November 2025
/// (国务院办公厅关于2026年部分节假日安排的通知). Later years are added as they are announced;
/// an organization can edit its own copy.
pub const CHINA_HOLIDAYS_2026: &[(i16, i8, i8)] = &[
    (2026, 1, 1),
    (2026, 1, 2),
    (2026, 1, 3),
    (2026, 2, 15),
    (2026, 2, 16),
    (2026, 2, 17),
    (2026, 2, 18),
    (2026, 2, 19),
    (2026, 2, 20),
    (2026, 2, 21),
    (2026, 2, 22),
    (2026, 2, 23),
    (2026, 4, 4),
    (2026, 4, 5),
    (2026, 4, 6),
    (2026, 5, 1),
    (2026, 5, 2),
    (2026, 5, 3),
    (2026, 5, 4),
    (2026, 5, 5),
    (2026, 6, 19),
    (2026, 6, 20),
    (2026, 6, 21),
    (2026, 9, 25),
    (2026, 9, 26),
    (2026, 9, 27),
    (2026, 10, 1),
    (2026, 10, 2),
    (2026, 10, 3),
    (2026, 10, 4),
    (2026, 10, 5),
    (2026, 10, 6),
    (2026, 10, 7),
];

/// The weekend days of 2026 that are working days (调休上班), from the same notice.
pub const CHINA_WORKING_WEEKENDS_2026: &[(i16, i8, i8)] =
    &[(2026, 1, 4), (2026, 2, 14), (2026, 2, 28), (2026, 5, 9), (2026, 9, 20), (2026, 10, 10)];

impl WorkingHours {
    /// 09:00–18:00, Monday to Friday, Asia/Shanghai, with China's holidays and adjusted working
    /// days.
    pub fn china_office() -> Self {
        let days = |lists: &[&[(i16, i8, i8)]]| {
            lists.iter().flat_map(|list| list.iter()).map(|&(y, m, d)| date(y, m, d)).collect()
        };
        WorkingHours {
            zone: TimeZone::get("Asia/Shanghai").unwrap_or(TimeZone::fixed(jiff::tz::offset(8))),
            open_minute: 9 * 60,
            close_minute: 18 * 60,
            weekdays: [true, true, true, true, true, false, false],
            holidays: days(&[CHINA_HOLIDAYS_2025, CHINA_HOLIDAYS_2026]),
            working_days: days(&[CHINA_WORKING_WEEKENDS_2025, CHINA_WORKING_WEEKENDS_2026]),
        }
    }

    pub fn is_working_day(&self, day: Date) -> bool {
        if self.working_days.contains(&day) {
            return true;
        }
        if self.holidays.contains(&day) {
            return false;
        }
        self.weekdays[day.weekday().to_monday_zero_offset() as usize]
    }

    /// The day's working window as instants `[open, close)`, if it is a working day.
    fn window(&self, day: Date) -> Option<(i64, i64)> {
        if !self.is_working_day(day) || self.close_minute <= self.open_minute {
            return None;
        }
        let at = |minute: u32| -> Option<i64> {
            // 24:00 closes the day: midnight of the next (fuzzing found `jiff` refusing 24:00).
            let (day, minute) =
                if minute >= 24 * 60 { (day.tomorrow().ok()?, minute - 24 * 60) } else { (day, minute) };
            let time =
                jiff::civil::Time::new(i8::try_from(minute / 60).ok()?, i8::try_from(minute % 60).ok()?, 0, 0).ok()?;
            let zoned = day.to_datetime(time).to_zoned(self.zone.clone()).ok()?;
            Some(zoned.timestamp().as_millisecond())
        };
        Some((at(self.open_minute)?, at(self.close_minute)?))
    }

    fn day_of(&self, ms: i64) -> Option<Date> {
        let ts = Timestamp::from_millisecond(ms).ok()?;
        Some(ts.to_zoned(self.zone.clone()).date())
    }

    /// The working windows from the day holding `from_ms` on, in order.
    fn windows_from(&self, from_ms: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let first = self.day_of(from_ms);
        std::iter::successors(first, |d| d.tomorrow().ok()).take(HORIZON_DAYS).filter_map(|d| self.window(d))
    }
}

impl Calendar {
    /// The instant at which `duration_ms` of working time has elapsed since `start_ms`. A
    /// deadline lands at the end of working time, never in a closed hour: with working hours it
    /// is in `(open, close]` of a working day. A zero duration is the start itself.
    pub fn add(&self, start_ms: i64, duration_ms: i64) -> i64 {
        let hours = match self {
            Calendar::AlwaysOpen => return start_ms.saturating_add(duration_ms),
            Calendar::Working(hours) => hours,
        };
        if duration_ms <= 0 {
            return start_ms;
        }
        let mut left = duration_ms;
        let mut last = start_ms;
        for (open, close) in hours.windows_from(start_ms) {
            let from = open.max(start_ms);
            if from >= close {
                continue;
            }
            let available = close - from;
            if left <= available {
                return from.saturating_add(left);
            }
            left -= available;
            last = close;
        }
        // No working time within the horizon: the deadline is as far as we looked, plus the rest.
        last.saturating_add(left)
    }

    /// Working time between two instants (zero if `to_ms` is not after `from_ms`).
    pub fn working_between(&self, from_ms: i64, to_ms: i64) -> i64 {
        if to_ms <= from_ms {
            return 0;
        }
        let hours = match self {
            Calendar::AlwaysOpen => return to_ms.saturating_sub(from_ms),
            Calendar::Working(hours) => hours,
        };
        let mut total = 0;
        for (open, close) in hours.windows_from(from_ms) {
            if open >= to_ms {
                break;
            }
            let (a, b) = (open.max(from_ms), close.min(to_ms));
            if b > a {
                total = i64::saturating_add(total, b - a);
            }
        }
        total
    }

    /// Whether the service clock runs at this instant.
    pub fn is_working(&self, at_ms: i64) -> bool {
        match self {
            Calendar::AlwaysOpen => true,
            Calendar::Working(hours) => {
                hours.windows_from(at_ms).next().is_some_and(|(open, close)| open <= at_ms && at_ms < close)
            }
        }
    }
}
