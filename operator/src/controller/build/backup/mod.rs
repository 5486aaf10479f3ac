//! The objects of `spec.backup`: the backup pods' identities, the schedules, the local tier's
//! volume, and the one-off Jobs a request or a restore asks for.

pub mod cron_job;
pub mod job;
pub mod pod;
pub mod rbac;
pub mod recovery;
pub mod volume;

use super::children::BackupObjects;
use crate::controller::vocabulary::{Directives, ValidatedGuard};

/// The backup objects, with the schedules suspended and the one-off Jobs as `directives` say;
/// every backup pod runs `job_image`.
pub fn build(guard: &ValidatedGuard, directives: &Directives, job_image: &str) -> BackupObjects {
    let Some(backup) = &guard.spec.backup else { return BackupObjects::default() };
    let (service_accounts, role_bindings) = rbac::build(guard);
    BackupObjects {
        service_accounts,
        role_bindings,
        cron_jobs: cron_job::build(guard, directives.suspend_backups, job_image),
        volume: volume::build(guard),
        jobs: directives.jobs.iter().filter_map(|request| job::build(guard, backup, request, job_image)).collect(),
    }
}
