//! Command line: `run` the operator, print the `crd`s, `backup`, list `backups` (and claim a
//! restore request in the ledger), `restore`,
//! print the `monitoring` rules. The kubectl plugin's command line is in [`plugin`].
//!
//! Clap only: each command's arguments become the plain options of the library function that
//! carries it out (`BackupArgs::options()` is a [`create::Options`] for [`create::run`]). The
//! defaults that the SecurityGuard resource shares are [`crate::crd::backup`]'s constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::backup::catalog::Source;
use crate::backup::config::GuardRef;
use crate::backup::store::{S3Options, ServerSideEncryption, SourceStore};
use crate::backup::{create, decrypt, drill, ledger, list, logs, pitr, restore};
use crate::crd::RetentionSpec;
use crate::crd::backup as backup_defaults;
use crate::run;

pub mod output;
pub mod plugin;

pub use output::{ListOutput, OutputArgs};

/// The SecurityGuard operator.
#[derive(Parser, Debug)]
#[command(name = "securityguard-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller (with leader election).
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Dump the database into S3 (and a local directory), then apply retention: what the
    /// backup CronJob runs.
    Backup(BackupArgs),
    /// Inspect the backups.
    Backups(BackupsArgs),
    /// Restore the database from a verified backup, or rehearse it in a scratch database: what
    /// the restore Job runs.
    Restore(RestoreArgs),
    /// Print the alerting rules (for promtool or a plain Prometheus) and the monitoring manifests.
    Monitoring(MonitoringArgs),
    /// Archive the API pods' logs (read through the API server) into S3, gzip-compressed, then
    /// delete archives older than the S3 retention: what the weekly log archive Job runs.
    ArchiveLogs(ArchiveLogsArgs),
    /// Threat feeds: `sync` downloads, checks and imports `spec.threatFeeds` into the API's
    /// pattern library, each feed atomically: what the threat-feed CronJob runs.
    Feeds(FeedsArgs),
    /// Point-in-time recovery of the managed PostgreSQL: `archive` streams the write-ahead log
    /// and takes base backups (the `wal-archiver` sidecar); `fetch` reads a WAL file back (the
    /// `restore_command` of a point-in-time restore).
    Wal(WalArgs),
    /// Copy this program to DEST (the init container of a point-in-time restore, which runs in
    /// the PostgreSQL image).
    InstallSelf {
        /// Where the copy goes (made executable).
        dest: PathBuf,
    },
}

/// `wal` subcommands.
#[derive(Args, Debug, Clone)]
pub struct WalArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: WalCommand,
}

/// What `wal` does.
#[derive(Subcommand, Debug, Clone)]
pub enum WalCommand {
    /// Stream the WAL through a replication slot into a spool on the data volume, upload it to
    /// `<prefix>/<ns>/.pitr/<name>/wal/`, and take base backups; runs until SIGTERM and serves
    /// /metrics and /healthz.
    Archive(WalArchiveArgs),
    /// Write the archived WAL file NAME to DEST (exit 1 when the archive does not hold it).
    Fetch(WalFetchArgs),
}

/// Options of `wal archive`. S3 credentials as for `backup`.
#[derive(Args, Debug, Clone)]
pub struct WalArchiveArgs {
    /// S3 bucket of the backups.
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: String,

    /// S3 connection, prefix and guard (`--guard <namespace>/<name>` is required).
    #[command(flatten)]
    pub s3: S3Args,

    /// Where `pg_receivewal` writes: on the data volume, so that what is not uploaded survives
    /// restarts.
    #[arg(long, env = "SG_WAL_SPOOL", default_value = "/var/lib/postgresql/data/wal-spool")]
    pub spool: PathBuf,

    /// The PostgreSQL server (the pod's own, over loopback).
    #[arg(long, env = "SG_WAL_PG_HOST", default_value = "127.0.0.1")]
    pub pg_host: String,

    /// Its port.
    #[arg(long, env = "SG_WAL_PG_PORT", default_value_t = 5432)]
    pub pg_port: u16,

    /// A superuser (or a role with REPLICATION) that loopback connections trust: the managed
    /// PostgreSQL's user.
    #[arg(long, env = "PGUSER", default_value = "postgres")]
    pub pg_user: String,

