//! The backup data path end to end: the real `securityguard-operator` binary, run with the
//! arguments and environment a Job would give it, against a real PostgreSQL (a fresh database
//! per test) and a real S3-compatible server (a fresh bucket per test).
//!
//! Needs the servers started by
//!   scripts/services/start.sh && scripts/services/s3.sh start
//!   source "${SG_CACHE:-$HOME/.cache/securityguard}/services/env"
//!   source "${SG_CACHE:-$HOME/.cache/securityguard}/services/s3.env"

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use securityguard_operator::backup::envelope::{self, Keyring};
use securityguard_operator::backup::ledger;
use securityguard_operator::backup::manifest::{self, Manifest};
use securityguard_operator::backup::pg::{self, DbUrl};
use securityguard_operator::backup::store::{self, S3Store, Store};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PREFIX: &str = "backups";
const GUARD: &str = "prod";
/// Longest a run of the binary may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The servers, from the environment written by the service scripts.
struct Servers {
    database_url: DbUrl,
    s3_endpoint: String,
    region: String,
    access_key: String,
    secret_key: String,
    pg_bin: Option<String>,
}

fn servers() -> Servers {
    let need = |name: &str, how: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set. Start the servers and load their environment:\n  {how}\n  \
                 source \"${{SG_CACHE:-$HOME/.cache/securityguard}}/services/env\"\n  \
                 source \"${{SG_CACHE:-$HOME/.cache/securityguard}}/services/s3.env\""
            )
        })
    };
    let database_url = need("SG_TEST_DATABASE_URL", "scripts/services/start.sh");
    let s3_endpoint = need("SG_TEST_S3_ENDPOINT", "scripts/services/s3.sh start");
    Servers {
        database_url: DbUrl::parse(&database_url).expect("SG_TEST_DATABASE_URL"),
        s3_endpoint,
        region: std::env::var("SG_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        access_key: std::env::var("SG_TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".into()),
        secret_key: std::env::var("SG_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".into()),
        pg_bin: std::env::var("SG_PG_BIN").ok(),
    }
}

/// A new key as a key file line: 32 random bytes, hex.
fn new_key() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

fn random_suffix() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// A fresh database and bucket. The database is dropped at the end; buckets live in the memory
/// of the test server.
struct Fixture {
    servers: Servers,
    database: String,
    url: DbUrl,
    bucket: String,
    s3: S3Store,
    dir: tempfile::TempDir,
    /// Whether `cleanup` dropped the database.
    dropped: bool,
}

impl Fixture {
    async fn new() -> Self {
        let servers = servers();
        let bucket = format!("sg-backup-test-{}", random_suffix());
        let s3 = s3_store(&servers, &servers.s3_endpoint, &bucket);
        s3.client.create_bucket().bucket(&bucket).send().await.expect("create bucket");
        let database = format!("sg_backup_test_{}", random_suffix());
        pg::create_database(&servers.database_url, &database).await.expect("create database");
        let url = servers.database_url.with_database(&database);
        let dir = tempfile::tempdir().expect("temp dir");
        Fixture { servers, database, url, bucket, s3, dir, dropped: false }
    }

    fn local_dir(&self) -> PathBuf {
        self.dir.path().join("local-tier")
    }

    /// The environment of a backup or restore Job.
    fn job_env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("DATABASE_URL", with_password(&self.url)),
            ("SG_BACKUP_BUCKET", self.bucket.clone()),
            ("SG_BACKUP_PREFIX", PREFIX.to_owned()),
            ("SG_GUARD", GUARD.to_owned()),
            ("SG_BACKUP_ENDPOINT", endpoint.to_owned()),
            ("SG_BACKUP_REGION", self.servers.region.clone()),
            ("SG_BACKUP_PATH_STYLE", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", self.servers.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.servers.secret_key.clone()),
            ("SG_RESTORE_WORK_DIR", self.dir.path().display().to_string()),
            ("SG_TERMINATION_LOG", self.termination_log().display().to_string()),
        ];
        if let Some(bin) = &self.servers.pg_bin {
            env.push(("SG_PG_BIN", bin.clone()));
        }
        env
    }

    fn termination_log(&self) -> PathBuf {
        self.dir.path().join("termination-log")
    }

    /// The termination message of the last run, as the pod status would show it.
    fn termination(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.termination_log()).expect("termination message");
        assert!(text.len() <= 4096, "the kubelet keeps 4096 bytes");
        serde_json::from_str(&text).expect("termination message JSON")
    }

    async fn run(&self, args: &[&str], env: &[(&'static str, String)]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_securityguard-operator"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let _ = std::fs::remove_file(self.termination_log());
        let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("securityguard-operator {args:?} ran longer than {RUN_TIMEOUT:?}"))
            .expect("run securityguard-operator");
        eprintln!(
            "--- securityguard-operator {args:?}: {}\n--- stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    async fn backup(&self, extra: &[&str]) -> Output {
        let mut args = vec!["backup"];
        args.extend_from_slice(extra);
        self.run(&args, &self.job_env(&self.servers.s3_endpoint)).await
    }

    async fn restore(&self, extra: &[&str]) -> Output {
        let mut args = vec!["restore"];
        args.extend_from_slice(extra);
        self.run(&args, &self.job_env(&self.servers.s3_endpoint)).await
    }

    async fn list_json(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["backups", "list", "--output", "json"];
        args.extend_from_slice(extra);
        let output = self.run(&args, &self.job_env(&self.servers.s3_endpoint)).await;
        assert!(output.status.success(), "backups list failed");
        serde_json::from_slice(&output.stdout).expect("list JSON")
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(self.url.full()).await.expect("connect")
    }

    async fn sql(&self, statements: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(statements).execute(&mut conn).await.expect("SQL");
    }

    /// Every row of every table, as text, to compare databases.
    async fn contents(&self) -> BTreeMap<String, Vec<String>> {
        let mut conn = self.connect().await;
        let tables = sqlx::query(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
              WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("tables");
        let mut out = BTreeMap::new();
        for table in tables {
            let name: String = table.get(0);
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {name} t ORDER BY 1"))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
            out.insert(name, rows);
        }
        out
    }

    /// Every key in the bucket, sorted.
    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            Store::S3(self.s3.clone()).list("").await.expect("list").into_iter().map(|o| o.key).collect();
        keys.sort();
        keys
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        let body = self.s3.get(key).await.expect("get");
        body.collect().await.expect("body").into_bytes().to_vec()
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .expect("put");
    }

    async fn manifest(&self, dump_key: &str) -> Manifest {
        let key = manifest::manifest_key(dump_key);
        Manifest::parse(&key, &self.get(&key).await).expect("manifest")
    }

    /// A key file named `name` holding `keys` (one a line), and the keys' fingerprints.
    fn key_file(&self, name: &str, keys: &[&str]) -> (String, Vec<String>) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("# test keys\n{}\n", keys.join("\n"))).expect("key file");
        let keyring = Keyring::parse(keys.join("\n").as_bytes(), name).expect("keys");
        (path.display().to_string(), keyring.fingerprints().iter().map(ToString::to_string).collect())
    }

    async fn database_exists(&self, name: &str) -> bool {
        let mut conn = PgConnection::connect(self.servers.database_url.full()).await.expect("connect");
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .expect("pg_database")
    }

    async fn cleanup(mut self) {
        pg::drop_database(&self.servers.database_url, &self.database).await.expect("drop database");
        self.dropped = true;
    }
}

