//! Build: every object a validated SecurityGuard asks for, as typed k8s-openapi structs.
//!
//! Pure functions only: no I/O, no clock, no randomness. One file per kind of child.

pub mod backup_cronjob;
pub mod backup_job;
mod backup_rbac;
mod backup_volume;
mod config_map;
mod credentials;
mod dashboards;
mod datastore;
mod deployment;
mod hpa;
pub mod ingress;
mod network_policy;
mod pdb;
mod postgres;
mod prometheus_rule;
mod redis;
pub mod service;
mod service_account;
mod service_monitor;

use std::collections::BTreeMap;
use std::marker::PhantomData;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, PersistentVolumeClaim, SeccompProfile, SecurityContext, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::validate::ValidatedGuard;
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

pub use credentials::{CredentialsSecret, POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY};

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
        }
    }
}

/// Marker: objects built, not yet sent.
#[derive(Debug)]
pub struct Prepared;
/// Marker: objects as the API server accepted them.
#[derive(Debug)]
pub struct Applied;

/// Every child object of one SecurityGuard. `Prepared` from [`build`], `Applied` from
/// `apply::apply`; status is derived only from the applied set.
#[derive(Debug)]
pub struct ChildResources<State> {
    /// ServiceAccount of the API pods.
    pub service_account: ServiceAccount,
    /// Non-secret configuration of the API.
    pub config_map: ConfigMap,
    /// Generated passwords of the managed datastores, created once (absent when both are external).
    pub credentials: Option<CredentialsSecret>,
    /// The managed PostgreSQL.
    pub postgres: Option<DatastoreObjects>,
    /// The managed Redis.
    pub redis: Option<DatastoreObjects>,
    /// NetworkPolicies fencing the managed datastores.
    pub network_policies: Vec<NetworkPolicy>,
    /// The API Deployment.
    pub deployment: Deployment,
    /// The API Service.
    pub service: Service,
    /// The API autoscaler, when autoscaling is on.
    pub hpa: Option<HorizontalPodAutoscaler>,
    /// The PodDisruptionBudget of the API pods.
    pub pdb: PodDisruptionBudget,
    /// The Ingress, when enabled.
    pub ingress: Option<Ingress>,
    /// Backups: their identities, schedules, local volume and one-off Jobs.
    pub backup: BackupObjects,
    /// Monitoring: the ServiceMonitor, the PrometheusRule and the dashboards.
    pub monitoring: MonitoringObjects,
    /// Build or apply stage.
    pub state: PhantomData<State>,
}

/// A managed datastore: its StatefulSet and Service.
#[derive(Debug, Clone)]
pub struct DatastoreObjects {
    /// The StatefulSet running it.
    pub stateful_set: StatefulSet,
    /// The Service clients connect to.
    pub service: Service,
}

/// The objects of `spec.backup` (all empty without it).
#[derive(Debug, Clone, Default)]
pub struct BackupObjects {
    /// ServiceAccounts of the backup and log-archive pods.
    pub service_accounts: Vec<ServiceAccount>,
    /// Their RoleBindings.
    pub role_bindings: Vec<RoleBinding>,
    /// Scheduled backups, drills and log archive.
    pub cron_jobs: Vec<CronJob>,
    /// The local tier's volume claim (unowned: it outlives the SecurityGuard).
    pub volume: Option<PersistentVolumeClaim>,
    /// One-off Jobs (on-demand backup, restore steps): created once, never updated.
    pub jobs: Vec<Job>,
}

/// The objects of `spec.monitoring` (all empty without it). The prometheus-operator kinds are
/// built only when the cluster serves them.
#[derive(Debug, Clone, Default)]
pub struct MonitoringObjects {
    /// The ServiceMonitor of the API Service.
    pub service_monitor: Option<ServiceMonitor>,
    /// The PrometheusRule with the guard's alerts.
    pub prometheus_rule: Option<PrometheusRule>,
    /// The Grafana dashboards, one ConfigMap each.
    pub dashboards: Vec<ConfigMap>,
}

