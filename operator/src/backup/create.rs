//! `securityguard-operator backup`: config read (with `--config-backup`) → snapshot → `pg_dump`
//! streamed to S3 (and the local tier) → size check → config backup stored → manifest, LAST →
//! retention.
//!
//! The config is read first: a backup that cannot read it (RBAC, API server) fails in seconds,
//! before anything is dumped.
//!
//! With an encryption key file, the dump and the config backup are sealed before they leave the
//! process ([`super::envelope`]), in both tiers; the manifest records the algorithm and the key's
//! fingerprint, and the size and SHA-256 of the sealed objects.
//!
//! On any failure before the manifests: the multipart upload is aborted, the local partial file
//! removed, nothing deleted, and the error names what failed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use jiff::Timestamp;

use sha2::{Digest, Sha256};

use super::catalog;
use super::config::{self, ConfigBackup, GuardRef};
use super::envelope::{self, Keyring, Sealer};
use super::manifest::{self, ConfigFile, Encryption, Manifest, Status};
use super::pg::{self, DbUrl, Snapshot};
use super::retention::{self, Policy};
use super::store::{self, S3Options, S3Store, Store};
use super::tools::{self, Dump};
use super::upload::{self, LocalWriter, MultipartUpload, Sinks, Streamed};
use crate::crd::RetentionSpec;

/// A failed backup, naming the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the database (snapshot, row counts) failed.
    #[error("backup of {database} failed: {source}")]
    Database {
        /// The database URL, password hidden.
        database: String,
        /// What failed.
        #[source]
        source: pg::Error,
    },
    /// `pg_dump` could not run or failed.
    #[error("backup {key} failed: {source}")]
    Dump {
        /// Key of the dump.
        key: String,
        /// What failed.
        #[source]
        source: tools::Error,
    },
    /// Storing the dump failed.
    #[error("backup {key} failed: {source}")]
    Store {
        /// Key of the dump.
        key: String,
        /// What failed.
        #[source]
        source: upload::StreamError,
    },
    /// The stored object is not what was written.
    #[error("backup {key} failed: {location} has {found} bytes, {written} were written")]
    SizeMismatch {
        /// Key of the dump.
        key: String,
        /// The stored object.
        location: String,
        /// Its size.
        found: u64,
        /// Bytes written.
        written: u64,
    },
    /// The process was asked to stop.
    #[error("backup {key} interrupted by {signal}")]
    Interrupted {
        /// Key of the dump.
        key: String,
        /// The signal.
        signal: &'static str,
    },
    /// The database URL is not valid.
    #[error(transparent)]
    Url(pg::Error),
    /// The SecurityGuard or its ConfigMaps could not be read (nothing was dumped).
    #[error("config backup failed, nothing was dumped: {0}")]
    Config(#[source] config::Error),
    /// The encryption key file cannot be used (nothing was dumped).
    #[error("backup failed, nothing was dumped: {0}")]
    Key(#[source] envelope::KeyError),
    /// The backup is good, but deleting old backups failed.
    #[error("backup {key} succeeded, but retention in the {tier} tier failed: {source}")]
    Retention {
        /// Key of the new, good backup.
        key: String,
        /// `s3` or `local`.
        tier: &'static str,
        /// What failed.
        #[source]
        source: store::Error,
    },
}

/// What `backup` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The database to dump: `postgres://user:password@host:port/database` (the password may
    /// also come from PGPASSWORD).
    pub database_url: String,
    /// The bucket receiving the dump, and how to reach it.
    pub s3: S3Options,
    /// Key prefix of the backups (also their folder under `local_dir`).
    pub prefix: String,
    /// The SecurityGuard whose backups these are: a folder under the prefix.
    pub guard: Option<String>,
    /// Also keep a copy in this directory (the local tier).
    pub local_dir: Option<PathBuf>,
    /// How long backups are kept in each tier, and how many good ones always are.
    pub retention: RetentionSpec,
    /// Size of the S3 multipart parts in MiB.
    pub part_size_mib: u32,
    /// Also store the SecurityGuard and its ConfigMaps as YAML next to the dump.
    pub config_backup: bool,
    /// The SecurityGuard of `config_backup` (`None`: not known, the config backup fails).
    pub guard_ref: Option<GuardRef>,
    /// Directory of pg_dump (default: found on PATH).
    pub pg_bin: Option<PathBuf>,
    /// Encrypt the dump and the config backup with the first key of this key file.
    pub encryption_key_file: Option<PathBuf>,
}

