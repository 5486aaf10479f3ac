//! Observe: what the backups and a restore in progress depend on, and why pods fail, read from
//! the watch caches and, only when something finished, a restore waits for pods to stop, or a
//! component is not ready, from the API server.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};

use super::jobs::{self, Finished, JobState};
use super::pods::{self, PodProblem, TEMPLATE_HASH_LABEL};
use super::readiness::{deployment_state, stateful_set_ready};
use super::stores::Stores;
use crate::controller::vocabulary::{
    COMPONENT_LABEL, Component, JobKind, REVISION_ANNOTATION, ValidatedGuard, awaited_job, describe, object_name,
    selector_labels,
};
use crate::crd::{RecordedAutoscaling, RestorePhase, SecurityGuard};

/// A read that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a Job's pods failed.
    #[error(transparent)]
    Job(#[from] jobs::Error),
    /// Counting the pods of a component (the API's, PostgreSQL's) failed.
    #[error("counting the {} pods in {namespace}: {}", .component.as_str(), describe(.source))]
    CountPods {
        /// Whose pods.
        component: Component,
        /// Namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Listing the pods of components that are not ready failed.
    #[error("reading the pods of {components} in {namespace}: {}", describe(.source))]
    Pods {
        /// The components, comma-separated.
        components: String,
        /// Namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Listing the API's ReplicaSets (to tell the current pods from the old) failed.
    #[error("reading the ReplicaSets of the API in {namespace}: {}", describe(.source))]
    ReplicaSets {
        /// Namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// What a reconcile observed that the restore depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Now.
    pub now: Timestamp,
    /// Replicas the API Deployment asks for (None: no Deployment yet).
    pub deployment_replicas: Option<i32>,
    /// Ready API pods.
    pub ready_replicas: i32,
    /// Bounds of the API autoscaler, if it exists.
    pub autoscaler: Option<RecordedAutoscaling>,
    /// API pods still present (None: not counted in this reconcile).
    pub api_pods: Option<usize>,
    /// The managed PostgreSQL runs at least one pod and is ready (always true for an external
    /// one).
    pub postgres_ready: bool,
    /// PostgreSQL pods still present, counted while a point-in-time restore replaces its data,
    /// and at least 1 until its StatefulSet has taken in the scale to 0 (None: not counted in this
    /// reconcile).
    pub postgres_pods: Option<usize>,
    /// The Jobs of the restore in progress: the claim in the restore ledger.
    pub claim: JobState,
    /// The safety backup.
    pub safety_backup: JobState,
    /// The restore Job.
    pub restore: JobState,
    /// The rollback Job.
    pub rollback: JobState,
}

/// Everything observed.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// For the restore.
    pub restore: Observed,
    /// Backup and drill Jobs that finished since the status last recorded one, oldest first.
    pub finished: Vec<Finished>,
    /// Threat-feed sync Jobs that finished since the status last recorded one, oldest first.
    pub feed_syncs: Vec<jobs::FeedSync>,
    /// Pods of the API, PostgreSQL or Redis that cannot start or keep running.
    pub pods: Vec<PodProblem>,
    /// When to look at the pods again although nothing changes (a pod unschedulable for less
    /// than its grace).
    pub recheck_pods: Option<std::time::Duration>,
}

/// Observes the world around one SecurityGuard.
pub async fn observe(
    client: &Client,
    stores: &Stores,
    guard: &SecurityGuard,
    validated: &ValidatedGuard,
    now: Timestamp,
) -> Result<Observations, Error> {
    let namespace = validated.namespace.as_str();
    let api_name = object_name(&validated.name, Component::Api);
    let deployment = stores.deployments.get(&ObjectRef::new(&api_name).within(namespace)).map(|d| d.object());
    let autoscaler = stores.hpas.get(&ObjectRef::new(&api_name).within(namespace)).and_then(|h| {
        let bounds = h.fields.as_ref()?;
        Some(RecordedAutoscaling { min_replicas: bounds.min_replicas.unwrap_or(1), max_replicas: bounds.max_replicas })
    });
    let postgres_ready = match validated.postgres_managed() {
        None => true,
        Some(_) => stores
            .stateful_sets
            .get(&ObjectRef::new(&object_name(&validated.name, Component::Postgres)).within(namespace))
            .map(|s| s.object())
            .is_some_and(|s| stateful_set_ready(&s) && s.spec.as_ref().and_then(|sp| sp.replicas) != Some(0)),
    };

    let all_jobs = jobs::jobs_of(&stores.jobs, namespace, &validated.name);
    let (pods_left, [claim, safety_backup, restore, rollback]) =
        restore_in_progress(client, stores, guard, validated, &all_jobs).await?;
    let finished = finished_since_status(client, guard, namespace, &all_jobs).await?;
    let feed_syncs = match &validated.spec.threat_feeds {
        Some(_) => {
            let since = guard
                .status
                .as_ref()
                .and_then(|s| s.threat_feeds.as_ref()?.last_sync_time.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
            jobs::feed_syncs_since(client, &stores.jobs, namespace, &validated.name, since).await?
        }
        None => Vec::new(),
    };
    let (pods, recheck_pods) = pod_problems(client, stores, validated, deployment.as_ref(), now).await?;
    Ok(Observations {
        restore: Observed {
            now,
            deployment_replicas: deployment.as_ref().and_then(|d| d.spec.as_ref()?.replicas),
            ready_replicas: deployment.as_ref().and_then(|d| d.status.as_ref()?.ready_replicas).unwrap_or(0),
            autoscaler,
            api_pods: pods_left.api,
            postgres_ready,
            postgres_pods: pods_left.postgres,
            claim,
            safety_backup,
            restore,
            rollback,
        },
        finished,
        feed_syncs,
        pods,
        recheck_pods,
    })
}

/// The pods a restore in progress waits to be gone (None: not counted).
#[derive(Debug, Clone, Copy, Default)]
struct PodsLeft {
    /// The API's, while it scales down.
    api: Option<usize>,
    /// PostgreSQL's, while a point-in-time restore replaces its data.
    postgres: Option<usize>,
}

/// What a restore in progress waits for: the pods still there while it scales down, and the
/// state of the Job its phase awaits (claim, safety backup, restore, rollback; the others
/// absent).
async fn restore_in_progress(
    client: &Client,
    stores: &Stores,
    guard: &SecurityGuard,
    validated: &ValidatedGuard,
    all_jobs: &[(JobKind, Option<String>, Job)],
) -> Result<(PodsLeft, [JobState; 4]), Error> {
    let mut states = [JobState::Absent, JobState::Absent, JobState::Absent, JobState::Absent];
    let previous = guard.status.as_ref().and_then(|s| s.restore.as_ref());
    let Some(current) = previous.filter(|s| !s.phase.is_finished()) else {
        return Ok((PodsLeft::default(), states));
    };
    let replacing_data =
        current.point_in_time.is_some() && matches!(current.phase, RestorePhase::Restoring | RestorePhase::RollingBack);
    let pods_left = PodsLeft {
        api: match current.phase {
            RestorePhase::ScalingDown => Some(count_pods(client, validated, Component::Api).await?),
            _ => None,
        },
        postgres: match replacing_data {
            // A StatefulSet that has not yet taken in its scale to 0 could start a pod again.
            true => {
                let pods = count_pods(client, validated, Component::Postgres).await?;
                Some(if postgres_scaled_to_zero(stores, validated) { pods } else { pods.max(1) })
            }
            false => None,
        },
    };
    if let Some(kind) = awaited_job(current.phase) {
        // Only this object's Jobs: one of a deleted SecurityGuard of the same name may linger
        // until the garbage collector removes it, and its outcome (a claim granted to the old
        // object) is not this one's.
        let owner = validated.owner.uid.as_str();
        let job = all_jobs
            .iter()
            .find(|(k, request, job)| {
                *k == kind
                    && request.as_deref() == Some(current.request_id.as_str())
                    && job.owner_references().iter().any(|o| o.controller == Some(true) && o.uid == owner)
            })
            .map(|(_, _, job)| job);
        let slot = match kind {
            JobKind::ClaimRestore => 0,
            JobKind::SafetyBackup => 1,
            JobKind::Restore => 2,
            _ => 3,
        };
        states[slot] = jobs::state(client, &validated.namespace, kind, job).await?;
    }
    Ok((pods_left, states))
}

/// Why pods fail, for the components that the caches show not ready: a SecurityGuard whose
/// Deployment is rolled out and whose StatefulSets are ready costs no read.
async fn pod_problems(
    client: &Client,
    stores: &Stores,
    validated: &ValidatedGuard,
    deployment: Option<&Deployment>,
    now: Timestamp,
) -> Result<(Vec<PodProblem>, Option<std::time::Duration>), Error> {
    let namespace = validated.namespace.as_str();
    let mut unready = Vec::new();
    if deployment.is_some_and(|d| !deployment_state(d, 1).rolled_out) {
        unready.push(Component::Api);
    }
    for (component, managed) in [
        (Component::Postgres, validated.postgres_managed().is_some()),
        (Component::Redis, validated.redis_managed().is_some()),
    ] {
        let name = object_name(&validated.name, component);
        if managed
            && stores
                .stateful_sets
                .get(&ObjectRef::new(&name).within(namespace))
                .is_some_and(|s| !stateful_set_ready(&s.object()))
        {
            unready.push(component);
        }
    }
    if unready.is_empty() {
        return Ok((Vec::new(), None));
    }
    let components = unready.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",");
    let mut selector: Vec<String> = selector_labels(&validated.name, Component::Api)
        .into_iter()
        .filter(|(k, _)| k != COMPONENT_LABEL)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    selector.push(format!("{COMPONENT_LABEL} in ({components})"));
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default().labels(&selector.join(","))).await.map_err(|source| Error::Pods {
        components: components.clone(),
        namespace: namespace.to_owned(),
        source,
    })?;
    let templates: BTreeSet<&String> = list
        .items
        .iter()
        .filter(|p| p.labels().get(COMPONENT_LABEL).map(String::as_str) == Some(Component::Api.as_str()))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.labels().get(TEMPLATE_HASH_LABEL))
        .collect();
    // Pods of two templates: a rollout; only the current ReplicaSet's pods count.
    let current = match deployment {
        Some(d) if templates.len() > 1 => current_template(client, validated, d).await?,
        _ => None,
    };
    Ok((
        pods::problems(&list.items, current.as_deref(), now),
        pods::recheck_after(&list.items, current.as_deref(), now),
    ))
}

