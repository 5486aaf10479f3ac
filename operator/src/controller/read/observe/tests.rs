//! `observe` against a mocked API server: what it reads from the caches costs no request; it
//! lists from the API server only what the caches cannot tell.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use super::*;
use crate::controller::build::test_support::{self, MINIMAL};
use crate::controller::read::jobs::{ClaimVerdict, Summary};
use crate::controller::test_api::{Received, Reply, api_server, cache, empty_caches, expect, list, object};

const NOW: &str = "2026-03-01T12:00:00Z";
/// The API pods (a restore waits for them to be gone).
const API_PODS: &str = "GET /api/v1/namespaces/prod/pods?labelSelector=app.kubernetes.io/component=api,app.kubernetes.io/instance=sg,app.kubernetes.io/name=securityguard";
/// The API Deployment's ReplicaSets.
const API_REPLICA_SETS: &str = "GET /apis/apps/v1/namespaces/prod/replicasets?labelSelector=app.kubernetes.io/component=api,app.kubernetes.io/instance=sg,app.kubernetes.io/name=securityguard";

/// The pods of the components that are not ready, as `observe` lists them.
fn unready_pods(components: &str) -> String {
    format!(
        "GET /api/v1/namespaces/prod/pods?labelSelector=app.kubernetes.io/instance=sg,app.kubernetes.io/name=securityguard,app.kubernetes.io/component in ({components})"
    )
}

fn time(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

/// The SecurityGuard (MINIMAL: managed PostgreSQL and Redis) with `status` appended.
async fn observe_with(
    status: &str,
    stores: &Stores,
    script: Vec<crate::controller::test_api::Exchange>,
) -> (Result<Observations, Error>, Vec<Received>) {
    let yaml = format!("{MINIMAL}{status}");
    let guard: SecurityGuard = serde_saphyr::from_str(&yaml).expect("fixture parses");
    let validated = test_support::guard(&yaml);
    let (client, server) = api_server(script);
    server.run(observe(&client, stores, &guard, &validated, time(NOW))).await
}

/// The API Deployment: 2 replicas, rolled out or with one pod of the new template missing.
fn deployment(rolled_out: bool) -> Deployment {
    let (updated, available) = if rolled_out { (2, 2) } else { (1, 1) };
    object(json!({
        "metadata": {"name": "sg-api", "namespace": "prod", "uid": "deployment-uid", "generation": 3,
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 2, "selector": {}, "template": {}},
        "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": updated,
                   "readyReplicas": available, "availableReplicas": available},
    }))
}

fn stateful_set(name: &str, ready: bool) -> StatefulSet {
    object(json!({
        "metadata": {"name": name, "namespace": "prod", "generation": 1},
        "spec": {"replicas": 1, "selector": {}, "template": {}, "serviceName": name},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": i32::from(ready),
                   "currentRevision": "r1", "updateRevision": "r1"},
    }))
}

/// Caches of a SecurityGuard whose API and datastores are (or are not) ready.
fn caches(api_ready: bool, postgres_ready: bool, redis_ready: bool) -> Stores {
    Stores {
        deployments: cache([deployment(api_ready)]),
        stateful_sets: cache([stateful_set("sg-postgres", postgres_ready), stateful_set("sg-redis", redis_ready)]),
        ..empty_caches()
    }
}

/// A Job of the SecurityGuard, finished (successfully) at `finished` or still running.
fn job(name: &str, kind: JobKind, request: Option<&str>, finished: Option<&str>) -> Job {
    let mut labels = json!({
        "app.kubernetes.io/instance": "sg", "app.kubernetes.io/managed-by": "securityguard-operator",
        "securityguard.io/job": kind.as_str(),
    });
    if let Some(request) = request {
        labels["securityguard.io/request"] = json!(request);
    }
    let status = finished.map_or(json!({"active": 1}), |at| {
        json!({"completionTime": at, "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": at}]})
    });
    object(
        json!({"metadata": {"name": name, "namespace": "prod", "labels": labels, "ownerReferences": [owner("uid-1")]},
               "spec": {"template": {}}, "status": status}),
    )
}

/// The controller owner reference of the SecurityGuard object `uid` (`sg`).
fn owner(uid: &str) -> Value {
    json!({"apiVersion": "securityguard.io/v1alpha1", "kind": "SecurityGuard", "name": "sg", "uid": uid,
           "controller": true, "blockOwnerDeletion": true})
}

