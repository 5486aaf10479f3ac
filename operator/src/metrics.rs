//! The operator's Prometheus metrics (served on `/metrics` by [`crate::http`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::DrillRecovery;

/// Label set of a reconcile outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success`, or the error category (e.g. `validation`, `apply`).
    pub result: String,
}

/// Label set of one request to the Kubernetes API.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// get, list, watch, create, update, patch, delete.
    pub verb: String,
    /// The resource (plural), with `/status` for the status subresource.
    pub resource: String,
}

/// Label set of the per-SecurityGuard series (backups, restores, drills).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    /// Namespace of the SecurityGuard.
    pub namespace: String,
    /// Name of the SecurityGuard.
    pub securityguard: String,
}

impl GuardLabels {
    /// The labels of the SecurityGuard `name` in `namespace`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { namespace: namespace.to_owned(), securityguard: name.to_owned() }
    }
}

/// Label set of the per-feed series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// Namespace of the SecurityGuard.
    pub namespace: String,
    /// Name of the SecurityGuard.
    pub securityguard: String,
    /// Name of the threat feed.
    pub feed: String,
}

/// Per-feed series of the threat-feed syncs. Absent series mean "never": a feed that never
/// synced has no last-success time.
#[derive(Default)]
pub struct FeedMetrics {
    /// Unix time the feed was last imported successfully.
    pub last_success: Family<FeedLabels, FloatGauge>,
    /// Entries the feed held after its last successful sync.
    pub entries: Family<FeedLabels, Gauge>,
    /// 1 when the feed's last sync failed, 0 when it succeeded.
    pub last_sync_failed: Family<FeedLabels, Gauge>,
    /// Failed syncs of the feed seen by this process.
    pub sync_failures: Family<FeedLabels, Counter>,
    /// Seconds between two scheduled syncs of a SecurityGuard's feeds.
    pub schedule_interval: Family<GuardLabels, FloatGauge>,
    /// The feeds with series, per SecurityGuard (to drop those of a feed removed from the spec).
    known: std::sync::Mutex<std::collections::HashMap<GuardLabels, std::collections::BTreeSet<String>>>,
}

impl FeedMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "threat_feed_last_success_timestamp_seconds",
            "Unix time a threat feed of a SecurityGuard was last imported successfully",
            self.last_success.clone(),
        );
        registry.register(
            "threat_feed_entries",
            "Entries a threat feed of a SecurityGuard held after its last successful sync",
            self.entries.clone(),
        );
        registry.register(
            "threat_feed_last_sync_failed",
            "1 when the last sync of a threat feed of a SecurityGuard failed (nothing changed for it), 0 when it succeeded",
            self.last_sync_failed.clone(),
        );
        registry.register(
            "threat_feed_sync_failures",
            "Failed syncs of a threat feed of a SecurityGuard seen by this operator process",
            self.sync_failures.clone(),
        );
        registry.register(
            "threat_feed_schedule_interval_seconds",
            "Seconds between two scheduled syncs of the threat feeds of a SecurityGuard",
            self.schedule_interval.clone(),
        );
    }

    /// The feeds of a SecurityGuard are synced every `seconds`; `None` when suspended or off.
    pub fn set_interval(&self, guard: &GuardLabels, seconds: Option<f64>) {
        match seconds {
            Some(seconds) => {
                self.schedule_interval.get_or_create(guard).set(seconds);
            }
            None => {
                self.schedule_interval.remove(guard);
            }
        }
    }

    /// A feed's last sync: when it last succeeded and with how many entries, and whether the
    /// last one failed.
    pub fn set_feed(&self, feed: &FeedLabels, last_success: Option<(f64, u64)>, last_failed: bool) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(GuardLabels::new(&feed.namespace, &feed.securityguard))
            .or_default()
            .insert(feed.feed.clone());
        if let Some((at, entries)) = last_success {
            self.last_success.get_or_create(feed).set(at);
            self.entries.get_or_create(feed).set(i64::try_from(entries).unwrap_or(i64::MAX));
        }
        self.last_sync_failed.get_or_create(feed).set(i64::from(last_failed));
    }

    /// The feeds of a SecurityGuard that have series.
    pub fn names_of(&self, guard: &GuardLabels) -> Vec<String> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(guard).map(|names| names.iter().cloned().collect()).unwrap_or_default()
    }

    /// Counts one failed sync of a feed.
    pub fn failed(&self, feed: &FeedLabels) {
        self.sync_failures.get_or_create(feed).inc();
    }

    /// Drops every feed series of a SecurityGuard (it was deleted).
    pub fn forget_guard(&self, guard: &GuardLabels) {
        for feed in self.names_of(guard) {
            self.forget_feed(&FeedLabels {
                namespace: guard.namespace.clone(),
                securityguard: guard.securityguard.clone(),
                feed,
            });
        }
        self.schedule_interval.remove(guard);
    }

    /// Drops the series of a feed no longer synced.
    pub fn forget_feed(&self, feed: &FeedLabels) {
        if let Some(names) = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&GuardLabels::new(&feed.namespace, &feed.securityguard))
        {
            names.remove(&feed.feed);
        }
        self.last_success.remove(feed);
        self.entries.remove(feed);
        self.last_sync_failed.remove(feed);
        self.sync_failures.remove(feed);
    }
}