    /// Time between two passes (heartbeat, upload, marker): `10s`.
    #[arg(long, env = "SG_WAL_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Time between two base backups: `24h`.
    #[arg(long, env = "SG_BASE_BACKUP_INTERVAL", default_value = "24h", value_parser = parse_duration)]
    pub base_backup_interval: Duration,

    /// Base backups older than this many days are deleted, with the WAL no kept one needs.
    #[arg(long, env = "SG_BACKUP_RETENTION_DAYS_S3", default_value_t = backup_defaults::DEFAULT_S3_DAYS)]
    pub retention_days_s3: u32,

    /// The newest this many base backups are kept whatever their age.
    #[arg(long, env = "SG_BACKUP_KEEP_LAST", default_value_t = backup_defaults::DEFAULT_KEEP_LAST)]
    pub keep_last: u32,

    /// Client-side encryption of the WAL and the base backups.
    #[command(flatten)]
    pub encryption: EncryptionArgs,

    /// Address of /metrics and /healthz.
    #[arg(long, env = "SG_WAL_METRICS_ADDRESS", default_value = "0.0.0.0:9188")]
    pub metrics_address: SocketAddr,

    /// How the tools run.
    #[command(flatten)]
    pub job: JobArgs,
}

impl WalArchiveArgs {
    /// What the archiver does.
    pub fn options(&self) -> Result<pitr::archive::Options, String> {
        Ok(pitr::archive::Options {
            s3: self.s3.options(&self.bucket),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone().ok_or("--guard <namespace>/<name> is required")?,
            spool: self.spool.clone(),
            host: self.pg_host.clone(),
            port: self.pg_port,
            user: self.pg_user.clone(),
            pg_bin: self.job.pg_bin.clone(),
            interval: self.interval,
            base_backup_interval: self.base_backup_interval,
            retention_days: self.retention_days_s3,
            keep_last: self.keep_last,
            encryption_key_file: self.encryption.encryption_key_file.clone(),
            metrics_address: self.metrics_address,
        })
    }
}

/// Options of `wal fetch`.
#[derive(Args, Debug, Clone)]
pub struct WalFetchArgs {
    /// S3 bucket of the backups.
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: String,

    /// S3 connection, prefix and guard (`--guard` is required).
    #[command(flatten)]
    pub s3: S3Args,

    /// The keys of an encrypted archive.
    #[command(flatten)]
    pub encryption: EncryptionArgs,

    /// The WAL file (`%f`).
    pub name: String,

    /// Where to write it (`%p`).
    pub dest: PathBuf,
}

/// Options of `feeds`.
#[derive(Args, Debug, Clone)]
pub struct FeedsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FeedsCommand,
}

/// What `feeds` does.
#[derive(Subcommand, Debug, Clone)]
pub enum FeedsCommand {
    /// Download, check and submit every feed (a failed feed changes nothing; the others still
    /// sync); exits 1 when any feed failed.
    Sync(FeedsSyncArgs),
}

/// Options of `feeds sync`.
#[derive(Args, Debug, Clone)]
pub struct FeedsSyncArgs {
    /// Base URL of the SecurityGuard API, such as `http://sg-api.prod.svc:80`.
    #[arg(long, env = "SG_API_URL")]
    pub api_url: String,

    /// File holding the machine token (one a line, the first is used), mounted from the
    /// SecurityGuard's generated credentials Secret.
    #[arg(long, env = "SG_FEED_TOKEN_FILE")]
    pub token_file: PathBuf,

    /// The feeds, as the JSON list of `spec.threatFeeds.feeds` (defaults applied).
    #[arg(long, env = "SG_THREAT_FEEDS", value_parser = parse_feeds)]
    pub feeds: FeedList,

    /// Write a JSON summary of the outcome here (in a Job: /dev/termination-log).
    #[arg(long, env = "SG_TERMINATION_LOG")]
    pub termination_log: Option<PathBuf>,

    /// Plain-text logs instead of JSON.
    #[arg(long, env = "SG_LOG_TEXT")]
    pub log_text: bool,
}

