//! Backups to S3 (`spec.backup`) and restore by editing the resource (`spec.restore`).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::human;
use super::formats;
use super::workload::SecretKeyReference;

/// Scheduled and on-demand backups of the PostgreSQL database to S3, restore drills, and the
/// weekly archive of the API's logs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// When to back up, as a cron expression in UTC (default `0 * * * *`: hourly, the
    /// infrastructure guide's one-hour recovery point objective). Five fields separated by
    /// spaces: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-6
    /// or SUN-SAT; each `*`, a value, a list `a,b`, a range `a-b` or a step `*/n` or `a-b/n` (`?`
    /// in the day fields). Or a macro: `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`,
    /// `@yearly` (`@annually`).
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 1, max = 128), transform = formats::cron_schedule)]
    pub schedule: String,

    /// Stop the scheduled backups (on-demand backups and restores still work).
    #[serde(default)]
    pub suspend: bool,

    /// Where the backups go.
    pub s3: S3Spec,

    /// How long backups are kept.
    #[serde(default)]
    pub retention: RetentionSpec,

    /// A local copy of every backup on a PersistentVolume, next to the S3 copy (absent: S3 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalTierSpec>,

    /// Set to a new value to take one backup now. Each value is acted on once: the status
    /// records the last one handled, so re-applying the same manifest does nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"))]
    pub request_id: Option<String>,

    /// Restore drills: the latest backup is restored into a scratch database on the same
    /// server, checked against its manifest and dropped. The live database is not touched.
    #[serde(default)]
    pub verify: VerifySpec,

    /// The weekly archive of the API pods' logs to S3.
    #[serde(default)]
    pub log_archive: LogArchiveSpec,

    /// Client-side encryption: the dumps, config backups and log archives are encrypted in the
    /// backup pod, before they reach S3 or the local volume, with a key from a Secret (absent:
    /// stored as they are, though S3 may still encrypt them at rest, see
    /// `s3.serverSideEncryption`). Whoever can read the bucket then learns nothing of the data;
    /// whoever loses every copy of the key loses the backups encrypted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,

    /// Point-in-time recovery of the managed PostgreSQL (absent: off): its write-ahead log is
    /// archived continuously to the same bucket and prefix, beside periodic base backups, so that
    /// `spec.restore.source: before:<time>` recovers the database to that second. For an external
    /// PostgreSQL the dumps stay the method and `status.backup.pointInTime.message` says that
    /// point-in-time recovery belongs to its provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<PointInTimeSpec>,
}

/// Continuous archiving of the write-ahead log (WAL) of the managed PostgreSQL: a `wal-archiver`
/// container of the operator's image beside PostgreSQL streams every change to
/// `<prefix>/<namespace>/.pitr/<name>/` and takes the base backups. The database does not wait
/// for it: while S3 is unreachable, it keeps what is not uploaded on the data volume and catches
/// up, and the recovery point it has reached is a metric, an alert and the recoverable window
/// in `status.backup.pointInTime`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PointInTimeSpec {
    /// How often a base backup (a copy of the whole PostgreSQL cluster) is taken: a restore
    /// starts from the newest base backup before its target and replays the WAL since, so a
    /// shorter interval restores faster and stores more. A duration in the form of
    /// `spec.backup.verify.targets.recoveryTime` (default `24h`). A base backup is also taken
    /// when the archiver starts and finds none of the current timeline.
    #[serde(default = "default_base_backup_interval")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(formats::duration_rule()).message(formats::DURATION_MESSAGE))]
    pub base_backup_interval: String,

    /// The recovery point above which the alert `SecurityGuardWalArchiveBehind` fires: how old
    /// the newest change known to be archived may be (`time()` minus
    /// `securityguard_wal_archived_through_timestamp_seconds`) before someone is told, once it
    /// has been older for 2 minutes. A duration in the form of `baseBackupInterval` (default `5m`).
    #[serde(default = "default_archive_lag_alert")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(formats::duration_rule()).message(formats::DURATION_MESSAGE))]
    pub archive_lag_alert: String,

    /// CPU and memory of the `wal-archiver` container, as quantities (default requests 50m /
    /// 64Mi, limit 256Mi). A request may not exceed its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "formats::resources_schema")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for PointInTimeSpec {
    fn default() -> Self {
        Self {
            base_backup_interval: DEFAULT_BASE_BACKUP_INTERVAL.to_owned(),
            archive_lag_alert: DEFAULT_ARCHIVE_LAG_ALERT.to_owned(),
            resources: None,
        }
    }
}