/// A completed backup.
#[derive(Debug, Clone)]
pub struct Report {
    /// Its manifest (the same in both tiers).
    pub manifest: Manifest,
    /// Backups deleted by retention, per tier.
    pub deleted: Vec<(&'static str, usize)>,
    /// The point-in-time recovery window, when the guard's WAL is archived.
    pub point_in_time: Option<super::pitr::window::Window>,
}

/// What the dump step leaves: the bytes streamed, and what the snapshot saw.
struct Dumped {
    streamed: Streamed,
    database: String,
    postgres_version: String,
    row_counts: BTreeMap<String, u64>,
}

/// Runs a backup as `options` say.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let url = DbUrl::parse(&options.database_url).map_err(Error::Url)?;
    let keyring = match &options.encryption_key_file {
        Some(path) => Some(Keyring::read(path).await.map_err(Error::Key)?),
        None => None,
    };
    let sealing = keyring.as_ref().map(Keyring::current);
    let s3 = S3Store::connect(&options.s3).await;
    let local = options.local_dir.as_ref().map(|dir| store::LocalStore { root: dir.clone() });
    let bin = options.pg_bin.as_deref();
    let guard = options.guard.as_deref();
    let clock = Instant::now();

    let started_at = Timestamp::now();
    let dump_key = manifest::new_dump_key(&options.prefix, guard, started_at);
    let pg_dump_version =
        tools::version(bin, "pg_dump").await.map_err(|source| Error::Dump { key: dump_key.clone(), source })?;
    let local_dir = options.local_dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default();
    let key_fingerprint = sealing.map(|k| k.fingerprint().to_string()).unwrap_or_default();
    tracing::info!(
        database = %url.redacted(),
        bucket = %s3.bucket,
        key = %dump_key,
        %local_dir,
        %pg_dump_version,
        %key_fingerprint,
        "backup starting"
    );

    let config = if options.config_backup {
        let guard = options.guard_ref.clone().ok_or(Error::Config(config::Error::NoGuard))?;
        Some((read_config(&guard).await.map_err(Error::Config)?, guard))
    } else {
        None
    };
    let dumped = dump(&s3, local.as_ref(), &dump_key, &url, options, sealing.map(Sealer::new)).await?;

    let s3_store = Store::S3(s3);
    let local_store = local.map(Store::Local);
    let stores: Vec<&Store> = std::iter::once(&s3_store).chain(local_store.as_ref()).collect();
    // Before the manifest: a backup whose config backup is not stored is never good.
    let config = match config {
        Some((backup, guard)) => Some(store_config(&stores, &dump_key, &backup, &guard, sealing).await?),
        None => None,
    };
    let encryption = sealing.map(|key| Encryption {
        algorithm: envelope::ALGORITHM.to_owned(),
        key_fingerprint: key.fingerprint().to_string(),
        plaintext_size: dumped.streamed.plaintext_size,
    });
    let manifest = Manifest {
        format_version: manifest::format_version(encryption.as_ref()),
        status: Status::Completed,
        guard: guard.map(str::to_owned),
        database: dumped.database,
        key: dump_key.clone(),
        size: dumped.streamed.size,
        sha256: dumped.streamed.sha256.clone(),
        row_counts: dumped.row_counts,
        postgres_version: dumped.postgres_version,
        pg_dump_version,
        operator_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        finished_at: Timestamp::now(),
        config,
        encryption,
    };
    write_manifest(&stores, &manifest, dumped.streamed.parts, clock).await?;
    let deleted = apply_retention(options, &s3_store, local_store.as_ref(), &dump_key).await?;
    let point_in_time = match (&s3_store, guard) {
        (Store::S3(s3), Some(guard)) => {
            super::pitr::window::report(s3, &super::pitr::folder(&options.prefix, guard)).await
        }
        _ => None,
    };
    Ok(Report { manifest, deleted, point_in_time })
}

