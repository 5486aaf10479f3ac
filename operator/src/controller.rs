//! The SecurityGuard controller: a reconcile is five steps, one module each.
//!
//! dereference (read referenced Secrets) → validate (pure) → build (pure, every desired object)
//! → apply (server-side apply, delete what is no longer asked for) → status (from what was
//! applied).

pub mod apply;
pub mod build;
pub mod dereference;
pub mod jobs;
pub mod monitoring_apis;
pub mod observe;
pub mod pods;
pub mod restore;
pub mod schedule;
pub mod status;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, ObjectReference, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::jiff::Timestamp;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use self::apply::{Applier, Stores, publish};
use self::build::backup_job::{JobKind, JobRequest};
use crate::crd::SecurityGuardStatus;
use crate::crd::{CONDITION_DEGRADED, RestorePhase, SecurityGuard};
use crate::metrics::{GuardLabels, Metrics};
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Shared state of every reconcile.
pub struct Context {
    /// Kubernetes client (requests counted by the metrics layer).
    pub client: Client,
    /// Caches of the children.
    pub stores: Stores,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Time between reconciles of an unchanged SecurityGuard.
    pub resync: Duration,
    /// Image of the backup and restore pods.
    pub job_image: String,
    /// Whether prometheus-operator's kinds are served.
    pub discovery: monitoring_apis::Discovery,
}

/// A reconcile that failed, naming the SecurityGuard and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a referenced object failed.
    #[error("SecurityGuard {guard}: {source}")]
    Dereference {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: dereference::Error,
    },
    /// Observing the backup Jobs or the API pods failed.
    #[error("SecurityGuard {guard}: {source}")]
    Observe {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: observe::Error,
    },
    /// Writing a child failed.
    #[error("SecurityGuard {guard}: {source}")]
    Apply {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: apply::Error,
    },
    /// Writing the status failed.
    #[error("SecurityGuard {guard}: writing status: {}", describe(.source))]
    Status {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: kube::Error,
    },
}

/// A Kubernetes client error in one line: the API server's message and code, not the Debug
/// dump of its Status.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => other.to_string(),
    }
}

impl Error {
    /// What failed, without the SecurityGuard's name (for its own status and Events).
    pub fn step_message(&self) -> String {
        match self {
            Self::Dereference { source, .. } => source.to_string(),
            Self::Observe { source, .. } => source.to_string(),
            Self::Apply { source, .. } => source.to_string(),
            Self::Status { source, .. } => format!("writing status: {}", describe(source)),
        }
    }

    /// Short category: the metric label and the Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Dereference { .. } | Self::Observe { .. } => "ReadFailed",
            Self::Apply { .. } => "ApplyFailed",
            Self::Status { .. } => "StatusFailed",
        }
    }
}

/// Reconciles one SecurityGuard.
pub async fn reconcile(guard: Arc<SecurityGuard>, ctx: Arc<Context>) -> Result<Action, Error> {
    let mut timer = ctx.metrics.reconcile_timer();
    let reference = guard.object_ref(&());
    let result = reconcile_steps(&guard, &ctx, &reference).await;
    match &result {
        Ok(_) => timer.set_result("success"),
        Err(error) => {
            timer.set_result(error.category());
            tracing::warn!(%error, "reconcile failed");
            let message = error.step_message();
            report_degraded(&ctx, &guard, &reference, error.category(), &message).await;
        }
    }
    result
}

