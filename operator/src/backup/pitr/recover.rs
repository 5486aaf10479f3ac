//! `securityguard-operator restore --point-in-time T`: the point-in-time restore Job of the
//! managed PostgreSQL, run in the PostgreSQL image (it needs the server) with the data volume
//! mounted and the database stopped.
//!
//! choose the base backup whose range holds T (else refuse, with the window) → download it beside
//! the live data (`<data-dir>/restore-<request>/`) and verify it against its manifest → extract →
//! recover it there with a private server (`recovery_target_time = T`, the WAL fetched from the
//! archive by [`super::fetch`]) until it is promoted → check it (it answers, row counts) → stop it →
//! swap: the live `pgdata` becomes `pgdata.before-<request>` (the rollback) and the recovered copy
//! becomes `pgdata`. The live data is untouched until that swap, two renames on one filesystem.
//!
//! `--roll-back-point-in-time` undoes a swap: `pgdata.before-<request>` back in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::process::Command;

use super::window::{self, Range};
use crate::backup::envelope::{Keyring, OpenError};
use crate::backup::ledger::{self, Holder};
use crate::backup::pg::{self, DbUrl};
use crate::backup::store::{self, S3Options, S3Store, Store};

/// The live cluster's directory under the data directory.
pub const LIVE: &str = "pgdata";
/// The WAL spool's directory under the data directory.
pub const SPOOL: &str = "wal-spool";

/// What the restore does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bucket.
    pub s3: S3Options,
    /// Key prefix of the backups.
    pub prefix: String,
    /// The guard, `<ns>/<name>`.
    pub guard: String,
    /// The time to recover to.
    pub target: Timestamp,
    /// The data volume (`pgdata` is the live cluster in it).
    pub data_dir: PathBuf,
    /// The restore request.
    pub request_id: String,
    /// Who claimed it, to record the outcome in the ledger.
    pub ledger: Option<Holder>,
    /// The key file, when the archive is encrypted.
    pub encryption_key_file: Option<PathBuf>,
    /// Directory of `postgres` and `pg_ctl` (default: on PATH).
    pub pg_bin: Option<PathBuf>,
    /// The cluster's superuser (local connections are trusted in the stock image).
    pub user: String,
    /// Longest the replay may take.
    pub recovery_timeout: Duration,
}

/// What was restored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The time asked for.
    pub target: Timestamp,
    /// The base backup restored.
    pub base_backup: String,
    /// When it was taken.
    pub base_backup_at: Timestamp,
    /// The last transaction replayed, as PostgreSQL reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_to: Option<String>,
    /// WAL files fetched from the archive.
    pub wal_files: usize,
    /// Rows per table of each database, after recovery.
    #[serde(skip)]
    pub row_counts: BTreeMap<String, u64>,
    /// Seconds by step: download, extract, replay, checks.
    pub seconds: BTreeMap<&'static str, f64>,
}