/// Client-side encryption of the backups (ChaCha20-Poly1305 in 64 KiB authenticated chunks, a
/// fresh key per object derived from the backup key).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// The Secret key holding the encryption keys, mounted as a file into the backup, restore,
    /// drill and log-archive pods (never an argument, an environment value or a log line). One
    /// key a line: 32 random bytes as base64 (`openssl rand -base64 32`) or as 64 hex digits;
    /// blank lines and `#` comments are skipped. The first key encrypts new backups; every key
    /// decrypts, so to rotate, put the new key on the first line and keep the old ones below for
    /// as long as backups encrypted with them are kept. Manifests, logs and errors name a key
    /// by its fingerprint only (`sha256:` and 16 hex digits).
    pub key_secret: SecretKeyReference,
}

/// The S3 bucket (AWS or any S3-compatible server) holding the backups.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// Bucket name.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,

    /// Key prefix; backups of this SecurityGuard go under `<prefix>/<namespace>/<name>/`
    /// (default `securityguard`).
    #[serde(default = "default_prefix")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9!_.*'()/-]+$"))]
    pub prefix: String,

    /// Region of the bucket, or the signing region of an S3-compatible server (default `us-east-1`).
    #[serde(default = "default_region")]
    #[schemars(length(min = 1, max = 64))]
    pub region: String,

    /// Endpoint URL of an S3-compatible server, such as `https://minio.storage:9000`
    /// (default: AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']")
        .message("endpoint must be an http or https URL"))]
    pub endpoint: Option<String>,

    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    #[serde(default)]
    pub path_style: bool,

    /// Name of a Secret in this namespace with the keys `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    #[schemars(length(min = 1, max = 253), regex(pattern = formats::DNS_SUBDOMAIN_PATTERN))]
    pub credentials_secret: String,

    /// Server-side encryption asked of S3 for every object written (dumps, manifests, config
    /// backups, log archives): S3 encrypts them at rest and decrypts them for whoever may read
    /// them (absent: the bucket's default encryption applies). Independent of, and combinable
    /// with, the client-side `spec.backup.encryption`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_encryption: Option<ServerSideEncryptionSpec>,
}

/// Server-side encryption of the backup objects by S3.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'SSE-KMS' ? has(self.kmsKeyId) : !has(self.kmsKeyId)")
    .message("kmsKeyId is required with type SSE-KMS, and only allowed with it")
    .field_path(".kmsKeyId"))]
pub struct ServerSideEncryptionSpec {
    /// `SSE-S3`: keys managed by S3 (`AES256`); `SSE-KMS`: an AWS KMS key, `kmsKeyId` (`aws:kms`).
    #[serde(rename = "type")]
    pub type_: ServerSideEncryptionType,

    /// The KMS key of `SSE-KMS`: a key id, key ARN, alias (`alias/backups`) or alias ARN. The
    /// S3 credentials need `kms:GenerateDataKey` on it to write and `kms:Decrypt` to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,
}

/// How S3 encrypts the objects at rest.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerSideEncryptionType {
    /// Keys managed by S3 (`x-amz-server-side-encryption: AES256`).
    #[serde(rename = "SSE-S3")]
    SseS3,
    /// A key of AWS KMS (`x-amz-server-side-encryption: aws:kms`).
    #[serde(rename = "SSE-KMS")]
    SseKms,
}

