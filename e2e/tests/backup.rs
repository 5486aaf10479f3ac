//! The restore state machine at exact moments, on the kwok control plane: the Jobs' pods (the
//! claim in the restore ledger included) are played by `securityguard_e2e::kubelet`, which runs each pod's own command, arguments and
//! environment as a local process against the local PostgreSQL and S3-compatible server, and
//! can make a restore pod die at a chosen point (after it started changing the database) or
//! restart the operator between two phases. Backups, drills, log archives and restore by edit
//! in real containers are in `node_backup.rs`; what stays here needs that control of time.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use securityguard_e2e::fixtures::{GuardFixture, apply, s3};
use securityguard_e2e::kubelet::{kill_job_pod, run_job_pod};
use securityguard_e2e::local::env;
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, eventually, s3_credentials, secret, wait_for,
};
use securityguard_operator::crd::{RestorePhase, S3Spec, SecurityGuard};

const TIMEOUT: Duration = Duration::from_secs(120);
const GUARD: &str = "shop";

/// `psql` against the test server, one command, unaligned output.
fn psql(database_url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([database_url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A database on the local PostgreSQL, a bucket name on the S3 server, the Secrets, and a
/// SecurityGuard with external datastores pointing at them.
struct Fixture {
    client: Client,
    ns: TempNamespace,
    database_url: String,
    admin_url: String,
    database: String,
    bucket: String,
    operator: Operator,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        let client = admin().await;
        let ns = TempNamespace::create(&client, prefix).await;
        let admin_url = env("SG_TEST_DATABASE_URL");
        let database = ns.name.replace('-', "_");
        psql(&admin_url, &format!("CREATE DATABASE {database}"));
        let database_url = with_database(&admin_url, &database);
        psql(&database_url, "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)");
        psql(&database_url, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g");
        secret(&ns.name, "jwt", "secret", JWT);
        secret(&ns.name, "db", "url", &database_url);
        secret(&ns.name, "cache", "url", &env("SG_TEST_REDIS_URL"));
        s3_credentials(&ns.name, "s3", &env("SG_TEST_S3_ACCESS_KEY_ID"), &env("SG_TEST_S3_SECRET_ACCESS_KEY"));
        let bucket = format!("{}-backups", ns.name);
        let operator = Operator::start(&OperatorOptions::for_namespace(&ns.name)).await;
        Self { client, ns, database_url, admin_url, database, bucket, operator }
    }

    /// Stops the operator and starts a new one (which takes over the Lease).
    async fn restart_operator(&mut self) {
        let status = self.operator.stop();
        assert!(status.success(), "the operator stops cleanly: {status}");
        self.operator = Operator::start(&OperatorOptions::for_namespace(&self.ns.name)).await;
    }

    fn create_bucket(&self) {
        let url = format!("{}/{}", env("SG_TEST_S3_ENDPOINT"), self.bucket);
        let out = std::process::Command::new("curl").args(["-fsS", "-X", "PUT", &url]).output().expect("curl runs");
        assert!(out.status.success(), "creating bucket {}: {}", self.bucket, String::from_utf8_lossy(&out.stderr));
    }

    /// The SecurityGuard: two API replicas, the local PostgreSQL and Redis as external
    /// datastores, backups into the bucket on the local S3 server.
    fn guard(&self) -> SecurityGuard {
        let s3 = S3Spec {
            endpoint: Some(env("SG_TEST_S3_ENDPOINT")),
            region: env("SG_TEST_S3_REGION"),
            path_style: true,
            ..s3(&self.bucket, "s3")
        };
        SecurityGuard::test(GUARD)
            .in_namespace(&self.ns.name)
            .image("securityguard/api:e2e")
            .jwt_secret("jwt", "secret")
            .fixed_replicas(2)
            .external_postgres("db", "url")
            .external_redis("cache", "url")
            .backup(s3)
    }

    fn guards(&self) -> Api<SecurityGuard> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    fn count(&self) -> i64 {
        psql(&self.database_url, "SELECT count(*) FROM items").parse().expect("a count")
    }

    /// Jobs of this guard with the given kind and request.
    async fn jobs(&self, kind: &str, request: Option<&str>) -> Vec<Job> {
        let mut selector = format!("securityguard.io/job={kind}");
        if let Some(request) = request {
            selector.push_str(&format!(",securityguard.io/request={request}"));
        }
        Api::<Job>::namespaced(self.client.clone(), &self.ns.name)
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list Jobs")
            .items
    }

    /// Waits for exactly one Job of that kind and request, and returns its name.
    async fn one_job(&self, kind: &str, request: &str) -> String {
        let jobs = eventually(&format!("the {kind} Job of request {request}"), TIMEOUT, || async {
            let jobs = self.jobs(kind, Some(request)).await;
            (!jobs.is_empty()).then_some(jobs)
        })
        .await;
        assert_eq!(jobs.len(), 1, "one {kind} Job for request {request}");
        jobs[0].name_any()
    }

    /// Waits until the operator has seen the current generation.
    async fn observed(&self) -> SecurityGuard {
        wait_for(self.guards(), GUARD, TIMEOUT, |g: &SecurityGuard| {
            g.status.as_ref().and_then(|s| s.observed_generation) == g.metadata.generation
        })
        .await
    }

    async fn wait_phase(&self, phase: RestorePhase) -> SecurityGuard {
        wait_for(self.guards(), GUARD, TIMEOUT, |g: &SecurityGuard| {
            g.status.as_ref().and_then(|s| s.restore.as_ref()).is_some_and(|r| r.phase == phase)
        })
        .await
    }

    async fn deployment_replicas(&self, replicas: i32) {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns.name);
        wait_for(api, &format!("{GUARD}-api"), TIMEOUT, |d: &Deployment| {
            d.spec.as_ref().and_then(|s| s.replicas) == Some(replicas)
                && d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) == replicas
        })
        .await;
    }

    async fn cron_jobs_suspended(&self, suspended: bool) {
        let api: Api<CronJob> = Api::namespaced(self.client.clone(), &self.ns.name);
        for name in ["backup", "verify", "log-archive"] {
            wait_for(api.clone(), &format!("{GUARD}-{name}"), TIMEOUT, |c: &CronJob| {
                c.spec.as_ref().and_then(|s| s.suspend) == Some(suspended)
            })
            .await;
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::env::var_os("KEEP").is_none() {
            let _ = std::process::Command::new("psql")
                .args([
                    &self.admin_url,
                    "-Xq",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
                ])
                .output();
        }
    }
}

fn with_database(url: &str, database: &str) -> String {
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    format!("{base}/{database}")
}

#[tokio::test]
async fn restore_by_edit_and_rollback_after_a_failed_restore() {
    let mut f = Fixture::new("restore").await;
    let ns = f.ns.name.clone();
    f.create_bucket();
    apply(&f.guard().backup_request("b1"));
    f.deployment_replicas(2).await;
    let job = f.one_job("backup", "b1").await;
    assert_eq!(run_job_pod(&f.client, &ns, &job).await.exit_code, 0);
    let guard = wait_for(f.guards(), GUARD, TIMEOUT, |g: &SecurityGuard| {
        g.status.as_ref().and_then(|s| s.backup.as_ref()).and_then(|b| b.last_successful.as_ref()).is_some()
    })
    .await;
    let backup_key =
        guard.status.and_then(|s| s.backup).and_then(|b| b.last_successful).and_then(|r| r.key).expect("backup key");

    // Later writes that the restore must undo.
    psql(&f.database_url, "INSERT INTO items SELECT g, 'late ' || g FROM generate_series(101, 150) g");
    assert_eq!(f.count(), 150);

    // The on-call engineer edits the SecurityGuard.
    apply(&f.guard().backup_request("b1").restore("r1", "latest"));
    let guard = wait_for(f.guards(), GUARD, TIMEOUT, |g: &SecurityGuard| {
        g.status.as_ref().and_then(|s| s.restore.as_ref()).is_some_and(|r| r.request_id == "r1")
    })
    .await;
    let uid = guard.metadata.uid.clone().expect("uid");
    let restore = guard.status.and_then(|s| s.restore).expect("restore status");
    assert_eq!(restore.recorded_replicas, 2, "the size is recorded first");
    // The request is claimed in the restore ledger while the API still runs.
    let claim = f.one_job("claim-restore", "r1").await;
    f.deployment_replicas(2).await;
    let run = run_job_pod(&f.client, &ns, &claim).await;
    assert_eq!(run.exit_code, 0, "claim: {}", run.stderr);
    assert_eq!(run.env.get("SG_RESTORE_CLAIMANT"), Some(&uid), "the SecurityGuard object claims");
    assert!(run.message.contains(r#""verdict":"claimed""#), "{}", run.message);
    f.deployment_replicas(0).await;
    f.cron_jobs_suspended(true).await;
    let api_pods: Api<Pod> = Api::namespaced(f.client.clone(), &ns);
    eventually("no API pod left", TIMEOUT, || async {
        let pods = api_pods.list(&ListParams::default().labels("app.kubernetes.io/component=api")).await.ok()?;
        pods.items.is_empty().then_some(())
    })
    .await;

    let safety = f.one_job("safety-backup", "r1").await;
    // An operator restarted in the middle of a restore resumes it.
    f.restart_operator().await;
    let run = run_job_pod(&f.client, &ns, &safety).await;
    assert_eq!(run.exit_code, 0, "safety backup: {}", run.stderr);
    assert_eq!(run.env.get("SG_GUARD").map(String::as_str), Some(format!("{ns}/.safety/{GUARD}").as_str()));

    let restore_job = f.one_job("restore", "r1").await;
    let run = run_job_pod(&f.client, &ns, &restore_job).await;
    assert_eq!(run.exit_code, 0, "restore: {}", run.stderr);
    assert_eq!(run.env.get("SG_RESTORE_SOURCE").map(String::as_str), Some("latest"));
    assert_eq!(f.count(), 100, "the database holds the backup again");

    let guard = f.wait_phase(RestorePhase::Completed).await;
    let restore = guard.status.and_then(|s| s.restore).expect("restore status");
    assert_eq!(
        restore.restored_key.as_deref(),
        Some(backup_key.as_str()),
        "latest is the scheduled backup, not the safety one"
    );
    assert!(restore.safety_backup_key.as_deref().is_some_and(|k| k.contains("/.safety/")));
    f.deployment_replicas(2).await;
    f.cron_jobs_suspended(false).await;

    // GitOps re-sync of the same requestId: nothing happens.
    apply(&f.guard().backup_request("b1").restore("r1", "latest").env("FEATURE_X", "on"));
    f.observed().await;
    assert_eq!(f.jobs("restore", Some("r1")).await.len(), 1);
    assert_eq!(f.jobs("safety-backup", Some("r1")).await.len(), 1);
    assert_eq!(
        f.guards().get(GUARD).await.expect("guard").status.and_then(|s| s.restore).map(|r| r.phase),
        Some(RestorePhase::Completed)
    );

    // A restore whose pod dies after it started changing the database: the safety backup is
    // restored and the data is as before.
    psql(&f.database_url, "INSERT INTO items SELECT g, 'again ' || g FROM generate_series(101, 120) g");
    let before = psql(&f.database_url, "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items");
    apply(&f.guard().backup_request("b1").restore("r2", &backup_key));
    let claim = f.one_job("claim-restore", "r2").await;
    assert_eq!(run_job_pod(&f.client, &ns, &claim).await.exit_code, 0);
    let safety = f.one_job("safety-backup", "r2").await;
    assert_eq!(run_job_pod(&f.client, &ns, &safety).await.exit_code, 0);
    let restore_job = f.one_job("restore", "r2").await;
    psql(&f.database_url, "DELETE FROM items WHERE id > 50");
    kill_job_pod(&f.client, &ns, &restore_job, 137).await;
    f.wait_phase(RestorePhase::RollingBack).await;
    let rollback = f.one_job("rollback", "r2").await;
    let run = run_job_pod(&f.client, &ns, &rollback).await;
    assert_eq!(run.exit_code, 0, "rollback: {}", run.stderr);
    assert!(
        run.env.get("SG_RESTORE_SOURCE").is_some_and(|s| s.contains("/.safety/")),
        "{:?}",
        run.env.get("SG_RESTORE_SOURCE")
    );
    let guard = f.wait_phase(RestorePhase::Failed).await;
    let restore = guard.status.and_then(|s| s.restore).expect("restore status");
    assert!(restore.message.contains("the data is as before"), "{}", restore.message);
    assert_eq!(psql(&f.database_url, "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items"), before);
    f.deployment_replicas(2).await;
}
