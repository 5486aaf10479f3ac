//! What the backup, drill and restore Jobs of a SecurityGuard did: which finished, when, and
//! the JSON summary each pod wrote as its termination message (key, size, duration, error,
//! whether a restore changed the database). Jobs come from the watch cache; a finished Job's
//! pod is read once, when its outcome is not yet in the status.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use super::cached::Remembered;

use crate::controller::vocabulary::{
    FEED_SYNC_JOB, FIELD_MANAGER, INSTANCE_LABEL, JOB_KIND_LABEL, JobKind, MANAGED_BY_LABEL, REQUEST_LABEL, describe,
};
use crate::crd::{DrillRecovery, FeedOutcome, PointInTimeRecovery, RecoverableWindow, RemovedFeed};

/// Reading a Job's pod failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing the pods of a Job failed.
    #[error("reading the pods of Job {namespace}/{job}: {}", describe(.source))]
    Pods {
        /// Namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// The summary a backup or restore pod writes (see `backup::summary`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Key of the backup written or restored.
    #[serde(default)]
    pub key: Option<String>,
    /// Its size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Seconds the command ran.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Restore only: whether the database may have changed.
    #[serde(default)]
    pub database_changed: Option<bool>,
    /// The error, when failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Drill only: the recovery it achieved, against its targets (boxed: most Jobs have none).
    #[serde(default)]
    pub drill: Option<Box<DrillRecovery>>,
    /// Threat-feed sync only: every feed's outcome.
    #[serde(default)]
    pub feeds: Vec<FeedOutcome>,
    /// Threat-feed sync only: the feeds no longer listed whose entries were removed.
    #[serde(default)]
    pub removed_feeds: Vec<RemovedFeed>,
    /// Claim of a restore request only: the verdict and the record holding the request (boxed:
    /// every other summary goes without).
    #[serde(default)]
    pub claim: Option<Box<ClaimReport>>,
    /// With a WAL archive: a backup's recoverable window, or what a point-in-time restore
    /// recovered (boxed: most summaries go without).
    #[serde(default)]
    pub point_in_time: Option<Box<PointInTimeReport>>,
    /// A point-in-time restore only: what it recovered (boxed: most summaries go without).
    #[serde(default)]
    pub recovery: Option<Box<PointInTimeRecovery>>,
}

impl Summary {
    /// What a point-in-time restore recovered, in `recovery` or in `pointInTime`.
    pub fn recovered(&self) -> Option<&PointInTimeRecovery> {
        self.recovery.as_deref().or_else(|| self.point_in_time.as_ref()?.recovery())
    }
}

/// The `pointInTime` field of a summary: its shape tells which.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PointInTimeReport {
    /// A point-in-time restore: the time recovered to, from which base backup.
    Recovery(PointInTimeRecovery),
    /// A backup: the window a point-in-time restore can reach now.
    Window(RecoverableWindow),
}

impl PointInTimeReport {
    /// What a point-in-time restore recovered.
    pub fn recovery(&self) -> Option<&PointInTimeRecovery> {
        match self {
            Self::Recovery(r) => Some(r),
            Self::Window(_) => None,
        }
    }

    /// The recoverable window a backup found.
    pub fn window(&self) -> Option<&RecoverableWindow> {
        match self {
            Self::Window(w) => Some(w),
            Self::Recovery(_) => None,
        }
    }
}

/// What a restore's claim in the restore ledger found (see `backup::ledger`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimReport {
    /// `claimed`, `resumed` or `refused`.
    pub verdict: ClaimVerdict,
    /// Whether the record is this SecurityGuard object's (false: an earlier one of this name).
    #[serde(default)]
    pub same_guard: bool,
    /// When the request was claimed.
    pub claimed_at: Timestamp,
    /// UID of the object that claimed it.
    pub claimed_by: String,
    /// The backup restored, when the record says.
    #[serde(default)]
    pub restored_key: Option<String>,
    /// When that restore finished.
    #[serde(default)]
    pub restored_at: Option<Timestamp>,
}

/// The verdict of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClaimVerdict {
    /// Newly claimed by this SecurityGuard.
    Claimed,
    /// Claimed by this SecurityGuard before, unfinished: carry on.
    Resumed,
    /// Handled already: not repeated.
    Refused,
}

/// A finished Job.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The Job's name.
    pub job: String,
    /// What it did.
    pub kind: JobKind,
    /// The request it served, if any.
    pub request: Option<String>,
    /// When it finished.
    pub at: Timestamp,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// Its pod's summary, when the pod is still there and wrote one (boxed: a `JobState` is
    /// mostly not finished).
    pub summary: Option<Box<Summary>>,
}

