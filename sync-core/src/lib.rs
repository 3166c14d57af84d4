//! Loopwork's shared core, compiled into the server and into the mobile apps.
//!
//! It owns the work order as an Automerge document ([`WorkOrder`]), the lifecycle rules and
//! their deterministic fold ([`lifecycle`]), the default response and resolution targets
//! ([`deadline`]) and the device's durable replica ([`Replica`] over a [`store::Store`]).
//!
//! It must never do network IO, start threads or runtimes, or know the server's SQL: its inputs
//! are values and its outputs are values. Its only IO is the device store behind a trait.

pub mod asset;
pub mod authority;
pub mod calendar;
pub mod change_bounds;
pub mod china_time;
pub mod classification;
pub mod clock;
pub mod creation;
pub mod deadline;
pub mod deviation;
pub mod error;
pub mod estate;
pub mod failures;
pub mod identity;
pub mod ids;
pub mod lifecycle;
pub mod location;
#[cfg(feature = "maintenance")]
pub mod maintenance;
pub mod permissions;
pub mod protocol;
pub mod replica;
pub mod role;
pub mod signature;
pub mod sla;
pub mod staff;
pub mod store;
pub mod summary;
pub mod surge;
pub mod sync;
pub mod timeline;
pub mod upload;
pub mod work_order;

pub use classification::{Category, Channel, Grade, Kind};
pub use clock::{Clock, FixedClock, SystemClock, TrustWindow};
pub use error::{CoreError, DocumentError};
pub use identity::Identity;
pub use ids::{DeviceId, OrderId, UserId};
pub use lifecycle::{Action, HoldReason, OrderState, ReturnVisitReason, Status, Supersession, Verdict};
pub use location::Location;
pub use replica::{IncidentWork, Replica};
pub use role::Role;
pub use summary::OrderSummary;
pub use work_order::{Appointment, AttachmentKind, AttachmentRef, IncidentRef, NewAttachment, NewOrder, WorkOrder};
