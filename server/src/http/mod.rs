//! The HTTP layer's shared parts. (The router and the handlers move here by resource; today the
//! router is `api::router`.)

pub mod extract;

pub use extract::{Body, MAX_JSON_BODY, Params};
pub mod settings;