/// A test that failed before `cleanup` still drops its database, unless SG_KEEP_TEST_DATABASES
/// is set to look at it.
impl Drop for Fixture {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if std::env::var_os("SG_KEEP_TEST_DATABASES").is_some() {
            eprintln!("keeping database {} and bucket {}", self.database, self.bucket);
            return;
        }
        let (admin, database) = (self.servers.database_url.clone(), self.database.clone());
        // Drop runs inside the test's runtime: a thread of its own may block on another.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(pg::drop_database(&admin, &database))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop database {}", self.database);
        }
    }
}

fn s3_store(servers: &Servers, endpoint: &str, bucket: &str) -> S3Store {
    let credentials =
        aws_sdk_s3::config::Credentials::new(&servers.access_key, &servers.secret_key, None, None, "test");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(servers.region.clone()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .http_client(store::https_client())
        .build();
    S3Store { client: aws_sdk_s3::Client::from_conf(config), bucket: bucket.to_owned(), server_side_encryption: None }
}

/// The test server trusts loopback connections and ignores passwords: one in the URL proves that
/// it is never logged.
const PASSWORD: &str = "hunter2-never-logged";

fn with_password(url: &DbUrl) -> String {
    let mut url = url::Url::parse(url.full()).expect("url");
    url.set_password(Some(PASSWORD)).expect("password");
    url.to_string()
}

const SCHEMA: &str = "
    CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, created timestamptz NOT NULL DEFAULT now());
    CREATE SCHEMA audit;
    CREATE TABLE audit.events (id bigserial PRIMARY KEY, user_id int REFERENCES users(id), payload jsonb);
    CREATE TABLE empty_table (id int);
    INSERT INTO users (name) SELECT 'user ' || i FROM generate_series(1, 250) i;
    INSERT INTO audit.events (user_id, payload)
        SELECT 1 + i % 250, jsonb_build_object('n', i, 'note', md5(i::text)) FROM generate_series(1, 1000) i;
";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn dump_keys(keys: &[String]) -> Vec<String> {
    keys.iter().filter(|k| k.ends_with(manifest::DUMP_SUFFIX)).cloned().collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn backup_list_and_restore_round_trip() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let before = fx.contents().await;
    let local = fx.local_dir();
    let local_arg = local.display().to_string();

    let output = fx.backup(&["--local-dir", &local_arg]).await;
    assert!(output.status.success(), "backup failed: {}", stderr(&output));
    assert!(!stderr(&output).contains(PASSWORD), "the password is never logged");
    assert!(stderr(&output).contains(":***@"), "the URL is logged with its password hidden");
    assert!(stderr(&output).contains("\"message\":\"dump progress\""), "progress is logged as JSON lines");
    let summary = fx.termination();
    assert_eq!(summary["result"], "succeeded");
    assert_eq!(summary["deleted"], serde_json::json!({"s3": 0, "local": 0}));

    // One dump and its manifest, under <prefix>/<guard>/.
    let keys = fx.keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let key = dump_keys(&keys).pop().expect("a dump");
    assert!(key.starts_with("backups/prod/"), "{key}");
    assert_eq!(keys[1], manifest::manifest_key(&key));

    let dump = fx.get(&key).await;
    assert!(dump.starts_with(b"PGDMP"), "custom format");
    let manifest = fx.manifest(&key).await;
    assert_eq!(manifest.key, key);
    assert_eq!(summary["key"], key.as_str());
    assert_eq!(summary["size"], manifest.size);
    assert_eq!(manifest.database, fx.database);
    assert_eq!(manifest.guard.as_deref(), Some(GUARD));
    assert_eq!(manifest.size, dump.len() as u64);
    assert_eq!(manifest.sha256, sha256(&dump));
    assert_eq!(
        manifest.row_counts,
        BTreeMap::from([("audit.events".into(), 1000), ("public.empty_table".into(), 0), ("public.users".into(), 250)])
    );
    assert!(manifest.postgres_version.starts_with("15"), "{}", manifest.postgres_version);
    assert!(manifest.pg_dump_version.contains("15."), "{}", manifest.pg_dump_version);
    assert_eq!(manifest.operator_version, env!("CARGO_PKG_VERSION"));
    assert!(manifest.started_at <= manifest.finished_at);

    // The local tier holds the same bytes and the same manifest.
    let local_dump = std::fs::read(local.join(&key)).expect("local dump");
    assert_eq!(sha256(&local_dump), manifest.sha256);
    let local_manifest_path = local.join(manifest::manifest_key(&key));
    let local_manifest = Manifest::parse("local", &std::fs::read(&local_manifest_path).expect("local manifest"))
        .expect("local manifest");
    assert_eq!(local_manifest, manifest);

    // Listed as good, in JSON and as a table.
    let listed = fx.list_json(&[]).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["key"], key.as_str());
    assert_eq!(listed[0]["state"], "good");
    assert_eq!(listed[0]["size"], dump.len());
    let table = fx.run(&["backups", "list"], &fx.job_env(&fx.servers.s3_endpoint)).await;
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.starts_with("TIME"), "{table}");
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("good") && l.contains(&key)), "{table}");

    // Damage the data, then restore the latest backup: identical to the time of the backup.
    fx.sql("DELETE FROM audit.events WHERE id % 2 = 0; UPDATE users SET name = 'changed'; DROP TABLE empty_table;")
        .await;
    assert_ne!(fx.contents().await, before);
    let output = fx.restore(&["--source", "latest"]).await;
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    assert!(stderr(&output).contains("row counts match the manifest"));
    assert_eq!(fx.contents().await, before);
    assert_eq!(fx.termination()["databaseChanged"], true);

    // The restore drill uses a scratch database and drops it; the target is not touched.
    fx.sql("INSERT INTO users (name) VALUES ('after the backup')").await;
    let after = fx.contents().await;
    let scratch = format!("{}_drill", fx.database);
    let output = fx.restore(&["--source", &key, "--verify-only", "--scratch-database", &scratch]).await;
    assert!(output.status.success(), "drill failed: {}", stderr(&output));
    assert!(!fx.database_exists(&scratch).await, "the scratch database is dropped");
    assert_eq!(fx.termination()["databaseChanged"], false, "a drill never changes the target");
    assert_eq!(fx.contents().await, after);

    // The local tier restores too (S3 not needed).
    let mut env: Vec<_> =
        fx.job_env("http://127.0.0.1:9").into_iter().filter(|(n, _)| *n != "SG_BACKUP_BUCKET").collect();
    env.push(("SG_BACKUP_LOCAL_DIR", local_arg.clone()));
    let output = fx.run(&["restore", "--source", "latest"], &env).await;
    assert!(output.status.success(), "local restore failed: {}", stderr(&output));
    assert_eq!(fx.contents().await, before);

    fx.cleanup().await;
}

