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

/// An order's targets as a countdown: what is due, when, and whether the clock is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Countdown {
    /// When the response (acceptance) is due.
    pub response_due_ms: i64,
    /// When the technician accepted, if they have (a device claim).
    pub responded_at_ms: Option<i64>,
    /// When the work is due, paused time added; `None` while a pausing hold is open.
    pub resolution_due_ms: Option<i64>,
    /// When the work was completed, if it has been (a device claim).
    pub resolved_at_ms: Option<i64>,
    /// The resolution clock is stopped (a hold that pauses it).
    pub paused: bool,
    /// The next instant something is due, as in the query index.
    pub next_due_ms: Option<i64>,
}

/// The countdown of an order in `state`.
pub fn countdown(state: &OrderState, created_at_ms: i64, targets: Targets) -> Countdown {
    let paused = state.status == Status::OnHold && state.pauses.last().is_some_and(|(_, end)| end.is_none());
    let paused_ms: i64 = state.pauses.iter().filter_map(|(start, end)| end.map(|e| (e - start).max(0))).sum();
    Countdown {
        response_due_ms: created_at_ms + targets.response_minutes * MINUTE_MS,
        responded_at_ms: state.accepted_at_ms,
        resolution_due_ms: (!paused).then_some(created_at_ms + targets.resolution_minutes * MINUTE_MS + paused_ms),
        resolved_at_ms: state.completed_at_ms,
        paused,
        next_due_ms: next_deadline_ms(state, created_at_ms, targets),
    }
}
