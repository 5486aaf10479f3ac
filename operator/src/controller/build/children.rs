//! The set of children of one SecurityGuard, as built ([`Prepared`]) and as applied
//! ([`Applied`]).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Marker: objects built, not yet sent.
#[derive(Debug)]
pub struct Prepared;
/// Marker: objects as the API server accepted them.
#[derive(Debug)]
pub struct Applied;

/// Every child object of one SecurityGuard. `Prepared` from [`super::build`], `Applied` from
/// `write::apply`; status is derived only from the applied set.
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
    /// The threat-feed sync CronJob, with `spec.threatFeeds`.
    pub threat_feeds: Option<CronJob>,
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

/// The generated-credentials Secret, before its passwords are drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsSecret {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret.
    pub namespace: String,
    /// Labels of the Secret.
    pub labels: BTreeMap<String, String>,
    /// The keys to fill with a password each.
    pub keys: Vec<&'static str>,
    /// The StatefulSets whose data these passwords open.
    pub protects: Vec<String>,
}

impl CredentialsSecret {
    /// The Secret with a fresh password (from `password`) in each key.
    pub fn with_passwords(&self, mut password: impl FnMut() -> String) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(self.keys.iter().map(|k| ((*k).to_owned(), ByteString(password().into_bytes()))).collect()),
            ..Secret::default()
        }
    }
}