/// The `pod-template-hash` of the Deployment's current ReplicaSet: the one of its revision.
async fn current_template(
    client: &Client,
    validated: &ValidatedGuard,
    deployment: &Deployment,
) -> Result<Option<String>, Error> {
    let Some(revision) = deployment.annotations().get(REVISION_ANNOTATION) else { return Ok(None) };
    let selector = selector_labels(&validated.name, Component::Api)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &validated.namespace);
    let sets = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::ReplicaSets { namespace: validated.namespace.clone(), source })?;
    let owner = deployment.uid();
    Ok(sets
        .items
        .iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == owner.as_ref()))
        .find(|rs| rs.annotations().get(REVISION_ANNOTATION) == Some(revision))
        .and_then(|rs| rs.labels().get(TEMPLATE_HASH_LABEL).cloned()))
}

/// Backup and drill Jobs that finished after the newest one the status records.
async fn finished_since_status(
    client: &Client,
    guard: &SecurityGuard,
    namespace: &str,
    all_jobs: &[(JobKind, Option<String>, Job)],
) -> Result<Vec<Finished>, Error> {
    let recorded = guard.status.as_ref().and_then(|s| s.backup.as_ref());
    let newest = |runs: &[Option<&crate::crd::BackupRun>]| {
        runs.iter().flatten().map(|r| r.finished_at.0).max().unwrap_or(Timestamp::UNIX_EPOCH)
    };
    let backups_since =
        newest(&[recorded.and_then(|r| r.last_successful.as_ref()), recorded.and_then(|r| r.last_failed.as_ref())]);
    let drills_since = newest(&[recorded.and_then(|r| r.last_verification.as_ref())]);
    let mut finished = Vec::new();
    for (kind, _, job) in all_jobs {
        let since = match kind {
            JobKind::Backup => backups_since,
            JobKind::Verify => drills_since,
            _ => continue,
        };
        let Some((succeeded, at)) = jobs::finish(job) else { continue };
        if at <= since {
            continue;
        }
        finished.push(jobs::report(client, namespace, *kind, job, succeeded, at).await?);
    }
    finished.sort_by_key(|f| f.at);
    Ok(finished)
}

/// PostgreSQL's StatefulSet asks for no pod, its controller has seen that, and it counts none.
fn postgres_scaled_to_zero(stores: &Stores, validated: &ValidatedGuard) -> bool {
    let name = object_name(&validated.name, Component::Postgres);
    let Some(sts) = stores.stateful_sets.get(&ObjectRef::new(&name).within(&validated.namespace)) else { return true };
    let sts = sts.object();
    let status = sts.status.unwrap_or_default();
    sts.spec.and_then(|s| s.replicas) == Some(0)
        && status.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0)
        && status.replicas == 0
}

/// The pods of a component, those being deleted included.
async fn count_pods(client: &Client, guard: &ValidatedGuard, component: Component) -> Result<usize, Error> {
    let selector = selector_labels(&guard.name, component)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &guard.namespace);
    let list = pods
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::CountPods { component, namespace: guard.namespace.clone(), source })?;
    Ok(list.items.len())
}

#[cfg(test)]
mod tests;
