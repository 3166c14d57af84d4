//! China Standard Time (UTC+8, no daylight saving), on `jiff` as the SLA calendars are: the day
//! of an official number (`YYYYMMDD`) and the hour of the week of the heat map. One place for
//! both, instead of the hand-rolled offsets the server kept.

use jiff::Timestamp;
use jiff::tz::{self, TimeZone};

fn in_china(at_ms: i64) -> jiff::Zoned {
    // Device clocks are claims: an instant outside jiff's range (±9999 years) is clamped to it.
    let at = Timestamp::from_millisecond(at_ms).unwrap_or(if at_ms < 0 { Timestamp::MIN } else { Timestamp::MAX });
    at.to_zoned(TimeZone::fixed(tz::offset(8)))
}

/// The day of an instant in China Standard Time, `YYYYMMDD` (official numbers carry it).
pub fn day_code(at_ms: i64) -> String {
    in_china(at_ms).strftime("%Y%m%d").to_string()
}

/// The civil day of an instant in China Standard Time (maintenance plans' days).
pub fn date(at_ms: i64) -> jiff::civil::Date {
    in_china(at_ms).date()
}

/// An instant to the minute in China Standard Time, `YYYY-MM-DD HH:MM` (exports).
pub fn minute(at_ms: i64) -> String {
    in_china(at_ms).strftime("%Y-%m-%d %H:%M").to_string()
}

/// The hour of the week of an instant in China Standard Time, Monday 00:00 = 0 … Sunday 23:00 = 167.
pub fn hour_of_week(at_ms: i64) -> i64 {
    let at = in_china(at_ms);
    i64::from(at.weekday().to_monday_zero_offset()) * 24 + i64::from(at.hour())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_number_days_are_china_standard_time() {
        // 2026-11-27 15:59:59 UTC is 23:59:59 in Shanghai; a second later it is the 28th.
        assert_eq!(day_code(1_795_795_199_000), "20261127");
        assert_eq!(day_code(1_795_795_200_000), "20261128");
        assert_eq!(day_code(0), "19700101");
        assert_eq!(minute(1_795_795_199_000), "2026-11-27 23:59");
    }

    #[test]
    fn hours_of_the_week_are_counted_in_china_standard_time_from_monday() {
        // 2026-11-23 00:00 +08:00 is a Monday.
        let monday = 1_795_363_200_000;
        assert_eq!(hour_of_week(monday), 0);
        assert_eq!(hour_of_week(monday - 1), 167, "Sunday 23:59");
        assert_eq!(hour_of_week(monday + 4 * 86_400_000 + 17 * 3_600_000 + 50 * 60_000), 4 * 24 + 17, "Friday 17:50");
        assert_eq!(hour_of_week(monday + 7 * 86_400_000), 0);
        assert_eq!(hour_of_week(0), 3 * 24 + 8, "the epoch: Thursday 08:00 in Shanghai");
    }

    #[test]
    fn any_instant_has_a_day_and_an_hour() {
        for at in [i64::MIN, -1, i64::MAX] {
            let day = day_code(at);
            assert!(day.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) && day.len() >= 8, "{day}");
            assert!((0..168).contains(&hour_of_week(at)));
        }
    }
}

/// An order's official number (工单号) as the server gives it: `GD`, the day in China Standard
/// Time (`YYYYMMDD`, [`day_code`]) and the organization's count of that day, at least four
/// digits: `GD202612060045`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficialNumber {
    pub day: String,
    pub count: i64,
}

impl OfficialNumber {
    pub fn new(day: String, count: i64) -> OfficialNumber {
        OfficialNumber { day, count }
    }

    /// `GD`, the day, the count (zero-padded to four digits).
    pub fn text(&self) -> String {
        format!("GD{}{:04}", self.day, self.count)
    }

    /// Reads a number the server gave; `None` for any other text.
    pub fn parse(text: &str) -> Option<OfficialNumber> {
        let rest = text.strip_prefix("GD")?;
        // A day's count has at most eight digits: no number raises a count near overflow.
        if !(12..=16).contains(&rest.len()) || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (day, count) = rest.split_at(8);
        Some(OfficialNumber { day: day.to_owned(), count: count.parse().ok().filter(|c| *c > 0)? })
    }
}

#[cfg(test)]
mod number_tests {
    use super::*;

    #[test]
    fn official_numbers_read_back() {
        let n = OfficialNumber::new("20261206".into(), 45);
        assert_eq!(n.text(), "GD202612060045");
        assert_eq!(OfficialNumber::parse("GD202612060045"), Some(n));
        assert_eq!(OfficialNumber::parse("GD2026120612345").map(|n| n.count), Some(12_345));
        assert_eq!(OfficialNumber::parse("GD2026120699999999").map(|n| n.count), Some(99_999_999));
        for other in [
            "",
            "GD",
            "GD20261206",
            "GD20261206004",
            "XX202612060045",
            "GD2026120600a5",
            "GD202612060000",
            "GD20261206999999999",
            "GD202612069223372036854775807",
        ] {
            assert_eq!(OfficialNumber::parse(other), None, "{other}");
        }
    }
}