/// Builds every object the SecurityGuard asks for.
pub fn build(guard: &ValidatedGuard) -> ChildResources<Prepared> {
    let config_map = config_map::build(guard);
    ChildResources {
        service_account: service_account::build(guard),
        credentials: credentials::build(guard),
        postgres: guard.postgres_managed().map(|m| postgres::build(guard, m)),
        redis: guard.redis_managed().map(|m| redis::build(guard, m)),
        network_policies: network_policy::build(guard),
        deployment: deployment::build(guard, &config_map),
        service: service::build(guard),
        hpa: hpa::build(guard),
        pdb: pdb::build(guard),
        ingress: ingress::build(guard),
        backup: build_backup(guard),
        monitoring: build_monitoring(guard),
        config_map,
        state: PhantomData,
    }
}

fn build_backup(guard: &ValidatedGuard) -> BackupObjects {
    let Some(backup) = &guard.spec.backup else { return BackupObjects::default() };
    let (service_accounts, role_bindings) = backup_rbac::build(guard);
    BackupObjects {
        service_accounts,
        role_bindings,
        cron_jobs: backup_cronjob::build(guard),
        volume: backup_volume::build(guard),
        jobs: guard.directives.jobs.iter().map(|request| backup_job::build(guard, backup, request)).collect(),
    }
}

fn build_monitoring(guard: &ValidatedGuard) -> MonitoringObjects {
    let spec = &guard.spec.monitoring;
    if !spec.enabled {
        return MonitoringObjects::default();
    }
    let served = &guard.monitoring_apis;
    MonitoringObjects {
        service_monitor: served.service_monitors.then(|| service_monitor::build(guard)),
        prometheus_rule: served.prometheus_rules.then(|| prometheus_rule::build(guard)),
        dashboards: if spec.dashboards { dashboards::build(guard) } else { Vec::new() },
    }
}

/// Metadata of the ServiceMonitor and the PrometheusRule: the component's, the extra labels of
/// `spec.monitoring.labels`, and an annotation listing those so that removing one is a change
/// (the apply step only compares what is asked for).
pub fn monitoring_metadata(guard: &ValidatedGuard) -> ObjectMeta {
    let extra = &guard.spec.monitoring.labels;
    let mut meta = metadata(guard, Component::Monitoring, object_name(&guard.name, Component::Monitoring));
    let mut labels = extra.clone();
    labels.extend(meta.labels.take().unwrap_or_default());
    meta.labels = Some(labels);
    meta.annotations = Some(BTreeMap::from([(
        EXTRA_LABELS_ANNOTATION.to_owned(),
        extra.keys().map(String::as_str).collect::<Vec<_>>().join(","),
    )]));
    meta
}

/// Name of a component's objects: `<guard>-<component>`.
pub fn object_name(guard: &str, component: Component) -> String {
    format!("{guard}-{}", component.as_str())
}

/// Labels selecting the pods of a component.
pub fn selector_labels(guard: &ValidatedGuard, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        (INSTANCE_LABEL.to_owned(), guard.name.clone()),
        (COMPONENT_LABEL.to_owned(), component.as_str().to_owned()),
    ])
}

/// Labels of every object of a component.
pub fn labels(guard: &ValidatedGuard, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(guard, component);
    labels.insert(MANAGED_BY_LABEL.to_owned(), FIELD_MANAGER.to_owned());
    labels
}

/// Metadata of an object of a component, owned by the SecurityGuard.
pub fn metadata(guard: &ValidatedGuard, component: Component, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(guard.namespace.clone()),
        labels: Some(labels(guard, component)),
        owner_references: Some(vec![owner_reference(guard)]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(guard: &ValidatedGuard) -> OwnerReference {
    guard.owner.clone()
}

/// The container security context every container gets (Pod Security `restricted`).
pub fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
        ..SecurityContext::default()
    }
}

