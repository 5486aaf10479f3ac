//! `kubectl securityguard`: the kubectl plugin for on-call (binary `kubectl-securityguard` on
//! the PATH).
//!
//! - `kubectl securityguard backups NAME [-n NS]` lists the SecurityGuard's backups, as
//!   `securityguard-operator backups list` does, from the bucket of its `spec.backup.s3` with the
//!   credentials of the Secret it names, then the newest drill and, with point-in-time
//!   recovery, the recoverable window from the status. Needs `get` on securityguards and on that
//!   Secret.
//! - `kubectl securityguard restore NAME --source latest|<key>|before:<time> [-n NS]` asks the
//!   operator for a restore: a merge patch of `spec.restore` with a new `requestId`. Needs `get`
//!   and `patch` on securityguards.
//! - `kubectl securityguard report NAME [-n NS] [-o FILE]` writes a support bundle: see
//!   [`crate::report`], which lists the permissions it needs.
//!
//! The SecurityGuard is read as a dynamic object (JSON pointers into `spec.backup.s3`), so the
//! plugin works with any CRD version that has those fields.
//!
//! Its command line is [`crate::cli::plugin`], which calls [`backups`], [`restore`] and
//! [`crate::report::run`].

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use rand::Rng;
use serde_json::{Value, json};

use crate::backup::catalog::{self, Source};
use crate::backup::list::{self, Format};
use crate::backup::manifest;
use crate::backup::store::{self, S3Options, S3Store, StaticCredentials, Store};
use crate::crd::backup::{ACCESS_KEY_ID, DEFAULT_PREFIX, DEFAULT_REGION, SECRET_ACCESS_KEY};
use crate::crd::duration::human;
use crate::crd::{BackupRun, PointInTimeStatus, RecoveryTarget};

/// Which SecurityGuard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Name of the SecurityGuard.
    pub name: String,
    /// Its namespace (default: the kubeconfig context's).
    pub namespace: Option<String>,
}

/// A restore to ask the operator for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    /// The SecurityGuard.
    pub target: Target,
    /// Which backup.
    pub source: Source,
    /// Identifier of this request (default: a new random one).
    pub request_id: Option<String>,
}