/// Label set of the per-step recovery time of the newest drill.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DrillStepLabels {
    /// Namespace of the SecurityGuard.
    pub namespace: String,
    /// Name of the SecurityGuard.
    pub securityguard: String,
    /// One of [`DRILL_STEPS`].
    pub step: String,
}

/// The steps of a drill's recovery time, in order (`securityguard_operator_backup_verify_step_seconds`).
pub const DRILL_STEPS: [&str; 4] = ["download", "verify", "restore", "checks"];

/// Label set of the restore phase series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestorePhaseLabels {
    /// Namespace of the SecurityGuard.
    pub namespace: String,
    /// Name of the SecurityGuard.
    pub securityguard: String,
    /// One of [`RESTORE_PHASES`].
    pub phase: String,
}

/// Every phase of a restore, in order; `securityguard_operator_restore_phase` has one series per
/// phase, 1 for the current one.
pub const RESTORE_PHASES: [&str; 10] = [
    "Pending",
    "Claiming",
    "ScalingDown",
    "SafetyBackup",
    "Restoring",
    "RollingBack",
    "ScalingUp",
    "Completed",
    "Failed",
    "Skipped",
];

type FloatGauge = Gauge<f64, AtomicU64>;

/// Per-SecurityGuard gauges of backups, restores and restore drills. Absent series mean "never":
/// no backup succeeded yet, no drill passed yet, no restore requested.
#[derive(Default)]
pub struct GuardMetrics {
    /// Unix time the newest successful backup finished.
    pub backup_last_success: Family<GuardLabels, FloatGauge>,
    /// Unix time the newest failed backup attempt ended.
    pub backup_last_failure: Family<GuardLabels, FloatGauge>,
    /// Duration of the newest successful backup, in seconds.
    pub backup_last_duration: Family<GuardLabels, FloatGauge>,
    /// Size of the newest successful backup, in bytes.
    pub backup_last_size: Family<GuardLabels, Gauge>,
    /// Seconds between two scheduled backups.
    pub backup_schedule_interval: Family<GuardLabels, FloatGauge>,
    /// 1 for the current phase of the newest restore, 0 for the others.
    pub restore_phase: Family<RestorePhaseLabels, Gauge>,
    /// Unix time the newest passing restore drill finished.
    pub verify_last_success: Family<GuardLabels, FloatGauge>,
    /// 1 when the newest restore drill passed, 0 when it failed.
    pub verify_last_result: Family<GuardLabels, Gauge>,
    /// Recovery time the newest drill achieved, in seconds.
    pub verify_recovery_time: Family<GuardLabels, FloatGauge>,
    /// The recovery time target the newest drill was held to, in seconds.
    pub verify_recovery_time_target: Family<GuardLabels, FloatGauge>,
    /// Recovery point the newest drill achieved (the age of the data it restored), in seconds.
    pub verify_recovery_point: Family<GuardLabels, FloatGauge>,
    /// The recovery point target the newest drill was held to, in seconds.
    pub verify_recovery_point_target: Family<GuardLabels, FloatGauge>,
    /// The newest drill's recovery time per step, in seconds.
    pub verify_step: Family<DrillStepLabels, FloatGauge>,
    /// With point-in-time recovery: the recovery point above which the WAL archive alerts.
    pub wal_archive_lag_threshold: Family<GuardLabels, FloatGauge>,
    /// With point-in-time recovery: Unix time of the earliest time a restore can recover to.
    pub pitr_first_recoverable: Family<GuardLabels, FloatGauge>,
    /// With point-in-time recovery: Unix time of the latest time a restore can recover to.
    pub pitr_last_recoverable: Family<GuardLabels, FloatGauge>,
}

