//! What the managed PostgreSQL and Redis have in common: a one-replica StatefulSet with a data
//! volume that outlives it, and a ClusterIP Service.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Service, ServicePort,
    ServiceSpec, Volume, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::children::DatastoreObjects;
use crate::controller::build::meta::{labels, metadata};
use crate::controller::build::pod::{empty_dir, restricted_pod_security_context};
use crate::controller::vocabulary::{Component, DATA_VOLUME, ValidatedGuard, object_name, selector_labels};

/// Inputs that differ between PostgreSQL and Redis.
pub struct DatastoreParts {
    /// Which datastore.
    pub component: Component,
    /// Its TCP port.
    pub port: i32,
    /// Its container (with the data volume mounted).
    pub container: Container,
    /// Containers beside it (PostgreSQL's WAL archiver).
    pub sidecars: Vec<Container>,
    /// Volumes besides the data and scratch ones (the WAL archiver's encryption keys).
    pub volumes: Vec<Volume>,
    /// Service ports besides the datastore's own (the WAL archiver's metrics).
    pub extra_ports: Vec<ServicePort>,
    /// Pods: 1, or 0 while a point-in-time restore replaces the data.
    pub replicas: i32,
    /// User the container runs as.
    pub uid: i64,
    /// Size of the data volume.
    pub storage: Quantity,
    /// StorageClass of the data volume.
    pub storage_class_name: Option<String>,
    /// Writable scratch directories (emptyDir volumes) by volume name.
    pub scratch_volumes: Vec<&'static str>,
}

/// The StatefulSet and Service of a managed datastore.
pub fn objects(guard: &ValidatedGuard, parts: DatastoreParts) -> DatastoreObjects {
    let component = parts.component;
    let name = object_name(&guard.name, component);
    let selector = selector_labels(&guard.name, component);
    let mut volumes: Vec<Volume> = parts.scratch_volumes.iter().map(|v| empty_dir(v)).chain(parts.volumes).collect();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut containers = vec![parts.container];
    containers.extend(parts.sidecars);
    let mut ports = vec![ServicePort {
        name: Some(component.as_str().to_owned()),
        port: parts.port,
        target_port: Some(IntOrString::Int(parts.port)),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }];
    ports.extend(parts.extra_ports);

    let stateful_set = StatefulSet {
        metadata: metadata(guard, component, name.clone()),
        spec: Some(StatefulSetSpec {
            replicas: Some(parts.replicas),
            service_name: Some(name.clone()),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() },
            // The data stays when the SecurityGuard or the StatefulSet goes away.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".to_owned()),
                when_scaled: Some("Retain".to_owned()),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(guard, component)), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(restricted_pod_security_context(parts.uid)),
                    termination_grace_period_seconds: Some(60),
                    containers,
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![data_claim(guard, component, parts.storage_class_name, parts.storage)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };

    let service = Service {
        metadata: metadata(guard, component, name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    DatastoreObjects { stateful_set, service }
}

/// The claim template of the data volume.
fn data_claim(
    guard: &ValidatedGuard,
    component: Component,
    storage_class_name: Option<String>,
    storage: Quantity,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(labels(guard, component)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_owned(), storage)].into()),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
