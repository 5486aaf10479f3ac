//! Point-in-time recovery end to end on real parts: a private PostgreSQL 15 cluster (initdb'd per
//! test, stopped and started like the StatefulSet's pod), the real `securityguard-operator wal
//! archive` sidecar streaming its WAL with `pg_receivewal`, and a real S3-compatible server.
//!
//! Needs the servers and environment of tests/backup.rs:
//!   scripts/services/start.sh && scripts/services/s3.sh start
//!   source "${SG_CACHE:-$HOME/.cache/securityguard}/services/env"
//!   source "${SG_CACHE:-$HOME/.cache/securityguard}/services/s3.env"
//! As root, the servers and the binary run as the `postgres` user (the server refuses root).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::Rng;
use securityguard_operator::backup::pitr::{self, Marker};
use securityguard_operator::backup::store::{self, S3Store, Store};
use sqlx::{Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const PREFIX: &str = "backups";
const GUARD: &str = "prod/sg";
/// Longest any awaited condition may take.
const PATIENCE: Duration = Duration::from_secs(120);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the servers (scripts/services/start.sh, scripts/services/s3.sh start) and source their env files")
    })
}

fn pg_bin() -> PathBuf {
    PathBuf::from(std::env::var("SG_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()))
}

fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

/// A command run as the postgres user when we are root.
fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One cluster, its data volume, a bucket and the archiver.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    bucket: String,
    s3: S3Store,
    endpoint: String,
    archiver: Option<Child>,
    metrics: u16,
}

impl Cluster {
    async fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("sg-pitr-").tempdir().expect("dir");
        let endpoint = env("SG_TEST_S3_ENDPOINT");
        let bucket = format!("sg-pitr-{:08x}", rand::rng().random::<u32>());
        let s3 = s3_store(&endpoint, &bucket);
        s3.client.create_bucket().bucket(&bucket).send().await.expect("create bucket");
        let cluster = Cluster { port: free_port(), bucket, s3, endpoint, archiver: None, metrics: free_port(), dir };
        std::fs::create_dir_all(cluster.data()).expect("data volume");
        if is_root() {
            let status = std::process::Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(cluster.dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let out = as_postgres(pg_bin().join("initdb"))
            .arg("-D")
            .arg(cluster.pgdata())
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"])
            .output()
            .await
            .expect("initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        cluster
    }

    /// The data volume (the pod's /var/lib/postgresql/data).
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pgdata(&self) -> PathBuf {
        self.data().join("pgdata")
    }

    async fn start(&self) {
        let out = as_postgres(pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-t", "120", "start", "-o"])
            .arg(format!(
                "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
                self.port,
                self.dir.path().display()
            ))
            .output()
            .await
            .expect("pg_ctl start");
        assert!(out.status.success(), "pg_ctl start: {} {}", String::from_utf8_lossy(&out.stderr), self.log_tail());
    }

    async fn stop(&self) {
        let out = as_postgres(pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.pgdata())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .await
            .expect("pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)).await.expect("connect")
    }

    async fn sql(&self, statements: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(statements).execute(&mut conn).await.expect("SQL");
    }

    async fn scalar_i64(&self, query: &str) -> i64 {
        let mut conn = self.connect().await;
        sqlx::query_scalar(query).fetch_one(&mut conn).await.expect("query")
    }

    /// The server's clock now.
    async fn now(&self) -> Timestamp {
        let mut conn = self.connect().await;
        let text: String = sqlx::query_scalar(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        )
        .fetch_one(&mut conn)
        .await
        .expect("clock");
        text.parse().expect("time")
    }

    /// The S3 settings of every command, through `endpoint`.
    fn s3_args(&self, endpoint: &str) -> Vec<String> {
        ["--bucket", &self.bucket, "--prefix", PREFIX, "--guard", GUARD, "--endpoint", endpoint, "--path-style"]
            .map(String::from)
            .to_vec()
    }

    fn command(&self, args: &[String]) -> Command {
        let mut command = as_postgres(env!("CARGO_BIN_EXE_securityguard-operator"));
        command
            .args(args)
            .env("AWS_ACCESS_KEY_ID", std::env::var("SG_TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".into()))
            .env(
                "AWS_SECRET_ACCESS_KEY",
                std::env::var("SG_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".into()),
            )
            .env("SG_BACKUP_REGION", std::env::var("SG_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()))
            .env("SG_PG_BIN", pg_bin())
            .env("PGUSER", "postgres")
            .env("SG_LOG_TEXT", "true")
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[String]) -> Output {
        let output = tokio::time::timeout(PATIENCE * 3, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("securityguard-operator {args:?} ran too long"))
            .expect("run");
        eprintln!("--- {args:?}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
        output
    }

    /// Starts the archiver, its S3 through `endpoint`.
    fn start_archiver(&mut self, endpoint: &str, extra: &[&str]) {
        let mut args: Vec<String> = vec!["wal".into(), "archive".into()];
        args.extend(self.s3_args(endpoint));
        args.extend([
            "--pg-port".into(),
            self.port.to_string(),
            "--spool".into(),
            self.data().join("wal-spool").display().to_string(),
        ]);
        args.extend([
            "--interval".into(),
            "1s".into(),
            "--metrics-address".into(),
            format!("127.0.0.1:{}", self.metrics),
        ]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = self.command(&args).stdout(Stdio::null()).spawn().expect("start the archiver");
        self.archiver = Some(child);
    }

    async fn kill_archiver(&mut self) {
        if let Some(mut child) = self.archiver.take() {
            // Through runuser: kill the whole group the hard way.
            let _ = child.start_kill();
            let _ = child.wait().await;
            // runuser does not pass SIGKILL on: kill the archiver and its pg_receivewal as a
            // container's end would.
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-f", "--", &format!("127.0.0.1:{}", self.metrics)])
                .status();
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-f", "--", &format!("pg_receivewal.*--port {} ", self.port)])
                .status();
        }
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.metrics)).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").await.ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(f64::max)
    }

    fn folder(&self) -> String {
        pitr::folder(PREFIX, GUARD)
    }

    async fn marker(&self) -> Option<Marker> {
        let bytes = Store::S3(self.s3.clone()).read_small(&pitr::marker_key(&self.folder()), 65536).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn keys(&self, under: &str) -> Vec<String> {
        let mut keys: Vec<String> = Store::S3(self.s3.clone())
            .list(&format!("{}/{under}", self.folder()))
            .await
            .expect("list")
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    }

    /// Waits until the archive's heartbeat is later than `time` and a base backup is stored.
    async fn wait_archived_after(&self, time: Timestamp) -> Marker {
        until("the archive to pass the time", || async {
            let base = self.keys("base/").await.iter().any(|k| k.ends_with(".base.json"));
            self.marker().await.filter(|m| base && m.heartbeat.is_some_and(|h| h.at > time))
        })
        .await
    }

    /// The window, read in process.
    async fn window_now(&self) -> pitr::window::Window {
        pitr::window::load(&self.s3, &self.folder()).await.expect("window").window
    }

    /// Waits until a point-in-time restore can reach `time`.
    async fn wait_recoverable(&self, time: Timestamp) -> pitr::window::Window {
        until("the window to reach the time", || async {
            Some(self.window_now().await).filter(|w| w.last_recoverable.is_some_and(|l| l >= time))
        })
        .await
    }

    /// Waits for the first base backup, then until the server's clock is inside the window, so
    /// that what is written next can be restored to.
    async fn wait_window_open(&self) {
        let window = until("a base backup in the window", || async {
            Some(self.window_now().await).filter(|w| w.first_recoverable.is_some())
        })
        .await;
        let first = window.first_recoverable.expect("first");
        until("the clock to pass the window's start", || async { (self.now().await > first).then_some(()) }).await;
    }

    async fn window(&self) -> serde_json::Value {
        let mut args = vec!["backups".to_owned(), "window".to_owned(), "--output".to_owned(), "json".to_owned()];
        args.extend(self.s3_args(&self.endpoint));
        let out = self.run(&args).await;
        assert!(out.status.success(), "backups window");
        serde_json::from_slice(&out.stdout).expect("window JSON")
    }

    fn termination(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join("termination-log")).expect("termination message");
        assert!(text.len() <= 4096);
        serde_json::from_str(&text).expect("summary JSON")
    }

    async fn restore(&self, target: Timestamp, request: &str, extra: &[&str]) -> Output {
        let mut args = vec!["restore".to_owned(), "--point-in-time".to_owned(), target.to_string()];
        args.extend(self.s3_args(&self.endpoint));
        args.extend(["--request-id", request, "--data-dir"].map(String::from));
        args.push(self.data().display().to_string());
        args.extend(["--termination-log".to_owned(), self.dir.path().join("termination-log").display().to_string()]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        self.run(&args).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-f", "--", &format!("127.0.0.1:{}", self.metrics)])
            .status();
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-f", "--", &format!("pg_receivewal.*--port {} ", self.port)])
            .status();
        let mut stop = if is_root() {
            std::process::Command::new("runuser")
        } else {
            std::process::Command::new(pg_bin().join("pg_ctl"))
        };
        if is_root() {
            stop.args(["-u", "postgres", "--"]).arg(pg_bin().join("pg_ctl"));
        }
        let _ = stop
            .arg("-D")
            .arg(self.pgdata())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn s3_store(endpoint: &str, bucket: &str) -> S3Store {
    let credentials = aws_sdk_s3::config::Credentials::new(
        std::env::var("SG_TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".into()),
        std::env::var("SG_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".into()),
        None,
        None,
        "test",
    );
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(
            std::env::var("SG_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .http_client(store::https_client())
        .build();
    S3Store { client: aws_sdk_s3::Client::from_conf(config), bucket: bucket.to_owned(), server_side_encryption: None }
}

/// Polls `check` every 250 ms until it gives a value, for at most [`PATIENCE`].
async fn until<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A TCP forwarder to `target` that can be switched off (connections refused and cut).
struct Switch {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
}

impl Switch {
    async fn new(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let down = async {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        () = down => {}
                    }
                });
            }
        });
        Switch { addr, up }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

fn s3_addr() -> SocketAddr {
    let endpoint = env("SG_TEST_S3_ENDPOINT");
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(hostport).expect("S3 address").next().expect("an address")
}

const SCHEMA: &str = "CREATE TABLE scans (id bigserial PRIMARY KEY, batch text NOT NULL, payload text NOT NULL);";

fn batch(name: &str, rows: u32) -> String {
    format!("INSERT INTO scans (batch, payload) SELECT '{name}', md5(i::text) FROM generate_series(1, {rows}) i;")
}

async fn count(cluster: &Cluster, name: &str) -> i64 {
    cluster.scalar_i64(&format!("SELECT count(*) FROM scans WHERE batch = '{name}'")).await
}

#[tokio::test]
async fn restores_to_a_point_in_time_then_rolls_back() {
    let mut cluster = Cluster::new().await;
    cluster.start().await;
    cluster.sql(SCHEMA).await;
    cluster.sql(&batch("a", 1000)).await;
    let endpoint = cluster.endpoint.clone();
    cluster.start_archiver(&endpoint, &[]);
    let before_b = cluster.now().await;
    cluster.wait_window_open().await;

    cluster.sql(&batch("b", 500)).await;
    let target = cluster.now().await;
    cluster.sql(&batch("c", 300)).await;
    // A whole segment switched out too, so the restore reads complete segments and the partial.
    cluster.sql("SELECT pg_switch_wal();").await;
    cluster.sql(&batch("d", 10)).await;
    let after = cluster.now().await;
    cluster.wait_recoverable(after).await;
    let marker = cluster.marker().await.expect("marker");
    assert_eq!(marker.timeline, 1);
    let rpo = cluster.metric("securityguard_wal_archived_through_timestamp_seconds").await.expect("RPO metric");
    assert!(rpo >= before_b.as_second() as f64, "the archived-through metric follows the archive");

    let window = cluster.window().await;
    let first: Timestamp = window["firstRecoverable"].as_str().expect("first").parse().expect("time");
    let last: Timestamp = window["lastRecoverable"].as_str().expect("last").parse().expect("time");
    assert!(first <= target && target <= last, "{window}");
    assert_eq!(window.get("error"), None, "{window}");

    // A target outside the window is refused by the claim, before anything is recorded.
    let claim = |t: Timestamp, request: &'static str| {
        let mut args = vec!["backups".to_owned(), "claim-restore".to_owned()];
        args.extend(cluster.s3_args(&endpoint));
        args.extend(["--request-id", request, "--claimant", "uid-1", "--point-in-time"].map(String::from));
        args.push(t.to_string());
        args
    };
    let future = last + jiff::SignedDuration::from_hours(1);
    let out = cluster.run(&claim(future, "r0")).await;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("outside the point-in-time window") && said.contains(&first.to_string()), "{said}");
    assert!(
        Store::S3(cluster.s3.clone()).list(&format!("{PREFIX}/{GUARD}/restores/")).await.expect("list").is_empty(),
        "no record made"
    );
    let out = cluster.run(&claim(target, "r1")).await;
    assert!(out.status.success(), "a target inside the window is claimed");

    // The database is stopped, as the StatefulSet scaled to 0; the archiver goes with its pod.
    cluster.kill_archiver().await;
    cluster.stop().await;
    let out = cluster.restore(target, "r1", &["--claimant", "uid-1"]).await;
    assert!(out.status.success(), "point-in-time restore");
    let summary = cluster.termination();
    assert_eq!(summary["result"], "succeeded", "{summary}");
    assert_eq!(summary["databaseChanged"], true);
    assert_eq!(summary["recovery"]["target"], target.to_string());
    assert!(summary["recovery"]["walFiles"].as_u64().is_some_and(|n| n >= 1), "{summary}");
    assert!(cluster.data().join("pgdata.before-r1").is_dir(), "the old data is kept for a rollback");

    cluster.start().await;
    assert_eq!(count(&cluster, "a").await, 1000);
    assert_eq!(count(&cluster, "b").await, 500, "everything committed before the target");
    assert_eq!(count(&cluster, "c").await, 0, "nothing committed after it");
    assert_eq!(count(&cluster, "d").await, 0);
    let record = Store::S3(cluster.s3.clone())
        .read_small(&format!("{PREFIX}/{GUARD}/restores/r1.restore.json"), 65536)
        .await
        .expect("ledger record");
    assert!(String::from_utf8_lossy(&record).contains("restoredKey"), "the ledger records the restore");

    // The archiver follows the new timeline: its history and a marker on timeline 2.
    cluster.start_archiver(&endpoint, &[]);
    let now = cluster.now().await;
    let marker = cluster.wait_archived_after(now).await;
    assert_eq!(marker.timeline, 2);
    assert!(cluster.keys("wal/").await.iter().any(|k| k.ends_with("00000002.history.gz")));
    assert!(!cluster.data().join("wal-spool.before-r1").exists(), "the old timeline's spool was stored and removed");

    // Rolling back puts the data from before the restore back.
    cluster.kill_archiver().await;
    cluster.stop().await;
    let mut args =
        vec!["restore", "--roll-back-point-in-time", "--request-id", "r1", "--bucket", &cluster.bucket, "--data-dir"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
    args.push(cluster.data().display().to_string());
    let out = cluster.run(&args).await;
    assert!(out.status.success(), "roll back");
    cluster.start().await;
    assert_eq!(count(&cluster, "c").await, 300, "the rows written after the target are back");
    assert_eq!(count(&cluster, "d").await, 10);
}

#[tokio::test]
async fn the_archive_survives_an_s3_outage_and_a_killed_archiver_and_a_missing_segment_cuts_the_window() {
    let mut cluster = Cluster::new().await;
    cluster.start().await;
    cluster.sql(SCHEMA).await;
    let switch = Switch::new(s3_addr()).await;
    let through_switch = switch.endpoint();
    cluster.start_archiver(&through_switch, &[]);
    let start = cluster.now().await;
    cluster.wait_archived_after(start).await;

    // S3 goes away: segments pile up in the spool, nothing new is claimed archived.
    switch.set(false);
    let held = cluster.marker().await.expect("marker");
    for name in ["o1", "o2", "o3"] {
        cluster.sql(&batch(name, 2000)).await;
        cluster.sql("SELECT pg_switch_wal();").await;
    }
    until("upload errors and a growing spool", || async {
        let errors = cluster.metric("securityguard_wal_archive_errors_total").await.unwrap_or(0.0);
        let spool = cluster.metric("securityguard_wal_spool_bytes").await.unwrap_or(0.0);
        (errors > 0.0 && spool > 0.0).then_some(())
    })
    .await;
    assert_eq!(
        cluster.marker().await.map(|m| m.through),
        Some(held.through),
        "nothing reported archived while S3 is down"
    );

    // Back: it catches up.
    switch.set(true);
    let back = cluster.now().await;
    cluster.wait_archived_after(back).await;
    until("an empty spool", || async {
        (cluster.metric("securityguard_wal_spool_bytes").await == Some(0.0)).then_some(())
    })
    .await;

    // Killed while the database writes: the slot keeps the WAL until it returns.
    cluster.kill_archiver().await;
    cluster.sql(&batch("k1", 2000)).await;
    cluster.sql("SELECT pg_switch_wal();").await;
    cluster.sql(&batch("k2", 10)).await;
    cluster.start_archiver(&through_switch, &[]);
    let restarted = cluster.now().await;
    cluster.wait_archived_after(restarted).await;
    let window = cluster.window().await;
    assert_eq!(window.get("error"), None, "no gap after the outage or the kill: {window}");
    let first: Timestamp = window["firstRecoverable"].as_str().expect("first").parse().expect("time");
    assert!(first < back, "the window spans the outage: {window}");

    // A segment lost in the middle: the window shrinks to before it and says which.
    // Complete segments: `<24 hex>.gz`.
    let segments: Vec<String> = cluster
        .keys("wal/")
        .await
        .into_iter()
        .filter(|k| k.rsplit('/').next().is_some_and(|n| n.len() == 27))
        .collect();
    assert!(segments.len() >= 4, "{segments:?}");
    let lost = segments[segments.len() - 2].clone();
    Store::S3(cluster.s3.clone()).delete(&lost).await.expect("delete");
    let window = cluster.window().await;
    let name = lost.rsplit('/').next().unwrap_or_default().trim_end_matches(".gz").to_owned();
    assert!(window["error"].as_str().is_some_and(|e| e.contains(&name)), "{window}");
    let last: Option<Timestamp> = window["lastRecoverable"].as_str().map(|t| t.parse().expect("time"));
    assert!(last.is_none_or(|l| l < restarted), "nothing after the gap is recoverable: {window}");
    // A restore past the gap is refused before the data directory is touched.
    cluster.kill_archiver().await;
    cluster.stop().await;
    let out = cluster.restore(restarted, "r2", &[]).await;
    assert!(!out.status.success());
    assert_eq!(cluster.termination()["databaseChanged"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the window"));
    assert!(!cluster.data().join("pgdata.before-r2").exists() && !cluster.data().join("restore-r2").exists());
}

#[tokio::test]
async fn an_encrypted_archive_stores_no_plaintext_and_refuses_the_wrong_key_untouched() {
    let mut cluster = Cluster::new().await;
    cluster.start().await;
    cluster.sql(SCHEMA).await;
    cluster.sql("INSERT INTO scans (batch, payload) SELECT 'secret', 'wallet-seed-phrase-' || i FROM generate_series(1, 500) i;").await;
    let key_file = cluster.dir.path().join("keys");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).expect("key file");
    let wrong = cluster.dir.path().join("wrong");
    std::fs::write(&wrong, format!("{}\n", "cd".repeat(32))).expect("key file");
    if is_root() {
        let _ = std::process::Command::new("chown").arg("postgres:").arg(&key_file).arg(&wrong).status();
    }
    let endpoint = cluster.endpoint.clone();
    let key_arg = key_file.display().to_string();
    cluster.start_archiver(&endpoint, &["--encryption-key-file", &key_arg]);
    cluster.wait_window_open().await;
    let target = cluster.now().await;
    cluster.sql(&batch("later", 10)).await;
    let later = cluster.now().await;
    cluster.wait_recoverable(later).await;

    for key in cluster.keys("").await.into_iter().filter(|k| k.ends_with(".gz")) {
        let body = cluster.s3.get(&key).await.expect("get").collect().await.expect("body").into_bytes();
        assert!(!body.starts_with(&[0x1f, 0x8b]), "{key} is stored as plain gzip");
        assert!(!body.windows(19).any(|w| w == b"wallet-seed-phrase-"), "{key} holds plaintext");
    }
    cluster.kill_archiver().await;
    cluster.stop().await;
    let live_before = std::fs::read_dir(cluster.pgdata()).expect("pgdata").count();
    let out = cluster.restore(target, "r3", &["--encryption-key-file", &wrong.display().to_string()]).await;
    assert!(!out.status.success());
    let summary = cluster.termination();
    assert_eq!(summary["databaseChanged"], false);
    assert!(summary["error"].as_str().is_some_and(|e| e.contains("not touched") && e.contains("key")), "{summary}");
    assert_eq!(std::fs::read_dir(cluster.pgdata()).expect("pgdata").count(), live_before);
    assert!(!cluster.data().join("pgdata.before-r3").exists());
    let out = cluster.restore(target, "r4", &["--encryption-key-file", &key_arg]).await;
    assert!(out.status.success(), "the right key restores");
    cluster.start().await;
    assert_eq!(count(&cluster, "secret").await, 500);
    assert_eq!(count(&cluster, "later").await, 0);
}
