//! What the watch caches keep of each kind: the identity and metadata of every object, and of its
//! spec and status only the fields a reconcile reads. Whole specs (pod templates, claim
//! templates, rule groups, dashboards) are not kept: whether a child still holds what the
//! operator asks for is known from the write ledger (`write::ledger`) and the object's
//! generation or resourceVersion, and the object is read whole only when those say it changed.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef};
use kube::Resource;
use kube::api::PartialObjectMeta;

use crate::crd::SecurityGuard;
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Annotation `kubectl apply` writes: a second copy of the whole object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Which counter tells that someone else changed an object since the operator last wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `metadata.generation`: kinds whose status changes all the time (Deployments, autoscalers,
    /// ...); the API server bumps the generation on every change of the spec, and only then.
    Generation,
    /// `metadata.resourceVersion`: kinds without a busy status; any write changes it.
    ResourceVersion,
}

/// A kind as the operator caches it.
pub trait Cached: Resource<DynamicType = ()> {
    /// What tells a change of this kind.
    const BASIS: Basis;

    /// Drops what no reconcile reads. `metadata` (labels, annotations, owners, generation,
    /// resourceVersion, uid) is always kept, but for managedFields and kubectl's copy of the
    /// object.
    fn prune(&mut self) {
        let meta = self.meta_mut();
        meta.managed_fields = None;
        if let Some(annotations) = meta.annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
        self.prune_body();
    }

    /// Drops the parts of spec and status no reconcile reads.
    fn prune_body(&mut self);

    /// The counter named by [`Self::BASIS`], as the object holds it now.
    fn version(&self) -> Option<String> {
        match Self::BASIS {
            Basis::Generation => self.meta().generation.map(|g| g.to_string()),
            Basis::ResourceVersion => self.meta().resource_version.clone(),
        }
    }
}

/// Deployments: `spec.replicas` (what a restore records) and the status (rollout and
/// readiness).
impl Cached for Deployment {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        let replicas = self.spec.as_ref().and_then(|s| s.replicas);
        self.spec = Some(DeploymentSpec { replicas, ..DeploymentSpec::default() });
        if let Some(status) = self.status.as_mut() {
            status.conditions = None;
        }
    }
}

/// StatefulSets: `spec.replicas` and the status (readiness on the current revision).
impl Cached for StatefulSet {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        let replicas = self.spec.as_ref().and_then(|s| s.replicas);
        self.spec = Some(StatefulSetSpec { replicas, ..StatefulSetSpec::default() });
        if let Some(status) = self.status.as_mut() {
            status.conditions = None;
        }
    }
}

/// Autoscalers: their bounds (what a restore records).
impl Cached for HorizontalPodAutoscaler {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        self.spec = self.spec.take().map(|s| HorizontalPodAutoscalerSpec {
            min_replicas: s.min_replicas,
            max_replicas: s.max_replicas,
            ..HorizontalPodAutoscalerSpec::default()
        });
        self.status = None;
    }
}

/// Jobs: labels and status (whether and when they finished). Created once, never compared.
impl Cached for Job {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        self.spec = None;
    }
}

/// CronJobs: identity only.
impl Cached for CronJob {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

/// PodDisruptionBudgets: identity only.
impl Cached for PodDisruptionBudget {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

/// ConfigMaps: identity only (the dashboards are large).
impl Cached for ConfigMap {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.data = None;
        self.binary_data = None;
    }
}

/// Services: identity only.
impl Cached for Service {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

/// ServiceAccounts: identity only.
impl Cached for ServiceAccount {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.secrets = None;
        self.image_pull_secrets = None;
    }
}

/// NetworkPolicies: identity only.
impl Cached for NetworkPolicy {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.spec = None;
    }
}

/// Ingresses: identity only.
impl Cached for Ingress {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

/// RoleBindings: identity only.
impl Cached for RoleBinding {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.subjects = None;
        self.role_ref = RoleRef::default();
    }
}

/// Volume claims (the data volumes of the StatefulSets and the local backup tier): identity
/// only.
impl Cached for PersistentVolumeClaim {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

/// ServiceMonitors: identity only.
impl Cached for ServiceMonitor {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        self.spec = Default::default();
    }
}

/// PrometheusRules: identity only (the rule groups are large).
impl Cached for PrometheusRule {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {
        self.spec = Default::default();
    }
}

/// SecurityGuards: whole (but for kubectl's copy of the spec).
impl Cached for SecurityGuard {
    const BASIS: Basis = Basis::Generation;
    fn prune_body(&mut self) {}
}

/// Secret metadata: already without data.
impl Cached for PartialObjectMeta<Secret> {
    const BASIS: Basis = Basis::ResourceVersion;
    fn prune_body(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use kube::ResourceExt;
    use kube::api::ObjectMeta;

    #[test]
    fn a_cached_deployment_keeps_its_identity_replicas_and_rollout_only() {
        let mut d = Deployment {
            metadata: ObjectMeta {
                name: Some("sg-api".into()),
                generation: Some(4),
                resource_version: Some("17".into()),
                labels: Some([("app.kubernetes.io/instance".into(), "sg".into())].into()),
                annotations: Some([(LAST_APPLIED.into(), "{...}".into()), ("keep".into(), "me".into())].into()),
                managed_fields: Some(vec![Default::default()]),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        containers: vec![Container { name: "api".into(), ..Container::default() }],
                        ..PodSpec::default()
                    }),
                    ..PodTemplateSpec::default()
                },
                ..DeploymentSpec::default()
            }),
            status: Some(DeploymentStatus { ready_replicas: Some(2), ..DeploymentStatus::default() }),
        };
        d.prune();
        assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));
        assert!(d.spec.as_ref().is_some_and(|s| s.template.spec.is_none()), "no pod template");
        assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(2));
        assert!(d.metadata.managed_fields.is_none());
        assert_eq!(d.annotations().keys().collect::<Vec<_>>(), ["keep"]);
        assert_eq!(d.labels().len(), 1);
        assert_eq!(d.version().as_deref(), Some("4"), "a Deployment changes by generation");
    }

    #[test]
    fn a_config_map_changes_by_resource_version_and_keeps_no_data() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta { resource_version: Some("9".into()), generation: None, ..ObjectMeta::default() },
            data: Some([("dashboard.json".into(), "x".repeat(10_000))].into()),
            ..ConfigMap::default()
        };
        cm.prune();
        assert!(cm.data.is_none());
        assert_eq!(cm.version().as_deref(), Some("9"));
    }
}