/// Copies the real backup `key` under a new key at `at`, as a good backup of that time.
/// Managed PostgreSQL services require TLS: with `sslmode=require` both the snapshot connection
/// (sqlx) and pg_dump connect over TLS (the test server has a self-signed certificate,
/// scripts/services/start.sh), and the backup is recorded with its row counts.
#[tokio::test]
async fn a_backup_over_tls_with_sslmode_require() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    let (_, url) = env.iter_mut().find(|(name, _)| *name == "DATABASE_URL").expect("DATABASE_URL");
    url.push_str("?sslmode=require");
    let output = fx.run(&["backup"], &env).await;
    assert!(output.status.success(), "backup over TLS failed: {}", stderr(&output));
    let summary = fx.termination();
    assert_eq!(summary["result"], "succeeded");
    let key = summary["key"].as_str().expect("key").to_owned();
    let manifest = fx.manifest(&key).await;
    assert_eq!(manifest.row_counts.get("public.users"), Some(&250));
    fx.cleanup().await;
}

async fn plant_good(fx: &Fixture, key: &str, at: Timestamp) -> String {
    let new_key = manifest::new_dump_key(PREFIX, Some(GUARD), at);
    fx.put(&new_key, fx.get(key).await).await;
    let mut manifest = fx.manifest(key).await;
    manifest.key = new_key.clone();
    manifest.started_at = at;
    manifest.finished_at = at;
    fx.put(&manifest::manifest_key(&new_key), manifest.to_json()).await;
    new_key
}

#[tokio::test]
async fn retention_deletes_old_backups_but_keeps_the_newest_good_ones() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let first = dump_keys(&fx.keys().await).pop().expect("first");

    let now = Timestamp::now();
    let days = |n: i64| now.checked_sub(SignedDuration::from_hours(24 * n)).expect("time");
    let d10 = plant_good(&fx, &first, days(10)).await;
    let d100 = plant_good(&fx, &first, days(100)).await;
    let d101 = plant_good(&fx, &first, days(101)).await;
    let d102 = plant_good(&fx, &first, days(102)).await;
    // An upload that never finished, long ago: no manifest.
    let incomplete = manifest::new_dump_key(PREFIX, Some(GUARD), days(120));
    fx.put(&incomplete, b"PGDMP partial".to_vec()).await;

    // Another guard's backups share the bucket and are never touched.
    let other = manifest::new_dump_key(PREFIX, Some("staging"), days(300));
    fx.put(&other, b"PGDMP other".to_vec()).await;

    // 90 days, but the newest 4 good ones stay whatever their age: the new one, first, d10, d100.
    let output = fx.backup(&["--retention-days-s3", "90", "--keep-last", "4"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let keys = fx.keys().await;
    let dumps = dump_keys(&keys);
    assert_eq!(dumps.len(), 5, "{keys:?}");
    for kept in [&first, &d10, &d100] {
        assert!(keys.contains(kept) && keys.contains(&manifest::manifest_key(kept)), "{kept} kept: {keys:?}");
    }
    for gone in [&d101, &d102, &incomplete] {
        assert!(!keys.contains(gone) && !keys.contains(&manifest::manifest_key(gone)), "{gone} deleted: {keys:?}");
    }
    assert!(keys.contains(&other), "other guards are not touched");

    // Retention 0 days with the default floor of 3: only the newest 3 good backups remain.
    let output = fx.backup(&["--retention-days-s3", "0"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let keys = fx.keys().await;
    let listed = fx.list_json(&["--guard", GUARD]).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|b| b["state"] == "good"), "{listed:?}");
    assert!(!keys.contains(&d10) && !keys.contains(&d100), "{keys:?}");
    let times: Vec<&str> = listed.iter().map(|b| b["time"].as_str().expect("time")).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    fx.cleanup().await;
}

/// A TCP proxy to the S3 server that goes dark once `cut_after` bytes went through towards the
/// server: open connections are dropped and new ones refused.
async fn cutting_proxy(target: SocketAddr, cut_after: u64) -> (SocketAddr, watch::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let (cut_tx, cut_rx) = watch::channel(false);
    let cut_tx = Arc::new(cut_tx);
    let sent = Arc::new(AtomicU64::new(0));
    let mut cut_watch = cut_rx.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = cut_watch.wait_for(|cut| *cut) => return, // drops the listener: refused
            };
            let Ok((client, _)) = accepted else { return };
            let (cut_tx, sent, mut cut) = (cut_tx.clone(), sent.clone(), cut_watch.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = client_read.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > cut_after {
                            cut_tx.send_replace(true);
                            return;
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let downstream = tokio::io::copy(&mut server_read, &mut client_write);
                tokio::select! {
                    _ = upstream => {}
                    _ = downstream => {}
                    _ = cut.wait_for(|cut| *cut) => {}
                }
            });
        }
    });
    (addr, cut_rx)
}

#[tokio::test]
async fn s3_unreachable_mid_upload_fails_without_manifest_and_deletes_nothing() {
    let fx = Fixture::new().await;
    // About 14 MB of incompressible-ish text: a dump of three 5 MiB parts.
    fx.sql(
        "CREATE TABLE blobs (id int, a text, b text);
         INSERT INTO blobs SELECT i, md5(random()::text) || md5(random()::text), md5(random()::text)
           FROM generate_series(1, 200000) i;",
    )
    .await;
    // An old good backup that retention would delete: a failed backup must not.
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let first = dump_keys(&fx.keys().await).pop().expect("first");
    let old =
        plant_good(&fx, &first, Timestamp::now().checked_sub(SignedDuration::from_hours(24 * 400)).expect("time"))
            .await;
    let keys_before = fx.keys().await;

    let target: SocketAddr = fx.servers.s3_endpoint.trim_start_matches("http://").parse().expect("endpoint host:port");
    let (proxy, cut) = cutting_proxy(target, 7 * 1024 * 1024).await;
    let local = fx.local_dir();
    let local_arg = local.display().to_string();
    let mut env = fx.job_env(&format!("http://{proxy}"));
    env.push(("SG_BACKUP_PART_SIZE_MIB", "5".into()));
    env.push(("SG_BACKUP_RETENTION_DAYS_S3", "0".into()));
    env.push(("SG_BACKUP_KEEP_LAST", "1".into()));
    env.push(("SG_BACKUP_LOCAL_DIR", local_arg));
    let output = fx.run(&["backup"], &env).await;

    assert!(*cut.borrow(), "the proxy cut the connection mid-upload");
    assert!(!output.status.success(), "a backup whose upload failed must fail");
    let text = stderr(&output);
    assert!(text.contains("backup failed") && text.contains("UploadPart"), "the error names the failed step: {text}");
    let summary = fx.termination();
    assert_eq!(summary["result"], "failed");
    assert!(summary["error"].as_str().is_some_and(|e| e.contains("UploadPart")), "{summary}");
    // Nothing new, nothing deleted: the same objects as before, the old backup still good.
    assert_eq!(fx.keys().await, keys_before);
    let listed = fx.list_json(&[]).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|b| b["state"] == "good"), "{listed:?}");
    assert!(listed.iter().any(|b| b["key"] == old.as_str()));
    // No dump, partial or manifest in the local tier either.
    let leftovers: Vec<_> = walk(&local);
    assert!(leftovers.is_empty(), "local tier: {leftovers:?}");

    fx.cleanup().await;
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn backup_of_an_unreachable_database_fails_and_writes_nothing() {
    let fx = Fixture::new().await;
    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    let missing = fx.servers.database_url.with_database("sg_no_such_database");
    env.retain(|(name, _)| *name != "DATABASE_URL");
    env.push(("DATABASE_URL", missing.full().to_owned()));
    let output = fx.run(&["backup"], &env).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("sg_no_such_database"), "names the database: {}", stderr(&output));
    assert!(fx.keys().await.is_empty());
    fx.cleanup().await;
}