/// How long backups are kept. Retention runs after each successful backup only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Days a backup is kept in S3 (default 90).
    #[serde(default = "default_s3_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub s3_days: u32,
    /// Days a backup is kept on the local volume (default 30).
    #[serde(default = "default_local_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub local_days: u32,
    /// The newest this many good backups are never deleted, whatever their age (default 3).
    #[serde(default = "default_keep_last")]
    #[schemars(range(min = 1, max = 1000))]
    pub keep_last: u32,
}

impl Default for RetentionSpec {
    fn default() -> Self {
        Self { s3_days: default_s3_days(), local_days: default_local_days(), keep_last: default_keep_last() }
    }
}

/// The local tier: a PersistentVolumeClaim `<name>-backups` kept when the SecurityGuard is
/// deleted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalTierSpec {
    /// Size of the volume, such as `20Gi`.
    #[x_kube(validation = Rule::new(formats::positive_quantity_rule())
        .message("size must be a positive quantity such as 20Gi"))]
    pub size: Quantity,
    /// StorageClass of the volume (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = formats::DNS_SUBDOMAIN_PATTERN))]
    pub storage_class_name: Option<String>,
}

/// Restore drills. Each drill measures the recovery it achieved (how long the restore took, how
/// old the restored data was) and fails when it misses a target.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifySpec {
    /// Run drills (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// When, as a cron expression in UTC in the form of `spec.backup.schedule` (default
    /// `30 3 * * 0`: weekly, Sunday 03:30).
    #[serde(default = "default_verify_schedule")]
    #[schemars(length(min = 1, max = 128), transform = formats::cron_schedule)]
    pub schedule: String,
    /// The recovery objectives every drill is held to (defaults: the infrastructure guide's
    /// database recovery time of 15 minutes and recovery point of 1 hour).
    #[serde(default)]
    pub targets: RecoveryTargets,
}

impl Default for VerifySpec {
    fn default() -> Self {
        Self { enabled: true, schedule: default_verify_schedule(), targets: RecoveryTargets::default() }
    }
}

/// The recovery objectives of the database. A drill that misses one fails, with the figure it
/// achieved and the target in its error, the `BackupVerified` condition, a Warning Event and the
/// operator's metrics.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryTargets {
    /// Recovery time objective: the longest a restore of the newest good backup may take, from
    /// the start of the drill until the restored data is checked (choosing and downloading the
    /// backup, verifying it against its manifest, restoring it, comparing the row counts). A
    /// duration such as `15m`, `1h` or `1h30m`: whole days, hours, minutes and seconds (`d`,
    /// `h`, `m`, `s`) in that order (default `15m`). A real restore also scales the API down and
    /// back up and takes a safety backup first, which a drill does not.
    #[serde(default = "default_recovery_time")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(formats::duration_rule()).message(formats::DURATION_MESSAGE))]
    pub recovery_time: String,
    /// Recovery point objective: the oldest the restored data may be. When the drill starts,
    /// the snapshot of the newest good backup must have been taken at most this long ago: a loss
    /// of the database at that moment would lose at most this much data. A duration in the form
    /// of `recoveryTime` (default `1h`). Keep it above the interval of `spec.backup.schedule`
    /// plus the time a backup takes.
    #[serde(default = "default_recovery_point")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(formats::duration_rule()).message(formats::DURATION_MESSAGE))]
    pub recovery_point: String,
}

impl Default for RecoveryTargets {
    fn default() -> Self {
        Self { recovery_time: default_recovery_time(), recovery_point: default_recovery_point() }
    }
}

/// The archive of the API pods' logs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogArchiveSpec {
    /// Archive the logs (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// When, as a cron expression in UTC in the form of `spec.backup.schedule` (default
    /// `0 4 * * 0`: weekly, Sunday 04:00).
    #[serde(default = "default_log_schedule")]
    #[schemars(length(min = 1, max = 128), transform = formats::cron_schedule)]
    pub schedule: String,
}

impl Default for LogArchiveSpec {
    fn default() -> Self {
        Self { enabled: true, schedule: default_log_schedule() }
    }
}