/// A failed restore, saying whether the live data changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target is outside the window.
    #[error("restore refused, the database was not touched: {target} is outside the window ({window})")]
    OutsideWindow {
        /// The target.
        target: Timestamp,
        /// The window, described.
        window: String,
    },
    /// The archive could not be read.
    #[error("restore refused, the database was not touched: {0}")]
    Archive(#[from] window::Error),
    /// The key file.
    #[error("restore refused, the database was not touched: {0}")]
    Key(#[from] crate::backup::envelope::KeyError),
    /// The base backup could not be downloaded.
    #[error("restore refused, the database was not touched: {0}")]
    Store(#[source] store::Error),
    /// It is not what its manifest says.
    #[error("restore refused, the database was not touched: base backup {key} is corrupt: {why}")]
    Corrupt {
        /// The base backup.
        key: String,
        /// What differs.
        why: String,
    },
    /// It is encrypted and no key file was given.
    #[error(
        "restore refused, the database was not touched: base backup {key} is encrypted with key {fingerprint} and no key file was given"
    )]
    NoKey {
        /// The base backup.
        key: String,
        /// The fingerprint of the key that sealed it.
        fingerprint: String,
    },
    /// It does not decrypt.
    #[error("restore refused, the database was not touched: base backup {key} cannot be decrypted: {source}")]
    Decrypt {
        /// The base backup.
        key: String,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// A step on the copy failed.
    #[error("restore failed, the database was not touched: {step}: {detail}")]
    Copy {
        /// The step.
        step: &'static str,
        /// What failed.
        detail: String,
    },
    /// The swap failed and could not be undone.
    #[error("restore failed while swapping the data directories: {detail}; the data directory may be {}", .dir.display())]
    Swap {
        /// What failed.
        detail: String,
        /// Where the data is.
        dir: PathBuf,
    },
}

impl Error {
    /// Whether the live data may have changed.
    pub fn database_changed(&self) -> bool {
        matches!(self, Error::Swap { .. })
    }

    fn copy(step: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Copy { step, detail: detail.to_string() }
    }
}

/// Paths of one request.
struct Paths {
    live: PathBuf,
    before: PathBuf,
    staging: PathBuf,
    copy: PathBuf,
}

impl Paths {
    fn new(data_dir: &Path, request_id: &str) -> Self {
        let staging = data_dir.join(format!("restore-{request_id}"));
        Paths {
            live: data_dir.join(LIVE),
            before: data_dir.join(format!("{LIVE}.before-{request_id}")),
            copy: staging.join(LIVE),
            staging,
        }
    }
}

/// Runs a point-in-time restore.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let paths = Paths::new(&options.data_dir, &options.request_id);
    let keyring = match &options.encryption_key_file {
        Some(path) => Some(Keyring::read(path).await?),
        None => None,
    };
    let s3 = S3Store::connect(&options.s3).await;
    let folder = super::layout::folder(&options.prefix, &options.guard);
    let loaded = window::load(&s3, &folder).await?;
    let Some(range) = window::choose(&loaded.ranges, options.target).cloned() else {
        return Err(Error::OutsideWindow { target: options.target, window: loaded.window.describe() });
    };
    tracing::info!(target = %options.target, base = %range.base.key, window = %loaded.window.describe(), "restoring to a point in time");
    let result = recover_and_swap(options, &paths, &s3, &range, keyring.as_ref()).await;
    if let Err(error) = &result
        && !error.database_changed()
    {
        // Nothing of a failed attempt stays on the volume (the live data was not touched).
        let _ = tokio::fs::remove_dir_all(&paths.staging).await;
    }
    result
}

/// Everything after the choice of the base backup.
async fn recover_and_swap(
    options: &Options,
    paths: &Paths,
    s3: &S3Store,
    range: &Range,
    keyring: Option<&Keyring>,
) -> Result<Report, Error> {
    let mut seconds: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut clock = Instant::now();
    let mut lap = |step: &'static str, clock: &mut Instant| {
        seconds.insert(step, (clock.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        *clock = Instant::now();
    };
    prepare_staging(paths).await?;
    let tar = paths.staging.join("base.tar.gz");
    download(s3, range, &tar, keyring).await?;
    lap("download", &mut clock);
    extract(&tar, &paths.copy).await?;
    lap("extract", &mut clock);
    let auto_conf = configure(paths, options, range).await?;
    let replayed = replay(paths, options).await;
    lap("replay", &mut clock);
    let (recovered_to, wal_files, row_counts) = match replayed {
        Ok(r) => r,
        Err(error) => {
            stop(paths, options).await;
            return Err(error);
        }
    };
    stop(paths, options).await;
    lap("checks", &mut clock);
    tokio::fs::write(paths.copy.join("postgresql.auto.conf"), auto_conf)
        .await
        .map_err(|e| Error::copy("restoring postgresql.auto.conf", e))?;
    let _ = tokio::fs::remove_file(paths.copy.join("recovery.signal")).await;
    swap(paths, &options.data_dir, &options.request_id).await?;
    if let Some(holder) = &options.ledger {
        let restored = format!("{}@{}", range.base.key, options.target);
        if let Err(error) =
            ledger::record_restored(s3, &options.prefix, &options.guard, holder, &restored, Timestamp::now()).await
        {
            tracing::warn!(%error, "the restore is done but the ledger could not record it");
        }
    }
    let report = Report {
        target: options.target,
        base_backup: range.base.key.clone(),
        base_backup_at: range.base.stopped_at,
        recovered_to,
        wal_files,
        row_counts,
        seconds,
    };
    tracing::info!(target = %report.target, base = %report.base_backup, recovered_to = report.recovered_to.as_deref().unwrap_or("-"), wal_files, "point-in-time restore done: the recovered copy is live");
    Ok(report)
}

async fn prepare_staging(paths: &Paths) -> Result<(), Error> {
    match tokio::fs::remove_dir_all(&paths.staging).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::copy("clearing an earlier attempt", e)),
    }
    tokio::fs::create_dir_all(&paths.copy).await.map_err(|e| Error::copy("creating the staging directory", e))?;
    set_mode(&paths.copy, 0o700).await
}

async fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| Error::copy("setting permissions", e))
}

/// Downloads the base backup, opening it on the way when sealed, and checks it against its
/// manifest before anything else reads it.
async fn download(s3: &S3Store, range: &Range, path: &Path, keyring: Option<&Keyring>) -> Result<(), Error> {
    let manifest = &range.base;
    if let (Some(encryption), None) = (&manifest.encryption, keyring) {
        return Err(Error::NoKey { key: manifest.key.clone(), fingerprint: encryption.key_fingerprint.clone() });
    }
    let keyring = keyring.filter(|_| manifest.encryption.is_some());
    let (size, sha256, opened) =
        crate::backup::restore::download_opening(&Store::S3(s3.clone()), &manifest.key, path, keyring)
            .await
            .map_err(Error::Store)?;
    if size != manifest.size || sha256 != manifest.sha256 {
        return Err(Error::Corrupt {
            key: manifest.key.clone(),
            why: format!(
                "{size} bytes with SHA-256 {sha256}, the manifest says {} bytes with {}",
                manifest.size, manifest.sha256
            ),
        });
    }
    if let Some(Err(source)) = opened {
        return Err(Error::Decrypt { key: manifest.key.clone(), source });
    }
    tracing::info!(key = %manifest.key, size, "base backup verified against its manifest");
    Ok(())
}

/// Extracts the tar (gzip) into the copy's directory.
async fn extract(tar: &Path, dir: &Path) -> Result<(), Error> {
    let (tar, target) = (tar.to_owned(), dir.to_owned());
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&tar)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        archive.unpack(&target)?;
        std::fs::remove_file(&tar)
    })
    .await
    .map_err(|e| Error::copy("extracting the base backup", e))?
    .map_err(|e| Error::copy("extracting the base backup", e))?;
    set_mode(dir, 0o700).await
}

/// Quotes a word for `/bin/sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// Quotes a string value for postgresql.conf.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A time as `recovery_target_time` takes it: `2026-11-30 10:00:00.25+00` (it refuses `T` and `Z`).
pub fn pg_time(time: Timestamp) -> String {
    let micros = time.subsec_microsecond();
    let fraction = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{}{fraction}+00", time.strftime("%Y-%m-%d %H:%M:%S"))
}

/// The `restore_command`: this binary's `wal fetch`, with the archive's settings.
pub fn restore_command(exe: &Path, options: &Options) -> String {
    let mut words = vec![exe.display().to_string(), "wal".into(), "fetch".into()];
    words.extend(["--bucket".into(), options.s3.bucket.clone(), "--prefix".into(), options.prefix.clone()]);
    words.extend(["--guard".into(), options.guard.clone(), "--region".into(), options.s3.region.clone()]);
    if let Some(endpoint) = &options.s3.endpoint {
        words.extend(["--endpoint".into(), endpoint.clone()]);
    }
    if options.s3.path_style {
        words.push("--path-style".into());
    }
    if let Some(file) = &options.encryption_key_file {
        words.extend(["--encryption-key-file".into(), file.display().to_string()]);
    }
    let mut command: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
    command.extend(["%f".into(), "%p".into()]);
    command.join(" ")
}

/// Writes the recovery settings into the copy; returns its original `postgresql.auto.conf`.
async fn configure(paths: &Paths, options: &Options, range: &Range) -> Result<String, Error> {
    let auto = paths.copy.join("postgresql.auto.conf");
    let original = match tokio::fs::read_to_string(&auto).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::copy("reading postgresql.auto.conf", e)),
    };
    let exe = std::env::current_exe().map_err(|e| Error::copy("finding this program", e))?;
    let settings = format!(
        "\n# Point-in-time restore {request} (removed once recovered)\nrestore_command = {command}\n\
         recovery_target_time = {target}\nrecovery_target_action = 'promote'\nrecovery_target_timeline = 'latest'\n",
        request = options.request_id,
        command = conf_quote(&restore_command(&exe, options)),
        target = conf_quote(&pg_time(options.target)),
    );
    tracing::info!(base = %range.base.key, target = %options.target, "recovery settings written");
    tokio::fs::write(&auto, format!("{original}{settings}"))
        .await
        .map_err(|e| Error::copy("writing the recovery settings", e))?;
    tokio::fs::write(paths.copy.join("recovery.signal"), b"")
        .await
        .map_err(|e| Error::copy("writing recovery.signal", e))?;
    Ok(original)
}