/// The feeds of `--feeds`.
#[derive(Debug, Clone)]
pub struct FeedList(pub Vec<crate::crd::ThreatFeed>);

fn parse_feeds(text: &str) -> Result<FeedList, String> {
    serde_json::from_str(text).map(FeedList).map_err(|e| format!("not a JSON list of feeds: {e}"))
}

impl FeedsSyncArgs {
    /// What the sync does.
    pub fn options(&self) -> crate::feeds::Options {
        crate::feeds::Options {
            api_url: self.api_url.clone(),
            token_file: self.token_file.clone(),
            feeds: self.feeds.0.clone(),
        }
    }
}

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "SG_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Seconds between two reconciles of an unchanged SecurityGuard (drift detection).
    #[arg(long, env = "SG_RESYNC_SECONDS", default_value = "300", value_parser = parse_seconds)]
    pub resync: Duration,

    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "SG_LEASE_NAME", default_value = "securityguard-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (in a cluster: the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "securityguard-system")]
    pub lease_namespace: String,

    /// Identity of this process in the Lease (in a cluster: the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Seconds a Lease stays valid without renewal; a new leader takes over within this time
    /// when the old one dies without releasing it.
    #[arg(long, env = "SG_LEASE_SECONDS", default_value = "15")]
    pub lease_seconds: u64,

    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// SecurityGuards reconciled at the same time.
    #[arg(long, env = "SG_CONCURRENCY", default_value = "8")]
    pub concurrency: u16,

    /// Plain-text logs instead of JSON.
    #[arg(long, env = "SG_LOG_TEXT")]
    pub log_text: bool,

    /// Image of the backup and restore pods: this operator's own image, which carries
    /// pg_dump and pg_restore.
    #[arg(long, env = "SG_JOB_IMAGE", default_value = concat!("ghcr.io/securityguard/operator:", env!("CARGO_PKG_VERSION")))]
    pub job_image: String,
}

impl RunArgs {
    /// How the operator runs.
    pub fn options(&self) -> run::Options {
        run::Options {
            http_addr: self.http_addr,
            resync: self.resync,
            lease_name: self.lease_name.clone(),
            lease_namespace: self.lease_namespace.clone(),
            identity: self.identity.clone(),
            lease_seconds: self.lease_seconds,
            namespace: self.namespace.clone(),
            concurrency: self.concurrency,
            job_image: self.job_image.clone(),
        }
    }
}

/// How to reach the S3 server (the bucket is given per command).
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// Endpoint of an S3-compatible server (default: AWS).
    #[arg(long, env = "SG_BACKUP_ENDPOINT")]
    pub endpoint: Option<String>,

    /// Region of the bucket (the signing region for S3-compatible servers).
    #[arg(long, env = "SG_BACKUP_REGION", default_value = backup_defaults::DEFAULT_REGION)]
    pub region: String,

    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    #[arg(long, env = "SG_BACKUP_PATH_STYLE")]
    pub path_style: bool,

    /// Key prefix of the backups (also their folder under --local-dir).
    #[arg(long, env = "SG_BACKUP_PREFIX", default_value = backup_defaults::DEFAULT_PREFIX)]
    pub prefix: String,

    /// The SecurityGuard whose backups these are: a folder under the prefix.
    #[arg(long, env = "SG_GUARD")]
    pub guard: Option<String>,

    /// Ask S3 to encrypt every object written with keys it manages (SSE-S3,
    /// `x-amz-server-side-encryption: AES256`).
    #[arg(long, env = "SG_BACKUP_SSE_S3", conflicts_with = "sse_kms_key_id")]
    pub sse_s3: bool,

    /// Ask S3 to encrypt every object written with this AWS KMS key (SSE-KMS: a key id, ARN or
    /// alias). The credentials need `kms:GenerateDataKey` to write and `kms:Decrypt` to read.
    #[arg(long, env = "SG_BACKUP_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,
}

