//! The per-guard backup, drill and restore gauges.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::controller::vocabulary::ValidatedGuard;
use crate::crd::SecurityGuardStatus;
use crate::metrics::{FeedLabels, GuardLabels, Metrics};

/// Sets the backup, drill, restore and threat-feed gauges from the status (so they survive a
/// restart).
pub fn export(metrics: &Metrics, guard: &ValidatedGuard, status: &SecurityGuardStatus, now: Timestamp) {
    export_feeds(metrics, guard, status, now);
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
    export_point_in_time(metrics, guard, &labels, status);
    let newest_drill = status.backup.as_ref().and_then(|b| b.last_verification.as_ref());
    metrics.guards.drill_recovery(&labels, newest_drill.and_then(|run| run.recovery.as_ref()));
    if let Some(restore) = &status.restore {
        metrics.guards.set_restore_phase(&labels, restore.phase.as_str());
    }
}

/// The WAL archive's alert threshold and the recoverable window, while the operator runs
/// PostgreSQL with point-in-time recovery.
fn export_point_in_time(metrics: &Metrics, guard: &ValidatedGuard, labels: &GuardLabels, status: &SecurityGuardStatus) {
    let seconds = |t: &Time| t.0.as_millisecond() as f64 / 1000.0;
    let pitr = guard
        .spec
        .backup
        .as_ref()
        .and_then(|b| b.point_in_time.as_ref())
        .filter(|_| guard.postgres_managed().is_some());
    let threshold = pitr.and_then(|p| crate::crd::duration::parse(&p.archive_lag_alert).ok()).map(|d| d.as_secs_f64());
    let window = status.backup.as_ref().and_then(|b| b.point_in_time.as_ref()).filter(|_| pitr.is_some());
    let first = window.and_then(|w| w.window.first_recoverable.as_ref()).map(seconds);
    let last = window.and_then(|w| w.window.last_recoverable.as_ref()).map(seconds);
    metrics.guards.point_in_time(labels, threshold, (first, last));
}

/// The labels of one feed of a SecurityGuard.
pub fn feed_labels(guard: &ValidatedGuard, feed: &str) -> FeedLabels {
    FeedLabels { namespace: guard.namespace.clone(), securityguard: guard.name.clone(), feed: feed.to_owned() }
}

/// The per-feed gauges and the schedule's interval; a feed no longer synced loses its series.
fn export_feeds(metrics: &Metrics, guard: &ValidatedGuard, status: &SecurityGuardStatus, now: Timestamp) {
    let labels = GuardLabels::new(&guard.namespace, &guard.name);
    let spec = guard.spec.threat_feeds.as_ref();
    let interval = spec
        .filter(|s| !s.suspend)
        .and_then(|s| crate::crd::schedule::interval(&s.schedule, now))
        .map(|d| d.as_secs_f64());
    metrics.feeds.set_interval(&labels, interval);
    let recorded = status.threat_feeds.as_ref().map(|s| s.feeds.as_slice()).unwrap_or_default();
    for feed in recorded {
        let last_success =
            feed.last_success_time.as_ref().map(|t| (t.0.as_millisecond() as f64 / 1000.0, feed.entries.unwrap_or(0)));
        metrics.feeds.set_feed(&feed_labels(guard, &feed.name), last_success, feed.error.is_some());
    }
    let wanted: Vec<&str> = spec.map(|s| s.feeds.iter().map(|f| f.name.as_str()).collect()).unwrap_or_default();
    let stale: Vec<FeedLabels> = metrics
        .feeds
        .names_of(&labels)
        .into_iter()
        .filter(|name| !wanted.contains(&name.as_str()))
        .map(|name| feed_labels(guard, &name))
        .collect();
    for feed in stale {
        metrics.feeds.forget_feed(&feed);
    }
}

/// Counts the failed feeds of the syncs that finished since the status last recorded one
/// (a run without per-feed outcomes fails every feed of the spec).
pub fn count_feed_failures(
    metrics: &Metrics,
    guard: &ValidatedGuard,
    syncs: &[crate::controller::read::jobs::FeedSync],
) {
    let all: Vec<&str> =
        guard.spec.threat_feeds.as_ref().map(|s| s.feeds.iter().map(|f| f.name.as_str()).collect()).unwrap_or_default();
    for sync in syncs {
        if sync.feeds.is_empty() {
            if sync.error.is_some() {
                all.iter().for_each(|name| metrics.feeds.failed(&feed_labels(guard, name)));
            }
            continue;
        }
        for feed in sync.feeds.iter().filter(|f| f.error.is_some()) {
            metrics.feeds.failed(&feed_labels(guard, &feed.name));
        }
    }
}