async fn reconcile_steps(guard: &SecurityGuard, ctx: &Context, reference: &ObjectReference) -> Result<Action, Error> {
    let key = format!("{}/{}", guard.namespace().unwrap_or_default(), guard.name_any());
    if guard.spec.paused {
        let status = status::paused(guard, Timestamp::now());
        if status::write(&ctx.client, guard, status).await.map_err(|source| Error::Status { guard: key, source })? {
            publish(
                &ctx.recorder,
                reference,
                EventType::Normal,
                "Paused",
                "Reconcile",
                "Reconciliation paused by spec.paused".into(),
            )
            .await;
        }
        return Ok(Action::await_change());
    }

    let refs = dereference::dereference(&ctx.client, guard)
        .await
        .map_err(|source| Error::Dereference { guard: key.clone(), source })?;
    let validated = match validate::validate(guard, &refs) {
        Ok(v) => v,
        Err(invalid) => {
            // Nothing can work until the spec or a Secret changes; both are watched.
            report_degraded(ctx, guard, reference, "InvalidReference", &invalid.to_string()).await;
            return Ok(Action::await_change());
        }
    };
    let now = Timestamp::now();
    // Backups and restore: observe, advance the restore, decide how the guard runs meanwhile.
    let observed = observe::observe(&ctx.client, &ctx.stores, guard, &validated, now)
        .await
        .map_err(|source| Error::Observe { guard: key.clone(), source })?;
    let previous = guard.status.as_ref();
    let plan = restore::plan(&guard.spec, previous.and_then(|s| s.restore.as_ref()), &observed.restore);
    let mut validated = validated;
    validated.directives = restore::Directives { job_image: ctx.job_image.clone(), ..plan.directives.clone() };
    if validated.spec.monitoring.enabled {
        validated.monitoring_apis = ctx.discovery.observe().await;
    }
    let backup_request = on_demand_backup(guard, plan.active());
    if let Some(request_id) = &backup_request {
        validated.directives.jobs.push(JobRequest::Backup { request_id: request_id.clone() });
    }

    let prepared = build::build(&validated);
    let applier = Applier {
        client: &ctx.client,
        stores: &ctx.stores,
        recorder: &ctx.recorder,
        reference,
        changes: Default::default(),
    };
    let applied = applier.apply(&validated, prepared).await;
    applier.publish_changes().await;
    let applied = applied.map_err(|source| Error::Apply { guard: key.clone(), source })?;

    let backup = validated.spec.backup.as_ref().map(|_| {
        status::backup_status(previous.and_then(|s| s.backup.as_ref()), &observed.finished, backup_request.as_deref())
    });
    publish_backup_events(ctx, reference, &observed.finished).await;
    publish_restore_events(ctx, reference, &plan).await;
    let failing = pods::newly_failing(
        previous.and_then(|s| s.condition(CONDITION_DEGRADED)),
        &status::shown_pod_problems(&validated, &applied, &observed.pods),
    )
    .iter()
    .map(ToString::to_string)
    .collect::<Vec<_>>();
    let new_status =
        status::from_applied(guard, &validated, &applied, &observed.pods, backup, plan.status.clone(), now);
    export_backup_metrics(&ctx.metrics, &validated, &new_status, now);
    let became_ready = new_status.condition(crate::crd::CONDITION_READY).is_some_and(|c| c.status == "True")
        && guard
            .status
            .as_ref()
            .and_then(|s| s.condition(crate::crd::CONDITION_READY))
            .is_none_or(|c| c.status != "True");
    status::write(&ctx.client, guard, new_status).await.map_err(|source| Error::Status { guard: key, source })?;
    // One Warning per pod failure, when the status first reports it.
    for note in failing {
        publish(&ctx.recorder, reference, EventType::Warning, pods::REASON, "Reconcile", note).await;
    }
    if became_ready {
        publish(&ctx.recorder, reference, EventType::Normal, "Ready", "Reconcile", "Every object is available".into())
            .await;
    }
    // A restore moves on as soon as what it waits for changes; API pods stopping are polled. A
    // pod still within its grace for being unschedulable is looked at again when it ends.
    Ok(if plan.active() {
        Action::requeue(RESTORE_POLL)
    } else {
        Action::requeue(observed.recheck_pods.map_or(ctx.resync, |recheck| recheck.min(ctx.resync)))
    })
}