/// A failed plugin command, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kubeconfig or in-cluster configuration.
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    /// Reading the SecurityGuard failed.
    #[error("cannot get SecurityGuard {namespace}/{name}: {source}")]
    Guard {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The SecurityGuard has no usable `spec.backup.s3`.
    #[error("SecurityGuard {namespace}/{name} has no backups configured: {reason}")]
    NotConfigured {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What is missing.
        reason: String,
    },
    /// Reading the credentials Secret failed.
    #[error("cannot get Secret {namespace}/{secret} (spec.backup.s3.credentialsSecret): {source}")]
    Secret {
        /// Namespace.
        namespace: String,
        /// Its name.
        secret: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The credentials Secret lacks a key.
    #[error("Secret {namespace}/{secret} has no key {key} (or it is not UTF-8)")]
    SecretKey {
        /// Namespace.
        namespace: String,
        /// Its name.
        secret: String,
        /// The missing key.
        key: &'static str,
    },
    /// Listing the bucket failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Patching the SecurityGuard failed.
    #[error("cannot patch spec.restore of SecurityGuard {namespace}/{name}: {source}")]
    Patch {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
}

/// Where a SecurityGuard's backups are, from its `spec.backup.s3` (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupLocation {
    /// Bucket and how to reach it.
    pub s3: S3Options,
    /// Key prefix.
    pub prefix: String,
    /// Name of the credentials Secret, if any (else the SDK's default chain).
    pub credentials_secret: Option<String>,
}

/// Reads `spec.backup.s3` of a SecurityGuard object (pure).
pub fn backup_location(guard: &Value) -> Result<BackupLocation, String> {
    let s3 = guard.pointer("/spec/backup/s3").ok_or("spec.backup.s3 is not set")?;
    let text = |field: &str| s3.get(field).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
    let bucket = text("bucket").ok_or("spec.backup.s3.bucket is not set")?;
    Ok(BackupLocation {
        s3: S3Options {
            bucket,
            endpoint: text("endpoint"),
            region: text("region").unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            path_style: s3.get("pathStyle").and_then(Value::as_bool).unwrap_or(false),
            // The plugin only reads: server-side encryption is S3's business on reads.
            server_side_encryption: None,
        },
        prefix: text("prefix").unwrap_or_else(|| DEFAULT_PREFIX.to_owned()),
        credentials_secret: text("credentialsSecret"),
    })
}

/// The merge patch asking for a restore (pure).
pub fn restore_patch(request_id: &str, source: &Source) -> Value {
    json!({"spec": {"restore": {"requestId": request_id, "source": source.to_string()}}})
}

/// A new request identifier: a random UUID (version 4).
pub fn new_request_id() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn guards_api(client: Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(crate::crd::GROUP, "v1alpha1", "SecurityGuard");
    Api::namespaced_with(client, namespace, &ApiResource::from_gvk_with_plural(&gvk, "securityguards"))
}

/// A client from the kubeconfig (or the pod's ServiceAccount).
pub async fn connect() -> Result<Client, Error> {
    Client::try_default().await.map_err(Error::Client)
}

/// Reads the SecurityGuard `target` as a dynamic object: its namespace (the kubeconfig
/// context's when not given) and the object.
pub async fn read_guard(client: &Client, target: &Target) -> Result<(String, Value), Error> {
    let namespace = target.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let guard = guards_api(client.clone(), &namespace).get(&target.name).await.map_err(|source| Error::Guard {
        namespace: namespace.clone(),
        name: target.name.clone(),
        source,
    })?;
    let value = serde_json::to_value(&guard).unwrap_or(Value::Null);
    Ok((namespace, value))
}

/// `kubectl securityguard backups`: the listing of the SecurityGuard's backups in `format`; as
/// a table, followed by the newest restore drill's figures from the status.
pub async fn backups(target: &Target, format: Format) -> Result<String, Error> {
    let client = connect().await?;
    let (namespace, guard) = read_guard(&client, target).await?;
    let mut text = listing(&client, &namespace, &target.name, &guard, format).await?;
    if format == Format::Table {
        for part in [newest_drill(&guard), recoverable_window(&guard)].into_iter().flatten() {
            text.push('\n');
            text.push_str(&part);
        }
    }
    Ok(text)
}

/// The recoverable window of `status.backup.pointInTime`, for people (pure): from when to when
/// a point-in-time restore can recover, as of which backup, or why there is none.
pub fn recoverable_window(guard: &Value) -> Option<String> {
    let status: PointInTimeStatus =
        serde_json::from_value(guard.pointer("/status/backup/pointInTime")?.clone()).ok()?;
    let window = &status.window;
    let mut text = match (&window.first_recoverable, &window.last_recoverable) {
        (Some(first), Some(last)) => {
            let bases = window.base_backups.map(|n| format!(", {n} base backups")).unwrap_or_default();
            let seen =
                status.observed_at.as_ref().map(|t| format!(" (as of the backup at {})", t.0)).unwrap_or_default();
            format!("Point-in-time recovery: from {} to {}{bases}{seen}\n", first.0, last.0)
        }
        _ => format!("Point-in-time recovery: {}\n", status.message.as_deref().unwrap_or("no window known")),
    };
    if let Some(through) = &window.archived_through {
        text.push_str(&format!("  WAL archived through {}\n", through.0));
    }
    if let Some(error) = &window.error {
        text.push_str(&format!("  error: {error}\n"));
    }
    Some(text)
}

/// The newest restore drill of `status.backup.lastVerification`, for people (pure): when, which
/// Job and backup, passed or why not, and the recovery it achieved against its targets.
pub fn newest_drill(guard: &Value) -> Option<String> {
    let run: BackupRun = serde_json::from_value(guard.pointer("/status/backup/lastVerification")?.clone()).ok()?;
    let outcome = if run.error.is_none() { "passed" } else { "FAILED" };
    let mut text = format!(
        "Newest restore drill: {} at {} (Job {}), backup {}\n",
        outcome,
        run.finished_at.0,
        run.job,
        run.key.as_deref().unwrap_or("-")
    );
    if let Some(recovery) = &run.recovery {
        let target = |t: Option<f64>| t.map(|t| format!("target {}", human(t))).unwrap_or_else(|| "no target".into());
        let over = |t: RecoveryTarget| if recovery.missed.contains(&t) { ", OVER TARGET" } else { "" };
        text.push_str(&format!(
            "  recovery time   {} ({}{}): {}\n",
            human(recovery.recovery_time_seconds),
            target(recovery.recovery_time_target_seconds),
            over(RecoveryTarget::RecoveryTime),
            recovery.steps_text()
        ));
        text.push_str(&format!(
            "  recovery point  {} ({}{}): backup taken at {}, drill started at {}\n",
            human(recovery.recovery_point_seconds),
            target(recovery.recovery_point_target_seconds),
            over(RecoveryTarget::RecoveryPoint),
            recovery.backup_taken_at.0,
            recovery.started_at.0
        ));
    }
    if let Some(error) = &run.error {
        text.push_str(&format!("  error: {error}\n"));
    }
    Some(text)
}

/// The listing of the backups of the SecurityGuard `guard` (`namespace`/`name`, as read) in
/// `format`: what `kubectl securityguard backups` prints, and the support bundle holds.
pub async fn listing(
    client: &Client,
    namespace: &str,
    name: &str,
    guard: &Value,
    format: Format,
) -> Result<String, Error> {
    let location = backup_location(guard).map_err(|reason| Error::NotConfigured {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        reason,
    })?;
    let credentials = match &location.credentials_secret {
        Some(secret) => Some(read_credentials(client, namespace, secret).await?),
        None => None,
    };
    let s3 = S3Store {
        client: store::s3_client_with(&location.s3, credentials).await,
        bucket: location.s3.bucket.clone(),
        server_side_encryption: None,
    };
    let folder = manifest::folder(&location.prefix, Some(&format!("{namespace}/{name}")));
    let backups = catalog::load(&Store::S3(s3), &folder).await?;
    Ok(list::render(&backups, format))
}

async fn read_credentials(client: &Client, namespace: &str, secret: &str) -> Result<StaticCredentials, Error> {
    let found = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(secret)
        .await
        .map_err(|source| Error::Secret { namespace: namespace.to_owned(), secret: secret.to_owned(), source })?;
    let key = |key: &'static str| {
        found
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::SecretKey { namespace: namespace.to_owned(), secret: secret.to_owned(), key })
    };
    Ok(StaticCredentials { access_key_id: key(ACCESS_KEY_ID)?, secret_access_key: key(SECRET_ACCESS_KEY)? })
}