impl Finished {
    /// The error to report: the pod's own, else what Kubernetes says.
    pub fn error(&self) -> String {
        self.summary.as_ref().and_then(|s| s.error.clone()).unwrap_or_else(|| {
            if self.summary.is_some() {
                "the Job failed without saying why".to_owned()
            } else {
                format!("Job {} failed and its pod left no summary (see its events and logs)", self.job)
            }
        })
    }
}

/// Where a Job stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum JobState {
    /// Not created (or already removed).
    #[default]
    Absent,
    /// Created, not finished.
    Running,
    /// Finished.
    Finished(Finished),
}

/// Whether a cached Job is one of the guard's.
fn of_guard(job: &impl ResourceExt, namespace: &str, guard: &str) -> bool {
    job.namespace().as_deref() == Some(namespace)
        && job.labels().get(INSTANCE_LABEL).map(String::as_str) == Some(guard)
        && job.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(FIELD_MANAGER)
}

/// The Jobs of one SecurityGuard in the cache, with their kind and request.
pub fn jobs_of(store: &Store<Remembered<Job>>, namespace: &str, guard: &str) -> Vec<(JobKind, Option<String>, Job)> {
    store
        .state()
        .iter()
        .filter(|j| of_guard(j.as_ref(), namespace, guard))
        .filter_map(|j| {
            let kind = JobKind::from_label(j.labels().get(JOB_KIND_LABEL)?)?;
            Some((kind, j.labels().get(REQUEST_LABEL).cloned(), j.object()))
        })
        .collect()
}

/// Whether the Job finished, and when: `(succeeded, time)`.
pub fn finish(job: &Job) -> Option<(bool, Timestamp)> {
    let status = job.status.as_ref()?;
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        let at = condition.last_transition_time.as_ref().map(|t| t.0);
        match condition.type_.as_str() {
            "Complete" => return Some((true, status.completion_time.as_ref().map(|t| t.0).or(at)?)),
            "Failed" => return Some((false, at?)),
            _ => {}
        }
    }
    None
}

/// The state of a Job, reading its pod's summary when it finished.
pub async fn state(client: &Client, namespace: &str, kind: JobKind, job: Option<&Job>) -> Result<JobState, Error> {
    let Some(job) = job else { return Ok(JobState::Absent) };
    let Some((succeeded, at)) = finish(job) else { return Ok(JobState::Running) };
    Ok(JobState::Finished(report(client, namespace, kind, job, succeeded, at).await?))
}

/// The outcome of a finished Job, from its pod.
pub async fn report(
    client: &Client,
    namespace: &str,
    kind: JobKind,
    job: &Job,
    succeeded: bool,
    at: Timestamp,
) -> Result<Finished, Error> {
    let name = job.name_any();
    let summary = pod_summary(client, namespace, &name).await?.map(Box::new);
    Ok(Finished { job: name, kind, request: job.labels().get(REQUEST_LABEL).cloned(), at, succeeded, summary })
}

/// The summary the newest pod of a Job left.
async fn pod_summary(client: &Client, namespace: &str, job: &str) -> Result<Option<Summary>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .map_err(|source| Error::Pods { namespace: namespace.to_owned(), job: job.to_owned(), source })?;
    Ok(newest_summary(&list.items))
}

/// A finished threat-feed sync Job.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSync {
    /// The Job's name.
    pub job: String,
    /// When it finished.
    pub at: Timestamp,
    /// Whether every feed synced.
    pub succeeded: bool,
    /// Every feed's outcome (empty when the pod left no summary).
    pub feeds: Vec<FeedOutcome>,
    /// The feeds no longer listed whose entries the sync removed.
    pub removed: Vec<RemovedFeed>,
    /// The error of the whole run, when it failed.
    pub error: Option<String>,
}

/// The threat-feed sync Jobs of one SecurityGuard that finished after `since`, oldest first,
/// with their pods' summaries.
pub async fn feed_syncs_since(
    client: &Client,
    store: &Store<Remembered<Job>>,
    namespace: &str,
    guard: &str,
    since: Timestamp,
) -> Result<Vec<FeedSync>, Error> {
    let mut finished: Vec<(Timestamp, bool, String)> = store
        .state()
        .iter()
        .filter(|j| of_guard(j.as_ref(), namespace, guard))
        .filter(|j| j.labels().get(JOB_KIND_LABEL).map(String::as_str) == Some(FEED_SYNC_JOB))
        .filter_map(|j| finish(&j.object()).map(|(ok, at)| (at, ok, j.name_any())))
        .filter(|(at, _, _)| *at > since)
        .collect();
    finished.sort();
    let mut syncs = Vec::with_capacity(finished.len());
    for (at, succeeded, job) in finished {
        let summary = pod_summary(client, namespace, &job).await?;
        let error = match (&summary, succeeded) {
            (_, true) => None,
            (Some(s), false) => Some(s.error.clone().unwrap_or_else(|| "the sync failed without saying why".into())),
            (None, false) => Some(format!("Job {job} failed and its pod left no summary (see its events and logs)")),
        };
        let (feeds, removed) = summary.map(|s| (s.feeds, s.removed_feeds)).unwrap_or_default();
        syncs.push(FeedSync { job, at, succeeded, feeds, removed, error });
    }
    Ok(syncs)
}

