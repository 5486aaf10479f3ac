//! The controller's shared vocabulary, the leaf every step may import: the labels and names of
//! the objects it writes, the components, the one-off Jobs, and how a SecurityGuard runs right
//! now ([`Directives`]). Nothing here reads, decides or builds.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;

use crate::crd::{
    ManagedPostgres, ManagedRedis, RecordedAutoscaling, RestorePhase, SecretKeyReference, SecurityGuardSpec,
};

/// Field manager of every write of the operator.
pub const FIELD_MANAGER: &str = "securityguard-operator";

/// `app.kubernetes.io/name` of every object.
pub const APP_NAME: &str = "securityguard";
/// Label naming the SecurityGuard an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label naming the part of the installation an object belongs to.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label marking objects written by the operator (its watches select on it).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Pods carrying this label (with the instance label) may reach PostgreSQL and Redis.
pub const DATASTORE_CLIENT_LABEL: &str = "securityguard.io/datastore-client";
/// Annotation of the ServiceMonitor and PrometheusRule: the keys of `spec.monitoring.labels`.
pub const EXTRA_LABELS_ANNOTATION: &str = "securityguard.io/extra-labels";
/// Pod template annotation: hash of the API configuration, so a change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "securityguard.io/config-hash";

/// A SecurityGuard whose references resolve and whose values make sense.
#[derive(Debug, Clone)]
pub struct ValidatedGuard {
    /// Name of the SecurityGuard.
    pub name: String,
    /// Its namespace (also the namespace of every child).
    pub namespace: String,
    /// Controller owner reference for children.
    pub owner: OwnerReference,
    /// The spec (defaults applied by the API server).
    pub spec: SecurityGuardSpec,
    /// Where PostgreSQL comes from.
    pub postgres: Datastore<ManagedPostgres>,
    /// Where Redis comes from.
    pub redis: Datastore<ManagedRedis>,
}

/// A datastore run by the operator or reached through a URL in a Secret.
#[derive(Debug, Clone)]
pub enum Datastore<M> {
    /// Run by the operator.
    Managed(M),
    /// Run elsewhere; the Secret key holds the connection URL.
    External(SecretKeyReference),
}

impl ValidatedGuard {
    /// The managed PostgreSQL settings, if the operator runs it.
    pub fn postgres_managed(&self) -> Option<&ManagedPostgres> {
        match &self.postgres {
            Datastore::Managed(m) => Some(m),
            Datastore::External(_) => None,
        }
    }

    /// The managed Redis settings, if the operator runs it.
    pub fn redis_managed(&self) -> Option<&ManagedRedis> {
        match &self.redis {
            Datastore::Managed(m) => Some(m),
            Datastore::External(_) => None,
        }
    }
}

/// The components of one installation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// The API Deployment and its companions.
    Api,
    /// The managed PostgreSQL.
    Postgres,
    /// The managed Redis.
    Redis,
    /// Backups, restores and their drills.
    Backup,
    /// The ServiceMonitor, PrometheusRule and dashboards.
    Monitoring,
    /// The threat-feed sync CronJob.
    ThreatFeeds,
}

impl Component {
    /// Label value and name suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Backup => "backup",
            Self::Monitoring => "monitoring",
            Self::ThreatFeeds => "threat-feeds",
        }
    }
}

/// Name of a component's objects: `<guard>-<component>`.
pub fn object_name(guard: &str, component: Component) -> String {
    format!("{guard}-{}", component.as_str())
}

/// Labels selecting the pods of a component.
pub fn selector_labels(guard: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        (INSTANCE_LABEL.to_owned(), guard.to_owned()),
        (COMPONENT_LABEL.to_owned(), component.as_str().to_owned()),
    ])
}

/// A short, stable hash of some bytes (hex SHA-256 prefix), for change-detecting annotations.
pub fn short_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..8])
}

/// Label naming what a backup pod does (`backup`, `verify`, `log-archive`, `claim-restore`,
/// `safety-backup`, `restore`, `rollback`).
pub const JOB_KIND_LABEL: &str = "securityguard.io/job";
/// Label carrying the `requestId` a Job was created for.
pub const REQUEST_LABEL: &str = "securityguard.io/request";

