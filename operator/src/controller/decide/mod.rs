//! Decide: pure functions from what was read to what the SecurityGuard should be now.
//!
//! [`validate`] turns the spec and its Secrets into a [`validate::ValidatedGuard`], never changed
//! afterwards; [`decide`] advances a restore ([`restore`]) and settles how the guard runs
//! meanwhile ([`Directives`]): replicas, suspended schedules, and the one-off Jobs that must
//! exist.

pub mod restore;
pub mod validate;

use std::time::Duration;

use super::read::observe::Observations;
use super::vocabulary::{Directives, JobRequest};
use crate::crd::SecurityGuard;

/// How often a restore in progress is looked at (besides the watches).
pub const RESTORE_POLL: Duration = Duration::from_secs(2);

/// What one reconcile decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// The restore's step: its new status, the phases entered, how to run meanwhile.
    pub restore: restore::Plan,
    /// How the guard runs now: the restore's directives plus an on-demand backup's Job.
    pub directives: Directives,
    /// The `spec.backup.requestId` acted on in this reconcile, if new.
    pub backup_request: Option<String>,
}

impl Decision {
    /// When to look at the SecurityGuard again although nothing changes: soon while a restore
    /// runs (API pods stopping are polled), when a pod's grace for being unschedulable ends,
    /// else after `resync`.
    pub fn requeue_after(&self, recheck_pods: Option<Duration>, resync: Duration) -> Duration {
        if self.restore.active() { RESTORE_POLL } else { recheck_pods.map_or(resync, |recheck| recheck.min(resync)) }
    }
}

/// Advances the restore and settles the directives from what was observed.
pub fn decide(guard: &SecurityGuard, observed: &Observations) -> Decision {
    let previous = guard.status.as_ref().and_then(|s| s.restore.as_ref());
    let plan = restore::plan(&guard.spec, previous, &observed.restore);
    let mut directives = plan.directives.clone();
    let backup_request = on_demand_backup(guard, plan.active());
    if let Some(request_id) = &backup_request {
        directives.jobs.push(JobRequest::Backup { request_id: request_id.clone() });
    }
    Decision { restore: plan, directives, backup_request }
}

/// The `spec.backup.requestId` to act on now, if it is new. Deferred while a restore runs.
fn on_demand_backup(guard: &SecurityGuard, restoring: bool) -> Option<String> {
    let asked = guard.spec.backup.as_ref()?.request_id.as_ref()?;
    let handled = guard.status.as_ref().and_then(|s| s.backup.as_ref()).and_then(|b| b.last_request_id.as_ref());
    (handled != Some(asked) && !restoring).then(|| asked.clone())
}