/// A database that accepts connections only after the backup started (a managed PostgreSQL
/// still starting, a Service without a ready endpoint): the backup waits for it, says so in its
/// log, and succeeds. The database "starts" two seconds in: a port that refuses connections
/// until a proxy to the real server opens on it.
#[tokio::test]
async fn a_backup_waits_for_a_database_that_starts_late() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let server = url::Url::parse(fx.url.full()).expect("url");
    let target = SocketAddr::new(
        server.host_str().expect("host").parse().expect("the test server's address is an IP"),
        server.port().unwrap_or(5432),
    );
    let port = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
    let mut late_url = url::Url::parse(&with_password(&fx.url)).expect("url");
    late_url.set_port(Some(port)).expect("port");
    late_url.set_host(Some("127.0.0.1")).expect("host");
    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    env.retain(|(name, _)| *name != "DATABASE_URL");
    env.push(("DATABASE_URL", late_url.to_string()));
    // The delay is the scenario, not a wait for a condition: a refused connection leaves no trace
    // to watch, and a server that hangs up instead is a protocol error, which fails at once.
    let database = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the database's port");
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let output = fx.run(&["backup"], &env).await;
    database.abort();
    assert!(output.status.success(), "backup failed: {}", stderr(&output));
    let waited = log_line(&output, "the database does not accept connections yet, waiting");
    assert!(number(&waited, "attempt") >= 1.0, "{waited}");
    assert_eq!(dump_keys(&fx.keys().await).len(), 1, "one backup in the bucket");
    fx.cleanup().await;
}

/// The config backup's reads against a real API server are tested in e2e/tests/backup_config.rs;
/// here, what happens when the cluster cannot be read: nothing is dumped, nothing written.
#[tokio::test]
async fn a_config_backup_that_cannot_read_the_cluster_dumps_nothing() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    // SG_GUARD is `prod`, not `<namespace>/<name>`: the SecurityGuard is not known.
    let output = fx.backup(&["--config-backup"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--guard-namespace and --guard-name"), "{}", stderr(&output));

    // A kubeconfig naming an API server that does not answer.
    let kubeconfig = fx.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .expect("kubeconfig");
    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    env.extend([
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("SG_GUARD_NAMESPACE", "prod".to_owned()),
        ("SG_GUARD_NAME", "sg".to_owned()),
        ("SG_BACKUP_CONFIG", "true".to_owned()),
    ]);
    let output = fx.run(&["backup"], &env).await;
    assert!(!output.status.success());
    let termination = fx.termination();
    assert_eq!(termination["result"], "failed");
    let error = termination["error"].as_str().expect("error");
    assert!(error.starts_with("config backup failed, nothing was dumped: cannot get SecurityGuard prod/sg"), "{error}");
    assert!(fx.keys().await.is_empty(), "nothing stored: {:?}", fx.keys().await);
    fx.cleanup().await;
}

#[tokio::test]
async fn a_corrupted_dump_is_refused_before_touching_the_database() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let key = dump_keys(&fx.keys().await).pop().expect("dump");

    // One byte flipped in the middle: same size, different SHA-256.
    let mut dump = fx.get(&key).await;
    let middle = dump.len() / 2;
    dump[middle] ^= 0x01;
    fx.put(&key, dump).await;
    // Still listed as good (size matches): only the SHA-256 check of a restore catches it.

    fx.sql("INSERT INTO users (name) VALUES ('written after the backup')").await;
    let before = fx.contents().await;
    let output = fx.restore(&["--source", "latest"]).await;
    assert!(!output.status.success(), "a corrupt dump must not be restored");
    let text = stderr(&output);
    assert!(text.contains("is corrupt") && text.contains("the database was not touched"), "{text}");
    assert!(!text.contains("pg_restore"), "pg_restore never ran: {text}");
    assert_eq!(fx.termination()["databaseChanged"], false);
    assert_eq!(fx.contents().await, before, "the database is unchanged");
    fx.cleanup().await;
}

#[tokio::test]
async fn a_restore_failing_midway_leaves_the_target_unchanged() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));

    // After the backup: new rows, and a view in another schema that depends on `users`, so the
    // restore's DROP TABLE users fails halfway through the restore.
    fx.sql(
        "INSERT INTO users (name) VALUES ('written after the backup');
         DELETE FROM audit.events WHERE id <= 10;
         CREATE SCHEMA reports; CREATE VIEW reports.user_names AS SELECT name FROM users;",
    )
    .await;
    let before = fx.contents().await;
    let output = fx.restore(&["--source", "latest"]).await;
    assert!(!output.status.success(), "the restore must fail");
    let text = stderr(&output);
    assert!(text.contains("failed and was rolled back") && text.contains("user_names"), "{text}");
    assert_eq!(fx.termination()["result"], "failed");
    assert_eq!(fx.termination()["databaseChanged"], false, "rolled back: the controller needs no safety restore");
    assert_eq!(fx.contents().await, before, "the single transaction left the database unchanged");
    fx.cleanup().await;
}

/// The fields of the JSON log line whose message is `message`.
fn log_line(output: &Output, message: &str) -> serde_json::Value {
    stderr(output)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == message)
        .unwrap_or_else(|| panic!("no log line {message:?} in:\n{}", stderr(output)))
}