/// A pod of a component: waiting for `reason` in its container `main`.
fn pod(name: &str, component: &str, template: &str, reason: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "prod",
                     "labels": {"app.kubernetes.io/component": component, "pod-template-hash": template}},
        "status": {"phase": "Pending", "containerStatuses": [{
            "name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": "m"}},
        }]},
    })
}

/// A Job's pod that terminated with `message`.
fn job_pod(job: &str, message: &str) -> Value {
    json!({
        "metadata": {"name": format!("{job}-x"), "namespace": "prod", "labels": {"batch.kubernetes.io/job-name": job}},
        "status": {"phase": "Succeeded", "containerStatuses": [{
            "name": "backup", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "message": message, "finishedAt": "2026-03-01T11:00:00Z"}},
        }]},
    })
}

/// Status of a SecurityGuard whose last successful backup finished at 10:00.
const BACKED_UP_AT_TEN: &str =
    "status:\n  backup:\n    lastSuccessful: {job: sg-backup-a, finishedAt: '2026-03-01T10:00:00Z'}\n";

fn restore_status(phase: &str) -> String {
    format!(
        "status:\n  restore: {{requestId: r1, source: latest, phase: {phase}, message: '', startedAt: '2026-03-01T11:00:00Z', recordedReplicas: 2}}\n"
    )
}

fn names(problems: &[PodProblem]) -> Vec<(&str, &str)> {
    problems.iter().map(|p| (p.pod.as_str(), p.reason.as_str())).collect()
}

#[tokio::test]
async fn a_converged_guard_costs_no_request() {
    let (observed, _) = observe_with("", &caches(true, true, true), vec![]).await;
    let observed = observed.expect("observes");
    assert_eq!(
        observed.restore,
        Observed {
            now: time(NOW),
            deployment_replicas: Some(2),
            ready_replicas: 2,
            postgres_ready: true,
            ..Observed::default()
        }
    );
    assert!(observed.finished.is_empty());
    assert!(observed.pods.is_empty());
    assert_eq!(observed.recheck_pods, None);
}

#[tokio::test]
async fn a_deployment_not_rolled_out_lists_the_api_pods_once() {
    let pods = list([pod("sg-api-1", "api", "new", "ImagePullBackOff")]);
    let (observed, _) =
        observe_with("", &caches(false, true, true), vec![expect(&unready_pods("api"), Reply::Json(pods))]).await;
    let observed = observed.expect("observes");
    assert_eq!(names(&observed.pods), [("sg-api-1", "ImagePullBackOff")]);
    assert_eq!(observed.restore.ready_replicas, 1);
}

#[tokio::test]
async fn unready_datastores_are_listed_with_the_api_in_one_request() {
    let pods = list([pod("sg-redis-0", "redis", "", "CrashLoopBackOff")]);
    let (observed, _) = observe_with(
        "",
        &caches(false, false, true),
        vec![expect(&unready_pods("api,postgres"), Reply::Json(list([])))],
    )
    .await;
    let observed = observed.expect("observes");
    assert!(!observed.restore.postgres_ready);
    assert!(observed.pods.is_empty());

    let (observed, _) =
        observe_with("", &caches(true, true, false), vec![expect(&unready_pods("redis"), Reply::Json(pods))]).await;
    assert_eq!(names(&observed.expect("observes").pods), [("sg-redis-0", "CrashLoopBackOff")]);
}

#[tokio::test]
async fn during_a_rollout_only_the_current_replica_set_counts() {
    let pods =
        list([pod("sg-api-old", "api", "h1", "ImagePullBackOff"), pod("sg-api-new", "api", "h2", "ErrImagePull")]);
    let replica_set = |name: &str, revision: &str, hash: &str| {
        json!({"metadata": {"name": name, "namespace": "prod",
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "labels": {"pod-template-hash": hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "sg-api",
                                 "uid": "deployment-uid", "controller": true}]}})
    };
    let sets = list([replica_set("sg-api-h1", "1", "h1"), replica_set("sg-api-h2", "2", "h2")]);
    let (observed, received) = observe_with(
        "",
        &caches(false, true, true),
        vec![expect(&unready_pods("api"), Reply::Json(pods)), expect(API_REPLICA_SETS, Reply::Json(sets))],
    )
    .await;
    assert_eq!(names(&observed.expect("observes").pods), [("sg-api-new", "ErrImagePull")]);
    let accept = received[1].accept.as_deref().unwrap_or_default();
    assert!(accept.contains("as=PartialObjectMetadataList"), "only the metadata is read: {accept}");
}

