//! Where the archive keeps what, and the records it writes: the shared vocabulary of the
//! archiver, the window, the fetch and the restore.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::wal::Lsn;

/// Longest manifest or marker read.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// The replication slot the archiver streams through.
pub const SLOT: &str = "securityguard_wal_archiver";

/// The folder of a guard's WAL archive and base backups: `<prefix>/<ns>/.pitr/<name>`.
pub fn folder(prefix: &str, guard: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    let (namespace, name) = match guard.rsplit_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, guard),
    };
    let mut parts: Vec<&str> = Vec::new();
    if !prefix.is_empty() {
        parts.push(prefix);
    }
    if let Some(namespace) = namespace {
        parts.push(namespace);
    }
    parts.push(".pitr");
    parts.push(name);
    parts.join("/")
}

/// Key of a WAL file (its name as PostgreSQL writes it) in the archive.
pub fn wal_key(folder: &str, name: &str) -> String {
    format!("{folder}/wal/{name}.gz")
}

/// The WAL file name of an archive key, if it is one.
pub fn wal_name(folder: &str, key: &str) -> Option<String> {
    key.strip_prefix(folder)?.strip_prefix("/wal/")?.strip_suffix(".gz").map(str::to_owned)
}

/// Key of the marker.
pub fn marker_key(folder: &str) -> String {
    format!("{folder}/wal/archived.json")
}

/// Key of a base backup's tar, by its start time.
pub fn base_key(folder: &str, started: Timestamp) -> String {
    format!("{folder}/base/{}.tar.gz", started.strftime("%Y%m%dT%H%M%SZ"))
}

/// Key of the manifest of the base backup `key`.
pub fn base_manifest_key(key: &str) -> String {
    format!("{}.base.json", key.strip_suffix(".tar.gz").unwrap_or(key))
}

/// A transaction the archiver commits so that recovery has a commit to stop at after any time
/// before it: a recovery target time T is reachable when a commit later than T is archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The server's clock inside the transaction (its commit comes after).
    pub at: Timestamp,
    /// The end of the WAL once it committed.
    pub lsn: Lsn,
}

impl Heartbeat {
    /// As S3 user metadata: `<time> <lsn>`.
    pub fn to_metadata(self) -> String {
        format!("{} {}", self.at, self.lsn)
    }

    /// From S3 user metadata.
    pub fn from_metadata(text: &str) -> Option<Heartbeat> {
        let (at, lsn) = text.split_once(' ')?;
        Some(Heartbeat { at: at.parse().ok()?, lsn: lsn.parse().ok()? })
    }
}

/// What the archiver last made safe, written after each pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    /// Every change committed before this time is in the bucket.
    pub through: Timestamp,
    /// The end of the WAL at that time.
    pub lsn: Lsn,
    /// The server's timeline.
    pub timeline: u32,
    /// The newest heartbeat in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
}

/// The manifest of a base backup, written once its tar is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseManifest {
    /// Format version.
    pub version: u32,
    /// Key of the tar.
    pub key: String,
    /// Bytes stored.
    pub size: u64,
    /// SHA-256 of the bytes stored.
    pub sha256: String,
    /// Bytes of the tar before compression.
    pub tar_size: u64,
    /// Where the WAL needed by the backup starts.
    pub start_lsn: Lsn,
    /// Where the backup became consistent: replay must reach it.
    pub stop_lsn: Lsn,
    /// The timeline it was taken on.
    pub timeline: u32,
    /// When `pg_basebackup` started.
    pub started_at: Timestamp,
    /// When it ended: the backup can recover to any time after this one.
    pub stopped_at: Timestamp,
    /// `pg_basebackup`'s version line.
    pub tool: String,
    /// The key that sealed the tar, when encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::backup::manifest::Encryption>,
}

/// Version of [`BaseManifest`] written.
pub const BASE_MANIFEST_VERSION: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_lives_beside_the_dumps_of_the_guard() {
        assert_eq!(folder("backups", "prod/sg"), "backups/prod/.pitr/sg");
        assert_eq!(folder("backups/", "sg"), "backups/.pitr/sg");
        assert_eq!(folder("", "prod/sg"), "prod/.pitr/sg");
        let f = folder("backups", "prod/sg");
        let key = wal_key(&f, "000000010000000000000003.partial");
        assert_eq!(key, "backups/prod/.pitr/sg/wal/000000010000000000000003.partial.gz");
        assert_eq!(wal_name(&f, &key).as_deref(), Some("000000010000000000000003.partial"));
        assert_eq!(wal_name(&f, "backups/prod/sg/x.gz"), None);
        let base = base_key(&f, "2026-11-30T10:00:00Z".parse().expect("time"));
        assert_eq!(base, "backups/prod/.pitr/sg/base/20261130T100000Z.tar.gz");
        assert_eq!(base_manifest_key(&base), "backups/prod/.pitr/sg/base/20261130T100000Z.base.json");
    }

    #[test]
    fn a_heartbeat_travels_as_metadata() {
        let beat = Heartbeat { at: "2026-11-30T10:00:01.25Z".parse().expect("time"), lsn: Lsn(0x300_0060) };
        assert_eq!(beat.to_metadata(), "2026-11-30T10:00:01.25Z 0/3000060");
        assert_eq!(Heartbeat::from_metadata(&beat.to_metadata()), Some(beat));
        assert_eq!(Heartbeat::from_metadata("nonsense"), None);
    }
}