#[tokio::test]
async fn backup_memory_does_not_grow_with_the_dump() {
    let fx = Fixture::new().await;
    // Random bytes do not compress: a dump of about 90 MB.
    fx.sql(
        "CREATE EXTENSION pgcrypto;
         CREATE TABLE noise (id int, data bytea);
         INSERT INTO noise SELECT i, gen_random_bytes(1024) || gen_random_bytes(1024)
           FROM generate_series(1, 40000) i;",
    )
    .await;
    // Encrypted: the sealing adds a chunk of 64 KiB on each side, not a copy of the dump.
    let (key_file, fingerprints) = fx.key_file("keys", &[new_key().as_str()]);
    let output = fx.backup(&["--part-size-mib", "5", "--encryption-key-file", &key_file]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let done = log_line(&output, "backup complete");
    assert_eq!(done["key_fingerprint"], fingerprints[0].as_str(), "the dump was encrypted");
    let size_mib = done["size"].as_f64().expect("size") / (1024.0 * 1024.0);
    let peak_mib = done["peak_rss_mib"].as_f64().expect("peak_rss_mib");
    eprintln!("dump {size_mib:.1} MiB in {} parts, peak RSS {peak_mib} MiB", done["parts"]);
    assert!(size_mib > 75.0, "the dump is large enough to tell: {size_mib:.1} MiB");
    // Three 5 MiB parts in memory plus the program itself (about 48 MiB measured), below the dump.
    assert!(peak_mib < 64.0, "peak RSS {peak_mib} MiB for a {size_mib:.1} MiB dump");
    fx.cleanup().await;
}

#[tokio::test]
async fn a_backup_stopped_by_sigterm_aborts_its_upload() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE EXTENSION pgcrypto;
         CREATE TABLE noise (id int, data bytea);
         INSERT INTO noise SELECT i, gen_random_bytes(1024) || gen_random_bytes(1024)
           FROM generate_series(1, 20000) i;",
    )
    .await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_securityguard-operator"));
    command
        .args(["backup", "--part-size-mib", "5"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", fx.dir.path())
        .envs(fx.job_env(&fx.servers.s3_endpoint))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn");
    let pid = child.id().expect("pid");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    // Wait until the upload is under way.
    tokio::time::timeout(RUN_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("stderr") {
            log.push_str(&line);
            log.push('\n');
            if line.contains("\"dump progress\"") {
                return;
            }
        }
        panic!("the backup ended before uploading:\n{log}");
    })
    .await
    .expect("the upload starts");
    let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    while let Some(line) = lines.next_line().await.expect("stderr") {
        log.push_str(&line);
        log.push('\n');
    }
    let status = tokio::time::timeout(RUN_TIMEOUT, child.wait()).await.expect("exits").expect("status");
    eprintln!("{log}");
    assert!(!status.success(), "an interrupted backup fails");
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
    assert!(log.contains("aborted the multipart upload"), "{log}");
    assert!(fx.keys().await.is_empty(), "nothing stored");
    let uploads = fx.s3.client.list_multipart_uploads().bucket(&fx.bucket).send().await.expect("uploads");
    assert!(uploads.uploads().is_empty(), "no multipart upload left: {:?}", uploads.uploads());
    fx.cleanup().await;
}

#[tokio::test]
async fn restore_before_a_time_picks_the_backup_taken_before_it() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let first_data = fx.contents().await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let first = log_line(&output, "backup complete");
    let between = Timestamp::now();
    fx.sql("INSERT INTO users (name) VALUES ('second backup only')").await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let output = fx.restore(&["--source", &format!("before:{between}")]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(log_line(&output, "restoring")["key"], first["key"]);
    assert_eq!(fx.contents().await, first_data);

    let output = fx.restore(&["--source", "before:2001-01-01T00:00:00Z"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no good backup matches before:2001-01-01T00:00:00Z: 2 good of 2 listed"));
    fx.cleanup().await;
}

#[tokio::test]
async fn a_drill_whose_row_counts_differ_fails_and_drops_its_scratch_database() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let key = dump_keys(&fx.keys().await).pop().expect("dump");
    // A manifest that disagrees with the data (the dump itself is intact).
    let mut manifest = fx.manifest(&key).await;
    manifest.row_counts.insert("public.users".into(), 251);
    fx.put(&manifest::manifest_key(&key), manifest.to_json()).await;

    let before = fx.contents().await;
    let scratch = format!("{}_drill", fx.database);
    let output = fx.restore(&["--verify-only", "--scratch-database", &scratch]).await;
    assert!(!output.status.success(), "row counts differ: the drill fails");
    assert!(stderr(&output).contains("public.users: expected 251, found 250"), "{}", stderr(&output));
    assert!(!fx.database_exists(&scratch).await, "the scratch database is dropped after a failure too");
    assert_eq!(fx.contents().await, before, "a drill never touches the target");
    fx.cleanup().await;
}

/// A number of a JSON object, or a panic naming it.
fn number(value: &serde_json::Value, name: &str) -> f64 {
    value[name].as_f64().unwrap_or_else(|| panic!("no number {name} in {value}"))
}

#[tokio::test]
async fn a_drill_measures_its_recovery_time_and_recovery_point() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let key = dump_keys(&fx.keys().await).pop().expect("dump");
    let taken = fx.manifest(&key).await.started_at;

    // As the drill CronJob runs it: the newest good backup, the spec's targets in the environment.
    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    env.push(("SG_RESTORE_VERIFY_ONLY", "true".to_owned()));
    env.push(("SG_DRILL_RECOVERY_TIME_TARGET", "15m".to_owned()));
    env.push(("SG_DRILL_RECOVERY_POINT_TARGET", "1h".to_owned()));
    let before = Timestamp::now();
    let output = fx.run(&["restore"], &env).await;
    let after = Timestamp::now();
    assert!(output.status.success(), "drill failed: {}", stderr(&output));
    let summary = fx.termination();
    assert_eq!(summary["result"], "succeeded");
    assert_eq!(summary["key"], key.as_str());
    let drill = &summary["drill"];

    // The recovery time: every step took time, and the steps fit in it.
    let steps = &drill["steps"];
    let step_seconds: Vec<f64> =
        ["downloadSeconds", "verifySeconds", "restoreSeconds", "checksSeconds"].map(|s| number(steps, s)).to_vec();
    assert!(step_seconds.iter().all(|s| *s > 0.0), "{steps}");
    let recovery_time = number(drill, "recoveryTimeSeconds");
    assert!(step_seconds.iter().sum::<f64>() <= recovery_time + 0.004, "steps {steps} within {recovery_time}");
    assert!(recovery_time <= after.duration_since(before).as_secs_f64(), "{recovery_time} longer than the run");
    assert!(recovery_time <= number(&summary, "seconds"), "the drop of the scratch database is not counted");

    // The recovery point: when the drill started, the age of the backup's snapshot.
    let recovery_point = number(drill, "recoveryPointSeconds");
    let (youngest, oldest) = (before.duration_since(taken).as_secs_f64(), after.duration_since(taken).as_secs_f64());
    assert!(
        youngest - 0.001 <= recovery_point && recovery_point <= oldest + 0.001,
        "recovery point {recovery_point} not between {youngest} and {oldest}"
    );
    assert_eq!(drill["backupTakenAt"], Timestamp::from_second(taken.as_second()).expect("time").to_string());
    assert_eq!(
        (number(drill, "recoveryTimeTargetSeconds"), number(drill, "recoveryPointTargetSeconds")),
        (900.0, 3600.0)
    );
    assert!(drill.get("missed").is_none(), "{drill}");
    let measured = log_line(&output, "restore drill measured");
    assert!(measured["figures"].as_str().is_some_and(|f| f.starts_with("recovery time ")), "{measured}");
    fx.cleanup().await;
}

