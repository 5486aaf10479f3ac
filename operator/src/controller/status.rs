//! Status: conditions and counts derived from the objects as the API server holds them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::build::api::ingress::public_url;
use super::build::api::service::cluster_url;
use super::build::{Applied, ChildResources, DatastoreObjects, MonitoringObjects};
use super::decide::Decision;
use super::read::jobs::{FeedSync, Finished};
use super::read::observe::Observations;
use super::read::pods::{self, PodProblem};
use super::read::readiness::{deployment_state, stateful_set_ready};
use super::vocabulary::ValidatedGuard;
use super::vocabulary::{Component, JobKind, MonitoringApis, Scale};
use crate::crd::schedule;
use crate::crd::{
    BackupRun, BackupSpec, BackupStatus, CONDITION_BACKUP_HEALTHY, CONDITION_BACKUP_VERIFIED, CONDITION_DEGRADED,
    CONDITION_MONITORING_READY, CONDITION_PAUSED, CONDITION_PROGRESSING, CONDITION_READY,
    CONDITION_THREAT_FEEDS_SYNCED, FeedOutcome, PointInTimeStatus, RestoreStatus, SecurityGuard, SecurityGuardStatus,
    ThreatFeedStatus, ThreatFeedsSpec, ThreatFeedsStatus,
};

/// One condition's new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl Observation {
    fn new(type_: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status, reason, message: message.into() }
    }
}

/// What the status of a reconciled SecurityGuard is derived from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The SecurityGuard as read (its previous status included).
    pub guard: &'a SecurityGuard,
    /// Its validated spec.
    pub validated: &'a ValidatedGuard,
    /// What was observed: finished Jobs, failing pods.
    pub observed: &'a Observations,
    /// What was decided: the restore's status, the scale, the on-demand backup acted on.
    pub decision: &'a Decision,
    /// The children as the API server holds them.
    pub applied: &'a ChildResources<Applied>,
    /// The prometheus-operator kinds served.
    pub monitoring_apis: MonitoringApis,
    /// Now.
    pub now: Timestamp,
}

/// API replicas the SecurityGuard asks for now.
fn wanted_replicas(validated: &ValidatedGuard, scale: Scale) -> i32 {
    match scale {
        Scale::Zero => 0,
        Scale::Recorded { replicas, .. } => replicas,
        Scale::Spec if validated.spec.autoscaling.enabled => validated.spec.autoscaling.min_replicas,
        Scale::Spec => validated.spec.replicas.unwrap_or(3),
    }
}

/// The pod problems the status reports: those of the components not ready as applied (the pods
/// were read a moment before; a component ready since then has no problem left).
pub fn shown_pod_problems<'a>(inputs: &Inputs<'a>) -> Vec<&'a PodProblem> {
    let Inputs { validated, applied, .. } = *inputs;
    let wanted = wanted_replicas(validated, inputs.decision.directives.scale);
    let api = deployment_state(&applied.deployment, wanted);
    let api_ready = api.rolled_out && api.available >= wanted;
    let datastore_ready =
        |objects: &Option<DatastoreObjects>| objects.as_ref().is_none_or(|o| stateful_set_ready(&o.stateful_set));
    inputs
        .observed
        .pods
        .iter()
        .filter(|p| match p.component {
            Component::Api => !api_ready,
            Component::Postgres => !datastore_ready(&applied.postgres),
            Component::Redis => !datastore_ready(&applied.redis),
            Component::Backup | Component::Monitoring | Component::ThreatFeeds => false,
        })
        .collect()
}

/// The status of a SecurityGuard whose children were applied, with what its backups and
/// restore did and why its pods fail.
pub fn from_applied(inputs: &Inputs<'_>) -> SecurityGuardStatus {
    let Inputs { guard, validated, applied, now, .. } = *inputs;
    let previous = guard.status.as_ref();
    let backup = validated.spec.backup.as_ref().map(|_| {
        let previous = previous.and_then(|s| s.backup.as_ref());
        let finished = &inputs.observed.finished;
        BackupStatus {
            point_in_time: point_in_time_status(validated, previous.and_then(|b| b.point_in_time.as_ref()), finished),
            ..backup_status(previous, finished, inputs.decision.backup_request.as_deref())
        }
    });
    let restore = inputs.decision.restore.status.clone();
    let threat_feeds = validated.spec.threat_feeds.as_ref().map(|spec| {
        threat_feeds_status(previous.and_then(|s| s.threat_feeds.as_ref()), spec, &inputs.observed.feed_syncs)
    });
    let api = deployment_state(&applied.deployment, wanted_replicas(validated, inputs.decision.directives.scale));
    let mut observations = availability(inputs, restore.as_ref());
    if let (Some(spec), Some(backup)) = (&validated.spec.backup, &backup) {
        observations.extend(backup_conditions(spec, backup, now));
    }
    if validated.spec.monitoring.enabled {
        observations.push(monitoring_condition(inputs.monitoring_apis, &applied.monitoring));
    }
    if let (Some(spec), Some(feeds)) = (&validated.spec.threat_feeds, &threat_feeds) {
        observations.push(threat_feeds_condition(spec, feeds, now));
    }
    let mut conditions = conditions(guard, &observations, now);
    // Conditions of optional parts go when the part is turned off.
    let optional = [
        CONDITION_BACKUP_HEALTHY,
        CONDITION_BACKUP_VERIFIED,
        CONDITION_MONITORING_READY,
        CONDITION_THREAT_FEEDS_SYNCED,
    ];
    conditions.retain(|c| observations.iter().any(|o| o.type_ == c.type_) || !optional.contains(&c.type_.as_str()));
    SecurityGuardStatus {
        observed_generation: guard.meta().generation,
        conditions,
        replicas: Some(api.desired),
        ready_replicas: Some(api.ready),
        endpoint: Some(public_url(validated).unwrap_or_else(|| cluster_url(validated))),
        backup,
        restore,
        threat_feeds,
    }
}