#[tokio::test]
async fn a_backup_job_finished_after_the_status_last_record_is_read_once() {
    let stores = Stores {
        jobs: cache([
            job("sg-backup-a", JobKind::Backup, None, Some("2026-03-01T10:00:00Z")),
            job("sg-backup-b", JobKind::Backup, Some("q1"), Some("2026-03-01T11:00:00Z")),
            job("sg-backup-c", JobKind::Backup, None, None),
        ]),
        ..caches(true, true, true)
    };
    let summary = r#"{"command":"backup","result":"succeeded","key":"prod/sg/b.pgdump","size":42,"seconds":3.5}"#;
    let (observed, _) = observe_with(
        BACKED_UP_AT_TEN,
        &stores,
        vec![expect(
            "GET /api/v1/namespaces/prod/pods?labelSelector=batch.kubernetes.io/job-name=sg-backup-b",
            Reply::Json(list([job_pod("sg-backup-b", summary)])),
        )],
    )
    .await;
    assert_eq!(
        observed.expect("observes").finished,
        [Finished {
            job: "sg-backup-b".into(),
            kind: JobKind::Backup,
            request: Some("q1".into()),
            at: time("2026-03-01T11:00:00Z"),
            succeeded: true,
            summary: Some(Box::new(Summary {
                key: Some("prod/sg/b.pgdump".into()),
                size: Some(42),
                seconds: Some(3.5),
                ..Summary::default()
            })),
        }]
    );
}

#[tokio::test]
async fn a_restore_scaling_down_counts_the_api_pods_by_their_metadata() {
    let pods = list([json!({"metadata": {"name": "sg-api-1"}}), json!({"metadata": {"name": "sg-api-2"}})]);
    let (observed, received) =
        observe_with(&restore_status("ScalingDown"), &empty_caches(), vec![expect(API_PODS, Reply::Json(pods))]).await;
    assert_eq!(observed.expect("observes").restore.api_pods, Some(2));
    let accept = received[0].accept.as_deref().unwrap_or_default();
    assert!(accept.contains("as=PartialObjectMetadataList"), "only the metadata is read: {accept}");
}

/// PostgreSQL's pods (a point-in-time restore waits for them to be gone).
const POSTGRES_PODS: &str = "GET /api/v1/namespaces/prod/pods?labelSelector=app.kubernetes.io/component=postgres,app.kubernetes.io/instance=sg,app.kubernetes.io/name=securityguard";

#[tokio::test]
async fn a_point_in_time_restore_counts_postgres_pods_while_it_replaces_the_data() {
    let status = |phase: &str| {
        format!(
            "status:\n  restore: {{requestId: r1, source: 'before:2026-03-01T10:00:00Z', phase: {phase}, message: '', \
             startedAt: '2026-03-01T11:00:00Z', recordedReplicas: 2, pointInTime: '2026-03-01T10:00:00Z'}}\n"
        )
    };
    let pods = list([json!({"metadata": {"name": "sg-postgres-0"}})]);
    let stores = caches(true, true, true);
    for phase in ["Restoring", "RollingBack"] {
        let script = vec![expect(POSTGRES_PODS, Reply::Json(pods.clone()))];
        let (observed, _) = observe_with(&status(phase), &stores, script).await;
        assert_eq!(observed.expect("observes").restore.postgres_pods, Some(1), "{phase}");
    }
    // None left: 0 once the StatefulSet has taken in its scale to 0, else still 1.
    let none = || vec![expect(POSTGRES_PODS, Reply::Json(list([])))];
    let (observed, _) = observe_with(&status("Restoring"), &stores, none()).await;
    assert_eq!(observed.expect("observes").restore.postgres_pods, Some(1), "the StatefulSet still asks for a pod");
    let mut stopped = stateful_set("sg-postgres", true);
    stopped.spec.as_mut().expect("spec").replicas = Some(0);
    stopped.status.as_mut().expect("status").replicas = 0;
    let stopped = Stores { stateful_sets: cache([stopped]), ..caches(true, true, true) };
    let (observed, _) = observe_with(&status("Restoring"), &stopped, none()).await;
    assert_eq!(observed.expect("observes").restore.postgres_pods, Some(0));
    // Not before the data is replaced, and never for a restore of a dump.
    let (observed, _) = observe_with(&status("Claiming"), &stores, vec![]).await;
    assert_eq!(observed.expect("observes").restore.postgres_pods, None);
    let (observed, _) = observe_with(&restore_status("Restoring"), &stores, vec![]).await;
    assert_eq!(observed.expect("observes").restore.postgres_pods, None);
}