/// A restore of the database, carried out once per `requestId`: the request is claimed in the
/// restore ledger beside the backups, the API is scaled to zero and the scheduled backups
/// suspended, a safety backup is taken, the backup is downloaded and verified before the
/// database is touched, restored and checked, and the API scaled back. If anything fails after
/// the database was touched, the safety backup is restored. Progress is in `status.restore`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// Identifies this restore. A restore runs once per value: set a new value to restore
    /// again; re-applying the same value does nothing. Each value is recorded in the restore
    /// ledger in the bucket (`<prefix>/<namespace>/<name>/restores/<requestId>.restore.json`)
    /// before anything is scaled down, so a value already handled is not repeated even by a
    /// SecurityGuard deleted and re-created with the same spec: that restore ends `Skipped`,
    /// untouched, with a message saying when the value was handled.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"))]
    pub request_id: String,

    /// Which backup: `latest` (default), `before:<RFC 3339 time>` (the newest taken before
    /// it, e.g. `before:2026-11-25T09:00:00Z`: a date that exists, `T`, a time 00:00:00 to
    /// 23:59:59 with up to nine fractional digits, and `Z` or an offset such as `+02:00`), or a
    /// backup key as `backups list` shows it. With `spec.backup.pointInTime` and the managed
    /// PostgreSQL, `before:<time>` is a point-in-time restore: the database recovered to that
    /// second from a base backup and the archived WAL, refused before anything changes when the
    /// time is outside the recoverable window (`status.backup.pointInTime`). PostgreSQL is
    /// stopped meanwhile, and its data directory as it was is kept aside on the volume instead
    /// of a safety backup.
    #[serde(default = "default_source")]
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new(formats::restore_source_rule())
        .message("source must be latest, before:<RFC 3339 time that exists, such as 2026-11-25T09:00:00Z>, or a backup key ending in .pgdump"))]
    pub source: String,
}

/// Default key prefix of the backups (`spec.backup.s3.prefix`, and `--prefix` of the backup
/// commands).
pub const DEFAULT_PREFIX: &str = "securityguard";
/// Default region of the bucket (`spec.backup.s3.region`, and `--region` of the backup commands).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default days a backup is kept in S3 (`spec.backup.retention.s3Days`, and
/// `--retention-days-s3`).
pub const DEFAULT_S3_DAYS: u32 = 90;
/// Default days a backup is kept on the local volume (`spec.backup.retention.localDays`, and
/// `--retention-days-local`).
pub const DEFAULT_LOCAL_DAYS: u32 = 30;
/// Default number of newest good backups never deleted (`spec.backup.retention.keepLast`, and
/// `--keep-last`).
pub const DEFAULT_KEEP_LAST: u32 = 3;
/// Default recovery time target of the drills (`spec.backup.verify.targets.recoveryTime`): the
/// infrastructure guide's database recovery time objective.
pub const DEFAULT_RECOVERY_TIME: &str = "15m";
/// Default recovery point target of the drills (`spec.backup.verify.targets.recoveryPoint`): the
/// infrastructure guide's largest data loss.
pub const DEFAULT_RECOVERY_POINT: &str = "1h";
/// Default backup a restore starts from (`spec.restore.source`, and `--source` of `restore`).
pub const DEFAULT_SOURCE: &str = "latest";
/// Default interval between two base backups (`spec.backup.pointInTime.baseBackupInterval`, and
/// `--base-backup-interval` of `wal archive`).
pub const DEFAULT_BASE_BACKUP_INTERVAL: &str = "24h";
/// Default recovery point above which the WAL archive alerts
/// (`spec.backup.pointInTime.archiveLagAlert`).
pub const DEFAULT_ARCHIVE_LAG_ALERT: &str = "5m";
/// Key of the access key id in the credentials Secret (`spec.backup.s3.credentialsSecret`).
pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Key of the secret access key in the credentials Secret (`spec.backup.s3.credentialsSecret`).
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

