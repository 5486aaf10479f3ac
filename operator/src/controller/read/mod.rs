//! Read: what a reconcile needs to know besides the SecurityGuard, from the watch caches and,
//! only when they cannot tell, from the API server. No writes.
//!
//! [`dereference`] reads the referenced Secrets; [`observe`] what the backups, a restore in
//! progress and failing pods depend on ([`jobs`], [`pods`], [`readiness`]);
//! [`monitoring_apis`] whether the cluster serves prometheus-operator's kinds.

pub mod cached;
pub mod dereference;
pub mod jobs;
pub mod monitoring_apis;
pub mod observe;
pub mod pods;
pub mod readiness;
mod stores;

pub use stores::Stores;
