//! `securityguard-operator archive-logs`: the logs of the API pods, read through the API
//! server's `pods/log` subresource (what `kubectl logs` shows, with timestamps), gzip-compressed
//! on the fly and streamed into the bucket in constant memory:
//!
//! - `<prefix>/<guard>/logs/<UTC date>/<pod>-<container>.log.gz`, one per container;
//! - `<prefix>/<guard>/logs/<UTC date>/index.json`, written LAST: what was archived (size,
//!   SHA-256 of each object), over which period, and what was skipped.
//!
//! Then the archives older than the S3 retention period are deleted, index first.
//!
//! With an encryption key file, each `.log.gz` is sealed after compression
//! ([`super::envelope`]; the name stays, the content starts with the envelope's header): the
//! index records the algorithm and the key's fingerprint, and the size and SHA-256 of the sealed
//! objects. `securityguard-operator backups decrypt` opens them.
//!
//! What it needs from the API server, in the SecurityGuard's namespace: `list` on `pods` and
//! `get` on `pods/log`.

use std::path::PathBuf;
use std::time::Duration;

use async_compression::tokio::bufread::GzipEncoder;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde::{Deserialize, Serialize};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::config::GuardRef;
use super::envelope::{self, Keyring, Sealer};
use super::manifest;
use super::store::{self, S3Options, S3Store, Store};
use super::upload::{self, MultipartUpload, Sinks, StreamError};

/// Folder of the log archives under a guard's folder.
pub const LOGS_FOLDER: &str = "logs/";

/// Name of the index written last in each archive.
pub const INDEX_NAME: &str = "index.json";

/// Version of the index format.
pub const INDEX_VERSION: u32 = 1;

/// Size of the multipart parts: logs compress well, few archives need more than one part.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// What `archive-logs` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The bucket receiving the archive, and how to reach it.
    pub s3: S3Options,
    /// Key prefix of the backups.
    pub prefix: String,
    /// The folder of the SecurityGuard's backups under the prefix (default: `<namespace>/<name>`
    /// of `guard_ref`).
    pub guard: Option<String>,
    /// The SecurityGuard whose API pods' logs are archived (`None`: not known, nothing is done).
    pub guard_ref: Option<GuardRef>,
    /// How far back to read the logs.
    pub since: Duration,
    /// Archives older than this many days are deleted after a complete archive.
    pub retention_days_s3: u32,
    /// Encrypt the archived logs with the first key of this key file.
    pub encryption_key_file: Option<PathBuf>,
}

/// The archive could not be made, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SecurityGuard is not known.
    #[error(
        "archive-logs needs the SecurityGuard: --guard-namespace and --guard-name \
         (SG_GUARD_NAMESPACE, SG_GUARD_NAME), or --guard <namespace>/<name>"
    )]
    NoGuard,
    /// No Kubernetes client configuration (no kubeconfig, not in a pod).
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    /// The encryption key file cannot be used (nothing was archived).
    #[error("nothing was archived: {0}")]
    Key(#[source] envelope::KeyError),
    /// Listing the API pods failed.
    #[error("cannot list the pods ({selector}) in namespace {namespace}: {source}")]
    ListPods {
        /// The namespace.
        namespace: String,
        /// The label selector.
        selector: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// Some containers' logs could not be archived; the others were.
    #[error("{failed} of {total} container logs could not be archived: {}", .errors.join("; "))]
    Containers {
        /// How many failed.
        failed: usize,
        /// How many were tried.
        total: usize,
        /// Each failure, naming the pod and container.
        errors: Vec<String>,
    },
    /// Writing the index failed: the archive of this run is not listed as complete.
    #[error("cannot write the index {key}: {source}")]
    Index {
        /// Its key.
        key: String,
        /// What failed.
        #[source]
        source: store::Error,
    },
    /// The archive is complete, but deleting old archives failed.
    #[error("logs archived in {index}, but retention failed: {source}")]
    Retention {
        /// The new index.
        index: String,
        /// What failed.
        #[source]
        source: store::Error,
    },
}

/// One container's failure.
#[derive(Debug, thiserror::Error)]
enum ContainerError {
    #[error("reading the log of {pod}/{container} failed: {source}")]
    Request { pod: String, container: String, source: kube::Error },
    #[error("reading the log of {pod}/{container} failed: {source}")]
    Read { pod: String, container: String, source: std::io::Error },
    #[error("storing the log of {pod}/{container} failed: {source}")]
    Store { pod: String, container: String, source: store::Error },
    #[error("encrypting the log of {pod}/{container} failed: {source}")]
    Seal { pod: String, container: String, source: envelope::SealError },
}

/// The index of one archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// [`INDEX_VERSION`].
    pub format_version: u32,
    /// `<namespace>/<name>` of the SecurityGuard.
    pub guard: String,
    /// Start of the period archived (the logs' own retention on the nodes may cut it shorter).
    pub since: Timestamp,
    /// When the logs were read.
    pub until: Timestamp,
    /// The archived logs.
    pub objects: Vec<ArchivedLog>,
    /// Containers not archived, and why (a pod not started yet, deleted meanwhile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Containers whose log could not be archived, with the error: the run failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Skipped>,
    /// How the archived logs are encrypted; absent: they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ArchiveEncryption>,
    /// Version of the operator that wrote it.
    pub operator_version: String,
}