fn default_schedule() -> String {
    "0 * * * *".to_owned()
}
fn default_verify_schedule() -> String {
    "30 3 * * 0".to_owned()
}
fn default_log_schedule() -> String {
    "0 4 * * 0".to_owned()
}
fn default_recovery_time() -> String {
    DEFAULT_RECOVERY_TIME.to_owned()
}
fn default_recovery_point() -> String {
    DEFAULT_RECOVERY_POINT.to_owned()
}
fn default_base_backup_interval() -> String {
    DEFAULT_BASE_BACKUP_INTERVAL.to_owned()
}
fn default_archive_lag_alert() -> String {
    DEFAULT_ARCHIVE_LAG_ALERT.to_owned()
}
fn default_prefix() -> String {
    DEFAULT_PREFIX.to_owned()
}
fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}
fn default_source() -> String {
    DEFAULT_SOURCE.to_owned()
}
fn default_s3_days() -> u32 {
    DEFAULT_S3_DAYS
}
fn default_local_days() -> u32 {
    DEFAULT_LOCAL_DAYS
}
fn default_keep_last() -> u32 {
    DEFAULT_KEEP_LAST
}
fn default_true() -> bool {
    true
}

/// What the backups did, from the Jobs' own reports.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// The newest backup that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful: Option<BackupRun>,
    /// The newest backup that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed: Option<BackupRun>,
    /// The newest restore drill, passed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verification: Option<BackupRun>,
    /// The newest drill that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<BackupRun>,
    /// The last `spec.backup.requestId` acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_id: Option<String>,
    /// With `spec.backup.pointInTime`: the recoverable window, as the newest backup Job found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<PointInTimeStatus>,
}

/// The window a point-in-time restore can reach, as a backup Job read it from the WAL archive.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PointInTimeStatus {
    /// The window.
    #[serde(flatten)]
    pub window: RecoverableWindow,
    /// The window in words, or why there is none (for an external PostgreSQL: that
    /// point-in-time recovery belongs to its provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the backup Job that reported the window finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
}

/// The recoverable window as the data path reports it: the `pointInTime` field of a backup
/// Job's summary and of `backups list --output json`, and in `status.backup.pointInTime`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoverableWindow {
    /// The earliest time a restore can recover to: the end of the oldest base backup kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_recoverable: Option<Time>,
    /// The latest time a restore can recover to: every change committed before it is archived
    /// without a gap since the base backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recoverable: Option<Time>,
    /// Base backups kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backups: Option<u32>,
    /// Every change committed before this time was archived, as of the archiver's last pass
    /// before the backup: the recovery point then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_through: Option<Time>,
    /// Why the window could not be read, or what is wrong with the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RecoverableWindow {
    /// `from <first> to <last> (<n> base backups)`, or what is missing.
    pub fn describe(&self) -> String {
        match (&self.first_recoverable, &self.last_recoverable) {
            (Some(first), Some(last)) => {
                let bases = self.base_backups.map(|n| format!(" ({n} base backups)")).unwrap_or_default();
                format!("from {} to {}{bases}", first.0, last.0)
            }
            _ => "empty: no base backup with its WAL archived yet".to_owned(),
        }
    }
}

/// What a point-in-time restore Job recovered: the `recovery` field of its summary (or
/// `pointInTime`, as the interface between the two sides first named it).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PointInTimeRecovery {
    /// The time recovered to.
    pub target: Time,
    /// Key of the base backup it started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    /// WAL segments replayed (`walFiles` in the summary: the files fetched from the archive).
    #[serde(default, alias = "walFiles", skip_serializing_if = "Option::is_none")]
    pub wal_segments: Option<u64>,
}

/// One finished backup or drill Job.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRun {
    /// The Job.
    pub job: String,
    /// When the Job finished.
    pub finished_at: Time,
    /// Key of the backup written (or checked, for a drill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Size of the dump in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Seconds the backup took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Drills: the recovery the drill achieved, against its targets (absent when it could not
    /// restore and check the backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<DrillRecovery>,
}

