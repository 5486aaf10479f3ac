//! `securityguard-operator restore`: pick a good backup → download it → verify size and SHA-256
//! against the manifest BEFORE touching any database → `pg_restore` in one transaction → compare
//! row counts with the manifest.
//!
//! An encrypted backup (its manifest has `encryption`) needs a key file holding the key whose
//! fingerprint the manifest records: without it, or with other keys only, the restore is refused
//! before anything is downloaded, naming the fingerprint expected and those given. The download
//! is decrypted as it arrives, every chunk authenticated, into the work file; `pg_restore` starts
//! only once the whole object matched the manifest's SHA-256 and its final chunk opened. An
//! unencrypted backup restores as before, with or without a key file.
//!
//! `--verify-only` is the restore drill: the same, into a scratch database that is dropped at
//! the end whatever happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::Rng;

use super::catalog::{self, ResolveError, Source};
use super::envelope::{self, Keyring, OpenError, Opener};
use super::ledger::{self, Holder};
use super::manifest::{self, Manifest};
use super::pg::{self, DbUrl};
use super::store::{self, SourceStore, Store};
use super::tools;

/// Table count mismatches shown in an error.
const MISMATCHES_SHOWN: usize = 10;

/// What `restore` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The database to restore into: `postgres://user:password@host:port/database`. With
    /// `verify_only`, the server and credentials used to create the scratch database.
    pub database_url: String,
    /// Which backup.
    pub source: Source,
    /// The bucket or the local directory.
    pub store: SourceStore,
    /// Key prefix of the backups.
    pub prefix: String,
    /// The SecurityGuard whose backups these are: a folder under the prefix.
    pub guard: Option<String>,
    /// Restore drill: restore into a scratch database on the same server, check it, drop it.
    pub verify_only: bool,
    /// Name of the scratch database of a drill (default: a random `sg_restore_check_…`).
    pub scratch_database: Option<String>,
    /// Directory for the downloaded dump (default: the system temporary directory).
    pub work_dir: Option<PathBuf>,
    /// Directory of pg_restore (default: found on PATH).
    pub pg_bin: Option<PathBuf>,
    /// The restore request this restore serves, claimed in the restore ledger: once the
    /// database holds the backup, its key and the time are added to the request's record.
    pub ledger: Option<Holder>,
    /// The key file of encrypted backups: every key in it may open one.
    pub encryption_key_file: Option<PathBuf>,
}

