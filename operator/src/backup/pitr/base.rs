//! Base backups: `pg_basebackup` of the whole cluster as one tar, streamed gzip-compressed (and
//! sealed) into the bucket, then its manifest, LAST; and the retention of the archive.
//!
//! `-X none`: the WAL the backup needs to become consistent comes from the archive, which the
//! replication slot makes complete. `pg_basebackup` writing to stdout does not print its WAL
//! positions, so the manifest records bounds read from the server around it: the insert position
//! before it starts (its checkpoint's redo point, where the WAL it needs starts, is at or after
//! it) and the insert position after it ends (its end-of-backup record, where replay makes the copy
//! consistent, is at or before it). Recovery that reaches the upper bound is consistent; the
//! archive from the lower bound on holds everything the backup needs.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_compression::Level;
use async_compression::tokio::bufread::GzipEncoder;
use jiff::{SignedDuration, Timestamp};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, ReadBuf};
use tokio::process::Command;

use super::layout::{BASE_MANIFEST_VERSION, BaseManifest, MAX_RECORD_BYTES, base_key, base_manifest_key, wal_name};
use super::wal::{Lsn, WalFile};
use crate::backup::envelope::{self, Keyring, Sealer};
use crate::backup::manifest::Encryption;
use crate::backup::pg;
use crate::backup::store::{self, S3Store, Store};
use crate::backup::upload::{self, MultipartUpload, Sinks};

/// Parts of the multipart upload.
const PART_SIZE: usize = 16 * 1024 * 1024;

/// A failed base backup, naming the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `pg_basebackup` could not run.
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It failed.
    #[error("pg_basebackup failed ({status}): {stderr}")]
    Failed {
        /// Exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// Its output could not be read.
    #[error("pg_basebackup's {0} could not be read")]
    Unreported(&'static str),
    /// The server could not be asked for its WAL position.
    #[error("reading the WAL position: {0}")]
    Server(String),
    /// Storing failed.
    #[error("storing base backup {key} failed: {detail}")]
    Store {
        /// The key.
        key: String,
        /// What failed.
        detail: String,
    },
}

/// The newest base backup with a manifest.
pub async fn newest(s3: &S3Store, folder: &str) -> Result<Option<BaseManifest>, store::Error> {
    Ok(manifests(s3, folder).await?.into_iter().max_by_key(|m| m.stopped_at))
}

/// The manifests of the base backups stored (unreadable ones are skipped).
pub async fn manifests(s3: &S3Store, folder: &str) -> Result<Vec<BaseManifest>, store::Error> {
    let store = Store::S3(s3.clone());
    let mut out = Vec::new();
    for object in store.list(&format!("{folder}/base/")).await? {
        if object.key.ends_with(".base.json") {
            let bytes = store.read_small(&object.key, MAX_RECORD_BYTES).await?;
            if let Ok(manifest) = serde_json::from_slice::<BaseManifest>(&bytes) {
                out.push(manifest);
            }
        }
    }
    Ok(out)
}

/// Where a base backup is taken from and stored.
pub struct Target<'a> {
    /// The bucket.
    pub s3: &'a S3Store,
    /// The archive's folder.
    pub folder: &'a str,
    /// The keys, when encrypting.
    pub keyring: Option<&'a Keyring>,
    /// The server, for its WAL positions.
    pub connect: PgConnectOptions,
    /// The server's host, port and user, for `pg_basebackup`.
    pub host: &'a str,
    /// Its port.
    pub port: u16,
    /// The role (REPLICATION, trusted over loopback).
    pub user: &'a str,
    /// Directory of `pg_basebackup` (default: on PATH).
    pub pg_bin: Option<&'a Path>,
}

