//! Observe: what the backups and a restore in progress depend on, read from the watch caches
//! and, only when something finished or a restore waits for pods to stop, from the API server.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};

use super::apply::Stores;
use super::build::backup_job::JobKind;
use super::build::{Component, object_name, selector_labels};
use super::describe;
use super::jobs::{self, Finished, JobState};
use super::restore::{self, Observed};
use super::status::stateful_set_ready;
use super::validate::ValidatedGuard;
use crate::crd::{RecordedAutoscaling, RestorePhase, SecurityGuard};

/// A read that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a Job's pods failed.
    #[error(transparent)]
    Job(#[from] jobs::Error),
    /// Counting the API pods failed.
    #[error("counting the API pods in {namespace}: {}", describe(.source))]
    ApiPods {
        /// Namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Everything observed.
#[derive(Debug, Clone)]
pub struct Observations {
    /// For the restore.
    pub restore: Observed,
    /// Backup and drill Jobs that finished since the status last recorded one, oldest first.
    pub finished: Vec<Finished>,
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
    let deployment = stores.deployments.get(&ObjectRef::new(&api_name).within(namespace));
    let autoscaler = stores.hpas.get(&ObjectRef::new(&api_name).within(namespace)).and_then(|h| {
        let spec = h.spec.as_ref()?;
        Some(RecordedAutoscaling { min_replicas: spec.min_replicas.unwrap_or(1), max_replicas: spec.max_replicas })
    });
    let postgres_ready = match validated.postgres_managed() {
        None => true,
        Some(_) => stores
            .stateful_sets
            .get(&ObjectRef::new(&object_name(&validated.name, Component::Postgres)).within(namespace))
            .is_some_and(|s| stateful_set_ready(&s)),
    };

    let previous = guard.status.as_ref().and_then(|s| s.restore.as_ref());
    let all_jobs = jobs::jobs_of(&stores.jobs, namespace, &validated.name);
    let (mut safety_backup, mut restore, mut rollback) = (JobState::Absent, JobState::Absent, JobState::Absent);
    let mut api_pods = None;
    if let Some(current) = previous.filter(|s| restore::in_progress(Some(s))) {
        if current.phase == RestorePhase::ScalingDown {
            api_pods = Some(count_api_pods(client, validated).await?);
        }
        if let Some(kind) = restore::awaited_job(current.phase) {
            let job = all_jobs
                .iter()
                .find(|(k, request, _)| *k == kind && request.as_deref() == Some(current.request_id.as_str()))
                .map(|(_, _, job)| job);
            let slot = match kind {
                JobKind::SafetyBackup => &mut safety_backup,
                JobKind::Restore => &mut restore,
                _ => &mut rollback,
            };
            *slot = jobs::state(client, namespace, kind, job).await?;
        }
    }

    let finished = finished_since_status(client, guard, namespace, &all_jobs).await?;
    Ok(Observations {
        restore: Observed {
            now,
            deployment_replicas: deployment.as_ref().and_then(|d| d.spec.as_ref()?.replicas),
            ready_replicas: deployment.as_ref().and_then(|d| d.status.as_ref()?.ready_replicas).unwrap_or(0),
            autoscaler,
            api_pods,
            postgres_ready,
            safety_backup,
            restore,
            rollback,
        },
        finished,
    })
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

async fn count_api_pods(client: &Client, guard: &ValidatedGuard) -> Result<usize, Error> {
    let selector = selector_labels(guard, Component::Api)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &guard.namespace);
    let list = pods
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::ApiPods { namespace: guard.namespace.clone(), source })?;
    Ok(list.items.len())
}
