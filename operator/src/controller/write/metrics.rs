//! The per-guard backup, drill and restore gauges.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::controller::vocabulary::ValidatedGuard;
use crate::crd::SecurityGuardStatus;
use crate::metrics::{GuardLabels, Metrics};

/// Sets the backup, drill and restore gauges from the status (so they survive a restart).
pub fn export(metrics: &Metrics, guard: &ValidatedGuard, status: &SecurityGuardStatus, now: Timestamp) {
    let labels = GuardLabels::new(&guard.namespace, &guard.name);
    let Some(spec) = &guard.spec.backup else {
        metrics.guards.forget(&labels);
        return;
    };
    let seconds = |t: &Time| t.0.as_millisecond() as f64 / 1000.0;
    let interval = crate::crd::schedule::interval(&spec.schedule, now).map(|d| d.as_secs_f64());
    metrics.guards.set_backup_interval(&labels, if spec.suspend { None } else { interval });
    if let Some(backup) = &status.backup {
        if let Some(ok) = &backup.last_successful {
            metrics.guards.backup_succeeded(
                &labels,
                seconds(&ok.finished_at),
                ok.duration_seconds.unwrap_or(0.0),
                ok.size_bytes.unwrap_or(0),
            );
        }
        if let Some(failed) = &backup.last_failed {
            metrics.guards.backup_failed(&labels, seconds(&failed.finished_at));
        }
        if let Some(passed) = &backup.last_verified {
            metrics.guards.restore_drill(&labels, seconds(&passed.finished_at), true);
        }
        if let Some(last) = &backup.last_verification {
            metrics.guards.restore_drill(&labels, seconds(&last.finished_at), last.error.is_none());
        }
    }
    if let Some(restore) = &status.restore {
        metrics.guards.set_restore_phase(&labels, restore.phase.as_str());
    }
}
