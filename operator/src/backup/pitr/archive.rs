//! `securityguard-operator wal archive`: the `wal-archiver` sidecar of the managed PostgreSQL.
//!
//! One loop, a pass every few seconds:
//! 1. make sure the replication slot exists (the server then keeps every segment the archiver
//!    has not received, across restarts of either) and `pg_receivewal` runs, streaming into the
//!    spool on the data volume;
//! 2. when the WAL moved since the last pass, commit a [`Heartbeat`];
//! 3. wait until the receiver flushed up to there;
//! 4. upload what the spool holds: history files and complete segments (then removed from the
//!    spool), and the `.partial` segment when it changed;
//! 5. when all of that succeeded, write the marker and move `archived_through` (the RPO metric)
//!    to the start of the pass. Otherwise nothing is claimed: the spool keeps what is not uploaded
//!    and the next pass catches up.
//!
//! Base backups run beside the loop ([`super::base`]), at start when none of the current
//! timeline exists and then every `base_backup_interval`; after each, retention deletes the
//! base backups past the retention and the WAL that no kept base backup needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::layout::{Heartbeat, Marker, SLOT, marker_key, wal_key};
use super::wal::{Lsn, Segment, WalFile};
use super::{base, fetch};
use crate::backup::envelope::Keyring;
use crate::backup::pg;
use crate::backup::store::{self, S3Options, S3Store, Store};

/// How long a pass waits for the receiver to flush the WAL written before it.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

/// What the archiver does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bucket.
    pub s3: S3Options,
    /// Key prefix of the backups.
    pub prefix: String,
    /// The guard, `<ns>/<name>`.
    pub guard: String,
    /// Where `pg_receivewal` writes (on the data volume).
    pub spool: PathBuf,
    /// The server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// A superuser (or a role with REPLICATION) that 127.0.0.1 trusts.
    pub user: String,
    /// Directory of `pg_receivewal` and `pg_basebackup` (default: on PATH).
    pub pg_bin: Option<PathBuf>,
    /// Time between passes.
    pub interval: Duration,
    /// Time between base backups.
    pub base_backup_interval: Duration,
    /// Base backups older than this many days are deleted (with the WAL only they needed).
    pub retention_days: u32,
    /// The newest this many base backups are kept whatever their age.
    pub keep_last: u32,
    /// The key file, when the archive is encrypted.
    pub encryption_key_file: Option<PathBuf>,
    /// Where /metrics and /healthz are served.
    pub metrics_address: SocketAddr,
}

/// The archiver's metrics.
pub struct Metrics {
    registry: Registry,
    /// Every change committed before this time is in the bucket.
    pub archived_through: Gauge<f64, AtomicU64>,
    /// Uploads by kind.
    pub uploads: Family<KindLabel, Counter>,
    /// Errors by step.
    pub errors: Family<StepLabel, Counter>,
    /// Bytes in the spool not yet uploaded.
    pub spool_bytes: Gauge,
    /// When the newest base backup ended.
    pub last_base_backup: Gauge<f64, AtomicU64>,
}

/// `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `segment`, `partial`, `history` or `base`.
    pub kind: &'static str,
}

/// `step` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    /// `connect`, `receive`, `heartbeat`, `upload`, `base_backup` or `retention`.
    pub step: &'static str,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("securityguard_wal");
        let metrics = Metrics {
            registry: Registry::default(),
            archived_through: Gauge::default(),
            uploads: Family::default(),
            errors: Family::default(),
            spool_bytes: Gauge::default(),
            last_base_backup: Gauge::default(),
        };
        registry.register(
            "archived_through_timestamp_seconds",
            "Every change committed before this time is in the bucket; time() minus this is the recovery point",
            metrics.archived_through.clone(),
        );
        registry.register("archive_uploads", "Objects uploaded, by kind", metrics.uploads.clone());
        registry.register("archive_errors", "Failures, by step", metrics.errors.clone());
        registry.register("spool_bytes", "Bytes received and not yet uploaded", metrics.spool_bytes.clone());
        registry.register(
            "last_base_backup_timestamp_seconds",
            "When the newest base backup ended",
            metrics.last_base_backup.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// The text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn error(&self, step: &'static str) {
        self.errors.get_or_create(&StepLabel { step }).inc();
    }

    fn uploaded(&self, kind: &'static str) {
        self.uploads.get_or_create(&KindLabel { kind }).inc();
    }
}