/// How often a restore in progress is looked at (besides the watches).
const RESTORE_POLL: Duration = Duration::from_secs(2);

/// The `spec.backup.requestId` to act on now, if it is new. Deferred while a restore runs.
fn on_demand_backup(guard: &SecurityGuard, restoring: bool) -> Option<String> {
    let asked = guard.spec.backup.as_ref()?.request_id.as_ref()?;
    let handled = guard.status.as_ref().and_then(|s| s.backup.as_ref()).and_then(|b| b.last_request_id.as_ref());
    (handled != Some(asked) && !restoring).then(|| asked.clone())
}

/// The backup, drill and restore gauges, from the status (so they survive a restart).
fn export_backup_metrics(
    metrics: &Metrics,
    guard: &validate::ValidatedGuard,
    status: &SecurityGuardStatus,
    now: Timestamp,
) {
    let labels = GuardLabels::new(&guard.namespace, &guard.name);
    let Some(spec) = &guard.spec.backup else {
        metrics.guards.forget(&labels);
        return;
    };
    let seconds = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| t.0.as_millisecond() as f64 / 1000.0;
    let interval = schedule::interval(&spec.schedule, now).map(|d| d.as_secs_f64());
    metrics.guards.set_backup_interval(&labels, if spec.suspend { None } else { interval });
    if let Some(backup) = &status.backup {
        if let Some(ok) = &backup.last_successful {
            metrics.guards.backup_succeeded(
                &labels,
                seconds(&ok.finished_at),
                ok.duration_seconds.unwrap_or(0.0),
                ok.size_bytes.unwrap_or(0),
            );
        }
        if let Some(failed) = &backup.last_failed {
            metrics.guards.backup_failed(&labels, seconds(&failed.finished_at));
        }
        if let Some(passed) = &backup.last_verified {
            metrics.guards.restore_drill(&labels, seconds(&passed.finished_at), true);
        }
        if let Some(last) = &backup.last_verification {
            metrics.guards.restore_drill(&labels, seconds(&last.finished_at), last.error.is_none());
        }
    }
    if let Some(restore) = &status.restore {
        metrics.guards.set_restore_phase(&labels, restore.phase.as_str());
    }
}

/// One Event per backup or drill that finished.
async fn publish_backup_events(ctx: &Context, reference: &ObjectReference, finished: &[jobs::Finished]) {
    for f in finished {
        let what = match f.kind {
            JobKind::Verify => "Restore drill",
            _ => "Backup",
        };
        let key = f.summary.as_ref().and_then(|s| s.key.as_deref()).unwrap_or("-");
        let (kind, reason, note) = if f.succeeded {
            let reason = if f.kind == JobKind::Verify { "BackupVerified" } else { "BackupSucceeded" };
            (EventType::Normal, reason, format!("{what} {key} succeeded (Job {})", f.job))
        } else {
            let reason = if f.kind == JobKind::Verify { "BackupVerifyFailed" } else { "BackupFailed" };
            (EventType::Warning, reason, format!("{what} failed (Job {}): {}", f.job, f.error()))
        };
        publish(&ctx.recorder, reference, kind, reason, "Backup", note).await;
    }
}

/// One Event per restore phase entered.
async fn publish_restore_events(ctx: &Context, reference: &ObjectReference, plan: &restore::Plan) {
    let Some(status) = &plan.status else { return };
    for phase in &plan.entered {
        let kind = if *phase == RestorePhase::Failed { EventType::Warning } else { EventType::Normal };
        let note = if phase == &status.phase {
            format!("restore {}: {}", status.request_id, status.message)
        } else {
            format!("restore {}: {}", status.request_id, phase.as_str())
        };
        publish(&ctx.recorder, reference, kind, &format!("Restore{}", phase.as_str()), "Restore", note).await;
    }
}