/// Annotation on the generated credentials Secret listing the keys it holds.
pub const CREDENTIAL_KEYS_ANNOTATION: &str = "securityguard.io/credential-keys";
/// Annotation of a Deployment and its ReplicaSets: the revision of each template.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// What a backup pod does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// A scheduled or on-demand backup.
    Backup,
    /// A restore drill into a scratch database.
    Verify,
    /// The weekly archive of the API's logs.
    LogArchive,
    /// Claiming a restore request in the restore ledger, before anything changes.
    ClaimRestore,
    /// The backup taken before a restore.
    SafetyBackup,
    /// The restore.
    Restore,
    /// Restoring the safety backup after a failed restore.
    Rollback,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 7] = [
        Self::Backup,
        Self::Verify,
        Self::LogArchive,
        Self::ClaimRestore,
        Self::SafetyBackup,
        Self::Restore,
        Self::Rollback,
    ];

    /// Value of [`JOB_KIND_LABEL`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Verify => "verify",
            Self::LogArchive => "log-archive",
            Self::ClaimRestore => "claim-restore",
            Self::SafetyBackup => "safety-backup",
            Self::Restore => "restore",
            Self::Rollback => "rollback",
        }
    }

    /// The kind named by a label value.
    pub fn from_label(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// A one-off Job that the reconcile wants to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRequest {
    /// `spec.backup.requestId`.
    Backup {
        /// The request.
        request_id: String,
    },
    /// Claiming a restore's request in the restore ledger (the claimant is the guard's UID).
    ClaimRestore {
        /// The restore's request.
        request_id: String,
        /// `latest`, `before:<time>` or a key, recorded with the claim.
        source: String,
        /// A point-in-time restore's target: the claim refuses a time outside the recoverable
        /// window, before anything changes.
        point_in_time: Option<Timestamp>,
    },
    /// The safety backup of a restore.
    SafetyBackup {
        /// The restore's request.
        request_id: String,
    },
    /// The restore itself.
    Restore {
        /// The restore's request.
        request_id: String,
        /// `latest`, `before:<time>` or a key.
        source: String,
    },
    /// Restoring the safety backup.
    Rollback {
        /// The restore's request.
        request_id: String,
        /// Key of the safety backup.
        key: String,
    },
    /// A point-in-time restore: the managed PostgreSQL's data directory recovered to `target`
    /// from a base backup and the archived WAL, by a pod of the PostgreSQL image on its volume.
    PointInTimeRestore {
        /// The restore's request.
        request_id: String,
        /// The time recovered to.
        target: Timestamp,
    },
    /// Moving back the data directory a failed point-in-time restore kept aside.
    PointInTimeRollback {
        /// The restore's request.
        request_id: String,
    },
}

impl JobRequest {
    /// What the Job does.
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Backup { .. } => JobKind::Backup,
            Self::ClaimRestore { .. } => JobKind::ClaimRestore,
            Self::SafetyBackup { .. } => JobKind::SafetyBackup,
            Self::Restore { .. } | Self::PointInTimeRestore { .. } => JobKind::Restore,
            Self::Rollback { .. } | Self::PointInTimeRollback { .. } => JobKind::Rollback,
        }
    }

    /// The request it serves.
    pub fn request_id(&self) -> &str {
        match self {
            Self::Backup { request_id }
            | Self::ClaimRestore { request_id, .. }
            | Self::SafetyBackup { request_id }
            | Self::Restore { request_id, .. }
            | Self::Rollback { request_id, .. }
            | Self::PointInTimeRestore { request_id, .. }
            | Self::PointInTimeRollback { request_id } => request_id,
        }
    }

    /// Name of the Job: stable, so that creating it twice (a reconcile repeated, an operator
    /// restarted) finds the first one.
    pub fn job_name(&self, guard: &str) -> String {
        let hash = &short_hash(self.request_id().as_bytes())[..8];
        let suffix = match self {
            Self::Backup { .. } => format!("backup-{hash}"),
            Self::ClaimRestore { .. } => format!("restore-{hash}-claim"),
            Self::SafetyBackup { .. } => format!("restore-{hash}-safety"),
            // A request is restored one way or the other: the two kinds share their names.
            Self::Restore { .. } | Self::PointInTimeRestore { .. } => format!("restore-{hash}"),
            Self::Rollback { .. } | Self::PointInTimeRollback { .. } => format!("restore-{hash}-rollback"),
        };
        bounded_name(guard, &suffix, 63)
    }
}