fn seconds(time: Timestamp) -> f64 {
    time.as_millisecond() as f64 / 1000.0
}

/// The archiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file.
    #[error(transparent)]
    Key(#[from] crate::backup::envelope::KeyError),
    /// The spool or the metrics port.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Everything a pass and a base backup share.
pub struct Archiver {
    /// What to do.
    pub options: Options,
    /// The bucket.
    pub s3: S3Store,
    /// The archive's folder.
    pub folder: String,
    /// The keys, when encrypting.
    pub keyring: Option<Keyring>,
    /// Metrics.
    pub metrics: Metrics,
    /// SHA-256 of the last `.partial` uploaded, by segment.
    partial_uploaded: Mutex<Option<(Segment, String)>>,
    /// Heartbeats not yet stored in a complete segment.
    heartbeats: Mutex<BTreeMap<Lsn, Heartbeat>>,
}

/// Runs the archiver until SIGTERM.
pub async fn run(options: Options) -> Result<(), Error> {
    let keyring = match &options.encryption_key_file {
        Some(path) => Some(Keyring::read(path).await?),
        None => None,
    };
    tokio::fs::create_dir_all(&options.spool)
        .await
        .map_err(|source| Error::Io { what: format!("creating the spool {}", options.spool.display()), source })?;
    let listener = tokio::net::TcpListener::bind(options.metrics_address)
        .await
        .map_err(|source| Error::Io { what: format!("listening on {}", options.metrics_address), source })?;
    let s3 = S3Store::connect(&options.s3).await;
    let folder = super::layout::folder(&options.prefix, &options.guard);
    let archiver = Arc::new(Archiver {
        options,
        s3,
        folder,
        keyring,
        metrics: Metrics::new(),
        partial_uploaded: Mutex::new(None),
        heartbeats: Mutex::new(BTreeMap::new()),
    });
    tokio::spawn(serve(listener, archiver.clone()));
    tracing::info!(folder = %archiver.folder, spool = %archiver.options.spool.display(), "archiving the WAL");
    archiver.upload_leftovers().await;
    let stop = crate::backup::tools::stop_requested();
    tokio::pin!(stop);
    let mut state = LoopState::default();
    loop {
        archiver.pass(&mut state).await;
        tokio::select! {
            signal = &mut stop => {
                tracing::info!(signal, "stopping: a last pass, then the receiver");
                archiver.pass(&mut state).await;
                if let Some(mut child) = state.receiver.take() {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
                return Ok(());
            }
            () = tokio::time::sleep(archiver.options.interval) => {}
        }
    }
}

/// What outlives a pass.
#[derive(Default)]
struct LoopState {
    connection: Option<PgConnection>,
    receiver: Option<Child>,
    receiver_started: Option<Instant>,
    last_heartbeat: Option<Heartbeat>,
    base_backup: Option<tokio::task::JoinHandle<()>>,
    next_base_backup: Option<Timestamp>,
}

async fn serve(listener: tokio::net::TcpListener, archiver: Arc<Archiver>) {
    use axum::routing::get;
    let router = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let archiver = archiver.clone();
                async move { crate::http::metrics_response(archiver.metrics.encode()) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    if let Err(error) = axum::serve(listener, router).await {
        tracing::error!(%error, "the metrics endpoint stopped");
    }
}

impl Archiver {
    /// How to reach the server.
    pub(super) fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(&self.options.host)
            .port(self.options.port)
            .username(&self.options.user)
            .database("postgres")
            .application_name("securityguard-wal-archiver")
            .disable_statement_logging()
    }

    /// One pass; errors are counted and logged, never fatal.
    async fn pass(self: &Arc<Self>, state: &mut LoopState) {
        let started = Timestamp::now();
        if state.connection.is_none() {
            match PgConnection::connect_with(&self.connect_options()).await {
                Ok(c) => state.connection = Some(c),
                Err(error) => {
                    self.metrics.error("connect");
                    tracing::warn!(error = %pg::redact(&error.to_string()), "cannot reach PostgreSQL yet");
                }
            }
        }
        // The slot and the receiver first: the heartbeat below must reach a running receiver.
        if let Some(mut conn) = state.connection.take() {
            self.keep_receiving(&mut conn, state).await;
            state.connection = Some(conn);
        }
        let caught_up = match state.connection.as_mut() {
            Some(conn) => match self.follow(conn, state.last_heartbeat).await {
                Ok(followed) => {
                    if let Some(beat) = followed.heartbeat {
                        state.last_heartbeat = Some(beat);
                        self.heartbeats.lock().await.insert(beat.lsn, beat);
                    }
                    Some(followed)
                }
                Err(error) => {
                    tracing::warn!(%error, "following the WAL failed");
                    state.connection = None;
                    None
                }
            },
            None => None,
        };
        let uploaded = self.upload_spool().await;
        if let (Some(followed), true) = (caught_up.filter(|f| f.flushed), uploaded) {
            let marker = Marker {
                through: started,
                lsn: followed.target,
                timeline: followed.timeline,
                heartbeat: state.last_heartbeat,
            };
            match Store::S3(self.s3.clone())
                .put_small(
                    &marker_key(&self.folder),
                    serde_json::to_vec(&marker).unwrap_or_default(),
                    "application/json",
                )
                .await
            {
                Ok(()) => {
                    self.metrics.archived_through.set(seconds(started));
                }
                Err(error) => {
                    self.metrics.error("upload");
                    tracing::warn!(%error, "writing the marker failed");
                }
            }
        }
        self.schedule_base_backup(state, caught_up.map(|f| f.timeline)).await;
    }

    /// Commits a heartbeat when the WAL moved, then waits for the receiver to flush.
    async fn follow(&self, conn: &mut PgConnection, last: Option<Heartbeat>) -> Result<Followed, sqlx::Error> {
        // Flushed WAL only: the receiver is sent nothing else, and nothing else is durable.
        let flushed: Lsn = lsn(conn, "SELECT pg_current_wal_flush_lsn()::text").await?;
        let timeline = timeline(conn).await?;
        let heartbeat = if last.is_none_or(|b| flushed > b.lsn) {
            // A transaction with an id commits a record; its time is after the clock read here,
            // and the synchronous commit has flushed it when COMMIT returns.
            let mut tx = conn.begin().await?;
            sqlx::query("SET LOCAL synchronous_commit TO on").execute(&mut *tx).await?;
            let at: String = sqlx::query_scalar(
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
                 FROM (SELECT pg_current_xact_id()) AS beat",
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            let lsn = lsn(conn, "SELECT pg_current_wal_flush_lsn()::text").await?;
            at.parse().ok().map(|at| Heartbeat { at, lsn })
        } else {
            None
        };
        let target = heartbeat.map_or(flushed, |b| b.lsn);
        let deadline = Instant::now() + FLUSH_WAIT;
        let flushed = loop {
            let row = sqlx::query("SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1")
                .bind(SLOT)
                .fetch_optional(&mut *conn)
                .await?;
            let at = row
                .and_then(|r| r.try_get::<Option<String>, _>("lsn").ok().flatten())
                .and_then(|t| t.parse::<Lsn>().ok());
            if at.is_some_and(|at| at >= target) {
                break true;
            }
            if Instant::now() >= deadline {
                self.metrics.error("receive");
                tracing::warn!(%target, received = ?at.map(|l| l.to_string()), "the receiver is behind");
                break false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        Ok(Followed { heartbeat, target, timeline, flushed })
    }

    /// Creates the slot when missing and (re)starts `pg_receivewal` when it is not running.
    async fn keep_receiving(&self, conn: &mut PgConnection, state: &mut LoopState) {
        let exists = sqlx::query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1")
            .bind(SLOT)
            .fetch_optional(&mut *conn)
            .await;
        match exists {
            Ok(Some(_)) => {}
            Ok(None) => {
                match sqlx::query("SELECT pg_create_physical_replication_slot($1, true)")
                    .bind(SLOT)
                    .execute(&mut *conn)
                    .await
                {
                    Ok(_) => tracing::info!(slot = SLOT, "replication slot created"),
                    Err(error) => {
                        self.metrics.error("receive");
                        tracing::warn!(%error, "cannot create the replication slot");
                        return;
                    }
                }
            }
            Err(error) => {
                self.metrics.error("receive");
                tracing::warn!(%error, "cannot read the replication slots");
                return;
            }
        }
        if let Some(child) = state.receiver.as_mut() {
            match child.try_wait() {
                Ok(None) => return,
                Ok(Some(status)) => {
                    self.metrics.error("receive");
                    tracing::warn!(%status, "pg_receivewal exited; starting it again");
                }
                Err(error) => tracing::warn!(%error, "cannot wait for pg_receivewal"),
            }
            state.receiver = None;
            // Not faster than every 5 s when it keeps failing.
            if state.receiver_started.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                return;
            }
        }
        let program = pg::program(self.options.pg_bin.as_deref(), "pg_receivewal");
        let mut command = Command::new(&program);
        command
            .args(["--host", &self.options.host, "--port", &self.options.port.to_string()])
            .args(["--username", &self.options.user, "--no-password", "--slot", SLOT])
            .args(["--synchronous", "--no-loop", "--verbose", "--directory"])
            .arg(&self.options.spool)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match command.spawn() {
            Ok(mut child) => {
                if let Some(stderr) = child.stderr.take() {
                    tokio::spawn(log_lines("pg_receivewal", BufReader::new(stderr)));
                }
                tracing::info!(program = %program.display(), "pg_receivewal started");
                state.receiver = Some(child);
                state.receiver_started = Some(Instant::now());
            }
            Err(error) => {
                self.metrics.error("receive");
                tracing::error!(program = %program.display(), %error, "cannot start pg_receivewal");
            }
        }
    }

    /// Uploads the spool; true when everything in it is in the bucket.
    async fn upload_spool(&self) -> bool {
        self.upload_dir(&self.options.spool.clone(), true).await
    }

    /// Uploads the WAL files of `dir` (oldest first); complete ones are removed once stored.
    async fn upload_dir(&self, dir: &Path, current: bool) -> bool {
        let files = match spool_files(dir).await {
            Ok(files) => files,
            Err(error) => {
                self.metrics.error("upload");
                tracing::warn!(dir = %dir.display(), %error, "cannot read the spool");
                return false;
            }
        };
        let mut all = true;
        let mut pending = 0u64;
        for (file, path) in files {
            let done = match file {
                WalFile::Partial(segment) if current => self.upload_partial(segment, &path).await,
                WalFile::Partial(segment) => {
                    self.upload_file(file, segment.name() + ".partial", &path, "partial").await
                }
                WalFile::Segment(segment) => self.upload_file(file, segment.name(), &path, "segment").await,
                WalFile::History(_) => self.upload_file(file, file.name(), &path, "history").await,
            };
            if !done {
                all = false;
                if !matches!(file, WalFile::Partial(_)) {
                    pending += tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
                }
            }
        }
        if current {
            self.metrics.spool_bytes.set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        all
    }

    /// Stores a complete file, then removes it from the spool.
    async fn upload_file(&self, file: WalFile, name: String, path: &Path, kind: &'static str) -> bool {
        let content = match tokio::fs::read(path).await {
            Ok(content) => content,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return true,
            Err(error) => {
                self.metrics.error("upload");
                tracing::warn!(file = %path.display(), %error, "cannot read a WAL file");
                return false;
            }
        };
        let heartbeat = match file {
            WalFile::Segment(segment) | WalFile::Partial(segment) => self.heartbeat_in(segment).await,
            WalFile::History(_) => None,
        };
        if let Err(error) = self.put(&name, &content, heartbeat).await {
            self.metrics.error("upload");
            tracing::warn!(file = %name, %error, "upload failed; kept in the spool");
            return false;
        }
        self.metrics.uploaded(kind);
        if let WalFile::Segment(segment) = file {
            // The partial copy of this segment is superseded.
            let _ =
                Store::S3(self.s3.clone()).delete(&wal_key(&self.folder, &format!("{}.partial", segment.name()))).await;
            self.heartbeats.lock().await.retain(|lsn, _| *lsn > segment.end());
        }
        if let Err(error) = tokio::fs::remove_file(path).await {
            tracing::warn!(file = %path.display(), %error, "cannot remove an uploaded WAL file");
        }
        tracing::debug!(file = %name, "archived");
        true
    }

    /// Stores the segment being written when it changed since the last upload.
    async fn upload_partial(&self, segment: Segment, path: &Path) -> bool {
        let content = match tokio::fs::read(path).await {
            Ok(content) => content,
            // Completed between the listing and the read: the next pass stores it whole.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return false,
            Err(error) => {
                self.metrics.error("upload");
                tracing::warn!(file = %path.display(), %error, "cannot read the partial segment");
                return false;
            }
        };
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
        let mut last = self.partial_uploaded.lock().await;
        if last.as_ref().is_some_and(|(s, d)| *s == segment && *d == digest) {
            return true;
        }
        let heartbeat = self.heartbeat_in(segment).await;
        match self.put(&format!("{}.partial", segment.name()), &content, heartbeat).await {
            Ok(()) => {
                self.metrics.uploaded("partial");
                *last = Some((segment, digest));
                true
            }
            Err(error) => {
                self.metrics.error("upload");
                tracing::warn!(segment = %segment.name(), %error, "uploading the partial segment failed");
                false
            }
        }
    }

    /// The newest heartbeat inside `segment`.
    async fn heartbeat_in(&self, segment: Segment) -> Option<Heartbeat> {
        let start = Lsn(segment.number * super::wal::SEGMENT_BYTES);
        let beats = self.heartbeats.lock().await;
        beats.range(Lsn(start.0 + 1)..=segment.end()).next_back().map(|(_, b)| *b)
    }

    /// Packs and stores one WAL file with its checksum (and heartbeat) as metadata.
    async fn put(&self, name: &str, content: &[u8], heartbeat: Option<Heartbeat>) -> Result<(), String> {
        let keyring = self.keyring.clone();
        let content = content.to_vec();
        let (stored, sha) = tokio::task::spawn_blocking(move || fetch::pack(&content, keyring.as_ref()))
            .await
            .map_err(|e| e.to_string())??;
        let key = wal_key(&self.folder, name);
        let sse = self.s3.server_side_encryption.as_ref();
        self.s3
            .client
            .put_object()
            .bucket(&self.s3.bucket)
            .key(&key)
            .content_type("application/gzip")
            .set_metadata(Some(metadata(sha, heartbeat)))
            .set_server_side_encryption(sse.map(store::ServerSideEncryption::header))
            .set_ssekms_key_id(sse.and_then(store::ServerSideEncryption::kms_key_id))
            .body(stored.into())
            .send()
            .await
            .map_err(|e| store::Error::s3("PutObject", &self.s3.bucket, &key, e).to_string())?;
        Ok(())
    }

    /// After a point-in-time restore, the old spool was moved aside (`<spool>.before-<request>`):
    /// store what it still held, then remove it.
    async fn upload_leftovers(&self) {
        let Some(parent) = self.options.spool.parent() else { return };
        let Some(name) = self.options.spool.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
        let Ok(mut entries) = tokio::fs::read_dir(parent).await else { return };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            if !entry_name.starts_with(&format!("{name}.before-")) {
                continue;
            }
            let dir = entry.path();
            if self.upload_dir(&dir, false).await {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                tracing::info!(dir = %dir.display(), "stored and removed the spool of the timeline before a restore");
            }
        }
    }

    /// Starts a base backup when one is due and none runs.
    async fn schedule_base_backup(self: &Arc<Self>, state: &mut LoopState, timeline: Option<u32>) {
        if state.base_backup.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        state.base_backup = None;
        let Some(timeline) = timeline else { return };
        let now = Timestamp::now();
        if state.next_base_backup.is_none() {
            match base::newest(&self.s3, &self.folder).await {
                Ok(Some(newest)) if newest.timeline == timeline => {
                    self.metrics.last_base_backup.set(seconds(newest.stopped_at));
                    state.next_base_backup = Some(after(newest.stopped_at, self.options.base_backup_interval));
                }
                Ok(_) => state.next_base_backup = Some(now),
                Err(error) => {
                    self.metrics.error("base_backup");
                    tracing::warn!(%error, "cannot list the base backups");
                    return;
                }
            }
        }
        if state.next_base_backup.is_some_and(|t| t <= now) {
            state.next_base_backup = Some(after(now, self.options.base_backup_interval));
            let archiver = self.clone();
            state.base_backup = Some(tokio::spawn(async move { archiver.base_backup().await }));
        }
    }

    async fn base_backup(&self) {
        let options = &self.options;
        let target = base::Target {
            s3: &self.s3,
            folder: &self.folder,
            keyring: self.keyring.as_ref(),
            connect: self.connect_options(),
            host: &options.host,
            port: options.port,
            user: &options.user,
            pg_bin: options.pg_bin.as_deref(),
        };
        match base::take(&target).await {
            Ok(manifest) => {
                self.metrics.uploaded("base");
                self.metrics.last_base_backup.set(seconds(manifest.stopped_at));
                tracing::info!(key = %manifest.key, size = manifest.size, start = %manifest.start_lsn, stop = %manifest.stop_lsn, "base backup stored");
                let policy = (options.retention_days, options.keep_last);
                if let Err(error) = base::retention(&self.s3, &self.folder, policy, Timestamp::now()).await {
                    self.metrics.error("retention");
                    tracing::warn!(%error, "retention of the WAL archive failed");
                }
            }
            Err(error) => {
                self.metrics.error("base_backup");
                tracing::error!(%error, "base backup failed");
            }
        }
    }
}

/// `time + interval`.
fn after(time: Timestamp, interval: Duration) -> Timestamp {
    time.checked_add(jiff::SignedDuration::try_from(interval).unwrap_or(jiff::SignedDuration::from_hours(24)))
        .unwrap_or(time)
}

/// The S3 user metadata of a WAL object: its SHA-256, and the newest heartbeat inside it.
fn metadata(sha256: String, heartbeat: Option<Heartbeat>) -> std::collections::HashMap<String, String> {
    let mut metadata = std::collections::HashMap::from([("sha256".to_owned(), sha256)]);
    if let Some(beat) = heartbeat {
        metadata.insert("heartbeat".to_owned(), beat.to_metadata());
    }
    metadata
}

/// What a pass learnt from the server.
#[derive(Debug, Clone, Copy)]
struct Followed {
    heartbeat: Option<Heartbeat>,
    target: Lsn,
    timeline: u32,
    flushed: bool,
}

async fn lsn(conn: &mut PgConnection, query: &'static str) -> Result<Lsn, sqlx::Error> {
    let text: String = sqlx::query_scalar(query).fetch_one(&mut *conn).await?;
    text.parse().map_err(|e: String| sqlx::Error::Protocol(e))
}

/// The server's current timeline (of the WAL being inserted).
async fn timeline(conn: &mut PgConnection) -> Result<u32, sqlx::Error> {
    let name: String =
        sqlx::query_scalar("SELECT pg_walfile_name(pg_current_wal_flush_lsn())").fetch_one(&mut *conn).await?;
    Segment::parse(&name).map(|s| s.timeline).ok_or_else(|| sqlx::Error::Protocol(format!("odd WAL file name {name}")))
}

/// The WAL files of a spool, oldest first (history files first).
async fn spool_files(dir: &Path) -> std::io::Result<Vec<(WalFile, PathBuf)>> {
    let mut files = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        if let Some(file) = WalFile::parse(&entry.file_name().to_string_lossy()) {
            files.push((file, entry.path()));
        }
    }
    files.sort_by_key(|(file, _)| match file {
        WalFile::History(t) => (0, u64::from(*t), 0),
        WalFile::Segment(s) => (1, s.number, 0),
        WalFile::Partial(s) => (1, s.number, 1),
    });
    Ok(files)
}

/// Logs a child's stderr line by line.
pub async fn log_lines(program: &'static str, reader: impl tokio::io::AsyncBufRead + Unpin) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(program, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_spool_is_read_oldest_first_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().expect("dir");
        for name in [
            "000000010000000000000004.partial",
            "000000010000000000000003",
            "00000002.history",
            "x.tmp",
            "000000010000000000000002",
        ] {
            tokio::fs::write(dir.path().join(name), b"").await.expect("write");
        }
        let names: Vec<String> =
            spool_files(dir.path()).await.expect("list").into_iter().map(|(f, _)| f.name()).collect();
        assert_eq!(
            names,
            [
                "00000002.history",
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000000000004.partial"
            ]
        );
    }
}
