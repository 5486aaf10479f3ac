//! The watch caches a reconcile reads (filled by the runtime's watches).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::Store;

use super::cached::Remembered;
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Caches of every kind of child (what is remembered of each: `read::cached`), filled by the controller's watches (label-selected on
/// `app.kubernetes.io/managed-by`), plus the metadata of every Secret.
#[derive(Clone)]
pub struct Stores {
    /// ServiceAccounts.
    pub service_accounts: Store<Remembered<ServiceAccount>>,
    /// ConfigMaps.
    pub config_maps: Store<Remembered<ConfigMap>>,
    /// Secret metadata (all Secrets: referenced ones are not ours).
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// StatefulSets.
    pub stateful_sets: Store<Remembered<StatefulSet>>,
    /// Services.
    pub services: Store<Remembered<Service>>,
    /// NetworkPolicies.
    pub network_policies: Store<Remembered<NetworkPolicy>>,
    /// Deployments.
    pub deployments: Store<Remembered<Deployment>>,
    /// HorizontalPodAutoscalers.
    pub hpas: Store<Remembered<HorizontalPodAutoscaler>>,
    /// PodDisruptionBudgets.
    pub pdbs: Store<Remembered<PodDisruptionBudget>>,
    /// Ingresses.
    pub ingresses: Store<Remembered<Ingress>>,
    /// RoleBindings of the backup pods.
    pub role_bindings: Store<Remembered<RoleBinding>>,
    /// CronJobs.
    pub cron_jobs: Store<Remembered<CronJob>>,
    /// Jobs (one-off and those of the CronJobs).
    pub jobs: Store<Remembered<Job>>,
    /// Volume claims (the local backup tier).
    pub volume_claims: Store<Remembered<PersistentVolumeClaim>>,
    /// ServiceMonitors (empty while prometheus-operator's definitions are missing).
    pub service_monitors: Store<Remembered<ServiceMonitor>>,
    /// PrometheusRules (empty while prometheus-operator's definitions are missing).
    pub prometheus_rules: Store<Remembered<PrometheusRule>>,
}