impl S3Args {
    /// How to reach `bucket` with these settings.
    pub fn options(&self, bucket: &str) -> S3Options {
        let server_side_encryption = match (&self.sse_kms_key_id, self.sse_s3) {
            (Some(key_id), _) => Some(ServerSideEncryption::Kms { key_id: key_id.clone() }),
            (None, true) => Some(ServerSideEncryption::S3),
            (None, false) => None,
        };
        S3Options {
            bucket: bucket.to_owned(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            server_side_encryption,
        }
    }
}

/// The key file of client-side encryption.
#[derive(Args, Debug, Clone)]
pub struct EncryptionArgs {
    /// File holding the encryption keys, one a line: 32 random bytes as 64 hex digits or as
    /// base64 (`openssl rand -base64 32`); `#` comments and blank lines are skipped. The first
    /// key encrypts what is written; any key decrypts what is read (keep retired keys below the
    /// current one). In a Job, the Secret of `spec.backup.encryption.keySecret`, mounted.
    #[arg(long, env = "SG_BACKUP_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<PathBuf>,
}

/// Options of `backup`. S3 credentials come from `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY` (or the SDK's other standard sources).
#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The database to dump: postgres://user:password@host:port/database (the password may
    /// also come from PGPASSWORD). Never logged with its password.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// S3 bucket receiving the dump.
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: String,

    /// S3 connection, prefix and guard.
    #[command(flatten)]
    pub s3: S3Args,

    /// Also keep a copy in this directory (the local tier, on a PersistentVolume).
    #[arg(long, env = "SG_BACKUP_LOCAL_DIR")]
    pub local_dir: Option<PathBuf>,

    /// Backups in S3 older than this many days are deleted after a successful backup.
    #[arg(long, env = "SG_BACKUP_RETENTION_DAYS_S3", default_value_t = backup_defaults::DEFAULT_S3_DAYS)]
    pub retention_days_s3: u32,

    /// Backups in --local-dir older than this many days are deleted after a successful backup.
    #[arg(long, env = "SG_BACKUP_RETENTION_DAYS_LOCAL", default_value_t = backup_defaults::DEFAULT_LOCAL_DAYS)]
    pub retention_days_local: u32,

    /// The newest this many good backups of each tier are never deleted, whatever their age.
    #[arg(long, env = "SG_BACKUP_KEEP_LAST", default_value_t = backup_defaults::DEFAULT_KEEP_LAST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_last: u32,

    /// Size of the S3 multipart parts in MiB (5 to 512). Memory use is about three parts; a
    /// dump can have at most 10,000 parts.
    #[arg(long, env = "SG_BACKUP_PART_SIZE_MIB", default_value = "8",
          value_parser = clap::value_parser!(u32).range(5..=512))]
    pub part_size_mib: u32,

    /// Also store the SecurityGuard and its ConfigMaps (never Secrets) as YAML next to the dump,
    /// covered by its manifest. Reads them with the pod's ServiceAccount (or the kubeconfig):
    /// `get` securityguards and `list` configmaps in the SecurityGuard's namespace.
    #[arg(long, env = "SG_BACKUP_CONFIG")]
    pub config_backup: bool,

    /// The SecurityGuard of --config-backup.
    #[command(flatten)]
    pub guard_ref: GuardRefArgs,

    /// Client-side encryption of the dump and the config backup.
    #[command(flatten)]
    pub encryption: EncryptionArgs,

    /// How the Job runs.
    #[command(flatten)]
    pub job: JobArgs,
}

impl BackupArgs {
    /// What the backup does.
    pub fn options(&self) -> create::Options {
        create::Options {
            database_url: self.database_url.clone(),
            s3: self.s3.options(&self.bucket),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone(),
            local_dir: self.local_dir.clone(),
            retention: RetentionSpec {
                s3_days: self.retention_days_s3,
                local_days: self.retention_days_local,
                keep_last: self.keep_last,
            },
            part_size_mib: self.part_size_mib,
            config_backup: self.config_backup,
            guard_ref: self.guard_ref.resolve(self.s3.guard.as_deref()),
            pg_bin: self.job.pg_bin.clone(),
            encryption_key_file: self.encryption.encryption_key_file.clone(),
        }
    }
}

/// Options of `archive-logs`. S3 credentials as for `backup`. Needs `list` pods and `get`
/// pods/log in the SecurityGuard's namespace.
#[derive(Args, Debug, Clone)]
pub struct ArchiveLogsArgs {
    /// S3 bucket receiving the archive.
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: String,

