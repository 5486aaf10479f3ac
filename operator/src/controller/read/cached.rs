//! What the watch caches keep of each child: [`Remembered`], its identity, a fingerprint of its
//! labels, annotations and owners, the few labels and annotations a reconcile reads, and of its
//! spec and status only the fields a reconcile reads. Nothing in it is sized by the kind
//! (`size_of::<Deployment>()` is 2.5 KiB with every field empty): whether a child still holds
//! what the operator asks for is known from the write ledger (`write::ledger`), the object's
//! generation or resourceVersion and the metadata fingerprint, and the object is read whole
//! only when those say it changed.

use std::borrow::Cow;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobStatus};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Resource;
use kube::api::{ObjectMeta, PartialObjectMeta};
use kube::runtime::watcher;
use serde::Serialize;

use crate::controller::vocabulary::{
    CREDENTIAL_KEYS_ANNOTATION, INSTANCE_LABEL, JOB_KIND_LABEL, MANAGED_BY_LABEL, REQUEST_LABEL, REVISION_ANNOTATION,
};
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

/// A kind of child as the operator caches it.
pub trait Cached: Resource<DynamicType = ()> + Sized {
    /// What tells a change of this kind.
    const BASIS: Basis;

    /// The labels a reconcile reads from a cached child of this kind. Most kinds: none (they
    /// are found through their owner reference, and drift is told by the metadata
    /// fingerprint), which spares a map per object.
    const LABELS: &'static [&'static str] = &[];

    /// The annotations a reconcile reads from a cached child of this kind.
    const ANNOTATIONS: &'static [&'static str] = &[];

    /// The fields of spec and status a reconcile reads.
    type Fields: Clone + Debug + Default + Send + Sync + 'static;

    /// Takes those fields out of a whole object.
    fn fields(self) -> Self::Fields;

    /// An object holding `metadata` and `fields` only: what a reader of the cache gets.
    fn assemble(metadata: ObjectMeta, fields: Self::Fields) -> Self;
}

/// What the operator remembers of one child of kind `K`.
#[derive(Clone, Debug)]
pub struct Remembered<K: Cached> {
    /// Identity (name, namespace, uid, resourceVersion, generation, timestamps), the labels
    /// and annotations a reconcile reads ([`Cached::LABELS`], [`Cached::ANNOTATIONS`]) and the
    /// controller's owner reference.
    pub metadata: ObjectMeta,
    /// [`metadata_fingerprint`] of the whole object's metadata.
    pub fingerprint: u64,
    /// The fields of spec and status a reconcile reads.
    pub fields: K::Fields,
}

impl<K: Cached> Remembered<K> {
    /// What to remember of `object`.
    pub fn of(mut object: K) -> Self {
        let metadata = std::mem::take(object.meta_mut());
        let fingerprint = metadata_fingerprint(&metadata);
        Self { metadata: slim::<K>(metadata), fingerprint, fields: object.fields() }
    }

    /// The object as remembered: the kept metadata and fields, nothing else.
    pub fn object(&self) -> K {
        K::assemble(self.metadata.clone(), self.fields.clone())
    }

    /// The counter named by [`Cached::BASIS`], as the object held it when last seen.
    pub fn version(&self) -> Option<Version> {
        Version::of::<K>(&self.metadata)
    }
}

/// A remembered child is a resource of its kind: it has its kind's name, URL and scope, so the
/// caches, triggers and object references of the runtime work on it unchanged.
impl<K: Cached> Resource for Remembered<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<K: Cached> From<K> for Remembered<K> {
    fn from(object: K) -> Self {
        Self::of(object)
    }
}

/// Read as the whole object it remembers (the runtime's triggers ask that a watched kind can be
/// read from the API).
impl<'de, K: Cached + serde::Deserialize<'de>> serde::Deserialize<'de> for Remembered<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(Remembered::of)
    }
}