/// Snapshot → `pg_dump` streamed into the sinks → snapshot released → size stored checked.
async fn dump(
    s3: &S3Store,
    local: Option<&store::LocalStore>,
    key: &str,
    url: &DbUrl,
    options: &Options,
    sealer: Option<Sealer>,
) -> Result<Dumped, Error> {
    let snapshot = Snapshot::take(url).await.map_err(|source| Error::Database { database: url.redacted(), source })?;
    tracing::info!(snapshot = %snapshot.id, tables = snapshot.row_counts.len(), "snapshot exported, rows counted");

    let part_size = options.part_size_mib as usize * 1024 * 1024;
    let bin = options.pg_bin.as_deref();
    let streamed = transfer(s3, local, key, url, bin, (snapshot.id.as_str(), part_size), sealer).await?;
    let (database, postgres_version, row_counts) =
        (snapshot.database.clone(), snapshot.server_version.clone(), snapshot.row_counts.clone());
    if let Err(error) = snapshot.release(url).await {
        // pg_dump is done with the snapshot; the connection closes with this process anyway.
        tracing::warn!(%error, "could not end the snapshot transaction");
    }

    // The multipart upload is complete: check that the bucket holds what was written.
    let stored = s3.head_size(key).await.map_err(|e| Error::Store { key: key.to_owned(), source: e.into() })?;
    if stored != streamed.size {
        return Err(Error::SizeMismatch {
            key: key.to_owned(),
            location: format!("s3://{}/{key}", s3.bucket),
            found: stored,
            written: streamed.size,
        });
    }
    Ok(Dumped { streamed, database, postgres_version, row_counts })
}

/// Stores the config backup of the dump at `key` in every tier, sealed with `sealing` when given.
async fn store_config(
    stores: &[&Store],
    key: &str,
    backup: &ConfigBackup,
    guard: &GuardRef,
    sealing: Option<&envelope::Key>,
) -> Result<ConfigFile, Error> {
    let (bytes, content_type) = match sealing {
        Some(sealing) => (
            envelope::seal(sealing, backup.yaml.as_bytes())
                .map_err(|e| Error::Store { key: manifest::config_key(key), source: upload::StreamError::Seal(e) })?,
            "application/octet-stream",
        ),
        None => (backup.yaml.clone().into_bytes(), "application/yaml"),
    };
    let file = config_file(key, backup, &bytes);
    for store in stores {
        store
            .put_small(&file.key, bytes.clone(), content_type)
            .await
            .map_err(|e| Error::Store { key: file.key.clone(), source: e.into() })?;
    }
    tracing::info!(%guard, key = %file.key, objects = ?file.objects, "config backup stored");
    Ok(file)
}

/// Writes the manifest in every tier: from now on the backup is good.
async fn write_manifest(stores: &[&Store], manifest: &Manifest, parts: u32, clock: Instant) -> Result<(), Error> {
    let key = &manifest.key;
    let manifest_key = manifest::manifest_key(key);
    for store in stores {
        store
            .put_small(&manifest_key, manifest.to_json(), "application/json")
            .await
            .map_err(|e| Error::Store { key: key.clone(), source: e.into() })?;
    }
    tracing::info!(
        %key,
        size = manifest.size,
        sha256 = %manifest.sha256,
        key_fingerprint = %manifest.encryption.as_ref().map(|e| e.key_fingerprint.as_str()).unwrap_or_default(),
        parts,
        seconds = clock.elapsed().as_secs_f64(),
        peak_rss_mib = tools::peak_rss_mib(),
        "backup complete"
    );
    Ok(())
}