/// The summary in the termination message of the newest pod that has one.
pub fn newest_summary(pods: &[Pod]) -> Option<Summary> {
    let mut found: BTreeMap<Timestamp, Summary> = BTreeMap::new();
    for pod in pods {
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            let Some(terminated) = status.state.as_ref().and_then(|s| s.terminated.as_ref()) else { continue };
            let Some(message) = terminated.message.as_deref() else { continue };
            if let Ok(summary) = serde_json::from_str::<Summary>(message.trim()) {
                let at = terminated.finished_at.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH);
                found.insert(at, summary);
            }
        }
    }
    found.pop_last().map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("time")
    }

    fn job(type_: &str, status: &str) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: type_.to_owned(),
                    status: status.to_owned(),
                    last_transition_time: Some(Time(at(100))),
                    ..JobCondition::default()
                }]),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[test]
    fn finished_only_on_a_true_complete_or_failed_condition() {
        assert_eq!(finish(&job("Complete", "True")), Some((true, at(100))));
        assert_eq!(finish(&job("Failed", "True")), Some((false, at(100))));
        assert_eq!(finish(&job("Failed", "False")), None);
        assert_eq!(finish(&job("Suspended", "True")), None);
        assert_eq!(finish(&Job::default()), None);
    }

    fn pod(message: &str, finished: i64) -> Pod {
        Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            message: Some(message.to_owned()),
                            finished_at: Some(Time(at(finished))),
                            ..ContainerStateTerminated::default()
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn reads_the_newest_summary_and_ignores_other_messages() {
        let pods = [
            pod(r#"{"command":"restore","result":"failed","error":"old","seconds":1.0}"#, 10),
            pod(r#"{"command":"restore","result":"failed","error":"new","databaseChanged":false,"seconds":2.5}"#, 20),
            pod("panicked at ...", 30),
        ];
        let summary = newest_summary(&pods).expect("a summary");
        assert_eq!(summary.error.as_deref(), Some("new"));
        assert_eq!(summary.database_changed, Some(false));
        assert_eq!(summary.seconds, Some(2.5));
        assert_eq!(newest_summary(&[pod("not json", 1)]), None);
    }

    #[test]
    fn reads_the_figures_of_a_drill_that_missed_its_recovery_point() {
        let message = r#"{"command":"restore","result":"failed","key":"b/prod/k.pgdump","seconds":41.2,
            "databaseChanged":false,"error":"recovery point 2h13m exceeds the target 1h: ...",
            "drill":{"startedAt":"2026-11-29T03:30:00Z","backupTakenAt":"2026-11-29T01:17:00Z",
                     "recoveryTimeSeconds":40.9,"recoveryTimeTargetSeconds":900.0,
                     "recoveryPointSeconds":7980.0,"recoveryPointTargetSeconds":3600.0,
                     "steps":{"downloadSeconds":3.1,"verifySeconds":0.4,"restoreSeconds":35.0,"checksSeconds":2.4},
                     "missed":["RecoveryPoint"]}}"#;
        let summary = newest_summary(&[pod(message, 10)]).expect("a summary");
        let drill = summary.drill.expect("the drill's figures");
        assert_eq!(drill.recovery_point_seconds, 7980.0);
        assert_eq!(drill.steps.restore_seconds, 35.0);
        assert_eq!(drill.missed, [crate::crd::RecoveryTarget::RecoveryPoint]);
        assert_eq!(drill.backup_taken_at.0, "2026-11-29T01:17:00Z".parse::<Timestamp>().expect("time"));
    }

    #[test]
    fn reads_the_feed_outcomes_of_a_sync_summary() {
        let message = r#"{"command":"feeds-sync","result":"failed","seconds":3.2,"feeds":[
            {"name":"community","entries":2,"version":7,"added":2,"removed":0},
            {"name":"broken","error":"1 malformed entries: line 3: \"x\" is not a domain"}],
            "error":"1 of 2 feeds failed: broken"}"#;
        let summary = newest_summary(&[pod(message, 10)]).expect("a summary");
        assert_eq!(summary.feeds.len(), 2);
        assert_eq!((summary.feeds[0].entries, summary.feeds[0].version), (Some(2), Some(7)));
        assert!(summary.feeds[1].error.as_deref().is_some_and(|e| e.contains("line 3")));
        assert_eq!(summary.error.as_deref(), Some("1 of 2 feeds failed: broken"));
    }

    #[test]
    fn reads_the_recoverable_window_of_a_backup_and_what_a_point_in_time_restore_recovered() {
        let backup = r#"{"command":"backup","result":"succeeded","key":"b/prod/sg/k.pgdump","seconds":3.0,
            "pointInTime":{"firstRecoverable":"2026-11-29T00:00:05Z","lastRecoverable":"2026-11-30T19:40:00Z",
                           "baseBackups":2}}"#;
        let summary = newest_summary(&[pod(backup, 10)]).expect("a summary");
        let window = summary.point_in_time.as_ref().and_then(|p| p.window()).expect("a window");
        assert_eq!(window.base_backups, Some(2));
        assert_eq!(
            window.first_recoverable.as_ref().map(|t| t.0),
            Some("2026-11-29T00:00:05Z".parse::<Timestamp>().expect("time"))
        );
        assert_eq!(window.error, None);
        assert!(summary.point_in_time.as_ref().and_then(|p| p.recovery()).is_none());

        let broken = r#"{"command":"backup","result":"succeeded","seconds":1.0,
            "pointInTime":{"error":"WAL segment 000000010000000000000007 is missing"}}"#;
        let summary = newest_summary(&[pod(broken, 10)]).expect("a summary");
        let window = summary.point_in_time.as_ref().and_then(|p| p.window()).expect("a window");
        assert!(window.error.as_deref().is_some_and(|e| e.contains("missing")));

        let restore = r#"{"command":"restore","result":"succeeded","key":"b/prod/.pitr/sg/base/x.tar.gz",
            "seconds":40.0,"databaseChanged":true,"takenAt":"2026-11-30T00:00:00Z",
            "pointInTime":{"target":"2026-11-30T12:00:00Z","baseBackup":"b/prod/.pitr/sg/base/x.tar.gz","walSegments":17}}"#;
        let summary = newest_summary(&[pod(restore, 10)]).expect("a summary");
        let recovery = summary.recovered().expect("a recovery");
        assert_eq!(recovery.wal_segments, Some(17));
        assert_eq!(recovery.target.0, "2026-11-30T12:00:00Z".parse::<Timestamp>().expect("time"));

        // As the data path writes it: `recovery`, with the WAL files fetched.
        let restore = r#"{"command":"restore","result":"succeeded","key":"p/prod/.pitr/sg/base/x.tar.gz",
            "seconds":40.0,"databaseChanged":true,"takenAt":"2026-11-30T00:00:00Z",
            "recovery":{"target":"2026-11-30T12:00:00Z","baseBackup":"p/prod/.pitr/sg/base/x.tar.gz",
                        "baseBackupAt":"2026-11-30T00:00:00Z","walFiles":9,"seconds":{"replay":3.5}}}"#;
        let summary = newest_summary(&[pod(restore, 10)]).expect("a summary");
        assert_eq!(summary.recovered().map(|r| r.wal_segments), Some(Some(9)));
        // ... and the window with the archiver's last pass.
        let backup = r#"{"command":"backup","result":"succeeded","seconds":1.0,"pointInTime":{"baseBackups":1,
            "firstRecoverable":"2026-11-30T00:00:05Z","lastRecoverable":"2026-11-30T12:00:00Z",
            "archivedThrough":"2026-11-30T12:00:09Z"}}"#;
        let summary = newest_summary(&[pod(backup, 10)]).expect("a summary");
        let window = summary.point_in_time.as_ref().and_then(|p| p.window()).expect("a window");
        assert!(window.archived_through.is_some());
    }

    #[test]
    fn reads_the_verdict_of_a_claim() {
        let message = r#"{"command":"claim-restore","result":"succeeded","key":"b/prod/sg/restores/r1.restore.json",
            "seconds":0.2,"claim":{"verdict":"refused","sameGuard":false,"formatVersion":1,"requestId":"r1",
            "guard":"prod/sg","claimedBy":"uid-0","claimedAt":"2026-11-25T09:00:00Z","source":"latest",
            "restoredKey":"b/prod/sg/20261125T080000.000Z.pgdump","restoredAt":"2026-11-25T09:05:00Z"}}"#;
        let claim = newest_summary(&[pod(message, 10)]).and_then(|s| s.claim).expect("a claim");
        assert_eq!((claim.verdict, claim.same_guard), (ClaimVerdict::Refused, false));
        assert_eq!(claim.claimed_by, "uid-0");
        assert_eq!(claim.claimed_at, "2026-11-25T09:00:00Z".parse::<Timestamp>().expect("time"));
        assert_eq!(claim.restored_key.as_deref(), Some("b/prod/sg/20261125T080000.000Z.pgdump"));
    }
}