impl GuardMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "backup_last_success_timestamp_seconds",
            "Unix time the newest successful backup of a SecurityGuard finished",
            self.backup_last_success.clone(),
        );
        registry.register(
            "backup_last_failure_timestamp_seconds",
            "Unix time the newest failed backup attempt of a SecurityGuard ended",
            self.backup_last_failure.clone(),
        );
        registry.register(
            "backup_last_duration_seconds",
            "Duration of the newest successful backup of a SecurityGuard",
            self.backup_last_duration.clone(),
        );
        registry.register(
            "backup_last_size_bytes",
            "Size of the newest successful backup of a SecurityGuard",
            self.backup_last_size.clone(),
        );
        registry.register(
            "backup_schedule_interval_seconds",
            "Seconds between two scheduled backups of a SecurityGuard",
            self.backup_schedule_interval.clone(),
        );
        registry.register(
            "restore_phase",
            "1 for the current phase of the newest restore of a SecurityGuard, 0 for the other phases",
            self.restore_phase.clone(),
        );
        registry.register(
            "backup_verify_last_success_timestamp_seconds",
            "Unix time the newest passing restore drill of a SecurityGuard finished",
            self.verify_last_success.clone(),
        );
        registry.register(
            "backup_verify_last_result",
            "1 when the newest restore drill of a SecurityGuard passed, 0 when it failed",
            self.verify_last_result.clone(),
        );
        registry.register(
            "backup_verify_recovery_time_seconds",
            "Recovery time the newest restore drill of a SecurityGuard achieved: from its start until the restored data was checked",
            self.verify_recovery_time.clone(),
        );
        registry.register(
            "backup_verify_recovery_time_target_seconds",
            "Recovery time target the newest restore drill of a SecurityGuard was held to (spec.backup.verify.targets.recoveryTime)",
            self.verify_recovery_time_target.clone(),
        );
        registry.register(
            "backup_verify_recovery_point_seconds",
            "Recovery point the newest restore drill of a SecurityGuard achieved: the age of the data it restored when it started",
            self.verify_recovery_point.clone(),
        );
        registry.register(
            "backup_verify_recovery_point_target_seconds",
            "Recovery point target the newest restore drill of a SecurityGuard was held to (spec.backup.verify.targets.recoveryPoint)",
            self.verify_recovery_point_target.clone(),
        );
        registry.register(
            "backup_verify_step_seconds",
            "Recovery time of the newest restore drill of a SecurityGuard per step: download, verify, restore, checks",
            self.verify_step.clone(),
        );
        registry.register(
            "wal_archive_lag_threshold_seconds",
            "Recovery point above which the WAL archive of a SecurityGuard alerts (spec.backup.pointInTime.archiveLagAlert)",
            self.wal_archive_lag_threshold.clone(),
        );
        registry.register(
            "pitr_first_recoverable_timestamp_seconds",
            "Unix time of the earliest time a point-in-time restore of a SecurityGuard can recover to, as the newest backup found it",
            self.pitr_first_recoverable.clone(),
        );
        registry.register(
            "pitr_last_recoverable_timestamp_seconds",
            "Unix time of the latest time a point-in-time restore of a SecurityGuard can recover to, as the newest backup found it",
            self.pitr_last_recoverable.clone(),
        );
    }

    /// A backup finished successfully at `finished_at` (Unix seconds).
    pub fn backup_succeeded(&self, guard: &GuardLabels, finished_at: f64, duration_seconds: f64, size_bytes: u64) {
        self.backup_last_success.get_or_create(guard).set(finished_at);
        self.backup_last_duration.get_or_create(guard).set(duration_seconds);
        self.backup_last_size.get_or_create(guard).set(i64::try_from(size_bytes).unwrap_or(i64::MAX));
    }

    /// A backup attempt failed at `ended_at` (Unix seconds).
    pub fn backup_failed(&self, guard: &GuardLabels, ended_at: f64) {
        self.backup_last_failure.get_or_create(guard).set(ended_at);
    }

    /// Backups are scheduled every `seconds`; `None` when backups are off (the series goes).
    pub fn set_backup_interval(&self, guard: &GuardLabels, seconds: Option<f64>) {
        match seconds {
            Some(seconds) => {
                self.backup_schedule_interval.get_or_create(guard).set(seconds);
            }
            None => {
                self.backup_schedule_interval.remove(guard);
            }
        }
    }

    /// The newest restore is in `phase`, one of [`RESTORE_PHASES`] (any other value sets every
    /// phase to 0).
    pub fn set_restore_phase(&self, guard: &GuardLabels, phase: &str) {
        let labels = |p: &str| RestorePhaseLabels {
            namespace: guard.namespace.clone(),
            securityguard: guard.securityguard.clone(),
            phase: p.to_owned(),
        };
        for p in RESTORE_PHASES {
            self.restore_phase.get_or_create(&labels(p)).set(i64::from(p == phase));
        }
    }

    /// A restore drill ended at `ended_at` (Unix seconds), passing or not.
    pub fn restore_drill(&self, guard: &GuardLabels, ended_at: f64, passed: bool) {
        if passed {
            self.verify_last_success.get_or_create(guard).set(ended_at);
        }
        self.verify_last_result.get_or_create(guard).set(i64::from(passed));
    }

    /// The figures of the newest restore drill; `None` (it could not restore and check its
    /// backup, or none ran) drops them, so that no older drill's figures stand for it.
    pub fn drill_recovery(&self, guard: &GuardLabels, recovery: Option<&DrillRecovery>) {
        let step = |name: &str| DrillStepLabels {
            namespace: guard.namespace.clone(),
            securityguard: guard.securityguard.clone(),
            step: name.to_owned(),
        };
        let set = |family: &Family<GuardLabels, FloatGauge>, value: Option<f64>| match value {
            Some(value) => {
                family.get_or_create(guard).set(value);
            }
            None => {
                family.remove(guard);
            }
        };
        set(&self.verify_recovery_time, recovery.map(|r| r.recovery_time_seconds));
        set(&self.verify_recovery_time_target, recovery.and_then(|r| r.recovery_time_target_seconds));
        set(&self.verify_recovery_point, recovery.map(|r| r.recovery_point_seconds));
        set(&self.verify_recovery_point_target, recovery.and_then(|r| r.recovery_point_target_seconds));
        // In the order of DRILL_STEPS.
        let steps = recovery.map(|r| {
            let s = r.steps;
            [s.download_seconds, s.verify_seconds, s.restore_seconds, s.checks_seconds]
        });
        for (i, name) in DRILL_STEPS.into_iter().enumerate() {
            match steps {
                Some(seconds) => {
                    self.verify_step.get_or_create(&step(name)).set(seconds[i]);
                }
                None => {
                    self.verify_step.remove(&step(name));
                }
            }
        }
    }

    /// Point-in-time recovery: the alert threshold of the WAL archive and the recoverable window
    /// (Unix seconds); `None` drops a series (recovery off, or no window known).
    pub fn point_in_time(&self, guard: &GuardLabels, threshold: Option<f64>, window: (Option<f64>, Option<f64>)) {
        for (family, value) in [
            (&self.wal_archive_lag_threshold, threshold),
            (&self.pitr_first_recoverable, window.0),
            (&self.pitr_last_recoverable, window.1),
        ] {
            match value {
                Some(value) => {
                    family.get_or_create(guard).set(value);
                }
                None => {
                    family.remove(guard);
                }
            }
        }
    }

    /// Drops every series of a SecurityGuard (it was deleted).
    pub fn forget(&self, guard: &GuardLabels) {
        self.drill_recovery(guard, None);
        self.point_in_time(guard, None, (None, None));
        self.backup_last_success.remove(guard);
        self.backup_last_failure.remove(guard);
        self.backup_last_duration.remove(guard);
        self.backup_last_size.remove(guard);
        self.backup_schedule_interval.remove(guard);
        self.verify_last_success.remove(guard);
        self.verify_last_result.remove(guard);
        for phase in RESTORE_PHASES {
            self.restore_phase.remove(&RestorePhaseLabels {
                namespace: guard.namespace.clone(),
                securityguard: guard.securityguard.clone(),
                phase: phase.to_owned(),
            });
        }
    }
}