#[tokio::test]
async fn a_drill_whose_newest_backup_is_older_than_the_recovery_point_target_fails_saying_so() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let fresh = dump_keys(&fx.keys().await).pop().expect("dump");
    // The newest good backup is 2h13m old: the fresh one is gone, an older copy stays.
    let taken = Timestamp::now().checked_sub(SignedDuration::from_mins(133)).expect("time");
    let old = plant_good(&fx, &fresh, taken).await;
    let store = Store::S3(fx.s3.clone());
    store.delete(&manifest::manifest_key(&fresh)).await.expect("delete the manifest");
    store.delete(&fresh).await.expect("delete the dump");

    let scratch = format!("{}_drill", fx.database);
    let drill = ["--verify-only", "--scratch-database", scratch.as_str()];
    let targets = ["--recovery-time-target", "15m", "--recovery-point-target", "1h"];
    let output = fx.restore(&[&drill[..], &targets[..]].concat()).await;
    assert!(!output.status.success(), "a drill over its recovery point target fails");
    assert!(!fx.database_exists(&scratch).await, "the scratch database is dropped");
    let summary = fx.termination();
    assert_eq!(summary["result"], "failed");
    assert_eq!(summary["key"], old.as_str(), "the backup restored is named");
    let shown_taken = Timestamp::from_second(taken.as_second()).expect("time");
    let error = summary["error"].as_str().expect("error").to_owned();
    assert!(error.starts_with("recovery point 2h13m"), "{error}");
    assert!(
        error.ends_with(&format!("exceeds the target 1h: the newest good backup is from {shown_taken} ({old})")),
        "{error}"
    );
    assert!(stderr(&output).contains(&error), "the reason is logged: {}", stderr(&output));
    let drill_figures = &summary["drill"];
    assert_eq!(drill_figures["missed"], serde_json::json!(["RecoveryPoint"]));
    let recovery_point = number(drill_figures, "recoveryPointSeconds");
    assert!((133.0 * 60.0..134.0 * 60.0).contains(&recovery_point), "{recovery_point}");
    // The data restored and checked all the same: the recovery time was within its target.
    assert!(number(drill_figures, "recoveryTimeSeconds") < 900.0);

    // Only measured without targets, the same drill passes.
    let output = fx.restore(&drill).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(fx.termination()["drill"]["recoveryPointTargetSeconds"], serde_json::Value::Null);

    // A recovery point target is about the newest good backup only.
    let output = fx.restore(&["--verify-only", "--source", &old, "--recovery-point-target", "1h"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("a recovery point target needs the source latest"), "{}", stderr(&output));
    // And a target without --verify-only is refused by the command line.
    let output = fx.restore(&["--recovery-time-target", "15m"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--verify-only"), "{}", stderr(&output));
    fx.cleanup().await;
}

#[tokio::test]
async fn the_local_tier_has_its_own_retention() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let local = fx.local_dir();
    let local_arg = local.display().to_string();
    for _ in 0..3 {
        let output = fx.backup(&["--local-dir", &local_arg, "--retention-days-local", "0", "--keep-last", "2"]).await;
        assert!(output.status.success(), "{}", stderr(&output));
    }
    // S3 keeps 90 days: all three. The local tier keeps 0 days but its newest 2 good ones.
    assert_eq!(dump_keys(&fx.keys().await).len(), 3);
    let mut env: Vec<_> =
        fx.job_env(&fx.servers.s3_endpoint).into_iter().filter(|(n, _)| *n != "SG_BACKUP_BUCKET").collect();
    env.push(("SG_BACKUP_LOCAL_DIR", local_arg));
    let output = fx.run(&["backups", "list", "--output", "json"], &env).await;
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|b| b["state"] == "good"), "{listed:?}");
    assert_eq!(walk(&local).len(), 4, "two dumps and two manifests, no partial file");
    fx.cleanup().await;
}

/// The environment of the claim Job of request `r1` by the SecurityGuard object `claimant`.
fn claim_env(fx: &Fixture, claimant: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> =
        fx.job_env(&fx.servers.s3_endpoint).into_iter().filter(|(n, _)| *n != "DATABASE_URL").collect();
    env.push(("SG_RESTORE_REQUEST_ID", "r1".to_owned()));
    env.push(("SG_RESTORE_CLAIMANT", claimant.to_owned()));
    env.push(("SG_RESTORE_SOURCE", "latest".to_owned()));
    env
}

/// Runs `backups claim-restore` as `claimant` and returns its termination message.
async fn claim(fx: &Fixture, claimant: &str) -> serde_json::Value {
    let output = fx.run(&["backups", "claim-restore"], &claim_env(fx, claimant)).await;
    assert!(output.status.success(), "a claim reaches a verdict: {}", stderr(&output));
    let summary = fx.termination();
    assert_eq!(summary["command"], "claim-restore");
    assert_eq!(summary["result"], "succeeded");
    summary
}

