//! Each organization's SLA policies and calendars (`sync_core::sla::SlaBook`), editable by its
//! administrators as JSON; the seeded defaults until an organization sets its own.
//!
//! - `GET /api/v1/settings/sla` (office staff): the organization's book.
//! - `PUT /api/v1/settings/sla` (administrators): replaces it, after validation (a default policy
//!   last, known calendars and time zones, positive targets, response and arrival no longer than
//!   resolution, working hours that open before they close).
//!
//! ```json
//! {"calendars": {"24x7": {"kind": "24x7"},
//!                "office": {"kind": "working_hours", "zone": "Asia/Shanghai", "open": "09:00",
//!                           "close": "18:00", "weekdays": [1, 2, 3, 4, 5],
//!                           "holidays": ["2026-10-01"], "working_days": ["2026-10-10"]}},
//!  "policies": [{"name": "default", "kinds": [], "categories": [], "grades": [],
//!                "response": {"minutes": 30, "calendar": "24x7"}, "arrival": null,
//!                "resolution": {"minutes": 2880, "calendar": "24x7"}}]}
//! ```

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::civil::Date;
use loopwork_sync_core::calendar::{Calendar, WorkingHours};
use loopwork_sync_core::sla::{Policy, SlaBook, Target};
use loopwork_sync_core::{Category, Grade, Kind, Role};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookJson {
    pub calendars: BTreeMap<String, CalendarJson>,
    pub policies: Vec<PolicyJson>,
}

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

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetJson {
    pub minutes: i64,
    pub calendar: String,
}

fn invalid(en: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_sla", en, "时限策略不合规")
}

fn minute_of(text: &str) -> Result<u32, ApiError> {
    let (h, m) = text.split_once(':').ok_or_else(|| invalid(format!("`{text}` is not HH:MM")))?;
    let (h, m): (u32, u32) =
        (h.parse().map_err(|_| invalid("hours are digits"))?, m.parse().map_err(|_| invalid("minutes are digits"))?);
    if h > 24 || m > 59 || h * 60 + m > 24 * 60 {
        return Err(invalid(format!("`{text}` is not a time of day")));
    }
    Ok(h * 60 + m)
}

fn dates(list: &[String]) -> Result<std::collections::BTreeSet<Date>, ApiError> {
    list.iter().map(|d| d.parse::<Date>().map_err(|_| invalid(format!("`{d}` is not a date (YYYY-MM-DD)")))).collect()
}

/// The book the JSON describes, validated.
pub fn book_from_json(json: &BookJson) -> Result<SlaBook, ApiError> {
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
    book.validate().map_err(|e| invalid(e.to_string()))?;
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

/// The organization's book: its own if it set one, else the seeded defaults.
pub async fn book_of(state: &AppState, org: &str) -> Result<SlaBook, ApiError> {
    match state.db.sla_book(org).await? {
        Some(text) => {
            let json: BookJson = serde_json::from_str(&text).map_err(|_| ApiError::internal())?;
            book_from_json(&json)
        }
        None => Ok(SlaBook::defaults()),
    }
}

pub async fn get_book(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<BookJson>, ApiError> {
    if !principal.role.is_staff() {
        return Err(ApiError::forbidden("only office staff read the settings", "只有客服及管理人员可以查看设置"));
    }
    Ok(Json(book_to_json(&book_of(&state, &principal.org).await?)))
}

pub async fn put_book(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<BookJson>,
) -> Result<StatusCode, ApiError> {
    if principal.role != Role::Admin {
        return Err(ApiError::forbidden(
            "only an administrator changes the SLA policies",
            "只有管理员可以修改时限策略",
        ));
    }
    let book = book_from_json(&body)?;
    let text = serde_json::to_string(&book_to_json(&book)).map_err(|_| ApiError::internal())?;
    state.db.set_sla_book(&principal.org, &text).await?;
    Ok(StatusCode::NO_CONTENT)
}