/// What a restore drill achieved, measured by the drill Job around each of its steps.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrillRecovery {
    /// When the drill started: the moment of the simulated loss of the database.
    pub started_at: Time,
    /// When the snapshot of the backup restored was taken (its manifest's `startedAt`).
    pub backup_taken_at: Time,
    /// Recovery time achieved, in seconds: from the start of the drill until the restored data
    /// was checked (the steps, and the moments between them).
    pub recovery_time_seconds: f64,
    /// The recovery time target the drill was held to, in seconds (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_time_target_seconds: Option<f64>,
    /// Recovery point achieved, in seconds: how old the restored data was when the drill
    /// started (`startedAt` minus `backupTakenAt`), the data a loss at that moment would lose.
    pub recovery_point_seconds: f64,
    /// The recovery point target the drill was held to, in seconds (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point_target_seconds: Option<f64>,
    /// Where the recovery time went.
    pub steps: RecoverySteps,
    /// The targets the drill missed; a drill that missed one failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<RecoveryTarget>,
}

/// The recovery time of a drill, step by step, in seconds.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoverySteps {
    /// Downloading the dump (its SHA-256 is computed as it streams).
    pub download_seconds: f64,
    /// Choosing and verifying the backup: listing the backups and reading their manifests to
    /// pick the newest good one, then comparing the download's size and SHA-256 with its
    /// manifest.
    pub verify_seconds: f64,
    /// Restoring: creating the scratch database and `pg_restore` in one transaction.
    pub restore_seconds: f64,
    /// Checking the restored data: the row count of every table against the manifest.
    pub checks_seconds: f64,
}

/// A recovery objective of `spec.backup.verify.targets`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecoveryTarget {
    /// `recoveryTime`: how long the restore took.
    RecoveryTime,
    /// `recoveryPoint`: how old the restored data was.
    RecoveryPoint,
}

impl RecoveryTarget {
    /// Name in messages: `recovery time`, `recovery point`.
    pub fn as_words(self) -> &'static str {
        match self {
            Self::RecoveryTime => "recovery time",
            Self::RecoveryPoint => "recovery point",
        }
    }

    /// The Event and condition reason of a drill that missed this target.
    pub fn reason(self) -> &'static str {
        match self {
            Self::RecoveryTime => "RecoveryTimeOverTarget",
            Self::RecoveryPoint => "RecoveryPointOverTarget",
        }
    }
}

impl DrillRecovery {
    /// The figure achieved and the target of `target`, in seconds.
    pub fn figures(&self, target: RecoveryTarget) -> (f64, Option<f64>) {
        match target {
            RecoveryTarget::RecoveryTime => (self.recovery_time_seconds, self.recovery_time_target_seconds),
            RecoveryTarget::RecoveryPoint => (self.recovery_point_seconds, self.recovery_point_target_seconds),
        }
    }

    /// The targets whose figure is above the target (the judgement the drill makes).
    pub fn over_targets(&self) -> Vec<RecoveryTarget> {
        [RecoveryTarget::RecoveryTime, RecoveryTarget::RecoveryPoint]
            .into_iter()
            .filter(|t| matches!(self.figures(*t), (achieved, Some(target)) if achieved > target))
            .collect()
    }

    /// `download 3.1s, verify 0.4s, restore 7.5s, checks 1.3s`.
    pub fn steps_text(&self) -> String {
        let s = &self.steps;
        format!(
            "download {}, verify {}, restore {}, checks {}",
            human(s.download_seconds),
            human(s.verify_seconds),
            human(s.restore_seconds),
            human(s.checks_seconds)
        )
    }

    /// Why the drill missed `target`, naming the figure, the target and where to look: the
    /// steps for the recovery time, the backup `key` restored for the recovery point.
    pub fn shortfall(&self, target: RecoveryTarget, key: &str) -> String {
        let (achieved, limit) = self.figures(target);
        let limit = limit.map(human).unwrap_or_else(|| "none".to_owned());
        let what = target.as_words();
        match target {
            RecoveryTarget::RecoveryTime => {
                format!("{what} {} exceeds the target {limit}: {}", human(achieved), self.steps_text())
            }
            RecoveryTarget::RecoveryPoint => format!(
                "{what} {} exceeds the target {limit}: the newest good backup is from {} ({key})",
                human(achieved),
                self.backup_taken_at.0
            ),
        }
    }