/// A failed restore, saying whether the database was touched.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL is not valid.
    #[error(transparent)]
    Url(pg::Error),
    /// Listing or reading the store failed.
    #[error("restore refused, the database was not touched: {0}")]
    Store(#[source] store::Error),
    /// No backup matches the source.
    #[error("restore refused, the database was not touched: {0}")]
    Source(#[source] ResolveError),
    /// Preparing the download failed.
    #[error("restore refused, the database was not touched: creating a temporary file in {dir}: {source}")]
    TempFile {
        /// The directory.
        dir: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The downloaded dump is not the one the manifest describes.
    #[error(
        "restore refused, the database was not touched: {location} is corrupt: \
         {size} bytes with SHA-256 {sha256}, the manifest says {expected_size} bytes with SHA-256 {expected_sha256}"
    )]
    Corrupt {
        /// The dump.
        location: String,
        /// Bytes downloaded.
        size: u64,
        /// Their SHA-256.
        sha256: String,
        /// Size in the manifest.
        expected_size: u64,
        /// SHA-256 in the manifest.
        expected_sha256: String,
    },
    /// The backup is encrypted and no key file was given.
    #[error(
        "restore refused, the database was not touched: backup {key} is encrypted with key {expected}, \
         and no key was given (--encryption-key-file, spec.backup.encryption.keySecret)"
    )]
    NoKey {
        /// The backup.
        key: String,
        /// Fingerprint of the key that encrypted it.
        expected: String,
    },
    /// The key file does not hold the key that encrypted the backup.
    #[error(
        "restore refused, the database was not touched: backup {key} is encrypted with key {expected}, \
         the key file holds {given}"
    )]
    WrongKey {
        /// The backup.
        key: String,
        /// Fingerprint of the key that encrypted it.
        expected: String,
        /// Fingerprints of the keys given.
        given: String,
    },
    /// The backup is encrypted in a way this operator does not know.
    #[error(
        "restore refused, the database was not touched: backup {key} is encrypted with {algorithm}, this operator knows {}",
        envelope::ALGORITHM
    )]
    Algorithm {
        /// The backup.
        key: String,
        /// The manifest's algorithm.
        algorithm: String,
    },
    /// The key file cannot be used.
    #[error("restore refused, the database was not touched: {0}")]
    Key(#[source] envelope::KeyError),
    /// The download matches the manifest but does not decrypt.
    #[error("restore refused, the database was not touched: {location} cannot be decrypted: {source}")]
    Decrypt {
        /// The dump.
        location: String,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The database could not be reached, or a scratch database created or dropped.
    #[error("restore of {key}: {source}")]
    Database {
        /// The backup.
        key: String,
        /// What failed.
        #[source]
        source: pg::Error,
    },
    /// `pg_restore` failed; in its single transaction nothing was changed.
    #[error("restore of {key} into {database} failed and was rolled back: {source}")]
    Restore {
        /// The backup.
        key: String,
        /// The target, password hidden.
        database: String,
        /// What failed.
        #[source]
        source: tools::Error,
    },
    /// The restored data does not have the manifest's row counts.
    #[error("restore of {key} into {database}: row counts differ from the manifest: {}", .mismatches.join("; "))]
    RowCounts {
        /// The backup.
        key: String,
        /// The target, password hidden.
        database: String,
        /// `table: expected N, found M`, the first few.
        mismatches: Vec<String>,
    },
}

impl Error {
    /// Whether the target database may have changed: only once `pg_restore` committed. Every
    /// failure before (download, verification, the restore's own transaction) leaves it as it
    /// was. A drill never touches the target.
    pub fn database_changed(&self) -> bool {
        match self {
            Error::Url(_)
            | Error::Store(_)
            | Error::Source(_)
            | Error::TempFile { .. }
            | Error::Corrupt { .. }
            | Error::NoKey { .. }
            | Error::WrongKey { .. }
            | Error::Algorithm { .. }
            | Error::Key(_)
            | Error::Decrypt { .. }
            | Error::Restore { .. } => false,
            Error::Database { .. } | Error::RowCounts { .. } => true,
        }
    }
}

/// A completed restore or drill.
#[derive(Debug, Clone)]
pub struct Report {
    /// The manifest of the restored backup.
    pub manifest: Manifest,
    /// The database restored into (the scratch database for a drill), password hidden.
    pub database: String,
    /// Seconds from start to end.
    pub seconds: f64,
    /// When the restore started.
    pub started_at: Timestamp,
    /// From the start until the restored data was checked (a drill's scratch database is
    /// dropped afterwards, outside this time).
    pub recovered_in: Duration,
    /// Where that time went.
    pub steps: Steps,
}

/// The time of each step of a restore, as measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    /// Downloading the dump (hashed while it streams).
    pub download: Duration,
    /// Listing the backups and reading their manifests to choose one; comparing the download
    /// with its manifest.
    pub verify: Duration,
    /// Creating the scratch database (a drill) and `pg_restore`.
    pub restore: Duration,
    /// Comparing the row counts with the manifest.
    pub checks: Duration,
}

/// Which step a lap of the [`Stopwatch`] belongs to.
#[derive(Debug, Clone, Copy)]
enum Step {
    Download,
    Verify,
    Restore,
    Checks,
}

/// A stopwatch adding the time since its last lap to a step.
struct Stopwatch {
    start: Instant,
    mark: Instant,
    steps: Steps,
}

impl Stopwatch {
    fn start() -> Self {
        let now = Instant::now();
        Self { start: now, mark: now, steps: Steps::default() }
    }

    /// Adds the time since the previous lap (or the start) to `step`.
    fn lap(&mut self, step: Step) {
        let now = Instant::now();
        let lap = now - self.mark;
        self.mark = now;
        let total = match step {
            Step::Download => &mut self.steps.download,
            Step::Verify => &mut self.steps.verify,
            Step::Restore => &mut self.steps.restore,
            Step::Checks => &mut self.steps.checks,
        };
        *total += lap;
    }

