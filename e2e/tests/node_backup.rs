//! Backups, drills and restore by edit on the real node: every Job runs in the operator's
//! image (its own `pg_dump`/`pg_restore`) against the managed PostgreSQL container, and the
//! backups land in an S3-compatible server; the restore really stops the API pods and brings
//! them back with the data of the backup, also when the operator's leader pod is deleted in
//! the middle; and a SecurityGuard deleted and re-created with the same `spec.restore` does not
//! restore again (the restore ledger in the bucket refuses it before anything scales down).
//!
//! Needs `SG_NODE_CLUSTER_DIR` (`e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR`)
//! and moto (`scripts/services/s3.sh start` installs it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher;
use securityguard_e2e::backups::Bucket;
use securityguard_e2e::fixtures::GuardFixture;
use securityguard_e2e::node::{self, S3, Site, leader, new_wallet};
use securityguard_e2e::{
    OPERATOR_NAMESPACE, eventually, kubectl, kubectl_ok, s3_credentials, secret_with, wait_deleted,
};
use securityguard_operator::backup::envelope::{self, Keyring};
use securityguard_operator::backup::manifest::{self, Manifest};
use securityguard_operator::crd::{RestorePhase, SecurityGuard};

const GUARD: &str = "shop";
const JOB_IMAGE: &str = "ghcr.io/securityguard/operator:0.1.0";
const TIMEOUT: Duration = Duration::from_secs(240);

/// The guard: two API replicas, the managed datastores, backups into `bucket` (no scheduled
/// backup during the test: the schedule is once a year).
fn with_backups(site: &Site, bucket: &Bucket) -> SecurityGuard {
    site.guard(2).backup(bucket.s3_spec("s3")).backup_schedule("0 0 1 1 *")
}

async fn site(prefix: &str) -> (Site, Bucket, S3) {
    let s3 = S3::start().await;
    let site = Site::new(prefix, GUARD).await;
    let bucket = Bucket::create_at(prefix, s3.endpoint.clone()).await;
    s3_credentials(&site.ns.name, "s3", &bucket.access_key, &bucket.secret_key);
    (site, bucket, s3)
}