    /// The figures in one line: `recovery time 12.3s (target 15m: download 3.1s, ...), recovery
    /// point 30m4s (target 1h, backup taken at ...)`.
    pub fn describe(&self) -> String {
        let target = |t: Option<f64>| t.map(|t| format!("target {}", human(t))).unwrap_or_else(|| "no target".into());
        format!(
            "recovery time {} ({}: {}), recovery point {} ({}, backup taken at {})",
            human(self.recovery_time_seconds),
            target(self.recovery_time_target_seconds),
            self.steps_text(),
            human(self.recovery_point_seconds),
            target(self.recovery_point_target_seconds),
            self.backup_taken_at.0
        )
    }
}

/// Where a restore stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePhase {
    /// Seen; the replicas and autoscaler bounds are recorded.
    Pending,
    /// Claiming the `requestId` in the restore ledger beside the backups; nothing is scaled
    /// down until the claim is granted.
    Claiming,
    /// The API is scaled to zero and the scheduled backups suspended; waiting for the API pods
    /// to be gone.
    ScalingDown,
    /// Backing up the database as it is, to undo the restore if it fails.
    SafetyBackup,
    /// The restore Job runs: download, verify, restore, check.
    Restoring,
    /// The restore failed after touching the database: restoring the safety backup.
    RollingBack,
    /// Scaling the API back to the recorded size and resuming the backups.
    ScalingUp,
    /// Done: the database holds the backup.
    Completed,
    /// Not done: see the message. The database is as before unless the message says otherwise.
    Failed,
    /// Not done, on purpose: the restore ledger shows this `requestId` handled already (by an
    /// earlier SecurityGuard of this name, re-created from the same spec). Nothing was scaled
    /// down or restored; the message says when it was handled. Set a new `requestId` to restore
    /// again.
    Skipped,
}

impl RestorePhase {
    /// Every phase, in order.
    pub const ALL: [RestorePhase; 10] = [
        Self::Pending,
        Self::Claiming,
        Self::ScalingDown,
        Self::SafetyBackup,
        Self::Restoring,
        Self::RollingBack,
        Self::ScalingUp,
        Self::Completed,
        Self::Failed,
        Self::Skipped,
    ];

    /// Name as in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Claiming => "Claiming",
            Self::ScalingDown => "ScalingDown",
            Self::SafetyBackup => "SafetyBackup",
            Self::Restoring => "Restoring",
            Self::RollingBack => "RollingBack",
            Self::ScalingUp => "ScalingUp",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
        }
    }

    /// Completed, Failed or Skipped.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Skipped)
    }
}

/// The restore in progress, or the last one.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// The `spec.restore.requestId` this is about.
    pub request_id: String,
    /// The source asked for.
    pub source: String,
    /// Where it stands.
    pub phase: RestorePhase,
    /// What is happening or what went wrong.
    pub message: String,
    /// When the restore started.
    pub started_at: Time,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// API replicas before the restore, restored afterwards.
    pub recorded_replicas: i32,
    /// Autoscaler bounds before the restore (absent: autoscaling was off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_autoscaling: Option<RecordedAutoscaling>,
    /// Key of the safety backup taken before the database was touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_backup_key: Option<String>,
    /// Key of the backup restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_key: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The outcome to report once the API is scaled back (while `ScalingUp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RestorePhase>,
    /// A point-in-time restore: the time the database is recovered to (absent: a restore of a
    /// dump). Decided when the restore starts, from `spec.backup.pointInTime` and `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<Time>,
}

/// Autoscaler bounds recorded before a restore.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedAutoscaling {
    /// Minimum replicas.
    pub min_replicas: i32,
    /// Maximum replicas.
    pub max_replicas: i32,
}