/// The client-side encryption of an archive's logs (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveEncryption {
    /// The envelope's algorithm ([`envelope::ALGORITHM`]).
    pub algorithm: String,
    /// Fingerprint of the key that sealed them: `sha256:` and 16 hex digits.
    pub key_fingerprint: String,
}

/// One archived container log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedLog {
    /// Key of the `.log.gz` object.
    pub key: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Size in bytes of the object as stored (compressed, and sealed when encrypted).
    pub size: u64,
    /// SHA-256 of the object as stored, lowercase hex.
    pub sha256: String,
}

/// A container whose log was not archived, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Why.
    pub reason: String,
}

/// A completed archive.
#[derive(Debug, Clone)]
pub struct Report {
    /// Key of its index.
    pub index_key: String,
    /// Its index.
    pub index: Index,
    /// Archives deleted by retention.
    pub deleted: usize,
}

/// Label selector of the API pods of the SecurityGuard `name`.
pub fn api_pod_selector(name: &str) -> String {
    format!("app.kubernetes.io/name=securityguard,app.kubernetes.io/instance={name},app.kubernetes.io/component=api")
}

/// The folder of the archive of `date`: `<prefix>/<guard>/logs/<date>/`.
pub fn archive_folder(prefix: &str, guard: &str, date: Date) -> String {
    format!("{}{LOGS_FOLDER}{date}/", manifest::folder(prefix, Some(guard)))
}

/// Key of one container's log in `folder`. Pod and container names are DNS labels: no `/`.
pub fn log_key(folder: &str, pod: &str, container: &str) -> String {
    format!("{folder}{pod}-{container}.log.gz")
}

/// Archives the logs as `options` say.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let guard = options.guard_ref.clone().ok_or(Error::NoGuard)?;
    let keyring = match &options.encryption_key_file {
        Some(path) => Some(Keyring::read(path).await.map_err(Error::Key)?),
        None => None,
    };
    let sealing = keyring.as_ref().map(Keyring::current);
    // The folder of the backups: SG_GUARD when given (the Jobs set it), else `<namespace>/<name>`.
    let folder_guard = options.guard.clone().unwrap_or_else(|| guard.to_string());
    let client = kube::Client::try_default().await.map_err(Error::Client)?;
    let s3 = S3Store::connect(&options.s3).await;
    let until = Timestamp::now();
    let since_seconds = i64::try_from(options.since.as_secs()).unwrap_or(i64::MAX);
    let since = until.checked_sub(SignedDuration::from_secs(since_seconds)).unwrap_or(Timestamp::MIN);
    let date = until.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let folder = archive_folder(&options.prefix, &folder_guard, date);

    let pods: Api<Pod> = Api::namespaced(client, &guard.namespace);
    let selector = api_pod_selector(&guard.name);
    let mut listed = pods.list(&ListParams::default().labels(&selector)).await.map_err(|source| Error::ListPods {
        namespace: guard.namespace.clone(),
        selector: selector.clone(),
        source,
    })?;
    listed.items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    tracing::info!(%guard, pods = listed.items.len(), %folder, %since, "archiving the API pods' logs");

    let mut index = Index {
        format_version: INDEX_VERSION,
        guard: guard.to_string(),
        since,
        until,
        objects: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
        encryption: sealing.map(|key| ArchiveEncryption {
            algorithm: envelope::ALGORITHM.to_owned(),
            key_fingerprint: key.fingerprint().to_string(),
        }),
        operator_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let total = archive_pods(&pods, &listed.items, (&s3, sealing), &folder, since_seconds, &mut index).await;

    // LAST: the index lists what is complete, and what failed.
    let index_key = format!("{folder}{INDEX_NAME}");
    let store = Store::S3(s3);
    let json = serde_json::to_vec_pretty(&index).unwrap_or_default();
    store
        .put_small(&index_key, json, "application/json")
        .await
        .map_err(|source| Error::Index { key: index_key.clone(), source })?;
    if !index.failed.is_empty() {
        // Old archives stay while this one is incomplete.
        let errors = index.failed.iter().map(|f| f.reason.clone()).collect();
        return Err(Error::Containers { failed: index.failed.len(), total, errors });
    }

    let logs_root = format!("{}{LOGS_FOLDER}", manifest::folder(&options.prefix, Some(&folder_guard)));
    let deleted = apply_retention(&store, &logs_root, date, options.retention_days_s3)
        .await
        .map_err(|source| Error::Retention { index: index_key.clone(), source })?;
    tracing::info!(index = %index_key, archived = index.objects.len(), skipped = index.skipped.len(), deleted, "logs archived");
    Ok(Report { index_key, index, deleted })
}

