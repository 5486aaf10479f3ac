//! HTTP routes, one module per area, each with `pub fn router()`.

pub mod auth;
pub mod explain;
pub mod feeds;
pub mod health;
pub mod metrics;
pub mod patterns;
pub mod scan;