/// Sets Degraded with the message and publishes a Warning Event when the message is new.
async fn report_degraded(
    ctx: &Context,
    guard: &SecurityGuard,
    reference: &ObjectReference,
    reason: &'static str,
    message: &str,
) {
    let already = guard
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_DEGRADED))
        .is_some_and(|c| c.status == "True" && c.message == message);
    if !already {
        publish(&ctx.recorder, reference, EventType::Warning, reason, "Reconcile", message.to_owned()).await;
    }
    let status = status::degraded(guard, reason, message, Timestamp::now());
    if let Err(error) = status::write(&ctx.client, guard, status).await {
        tracing::warn!(%error, "could not write the Degraded status");
    }
}

/// Retries a failed reconcile after a pause (never at once: no hot loop).
pub fn error_policy(_guard: Arc<SecurityGuard>, _error: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(10))
}

/// Label selecting the objects the operator writes.
pub fn managed_selector() -> String {
    format!("{}={}", build::MANAGED_BY_LABEL, build::FIELD_MANAGER)
}

/// Label selector of the pods whose failures degrade their SecurityGuard: the API's and the
/// managed datastores' (the backup and restore Jobs report their pods' outcome themselves).
pub fn pod_selector() -> String {
    let components = [build::Component::Api, build::Component::Postgres, build::Component::Redis]
        .map(build::Component::as_str)
        .join(",");
    format!("{},{} in ({components})", managed_selector(), build::COMPONENT_LABEL)
}

