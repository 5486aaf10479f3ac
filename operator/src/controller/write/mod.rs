//! Write: the only code that changes the cluster. Children by server-side apply, in a stated
//! order, then the deletion of those no longer asked for ([`apply`], [`orphans`]); the generated
//! passwords, created once ([`credentials`]); the SecurityGuard's status ([`status`]); Events
//! ([`events`], published by [`recorder`]) and the backup gauges ([`metrics`]).

pub mod apply;
pub mod changes;
pub mod credentials;
mod error;
pub mod events;
pub mod ledger;
pub mod metrics;
pub mod orphans;
pub mod recorder;
pub mod status;

pub use error::Error;