/// The feeds' status after recording the sync Jobs that finished (oldest first): each feed's
/// last attempt, and its last success. A run that left no per-feed outcome (the token could not
/// be read, say) counts as a failure of every feed. Feeds no longer in the spec are dropped.
pub fn threat_feeds_status(
    previous: Option<&ThreatFeedsStatus>,
    spec: &ThreatFeedsSpec,
    syncs: &[FeedSync],
) -> ThreatFeedsStatus {
    let mut status = previous.cloned().unwrap_or_default();
    for sync in syncs {
        status.last_job = Some(sync.job.clone());
        status.last_sync_time = Some(Time(sync.at));
        let no_outcome: Vec<FeedOutcome>;
        let outcomes = if sync.feeds.is_empty() {
            let error = sync.error.clone().unwrap_or_else(|| "the sync reported no feed".to_owned());
            no_outcome = spec
                .feeds
                .iter()
                .map(|f| FeedOutcome { name: f.name.clone(), error: Some(error.clone()), ..FeedOutcome::default() })
                .collect();
            &no_outcome
        } else {
            &sync.feeds
        };
        for FeedOutcome { name, error, entries, version, skipped, .. } in outcomes {
            let index = match status.feeds.iter().position(|f| &f.name == name) {
                Some(index) => index,
                None => {
                    status.feeds.push(ThreatFeedStatus {
                        name: name.clone(),
                        last_attempt_time: Time(sync.at),
                        last_success_time: None,
                        entries: None,
                        version: None,
                        skipped: None,
                        error: None,
                    });
                    status.feeds.len() - 1
                }
            };
            let feed = &mut status.feeds[index];
            feed.last_attempt_time = Time(sync.at);
            if error.is_none() {
                feed.last_success_time = Some(Time(sync.at));
                feed.entries = *entries;
                feed.version = *version;
                feed.skipped = skipped.clone();
            }
            feed.error = error.clone();
        }
    }
    status.feeds.retain(|f| spec.feeds.iter().any(|s| s.name == f.name));
    status.feeds.sort_by(|a, b| a.name.cmp(&b.name));
    status
}

/// ThreatFeedsSynced: every feed's last sync succeeded and none is older than twice the
/// schedule.
pub fn threat_feeds_condition(spec: &ThreatFeedsSpec, status: &ThreatFeedsStatus, now: Timestamp) -> Observation {
    let failed: Vec<String> =
        status.feeds.iter().filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.name))).collect();
    if !failed.is_empty() {
        let message = format!(
            "{} of {} feeds failed their last sync (their previous entries stay): {}",
            failed.len(),
            spec.feeds.len(),
            failed.join("; ")
        );
        return Observation::new(CONDITION_THREAT_FEEDS_SYNCED, false, "SyncFailed", message);
    }
    let never: Vec<&str> = spec
        .feeds
        .iter()
        .filter(|s| !status.feeds.iter().any(|f| f.name == s.name && f.last_success_time.is_some()))
        .map(|s| s.name.as_str())
        .collect();
    if !never.is_empty() {
        return Observation::new(
            CONDITION_THREAT_FEEDS_SYNCED,
            false,
            if spec.suspend { "Suspended" } else { "NotSyncedYet" },
            format!("not synced yet: {} (schedule {:?})", never.join(", "), spec.schedule),
        );
    }
    let interval = schedule::interval(&spec.schedule, now);
    let stale: Vec<&str> = status
        .feeds
        .iter()
        .filter(|f| {
            let Some(ok) = &f.last_success_time else { return false };
            interval.is_some_and(|i| now.duration_since(ok.0) > i.checked_mul(2).unwrap_or(i))
        })
        .map(|f| f.name.as_str())
        .collect();
    if !stale.is_empty() && !spec.suspend {
        return Observation::new(
            CONDITION_THREAT_FEEDS_SYNCED,
            false,
            "SyncOverdue",
            format!("last synced longer ago than twice the schedule {:?}: {}", spec.schedule, stale.join(", ")),
        );
    }
    let feeds: Vec<String> =
        status.feeds.iter().map(|f| format!("{} ({} entries)", f.name, f.entries.unwrap_or(0))).collect();
    let version = status.feeds.iter().filter_map(|f| f.version).max().unwrap_or(0);
    Observation::new(
        CONDITION_THREAT_FEEDS_SYNCED,
        true,
        "Synced",
        format!("every feed synced: {}; pattern version {version}", feeds.join(", ")),
    )
}