/// Takes a base backup of `target`'s server into its bucket.
pub async fn take(target: &Target<'_>) -> Result<BaseManifest, Error> {
    let options = target;
    let started_at = Timestamp::now();
    let key = base_key(target.folder, started_at);
    let program = pg::program(options.pg_bin, "pg_basebackup");
    let store_error = |detail: String| Error::Store { key: key.clone(), detail };
    let mut conn = PgConnection::connect_with(&target.connect).await.map_err(|e| Error::Server(e.to_string()))?;
    let (start_lsn, timeline) = position(&mut conn).await?;
    let mut child = Command::new(&program)
        .args(["--host", options.host, "--port", &options.port.to_string(), "--username", options.user])
        .args(["--no-password", "--pgdata", "-", "--format", "tar", "--wal-method", "none"])
        .args(["--checkpoint", "fast", "--verbose"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn { program: program.clone(), source })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Unreported("output"));
    };
    let lines = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut out = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(program = "pg_basebackup", "{line}");
            out.push(line);
        }
        out
    });
    let tar_bytes = Arc::new(AtomicU64::new(0));
    let counted = Counting { inner: stdout, count: tar_bytes.clone() };
    let reader = GzipEncoder::with_quality(BufReader::new(counted), Level::Fastest);
    let sealer = target.keyring.map(|k| Sealer::new(k.current()));
    let fingerprint = sealer.as_ref().map(Sealer::fingerprint);
    let upload = MultipartUpload::start(target.s3, &key).await.map_err(|e| store_error(e.to_string()))?;
    let mut sinks = Sinks { s3: upload, local: None };
    let streamed = match upload::stream(reader, PART_SIZE, &mut sinks, sealer).await {
        Ok(streamed) => streamed,
        Err(error) => {
            sinks.s3.abort().await;
            return Err(store_error(error.to_string()));
        }
    };
    let status = child.wait().await.map_err(|source| Error::Spawn { program: program.clone(), source })?;
    let stderr = lines.await.unwrap_or_default();
    if !status.success() {
        sinks.s3.abort().await;
        let tail = stderr.iter().rev().take(5).rev().cloned().collect::<Vec<_>>().join("; ");
        return Err(Error::Failed { status: status.to_string(), stderr: tail });
    }
    let (stop_lsn, stop_timeline) = match position(&mut conn).await {
        Ok(p) => p,
        Err(error) => {
            sinks.s3.abort().await;
            return Err(error);
        }
    };
    if stop_timeline != timeline {
        sinks.s3.abort().await;
        return Err(Error::Server(format!("the timeline changed during the backup ({timeline} to {stop_timeline})")));
    }
    sinks.s3.finish().await.map_err(|e| store_error(e.to_string()))?;
    let stopped_at = Timestamp::now();
    let size = target.s3.head_size(&key).await.map_err(|e| store_error(e.to_string()))?;
    if size != streamed.size {
        return Err(store_error(format!("{size} bytes stored, {} written", streamed.size)));
    }
    let manifest = BaseManifest {
        version: BASE_MANIFEST_VERSION,
        key: key.clone(),
        size,
        sha256: streamed.sha256,
        tar_size: tar_bytes.load(Ordering::Relaxed),
        start_lsn,
        stop_lsn,
        timeline,
        started_at,
        stopped_at,
        tool: "pg_basebackup".to_owned(),
        encryption: fingerprint.map(|f| Encryption {
            algorithm: envelope::ALGORITHM.to_owned(),
            key_fingerprint: f.to_string(),
            plaintext_size: streamed.plaintext_size,
        }),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| store_error(e.to_string()))?;
    Store::S3(target.s3.clone())
        .put_small(&base_manifest_key(&key), bytes, "application/json")
        .await
        .map_err(|e| store_error(e.to_string()))?;
    Ok(manifest)
}

/// The server's WAL insert position and timeline.
async fn position(conn: &mut PgConnection) -> Result<(Lsn, u32), Error> {
    let row: (String, String) =
        sqlx::query_as("SELECT pg_current_wal_insert_lsn()::text, pg_walfile_name(pg_current_wal_insert_lsn())")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::Server(e.to_string()))?;
    let lsn = row.0.parse().map_err(Error::Server)?;
    let timeline = super::wal::Segment::parse(&row.1)
        .map(|s| s.timeline)
        .ok_or_else(|| Error::Server(format!("odd WAL file name {}", row.1)))?;
    Ok((lsn, timeline))
}