/// `kubectl securityguard restore`: asks the operator for the restore; returns how to follow it.
pub async fn restore(request: &RestoreRequest) -> Result<String, Error> {
    let client = connect().await?;
    let (namespace, guard) = read_guard(&client, &request.target).await?;
    let name = &request.target.name;
    // A restore needs backups: say so here rather than in the SecurityGuard's status.
    backup_location(&guard).map_err(|reason| Error::NotConfigured {
        namespace: namespace.clone(),
        name: name.clone(),
        reason,
    })?;
    let request_id = request.request_id.clone().unwrap_or_else(new_request_id);
    let patch = restore_patch(&request_id, &request.source);
    guards_api(client, &namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Patch { namespace: namespace.clone(), name: name.clone(), source })?;
    Ok(format!(
        "restore {request_id} of SecurityGuard {namespace}/{name} from {source} requested.\n\
         {how}\n\
         Follow it (phase in status.restore.phase):\n  \
         kubectl get securityguard {name} -n {namespace} -w -o custom-columns=NAME:.metadata.name,RESTORE:.status.restore.phase\n\
         Wait for the end:\n  \
         kubectl wait securityguard/{name} -n {namespace} --for=jsonpath='{{.status.restore.phase}}'=Completed --timeout=1h\n",
        source = request.source,
        how = how_it_restores(&guard, &request.source),
    ))
}