/// Ready, Progressing, Degraded and Paused: what is still awaited (a restore in progress, the
/// API's rollout, a datastore), and which pods fail.
fn availability(inputs: &Inputs<'_>, restore: Option<&RestoreStatus>) -> Vec<Observation> {
    let Inputs { validated, applied, .. } = *inputs;
    let wanted = wanted_replicas(validated, inputs.decision.directives.scale);
    let api = deployment_state(&applied.deployment, wanted);
    let mut waiting: Vec<String> = Vec::new();
    let restoring = restore.filter(|r| !r.phase.is_finished());
    if let Some(r) = restoring {
        waiting.push(format!("restore {} {}: {}", r.request_id, r.phase.as_str(), r.message));
    }
    if !api.rolled_out {
        waiting.push(format!("API rollout in progress ({} of {} pods updated)", api.updated, api.desired));
    } else if api.available < wanted {
        waiting.push(format!("{} of {wanted} API replicas available", api.available));
    }
    for (what, objects) in [("PostgreSQL", &applied.postgres), ("Redis", &applied.redis)] {
        if let Some(objects) = objects
            && !stateful_set_ready(&objects.stateful_set)
        {
            waiting.push(format!("{what} StatefulSet {} is not ready", objects.stateful_set.name_any()));
        }
    }
    let mut observations = if waiting.is_empty() {
        let available = format!("API available with {} ready replicas", api.ready);
        vec![
            Observation::new(CONDITION_READY, true, "Available", available),
            Observation::new(CONDITION_PROGRESSING, false, "Complete", "every object is rolled out"),
        ]
    } else {
        vec![
            Observation::new(CONDITION_READY, false, "NotAvailable", waiting.join("; ")),
            Observation::new(CONDITION_PROGRESSING, true, "RollingOut", waiting.join("; ")),
        ]
    };
    if restoring.is_some() {
        observations.iter_mut().for_each(|o| o.reason = "Restoring");
    }
    observations.push(degraded_by_pods(&shown_pod_problems(inputs)));
    observations.push(Observation::new(CONDITION_PAUSED, false, "Reconciling", "spec.paused is false"));
    observations
}

/// Degraded: True while pods cannot start or keep running, with each failure (pods failing
/// alike counted in the first one), else False.
fn degraded_by_pods(problems: &[&PodProblem]) -> Observation {
    if problems.is_empty() {
        return Observation::new(CONDITION_DEGRADED, false, "AsExpected", "every object was applied");
    }
    let message = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    Observation::new(CONDITION_DEGRADED, true, pods::REASON, message)
}

/// MonitoringReady: what was applied, or which of prometheus-operator's definitions are missing.
pub fn monitoring_condition(served: MonitoringApis, applied: &MonitoringObjects) -> Observation {
    let mut objects = Vec::new();
    if let Some(monitor) = &applied.service_monitor {
        objects.push(format!("ServiceMonitor {}", monitor.name_any()));
    }
    if let Some(rule) = &applied.prometheus_rule {
        objects.push(format!("PrometheusRule {}", rule.name_any()));
    }
    if !applied.dashboards.is_empty() {
        objects.push(format!("{} Grafana dashboard ConfigMaps", applied.dashboards.len()));
    }
    let missing = served.missing();
    if missing.is_empty() {
        return Observation::new(
            CONDITION_MONITORING_READY,
            true,
            "Applied",
            format!("{} applied", objects.join(", ")),
        );
    }
    let (noun, verb, when) = match missing.len() {
        1 => ("CustomResourceDefinition", "is", "it is"),
        _ => ("CustomResourceDefinitions", "are", "they are"),
    };
    let mut message = format!(
        "prometheus-operator's {noun} {} {verb} not installed: the ServiceMonitor and PrometheusRule are created once {when}",
        missing.join(", ")
    );
    if !objects.is_empty() {
        message.push_str(&format!(" ({} applied)", objects.join(", ")));
    }
    Observation::new(CONDITION_MONITORING_READY, false, "PrometheusOperatorMissing", message)
}

/// The backup status after recording the Jobs that finished (oldest first) and the on-demand
/// request acted on.
pub fn backup_status(
    previous: Option<&BackupStatus>,
    finished: &[Finished],
    handled_request: Option<&str>,
) -> BackupStatus {
    let mut status = previous.cloned().unwrap_or_default();
    for f in finished {
        let run = BackupRun {
            job: f.job.clone(),
            finished_at: Time(f.at),
            key: f.summary.as_ref().and_then(|s| s.key.clone()),
            size_bytes: f.summary.as_ref().and_then(|s| s.size),
            duration_seconds: f.summary.as_ref().and_then(|s| s.seconds),
            error: (!f.succeeded).then(|| f.error()),
            recovery: match f.kind {
                JobKind::Verify => f.summary.as_ref().and_then(|s| s.drill.as_deref().cloned()),
                _ => None,
            },
        };
        match (f.kind, f.succeeded) {
            (JobKind::Backup, true) => status.last_successful = Some(run),
            (JobKind::Backup, false) => status.last_failed = Some(run),
            (JobKind::Verify, passed) => {
                if passed {
                    status.last_verified = Some(run.clone());
                }
                status.last_verification = Some(run);
            }
            _ => {}
        }
    }
    if let Some(request) = handled_request {
        status.last_request_id = Some(request.to_owned());
    }
    status
}

/// `status.backup.pointInTime.message` of an external PostgreSQL.
pub const EXTERNAL_POINT_IN_TIME: &str = "PostgreSQL is external: point-in-time recovery belongs to its provider; \
     the logical dumps stay the backup method and a restore before:<time> restores the newest dump before it";