    /// S3 connection, prefix and guard folder.
    #[command(flatten)]
    pub s3: S3Args,

    /// The SecurityGuard whose API pods' logs are archived.
    #[command(flatten)]
    pub guard_ref: GuardRefArgs,

    /// How far back to read the logs: `7d`, `36h`, `90m`, `600s`.
    #[arg(long, env = "SG_LOG_ARCHIVE_SINCE", default_value = "7d", value_parser = crate::backup::logs::parse_since)]
    pub since: Duration,

    /// Archives older than this many days are deleted after a complete archive.
    #[arg(long, env = "SG_BACKUP_RETENTION_DAYS_S3", default_value_t = backup_defaults::DEFAULT_S3_DAYS)]
    pub retention_days_s3: u32,

    /// Client-side encryption of the archived logs.
    #[command(flatten)]
    pub encryption: EncryptionArgs,

    /// Write a JSON summary of the outcome here (in a Job: /dev/termination-log).
    #[arg(long, env = "SG_TERMINATION_LOG")]
    pub termination_log: Option<PathBuf>,

    /// Plain-text logs instead of JSON.
    #[arg(long, env = "SG_LOG_TEXT")]
    pub log_text: bool,
}

impl ArchiveLogsArgs {
    /// What the log archive does.
    pub fn options(&self) -> logs::Options {
        logs::Options {
            s3: self.s3.options(&self.bucket),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone(),
            guard_ref: self.guard_ref.resolve(self.s3.guard.as_deref()),
            since: self.since,
            retention_days_s3: self.retention_days_s3,
            encryption_key_file: self.encryption.encryption_key_file.clone(),
        }
    }
}

/// Which SecurityGuard, in the cluster.
#[derive(Args, Debug, Clone)]
pub struct GuardRefArgs {
    /// Namespace of the SecurityGuard (default: the part of --guard before `/`).
    #[arg(long, env = "SG_GUARD_NAMESPACE")]
    pub guard_namespace: Option<String>,

    /// Name of the SecurityGuard (default: the part of --guard after `/`).
    #[arg(long, env = "SG_GUARD_NAME")]
    pub guard_name: Option<String>,
}

impl GuardRefArgs {
    /// The SecurityGuard named by these options, else by a `--guard` of the form
    /// `<namespace>/<name>`.
    pub fn resolve(&self, guard: Option<&str>) -> Option<GuardRef> {
        GuardRef::resolve(self.guard_namespace.as_deref(), self.guard_name.as_deref(), guard)
    }
}

/// Where to read backups from: the bucket, else the local tier.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = true)]
pub struct SourceStoreArgs {
    /// S3 bucket of the backups.
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: Option<String>,

    /// Read the local tier in this directory instead of S3 (only when no bucket is given).
    #[arg(long, env = "SG_BACKUP_LOCAL_DIR")]
    pub local_dir: Option<PathBuf>,
}

impl SourceStoreArgs {
    /// The bucket (reached with `s3`), else the local directory.
    pub fn store(&self, s3: &S3Args) -> SourceStore {
        SourceStore { s3: self.bucket.as_deref().map(|bucket| s3.options(bucket)), local_dir: self.local_dir.clone() }
    }
}

/// `backups` subcommands.
#[derive(Args, Debug, Clone)]
pub struct BackupsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BackupsCommand,
}

/// What `backups` does.
#[derive(Subcommand, Debug, Clone)]
pub enum BackupsCommand {
    /// List the backups, newest first, with their verified state.
    List(ListArgs),
    /// Claim a restore request in the restore ledger (`<prefix>/<guard>/restores/`) before
    /// anything changes: what the first Job of a restore runs. Logs and reports the verdict:
    /// `claimed` (new), `resumed` (this claimant's unfinished claim) or `refused` (claimed by an
    /// earlier SecurityGuard of this name, or restored already). Exits 0 on a verdict, 1 when
    /// the ledger cannot be read or written.
    ClaimRestore(ClaimRestoreArgs),
    /// Decrypt one object of an encrypted backup (dump, config backup, log archive) copied out of
    /// the bucket, with the key file; the output is removed unless every chunk authenticates.
    Decrypt(DecryptArgs),
    /// The point-in-time recovery window of the managed PostgreSQL's WAL archive: the first
    /// and last recoverable times, the base backups, and why it is shorter when it is.
    Window(WindowArgs),
}