/// Archives the log of every container of `pods` into `folder` of `s3` (sealed with `sealing`
/// when given), recording each in `index` as archived, skipped or failed. Returns how many
/// containers there were.
async fn archive_pods(
    api: &Api<Pod>,
    pods: &[Pod],
    (s3, sealing): (&S3Store, Option<&envelope::Key>),
    folder: &str,
    since_seconds: i64,
    index: &mut Index,
) -> usize {
    let mut total = 0;
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let containers: Vec<String> = pod.spec.iter().flat_map(|s| &s.containers).map(|c| c.name.clone()).collect();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
        for container in containers {
            total += 1;
            if phase == "Pending" {
                index.skipped.push(Skipped { pod: name.clone(), container, reason: "pod pending".into() });
                continue;
            }
            match archive_one(api, (s3, sealing), folder, &name, &container, since_seconds).await {
                Ok(archived) => {
                    tracing::info!(pod = %name, container = %archived.container, key = %archived.key, size = archived.size, "log archived");
                    index.objects.push(archived);
                }
                Err(ContainerError::Request { source: kube::Error::Api(status), .. }) if status.is_not_found() => {
                    index.skipped.push(Skipped { pod: name.clone(), container, reason: "pod deleted".into() });
                }
                Err(error) => {
                    tracing::error!(%error, "log not archived");
                    index.failed.push(Skipped { pod: name.clone(), container, reason: error.to_string() });
                }
            }
        }
    }
    total
}

/// Streams one container's log, gzip-compressed (then sealed with `sealing` when given), into
/// `<folder><pod>-<container>.log.gz`.
async fn archive_one(
    pods: &Api<Pod>,
    (s3, sealing): (&S3Store, Option<&envelope::Key>),
    folder: &str,
    pod: &str,
    container: &str,
    since_seconds: i64,
) -> Result<ArchivedLog, ContainerError> {
    let params = LogParams {
        container: Some(container.to_owned()),
        since_seconds: Some(since_seconds),
        timestamps: true,
        ..LogParams::default()
    };
    let (p, c) = (pod.to_owned(), container.to_owned());
    let reader = pods.log_stream(pod, &params).await.map_err(|source| ContainerError::Request {
        pod: p.clone(),
        container: c.clone(),
        source,
    })?;
    let key = log_key(folder, pod, container);
    let store_error = |source| ContainerError::Store { pod: p.clone(), container: c.clone(), source };
    let upload = MultipartUpload::start(s3, &key).await.map_err(store_error)?;
    let mut sinks = Sinks { s3: upload, local: None };
    let gzip = GzipEncoder::new(tokio::io::BufReader::new(reader.compat()));
    let streamed = match upload::stream(gzip, PART_SIZE, &mut sinks, sealing.map(Sealer::new)).await {
        Ok(streamed) => streamed,
        Err(error) => {
            sinks.s3.abort().await;
            return Err(match error {
                StreamError::Read(source) => ContainerError::Read { pod: p, container: c, source },
                StreamError::Store(source) => store_error(source),
                StreamError::Seal(source) => ContainerError::Seal { pod: p, container: c, source },
            });
        }
    };
    if let Err(error) = sinks.s3.finish().await {
        sinks.s3.abort().await;
        return Err(store_error(error));
    }
    Ok(ArchivedLog { key, pod: p, container: c, size: streamed.size, sha256: streamed.sha256 })
}

