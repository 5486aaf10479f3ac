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

use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Caches of every kind of child, filled by the controller's watches (label-selected on
/// `app.kubernetes.io/managed-by`), plus the metadata of every Secret.
#[derive(Clone)]
pub struct Stores {
    /// ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// Secret metadata (all Secrets: referenced ones are not ours).
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// StatefulSets.
    pub stateful_sets: Store<StatefulSet>,
    /// Services.
    pub services: Store<Service>,
    /// NetworkPolicies.
    pub network_policies: Store<NetworkPolicy>,
    /// Deployments.
    pub deployments: Store<Deployment>,
    /// HorizontalPodAutoscalers.
    pub hpas: Store<HorizontalPodAutoscaler>,
    /// PodDisruptionBudgets.
    pub pdbs: Store<PodDisruptionBudget>,
    /// Ingresses.
    pub ingresses: Store<Ingress>,
    /// RoleBindings of the backup pods.
    pub role_bindings: Store<RoleBinding>,
    /// CronJobs.
    pub cron_jobs: Store<CronJob>,
    /// Jobs (one-off and those of the CronJobs).
    pub jobs: Store<Job>,
    /// Volume claims (the local backup tier).
    pub volume_claims: Store<PersistentVolumeClaim>,
    /// ServiceMonitors (empty while prometheus-operator's definitions are missing).
    pub service_monitors: Store<ServiceMonitor>,
    /// PrometheusRules (empty while prometheus-operator's definitions are missing).
    pub prometheus_rules: Store<PrometheusRule>,
}
