//! Default service targets and an order's next deadline, computed the same way on a phone
//! offline and on the server.
//!
//! These are the round-the-clock defaults (response within 30 minutes for every grade,
//! resolution by grade). Per-organization SLA policies, business calendars and holidays replace
//! [`Targets::default_for`] later; the query index only needs "the next instant something is
//! due", which is what [`next_deadline_ms`] gives.

use crate::classification::Grade;
use crate::lifecycle::{OrderState, Status};

const MINUTE_MS: i64 = 60_000;

/// How long each stage may take, in minutes of elapsed (24×7) time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Until the assigned technician accepts (响应).
    pub response_minutes: i64,
    /// Until the work is completed (处理完成).
    pub resolution_minutes: i64,
}

impl Targets {
    pub fn default_for(grade: Grade) -> Self {
        let resolution_minutes = match grade {
            Grade::Minor => 48 * 60,
            Grade::Serious => 24 * 60,
            Grade::Severe => 8 * 60,
            Grade::Critical => 4 * 60,
        };
        Targets { response_minutes: 30, resolution_minutes }
    }
}

/// The next instant the order is due, or `None` when nothing is due (finished, cancelled, or
/// on a hold that stops the clock).
pub fn next_deadline_ms(state: &OrderState, created_at_ms: i64, targets: Targets) -> Option<i64> {
    match state.status {
        Status::New | Status::Assigned => Some(created_at_ms + targets.response_minutes * MINUTE_MS),
        Status::OnHold if state.pauses.last().is_some_and(|(_, end)| end.is_none()) => None,
        s if s.is_open() => {
            let paused: i64 = state.pauses.iter().filter_map(|(start, end)| end.map(|e| (e - start).max(0))).sum();
            Some(created_at_ms + targets.resolution_minutes * MINUTE_MS + paused)
        }
        _ => None,
    }
}