/// Deletes the archives under `logs_root` whose date is more than `max_age_days` before
/// `today`: the index first, so that a half-deleted archive is never listed as complete.
/// Returns how many archives were deleted.
async fn apply_retention(
    store: &Store,
    logs_root: &str,
    today: Date,
    max_age_days: u32,
) -> Result<usize, store::Error> {
    let objects = store.list(logs_root).await?;
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let doomed = expired_archives(&keys, logs_root, today, max_age_days);
    for (date, mut members) in doomed.iter().cloned() {
        members.sort_by_key(|k| !k.ends_with(INDEX_NAME));
        tracing::info!(%date, objects = members.len(), "retention: deleting log archive");
        for key in members {
            store.delete(&key).await?;
        }
    }
    Ok(doomed.len())
}

/// The archives (date and keys) among `keys` older than `max_age_days` before `today` (pure).
pub fn expired_archives(keys: &[&str], logs_root: &str, today: Date, max_age_days: u32) -> Vec<(Date, Vec<String>)> {
    let Ok(cutoff) = today.checked_sub(jiff::Span::new().days(i64::from(max_age_days))) else { return Vec::new() };
    let mut by_date: std::collections::BTreeMap<Date, Vec<String>> = std::collections::BTreeMap::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(logs_root) else { continue };
        let Some((date, _)) = rest.split_once('/') else { continue };
        let Ok(date) = date.parse::<Date>() else { continue };
        if date < cutoff {
            by_date.entry(date).or_default().push((*key).to_owned());
        }
    }
    by_date.into_iter().collect()
}

/// Parses `7d`, `36h`, `90m`, `600s` (or plain seconds) into a duration of at least 1 second.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 7d, 36h, 90m or 600s"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be d, h, m or s")),
    };
    if seconds == 0 {
        return Err("the period must be at least 1 second".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_periods() {
        assert_eq!(parse_since("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_since("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_since("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_since("600"), Ok(Duration::from_secs(600)));
        assert!(parse_since("0d").is_err());
        assert!(parse_since("1w").is_err());
        assert!(parse_since("d").is_err());
    }

    #[test]
    fn keys() {
        let date: Date = "2026-11-25".parse().expect("date");
        let folder = archive_folder("backups", "prod/sg", date);
        assert_eq!(folder, "backups/prod/sg/logs/2026-11-25/");
        assert_eq!(
            log_key(&folder, "sg-api-7d9f-x2", "api"),
            "backups/prod/sg/logs/2026-11-25/sg-api-7d9f-x2-api.log.gz"
        );
        assert_eq!(
            api_pod_selector("sg"),
            "app.kubernetes.io/name=securityguard,app.kubernetes.io/instance=sg,app.kubernetes.io/component=api"
        );
    }

    #[test]
    fn expires_whole_archives_older_than_the_period() {
        let root = "b/prod/sg/logs/";
        let keys = [
            "b/prod/sg/logs/2026-08-26/index.json",
            "b/prod/sg/logs/2026-08-26/p-api.log.gz",
            "b/prod/sg/logs/2026-08-27/p-api.log.gz",
            "b/prod/sg/logs/2026-11-25/p-api.log.gz",
            "b/prod/sg/logs/not-a-date/x",
            "b/prod/sg/logs/2026-01-01",
        ];
        let today: Date = "2026-11-25".parse().expect("date");
        let doomed = expired_archives(&keys, root, today, 90);
        // 2026-08-27 is exactly 90 days before: kept.
        assert_eq!(
            doomed,
            vec![(
                "2026-08-26".parse().expect("date"),
                vec![
                    "b/prod/sg/logs/2026-08-26/index.json".to_owned(),
                    "b/prod/sg/logs/2026-08-26/p-api.log.gz".to_owned()
                ]
            )]
        );
        assert!(expired_archives(&keys, root, today, 1000).is_empty());
    }
}
