//! Point-in-time recovery on the real node: the `wal-archiver` container streams the managed
//! PostgreSQL's write-ahead log into the S3 server, and a restore `before:<time>` set by editing
//! the SecurityGuard runs its Job in the PostgreSQL image on the database's own volume, then
//! brings the API back with exactly what was committed before that time.
//!
//! Needs `SG_NODE_CLUSTER_DIR` (`e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR`)
//! and moto (`scripts/services/s3.sh start` installs it).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use securityguard_e2e::backups::Bucket;
use securityguard_e2e::fixtures::GuardFixture;
use securityguard_e2e::node::{self, S3, Site, new_wallet};
use securityguard_e2e::{eventually, s3_credentials};
use securityguard_operator::backup::pitr::{self, window::Window};
use securityguard_operator::crd::{RestorePhase, SecurityGuard};

const GUARD: &str = "ledger";
const TIMEOUT: Duration = Duration::from_secs(300);

fn restore_phase(guard: &SecurityGuard, request: &str) -> Option<RestorePhase> {
    let restore = guard.status.as_ref()?.restore.as_ref()?;
    (restore.request_id == request).then_some(restore.phase)
}

async fn window(bucket: &Bucket, folder: &str) -> Option<Window> {
    pitr::window::load(&bucket.s3, folder).await.ok().map(|l| l.window)
}

#[tokio::test]
async fn a_restore_to_a_time_by_edit_keeps_what_came_before_it_and_nothing_after() {
    let _node = node::exclusive().await;
    let s3 = S3::start().await;
    let site = Site::new("node-pitr", GUARD).await;
    let bucket = Bucket::create_at("node-pitr", s3.endpoint.clone()).await;
    s3_credentials(&site.ns.name, "s3", &bucket.access_key, &bucket.secret_key);
    let ns = site.ns.name.clone();
    let guard = || site.guard(1).backup(bucket.s3_spec("s3")).backup_schedule("0 0 1 1 *").point_in_time();
    site.apply(&guard());
    site.ready(TIMEOUT).await;

    // The archiver runs beside the database, in the operator's image.
    let pods: Api<Pod> = Api::namespaced(site.client.clone(), &ns);
    let selector = format!("app.kubernetes.io/instance={GUARD},app.kubernetes.io/component=postgres");
    let postgres = pods.list(&ListParams::default().labels(&selector)).await.expect("PostgreSQL pods");
    let pod = postgres.items.first().expect("a PostgreSQL pod");
    let archiver = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == "wal-archiver"))
        .expect("a wal-archiver container");
    assert!(archiver.state.as_ref().is_some_and(|s| s.running.is_some()), "{archiver:?}");

    let api = site.api().await;
    api.wait_ready(Duration::from_secs(60)).await;
    let wallet = new_wallet();
    let token = api.sign_in(&wallet).await;

    // The first base backup opens the window; then a scan before the target, one after.
    let folder = pitr::folder("securityguard", &format!("{ns}/{GUARD}"));
    let opened = eventually("a base backup and a window", TIMEOUT, || async {
        window(&bucket, &folder).await.and_then(|w| w.first_recoverable)
    })
    .await;
    eventually("the clock inside the window", TIMEOUT, || async { (Timestamp::now() > opened).then_some(()) }).await;
    let kept = api.scan_stored(&token, "phantom.app").await;
    let written = Timestamp::now();
    eventually("the next whole second", TIMEOUT, || async {
        (Timestamp::now().as_second() > written.as_second()).then_some(())
    })
    .await;
    let target = Timestamp::from_second(Timestamp::now().as_second()).expect("a time");
    let lost = api.scan_stored(&token, "phant0m.app").await;
    let after = Timestamp::now();
    let reached = eventually("the window past the second scan", TIMEOUT, || async {
        window(&bucket, &folder).await.filter(|w| w.last_recoverable.is_some_and(|l| l >= after))
    })
    .await;
    assert_eq!(reached.error, None, "{reached:?}");
    assert_eq!(api.history(&token).await, [lost.clone(), kept.clone()]);

    // The status shows the window once a backup Job read it.
    site.apply(&guard().backup_request("b1"));
    site.wait("the window in the status", TIMEOUT, |g| {
        let status = serde_json::to_value(g.status.as_ref()).unwrap_or_default();
        status["backup"]["pointInTime"]["lastRecoverable"].as_str().is_some_and(|l| l >= target.to_string().as_str())
    })
    .await;

    // A target outside the window is refused before anything scales down.
    let too_late = format!("before:{}", Timestamp::from_second(after.as_second() + 3600).expect("a time"));
    site.apply(&guard().backup_request("b1").restore("r0", &too_late));
    let refused =
        site.wait("restore r0 Failed", TIMEOUT, |g| restore_phase(g, "r0") == Some(RestorePhase::Failed)).await;
    let message = refused.status.and_then(|s| s.restore).map(|r| r.message).unwrap_or_default();
    assert!(message.contains("outside the point-in-time window"), "{message}");
    site.ready(TIMEOUT).await;

    // The on-call engineer asks for the state just before the second scan.
    site.apply(&guard().backup_request("b1").restore("r1", &format!("before:{target}")));
    let done =
        site.wait("restore r1 Completed", TIMEOUT, |g| restore_phase(g, "r1") == Some(RestorePhase::Completed)).await;
    let restore = done.status.and_then(|s| s.restore).expect("restore status");
    assert!(restore.error.is_none(), "{restore:?}");
    let jobs: Api<Job> = Api::namespaced(site.client.clone(), &ns);
    let restore_jobs = jobs
        .list(&ListParams::default().labels("securityguard.io/job=restore,securityguard.io/request=r1"))
        .await
        .expect("Jobs");
    let job = restore_jobs.items.first().expect("the restore Job");
    let image = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].image.clone().unwrap_or_default());
    assert_eq!(
        image.as_deref(),
        pod.spec
            .as_ref()
            .map(|s| s
                .containers
                .iter()
                .find(|c| c.name == "postgres")
                .and_then(|c| c.image.clone())
                .unwrap_or_default())
            .as_deref(),
        "the recovery runs in the PostgreSQL image"
    );

    site.ready(TIMEOUT).await;
    let api = site.api().await;
    api.wait_ready(Duration::from_secs(60)).await;
    let token = api.sign_in(&wallet).await;
    assert_eq!(api.history(&token).await, std::slice::from_ref(&kept), "the scan made after the target is gone");
    let (status, _) = api.get(&format!("/v1/scans/{lost}"), Some(&token)).await.expect("read");
    assert_eq!(status, 404);
}