#[tokio::test]
async fn the_restore_ledger_lets_a_request_run_once_across_re_created_guards() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let output = fx.backup(&[]).await;
    assert!(output.status.success(), "backup failed: {}", stderr(&output));
    let dump = fx.termination()["key"].as_str().expect("dump key").to_owned();
    let record_key = ledger::record_key(PREFIX, GUARD, "r1");
    assert_eq!(record_key, "backups/prod/restores/r1.restore.json");

    // The first claim creates the record.
    let first = claim(&fx, "uid-1").await;
    assert_eq!(first["key"], record_key.as_str());
    assert_eq!(first["claim"]["verdict"], "claimed");
    assert_eq!(first["claim"]["sameGuard"], true);
    let claimed_at = first["claim"]["claimedAt"].clone();
    let stored = fx.get(&record_key).await;
    let record: serde_json::Value = serde_json::from_slice(&stored).expect("record JSON");
    assert_eq!(
        (&record["requestId"], &record["claimedBy"], &record["source"], &record["guard"]),
        (&"r1".into(), &"uid-1".into(), &"latest".into(), &GUARD.into())
    );
    assert_eq!(record["claimedAt"], claimed_at);

    // A SecurityGuard of the same name re-created (another UID) is refused, with the first
    // claim's time; the record is left as it was.
    let second = claim(&fx, "uid-2").await;
    assert_eq!(second["claim"]["verdict"], "refused");
    assert_eq!(second["claim"]["sameGuard"], false);
    assert_eq!(second["claim"]["claimedBy"], "uid-1");
    assert_eq!(second["claim"]["claimedAt"], claimed_at);
    assert_eq!(fx.get(&record_key).await, stored);

    // The same object again (an operator restarted, a status lost mid-restore) resumes.
    let again = claim(&fx, "uid-1").await;
    assert_eq!(again["claim"]["verdict"], "resumed");
    assert_eq!(again["claim"]["claimedAt"], claimed_at);

    // The create is conditional on the server: a second create of the key loses.
    let created = ledger::create_if_absent(&fx.s3, &record_key, b"{}".to_vec()).await.expect("conditional create");
    assert!(!created, "If-None-Match: * refuses an existing record");
    assert_eq!(fx.get(&record_key).await, stored);
    let fresh = ledger::record_key(PREFIX, GUARD, "r9");
    assert!(ledger::create_if_absent(&fx.s3, &fresh, b"{}".to_vec()).await.expect("create"));

    // The restore of the holder adds what it restored; from then on the request is refused
    // to everyone, the holder included.
    fx.sql("UPDATE users SET name = 'changed'").await;
    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    env.push(("SG_RESTORE_REQUEST_ID", "r1".to_owned()));
    env.push(("SG_RESTORE_CLAIMANT", "uid-1".to_owned()));
    let output = fx.run(&["restore", "--source", "latest"], &env).await;
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    assert!(stderr(&output).contains("restore recorded in the restore ledger"), "{}", stderr(&output));
    let record: serde_json::Value = serde_json::from_slice(&fx.get(&record_key).await).expect("record JSON");
    assert_eq!(record["restoredKey"], dump.as_str());
    let restored_at: Timestamp = record["restoredAt"].as_str().expect("restoredAt").parse().expect("time");
    assert!(restored_at > claimed_at.as_str().expect("time").parse::<Timestamp>().expect("time"));
    assert_eq!(record["claimedBy"], "uid-1");

    let later = claim(&fx, "uid-3").await;
    assert_eq!(later["claim"]["verdict"], "refused");
    assert_eq!(later["claim"]["restoredKey"], dump.as_str());
    let holder = claim(&fx, "uid-1").await;
    assert_eq!((&holder["claim"]["verdict"], &holder["claim"]["sameGuard"]), (&"refused".into(), &true.into()));

    // The records stay out of the backup listing.
    let listed = fx.list_json(&[]).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["key"], dump.as_str());

    // A claim that cannot reach the ledger fails and says why.
    let mut unreachable = claim_env(&fx, "uid-4");
    unreachable.retain(|(n, _)| *n != "SG_BACKUP_ENDPOINT");
    unreachable.push(("SG_BACKUP_ENDPOINT", "http://127.0.0.1:9".to_owned()));
    let output = fx.run(&["backups", "claim-restore"], &unreachable).await;
    assert!(!output.status.success());
    let summary = fx.termination();
    assert_eq!(summary["result"], "failed");
    assert!(summary["error"].as_str().is_some_and(|e| e.contains("restore ledger")), "{summary}");
    assert!(summary.get("claim").is_none());

    fx.cleanup().await;
}

/// Client-side encryption: what lands in S3 and in the local tier is sealed (no `PGDMP` magic,
/// no row of the data), the manifest names the key by its fingerprint and covers the sealed
/// bytes, and the backup restores, drills and decrypts by hand with the key.
#[tokio::test]
async fn an_encrypted_backup_stores_no_plaintext_and_restores_with_its_key() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let before = fx.contents().await;
    let key = new_key();
    let (key_file, fingerprints) = fx.key_file("keys", &[key.as_str()]);
    let local = fx.local_dir();
    let local_arg = local.display().to_string();

    let output = fx.backup(&["--encryption-key-file", &key_file, "--local-dir", &local_arg]).await;
    assert!(output.status.success(), "encrypted backup failed: {}", stderr(&output));
    let summary = fx.termination();
    assert!(!stderr(&output).contains(&key) && !summary.to_string().contains(&key), "the key is never logged");
    let key_name = summary["key"].as_str().expect("key").to_owned();

    let stored = fx.get(&key_name).await;
    assert!(envelope::is_sealed(&stored), "the object starts with the envelope header");
    assert!(!stored.windows(5).any(|w| w == b"PGDMP"), "no pg_dump magic anywhere in the object");
    let manifest = fx.manifest(&key_name).await;
    assert_eq!(manifest.format_version, 2, "older operators refuse an encrypted backup");
    let encryption = manifest.encryption.clone().expect("encryption recorded");
    assert_eq!(encryption.algorithm, envelope::ALGORITHM);
    assert_eq!(encryption.key_fingerprint, fingerprints[0]);
    assert_eq!(envelope::sealed_len(encryption.plaintext_size), stored.len() as u64);
    // The checksums cover what is stored: the sealed bytes.
    assert_eq!((manifest.size, manifest.sha256.as_str()), (stored.len() as u64, sha256(&stored).as_str()));
    let manifest_text = String::from_utf8(fx.get(&manifest::manifest_key(&key_name)).await).expect("utf-8");
    assert!(!manifest_text.contains(&key), "the manifest never holds the key");
    // The local tier holds the same sealed bytes.
    assert!(std::fs::read(local.join(&key_name)).expect("local dump") == stored);
    let listed = fx.list_json(&[]).await;
    assert_eq!(listed[0]["keyFingerprint"], fingerprints[0].as_str());

    // Restore with the key: the data of the backup.
    fx.sql("UPDATE users SET name = 'changed'; DELETE FROM audit.events WHERE id % 3 = 0;").await;
    let output = fx.restore(&["--source", "latest", "--encryption-key-file", &key_file]).await;
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    assert_eq!(fx.contents().await, before);
    assert_eq!(log_line(&output, "restoring")["key_fingerprint"], fingerprints[0].as_str());

    // A drill with the key passes and drops its scratch database.
    let scratch = format!("{}_drill", fx.database);
    let output =
        fx.restore(&["--verify-only", "--scratch-database", &scratch, "--encryption-key-file", &key_file]).await;
    assert!(output.status.success(), "drill failed: {}", stderr(&output));
    assert!(!fx.database_exists(&scratch).await);

    // By hand, without the operator's restore: decrypt the object, which pg_restore reads.
    let sealed_path = fx.dir.path().join("copied.pgdump");
    std::fs::write(&sealed_path, &stored).expect("copy");
    let plain_path = fx.dir.path().join("plain.pgdump");
    let (sealed_arg, plain_arg) = (sealed_path.display().to_string(), plain_path.display().to_string());
    let output = fx
        .run(&["backups", "decrypt", &sealed_arg, "--output", &plain_arg, "--encryption-key-file", &key_file], &[])
        .await;
    assert!(output.status.success(), "decrypt failed: {}", stderr(&output));
    let plain = std::fs::read(&plain_path).expect("decrypted");
    assert!(plain.starts_with(b"PGDMP"), "the decrypted object is the custom-format dump");
    assert_eq!(plain.len() as u64, encryption.plaintext_size);
    fx.cleanup().await;
}