#[tokio::test]
async fn a_restore_reads_the_outcome_of_its_own_job() {
    let stores = Stores {
        jobs: cache([
            job("sg-restore-other", JobKind::Restore, Some("r0"), Some("2026-03-01T11:10:00Z")),
            job("sg-restore-r1", JobKind::Restore, Some("r1"), Some("2026-03-01T11:30:00Z")),
        ]),
        ..empty_caches()
    };
    let summary = r#"{"key":"prod/sg/a.pgdump","databaseChanged":true}"#;
    let (observed, _) = observe_with(
        &restore_status("Restoring"),
        &stores,
        vec![expect(
            "GET /api/v1/namespaces/prod/pods?labelSelector=batch.kubernetes.io/job-name=sg-restore-r1",
            Reply::Json(list([job_pod("sg-restore-r1", summary)])),
        )],
    )
    .await;
    let observed = observed.expect("observes").restore;
    let JobState::Finished(finished) = observed.restore else { panic!("the restore Job finished: {observed:?}") };
    assert_eq!((finished.job.as_str(), finished.succeeded), ("sg-restore-r1", true));
    assert_eq!(finished.summary.and_then(|s| s.database_changed), Some(true));
    assert_eq!(
        (observed.safety_backup, observed.rollback, observed.api_pods),
        (JobState::Absent, JobState::Absent, None)
    );
}

#[tokio::test]
async fn a_claim_reads_the_verdict_of_its_own_job_and_counts_no_pod() {
    let stores = Stores {
        jobs: cache([
            job("sg-restore-r0-claim", JobKind::ClaimRestore, Some("r0"), Some("2026-03-01T11:10:00Z")),
            job("sg-restore-r1-claim", JobKind::ClaimRestore, Some("r1"), Some("2026-03-01T11:30:00Z")),
        ]),
        ..empty_caches()
    };
    let summary = r#"{"command":"claim-restore","result":"succeeded","claim":{"verdict":"refused",
        "sameGuard":false,"claimedBy":"uid-0","claimedAt":"2026-02-01T10:00:00Z","requestId":"r1"}}"#;
    let (observed, _) = observe_with(
        &restore_status("Claiming"),
        &stores,
        vec![expect(
            "GET /api/v1/namespaces/prod/pods?labelSelector=batch.kubernetes.io/job-name=sg-restore-r1-claim",
            Reply::Json(list([job_pod("sg-restore-r1-claim", summary)])),
        )],
    )
    .await;
    let observed = observed.expect("observes").restore;
    let JobState::Finished(finished) = observed.claim else { panic!("the claim Job finished: {observed:?}") };
    assert_eq!(finished.kind, JobKind::ClaimRestore);
    let claim = finished.summary.and_then(|s| s.claim).expect("the verdict");
    assert_eq!((claim.verdict, claim.claimed_by.as_str()), (ClaimVerdict::Refused, "uid-0"));
    assert_eq!((observed.restore, observed.api_pods), (JobState::Absent, None), "the API is not looked at");
}

#[tokio::test]
async fn a_job_left_by_a_deleted_guard_of_the_same_name_is_not_read() {
    // The SecurityGuard deleted and re-created: the garbage collector has not removed the old
    // object's claim Job yet. Its verdict was the old object's, not this one's.
    let mut old = job("sg-restore-r1-claim", JobKind::ClaimRestore, Some("r1"), Some("2026-03-01T11:30:00Z"));
    old.metadata.owner_references = Some(vec![serde_json::from_value(owner("uid-0")).expect("owner")]);
    let stores = Stores { jobs: cache([old]), ..empty_caches() };
    let (observed, _) = observe_with(&restore_status("Claiming"), &stores, vec![]).await;
    assert_eq!(observed.expect("observes").restore.claim, JobState::Absent);
}