/// Pod-level security context for a non-root user (Pod Security `restricted`).
pub fn restricted_pod_security_context(uid: i64) -> k8s_openapi::api::core::v1::PodSecurityContext {
    k8s_openapi::api::core::v1::PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
        ..Default::default()
    }
}

/// A short, stable hash of some bytes (hex SHA-256 prefix), for change-detecting annotations.
pub fn short_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..8])
}

#[cfg(test)]
mod tests {
    use super::test_support::{MINIMAL, guard};
    use super::*;
    use crate::controller::monitoring_apis::MonitoringApis;

    #[test]
    fn monitoring_objects_follow_the_spec_and_what_the_cluster_serves() {
        let mut g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true, dashboards: true}}\n"));
        let missing = build_monitoring(&g);
        assert!(missing.service_monitor.is_none() && missing.prometheus_rule.is_none(), "kinds not served");
        assert_eq!(missing.dashboards.len(), 4, "dashboards need no prometheus-operator");

        g.monitoring_apis = MonitoringApis { service_monitors: true, prometheus_rules: false };
        let partial = build_monitoring(&g);
        assert!(partial.service_monitor.is_some() && partial.prometheus_rule.is_none());

        g.monitoring_apis = MonitoringApis::ALL;
        let all = build(&g).monitoring;
        assert!(all.service_monitor.is_some() && all.prometheus_rule.is_some());

        g.spec.monitoring.enabled = false;
        let off = build_monitoring(&g);
        assert!(off.service_monitor.is_none() && off.prometheus_rule.is_none() && off.dashboards.is_empty());
    }

    #[test]
    fn removing_an_extra_label_changes_the_annotation() {
        let mut g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true, labels: {{release: p, team: sec}}}}\n"));
        let both = monitoring_metadata(&g);
        assert_eq!(both.annotations.as_ref().map(|a| a[EXTRA_LABELS_ANNOTATION].as_str()), Some("release,team"));
        g.spec.monitoring.labels.remove("team");
        let one = monitoring_metadata(&g);
        assert_eq!(one.annotations.as_ref().map(|a| a[EXTRA_LABELS_ANNOTATION].as_str()), Some("release"));
        assert!(!one.labels.as_ref().expect("labels").contains_key("team"));
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A SecurityGuard fixture for the builders' tests.
    use super::super::dereference::References;
    use super::super::validate::{ValidatedGuard, validate};
    use crate::crd::SecurityGuard;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    /// Parses a SecurityGuard from YAML and validates it against Secrets that hold what it
    /// references.
    pub fn guard(yaml: &str) -> ValidatedGuard {
        let guard: SecurityGuard = serde_saphyr::from_str(yaml).expect("fixture parses");
        let secret = |name: &str, key: &str, value: &str| Secret {
            metadata: kube::api::ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
            data: Some([(key.to_owned(), ByteString(value.as_bytes().to_vec()))].into()),
            ..Default::default()
        };
        let refs = References::from_secrets([
            secret("jwt", "secret", "0123456789abcdef0123456789abcdef"),
            secret("db", "url", "postgresql://u:p@db.example.com:5432/sg"),
            secret("cache", "url", "rediss://:p@cache.example.com:6379/0"),
            secret("claude", "key", "sk-test"),
            Secret {
                metadata: kube::api::ObjectMeta { name: Some("s3".to_owned()), ..Default::default() },
                data: Some(
                    [("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "key")]
                        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                        .into(),
                ),
                ..Default::default()
            },
        ]);
        validate(&guard, &refs).expect("fixture is valid")
    }

    /// The minimal example: image and JWT secret only.
    pub const MINIMAL: &str = "
apiVersion: securityguard.io/v1alpha1
kind: SecurityGuard
metadata: {name: sg, namespace: prod, uid: uid-1, generation: 1}
spec:
  image: securityguard/api:1.0.0
  secrets:
    jwtSecret: {name: jwt, key: secret}
";
}