/// `status.backup.pointInTime` with `spec.backup.pointInTime`: the recoverable window the newest
/// backup Job that finished reported (one that reported none leaves the window as it was); for
/// an external PostgreSQL, that point-in-time recovery is its provider's.
pub fn point_in_time_status(
    validated: &ValidatedGuard,
    previous: Option<&PointInTimeStatus>,
    finished: &[Finished],
) -> Option<PointInTimeStatus> {
    validated.spec.backup.as_ref()?.point_in_time.as_ref()?;
    if validated.postgres_managed().is_none() {
        return Some(PointInTimeStatus { message: Some(EXTERNAL_POINT_IN_TIME.to_owned()), ..Default::default() });
    }
    // Oldest first: the newest that reported a window wins.
    let reported = finished
        .iter()
        .rev()
        .filter(|f| f.kind == JobKind::Backup)
        .find_map(|f| Some((f.at, f.summary.as_ref()?.point_in_time.as_ref()?.window()?.clone())));
    let Some((at, window)) = reported else {
        let waiting = PointInTimeStatus {
            message: Some(
                "no backup has reported the recoverable window yet: the WAL archiver takes a base backup when it \
                 starts, and the next backup reads the window"
                    .to_owned(),
            ),
            ..Default::default()
        };
        return Some(previous.filter(|p| p.observed_at.is_some()).cloned().unwrap_or(waiting));
    };
    Some(PointInTimeStatus {
        message: Some(format!("recoverable {}", window.describe())),
        window,
        observed_at: Some(Time(at)),
    })
}

/// BackupHealthy and (with drills on) BackupVerified.
pub fn backup_conditions(spec: &BackupSpec, status: &BackupStatus, now: Timestamp) -> Vec<Observation> {
    let mut out = vec![backup_healthy(spec, status, now)];
    if spec.verify.enabled {
        out.push(backup_verified(spec, status));
    }
    out
}

/// BackupHealthy: the newest backup succeeded and is not overdue.
fn backup_healthy(spec: &BackupSpec, status: &BackupStatus, now: Timestamp) -> Observation {
    match (&status.last_successful, &status.last_failed) {
        (_, Some(failed))
            if status.last_successful.as_ref().is_none_or(|ok| ok.finished_at.0 < failed.finished_at.0) =>
        {
            Observation::new(
                CONDITION_BACKUP_HEALTHY,
                false,
                "BackupFailed",
                format!(
                    "backup Job {} failed at {}: {}",
                    failed.job,
                    failed.finished_at.0,
                    failed.error.as_deref().unwrap_or("no reason given")
                ),
            )
        }
        (None, _) => Observation::new(
            CONDITION_BACKUP_HEALTHY,
            false,
            if spec.suspend { "Suspended" } else { "NoBackupYet" },
            format!("no backup has completed yet (schedule {:?})", spec.schedule),
        ),
        (Some(ok), _) => {
            let interval = schedule::interval(&spec.schedule, now);
            let age = now.duration_since(ok.finished_at.0);
            let overdue = interval.is_some_and(|i| age > i.checked_mul(2).unwrap_or(i));
            let what = format!(
                "last backup {} ({} bytes) finished at {}",
                ok.key.as_deref().unwrap_or("?"),
                ok.size_bytes.unwrap_or(0),
                ok.finished_at.0
            );
            if overdue {
                Observation::new(
                    CONDITION_BACKUP_HEALTHY,
                    false,
                    "BackupOverdue",
                    format!("{what}: older than twice the schedule {:?}", spec.schedule),
                )
            } else {
                Observation::new(CONDITION_BACKUP_HEALTHY, true, "BackupSucceeded", what)
            }
        }
    }
}

/// BackupVerified: the newest restore drill passed.
fn backup_verified(spec: &BackupSpec, status: &BackupStatus) -> Observation {
    match &status.last_verification {
        None => Observation::new(
            CONDITION_BACKUP_VERIFIED,
            false,
            "NotVerifiedYet",
            format!("no restore drill has run yet (schedule {:?})", spec.verify.schedule),
        ),
        Some(run) if run.error.is_none() => {
            let mut message =
                format!("backup {} restored and checked at {}", run.key.as_deref().unwrap_or("?"), run.finished_at.0);
            if let Some(recovery) = &run.recovery {
                message.push_str(&format!(": {}", recovery.describe()));
            }
            Observation::new(CONDITION_BACKUP_VERIFIED, true, "DrillPassed", message)
        }
        Some(run) => Observation::new(
            CONDITION_BACKUP_VERIFIED,
            false,
            drill_failure_reason(run),
            format!(
                "restore drill {} failed at {}: {}",
                run.job,
                run.finished_at.0,
                run.error.as_deref().unwrap_or("")
            ),
        ),
    }
}

/// Why a drill failed, as a reason: the target it missed (`RecoveryTimeOverTarget`,
/// `RecoveryPointOverTarget`, or `RecoveryTargetsMissed` for both), else `DrillFailed` (it could
/// not restore or check its backup).
pub fn drill_failure_reason(run: &BackupRun) -> &'static str {
    match run.recovery.as_ref().map(|r| r.missed.as_slice()) {
        Some([one]) => one.reason(),
        Some([_, _, ..]) => "RecoveryTargetsMissed",
        _ => "DrillFailed",
    }
}

/// The status of a SecurityGuard that could not be reconciled: Degraded with the reason, the
/// rest of the previous status kept.
pub fn degraded(guard: &SecurityGuard, reason: &'static str, message: &str, now: Timestamp) -> SecurityGuardStatus {
    let previous = guard.status.clone().unwrap_or_default();
    let observations = [
        Observation::new(CONDITION_READY, false, reason, message),
        Observation::new(CONDITION_DEGRADED, true, reason, message),
        Observation::new(CONDITION_PAUSED, false, "Reconciling", "spec.paused is false"),
    ];
    SecurityGuardStatus {
        observed_generation: guard.meta().generation,
        conditions: conditions(guard, &observations, now),
        ..previous
    }
}