/// What the operator will do with a restore from `source` of the SecurityGuard `guard` (pure):
/// `before:<time>` with point-in-time recovery and the managed PostgreSQL recovers to that time.
pub fn how_it_restores(guard: &Value, source: &Source) -> &'static str {
    let point_in_time = guard.pointer("/spec/backup/pointInTime").is_some_and(|p| !p.is_null())
        && guard.pointer("/spec/postgres/external").is_none_or(Value::is_null)
        && source.to_string().starts_with("before:");
    if point_in_time {
        "The operator checks the time against the recoverable window, scales the API and PostgreSQL to 0, \
         recovers PostgreSQL's data directory to that time (the old one kept aside for a rollback), and scales both back."
    } else {
        "The operator scales the API to 0, takes a safety backup, restores, and scales back."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_backup_location_with_defaults() {
        let guard = json!({"spec": {"backup": {"s3": {
            "bucket": "b", "endpoint": "http://s3:9000", "pathStyle": true, "credentialsSecret": "creds"}}}});
        assert_eq!(
            backup_location(&guard),
            Ok(BackupLocation {
                s3: S3Options {
                    bucket: "b".into(),
                    endpoint: Some("http://s3:9000".into()),
                    region: "us-east-1".into(),
                    path_style: true,
                    server_side_encryption: None,
                },
                prefix: "securityguard".into(),
                credentials_secret: Some("creds".into()),
            })
        );
        let guard = json!({"spec": {"backup": {"s3": {"bucket": "b", "prefix": "p", "region": "eu-west-3"}}}});
        let location = backup_location(&guard).expect("location");
        assert_eq!((location.prefix.as_str(), location.s3.region.as_str()), ("p", "eu-west-3"));
        assert_eq!((location.s3.endpoint, location.credentials_secret, location.s3.path_style), (None, None, false));
        assert_eq!(backup_location(&json!({"spec": {}})), Err("spec.backup.s3 is not set".into()));
        assert_eq!(
            backup_location(&json!({"spec": {"backup": {"s3": {"bucket": ""}}}})),
            Err("spec.backup.s3.bucket is not set".into())
        );
    }

    #[test]
    fn the_restore_patch_names_the_request_and_the_source() {
        let source: Source = "before:2026-11-25T09:00:00Z".parse().expect("source");
        assert_eq!(
            restore_patch("r1", &source),
            json!({"spec": {"restore": {"requestId": "r1", "source": "before:2026-11-25T09:00:00Z"}}})
        );
    }

    #[test]
    fn the_newest_drill_is_shown_with_its_figures() {
        let guard = json!({"status": {"backup": {"lastVerification": {
            "job": "shop-verify-29391", "finishedAt": "2026-11-29T03:31:00Z", "key": "p/shop/k.pgdump",
            "error": "recovery point 2h13m exceeds the target 1h: the newest good backup is from 2026-11-29T01:17:00Z (p/shop/k.pgdump)",
            "recovery": {
                "startedAt": "2026-11-29T03:30:00Z", "backupTakenAt": "2026-11-29T01:17:00Z",
                "recoveryTimeSeconds": 41.2, "recoveryTimeTargetSeconds": 900.0,
                "recoveryPointSeconds": 7980.0, "recoveryPointTargetSeconds": 3600.0,
                "steps": {"downloadSeconds": 3.1, "verifySeconds": 0.4, "restoreSeconds": 35.3, "checksSeconds": 2.4},
                "missed": ["RecoveryPoint"]}}}}});
        assert_eq!(
            newest_drill(&guard).as_deref(),
            Some(
                "Newest restore drill: FAILED at 2026-11-29T03:31:00Z (Job shop-verify-29391), backup p/shop/k.pgdump\n  \
                 recovery time   41.2s (target 15m): download 3.1s, verify 0.4s, restore 35.3s, checks 2.4s\n  \
                 recovery point  2h13m (target 1h, OVER TARGET): backup taken at 2026-11-29T01:17:00Z, drill started \
                 at 2026-11-29T03:30:00Z\n  \
                 error: recovery point 2h13m exceeds the target 1h: the newest good backup is from \
                 2026-11-29T01:17:00Z (p/shop/k.pgdump)\n"
            )
        );
        // A drill from before the figures, or none at all.
        let old =
            json!({"status": {"backup": {"lastVerification": {"job": "j", "finishedAt": "2026-11-29T03:31:00Z"}}}});
        assert_eq!(
            newest_drill(&old).as_deref(),
            Some("Newest restore drill: passed at 2026-11-29T03:31:00Z (Job j), backup -\n")
        );
        assert_eq!(newest_drill(&json!({"status": {}})), None);
    }

    #[test]
    fn the_recoverable_window_is_shown_or_why_there_is_none() {
        let guard = json!({"status": {"backup": {"pointInTime": {
            "firstRecoverable": "2026-11-29T00:00:05Z", "lastRecoverable": "2026-11-30T19:40:00Z",
            "baseBackups": 2, "observedAt": "2026-11-30T19:41:00Z", "message": "recoverable from ..."}}}});
        assert_eq!(
            recoverable_window(&guard).as_deref(),
            Some(
                "Point-in-time recovery: from 2026-11-29T00:00:05Z to 2026-11-30T19:40:00Z, 2 base backups \
                 (as of the backup at 2026-11-30T19:41:00Z)\n"
            )
        );
        let external = json!({"status": {"backup": {"pointInTime": {"message": "PostgreSQL is external: ..."}}}});
        assert_eq!(
            recoverable_window(&external).as_deref(),
            Some("Point-in-time recovery: PostgreSQL is external: ...\n")
        );
        let broken = json!({"status": {"backup": {"pointInTime": {
            "error": "segment missing", "archivedThrough": "2026-11-30T19:40:09Z"}}}});
        assert_eq!(
            recoverable_window(&broken).as_deref(),
            Some(
                "Point-in-time recovery: no window known\n  WAL archived through 2026-11-30T19:40:09Z\n  \
                 error: segment missing\n"
            )
        );
        assert_eq!(recoverable_window(&json!({"status": {"backup": {}}})), None);
    }

    #[test]
    fn a_restore_before_a_time_with_point_in_time_recovery_says_how_it_recovers() {
        let before: Source = "before:2026-11-25T09:00:00Z".parse().expect("source");
        let latest: Source = "latest".parse().expect("source");
        let pitr = json!({"spec": {"backup": {"pointInTime": {}}}});
        assert!(how_it_restores(&pitr, &before).contains("recoverable window"));
        assert!(how_it_restores(&pitr, &latest).contains("safety backup"));
        let external = json!({"spec": {"backup": {"pointInTime": {}}, "postgres": {"external": {}}}});
        assert!(how_it_restores(&external, &before).contains("safety backup"));
        assert!(how_it_restores(&json!({"spec": {"backup": {}}}), &before).contains("safety backup"));
    }

    #[test]
    fn request_ids_are_uuids() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