/// A watch event of whole objects, as remembered.
pub fn remember<K: Cached>(event: watcher::Event<K>) -> watcher::Event<Remembered<K>> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(Remembered::of(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(Remembered::of(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(Remembered::of(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// The version of an object that tells whether it changed (see [`Basis`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `metadata.generation`.
    Generation(i64),
    /// A hash of `metadata.resourceVersion` (opaque: only equality means anything).
    ResourceVersion(u64),
}

impl Version {
    /// The version of `metadata`, of an object of kind `K`.
    pub fn of<K: Cached>(metadata: &ObjectMeta) -> Option<Self> {
        match K::BASIS {
            Basis::Generation => metadata.generation.map(Version::Generation),
            Basis::ResourceVersion => {
                metadata.resource_version.as_ref().map(|v| Version::ResourceVersion(fingerprint(v)))
            }
        }
    }
}

/// A hash of the labels, annotations and owners of an object, but for the annotation the
/// Deployment controller keeps moving (`deployment.kubernetes.io/revision`): an edit of metadata
/// bumps no generation, so this tells it.
pub fn metadata_fingerprint(metadata: &ObjectMeta) -> u64 {
    let annotations: std::collections::BTreeMap<_, _> =
        metadata.annotations.iter().flatten().filter(|(k, _)| k.as_str() != REVISION_ANNOTATION).collect();
    let labels: std::collections::BTreeMap<_, _> = metadata.labels.iter().flatten().collect();
    fingerprint(&(labels, annotations, metadata.owner_references.as_deref().unwrap_or_default()))
}

/// A stable 64-bit hash of a value's JSON form.
pub fn fingerprint<T: Serialize + ?Sized>(value: &T) -> u64 {
    use sha2::Digest;
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

/// The metadata a reconcile reads: identity, the labels and annotations it names, the
/// controller's owner reference.
fn slim<K: Cached>(metadata: ObjectMeta) -> ObjectMeta {
    let keep = |map: Option<std::collections::BTreeMap<String, String>>, keys: &[&str]| {
        let kept: std::collections::BTreeMap<_, _> =
            map.into_iter().flatten().filter(|(k, _)| keys.contains(&k.as_str())).collect();
        (!kept.is_empty()).then_some(kept)
    };
    let owners: Vec<_> =
        metadata.owner_references.into_iter().flatten().filter(|o| o.controller == Some(true)).collect();
    ObjectMeta {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resource_version: metadata.resource_version,
        generation: metadata.generation,
        creation_timestamp: metadata.creation_timestamp,
        deletion_timestamp: metadata.deletion_timestamp,
        labels: keep(metadata.labels, K::LABELS),
        annotations: keep(metadata.annotations, K::ANNOTATIONS),
        owner_references: (!owners.is_empty()).then_some(owners),
        ..ObjectMeta::default()
    }
}

/// `spec.replicas` and the status of a workload.
#[derive(Clone, Debug, Default)]
pub struct Scaled<S> {
    /// `spec.replicas`.
    pub replicas: Option<i32>,
    /// The status, without its conditions.
    pub status: Option<S>,
}

/// Deployments: `spec.replicas` (what a restore records) and the status (rollout and
/// readiness).
impl Cached for Deployment {
    const BASIS: Basis = Basis::Generation;
    const ANNOTATIONS: &'static [&'static str] = &[REVISION_ANNOTATION];
    type Fields = Scaled<DeploymentStatus>;
    fn fields(self) -> Self::Fields {
        let status = self.status.map(|s| DeploymentStatus { conditions: None, ..s });
        Scaled { replicas: self.spec.and_then(|s| s.replicas), status }
    }
    fn assemble(metadata: ObjectMeta, fields: Self::Fields) -> Self {
        let spec = DeploymentSpec { replicas: fields.replicas, ..DeploymentSpec::default() };
        Deployment { metadata, spec: Some(spec), status: fields.status }
    }
}

/// StatefulSets: `spec.replicas` and the status (readiness on the current revision).
impl Cached for StatefulSet {
    const BASIS: Basis = Basis::Generation;
    type Fields = Scaled<StatefulSetStatus>;
    fn fields(self) -> Self::Fields {
        let status = self.status.map(|s| StatefulSetStatus { conditions: None, ..s });
        Scaled { replicas: self.spec.and_then(|s| s.replicas), status }
    }
    fn assemble(metadata: ObjectMeta, fields: Self::Fields) -> Self {
        let spec = StatefulSetSpec { replicas: fields.replicas, ..StatefulSetSpec::default() };
        StatefulSet { metadata, spec: Some(spec), status: fields.status }
    }
}

/// The bounds of an autoscaler.
#[derive(Clone, Debug, Default)]
pub struct Bounds {
    /// `spec.minReplicas`.
    pub min_replicas: Option<i32>,
    /// `spec.maxReplicas`.
    pub max_replicas: i32,
}

/// Autoscalers: their bounds (what a restore records).
impl Cached for HorizontalPodAutoscaler {
    const BASIS: Basis = Basis::Generation;
    type Fields = Option<Bounds>;
    fn fields(self) -> Self::Fields {
        self.spec.map(|s| Bounds { min_replicas: s.min_replicas, max_replicas: s.max_replicas })
    }
    fn assemble(metadata: ObjectMeta, fields: Self::Fields) -> Self {
        let spec = fields.map(|b| HorizontalPodAutoscalerSpec {
            min_replicas: b.min_replicas,
            max_replicas: b.max_replicas,
            ..HorizontalPodAutoscalerSpec::default()
        });
        HorizontalPodAutoscaler { metadata, spec, status: None }
    }
}

/// Jobs: labels (whose, and which Job) and status (whether and when they finished). Created
/// once, never compared.
impl Cached for Job {
    const BASIS: Basis = Basis::Generation;
    const LABELS: &'static [&'static str] = &[INSTANCE_LABEL, MANAGED_BY_LABEL, JOB_KIND_LABEL, REQUEST_LABEL];
    type Fields = Option<JobStatus>;
    fn fields(self) -> Self::Fields {
        self.status
    }
    fn assemble(metadata: ObjectMeta, status: Self::Fields) -> Self {
        Job { metadata, spec: None, status }
    }
}

/// Kinds of which only identity is kept: `$kind` changes by `$basis`, built by `$empty`.
macro_rules! identity_only {
    ($($kind:ty => $basis:ident, $empty:expr;)*) => {$(
        impl Cached for $kind {
            const BASIS: Basis = Basis::$basis;
            type Fields = ();
            fn fields(self) {}
            fn assemble(metadata: ObjectMeta, (): ()) -> Self {
                let empty: fn(ObjectMeta) -> Self = $empty;
                empty(metadata)
            }
        }
    )*};
}

identity_only! {
    CronJob => Generation, |metadata| CronJob { metadata, ..CronJob::default() };
    PodDisruptionBudget => Generation, |metadata| PodDisruptionBudget { metadata, ..PodDisruptionBudget::default() };
    ConfigMap => ResourceVersion, |metadata| ConfigMap { metadata, ..ConfigMap::default() };
    Service => ResourceVersion, |metadata| Service { metadata, ..Service::default() };
    ServiceAccount => ResourceVersion, |metadata| ServiceAccount { metadata, ..ServiceAccount::default() };
    NetworkPolicy => ResourceVersion, |metadata| NetworkPolicy { metadata, ..NetworkPolicy::default() };
    Ingress => ResourceVersion, |metadata| Ingress { metadata, ..Ingress::default() };
    RoleBinding => ResourceVersion, |metadata| RoleBinding { metadata, ..RoleBinding::default() };
    ServiceMonitor => Generation, |metadata| ServiceMonitor { metadata, spec: Default::default() };
    PrometheusRule => Generation, |metadata| PrometheusRule { metadata, spec: Default::default() };
}

/// Volume claims (the local backup tier's): identity and whose they are (claims have no owner).
impl Cached for PersistentVolumeClaim {
    const BASIS: Basis = Basis::ResourceVersion;
    const LABELS: &'static [&'static str] = &[INSTANCE_LABEL];
    type Fields = ();
    fn fields(self) {}
    fn assemble(metadata: ObjectMeta, (): ()) -> Self {
        PersistentVolumeClaim { metadata, ..PersistentVolumeClaim::default() }
    }
}

/// SecurityGuards are cached whole, but for managedFields and kubectl's copy of the spec.
pub fn prune_guard(guard: &mut SecurityGuard) {
    guard.metadata.managed_fields = None;
    if let Some(annotations) = guard.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// Of every Secret, what tells which it is, whether it changed and which keys of a generated
/// one the operator wrote: name, namespace, uid, resourceVersion and the credential-keys
/// annotation. Labels, owners and other annotations (Helm's, kubectl's copy) are dropped.
pub fn prune_secret(secret: &mut PartialObjectMeta<Secret>) {
    let metadata = std::mem::take(&mut secret.metadata);
    let annotations = metadata.annotations.and_then(|mut a| {
        let keys = a.remove(CREDENTIAL_KEYS_ANNOTATION)?;
        Some([(CREDENTIAL_KEYS_ANNOTATION.to_owned(), keys)].into())
    });
    secret.metadata = ObjectMeta {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resource_version: metadata.resource_version,
        annotations,
        ..ObjectMeta::default()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::ResourceExt;

    fn owner(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference { uid: uid.into(), controller: Some(controller), ..OwnerReference::default() }
    }

    #[test]
    fn a_remembered_deployment_keeps_its_identity_replicas_rollout_and_read_labels_only() {
        let d = Deployment {
            metadata: ObjectMeta {
                name: Some("sg-api".into()),
                generation: Some(4),
                resource_version: Some("17".into()),
                labels: Some(
                    [("app.kubernetes.io/instance".into(), "sg".into()), ("team".into(), "payments".into())].into(),
                ),
                annotations: Some(
                    [
                        (LAST_APPLIED.into(), "{...}".into()),
                        (REVISION_ANNOTATION.into(), "3".into()),
                        ("note".into(), "x".into()),
                    ]
                    .into(),
                ),
                owner_references: Some(vec![owner("guard", true), owner("other", false)]),
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
        let whole_fingerprint = metadata_fingerprint(&d.metadata);
        let remembered = Remembered::of(d);
        assert_eq!(remembered.fingerprint, whole_fingerprint, "the fingerprint is of the whole metadata");
        let seen = remembered.object();
        assert_eq!(seen.spec.as_ref().and_then(|s| s.replicas), Some(3));
        assert!(seen.spec.as_ref().is_some_and(|s| s.template.spec.is_none()), "no pod template");
        assert_eq!(seen.status.as_ref().and_then(|s| s.ready_replicas), Some(2));
        assert!(seen.metadata.managed_fields.is_none());
        assert_eq!(seen.annotations().keys().collect::<Vec<_>>(), [REVISION_ANNOTATION]);
        assert!(seen.labels().is_empty(), "a Deployment is found by its owner: no label kept");
        assert_eq!(seen.owner_references().iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(), ["guard"]);
        assert_eq!(remembered.version(), Some(Version::Generation(4)), "a Deployment changes by generation");
    }

    #[test]
    fn a_remembered_job_keeps_whose_and_which_job_it_is() {
        let job = Job {
            metadata: ObjectMeta {
                name: Some("sg-backup-1".into()),
                labels: Some(
                    [
                        (INSTANCE_LABEL.into(), "sg".into()),
                        (JOB_KIND_LABEL.into(), "backup".into()),
                        ("batch.kubernetes.io/job-name".into(), "sg-backup-1".into()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..Job::default()
        };
        let seen = Remembered::of(job).object();
        assert_eq!(seen.labels().keys().collect::<Vec<_>>(), [INSTANCE_LABEL, JOB_KIND_LABEL]);
    }

    #[test]
    fn a_config_map_changes_by_resource_version_and_keeps_no_data() {
        let cm = ConfigMap {
            metadata: ObjectMeta { resource_version: Some("9".into()), generation: None, ..ObjectMeta::default() },
            data: Some([("dashboard.json".into(), "x".repeat(10_000))].into()),
            ..ConfigMap::default()
        };
        let remembered = Remembered::of(cm);
        assert!(remembered.object().data.is_none());
        assert_eq!(remembered.version(), Some(Version::ResourceVersion(fingerprint("9"))));
    }

    #[test]
    fn the_metadata_fingerprint_ignores_the_deployment_revision_only() {
        let base = ObjectMeta { labels: Some([("a".into(), "1".into())].into()), ..ObjectMeta::default() };
        let fp = metadata_fingerprint(&base);
        let revised =
            ObjectMeta { annotations: Some([(REVISION_ANNOTATION.into(), "2".into())].into()), ..base.clone() };
        assert_eq!(metadata_fingerprint(&revised), fp);
        let relabelled = ObjectMeta { labels: Some([("a".into(), "2".into())].into()), ..base.clone() };
        assert_ne!(metadata_fingerprint(&relabelled), fp);
        let owned = ObjectMeta { owner_references: Some(vec![owner("x", true)]), ..base };
        assert_ne!(metadata_fingerprint(&owned), fp);
    }

    #[test]
    fn a_secret_keeps_its_identity_and_the_credential_keys_only() {
        let mut secret = PartialObjectMeta::<Secret> {
            metadata: ObjectMeta {
                name: Some("sg-credentials".into()),
                resource_version: Some("4".into()),
                labels: Some([("owner".into(), "helm".into())].into()),
                annotations: Some(
                    [(CREDENTIAL_KEYS_ANNOTATION.into(), "a,b".into()), (LAST_APPLIED.into(), "{}".into())].into(),
                ),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        };
        prune_secret(&mut secret);
        assert_eq!(secret.name_any(), "sg-credentials");
        assert_eq!(secret.resource_version().as_deref(), Some("4"));
        assert!(secret.metadata.labels.is_none());
        assert_eq!(secret.annotations().keys().collect::<Vec<_>>(), [CREDENTIAL_KEYS_ANNOTATION]);
    }
}