/// `<guard>-<suffix>`, shortened to `max` characters by cutting the guard's name and adding a
/// hash of it, so distinct guards keep distinct names.
pub fn bounded_name(guard: &str, suffix: &str, max: usize) -> String {
    let full = format!("{guard}-{suffix}");
    if full.len() <= max {
        return full;
    }
    let hash = &short_hash(guard.as_bytes())[..6];
    let keep = max.saturating_sub(suffix.len() + hash.len() + 2);
    let cut: String = guard.chars().take(keep).collect();
    format!("{}-{hash}-{suffix}", cut.trim_end_matches(['-', '.']))
}

/// Name of the ServiceAccount of the backup pods (and of the Role binding it may read the
/// SecurityGuard and its ConfigMaps).
pub fn backup_service_account(guard: &str) -> String {
    bounded_name(guard, "backup", 63)
}

/// Name of the ServiceAccount of the log-archive pods (may read the API pods' logs).
pub fn log_archive_service_account(guard: &str) -> String {
    bounded_name(guard, "log-archive", 63)
}

/// The `postgres` user of the Debian-based PostgreSQL image: the owner of its data directory.
pub const POSTGRES_UID: i64 = 999;
/// Where PostgreSQL's data volume is mounted (in its pod, its WAL archiver and the
/// point-in-time restore); the cluster lives in `pgdata` below it.
pub const POSTGRES_DATA_DIR: &str = "/var/lib/postgresql/data";

/// Name of the data volume of the managed datastores (and of its claim template).
pub const DATA_VOLUME: &str = "data";

/// The claim of the managed PostgreSQL's data volume: the StatefulSet's claim template
/// `<template>-<statefulset>-<ordinal>` of its only pod, 0.
pub fn postgres_data_claim(guard: &str) -> String {
    format!("{DATA_VOLUME}-{}-0", object_name(guard, Component::Postgres))
}

/// Name of the local-tier volume claim.
pub fn local_volume_name(guard: &str) -> String {
    bounded_name(guard, "backups", 63)
}

/// How many API replicas to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scale {
    /// As the spec says.
    #[default]
    Spec,
    /// None: the database is being restored.
    Zero,
    /// The size recorded before the restore (and the autoscaler with its recorded bounds).
    Recorded {
        /// Replicas.
        replicas: i32,
        /// Autoscaler bounds, if autoscaling was on.
        autoscaling: Option<RecordedAutoscaling>,
    },
}

/// How the SecurityGuard runs right now: as its spec says, or as a restore needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// API replicas.
    pub scale: Scale,
    /// Suspend every CronJob.
    pub suspend_backups: bool,
    /// Scale the managed PostgreSQL to 0: a point-in-time restore replaces its data directory.
    pub stop_postgres: bool,
    /// One-off Jobs that must exist.
    pub jobs: Vec<JobRequest>,
}

/// The kind of Job a phase waits for.
pub fn awaited_job(phase: RestorePhase) -> Option<JobKind> {
    match phase {
        RestorePhase::Claiming => Some(JobKind::ClaimRestore),
        RestorePhase::SafetyBackup => Some(JobKind::SafetyBackup),
        RestorePhase::Restoring => Some(JobKind::Restore),
        RestorePhase::RollingBack => Some(JobKind::Rollback),
        _ => None,
    }
}

/// What the platform offers a reconcile besides the spec: the operator's own image, which the
/// backup and restore pods run, and the prometheus-operator kinds the cluster serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// Image of the backup and restore pods.
    pub job_image: String,
    /// The prometheus-operator kinds served.
    pub monitoring_apis: MonitoringApis,
}

/// The definition of ServiceMonitors.
pub const SERVICE_MONITORS_CRD: &str = "servicemonitors.monitoring.coreos.com";
/// The definition of PrometheusRules.
pub const PROMETHEUS_RULES_CRD: &str = "prometheusrules.monitoring.coreos.com";

/// Which prometheus-operator kinds the API server serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitoringApis {
    /// `servicemonitors.monitoring.coreos.com/v1`.
    pub service_monitors: bool,
    /// `prometheusrules.monitoring.coreos.com/v1`.
    pub prometheus_rules: bool,
}

impl MonitoringApis {
    /// Both kinds are served.
    pub const ALL: Self = Self { service_monitors: true, prometheus_rules: true };