/// Options of `backups window`.
#[derive(Args, Debug, Clone)]
pub struct WindowArgs {
    /// S3 bucket of the backups.
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: String,

    /// S3 connection, prefix and guard (`--guard` is required).
    #[command(flatten)]
    pub s3: S3Args,

    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `backups claim-restore`.
#[derive(Args, Debug, Clone)]
pub struct ClaimRestoreArgs {
    /// S3 bucket of the backups (the ledger lives beside them).
    #[arg(long, env = "SG_BACKUP_BUCKET")]
    pub bucket: String,

    /// S3 connection, prefix and guard (`--guard` is required).
    #[command(flatten)]
    pub s3: S3Args,

    /// The `spec.restore.requestId` to claim.
    #[arg(long, env = "SG_RESTORE_REQUEST_ID")]
    pub request_id: String,

    /// Who claims: the UID of the SecurityGuard object.
    #[arg(long, env = "SG_RESTORE_CLAIMANT")]
    pub claimant: String,

    /// The source asked for, recorded with the claim.
    #[arg(long, env = "SG_RESTORE_SOURCE", default_value = backup_defaults::DEFAULT_SOURCE)]
    pub source: String,

    /// A point-in-time restore to this time (RFC 3339): the claim is refused, before anything
    /// is recorded or changed, when the time is outside the recoverable window.
    #[arg(long, env = "SG_RESTORE_POINT_IN_TIME")]
    pub point_in_time: Option<jiff::Timestamp>,

    /// Write a JSON summary of the outcome here (in a Job: /dev/termination-log).
    #[arg(long, env = "SG_TERMINATION_LOG")]
    pub termination_log: Option<PathBuf>,

    /// Plain-text logs instead of JSON.
    #[arg(long, env = "SG_LOG_TEXT")]
    pub log_text: bool,
}

impl ClaimRestoreArgs {
    /// What the claim does.
    pub fn options(&self) -> ledger::ClaimOptions {
        ledger::ClaimOptions {
            s3: self.s3.options(&self.bucket),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone(),
            claimant: self.claimant.clone(),
            request_id: self.request_id.clone(),
            source: self.source.clone(),
        }
    }
}

/// Options of `backups decrypt`.
#[derive(Args, Debug, Clone)]
pub struct DecryptArgs {
    /// The encrypted object.
    pub input: PathBuf,

    /// Where the decrypted content goes.
    #[arg(long, short)]
    pub output: PathBuf,

    /// File holding the keys, one a line (the Secret of `spec.backup.encryption.keySecret`).
    #[arg(long, env = "SG_BACKUP_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: PathBuf,
}

impl DecryptArgs {
    /// What the decryption does.
    pub fn options(&self) -> decrypt::Options {
        decrypt::Options {
            key_file: self.encryption_key_file.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
        }
    }
}

/// Options of `backups list`.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// The bucket or the local directory.
    #[command(flatten)]
    pub store: SourceStoreArgs,

