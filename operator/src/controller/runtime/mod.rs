//! The runtime: the watches that fill the caches and trigger reconciles, and the kube-rs
//! `Controller` they feed (which `controller::run` drives).
//!
//! Every child kind is watched label-selected (`app.kubernetes.io/managed-by`) and cached with
//! its managedFields dropped; Jobs, volume claims and the pods of the API and datastores map to
//! their SecurityGuard by its instance label; every Secret's metadata is watched so that a
//! referenced Secret appearing or changing triggers the guards that refer to it.

mod monitoring;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use self::watches::{Changes, child_watch, pod_watch, secret_watch, selected_child_watch, watch_guards};
use super::read::Stores;
use super::read::cached::Remembered;
use super::read::dereference::referenced_secrets;
use super::read::monitoring_apis::Discovery;
use super::vocabulary::{INSTANCE_LABEL, backup_claim_selector};

/// How long a SecurityGuard's reconcile waits for more changes of its children (kube's
/// trailing-edge debounce): a guard's pods starting change a dozen times within seconds, and
/// one reconcile after the burst sees what a dozen would have.
const DEBOUNCE: Duration = Duration::from_secs(1);
use super::write::ledger::Ledger;
use crate::crd::SecurityGuard;
use crate::metrics::Metrics;
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// The change streams of everything but the SecurityGuards, each feeding the controller.
struct Streams {
    service_accounts: Changes<Remembered<ServiceAccount>>,
    config_maps: Changes<Remembered<ConfigMap>>,
    stateful_sets: Changes<Remembered<StatefulSet>>,
    services: Changes<Remembered<Service>>,
    network_policies: Changes<Remembered<NetworkPolicy>>,
    deployments: Changes<Remembered<Deployment>>,
    hpas: Changes<Remembered<HorizontalPodAutoscaler>>,
    pdbs: Changes<Remembered<PodDisruptionBudget>>,
    ingresses: Changes<Remembered<Ingress>>,
    role_bindings: Changes<Remembered<RoleBinding>>,
    cron_jobs: Changes<Remembered<CronJob>>,
    service_monitors: Changes<Remembered<ServiceMonitor>>,
    prometheus_rules: Changes<Remembered<PrometheusRule>>,
    jobs: Changes<Remembered<Job>>,
    volume_claims: Changes<Remembered<PersistentVolumeClaim>>,
    pods: Changes<PartialObjectMeta<Pod>>,
    secrets: Changes<PartialObjectMeta<Secret>>,
    definitions: Changes<CustomResourceDefinition>,
}

/// The watches, started, and the controller they feed, not yet running.
pub struct Wired {
    /// The controller over the SecurityGuards.
    pub controller: Controller<SecurityGuard>,
    /// The caches a reconcile reads.
    pub stores: Stores,
    /// Whether prometheus-operator's kinds are served.
    pub discovery: Discovery,
    /// What was last written to each child (emptied of a SecurityGuard when it is deleted).
    pub ledger: Arc<Ledger>,
}

/// Starts every watch (in `namespace`, or in all) and sets up the controller they feed,
/// reconciling `concurrency` SecurityGuards at once.
pub fn wire(client: &Client, namespace: Option<&str>, concurrency: u16, metrics: Arc<Metrics>) -> Wired {
    let (stores, streams, discovery) = watch_children(client, namespace);
    let ledger = Arc::new(Ledger::default());
    let (guards, guard_stream) = watch_guards(client, namespace, metrics, ledger.clone());
    Wired { controller: controller(guards, guard_stream, streams, concurrency), stores, discovery, ledger }
}

/// The controller over the SecurityGuards, triggered by every stream: owned children by their
/// owner reference, the rest by the mappers below.
fn controller(
    guards: Store<SecurityGuard>,
    guard_stream: Changes<SecurityGuard>,
    streams: Streams,
    concurrency: u16,
) -> Controller<SecurityGuard> {
    let secret_guards = guards.clone();
    let monitoring_guards = guards.clone();
    Controller::for_stream(guard_stream, guards)
        .with_config(ControllerConfig::default().concurrency(concurrency).debounce(DEBOUNCE))
        .owns_stream(streams.service_accounts)
        .owns_stream(streams.config_maps)
        .owns_stream(streams.stateful_sets)
        .owns_stream(streams.services)
        .owns_stream(streams.network_policies)
        .owns_stream(streams.deployments)
        .owns_stream(streams.hpas)
        .owns_stream(streams.pdbs)
        .owns_stream(streams.ingresses)
        .owns_stream(streams.role_bindings)
        .owns_stream(streams.cron_jobs)
        .owns_stream(streams.service_monitors)
        .owns_stream(streams.prometheus_rules)
        // Jobs of the CronJobs are owned by them, claims by nobody: both map by label.
        .watches_stream(streams.jobs, |job| guard_of_labelled(&job))
        .watches_stream(streams.volume_claims, |claim| guard_of_labelled(&claim))
        .watches_stream(streams.pods, |pod| guard_of_labelled(&pod))
        .watches_stream(streams.secrets, move |secret| guards_referencing(&secret_guards, &secret))
        // prometheus-operator installed or removed: the guards asking for monitoring follow.
        .watches_stream(streams.definitions, move |_| guards_monitoring(&monitoring_guards))
}

