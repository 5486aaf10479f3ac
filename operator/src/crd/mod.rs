//! The `SecurityGuard` custom resource (`securityguard.io/v1alpha1`).
//!
//! Every field carries a doc comment: it becomes the description that `kubectl explain` shows.
//! Cross-field rules are CEL `x-kubernetes-validations`, checked by the API server at admission.

pub mod backup;
mod datastore;
pub mod duration;
pub mod feeds;
pub mod formats;
mod ingress;
mod monitoring;
pub mod schedule;
mod status;
mod workload;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use backup::{
    BackupRun, BackupSpec, BackupStatus, DrillRecovery, EncryptionSpec, LocalTierSpec, LogArchiveSpec,
    PointInTimeRecovery, PointInTimeSpec, PointInTimeStatus, RecordedAutoscaling, RecoverableWindow, RecoverySteps,
    RecoveryTarget, RecoveryTargets, RestorePhase, RestoreSpec, RestoreStatus, RetentionSpec, S3Spec,
    ServerSideEncryptionSpec, ServerSideEncryptionType, VerifySpec,
};
pub use datastore::{
    ExternalDatastore, ManagedPostgres, ManagedRedis, PostgresSpec, REDIS_DEFAULT_MEMORY_LIMIT, RedisSpec,
};
pub use feeds::{
    EntryKind, FeedFormat, FeedOutcome, RemovedFeed, ThreatFeed, ThreatFeedStatus, ThreatFeedsSpec, ThreatFeedsStatus,
};
pub use ingress::{IngressSpec, RateLimitSpec};
pub use monitoring::MonitoringSpec;
pub use status::{
    CONDITION_BACKUP_HEALTHY, CONDITION_BACKUP_VERIFIED, CONDITION_DEGRADED, CONDITION_MONITORING_READY,
    CONDITION_PAUSED, CONDITION_PROGRESSING, CONDITION_READY, CONDITION_THREAT_FEEDS_SYNCED, SecurityGuardStatus,
};
pub use workload::{
    ApiConfig, AutoscalingSpec, Environment, ImagePullPolicy, LogLevel, ScaleDownPolicy, ScaleUpPolicy,
    SecretKeyReference, SecretsSpec,
};

/// API group of every custom resource of the operator.
pub const GROUP: &str = "securityguard.io";

/// Desired state of one SecurityGuard API installation: the API Deployment and everything it needs.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "securityguard.io",
    version = "v1alpha1",
    kind = "SecurityGuard",
    plural = "securityguards",
    singular = "securityguard",
    shortname = "sg",
    category = "securityguard",
    namespaced,
    status = "SecurityGuardStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.replicas) || !self.autoscaling.enabled")
    .message("replicas is only used when autoscaling is disabled: set autoscaling.enabled to false or remove replicas")
    .field_path(".replicas"))]
#[x_kube(validation = Rule::new(formats::AUTOSCALED_RESOURCES_RULE)
    .message("resources must request (or limit) cpu and memory while autoscaling is enabled: the autoscaler's targets are percentages of the requests")
    .field_path(".resources"))]
#[x_kube(validation = Rule::new("!has(self.restore) || has(self.backup)")
    .message("restore needs backup: spec.backup.s3 says where the backups are")
    .field_path(".restore"))]
pub struct SecurityGuardSpec {
    /// Container image of the SecurityGuard API, for example `ghcr.io/securityguard/api:1.4.2`:
    /// `[host[:port]/]path[:tag][@sha256:digest]` with a lower-case path.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(formats::image_rule()).message(formats::IMAGE_MESSAGE))]
    pub image: String,

    /// When the kubelet pulls the API image: `Always`, `IfNotPresent` (default) or `Never`.
    #[serde(default)]
    pub image_pull_policy: ImagePullPolicy,

    /// CPU and memory requests and limits of each API container, as quantities (`500m`, `1Gi`).
    /// Defaults to requests of 250m CPU / 256Mi memory and a 1Gi memory limit. While autoscaling
    /// is enabled, CPU and memory must be requested (or limited): the autoscaler's targets are
    /// percentages of the requests. A request may not exceed its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "formats::resources_schema")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,