    /// The time since the start.
    fn total(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Runs a restore (or a drill) as `options` say.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let started_at = Timestamp::now();
    let mut clock = Stopwatch::start();
    let url = DbUrl::parse(&options.database_url).map_err(Error::Url)?;
    let Some(store) = options.store.open().await else {
        return Err(Error::Store(store::Error::NotFound { location: "--bucket or --local-dir".into() }));
    };
    let folder = manifest::folder(&options.prefix, options.guard.as_deref());
    let backups = catalog::load(&store, &folder).await.map_err(Error::Store)?;
    let backup = catalog::resolve(&backups, &options.source).map_err(Error::Source)?;
    let Some(manifest) = backup.good_manifest().cloned() else {
        return Err(Error::Source(ResolveError::NotGood { key: backup.key.clone(), state: backup.state.clone() }));
    };
    let key = manifest.key.clone();
    let keyring = opening_keys(&manifest, options.encryption_key_file.as_deref()).await?;
    let key_fingerprint = manifest.encryption.as_ref().map(|e| e.key_fingerprint.as_str()).unwrap_or_default();
    tracing::info!(
        source = %options.source,
        %key,
        taken = %manifest.started_at,
        size = manifest.size,
        %key_fingerprint,
        "restoring"
    );

    clock.lap(Step::Verify);

    let dir = options.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let temp = tempfile::Builder::new()
        .prefix("sg-restore-")
        .suffix(manifest::DUMP_SUFFIX)
        .tempfile_in(&dir)
        .map_err(|source| Error::TempFile { dir: dir.display().to_string(), source })?;
    let (size, sha256, opened) =
        download_opening(&store, &key, temp.path(), keyring.as_ref()).await.map_err(Error::Store)?;
    clock.lap(Step::Download);
    if size != manifest.size || sha256 != manifest.sha256 {
        return Err(Error::Corrupt {
            location: store.location(&key),
            size,
            sha256,
            expected_size: manifest.size,
            expected_sha256: manifest.sha256.clone(),
        });
    }
    if let Some(Err(source)) = opened {
        return Err(Error::Decrypt { location: store.location(&key), source });
    }
    clock.lap(Step::Verify);
    tracing::info!(%key, size, %sha256, "download verified against the manifest");

    let bin = options.pg_bin.as_deref();
    let (database, recovered_in) = if options.verify_only {
        drill(&url, options.scratch_database.clone(), bin, temp.path(), &manifest, &mut clock).await?
    } else {
        restore_into(&url, bin, temp.path(), true, &manifest, &mut clock).await?;
        (url.redacted(), clock.total())
    };
    let seconds = clock.total().as_secs_f64();
    let steps = clock.steps;
    tracing::info!(
        %key,
        %database,
        seconds,
        recovered_seconds = recovered_in.as_secs_f64(),
        download_seconds = steps.download.as_secs_f64(),
        verify_seconds = steps.verify.as_secs_f64(),
        restore_seconds = steps.restore.as_secs_f64(),
        checks_seconds = steps.checks.as_secs_f64(),
        tables = manifest.row_counts.len(),
        peak_rss_mib = tools::peak_rss_mib(),
        "restore verified: row counts match the manifest"
    );
    if !options.verify_only
        && let Some(holder) = &options.ledger
    {
        record_in_ledger(&store, options, holder, &key).await;
    }
    Ok(Report { manifest, database, seconds, started_at, recovered_in, steps })
}

/// Downloads `key` into `path`, opened on the way when `keyring` is given: the size and SHA-256
/// of the object as stored, and (when opened) whether every chunk authenticated. A failure to
/// open sticks and is for the caller to report once the checksum of the whole object is known
/// (a corrupt object is reported as corrupt).
pub async fn download_opening(
    store: &Store,
    key: &str,
    path: &Path,
    keyring: Option<&Keyring>,
) -> Result<(u64, String, Option<Result<u64, OpenError>>), store::Error> {
    let mut opener = keyring.map(Opener::new);
    let mut opened = None;
    let (size, sha256) = store
        .download_with(key, path, |chunk, out| match (opener.as_mut(), chunk) {
            (None, chunk) => out.extend_from_slice(chunk.unwrap_or_default()),
            (Some(opener), Some(chunk)) => {
                let _ = opener.push(chunk, out);
            }
            (Some(opener), None) => opened = Some(opener.finish(out)),
        })
        .await?;
    Ok((size, sha256, opened))
}

/// Adds the restored key to the request's record in the ledger. The database holds the backup
/// by now, so a failure here is logged and does not fail the restore (which would roll it
/// back): the claim alone already keeps the request from running again.
async fn record_in_ledger(store: &Store, options: &Options, holder: &Holder, key: &str) {
    let (Store::S3(s3), Some(guard)) = (store, options.guard.as_deref()) else {
        tracing::warn!(request = %holder.request_id, "the restore ledger is kept in S3 with --guard only; not recorded");
        return;
    };
    match ledger::record_restored(s3, &options.prefix, guard, holder, key, jiff::Timestamp::now()).await {
        Ok(record) => tracing::info!(request = %record.request_id, %key, "restore recorded in the restore ledger"),
        Err(error) => tracing::warn!(%error, request = %holder.request_id, "cannot record the restore in the ledger"),
    }
}

/// The keys that open the backup of `manifest`, from `key_file`: `None` for an unencrypted
/// backup; an error, before anything is downloaded, when the key that encrypted it is not there.
async fn opening_keys(manifest: &Manifest, key_file: Option<&Path>) -> Result<Option<Keyring>, Error> {
    let Some(encryption) = &manifest.encryption else { return Ok(None) };
    let (key, expected) = (manifest.key.clone(), encryption.key_fingerprint.clone());
    if encryption.algorithm != envelope::ALGORITHM {
        return Err(Error::Algorithm { key, algorithm: encryption.algorithm.clone() });
    }
    let Some(path) = key_file else { return Err(Error::NoKey { key, expected }) };
    let keyring = Keyring::read(path).await.map_err(Error::Key)?;
    if keyring.find_named(&expected).is_none() {
        return Err(Error::WrongKey { key, expected, given: envelope::list(&keyring.fingerprints()) });
    }
    Ok(Some(keyring))
}

/// Restores into a scratch database on the server of `url`, checks it, drops it. Returns the
/// scratch database and the time from the start until the data was checked (before the drop).
async fn drill(
    url: &DbUrl,
    scratch: Option<String>,
    bin: Option<&Path>,
    file: &Path,
    manifest: &Manifest,
    clock: &mut Stopwatch,
) -> Result<(String, Duration), Error> {
    let name = scratch.unwrap_or_else(|| format!("sg_restore_check_{:08x}", rand::rng().random::<u32>()));
    let db_error = |source| Error::Database { key: manifest.key.clone(), source };
    pg::create_database(url, &name).await.map_err(db_error)?;
    let scratch_url = url.with_database(&name);
    tracing::info!(database = %scratch_url.redacted(), "restore drill into a scratch database");
    let result = restore_into(&scratch_url, bin, file, false, manifest, clock).await;
    let recovered_in = clock.total();
    let dropped = pg::drop_database(url, &name).await.map_err(db_error);
    result?;
    dropped?;
    Ok((scratch_url.redacted(), recovered_in))
}

/// `pg_restore` in one transaction, then the row counts, each timed by `clock`.
async fn restore_into(
    url: &DbUrl,
    bin: Option<&Path>,
    file: &Path,
    clean: bool,
    manifest: &Manifest,
    clock: &mut Stopwatch,
) -> Result<(), Error> {
    tools::restore(bin, url, file, clean).await.map_err(|source| Error::Restore {
        key: manifest.key.clone(),
        database: url.redacted(),
        source,
    })?;
    // A drill's scratch database was created since the last lap: part of the restore too.
    clock.lap(Step::Restore);
    let db_error = |source| Error::Database { key: manifest.key.clone(), source };
    let mut conn = url.connect().await.map_err(db_error)?;
    let found = pg::row_counts(url, &mut conn).await.map_err(db_error)?;
    let mismatches = compare_counts(&manifest.row_counts, &found);
    clock.lap(Step::Checks);
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(Error::RowCounts { key: manifest.key.clone(), database: url.redacted(), mismatches })
    }
}