/// All metrics of the operator process.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration in seconds.
    pub reconcile_duration: Histogram,
    /// Requests to the Kubernetes API by verb and resource; writes are create/update/patch/delete.
    pub kube_requests: Family<RequestLabels, Counter>,
    /// 1 while this process holds the leader Lease.
    pub leader: Gauge,
    /// Backups, restores and drills of each SecurityGuard.
    pub guards: GuardMetrics,
    /// Threat-feed syncs of each SecurityGuard.
    pub feeds: FeedMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("securityguard_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register("reconciles", "Reconciles of SecurityGuards by result", reconciles.clone());
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile of a SecurityGuard",
            reconcile_duration.clone(),
        );
        let kube_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kube_api_requests",
            "Requests to the Kubernetes API by verb and resource (create, update, patch and delete are writes)",
            kube_requests.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 while this process holds the leader Lease and reconciles", leader.clone());
        let guards = GuardMetrics::default();
        guards.register(&mut registry);
        let feeds = FeedMetrics::default();
        feeds.register(&mut registry);
        Self { registry, reconciles, reconcile_duration, kube_requests, leader, guards, feeds }
    }
}

impl Metrics {
    /// The registry, text-encoded for a scrape.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Starts timing one reconcile; the duration and result are recorded when the guard drops.
    pub fn reconcile_timer(self: &Arc<Self>) -> ReconcileTimer {
        ReconcileTimer { metrics: self.clone(), start: Instant::now(), result: "error".to_owned() }
    }
}