    /// Extra environment variables for the API container. Variables the operator sets itself
    /// (DATABASE_URL, REDIS_URL, JWT_SECRET, CLAUDE_API_KEY, SOLANA_RPC_URL, ENVIRONMENT,
    /// LISTEN_ADDR, FEED_TOKENS_FILE) cannot be overridden here. RUST_LOG set here replaces config.logLevel (for
    /// example `info,securityguard_api::access=warn` turns the access log off). Names are
    /// printable ASCII characters other than `=`, at most 256 of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), transform = formats::bounded_env_names)]
    #[x_kube(validation = Rule::new("self.all(e, !(e.name in ['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'CLAUDE_API_KEY', 'SOLANA_RPC_URL', 'ENVIRONMENT', 'LISTEN_ADDR', 'FEED_TOKENS_FILE']))")
        .message("env must not set a variable the operator manages (DATABASE_URL, REDIS_URL, JWT_SECRET, CLAUDE_API_KEY, SOLANA_RPC_URL, ENVIRONMENT, LISTEN_ADDR, FEED_TOKENS_FILE)"))]
    #[x_kube(validation = Rule::new(formats::ENV_NAMES_RULE)
        .message("env names must be printable ASCII characters other than '=', such as ADMIN_WALLETS"))]
    pub env: Vec<k8s_openapi::api::core::v1::EnvVar>,

    /// Secrets the API needs. Values are read from Secrets in the SecurityGuard's namespace and
    /// never copied into the resource, its status, events or logs.
    pub secrets: SecretsSpec,

    /// Application settings of the API.
    #[serde(default)]
    pub config: ApiConfig,

    /// Fixed number of API replicas, used only when `autoscaling.enabled` is false (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Horizontal autoscaling of the API on CPU and memory. Defaults follow the infrastructure
    /// guide: 3 to 20 replicas, 70 % CPU, 80 % memory.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,

    /// External access through an Ingress (ingress-nginx annotations for rate limiting).
    #[serde(default)]
    pub ingress: IngressSpec,

    /// The PostgreSQL database: run by the operator (`managed`, the default) or `external`.
    #[serde(default)]
    pub postgres: PostgresSpec,

    /// The Redis cache: run by the operator (`managed`, the default) or `external`.
    #[serde(default)]
    pub redis: RedisSpec,

    /// Backups of the PostgreSQL database to S3 (absent: no backups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,

    /// Restore the database from a backup by setting a new `requestId` (needs `backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,

    /// Threat feeds (public blocklists) the operator keeps in sync with the API's pattern
    /// library through a CronJob (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_feeds: Option<ThreatFeedsSpec>,

    /// Prometheus monitoring through prometheus-operator: a ServiceMonitor for the API, a
    /// PrometheusRule with the alerts, and optionally the Grafana dashboards.
    #[serde(default)]
    pub monitoring: MonitoringSpec,

    /// Stop reconciling this SecurityGuard: its objects are left exactly as they are until
    /// `paused` is false again. The status reports the pause.
    #[serde(default)]
    pub paused: bool,
}

impl SecurityGuard {
    /// The number of API replicas to run when autoscaling is off.
    pub fn fixed_replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(AutoscalingSpec::default().min_replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn minimal_spec_gets_the_guide_defaults() {
        let guard: SecurityGuardSpec = serde_json::from_value(serde_json::json!({
            "image": "securityguard/api:1.0.0",
            "secrets": {"jwtSecret": {"name": "jwt", "key": "secret"}},
        }))
        .expect("minimal spec parses");
        assert_eq!(guard.autoscaling.min_replicas, 3);
        assert_eq!(guard.autoscaling.max_replicas, 20);
        assert_eq!(guard.autoscaling.target_cpu_utilization_percentage, 70);
        assert_eq!(guard.autoscaling.target_memory_utilization_percentage, 80);
        assert!(guard.postgres.managed.is_some() && guard.postgres.external.is_none());
        assert!(guard.redis.managed.is_some() && guard.redis.external.is_none());
        assert!(!guard.ingress.enabled);
        assert_eq!(guard.config.environment, Environment::Production);
    }

    #[test]
    fn every_schema_property_is_described() {
        let crd = serde_json::to_value(SecurityGuard::crd()).expect("crd serializes");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut undocumented = Vec::new();
        walk(schema, "spec", &mut undocumented);
        assert!(undocumented.is_empty(), "fields without a description: {undocumented:?}");

        fn walk(node: &serde_json::Value, path: &str, out: &mut Vec<String>) {
            if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
                for (name, child) in props {
                    let p = format!("{path}.{name}");
                    let described =
                        child.get("description").and_then(|d| d.as_str()).is_some_and(|d| !d.trim().is_empty());
                    if !described {
                        out.push(p.clone());
                    }
                    walk(child, &p, out);
                }
            }
            if let Some(items) = node.get("items") {
                walk(items, &format!("{path}[]"), out);
            }
        }
    }
}