/// The pod of a Job once it has finished: it ran on the real node in the operator's image and
/// exited with `code`.
async fn finished_job_pod(site: &Site, job: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(site.client.clone(), &site.ns.name);
    let pod = eventually(&format!("the pod of Job {job} to finish"), TIMEOUT, || async {
        let list = pods.list(&ListParams::default().labels(&format!("job-name={job}"))).await.ok()?;
        list.items
            .into_iter()
            .find(|p| matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed")))
    })
    .await;
    let spec = pod.spec.as_ref().expect("pod spec");
    assert_eq!(spec.node_name.as_deref(), Some(node::node_env("SG_NODE").as_str()));
    assert_eq!(spec.containers[0].image.as_deref(), Some(JOB_IMAGE));
    pod
}

/// Whether the ServiceAccount `account` of `ns` may do this (`kubectl auth can-i`).
fn can_i(ns: &str, account: &str, verb: &str, resource: &str) -> bool {
    let (ok, out, _) = kubectl(
        &["auth", "can-i", verb, resource, "-n", ns, &format!("--as=system:serviceaccount:{ns}:{account}")],
        None,
    );
    ok && out.trim() == "yes"
}

fn exit_code(pod: &Pod) -> Option<i32> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

/// Jobs of the guard with this kind and request.
async fn job_names(site: &Site, kind: &str, request: &str) -> Vec<String> {
    let jobs: Api<Job> = Api::namespaced(site.client.clone(), &site.ns.name);
    let selector = format!("securityguard.io/job={kind},securityguard.io/request={request}");
    let list = jobs.list(&ListParams::default().labels(&selector)).await.expect("list Jobs");
    list.items.into_iter().filter_map(|j| j.metadata.name).collect()
}

fn last_successful_key(guard: &SecurityGuard) -> Option<String> {
    guard.status.as_ref()?.backup.as_ref()?.last_successful.as_ref()?.key.clone()
}

fn restore_phase(guard: &SecurityGuard, request: &str) -> Option<RestorePhase> {
    let restore = guard.status.as_ref()?.restore.as_ref()?;
    (restore.request_id == request).then_some(restore.phase)
}

#[tokio::test]
async fn backups_drills_and_log_archives_run_in_the_operator_image() {
    let _node = node::exclusive().await;
    let (site, bucket, _s3) = site("node-backup").await;
    let ns = site.ns.name.clone();

    // A bucket that does not exist: the on-demand backup's pod fails for real, and the failure
    // is reported without recording anything as good and without the credentials.
    let mut missing = with_backups(&site, &bucket).backup_request("b0").local_backup("1Gi");
    missing.spec.backup.as_mut().expect("backup").s3.bucket = format!("{}-missing", bucket.name);
    site.apply(&missing);
    let failed = site
        .wait("the failed backup of request b0", TIMEOUT, |g| {
            g.status.as_ref().and_then(|s| s.backup.as_ref()).and_then(|b| b.last_failed.as_ref()).is_some()
        })
        .await;
    let failure = failed.status.as_ref().and_then(|s| s.backup.clone()).and_then(|b| b.last_failed).expect("failure");
    assert_eq!(exit_code(&finished_job_pod(&site, &failure.job).await).map(|c| c != 0), Some(true));
    assert!(
        failure.error.as_deref().is_some_and(|e| e.contains("-missing")),
        "the error names the bucket: {failure:?}"
    );
    let status = serde_json::to_string(&failed.status).expect("json");
    assert!(!status.contains(&bucket.secret_key), "no credential in the status");
    assert!(last_successful_key(&failed).is_none());

    // The real bucket, a new request: pg_dump of the managed PostgreSQL streamed into the
    // bucket by a Job in the operator's image, a copy on the local tier's provisioned volume.
    let drilled = with_backups(&site, &bucket).backup_request("b1").local_backup("1Gi").verify_schedule("* * * * *");
    site.apply(&drilled);
    let guard = site.wait("a successful backup", TIMEOUT, |g| last_successful_key(g).is_some()).await;
    let good = guard.status.as_ref().and_then(|s| s.backup.clone()).and_then(|b| b.last_successful).expect("good");
    assert_eq!(exit_code(&finished_job_pod(&site, &good.job).await), Some(0));
    let key = good.key.clone().expect("backup key");
    let keys = bucket.keys().await;
    assert!(keys.contains(&key), "{key} not in the bucket: {keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&key) && k.ends_with(".manifest.json")), "no manifest: {keys:?}");
    assert!(bucket.get(&key).await.starts_with(b"PGDMP"), "a pg_dump custom-format archive");
    let local = node::volume_path(&site.client, &ns, &format!("{GUARD}-backups")).await;
    assert!(local.join(&key).is_file(), "the local tier holds {key} under {}", local.display());

    // The same request again (with another change, so that the operator does reconcile): no
    // new Job, a requestId is acted on once.
    site.apply(&drilled.env("FEATURE_X", "on"));
    site.wait("the change observed", TIMEOUT, |g| {
        g.status.as_ref().and_then(|s| s.observed_generation) == g.metadata.generation
    })
    .await;
    assert_eq!(job_names(&site, "backup", "b1").await.len(), 1, "a requestId is acted on once");

    // The backup pods' identities hold exactly what they need, in this namespace only.
    let backup_sa = format!("{GUARD}-backup");
    let archive_sa = format!("{GUARD}-log-archive");
    assert!(can_i(&ns, &backup_sa, "get", &format!("securityguards.securityguard.io/{GUARD}")));
    assert!(can_i(&ns, &backup_sa, "list", "configmaps"));
    for (verb, resource) in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("list", "pods"),
        ("create", "jobs"),
        ("delete", "securityguards.securityguard.io"),
    ] {
        assert!(!can_i(&ns, &backup_sa, verb, resource), "the backup account must not {verb} {resource}");
    }
    assert!(can_i(&ns, &archive_sa, "get", "pods/log") && can_i(&ns, &archive_sa, "list", "pods"));
    for (verb, resource) in [("get", "secrets"), ("list", "configmaps"), ("delete", "pods")] {
        assert!(!can_i(&ns, &archive_sa, verb, resource), "the log-archive account must not {verb} {resource}");
    }
    assert!(!can_i("default", &backup_sa, "list", "configmaps"), "nothing outside its namespace");

    // The same facts as the leader's metrics, for the RPO alert.
    let metrics = node::leader_metrics(&site.client).await;
    let series = |name: &str| format!("securityguard_operator_{name}{{namespace=\"{ns}\",securityguard=\"{GUARD}\"}}");
    assert_eq!(
        metrics.get(&series("backup_last_size_bytes")),
        good.size_bytes.map(|b| b as f64).as_ref(),
        "{metrics:?}"
    );
    assert!(metrics.get(&series("backup_last_failure_timestamp_seconds")).is_some_and(|t| *t > 1.7e9));

    // The drill, started by its CronJob's schedule (every minute), restores the backup into a
    // scratch database and reports BackupVerified.
    let guard = site
        .wait("BackupVerified=True from a scheduled drill", Duration::from_secs(180), |g| {
            g.status.as_ref().and_then(|s| s.condition("BackupVerified")).is_some_and(|c| c.status == "True")
        })
        .await;
    let condition = guard.status.as_ref().and_then(|s| s.condition("BackupVerified")).cloned().expect("condition");
    let verified = guard.status.and_then(|s| s.backup).and_then(|b| b.last_verified).expect("last verified");
    assert_eq!(verified.key.as_deref(), Some(key.as_str()));
    assert_eq!(exit_code(&finished_job_pod(&site, &verified.job).await), Some(0));

    // The drill measured the recovery it achieved, held to the spec's default targets (the
    // infrastructure guide's 15 minutes and 1 hour): every step took time and fits in the
    // recovery time; the recovery point is the age of the backup's snapshot when it started.
    let recovery = verified.recovery.clone().expect("the drill's figures in the status");
    let steps = recovery.steps;
    let step_seconds = [steps.download_seconds, steps.verify_seconds, steps.restore_seconds, steps.checks_seconds];
    assert!(step_seconds.iter().all(|s| *s > 0.0), "{recovery:?}");
    assert!(step_seconds.iter().sum::<f64>() <= recovery.recovery_time_seconds + 0.004, "{recovery:?}");
    assert!(recovery.recovery_time_seconds < 900.0, "{recovery:?}");
    assert_eq!(
        (recovery.recovery_time_target_seconds, recovery.recovery_point_target_seconds),
        (Some(900.0), Some(3600.0))
    );
    assert!(recovery.missed.is_empty(), "{recovery:?}");
    let age = recovery.started_at.0.duration_since(recovery.backup_taken_at.0).as_secs_f64();
    assert!((recovery.recovery_point_seconds - age).abs() < 1.0, "the status keeps whole seconds: {recovery:?}");
    assert!(recovery.backup_taken_at.0 <= good.finished_at.0, "the snapshot of the backup restored: {recovery:?}");
    assert!(recovery.started_at.0 <= verified.finished_at.0, "{recovery:?}");
    assert!(
        condition.message.contains("recovery time ") && condition.message.contains("recovery point "),
        "{condition:?}"
    );
    // And the leader's metrics carry the figures of the newest drill (drills run every minute
    // here: the newest one when the metrics are read).
    let restore_step = format!(
        "securityguard_operator_backup_verify_step_seconds{{namespace=\"{ns}\",securityguard=\"{GUARD}\",step=\"restore\"}}"
    );
    eventually("the newest drill's figures in the leader's metrics", TIMEOUT, || async {
        let metrics = node::leader_metrics(&site.client).await;
        let guard = site.guards().get(GUARD).await.ok()?;
        let newest = guard.status?.backup?.last_verification?.recovery?;
        let same = metrics.get(&series("backup_verify_recovery_point_seconds")) == Some(&newest.recovery_point_seconds)
            && metrics.get(&series("backup_verify_recovery_time_seconds")) == Some(&newest.recovery_time_seconds)
            && metrics.get(&series("backup_verify_recovery_time_target_seconds")) == Some(&900.0)
            && metrics.get(&series("backup_verify_recovery_point_target_seconds")) == Some(&3600.0)
            && metrics.get(&restore_step) == Some(&newest.steps.restore_seconds);
        same.then_some(())
    })
    .await;
    let jobs: Api<Job> = Api::namespaced(site.client.clone(), &ns);
    let creator = jobs.get(&verified.job).await.expect("drill Job").metadata.owner_references.unwrap_or_default();
    assert!(
        creator.iter().any(|o| o.kind == "CronJob" && o.name == format!("{GUARD}-verify")),
        "the drill was started by its CronJob: {creator:?}"
    );

    // The log archive, run from its CronJob with its own identity: the API containers' real
    // logs, read through the kubelet, land in the bucket.
    // The env change above rolled the API: the archive starts once the old pods are gone, so
    // that it finds the two current ones.
    eventually("two API pods, none terminating", TIMEOUT, || async {
        let pods = node::api_pods(&site.client, &ns, GUARD).await;
        (pods.len() == 2 && pods.iter().all(|p| p.metadata.deletion_timestamp.is_none())).then_some(())
    })
    .await;
    kubectl_ok(&["-n", &ns, "create", "job", "--from", &format!("cronjob/{GUARD}-log-archive"), "logs-1"], None);
    let pod = finished_job_pod(&site, "logs-1").await;
    assert_eq!(exit_code(&pod), Some(0), "{}", node::diagnostics(&ns));
    let archives: Vec<String> =
        bucket.keys().await.into_iter().filter(|k| k.contains("/logs/") && k.ends_with("-api.log.gz")).collect();
    assert_eq!(archives.len(), 2, "one archive per API pod: {archives:?}");
    let mut text = String::new();
    use std::io::Read as _;
    flate2::read::GzDecoder::new(bucket.get(&archives[0]).await.as_slice()).read_to_string(&mut text).expect("gzip");
    assert!(text.contains("securityguard_api"), "the API's own log lines: {}", &text[..text.len().min(500)]);
}

#[tokio::test]
async fn restore_by_edit_brings_the_api_back_with_the_data_of_the_backup() {
    let _node = node::exclusive().await;
    let (site, bucket, _s3) = site("node-restore").await;
    let ns = site.ns.name.clone();
    site.apply(&with_backups(&site, &bucket));
    site.ready(TIMEOUT).await;
    let api = site.api().await;
    api.wait_ready(Duration::from_secs(60)).await;
    let wallet = new_wallet();
    let token = api.sign_in(&wallet).await;

    // Data written through the API, then a backup.
    let kept = api.scan_stored(&token, "phantom.app").await;
    site.apply(&with_backups(&site, &bucket).backup_request("b1"));
    let guard = site.wait("the backup of request b1", TIMEOUT, |g| last_successful_key(g).is_some()).await;
    let backup_key = last_successful_key(&guard).expect("backup key");

    // The data changes after the backup.
    let lost = api.scan_stored(&token, "phant0m.app").await;
    assert_eq!(api.history(&token).await, [lost.clone(), kept.clone()]);

    // The on-call engineer edits the SecurityGuard. The real API pods terminate while the
    // restore scales the API down.
    let pods: Api<Pod> = Api::namespaced(site.client.clone(), &ns);
    let api_selector = format!("app.kubernetes.io/instance={GUARD},app.kubernetes.io/component=api");
    let before: Vec<String> = pods
        .list(&ListParams::default().labels(&api_selector))
        .await
        .expect("API pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(before.len(), 2);
    let terminated = tokio::spawn(api_pods_deleted(pods.clone(), api_selector.clone()));
    site.apply(&with_backups(&site, &bucket).backup_request("b1").restore("r1", "latest"));
    let guard =
        site.wait("restore r1 Completed", TIMEOUT, |g| restore_phase(g, "r1") == Some(RestorePhase::Completed)).await;
    let deleted = terminated.await.expect("watch task");
    for pod in &before {
        assert!(deleted.contains(pod), "API pod {pod} was not terminated during the restore: {deleted:?}");
    }
    let restore = guard.status.and_then(|s| s.restore).expect("restore status");
    assert_eq!(restore.restored_key.as_deref(), Some(backup_key.as_str()));
    for job in job_names(&site, "restore", "r1").await {
        assert_eq!(exit_code(&finished_job_pod(&site, &job).await), Some(0));
    }

    // The API is back with the data as it was at the backup.
    site.ready(TIMEOUT).await;
    api.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(api.history(&token).await, std::slice::from_ref(&kept), "the scan made after the backup is gone");
    let (status, _) = api.get(&format!("/v1/scans/{lost}"), Some(&token)).await.expect("read");
    assert_eq!(status, 404);

    // Again, with the operator's leader pod deleted while the restore runs: the other replica
    // takes over and completes it.
    let again = api.scan_stored(&token, "phant0m.app").await;
    site.apply(&with_backups(&site, &bucket).backup_request("b1").restore("r2", &backup_key));
    site.wait("restore r2 past Pending", TIMEOUT, |g| {
        matches!(restore_phase(g, "r2"), Some(RestorePhase::SafetyBackup | RestorePhase::Restoring))
    })
    .await;
    let old_leader = leader(&site.client).await;
    let operator_pods: Api<Pod> = Api::namespaced(site.client.clone(), OPERATOR_NAMESPACE);
    operator_pods.delete(&old_leader, &DeleteParams::default()).await.expect("delete the leader pod");
    site.wait("restore r2 Completed", TIMEOUT, |g| restore_phase(g, "r2") == Some(RestorePhase::Completed)).await;
    let new_leader = leader(&site.client).await;
    assert_ne!(new_leader, old_leader, "another operator pod leads");
    site.ready(TIMEOUT).await;
    api.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(api.history(&token).await, std::slice::from_ref(&kept), "{again} is gone again");

    // The cluster rebuilt from Git: the SecurityGuard deleted (its data volume and password
    // stay) and re-created from the same manifest, spec.restore r2 included. The ledger in the
    // bucket refuses r2 before anything scales down: the API keeps its pods and the data
    // written since r2 stays.
    let since = api.scan_stored(&token, "phantom-wallet.app").await;
    let manifest = with_backups(&site, &bucket).backup_request("b1").restore("r2", &backup_key);
    site.guards().delete(GUARD, &DeleteParams::foreground()).await.expect("delete the SecurityGuard");
    wait_deleted(site.guards(), GUARD, TIMEOUT).await;
    eventually("the old API pods gone", TIMEOUT, || async {
        node::api_pods(&site.client, &ns, GUARD).await.is_empty().then_some(())
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(site.client.clone(), &ns);
    let replicas = Arc::new(Mutex::new(Vec::new()));
    let watching = tokio::spawn(replicas_seen(deployments, format!("{GUARD}-api"), replicas.clone()));
    site.apply(&manifest);
    let guard =
        site.wait("restore r2 Skipped", TIMEOUT, |g| restore_phase(g, "r2") == Some(RestorePhase::Skipped)).await;
    let restore = guard.status.and_then(|s| s.restore).expect("restore status");
    assert!(
        restore.message.starts_with("request r2 was already handled at ")
            && restore.message.contains(&format!("restored {backup_key} at "))
            && restore.message.contains("for an earlier SecurityGuard of this name")
            && restore.message.contains("set a new requestId to restore again"),
        "{}",
        restore.message
    );
    assert!(restore.error.is_none() && restore.finished_at.is_some(), "{restore:?}");
    for job in job_names(&site, "claim-restore", "r2").await {
        assert_eq!(exit_code(&finished_job_pod(&site, &job).await), Some(0), "the claim ran in the operator image");
    }
    for kind in ["safety-backup", "restore", "rollback"] {
        assert!(job_names(&site, kind, "r2").await.is_empty(), "no {kind} Job for the refused r2");
    }
    let record = format!("securityguard/{ns}/{GUARD}/restores/r2.restore.json");
    let record: serde_json::Value = serde_json::from_slice(&bucket.get(&record).await).expect("the ledger record");
    assert_eq!(record["restoredKey"], backup_key.as_str(), "{record}");
    assert_ne!(record["claimedBy"].as_str(), guard.metadata.uid.as_deref(), "claimed by the deleted object");

    site.ready(TIMEOUT).await;
    watching.abort();
    let seen = replicas.lock().expect("replicas").clone();
    assert!(!seen.is_empty() && seen.iter().all(|r| *r == 2), "the API was never scaled down: {seen:?}");
    let events: Api<Event> = Api::namespaced(site.client.clone(), &ns);
    let skipped = eventually("a RestoreSkipped Event", TIMEOUT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("RestoreSkipped") && e.involved_object.uid == guard.metadata.uid)
    })
    .await;
    assert_eq!(skipped.type_.as_deref(), Some("Warning"), "{skipped:?}");
    let api = site.api().await;
    api.wait_ready(Duration::from_secs(60)).await;
    let token = api.sign_in(&wallet).await;
    assert_eq!(api.history(&token).await, [since, kept], "nothing was restored again");
}

/// Watches a Deployment and records the replicas its spec asks for, every version seen.
async fn replicas_seen(deployments: Api<Deployment>, name: String, seen: Arc<Mutex<Vec<i32>>>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher(deployments, config);
    futures::pin_mut!(stream);
    while let Ok(Some(event)) = stream.try_next().await {
        if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event
            && let Some(replicas) = d.spec.and_then(|s| s.replicas)
            && let Ok(mut list) = seen.lock()
        {
            list.push(replicas);
        }
    }
}

/// A new backup key, as a line of the key Secret: 32 random bytes, hex.
fn random_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex::encode(bytes)
}

/// The fingerprint of the key line `key`, as manifests and errors name it.
fn fingerprint(key: &str) -> String {
    Keyring::parse(key.as_bytes(), "key").expect("a key").current().fingerprint().to_string()
}

/// The key Secret `backup-key` holding `keys` (one a line), replacing any before.
fn key_secret(ns: &str, keys: &[&str]) {
    let _ = kubectl(&["-n", ns, "delete", "secret", "backup-key", "--ignore-not-found"], None);
    let keys = keys.join("\n");
    secret_with(ns, "backup-key", &[("keys", keys.as_str())]);
}

/// Encrypted backups in the operator's image on the real node: the key Secret is mounted into
/// the Job pods and never appears in their spec, the dump in the bucket is sealed; a restore by
/// edit whose Secret no longer holds the backup's key fails before the database is touched,
/// naming both fingerprints, and completes once the old key is kept below the new one.
#[tokio::test]
async fn encrypted_backups_restore_only_with_their_key() {
    let _node = node::exclusive().await;
    let (site, bucket, _s3) = site("node-crypt").await;
    let ns = site.ns.name.clone();
    let (old, new) = (random_key(), random_key());
    key_secret(&ns, &[old.as_str()]);
    let encrypted = |guard: SecurityGuard| guard.backup_encryption("backup-key", "keys");
    site.apply(&encrypted(with_backups(&site, &bucket)));
    site.ready(TIMEOUT).await;
    let api = site.api().await;
    api.wait_ready(Duration::from_secs(60)).await;
    let token = api.sign_in(&new_wallet()).await;
    let kept = api.scan_stored(&token, "phantom.app").await;

    site.apply(&encrypted(with_backups(&site, &bucket).backup_request("b1")));
    let guard = site.wait("the encrypted backup of request b1", TIMEOUT, |g| last_successful_key(g).is_some()).await;
    let good = guard.status.as_ref().and_then(|s| s.backup.clone()).and_then(|b| b.last_successful).expect("good");
    let key = good.key.clone().expect("backup key");
    let pod = finished_job_pod(&site, &good.job).await;
    assert_eq!(exit_code(&pod), Some(0));
    let pod_spec = serde_json::to_string(&pod.spec).expect("json");
    assert!(!pod_spec.contains(&old), "the key reaches the pod as a mounted file only");
    let stored = bucket.get(&key).await;
    assert!(envelope::is_sealed(&stored), "the dump in the bucket is sealed");
    assert!(!stored.windows(5).any(|w| w == b"PGDMP"), "no pg_dump magic in the bucket");
    let manifest_key = manifest::manifest_key(&key);
    let manifest = Manifest::parse(&manifest_key, &bucket.get(&manifest_key).await).expect("manifest");
    assert_eq!(manifest.encryption.map(|e| e.key_fingerprint), Some(fingerprint(&old)));
    let status = serde_json::to_string(&guard.status).expect("json");
    assert!(!status.contains(&old), "no key in the status");

    // The key rotated the wrong way: the Secret holds the new key only.
    key_secret(&ns, &[new.as_str()]);
    let lost = api.scan_stored(&token, "phant0m.app").await;
    site.apply(&encrypted(with_backups(&site, &bucket).backup_request("b1")).restore("r1", &key));
    let guard = site.wait("restore r1 Failed", TIMEOUT, |g| restore_phase(g, "r1") == Some(RestorePhase::Failed)).await;
    let restore = guard.status.and_then(|s| s.restore).expect("restore status");
    let said = format!("{} {}", restore.message, restore.error.clone().unwrap_or_default());
    assert!(
        said.contains(&format!("encrypted with key {}, the key file holds {}", fingerprint(&old), fingerprint(&new))),
        "{restore:?}"
    );
    assert!(!said.contains(&old) && !said.contains(&new), "fingerprints only");
    site.ready(TIMEOUT).await;
    api.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(api.history(&token).await, [lost.clone(), kept.clone()], "the database was not touched");

    // The rotation done right: the new key first, the old one below it.
    key_secret(&ns, &[new.as_str(), old.as_str()]);
    site.apply(&encrypted(with_backups(&site, &bucket).backup_request("b1")).restore("r2", &key));
    site.wait("restore r2 Completed", TIMEOUT, |g| restore_phase(g, "r2") == Some(RestorePhase::Completed)).await;
    site.ready(TIMEOUT).await;
    api.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(api.history(&token).await, [kept], "{lost} is gone: the backup was restored");
}

/// Watches the API pods until none is left, and returns every pod seen deleted.
async fn api_pods_deleted(pods: Api<Pod>, selector: String) -> Vec<String> {
    let mut deleted = Vec::new();
    let mut live = std::collections::BTreeSet::new();
    let stream = watcher(pods, watcher::Config::default().labels(&selector));
    futures::pin_mut!(stream);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.try_next()).await {
            Ok(Ok(Some(event))) => event,
            _ => return deleted,
        };
        match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                if let Some(name) = p.metadata.name {
                    live.insert(name);
                }
            }
            watcher::Event::Delete(p) => {
                if let Some(name) = p.metadata.name {
                    live.remove(&name);
                    deleted.push(name);
                }
                if live.is_empty() {
                    return deleted;
                }
            }
            _ => {}
        }
    }
}