/// A restore or a drill whose key file lacks the key of the backup is refused before anything
/// is downloaded, naming the fingerprints; the database is as before. A key file holding the
/// new key and the old one (a rotation) restores both old encrypted and unencrypted backups.
#[tokio::test]
async fn the_wrong_or_no_key_is_refused_before_the_database_is_touched() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let plain_backup = fx.backup(&[]).await;
    assert!(plain_backup.status.success(), "{}", stderr(&plain_backup));
    let plain_key = fx.termination()["key"].as_str().expect("key").to_owned();
    let plain_data = fx.contents().await;

    fx.sql("INSERT INTO users (name) VALUES ('second backup')").await;
    let encrypted_data = fx.contents().await;
    let (old, new) = (new_key(), new_key());
    let (old_file, old_fingerprints) = fx.key_file("old-keys", &[old.as_str()]);
    let (new_file, new_fingerprints) = fx.key_file("new-keys", &[new.as_str()]);
    let (rotated_file, _) = fx.key_file("rotated-keys", &[new.as_str(), old.as_str()]);
    let output = fx.backup(&["--encryption-key-file", &old_file]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let encrypted_key = fx.termination()["key"].as_str().expect("key").to_owned();

    fx.sql("INSERT INTO users (name) VALUES ('after the backups')").await;
    let current = fx.contents().await;
    let scratch = format!("{}_drill", fx.database);
    for verify in [false, true] {
        let mut args = vec!["--source", encrypted_key.as_str(), "--encryption-key-file", new_file.as_str()];
        if verify {
            args.extend(["--verify-only", "--scratch-database", scratch.as_str()]);
        }
        let output = fx.restore(&args).await;
        assert!(!output.status.success(), "the wrong key must be refused");
        let error = fx.termination()["error"].as_str().expect("error").to_owned();
        assert_eq!(
            error,
            format!(
                "restore refused, the database was not touched: backup {encrypted_key} is encrypted with key {}, \
                 the key file holds {}",
                old_fingerprints[0], new_fingerprints[0]
            )
        );
        assert!(!stderr(&output).contains("download verified"), "nothing was downloaded");
        assert_eq!(fx.termination()["databaseChanged"], false);
        assert!(!fx.database_exists(&scratch).await, "no scratch database either");
        assert_eq!(fx.contents().await, current, "the database is unchanged");
    }
    let output = fx.restore(&["--source", &encrypted_key]).await;
    assert!(!output.status.success(), "no key: refused");
    let error = fx.termination()["error"].as_str().expect("error").to_owned();
    assert!(error.contains(&format!("is encrypted with key {}, and no key was given", old_fingerprints[0])), "{error}");
    assert_eq!(fx.contents().await, current);

    // After a rotation the key file holds the new key first and the old one below it.
    let output = fx.restore(&["--source", &encrypted_key, "--encryption-key-file", &rotated_file]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(fx.contents().await, encrypted_data);
    // An unencrypted backup restores whether a key file is given or not.
    let output = fx.restore(&["--source", &plain_key, "--encryption-key-file", &rotated_file]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(fx.contents().await, plain_data);
    // New backups use the first key of the file.
    let output = fx.backup(&["--encryption-key-file", &rotated_file]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let newest = fx.termination()["key"].as_str().expect("key").to_owned();
    let encryption = fx.manifest(&newest).await.encryption.expect("encrypted");
    assert_eq!(encryption.key_fingerprint, new_fingerprints[0]);
    fx.cleanup().await;
}

/// Someone who may write to the bucket replaces a chunk of an encrypted dump and updates the
/// manifest's checksum to match: the download verifies, the chunk does not authenticate, and
/// the database is not touched.
#[tokio::test]
async fn an_altered_encrypted_dump_with_a_matching_manifest_does_not_decrypt() {
    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let key = new_key();
    let (key_file, _) = fx.key_file("keys", &[key.as_str()]);
    let output = fx.backup(&["--encryption-key-file", &key_file]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let dump_key = fx.termination()["key"].as_str().expect("key").to_owned();
    let mut stored = fx.get(&dump_key).await;
    let last = stored.len() - 1;
    stored[last] ^= 0x01;
    fx.put(&dump_key, stored.clone()).await;
    let mut manifest = fx.manifest(&dump_key).await;
    manifest.sha256 = sha256(&stored);
    fx.put(&manifest::manifest_key(&dump_key), manifest.to_json()).await;

    fx.sql("INSERT INTO users (name) VALUES ('after the backup')").await;
    let before = fx.contents().await;
    let output = fx.restore(&["--source", "latest", "--encryption-key-file", &key_file]).await;
    assert!(!output.status.success());
    let error = fx.termination()["error"].as_str().expect("error").to_owned();
    assert!(
        error.starts_with("restore refused, the database was not touched: ")
            && error.contains("cannot be decrypted: chunk ")
            && error.ends_with("does not authenticate: the object was altered or cut short"),
        "{error}"
    );
    assert!(!stderr(&output).contains("pg_restore"), "pg_restore never ran");
    assert_eq!(fx.termination()["databaseChanged"], false);
    assert_eq!(fx.contents().await, before);
    fx.cleanup().await;
}

/// Server-side encryption: the headers reach S3 on the multipart upload of the dump and on the
/// single PUT of the manifest (moto records and returns them like S3).
#[tokio::test]
async fn server_side_encryption_is_asked_on_every_object_written() {
    use aws_sdk_s3::types::ServerSideEncryption as Sse;

    let fx = Fixture::new().await;
    fx.sql(SCHEMA).await;
    let sse = |key: String| {
        let s3 = fx.s3.clone();
        async move {
            let head = s3.client.head_object().bucket(&s3.bucket).key(&key).send().await.expect("head");
            (head.server_side_encryption().cloned(), head.ssekms_key_id().map(str::to_owned))
        }
    };

    let output = fx.backup(&["--sse-kms-key-id", "alias/sg-backups"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let dump_key = fx.termination()["key"].as_str().expect("key").to_owned();
    for key in [dump_key.clone(), manifest::manifest_key(&dump_key)] {
        assert_eq!(sse(key).await, (Some(Sse::AwsKms), Some("alias/sg-backups".to_owned())));
    }

    let mut env = fx.job_env(&fx.servers.s3_endpoint);
    env.push(("SG_BACKUP_SSE_S3", "true".to_owned()));
    let output = fx.run(&["backup"], &env).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let dump_key = fx.termination()["key"].as_str().expect("key").to_owned();
    for key in [dump_key.clone(), manifest::manifest_key(&dump_key)] {
        assert_eq!(sse(key).await, (Some(Sse::Aes256), None));
    }
    // Reads need nothing: the backup restores as any other.
    let output = fx.restore(&["--source", &dump_key]).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let output = fx.backup(&["--sse-s3", "--sse-kms-key-id", "k"]).await;
    assert!(!output.status.success(), "SSE-S3 and SSE-KMS together are refused");
    fx.cleanup().await;
}