    /// S3 connection, prefix and guard.
    #[command(flatten)]
    pub s3: S3Args,

    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ListArgs {
    /// What the listing does.
    pub fn options(&self) -> list::Options {
        list::Options {
            store: self.store.store(&self.s3),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone(),
            format: self.output.output.into(),
        }
    }
}

/// Options of `restore`.
#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The database to restore into: postgres://user:password@host:port/database. With
    /// --verify-only, the server and credentials used to create the scratch database. Not used
    /// by a point-in-time restore.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true,
          required_unless_present_any = ["point_in_time", "roll_back_point_in_time"])]
    pub database_url: Option<String>,

    /// Point-in-time restore of the managed PostgreSQL to this time (RFC 3339): a base backup
    /// and the archived WAL replayed up to it, beside the live data in --data-dir, checked, then
    /// swapped in. Runs in the PostgreSQL image with the database stopped.
    #[arg(long, env = "SG_RESTORE_POINT_IN_TIME", conflicts_with_all = ["verify_only", "roll_back_point_in_time"])]
    pub point_in_time: Option<jiff::Timestamp>,

    /// Undo the swap of the point-in-time restore --request-id: the data moved aside goes back.
    #[arg(long, env = "SG_RESTORE_ROLL_BACK_POINT_IN_TIME", requires = "request_id")]
    pub roll_back_point_in_time: bool,

    /// The PostgreSQL data volume of a point-in-time restore (the live cluster is `pgdata` in it).
    #[arg(long, env = "SG_RESTORE_DATA_DIR", default_value = "/var/lib/postgresql/data")]
    pub data_dir: PathBuf,

    /// The cluster's superuser, for the checks of a point-in-time restore (local connections
    /// are trusted).
    #[arg(long, env = "PGUSER", default_value = "postgres")]
    pub pg_user: String,

    /// Longest the WAL replay of a point-in-time restore may take.
    #[arg(long, env = "SG_RESTORE_RECOVERY_TIMEOUT", default_value = "2h", value_parser = parse_duration)]
    pub recovery_timeout: Duration,

    /// Which backup: `latest`, `before:<RFC 3339 time>` (the newest taken before it), or a key.
    #[arg(long, env = "SG_RESTORE_SOURCE", default_value = backup_defaults::DEFAULT_SOURCE)]
    pub source: Source,

    /// The bucket or the local directory.
    #[command(flatten)]
    pub store: SourceStoreArgs,

    /// S3 connection, prefix and guard.
    #[command(flatten)]
    pub s3: S3Args,

    /// Restore drill: restore into a scratch database on the same server, check it, drop it;
    /// the database of --database-url is not touched.
    #[arg(long, env = "SG_RESTORE_VERIFY_ONLY")]
    pub verify_only: bool,

    /// Name of the scratch database of --verify-only (default: a random `sg_restore_check_…`).
    #[arg(long, env = "SG_RESTORE_SCRATCH_DATABASE")]
    pub scratch_database: Option<String>,

    /// With --verify-only: the drill fails when the restore, from its start until the restored
    /// data is checked, takes longer than this (`15m`, `1h30m`: d, h, m, s). Measured anyway.
    #[arg(long, env = "SG_DRILL_RECOVERY_TIME_TARGET", requires = "verify_only", value_parser = parse_duration)]
    pub recovery_time_target: Option<Duration>,

    /// With --verify-only and the source latest: the drill fails when the newest good backup's
    /// snapshot is older than this when the drill starts (`1h`). Measured anyway.
    #[arg(long, env = "SG_DRILL_RECOVERY_POINT_TARGET", requires = "verify_only", value_parser = parse_duration)]
    pub recovery_point_target: Option<Duration>,

    /// Directory for the downloaded dump (default: the system temporary directory).
    #[arg(long, env = "SG_RESTORE_WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// The restore request this restore serves, claimed with `backups claim-restore`: once
    /// the database holds the backup, its key is added to the request's record in the ledger.
    #[arg(long, env = "SG_RESTORE_REQUEST_ID")]
    pub request_id: Option<String>,

    /// The UID that claimed --request-id.
    #[arg(long, env = "SG_RESTORE_CLAIMANT", requires = "request_id")]
    pub claimant: Option<String>,
    /// The keys of encrypted backups (an unencrypted backup needs none).
    #[command(flatten)]
    pub encryption: EncryptionArgs,

    /// How the Job runs.
    #[command(flatten)]
    pub job: JobArgs,
}

impl RestoreArgs {
    /// What the restore does.
    pub fn options(&self) -> restore::Options {
        restore::Options {
            database_url: self.database_url.clone().unwrap_or_default(),
            source: self.source.clone(),
            store: self.store.store(&self.s3),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone(),
            verify_only: self.verify_only,
            scratch_database: self.scratch_database.clone(),
            work_dir: self.work_dir.clone(),
            pg_bin: self.job.pg_bin.clone(),
            ledger: self.holder(),
            encryption_key_file: self.encryption.encryption_key_file.clone(),
        }
    }