/// Starts the watches of everything but the SecurityGuards: the caches a reconcile reads, and
/// the streams that trigger reconciles.
fn watch_children(client: &Client, ns: Option<&str>) -> (Stores, Streams, Discovery) {
    let (service_accounts, sa_stream) = child_watch::<ServiceAccount>(client, ns);
    let (config_maps, cm_stream) = child_watch::<ConfigMap>(client, ns);
    let (stateful_sets, sts_stream) = child_watch::<StatefulSet>(client, ns);
    let (services, svc_stream) = child_watch::<Service>(client, ns);
    let (network_policies, np_stream) = child_watch::<NetworkPolicy>(client, ns);
    let (deployments, deploy_stream) = child_watch::<Deployment>(client, ns);
    let (hpas, hpa_stream) = child_watch::<HorizontalPodAutoscaler>(client, ns);
    let (pdbs, pdb_stream) = child_watch::<PodDisruptionBudget>(client, ns);
    let (ingresses, ing_stream) = child_watch::<Ingress>(client, ns);
    let (role_bindings, rb_stream) = child_watch::<RoleBinding>(client, ns);
    let (cron_jobs, cron_stream) = child_watch::<CronJob>(client, ns);
    let (jobs, job_stream) = child_watch::<Job>(client, ns);
    // The local backup tier's claims only: the datastores' data claims carry the managed-by label
    // too (their StatefulSet's template), but nothing reads them.
    let (volume_claims, pvc_stream) =
        selected_child_watch::<PersistentVolumeClaim>(client, ns, backup_claim_selector());
    // prometheus-operator's kinds: watched only while their definitions are installed.
    let (discovery, served, crd_stream) = monitoring::watch(client);
    let (service_monitors, sm_stream) =
        monitoring::lazy_child_watch::<ServiceMonitor>(client, ns, served.clone(), monitoring::service_monitors_served);
    let (prometheus_rules, pr_stream) =
        monitoring::lazy_child_watch::<PrometheusRule>(client, ns, served, monitoring::prometheus_rules_served);
    let (secrets, secret_stream) = secret_watch(client, ns);
    let stores = Stores {
        service_accounts,
        config_maps,
        secrets,
        stateful_sets,
        services,
        network_policies,
        deployments,
        hpas,
        pdbs,
        ingresses,
        role_bindings,
        cron_jobs,
        jobs,
        volume_claims,
        service_monitors,
        prometheus_rules,
    };
    let streams = Streams {
        service_accounts: sa_stream.boxed(),
        config_maps: cm_stream.boxed(),
        stateful_sets: sts_stream.boxed(),
        services: svc_stream.boxed(),
        network_policies: np_stream.boxed(),
        deployments: deploy_stream.boxed(),
        hpas: hpa_stream.boxed(),
        pdbs: pdb_stream.boxed(),
        ingresses: ing_stream.boxed(),
        role_bindings: rb_stream.boxed(),
        cron_jobs: cron_stream.boxed(),
        service_monitors: sm_stream.boxed(),
        prometheus_rules: pr_stream.boxed(),
        jobs: job_stream.boxed(),
        volume_claims: pvc_stream.boxed(),
        pods: pod_watch(client, ns),
        secrets: secret_stream.boxed(),
        definitions: crd_stream.boxed(),
    };
    (stores, streams, discovery)
}

/// The SecurityGuard named by an object's instance label, in its namespace.
fn guard_of_labelled<K: Resource>(object: &K) -> Option<ObjectRef<SecurityGuard>> {
    let name = object.labels().get(INSTANCE_LABEL)?;
    Some(ObjectRef::new(name).within(&object.namespace()?))
}

/// The SecurityGuards with `spec.monitoring.enabled`.
fn guards_monitoring(guards: &Store<SecurityGuard>) -> Vec<ObjectRef<SecurityGuard>> {
    guards.state().iter().filter(|g| g.spec.monitoring.enabled).map(|g| ObjectRef::from_obj(g.as_ref())).collect()
}

/// The SecurityGuards in the Secret's namespace that refer to it.
fn guards_referencing(
    guards: &Store<SecurityGuard>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<SecurityGuard>> {
    let name = secret.name_any();
    let namespace = secret.namespace();
    guards
        .state()
        .iter()
        .filter(|g| g.namespace() == namespace && referenced_secrets(g).contains(&name.as_str()))
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}