/// Deletes the backups that retention no longer keeps, in each tier; how many per tier.
async fn apply_retention(
    options: &Options,
    s3: &Store,
    local: Option<&Store>,
    key: &str,
) -> Result<Vec<(&'static str, usize)>, Error> {
    let mut deleted = Vec::new();
    let folder = manifest::folder(&options.prefix, options.guard.as_deref());
    let keep_last = options.retention.keep_last as usize;
    let tiers = std::iter::once((s3, options.retention.s3_days))
        .chain(local.map(|store| (store, options.retention.local_days)));
    for (store, max_age_days) in tiers {
        let retention_error = |source| Error::Retention { key: key.to_owned(), tier: store.tier(), source };
        let backups = catalog::load(store, &folder).await.map_err(retention_error)?;
        let doomed = retention::select(&backups, Timestamp::now(), Policy { max_age_days, keep_last });
        let count = retention::delete(store, &doomed).await.map_err(retention_error)?;
        tracing::info!(tier = store.tier(), kept = backups.len() - count, deleted = count, "retention applied");
        deleted.push((store.tier(), count));
    }
    Ok(deleted)
}

/// Reads the SecurityGuard and its ConfigMaps with the in-cluster or kubeconfig credentials.
async fn read_config(guard: &GuardRef) -> Result<ConfigBackup, config::Error> {
    let client = kube::Client::try_default().await.map_err(config::Error::Client)?;
    let backup = config::collect(client, guard).await?;
    tracing::info!(%guard, objects = ?backup.objects, bytes = backup.yaml.len(), "SecurityGuard and ConfigMaps read");
    Ok(backup)
}

/// What the manifest records of the config backup of the dump at `dump_key`, stored as `stored`.
fn config_file(dump_key: &str, backup: &ConfigBackup, stored: &[u8]) -> ConfigFile {
    ConfigFile {
        key: manifest::config_key(dump_key),
        size: stored.len() as u64,
        sha256: hex::encode(Sha256::digest(stored)),
        objects: backup.objects.clone(),
    }
}

/// Streams the dump (of `snapshot`, in parts of `part_size`, sealed by `sealer` when given) into
/// the sinks and completes them; aborts them on failure.
async fn transfer(
    s3: &S3Store,
    local: Option<&store::LocalStore>,
    key: &str,
    url: &DbUrl,
    bin: Option<&std::path::Path>,
    (snapshot, part_size): (&str, usize),
    sealer: Option<Sealer>,
) -> Result<Streamed, Error> {
    let store_error = |source: store::Error| Error::Store { key: key.to_owned(), source: source.into() };
    let upload = MultipartUpload::start(s3, key).await.map_err(store_error)?;
    let mut sinks = Sinks { s3: upload, local: None };
    let work = async {
        if let Some(local) = local {
            sinks.local = Some(LocalWriter::start(local, key).await.map_err(store_error)?);
        }
        let (dump, stdout) =
            Dump::start(bin, url, snapshot).map_err(|source| Error::Dump { key: key.to_owned(), source })?;
        // On an early return `dump` is dropped, which kills pg_dump.
        let streamed = upload::stream(stdout, part_size, &mut sinks, sealer)
            .await
            .map_err(|source| Error::Store { key: key.to_owned(), source })?;
        // pg_dump must have succeeded before anything becomes visible.
        dump.wait().await.map_err(|source| Error::Dump { key: key.to_owned(), source })?;
        sinks.s3.finish().await.map_err(store_error)?;
        Ok(streamed)
    };
    // A Job being stopped (deleted, past its deadline) gets SIGTERM: abort cleanly, then exit.
    let result = tokio::select! {
        result = work => result,
        signal = tools::stop_requested() => Err(Error::Interrupted { key: key.to_owned(), signal }),
    };
    let streamed = match result {
        Ok(streamed) => streamed,
        Err(error) => {
            sinks.s3.abort().await;
            if let Some(local) = &mut sinks.local {
                local.abort().await;
            }
            return Err(error);
        }
    };
    if let Some(local) = &mut sinks.local
        && let Err(error) = local.finish().await
    {
        // The S3 object is complete but has no manifest: listed as incomplete, never as good.
        local.abort().await;
        return Err(store_error(error));
    }
    Ok(streamed)
}