/// `table: expected N, found M` for every table of the manifest whose count differs or that is
/// missing (the first [`MISMATCHES_SHOWN`], then how many more). Tables the manifest does not
/// know (created after the backup) are not compared.
pub fn compare_counts(expected: &BTreeMap<String, u64>, found: &BTreeMap<String, u64>) -> Vec<String> {
    let all: Vec<String> = expected
        .iter()
        .filter_map(|(table, &want)| match found.get(table) {
            Some(&got) if got == want => None,
            Some(&got) => Some(format!("{table}: expected {want}, found {got}")),
            None => Some(format!("{table}: expected {want}, table missing")),
        })
        .collect();
    if all.len() > MISMATCHES_SHOWN {
        let more = all.len() - MISMATCHES_SHOWN;
        let mut shown: Vec<String> = all.into_iter().take(MISMATCHES_SHOWN).collect();
        shown.push(format!("and {more} more"));
        shown
    } else {
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_counts_of_the_manifest_tables_only() {
        let expected =
            BTreeMap::from([("public.a".to_owned(), 3), ("public.b".to_owned(), 0), ("public.c".to_owned(), 1)]);
        let found =
            BTreeMap::from([("public.a".to_owned(), 3), ("public.b".to_owned(), 2), ("public.new".to_owned(), 9)]);
        assert_eq!(
            compare_counts(&expected, &found),
            vec!["public.b: expected 0, found 2".to_owned(), "public.c: expected 1, table missing".to_owned()]
        );
        assert!(compare_counts(&expected, &expected).is_empty());
    }

    fn encrypted(fingerprint: &str) -> Manifest {
        let mut manifest = crate::backup::catalog::tests::manifest("b/1.pgdump", 1, "2026-11-01T00:00:00Z");
        manifest.encryption = Some(manifest::Encryption {
            algorithm: envelope::ALGORITHM.to_owned(),
            key_fingerprint: fingerprint.to_owned(),
            plaintext_size: 1,
        });
        manifest
    }

    #[tokio::test]
    async fn an_encrypted_backup_needs_the_key_that_encrypted_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (current, previous) = (envelope::Key::new([1; 32]), envelope::Key::new([2; 32]));
        let file = dir.path().join("keys");
        std::fs::write(&file, format!("{}\n{}\n", "01".repeat(32), "02".repeat(32))).expect("key file");

        // A previous key in the file opens what it encrypted.
        let found = opening_keys(&encrypted(&previous.fingerprint().to_string()), Some(&file)).await.expect("found");
        assert_eq!(found.map(|k| k.fingerprints()), Some(vec![current.fingerprint(), previous.fingerprint()]));

        let error = opening_keys(&encrypted("sha256:00000000000000aa"), Some(&file)).await.expect_err("wrong key");
        assert_eq!(
            error.to_string(),
            format!(
                "restore refused, the database was not touched: backup b/1.pgdump is encrypted with key \
                 sha256:00000000000000aa, the key file holds {}, {}",
                current.fingerprint(),
                previous.fingerprint()
            )
        );
        assert!(!error.database_changed());
        let error = opening_keys(&encrypted("sha256:00000000000000aa"), None).await.expect_err("no key");
        assert!(error.to_string().contains("no key was given"), "{error}");
        let missing = dir.path().join("missing");
        let error = opening_keys(&encrypted("sha256:00000000000000aa"), Some(&missing)).await.expect_err("no file");
        assert!(error.to_string().contains("cannot read the encryption key file"), "{error}");

        // An unencrypted backup needs no key, and ignores one given.
        let plain = crate::backup::catalog::tests::manifest("b/0.pgdump", 1, "2026-10-01T00:00:00Z");
        assert!(opening_keys(&plain, None).await.expect("plain").is_none());
        assert!(opening_keys(&plain, Some(&missing)).await.expect("plain").is_none());
    }

    #[test]
    fn shows_the_first_mismatches() {
        let expected: BTreeMap<String, u64> = (0..15).map(|i| (format!("t{i:02}"), 1)).collect();
        let mismatches = compare_counts(&expected, &BTreeMap::new());
        assert_eq!(mismatches.len(), MISMATCHES_SHOWN + 1);
        assert_eq!(mismatches[MISMATCHES_SHOWN], "and 5 more");
    }
}