/// What the replay reached: the last transaction applied, the WAL files fetched, the rows.
type Replayed = (Option<String>, usize, BTreeMap<String, u64>);

/// Starts a private server on the copy (a socket in the staging directory, no TCP) and waits
/// until it has replayed to the target and promoted; then checks it.
async fn replay(paths: &Paths, options: &Options) -> Result<Replayed, Error> {
    let log = paths.staging.join("postgres.log");
    let settings = format!(
        "-c listen_addresses='' -c unix_socket_directories='{}' -c port=5432 -c archive_mode=off",
        paths.staging.display()
    );
    let pg_ctl = pg::program(options.pg_bin.as_deref(), "pg_ctl");
    let output = Command::new(&pg_ctl)
        .arg("-D")
        .arg(&paths.copy)
        .arg("-l")
        .arg(&log)
        .args(["-W", "start", "-o", &settings])
        .output()
        .await
        .map_err(|e| Error::copy("starting the recovery server", format!("{}: {e}", pg_ctl.display())))?;
    if !output.status.success() {
        return Err(Error::copy(
            "starting the recovery server",
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let connect = PgConnectOptions::new()
        .socket(&paths.staging)
        .port(5432)
        .username(&options.user)
        .database("postgres")
        .disable_statement_logging();
    let deadline = Instant::now() + options.recovery_timeout;
    let mut reported = Instant::now();
    let started = Instant::now();
    let mut seen_running = false;
    let mut conn = loop {
        // pg_ctl -W returns before the server wrote its pid file: "not running" counts once it
        // was seen running, or after a grace period.
        if running(&pg_ctl, &paths.copy).await {
            seen_running = true;
        } else if seen_running || started.elapsed() > Duration::from_secs(15) {
            return Err(Error::copy("replaying the WAL", format!("the server stopped: {}", log_tail(&log).await)));
        }
        if let Ok(mut conn) = PgConnection::connect_with(&connect).await {
            let recovering: Result<bool, _> =
                sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await;
            if recovering.is_ok_and(|r| !r) {
                break conn;
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::copy(
                "replaying the WAL",
                format!("not done after {:?}: {}", options.recovery_timeout, log_tail(&log).await),
            ));
        }
        if reported.elapsed() >= Duration::from_secs(10) {
            tracing::info!(fetched = count_fetched(&log).await, "replaying the WAL");
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let databases: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| Error::copy("checking the recovered copy", e))?;
    let _ = conn.close().await;
    let mut rows = BTreeMap::new();
    for database in databases {
        let mut conn = PgConnection::connect_with(&connect.clone().database(&database))
            .await
            .map_err(|e| Error::copy("checking the recovered copy", format!("database {database}: {e}")))?;
        let url = DbUrl::parse(&format!("postgres://{}@localhost/{database}", options.user))
            .map_err(|e| Error::copy("checking the recovered copy", e))?;
        let counts =
            pg::row_counts(&url, &mut conn).await.map_err(|e| Error::copy("checking the recovered copy", e))?;
        rows.extend(counts.into_iter().map(|(table, n)| (format!("{database}/{table}"), n)));
        let _ = conn.close().await;
    }
    let text = tokio::fs::read_to_string(&log).await.unwrap_or_default();
    let recovered_to = text
        .lines()
        .rev()
        .find_map(|l| {
            l.split("recovery stopping before ")
                .nth(1)
                .or_else(|| l.split("last completed transaction was at log time ").nth(1))
        })
        .map(str::to_owned);
    Ok((recovered_to, count_lines(&text), rows))
}

async fn running(pg_ctl: &Path, dir: &Path) -> bool {
    Command::new(pg_ctl).arg("-D").arg(dir).arg("status").output().await.is_ok_and(|o| o.status.success())
}

fn count_lines(log: &str) -> usize {
    log.lines().filter(|l| l.contains("restored log file")).count()
}

async fn count_fetched(log: &Path) -> usize {
    count_lines(&tokio::fs::read_to_string(log).await.unwrap_or_default())
}

/// The last lines of the server log (what went wrong is said there, with its context).
async fn log_tail(log: &Path) -> String {
    let text = tokio::fs::read_to_string(log).await.unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(4).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Stops the private server (fast shutdown: a checkpoint, then exit).
async fn stop(paths: &Paths, options: &Options) {
    let pg_ctl = pg::program(options.pg_bin.as_deref(), "pg_ctl");
    match Command::new(&pg_ctl)
        .arg("-D")
        .arg(&paths.copy)
        .args(["-m", "fast", "-w", "-t", "600", "stop"])
        .output()
        .await
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => tracing::info!(output = %String::from_utf8_lossy(&o.stderr).trim(), "pg_ctl stop"),
        Err(error) => tracing::warn!(%error, "cannot stop the recovery server"),
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The live data aside, the copy in its place; undone when the second rename fails.
async fn swap(paths: &Paths, data_dir: &Path, request_id: &str) -> Result<(), Error> {
    if exists(&paths.before) {
        return Err(Error::copy(
            "swapping",
            format!(
                "{} exists: an earlier attempt of this request already swapped; roll it back or use a new requestId",
                paths.before.display()
            ),
        ));
    }
    let had_live = exists(&paths.live);
    if had_live {
        tokio::fs::rename(&paths.live, &paths.before)
            .await
            .map_err(|e| Error::copy("moving the live data aside", e))?;
    }
    if let Err(error) = tokio::fs::rename(&paths.copy, &paths.live).await {
        if had_live && let Err(undo) = tokio::fs::rename(&paths.before, &paths.live).await {
            return Err(Error::Swap {
                detail: format!("{error}; moving it back failed too: {undo}"),
                dir: paths.before.clone(),
            });
        }
        return Err(Error::copy("putting the recovered copy in place", error));
    }
    sync_dir(data_dir).await;
    let spool = data_dir.join(SPOOL);
    if exists(&spool) {
        let aside = data_dir.join(format!("{SPOOL}.before-{request_id}"));
        if let Err(error) = tokio::fs::rename(&spool, &aside).await {
            tracing::warn!(%error, "cannot move the WAL spool aside; the archiver keeps it");
        }
    }
    let _ = tokio::fs::remove_dir_all(&paths.staging).await;
    remove_older_rollbacks(data_dir, &paths.before).await;
    Ok(())
}

/// Earlier requests' `pgdata.before-*` (the newest restore's is the only rollback kept).
async fn remove_older_rollbacks(data_dir: &Path, keep: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(data_dir).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.starts_with(&format!("{LIVE}.before-")) || name.starts_with(&format!("{LIVE}.failed-")))
            && entry.path() != keep
        {
            match tokio::fs::remove_dir_all(entry.path()).await {
                Ok(()) => {
                    tracing::info!(dir = %entry.path().display(), "removed the rollback copy of an earlier restore")
                }
                Err(error) => {
                    tracing::warn!(dir = %entry.path().display(), %error, "cannot remove an earlier rollback copy")
                }
            }
        }
    }
}

async fn sync_dir(dir: &Path) {
    if let Ok(file) = tokio::fs::File::open(dir).await {
        let _ = file.sync_all().await;
    }
}

/// Undoes the swap of `request_id`: the data moved aside goes back in place (the recovered one
/// is kept as `pgdata.failed-<request>`). Returns whether anything moved.
pub async fn roll_back(data_dir: &Path, request_id: &str) -> Result<bool, Error> {
    let paths = Paths::new(data_dir, request_id);
    if !exists(&paths.before) {
        tracing::info!(dir = %paths.before.display(), "nothing to roll back");
        return Ok(false);
    }
    let failed = data_dir.join(format!("{LIVE}.failed-{request_id}"));
    if exists(&paths.live) {
        let _ = tokio::fs::remove_dir_all(&failed).await;
        tokio::fs::rename(&paths.live, &failed).await.map_err(|e| Error::Swap {
            detail: format!("moving the restored data aside: {e}"),
            dir: paths.live.clone(),
        })?;
    }
    tokio::fs::rename(&paths.before, &paths.live)
        .await
        .map_err(|e| Error::Swap { detail: format!("putting the data back: {e}"), dir: paths.before.clone() })?;
    sync_dir(data_dir).await;
    // The WAL written after the restore belongs to the abandoned timeline.
    let spool = data_dir.join(SPOOL);
    let _ = tokio::fs::remove_dir_all(&spool).await;
    let aside = data_dir.join(format!("{SPOOL}.before-{request_id}"));
    if exists(&aside) {
        let _ = tokio::fs::rename(&aside, &spool).await;
    }
    tracing::info!(dir = %paths.live.display(), "rolled back: the data from before the restore is in place");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            s3: S3Options {
                bucket: "b".into(),
                endpoint: Some("http://s3:9000".into()),
                region: "us-east-1".into(),
                path_style: true,
                server_side_encryption: None,
            },
            prefix: "backups".into(),
            guard: "prod/it's".into(),
            target: "2026-11-30T10:00:00Z".parse().expect("time"),
            data_dir: PathBuf::from("/data"),
            request_id: "r1".into(),
            ledger: None,
            encryption_key_file: Some(PathBuf::from("/keys/k")),
            pg_bin: None,
            user: "postgres".into(),
            recovery_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_restore_command_survives_the_shell_and_the_config_file() {
        let command = restore_command(Path::new("/sg/bin/securityguard-operator"), &options());
        assert_eq!(
            command,
            "'/sg/bin/securityguard-operator' 'wal' 'fetch' '--bucket' 'b' '--prefix' 'backups' '--guard' 'prod/it'\\''s' \
             '--region' 'us-east-1' '--endpoint' 'http://s3:9000' '--path-style' '--encryption-key-file' '/keys/k' %f %p"
        );
        assert_eq!(conf_quote("a'b"), "'a''b'");
        assert_eq!(pg_time("2026-11-30T10:00:00Z".parse().expect("time")), "2026-11-30 10:00:00+00");
        assert_eq!(pg_time("2026-11-30T10:00:00.0025Z".parse().expect("time")), "2026-11-30 10:00:00.002500+00");
    }

    #[test]
    fn the_controller_reads_the_report_as_written() {
        let report = Report {
            target: "2026-11-30T10:00:00Z".parse().expect("time"),
            base_backup: "b/20261130T080000Z.tar.gz".into(),
            base_backup_at: "2026-11-30T08:00:01Z".parse().expect("time"),
            recovered_to: Some("2026-11-30 09:59:59.5+00".into()),
            wal_files: 7,
            row_counts: BTreeMap::new(),
            seconds: BTreeMap::from([("download", 1.5), ("replay", 4.0)]),
        };
        let read: crate::crd::PointInTimeRecovery =
            serde_json::from_value(serde_json::to_value(&report).expect("JSON")).expect("the status type reads it");
        assert_eq!(read.target.0.to_string(), report.target.to_string());
        assert_eq!(read.base_backup.as_deref(), Some(report.base_backup.as_str()));
        assert_eq!(read.wal_segments, Some(7));
    }

    #[tokio::test]
    async fn a_swap_is_undone_by_a_roll_back_and_refused_twice() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path();
        let paths = Paths::new(data, "r1");
        tokio::fs::create_dir_all(&paths.live).await.expect("live");
        tokio::fs::write(paths.live.join("PG_VERSION"), "old").await.expect("write");
        tokio::fs::create_dir_all(data.join(SPOOL)).await.expect("spool");
        tokio::fs::create_dir_all(&paths.copy).await.expect("copy");
        tokio::fs::write(paths.copy.join("PG_VERSION"), "new").await.expect("write");
        tokio::fs::create_dir_all(data.join("pgdata.before-r0")).await.expect("older rollback");
        swap(&paths, data, "r1").await.expect("swap");
        assert_eq!(tokio::fs::read_to_string(paths.live.join("PG_VERSION")).await.expect("read"), "new");
        assert_eq!(tokio::fs::read_to_string(paths.before.join("PG_VERSION")).await.expect("read"), "old");
        assert!(exists(&data.join("wal-spool.before-r1")) && !exists(&data.join(SPOOL)));
        assert!(!exists(&paths.staging) && !exists(&data.join("pgdata.before-r0")));
        tokio::fs::create_dir_all(&paths.copy).await.expect("copy again");
        assert!(matches!(swap(&paths, data, "r1").await, Err(Error::Copy { .. })), "never over a kept rollback");
        tokio::fs::create_dir_all(data.join(SPOOL)).await.expect("new timeline's spool");
        assert!(roll_back(data, "r1").await.expect("roll back"));
        assert_eq!(tokio::fs::read_to_string(paths.live.join("PG_VERSION")).await.expect("read"), "old");
        assert!(exists(&data.join(SPOOL)) && !exists(&data.join("wal-spool.before-r1")), "the old spool is back");
        assert!(!roll_back(data, "r1").await.expect("again"), "nothing left to roll back");
    }
}