#[tokio::test]
async fn failed_reads_name_what_they_read() {
    let stores = Stores {
        jobs: cache([job("sg-backup-b", JobKind::Backup, None, Some("2026-03-01T11:00:00Z"))]),
        ..caches(true, true, true)
    };
    let job_pods = "GET /api/v1/namespaces/prod/pods?labelSelector=batch.kubernetes.io/job-name=sg-backup-b";
    let (observed, _) = observe_with(BACKED_UP_AT_TEN, &stores, vec![expect(job_pods, Reply::Status(500))]).await;
    assert!(
        matches!(&observed, Err(Error::Job(jobs::Error::Pods { namespace, job, .. })) if namespace == "prod" && job == "sg-backup-b"),
        "{observed:?}"
    );

    let (observed, _) =
        observe_with(&restore_status("ScalingDown"), &empty_caches(), vec![expect(API_PODS, Reply::Status(403))]).await;
    assert!(
        matches!(&observed, Err(Error::CountPods { component: Component::Api, namespace, .. }) if namespace == "prod"),
        "{observed:?}"
    );

    let (observed, _) =
        observe_with("", &caches(false, true, false), vec![expect(&unready_pods("api,redis"), Reply::Status(500))])
            .await;
    assert!(
        matches!(&observed, Err(Error::Pods { components, namespace, .. }) if components == "api,redis" && namespace == "prod"),
        "{observed:?}"
    );

    let pods =
        list([pod("sg-api-old", "api", "h1", "ImagePullBackOff"), pod("sg-api-new", "api", "h2", "ErrImagePull")]);
    let (observed, _) = observe_with(
        "",
        &caches(false, true, true),
        vec![expect(&unready_pods("api"), Reply::Json(pods)), expect(API_REPLICA_SETS, Reply::Status(500))],
    )
    .await;
    assert!(matches!(&observed, Err(Error::ReplicaSets { namespace, .. }) if namespace == "prod"), "{observed:?}");
}

/// A threat-feed sync Job of the SecurityGuard, finished at `at` (successfully or not).
fn feed_job(name: &str, at: &str, succeeded: bool) -> Job {
    let condition = if succeeded { "Complete" } else { "Failed" };
    object(json!({
        "metadata": {"name": name, "namespace": "prod", "labels": {
            "app.kubernetes.io/instance": "sg", "app.kubernetes.io/managed-by": "securityguard-operator",
            "securityguard.io/job": "feed-sync"}},
        "spec": {"template": {}},
        "status": {"conditions": [{"type": condition, "status": "True", "lastTransitionTime": at}]},
    }))
}

#[tokio::test]
async fn feed_syncs_finished_after_the_status_last_record_are_read_once_each() {
    let stores = Stores {
        jobs: cache([
            feed_job("sg-feed-sync-1", "2026-03-01T10:00:00Z", true),
            feed_job("sg-feed-sync-2", "2026-03-01T11:00:00Z", false),
            feed_job("sg-feed-sync-3", "2026-03-01T11:30:00Z", false),
        ]),
        ..caches(true, true, true)
    };
    let feeds = "  threatFeeds:\n    feeds: [{name: community, url: 'https://f.example/a.txt', format: Plain}]\n";
    let status = "status:\n  threatFeeds: {lastJob: sg-feed-sync-1, lastSyncTime: '2026-03-01T10:00:00Z'}\n";
    let summary = r#"{"command":"feeds-sync","result":"failed","seconds":1.0,"feeds":[{"name":"community","error":"1 malformed entries: line 3: \"x\" is not a domain"}],"error":"1 of 1 feeds failed: community"}"#;
    let (observed, _) = observe_with(
        &format!("{feeds}{status}"),
        &stores,
        vec![
            expect(
                "GET /api/v1/namespaces/prod/pods?labelSelector=batch.kubernetes.io/job-name=sg-feed-sync-2",
                Reply::Json(list([job_pod("sg-feed-sync-2", summary)])),
            ),
            // A pod already gone: the failure is still reported, without per-feed outcomes.
            expect(
                "GET /api/v1/namespaces/prod/pods?labelSelector=batch.kubernetes.io/job-name=sg-feed-sync-3",
                Reply::Json(list([])),
            ),
        ],
    )
    .await;
    let syncs = observed.expect("observes").feed_syncs;
    let jobs: Vec<(&str, bool, usize)> = syncs.iter().map(|s| (s.job.as_str(), s.succeeded, s.feeds.len())).collect();
    assert_eq!(jobs, [("sg-feed-sync-2", false, 1), ("sg-feed-sync-3", false, 0)]);
    assert!(syncs[0].feeds[0].error.as_deref().is_some_and(|e| e.contains("line 3")));
    assert_eq!(syncs[0].error.as_deref(), Some("1 of 1 feeds failed: community"));
    assert!(syncs[1].error.as_deref().is_some_and(|e| e.contains("left no summary")), "{:?}", syncs[1]);
}

#[tokio::test]
async fn without_threat_feeds_no_feed_job_is_read() {
    let stores =
        Stores { jobs: cache([feed_job("sg-feed-sync-1", "2026-03-01T10:00:00Z", false)]), ..caches(true, true, true) };
    let (observed, _) = observe_with("", &stores, vec![]).await;
    assert!(observed.expect("observes").feed_syncs.is_empty());
}