/// What retention deletes: base backups past the age (never the newest `keep_last`), and every
/// WAL segment older than the oldest base backup kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Doomed {
    /// Base backups (their tar keys).
    pub bases: Vec<String>,
    /// The first segment number kept.
    pub keep_from: Option<u64>,
}

/// Decides retention (pure).
pub fn doomed(bases: &[BaseManifest], now: Timestamp, max_age_days: u32, keep_last: u32) -> Doomed {
    let mut newest_first: Vec<&BaseManifest> = bases.iter().collect();
    newest_first.sort_by_key(|b| std::cmp::Reverse(b.stopped_at));
    let cutoff = now - SignedDuration::from_hours(24 * i64::from(max_age_days));
    let (mut kept, mut gone) = (Vec::new(), Vec::new());
    for (i, base) in newest_first.into_iter().enumerate() {
        if i < keep_last.max(1) as usize || base.stopped_at >= cutoff {
            kept.push(base);
        } else {
            gone.push(base);
        }
    }
    Doomed {
        bases: gone.iter().map(|b| b.key.clone()).collect(),
        keep_from: kept.iter().map(|b| b.start_lsn.segment()).min(),
    }
}

/// Applies retention to the archive in `folder`: base backups older than `max_age_days` (never
/// the newest `keep_last`), and the WAL no kept one needs.
pub async fn retention(
    s3: &S3Store,
    folder: &str,
    (max_age_days, keep_last): (u32, u32),
    now: Timestamp,
) -> Result<(), store::Error> {
    let bases = manifests(s3, folder).await?;
    let doomed = doomed(&bases, now, max_age_days, keep_last);
    let store = Store::S3(s3.clone());
    for key in &doomed.bases {
        // The manifest first: a base backup without it is never used.
        store.delete(&base_manifest_key(key)).await?;
        store.delete(key).await?;
        tracing::info!(key, "base backup deleted by retention");
    }
    let Some(keep_from) = doomed.keep_from else { return Ok(()) };
    let mut deleted = 0usize;
    for object in store.list(&format!("{folder}/wal/")).await? {
        let old = match wal_name(folder, &object.key).as_deref().and_then(WalFile::parse) {
            Some(WalFile::Segment(s) | WalFile::Partial(s)) => s.number < keep_from,
            // History files are tiny and recovery reads them to follow timelines: kept.
            Some(WalFile::History(_)) | None => false,
        };
        if old {
            store.delete(&object.key).await?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "WAL segments no kept base backup needs deleted");
    }
    Ok(())
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            self.count.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(days_ago: i64, start_segment: u64) -> BaseManifest {
        let now: Timestamp = "2026-11-30T00:00:00Z".parse().expect("time");
        BaseManifest {
            version: 1,
            key: format!("b{days_ago}"),
            size: 1,
            sha256: String::new(),
            tar_size: 1,
            start_lsn: Lsn(start_segment * super::super::wal::SEGMENT_BYTES),
            stop_lsn: Lsn(start_segment * super::super::wal::SEGMENT_BYTES + 100),
            timeline: 1,
            started_at: now - SignedDuration::from_hours(24 * days_ago),
            stopped_at: now - SignedDuration::from_hours(24 * days_ago),
            tool: String::new(),
            encryption: None,
        }
    }

    #[test]
    fn retention_keeps_the_wal_of_every_base_backup_it_keeps() {
        let now: Timestamp = "2026-11-30T00:00:00Z".parse().expect("time");
        let bases = [base(40, 10), base(20, 50), base(1, 90)];
        let d = doomed(&bases, now, 30, 1);
        assert_eq!(d.bases, vec!["b40".to_owned()]);
        assert_eq!(d.keep_from, Some(50));
        let d = doomed(&bases, now, 7, 1);
        assert_eq!(d.bases, vec!["b20".to_owned(), "b40".to_owned()]);
        assert_eq!(d.keep_from, Some(90));
        let d = doomed(&bases, now, 0, 0);
        assert_eq!(d.bases.len(), 2, "the newest is always kept");
        assert_eq!(doomed(&[], now, 7, 3), Doomed::default());
    }
}