/// Records a reconcile's duration and result on drop, whatever path the reconcile took.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    start: Instant,
    result: String,
}

impl ReconcileTimer {
    /// Sets the result label recorded on drop.
    pub fn set_result(&mut self, result: &str) {
        result.clone_into(&mut self.result);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics.reconcile_duration.observe(self.start.elapsed().as_secs_f64());
        self.metrics.reconciles.get_or_create(&ReconcileLabels { result: std::mem::take(&mut self.result) }).inc();
    }
}

/// A tower layer for the kube client counting every request by verb and resource.
#[derive(Clone)]
pub struct CountRequestsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountRequests { inner, metrics: self.0.clone() }
    }
}

/// The service of [`CountRequestsLayer`].
#[derive(Clone)]
pub struct CountRequests<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for CountRequests<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.metrics.kube_requests.get_or_create(&classify(req.method(), req.uri())).inc();
        self.inner.call(req)
    }
}

/// Names the verb and resource of a Kubernetes API request from its method and path.
pub fn classify(method: &http::Method, uri: &http::Uri) -> RequestLabels {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // Strip `api/v1` or `apis/<group>/<version>`.
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        other => other,
    };
    // `namespaces/<ns>/<resource>/...`, except the namespace object itself.
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, named) = match rest {
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
        [] => ("unknown".to_owned(), false),
    };
    let watch = uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    };
    RequestLabels { verb: verb.to_owned(), resource }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_restore_phase_has_its_series() {
        assert_eq!(RESTORE_PHASES, crate::crd::RestorePhase::ALL.map(|p| p.as_str()));
    }

    fn c(method: http::Method, uri: &str) -> (String, String) {
        let l = classify(&method, &uri.parse().expect("uri"));
        (l.verb, l.resource)
    }

    #[test]
    fn classifies_kubernetes_paths() {
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(c(http::Method::GET, "/api/v1/namespaces/a/secrets/jwt"), s("get", "secrets"));
        assert_eq!(c(http::Method::GET, "/apis/apps/v1/deployments?labelSelector=x"), s("list", "deployments"));
        assert_eq!(
            c(http::Method::GET, "/apis/apps/v1/deployments?watch=true&resourceVersion=5"),
            s("watch", "deployments")
        );
        assert_eq!(
            c(http::Method::PATCH, "/apis/securityguard.io/v1alpha1/namespaces/a/securityguards/x/status"),
            s("patch", "securityguards/status")
        );
        assert_eq!(c(http::Method::POST, "/apis/events.k8s.io/v1/namespaces/a/events"), s("create", "events"));
        assert_eq!(c(http::Method::DELETE, "/api/v1/namespaces/a"), s("delete", "namespaces"));
        assert_eq!(c(http::Method::GET, "/api/v1/namespaces"), s("list", "namespaces"));
    }

    fn samples(metrics: &Metrics) -> Vec<String> {
        let text = metrics.encode().expect("encode");
        text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
    }

    #[test]
    fn guard_series_are_set_and_forgotten() {
        let m = Metrics::default();
        let a = GuardLabels::new("shop", "a");
        let b = GuardLabels::new("shop", "b");
        m.guards.backup_succeeded(&a, 1_700_000_000.5, 12.5, 4096);
        m.guards.backup_failed(&a, 1_700_000_100.0);
        m.guards.set_backup_interval(&a, Some(3600.0));
        m.guards.restore_drill(&a, 1_700_000_200.0, true);
        m.guards.restore_drill(&b, 1_700_000_300.0, false);
        m.guards.set_restore_phase(&a, "Restoring");
        let s = samples(&m);
        let has = |line: &str| s.iter().any(|l| l == line);
        let a_labels = r#"namespace="shop",securityguard="a""#;
        assert!(
            has(&format!("securityguard_operator_backup_last_success_timestamp_seconds{{{a_labels}}} 1700000000.5")),
            "{s:#?}"
        );
        assert!(has(&format!(
            "securityguard_operator_backup_last_failure_timestamp_seconds{{{a_labels}}} 1700000100.0"
        )));
        assert!(has(&format!("securityguard_operator_backup_last_duration_seconds{{{a_labels}}} 12.5")));
        assert!(has(&format!("securityguard_operator_backup_last_size_bytes{{{a_labels}}} 4096")));
        assert!(has(&format!("securityguard_operator_backup_schedule_interval_seconds{{{a_labels}}} 3600.0")));
        assert!(has(&format!(
            "securityguard_operator_backup_verify_last_success_timestamp_seconds{{{a_labels}}} 1700000200.0"
        )));
        assert!(has(&format!("securityguard_operator_backup_verify_last_result{{{a_labels}}} 1")));
        assert!(has(r#"securityguard_operator_backup_verify_last_result{namespace="shop",securityguard="b"} 0"#));
        // A failed drill does not move the last success.
        assert!(!s.iter().any(|l| l.starts_with(
            r#"securityguard_operator_backup_verify_last_success_timestamp_seconds{namespace="shop",securityguard="b"}"#
        )));
        let phases: Vec<&String> =
            s.iter().filter(|l| l.starts_with("securityguard_operator_restore_phase{")).collect();
        assert_eq!(phases.len(), RESTORE_PHASES.len());
        assert!(has(&format!(r#"securityguard_operator_restore_phase{{{a_labels},phase="Restoring"}} 1"#)));
        assert!(has(&format!(r#"securityguard_operator_restore_phase{{{a_labels},phase="Pending"}} 0"#)));

        m.guards.set_restore_phase(&a, "Completed");
        let s = samples(&m);
        assert!(
            s.iter()
                .any(|l| l == &format!(r#"securityguard_operator_restore_phase{{{a_labels},phase="Completed"}} 1"#))
        );
        assert!(
            s.iter()
                .any(|l| l == &format!(r#"securityguard_operator_restore_phase{{{a_labels},phase="Restoring"}} 0"#))
        );

        m.guards.point_in_time(&a, Some(300.0), (Some(1_000.0), None));
        let s = samples(&m);
        assert!(
            s.iter()
                .any(|l| l == &format!("securityguard_operator_wal_archive_lag_threshold_seconds{{{a_labels}}} 300.0"))
        );
        assert!(
            s.iter().any(|l| l
                == &format!("securityguard_operator_pitr_first_recoverable_timestamp_seconds{{{a_labels}}} 1000.0"))
        );
        assert!(!s.iter().any(|l| l.contains("pitr_last_recoverable_timestamp_seconds{")), "no window end known");

        m.guards.set_backup_interval(&a, None);
        m.guards.forget(&b);
        let s = samples(&m);
        assert!(!s.iter().any(|l| l.contains("backup_schedule_interval_seconds{")));
        assert!(!s.iter().any(|l| l.contains(r#"securityguard="b""#)), "{s:#?}");
        m.guards.forget(&a);
        let s = samples(&m);
        assert!(!s.iter().any(|l| l.contains("securityguard=")), "{s:#?}");
    }

    #[test]
    fn the_newest_drill_figures_are_set_and_dropped_with_it() {
        let m = Metrics::default();
        let a = GuardLabels::new("shop", "a");
        let time = |s: i64| {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(s).expect("time"),
            )
        };
        let recovery = DrillRecovery {
            started_at: time(10_000),
            backup_taken_at: time(2_020),
            recovery_time_seconds: 73.5,
            recovery_time_target_seconds: Some(900.0),
            recovery_point_seconds: 7980.0,
            recovery_point_target_seconds: Some(3600.0),
            steps: crate::crd::RecoverySteps {
                download_seconds: 10.0,
                verify_seconds: 0.5,
                restore_seconds: 61.0,
                checks_seconds: 2.0,
            },
            missed: vec![crate::crd::RecoveryTarget::RecoveryPoint],
        };
        m.guards.drill_recovery(&a, Some(&recovery));
        let s = samples(&m);
        let has = |line: &str| s.iter().any(|l| l == line);
        let labels = r#"namespace="shop",securityguard="a""#;
        for line in [
            format!("securityguard_operator_backup_verify_recovery_time_seconds{{{labels}}} 73.5"),
            format!("securityguard_operator_backup_verify_recovery_time_target_seconds{{{labels}}} 900.0"),
            format!("securityguard_operator_backup_verify_recovery_point_seconds{{{labels}}} 7980.0"),
            format!("securityguard_operator_backup_verify_recovery_point_target_seconds{{{labels}}} 3600.0"),
            format!(r#"securityguard_operator_backup_verify_step_seconds{{{labels},step="download"}} 10.0"#),
            format!(r#"securityguard_operator_backup_verify_step_seconds{{{labels},step="restore"}} 61.0"#),
            format!(r#"securityguard_operator_backup_verify_step_seconds{{{labels},step="checks"}} 2.0"#),
        ] {
            assert!(has(&line), "{line} not in {s:#?}");
        }
        // A drill without targets: no target series.
        let untargeted = DrillRecovery { recovery_time_target_seconds: None, ..recovery.clone() };
        m.guards.drill_recovery(&a, Some(&untargeted));
        assert!(!samples(&m).iter().any(|l| l.contains("recovery_time_target_seconds{")));
        // The newest drill measured nothing: no older figures stand for it.
        m.guards.drill_recovery(&a, None);
        assert!(!samples(&m).iter().any(|l| l.contains("backup_verify_")), "{:#?}", samples(&m));
        m.guards.drill_recovery(&a, Some(&recovery));
        m.guards.forget(&a);
        assert!(!samples(&m).iter().any(|l| l.contains("securityguard=")));
    }

    #[test]
    fn feed_series_go_with_their_feed_and_their_guard() {
        let m = Metrics::default();
        let guard = GuardLabels::new("shop", "a");
        let feed = |name: &str| FeedLabels { namespace: "shop".into(), securityguard: "a".into(), feed: name.into() };
        m.feeds.set_feed(&feed("community"), Some((1.7e9, 12)), false);
        m.feeds.set_feed(&feed("broken"), None, true);
        m.feeds.failed(&feed("broken"));
        m.feeds.set_interval(&guard, Some(3600.0));
        let text = m.encode().expect("encodes");
        assert!(text.contains(
            "securityguard_operator_threat_feed_entries{namespace=\"shop\",securityguard=\"a\",feed=\"community\"} 12"
        ), "{text}");
        assert!(text.contains(
            "securityguard_operator_threat_feed_sync_failures_total{namespace=\"shop\",securityguard=\"a\",feed=\"broken\"} 1"
        ), "{text}");
        assert_eq!(m.feeds.names_of(&guard), ["broken", "community"]);
        m.feeds.forget_feed(&feed("broken"));
        assert_eq!(m.feeds.names_of(&guard), ["community"]);
        m.feeds.forget_guard(&guard);
        let text = m.encode().expect("encodes");
        assert!(!text.contains("securityguard=\"a\""), "{text}");
    }
}