    /// The definitions that are missing, by name.
    pub fn missing(&self) -> Vec<&'static str> {
        [(self.service_monitors, SERVICE_MONITORS_CRD), (self.prometheus_rules, PROMETHEUS_RULES_CRD)]
            .into_iter()
            .filter_map(|(served, name)| (!served).then_some(name))
            .collect()
    }
}

/// A Kubernetes client error in one line: the API server's message and code, not the Debug
/// dump of its Status.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => other.to_string(),
    }
}

/// Label selecting the objects the operator writes.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY_LABEL, FIELD_MANAGER)
}

/// Label selector of the volume claims the operator writes: the local backup tier's.
pub fn backup_claim_selector() -> String {
    format!("{},{}={}", managed_selector(), COMPONENT_LABEL, Component::Backup.as_str())
}

/// Label selector of the pods whose failures degrade their SecurityGuard: the API's and the
/// managed datastores' (the backup and restore Jobs report their pods' outcome themselves).
pub fn pod_selector() -> String {
    let components = [Component::Api, Component::Postgres, Component::Redis].map(Component::as_str).join(",");
    format!("{},{} in ({components})", managed_selector(), COMPONENT_LABEL)
}

/// The in-cluster URL of a SecurityGuard's API Service.
pub fn api_cluster_url(guard: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{SERVICE_PORT}", object_name(guard, Component::Api))
}

/// Port the API listens on inside the pod.
pub const API_PORT: i32 = 8080;
/// Port of the API Service.
pub const SERVICE_PORT: i32 = 80;
/// Port of the managed PostgreSQL.
pub const POSTGRES_PORT: i32 = 5432;
/// Port of the managed Redis.
pub const REDIS_PORT: i32 = 6379;
/// Port of the WAL archiver's `/metrics` and `/healthz` beside the managed PostgreSQL.
pub const WAL_METRICS_PORT: i32 = 9188;
/// Name of that port, on the container and on the PostgreSQL Service.
pub const WAL_METRICS_PORT_NAME: &str = "wal-metrics";

/// Key of the PostgreSQL password in the generated credentials Secret.
pub const POSTGRES_PASSWORD_KEY: &str = "postgres-password";
/// Key of the Redis password in the generated credentials Secret.
pub const REDIS_PASSWORD_KEY: &str = "redis-password";

/// Key of the machine tokens of the threat-feed sync in the generated credentials Secret: one
/// token a line; the sync uses the first, the API accepts each (rotation: put the new token
/// first, remove the old one after the next sync).
pub const FEED_TOKENS_KEY: &str = "feed-tokens";
/// Where the API and the sync pods see the feed tokens (a Secret volume: updated in place).
pub const FEED_TOKENS_DIR: &str = "/var/run/securityguard/feed-tokens";
/// The file in [`FEED_TOKENS_DIR`].
pub const FEED_TOKENS_FILE: &str = "tokens";
/// Value of [`JOB_KIND_LABEL`] on the threat-feed sync Jobs.
pub const FEED_SYNC_JOB: &str = "feed-sync";

/// Name of the threat-feed sync CronJob (its Jobs get an 11-character suffix).
pub fn feed_sync_name(guard: &str) -> String {
    bounded_name(guard, FEED_SYNC_JOB, 52)
}

/// Name of the Secret holding the generated passwords of a SecurityGuard's managed datastores.
pub fn credentials_secret_name(guard: &str) -> String {
    format!("{guard}-credentials")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_bounded_and_distinct() {
        let a = bounded_name(&"a".repeat(80), "restore-12345678-rollback", 63);
        let b = bounded_name(&format!("{}b", "a".repeat(79)), "restore-12345678-rollback", 63);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.ends_with("-restore-12345678-rollback"));
        assert_eq!(bounded_name("sg", "backup", 63), "sg-backup");
    }

    #[test]
    fn missing_names_the_definitions() {
        assert_eq!(MonitoringApis::default().missing(), [SERVICE_MONITORS_CRD, PROMETHEUS_RULES_CRD]);
        assert_eq!(
            MonitoringApis { service_monitors: true, prometheus_rules: false }.missing(),
            [PROMETHEUS_RULES_CRD]
        );
        assert!(MonitoringApis::ALL.missing().is_empty());
    }
}
