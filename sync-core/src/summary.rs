//! The few fields of an order that lists and queries need, kept in the store's index so that a
//! list screen never loads a document.

use crate::classification::{Category, Grade, Kind};
use crate::deadline::{self, Targets};
use crate::error::DocumentError;
use crate::ids::{OrderId, UserId};
use crate::lifecycle::Status;
use crate::location::Location;
use crate::work_order::WorkOrder;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSummary {
    pub id: OrderId,
    /// The official number, or the provisional one until the server has numbered the order.
    pub number: String,
    pub kind: Kind,
    pub category: Category,
    pub grade: Grade,
    pub status: Status,
    pub assignee: Option<UserId>,
    pub reporter: UserId,
    pub location: Location,
    pub created_at_ms: i64,
    /// When the next target falls due; `None` when nothing is due.
    pub next_deadline_ms: Option<i64>,
    /// How many transitions in the log did not take effect.
    pub superseded: u32,
    /// The number of the incident (事件单) the server put the order in, if any.
    pub incident: Option<i64>,
}

impl OrderSummary {
    pub fn of(order: &WorkOrder) -> Result<Self, DocumentError> {
        let state = order.state()?;
        let grade = order.grade()?;
        Ok(OrderSummary {
            id: order.id(),
            number: order.display_number(),
            kind: order.kind()?,
            category: order.category()?,
            grade,
            status: state.status,
            assignee: state.assignee,
            reporter: order.reporter()?,
            location: order.location(),
            created_at_ms: order.created_at_ms(),
            next_deadline_ms: deadline::next_deadline_ms(&state, order.created_at_ms(), Targets::default_for(grade)),
            superseded: state.superseded().count() as u32,
            incident: order.incident().map(|i| i.number),
        })
    }
}