/// A namespaced kind the controller caches through a watch.
pub trait Watched:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Starts a label-selected, cached watch of one kind of child; returns its cache and the stream
/// of changed objects.
fn child_watch<K>(
    client: &Client,
    namespace: Option<&str>,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Watched,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(scoped_api::<K>(client, namespace), watcher::Config::default().labels(&managed_selector()))
        .default_backoff()
        // managedFields are the bulk of a cached object and nothing here reads them.
        .modify(|obj| obj.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

/// An Api over every namespace, or over one.
pub(crate) fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What the controller watches and how fast it works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between reconciles of an unchanged SecurityGuard.
    pub resync: Duration,
    /// SecurityGuards reconciled at once.
    pub concurrency: u16,
    /// Only this namespace, or every namespace.
    pub namespace: Option<String>,
    /// Image of the backup and restore pods.
    pub job_image: String,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = settings.namespace.as_deref();
    let (service_accounts, sa_stream) = child_watch::<ServiceAccount>(&client, ns);
    let (config_maps, cm_stream) = child_watch::<ConfigMap>(&client, ns);
    let (stateful_sets, sts_stream) = child_watch::<StatefulSet>(&client, ns);
    let (services, svc_stream) = child_watch::<Service>(&client, ns);
    let (network_policies, np_stream) = child_watch::<NetworkPolicy>(&client, ns);
    let (deployments, deploy_stream) = child_watch::<Deployment>(&client, ns);
    let (hpas, hpa_stream) = child_watch::<HorizontalPodAutoscaler>(&client, ns);
    let (pdbs, pdb_stream) = child_watch::<PodDisruptionBudget>(&client, ns);
    let (ingresses, ing_stream) = child_watch::<Ingress>(&client, ns);
    let (role_bindings, rb_stream) = child_watch::<RoleBinding>(&client, ns);
    let (cron_jobs, cron_stream) = child_watch::<CronJob>(&client, ns);
    // Jobs of the CronJobs are owned by them, claims by nobody: both map to their guard by label.
    let (jobs, job_stream) = child_watch::<Job>(&client, ns);
    let (volume_claims, pvc_stream) = child_watch::<PersistentVolumeClaim>(&client, ns);
    // prometheus-operator's kinds: watched only while their definitions are installed.
    let (discovery, monitoring_apis, crd_stream) = monitoring_apis::watch(&client);
    let (service_monitors, sm_stream) = monitoring_apis::lazy_child_watch::<ServiceMonitor>(
        &client,
        ns,
        monitoring_apis.clone(),
        monitoring_apis::service_monitors_served,
    );
    let (prometheus_rules, pr_stream) = monitoring_apis::lazy_child_watch::<PrometheusRule>(
        &client,
        ns,
        monitoring_apis,
        monitoring_apis::prometheus_rules_served,
    );
    // Every Secret's metadata: a referenced Secret appearing or changing triggers its guards.
    let (secrets, secret_writer) = reflector::store::<PartialObjectMeta<Secret>>();
    let secret_stream = watcher(scoped_api::<PartialObjectMeta<Secret>>(&client, ns), watcher::Config::default())
        .default_backoff()
        .modify(|secret| secret.managed_fields_mut().clear())
        .reflect(secret_writer)
        .touched_objects()
        .predicate_filter(predicates::resource_version, Default::default());

    // The pods of the API and the managed datastores: a pod changing (an image that cannot be
    // pulled, a crash, a recovery) triggers its guard, which reads the pods it needs. Their
    // metadata is watched and nothing is cached: the kubelet's verdict changes no Deployment or
    // StatefulSet status, so their watches alone would not tell.
    let pod_config = watcher::Config::default().labels(&pod_selector());
    let pod_stream =
        watcher(scoped_api::<PartialObjectMeta<Pod>>(&client, ns), pod_config).default_backoff().touched_objects();

    let (guards, guard_writer) = reflector::store::<SecurityGuard>();
    // Only spec changes trigger: our own status writes do not come back as work.
    let deleted_metrics = metrics.clone();
    let guard_stream = watcher(scoped_api::<SecurityGuard>(&client, ns), watcher::Config::default())
        .default_backoff()
        .modify(|guard| guard.managed_fields_mut().clear())
        .reflect(guard_writer)
        // A deleted SecurityGuard's series go with it.
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(guard) = event {
                deleted_metrics
                    .guards
                    .forget(&GuardLabels::new(&guard.namespace().unwrap_or_default(), &guard.name_any()));
            }
        })
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

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
    let recorder = Recorder::new(client.clone(), Reporter::from(build::FIELD_MANAGER));
    let ctx = Arc::new(Context {
        client,
        stores,
        recorder,
        metrics,
        resync: settings.resync,
        job_image: settings.job_image,
        discovery,
    });
    let secret_guards = guards.clone();
    let monitoring_guards = guards.clone();

    Controller::for_stream(guard_stream, guards)
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .owns_stream(sa_stream)
        .owns_stream(cm_stream)
        .owns_stream(sts_stream)
        .owns_stream(svc_stream)
        .owns_stream(np_stream)
        .owns_stream(deploy_stream)
        .owns_stream(hpa_stream)
        .owns_stream(pdb_stream)
        .owns_stream(ing_stream)
        .owns_stream(rb_stream)
        .owns_stream(cron_stream)
        .owns_stream(sm_stream)
        .owns_stream(pr_stream)
        .watches_stream(job_stream, |job| guard_of_labelled(&job))
        .watches_stream(pvc_stream, |claim| guard_of_labelled(&claim))
        .watches_stream(pod_stream, |pod| guard_of_labelled(&pod))
        .watches_stream(secret_stream, move |secret| guards_referencing(&secret_guards, &secret))
        // prometheus-operator installed or removed: the guards asking for monitoring follow.
        .watches_stream(crd_stream, move |_| guards_monitoring(&monitoring_guards))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((guard, _)) => tracing::debug!(guard = %guard, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
}

/// The SecurityGuard named by an object's instance label, in its namespace.
fn guard_of_labelled<K: Resource>(object: &K) -> Option<ObjectRef<SecurityGuard>> {
    let name = object.labels().get(build::INSTANCE_LABEL)?;
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
        .filter(|g| g.namespace() == namespace && dereference::referenced_secrets(g).contains(&name.as_str()))
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}