    /// What a point-in-time restore to `target` does.
    pub fn point_in_time(&self, target: jiff::Timestamp) -> Result<pitr::recover::Options, String> {
        let bucket = self.store.bucket.clone().ok_or("a point-in-time restore needs --bucket")?;
        Ok(pitr::recover::Options {
            s3: self.s3.options(&bucket),
            prefix: self.s3.prefix.clone(),
            guard: self.s3.guard.clone().ok_or("--guard <namespace>/<name> is required")?,
            target,
            data_dir: self.data_dir.clone(),
            request_id: self.request_id.clone().ok_or("a point-in-time restore needs --request-id")?,
            ledger: self.holder(),
            encryption_key_file: self.encryption.encryption_key_file.clone(),
            pg_bin: self.job.pg_bin.clone(),
            user: self.pg_user.clone(),
            recovery_timeout: self.recovery_timeout,
        })
    }

    fn holder(&self) -> Option<ledger::Holder> {
        match (&self.request_id, &self.claimant) {
            (Some(request_id), Some(claimant)) => {
                Some(ledger::Holder { request_id: request_id.clone(), claimant: claimant.clone() })
            }
            _ => None,
        }
    }

    /// The recovery targets of a drill.
    pub fn targets(&self) -> drill::Targets {
        drill::Targets { recovery_time: self.recovery_time_target, recovery_point: self.recovery_point_target }
    }
}

/// What the backup and restore Jobs share.
#[derive(Args, Debug, Clone)]
pub struct JobArgs {
    /// Directory of pg_dump and pg_restore (default: found on PATH).
    #[arg(long, env = "SG_PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// Write a JSON summary of the outcome here (in a Job: /dev/termination-log, which the
    /// pod status shows as the container's termination message).
    #[arg(long, env = "SG_TERMINATION_LOG")]
    pub termination_log: Option<PathBuf>,

    /// Plain-text logs instead of JSON.
    #[arg(long, env = "SG_LOG_TEXT")]
    pub log_text: bool,
}

/// `monitoring` subcommands.
#[derive(Args, Debug, Clone)]
pub struct MonitoringArgs {
    /// What to print.
    #[command(subcommand)]
    pub command: MonitoringCommand,
}

/// What `monitoring` prints.
#[derive(Subcommand, Debug, Clone)]
pub enum MonitoringCommand {
    /// The alert rule file of one SecurityGuard (what its PrometheusRule holds).
    Rules {
        /// Namespace of the SecurityGuard.
        #[arg(long)]
        namespace: String,
        /// Name of the SecurityGuard.
        #[arg(long)]
        name: String,
    },
    /// The rule file of the operator-wide alerts.
    OperatorRules {
        /// The `job` label of the operator's scraped metrics.
        #[arg(long, default_value = crate::monitoring::alerts::OPERATOR_JOB)]
        job: String,
    },
    /// The operator's ServiceMonitor and PrometheusRule (config/prometheus/operator.yaml).
    OperatorManifests,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::crd::duration::parse(s)
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n: u64 = s.parse().map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    if n == 0 {
        return Err("must be at least 1 second".to_owned());
    }
    Ok(Duration::from_secs(n))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn s3(args: &[&str]) -> Result<Option<ServerSideEncryption>, clap::Error> {
        let mut line = vec!["securityguard-operator", "backups", "list", "--bucket", "b"];
        line.extend_from_slice(args);
        let cli = Cli::try_parse_from(line)?;
        let Command::Backups(BackupsArgs { command: BackupsCommand::List(list) }) = cli.command else {
            panic!("not a listing")
        };
        Ok(list.s3.options("b").server_side_encryption)
    }

    #[test]
    fn server_side_encryption_is_one_of_sse_s3_or_sse_kms() {
        assert_eq!(s3(&[]).expect("none"), None);
        assert_eq!(s3(&["--sse-s3"]).expect("SSE-S3"), Some(ServerSideEncryption::S3));
        assert_eq!(
            s3(&["--sse-kms-key-id", "alias/backups"]).expect("SSE-KMS"),
            Some(ServerSideEncryption::Kms { key_id: "alias/backups".into() })
        );
        assert!(s3(&["--sse-s3", "--sse-kms-key-id", "k"]).is_err(), "not both");
    }
}