/// The status of a paused SecurityGuard: everything else as last observed.
pub fn paused(guard: &SecurityGuard, now: Timestamp) -> SecurityGuardStatus {
    let previous = guard.status.clone().unwrap_or_default();
    let observations = [Observation::new(
        CONDITION_PAUSED,
        true,
        "Paused",
        "spec.paused is true: the operator leaves every object as it is",
    )];
    SecurityGuardStatus {
        observed_generation: guard.meta().generation,
        conditions: conditions(guard, &observations, now),
        ..previous
    }
}

/// Merges observations into the existing conditions; a condition whose status did not change
/// keeps its lastTransitionTime.
fn conditions(guard: &SecurityGuard, observations: &[Observation], now: Timestamp) -> Vec<Condition> {
    let existing = guard.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    let mut out: Vec<Condition> =
        existing.iter().filter(|c| !observations.iter().any(|o| o.type_ == c.type_)).cloned().collect();
    for o in observations {
        let status = if o.status { "True" } else { "False" };
        let since = existing
            .iter()
            .find(|c| c.type_ == o.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(Condition {
            type_: o.type_.to_owned(),
            status: status.to_owned(),
            reason: o.reason.to_owned(),
            message: o.message.clone(),
            observed_generation: guard.meta().generation,
            last_transition_time: since,
        });
    }
    out.sort_by(|a, b| order(&a.type_).cmp(&order(&b.type_)).then(a.type_.cmp(&b.type_)));
    out
}

fn order(type_: &str) -> usize {
    [
        CONDITION_READY,
        CONDITION_PROGRESSING,
        CONDITION_DEGRADED,
        CONDITION_PAUSED,
        CONDITION_BACKUP_HEALTHY,
        CONDITION_BACKUP_VERIFIED,
        CONDITION_MONITORING_READY,
        CONDITION_THREAT_FEEDS_SYNCED,
    ]
    .iter()
    .position(|t| *t == type_)
    .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};

    fn deployment(generation: i64, observed: i64, replicas: Option<i32>, updated: i32, available: i32) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta { generation: Some(generation), ..Default::default() },
            spec: Some(DeploymentSpec { replicas, ..Default::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                replicas: Some(updated),
                updated_replicas: Some(updated),
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn rollout_needs_the_current_generation_and_every_pod_available() {
        assert!(deployment_state(&deployment(2, 2, Some(3), 3, 3), 3).rolled_out);
        assert!(!deployment_state(&deployment(2, 1, Some(3), 3, 3), 3).rolled_out);
        assert!(!deployment_state(&deployment(2, 2, Some(3), 3, 2), 3).rolled_out);
    }

    #[test]
    fn monitoring_condition_names_what_is_missing_or_applied() {
        use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

        let none = monitoring_condition(MonitoringApis::default(), &MonitoringObjects::default());
        assert_eq!((none.status, none.reason), (false, "PrometheusOperatorMissing"));
        assert_eq!(
            none.message,
            "prometheus-operator's CustomResourceDefinitions servicemonitors.monitoring.coreos.com, \
             prometheusrules.monitoring.coreos.com are not installed: the ServiceMonitor and PrometheusRule are created \
             once they are"
        );

        let named = |name: &str| kube::api::ObjectMeta { name: Some(name.to_owned()), ..Default::default() };
        let monitor = ServiceMonitor { metadata: named("sg-monitoring"), spec: Default::default() };
        let rule = PrometheusRule { metadata: named("sg-monitoring"), spec: Default::default() };
        let served = MonitoringApis { service_monitors: true, prometheus_rules: false };
        let partial = MonitoringObjects { service_monitor: Some(monitor.clone()), ..Default::default() };
        let one = monitoring_condition(served, &partial);
        assert!(!one.status);
        assert!(
            one.message.starts_with(
                "prometheus-operator's CustomResourceDefinition prometheusrules.monitoring.coreos.com is not installed"
            ) && one.message.ends_with("(ServiceMonitor sg-monitoring applied)"),
            "{}",
            one.message
        );

        let all = MonitoringObjects { service_monitor: Some(monitor), prometheus_rule: Some(rule), dashboards: vec![] };
        let ready = monitoring_condition(MonitoringApis::ALL, &all);
        assert_eq!((ready.status, ready.reason), (true, "Applied"));
        assert_eq!(ready.message, "ServiceMonitor sg-monitoring, PrometheusRule sg-monitoring applied");
    }

    /// The children of the minimal example as if the API server had accepted them, with the
    /// API Deployment's and PostgreSQL StatefulSet's rollout done or not.
    fn applied(api_rolled_out: bool, postgres_ready: bool) -> (ValidatedGuard, ChildResources<Applied>) {
        use crate::controller::build::test_support::{MINIMAL, guard};
        use k8s_openapi::api::apps::v1::StatefulSetStatus;

        let g = guard(MINIMAL);
        let ChildResources {
            service_account,
            config_map,
            credentials,
            mut postgres,
            mut redis,
            network_policies,
            deployment: api,
            service,
            hpa,
            pdb,
            ingress,
            backup,
            monitoring,
            threat_feeds,
            state: _,
        } = crate::controller::build::build(&g, &Default::default(), &Default::default());
        let rollout = deployment(1, 1, None, 3, if api_rolled_out { 3 } else { 2 });
        let mut deployment = api;
        deployment.metadata.generation = Some(1);
        deployment.status = rollout.status;
        let ready_replicas = |objects: &mut Option<DatastoreObjects>, ready: i32| {
            for objects in objects.iter_mut() {
                objects.stateful_set.metadata.generation = Some(1);
                objects.stateful_set.status = Some(StatefulSetStatus {
                    observed_generation: Some(1),
                    ready_replicas: Some(ready),
                    current_revision: Some("r1".into()),
                    update_revision: Some("r1".into()),
                    ..Default::default()
                });
            }
        };
        ready_replicas(&mut postgres, if postgres_ready { 1 } else { 0 });
        ready_replicas(&mut redis, 1);
        let applied = ChildResources {
            service_account,
            config_map,
            credentials,
            postgres,
            redis,
            network_policies,
            deployment,
            service,
            hpa,
            pdb,
            ingress,
            backup,
            monitoring,
            threat_feeds,
            state: std::marker::PhantomData,
        };
        (g, applied)
    }

    fn problem(component: Component, pod: &str) -> PodProblem {
        PodProblem {
            component,
            pod: pod.into(),
            subject: crate::controller::read::pods::Subject::Container(component.as_str().into()),
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"x\"".into(),
            family: crate::controller::read::pods::Family::ImagePull,
            alike: 0,
        }
    }

    #[test]
    fn failing_pods_degrade_only_a_component_that_is_not_ready() {
        let problems = [problem(Component::Api, "sg-api-7d9c-x2x"), problem(Component::Postgres, "sg-postgres-0")];
        let t = Timestamp::from_second(1_000).expect("time");

        let sg: SecurityGuard =
            serde_saphyr::from_str(crate::controller::build::test_support::MINIMAL).expect("parses");
        let observed = Observations { pods: problems.to_vec(), ..Default::default() };
        let decision = Decision::default();
        let inputs = |validated, applied| Inputs {
            guard: &sg,
            validated,
            observed: &observed,
            decision: &decision,
            applied,
            monitoring_apis: MonitoringApis::default(),
            now: t,
        };

        let (g, rolling) = applied(false, false);
        let status = from_applied(&inputs(&g, &rolling));
        let degraded = status.condition(CONDITION_DEGRADED).expect("Degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "PodFailing"));
        assert_eq!(
            degraded.message,
            "pod sg-api-7d9c-x2x: container api: ImagePullBackOff: Back-off pulling image \"x\"; \
             pod sg-postgres-0: container postgres: ImagePullBackOff: Back-off pulling image \"x\""
        );
        assert_eq!(status.condition(CONDITION_READY).map(|c| c.status.as_str()), Some("False"));

        // The API became available after its pods were read: only PostgreSQL's pod is reported.
        let (g, api_ready) = applied(true, false);
        let shown = shown_pod_problems(&inputs(&g, &api_ready));
        assert_eq!(shown.iter().map(|p| p.pod.as_str()).collect::<Vec<_>>(), ["sg-postgres-0"]);

        // Everything ready: Degraded is False again, whatever an older read said.
        let (g, ready) = applied(true, true);
        let status = from_applied(&inputs(&g, &ready));
        let degraded = status.condition(CONDITION_DEGRADED).expect("Degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("False", "AsExpected"));
        assert_eq!(status.condition(CONDITION_READY).map(|c| c.status.as_str()), Some("True"));
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let mut guard: SecurityGuard = serde_saphyr::from_str(
            "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata: {name: sg, generation: 4}\nspec:\n  image: a\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        )
        .expect("parses");
        let t0 = Timestamp::from_second(1_000).expect("time");
        let t1 = Timestamp::from_second(2_000).expect("time");
        guard.status = Some(degraded(&guard, "MissingSecret", "x", t0));
        let again = degraded(&guard, "MissingSecret", "y", t1);
        let d = again.condition(CONDITION_DEGRADED).expect("present");
        assert_eq!(d.last_transition_time, Time(t0));
        assert_eq!(d.message, "y");
        assert_eq!(d.observed_generation, Some(4));
        let p = paused(&guard, t1);
        assert_eq!(p.condition(CONDITION_PAUSED).map(|c| c.status.as_str()), Some("True"));
        assert_eq!(
            p.condition(CONDITION_DEGRADED).map(|c| c.status.as_str()),
            Some("True"),
            "other conditions are kept"
        );
    }

    #[test]
    fn the_recoverable_window_comes_from_the_newest_backup_that_reported_one() {
        use crate::controller::build::test_support::{MINIMAL, guard};
        use crate::controller::read::jobs::{PointInTimeReport, Summary};
        use crate::crd::RecoverableWindow;
        let backup = "  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n    pointInTime: {}\n";
        let g = guard(&format!("{MINIMAL}{backup}"));
        let at = |s: i64| Time(Timestamp::from_second(s).expect("time"));
        let job = |name: &str, finished: i64, window: Option<RecoverableWindow>| Finished {
            job: name.into(),
            kind: JobKind::Backup,
            request: None,
            at: at(finished).0,
            succeeded: true,
            summary: Some(Box::new(Summary {
                point_in_time: window.map(|w| Box::new(PointInTimeReport::Window(w))),
                ..Summary::default()
            })),
        };
        let waiting = point_in_time_status(&g, None, &[]).expect("reported");
        assert!(waiting.message.as_deref().is_some_and(|m| m.contains("no backup has reported")), "{waiting:?}");
        assert_eq!(waiting.window.first_recoverable, None);

        let window = RecoverableWindow {
            first_recoverable: Some(at(1_000)),
            last_recoverable: Some(at(5_000)),
            base_backups: Some(2),
            archived_through: None,
            error: None,
        };
        let status = point_in_time_status(&g, Some(&waiting), &[job("a", 10, Some(window)), job("b", 20, None)])
            .expect("status");
        assert_eq!(status.window.first_recoverable, Some(at(1_000)));
        assert_eq!(status.window.last_recoverable, Some(at(5_000)));
        assert_eq!((status.window.base_backups, status.observed_at.clone()), (Some(2), Some(at(10))));
        assert_eq!(
            status.message.as_deref(),
            Some("recoverable from 1970-01-01T00:16:40Z to 1970-01-01T01:23:20Z (2 base backups)")
        );
        // A backup reporting nothing keeps the window; an error is shown with it.
        assert_eq!(point_in_time_status(&g, Some(&status), &[job("c", 30, None)]), Some(status.clone()));
        let broken = RecoverableWindow { error: Some("segment 7 missing".into()), ..RecoverableWindow::default() };
        let shrunk = point_in_time_status(&g, Some(&status), &[job("d", 40, Some(broken))]).expect("status");
        assert_eq!(
            (shrunk.window.error.as_deref(), shrunk.window.first_recoverable),
            (Some("segment 7 missing"), None)
        );

        // An external PostgreSQL: not refused, the provider's.
        let external = guard(&format!(
            "{MINIMAL}  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n{backup}"
        ));
        let status = point_in_time_status(&external, Some(&status), &[]).expect("status");
        assert_eq!(status.message.as_deref(), Some(EXTERNAL_POINT_IN_TIME));
        assert_eq!(status.window.first_recoverable, None);
        // Off: nothing.
        assert_eq!(point_in_time_status(&guard(MINIMAL), None, &[]), None);
    }

    /// A drill Job that finished at `at`, with the figures of its summary (`missed` as the
    /// Job judged them) and its error.
    fn drill_job(job: &str, at: i64, recovery: Option<crate::crd::DrillRecovery>, error: Option<&str>) -> Finished {
        Finished {
            job: job.into(),
            kind: JobKind::Verify,
            request: None,
            at: Timestamp::from_second(at).expect("time"),
            succeeded: error.is_none(),
            summary: Some(Box::new(crate::controller::read::jobs::Summary {
                key: Some("b/prod/20261129T030000.000Z.pgdump".into()),
                size: Some(4096),
                seconds: Some(42.0),
                database_changed: Some(false),
                error: error.map(str::to_owned),
                drill: recovery.map(Box::new),
                ..Default::default()
            })),
        }
    }

    fn recovery(time: f64, point: f64) -> crate::crd::DrillRecovery {
        let mut recovery = crate::crd::DrillRecovery {
            started_at: Time(Timestamp::from_second(1_764_387_000).expect("time")),
            backup_taken_at: Time(Timestamp::from_second(1_764_387_000 - point as i64).expect("time")),
            recovery_time_seconds: time,
            recovery_time_target_seconds: Some(900.0),
            recovery_point_seconds: point,
            recovery_point_target_seconds: Some(3600.0),
            steps: crate::crd::RecoverySteps {
                download_seconds: time * 0.25,
                verify_seconds: 0.5,
                restore_seconds: time * 0.5,
                checks_seconds: time * 0.25 - 0.5,
            },
            missed: Vec::new(),
        };
        recovery.missed = recovery.over_targets();
        recovery
    }

    fn backup_spec() -> BackupSpec {
        serde_json::from_value(serde_json::json!({"s3": {"bucket": "b", "credentialsSecret": "s3"}})).expect("spec")
    }

    #[test]
    fn a_passing_drill_records_its_figures_and_says_them() {
        let status = backup_status(None, &[drill_job("sg-verify-1", 100, Some(recovery(40.0, 1800.0)), None)], None);
        let last = status.last_verification.clone().expect("the newest drill");
        assert_eq!(status.last_verified, Some(last.clone()), "a passing drill is also the newest verified");
        let figures = last.recovery.expect("figures");
        assert_eq!((figures.recovery_time_seconds, figures.recovery_point_seconds), (40.0, 1800.0));
        assert_eq!(figures.steps.restore_seconds, 20.0);

        let verified = backup_verified(&backup_spec(), &status);
        assert_eq!((verified.status, verified.reason), (true, "DrillPassed"));
        assert!(
            verified.message.ends_with(
                "recovery time 40s (target 15m: download 10s, verify 0.5s, restore 20s, checks 9.5s), \
                 recovery point 30m (target 1h, backup taken at 2025-11-29T03:00:00Z)"
            ),
            "{}",
            verified.message
        );
    }

    #[test]
    fn a_drill_over_a_target_fails_and_names_the_target() {
        let passed = drill_job("sg-verify-1", 100, Some(recovery(40.0, 1800.0)), None);
        let late = recovery(40.0, 7980.0);
        let reason = late.shortfall(crate::crd::RecoveryTarget::RecoveryPoint, "k");
        let missed = drill_job("sg-verify-2", 200, Some(late), Some(&reason));
        let status = backup_status(None, &[passed, missed], None);
        assert_eq!(status.last_verified.as_ref().map(|r| r.job.as_str()), Some("sg-verify-1"));
        let last = status.last_verification.as_ref().expect("the newest drill");
        assert_eq!(last.job, "sg-verify-2");
        assert_eq!(last.error.as_deref(), Some(reason.as_str()));
        assert_eq!(last.recovery.as_ref().map(|r| r.recovery_point_seconds), Some(7980.0));

        let verified = backup_verified(&backup_spec(), &status);
        assert_eq!((verified.status, verified.reason), (false, "RecoveryPointOverTarget"));
        assert!(verified.message.contains("recovery point 2h13m exceeds the target 1h"), "{}", verified.message);

        // Slow and old: both targets; a drill that could not restore: no figures, DrillFailed.
        let both = drill_job("sg-verify-3", 300, Some(recovery(1000.0, 7980.0)), Some("both"));
        let status = backup_status(Some(&status), &[both], None);
        assert_eq!(backup_verified(&backup_spec(), &status).reason, "RecoveryTargetsMissed");
        let slow = drill_job("sg-verify-4", 400, Some(recovery(1000.0, 60.0)), Some("slow"));
        let status = backup_status(Some(&status), &[slow], None);
        assert_eq!(backup_verified(&backup_spec(), &status).reason, "RecoveryTimeOverTarget");
        let broken = drill_job("sg-verify-5", 500, None, Some("row counts differ"));
        let status = backup_status(Some(&status), &[broken], None);
        assert_eq!(status.last_verification.as_ref().and_then(|r| r.recovery.as_ref()), None);
        assert_eq!(backup_verified(&backup_spec(), &status).reason, "DrillFailed");
    }

    #[test]
    fn a_backup_job_has_no_recovery_figures() {
        let mut backup = drill_job("sg-backup-1", 100, Some(recovery(40.0, 1800.0)), None);
        backup.kind = JobKind::Backup;
        let status = backup_status(None, &[backup], None);
        assert_eq!(status.last_successful.and_then(|r| r.recovery), None);
    }

    fn feeds_spec() -> ThreatFeedsSpec {
        serde_json::from_value(serde_json::json!({
            "schedule": "0 * * * *",
            "feeds": [
                {"name": "community", "url": "https://f.example/a.txt", "format": "Plain"},
                {"name": "polkadot", "url": "https://f.example/all.json", "format": "PolkadotJs"},
            ],
        }))
        .expect("spec parses")
    }

    fn sync(job: &str, at: i64, feeds: Vec<crate::crd::FeedOutcome>, error: Option<&str>) -> FeedSync {
        FeedSync {
            job: job.into(),
            at: Timestamp::from_second(at).expect("time"),
            succeeded: error.is_none(),
            feeds,
            removed: Vec::new(),
            error: error.map(str::to_owned),
        }
    }

    fn ok(name: &str, entries: u64, version: i64) -> crate::crd::FeedOutcome {
        crate::crd::FeedOutcome {
            name: name.into(),
            entries: Some(entries),
            version: Some(version),
            added: Some(entries),
            removed: Some(0),
            skipped: None,
            error: None,
        }
    }

    fn failed(name: &str, error: &str) -> crate::crd::FeedOutcome {
        crate::crd::FeedOutcome { name: name.into(), error: Some(error.into()), ..Default::default() }
    }

    #[test]
    fn a_failed_feed_keeps_its_last_success_and_fails_the_condition() {
        let spec = feeds_spec();
        let now = Timestamp::from_second(3_600 * 10).expect("time");
        let first = threat_feeds_status(
            None,
            &spec,
            &[sync("sync-1", 3_600 * 9, vec![ok("community", 3, 7), ok("polkadot", 50_000, 8)], None)],
        );
        let synced = threat_feeds_condition(&spec, &first, now);
        assert_eq!((synced.status, synced.reason), (true, "Synced"));
        assert_eq!(
            synced.message,
            "every feed synced: community (3 entries), polkadot (50000 entries); pattern version 8"
        );

        let broken = "line 4: \"not a domain\" is not a domain: invalid character";
        let second = threat_feeds_status(
            Some(&first),
            &spec,
            &[sync("sync-2", 3_600 * 10, vec![failed("community", broken), ok("polkadot", 50_001, 9)], Some("1 of 2"))],
        );
        let community = &second.feeds[0];
        assert_eq!(community.name, "community");
        assert_eq!(community.entries, Some(3), "the last good import stays");
        assert_eq!(community.last_success_time.as_ref().map(|t| t.0.as_second()), Some(3_600 * 9));
        assert_eq!(community.last_attempt_time.0.as_second(), 3_600 * 10);
        assert_eq!(second.last_job.as_deref(), Some("sync-2"));
        let condition = threat_feeds_condition(&spec, &second, now);
        assert_eq!((condition.status, condition.reason), (false, "SyncFailed"));
        assert_eq!(
            condition.message,
            format!("1 of 2 feeds failed their last sync (their previous entries stay): community: {broken}")
        );
    }

    #[test]
    fn a_run_without_outcomes_fails_every_feed_and_stale_feeds_are_overdue() {
        let spec = feeds_spec();
        let status =
            threat_feeds_status(None, &spec, &[sync("sync-1", 100, vec![], Some("reading the machine token"))]);
        assert!(status.feeds.iter().all(|f| f.error.as_deref() == Some("reading the machine token")));
        assert_eq!(status.feeds.len(), 2);
        let never = threat_feeds_condition(&spec, &ThreatFeedsStatus::default(), Timestamp::UNIX_EPOCH);
        assert_eq!((never.status, never.reason), (false, "NotSyncedYet"));

        let synced =
            threat_feeds_status(None, &spec, &[sync("s", 0, vec![ok("community", 1, 2), ok("polkadot", 1, 2)], None)]);
        let later = Timestamp::from_second(3 * 3_600).expect("time");
        let overdue = threat_feeds_condition(&spec, &synced, later);
        assert_eq!((overdue.status, overdue.reason), (false, "SyncOverdue"));
        // A feed removed from the spec leaves the status.
        let mut one = spec.clone();
        one.feeds.truncate(1);
        assert_eq!(threat_feeds_status(Some(&synced), &one, &[]).feeds.len(), 1);
    }
}
