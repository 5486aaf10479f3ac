//! The manifest: a small JSON object written next to a dump, LAST, once the dump is complete.
//!
//! A dump without its manifest is never a good backup: the manifest is the proof that the upload
//! finished, and carries what a restore checks (size, SHA-256, row count per table).
//!
//! Encrypted backups: `size` and `sha256` (of the dump and of the config backup) are those of the
//! objects as stored, that is sealed. A restore checks them on the download, before anything is
//! decrypted; the envelope then authenticates every chunk of the plaintext
//! ([`super::envelope`]), so the plaintext needs no checksum of its own, and the manifest says
//! nothing about it that the bucket could not (equal dumps do not show as equal hashes).
//! `encryption` names the algorithm and the key's fingerprint, never the key. Such a manifest has
//! format version [`FORMAT_VERSION`] (2): an older operator refuses it instead of handing
//! ciphertext to `pg_restore`. Unencrypted backups keep version 1, which every operator reads.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Version of the manifest format this operator reads (and writes for encrypted backups); a
/// reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 2;

/// Version written for unencrypted backups, which operators before encryption read too.
pub const PLAIN_FORMAT_VERSION: u32 = 1;

/// The format version of a manifest with or without `encryption`.
pub fn format_version(encryption: Option<&Encryption>) -> u32 {
    if encryption.is_some() { FORMAT_VERSION } else { PLAIN_FORMAT_VERSION }
}

/// File name suffix of a dump (`pg_dump --format=custom`).
pub const DUMP_SUFFIX: &str = ".pgdump";

/// File name suffix of a manifest, appended to the dump's key.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// File name suffix of a config backup (the SecurityGuard and its ConfigMaps as YAML), appended
/// to the dump's key.
pub const CONFIG_SUFFIX: &str = ".config.yaml";

/// Largest manifest a reader accepts (row counts of thousands of tables fit easily).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Everything known about one completed backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Always [`Status::Completed`]: a failed backup writes no manifest.
    pub status: Status,
    /// The SecurityGuard whose database this is, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// Name of the dumped database.
    pub database: String,
    /// Key of the dump in the store that holds this manifest.
    pub key: String,
    /// Size of the dump in bytes, as stored (sealed, when encrypted).
    pub size: u64,
    /// SHA-256 of the dump as stored (sealed, when encrypted), lowercase hex.
    pub sha256: String,
    /// Rows per table (`schema.table`), counted in the snapshot that `pg_dump` dumped.
    pub row_counts: BTreeMap<String, u64>,
    /// `server_version` of the dumped PostgreSQL.
    pub postgres_version: String,
    /// `pg_dump --version`.
    pub pg_dump_version: String,
    /// Version of the operator that wrote the backup.
    pub operator_version: String,
    /// When the snapshot was taken.
    pub started_at: Timestamp,
    /// When the dump was completely stored.
    pub finished_at: Timestamp,
    /// The config backup stored with the dump, when one was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigFile>,
    /// How the dump and the config backup are encrypted; absent: they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// The client-side encryption of a backup's objects (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// The envelope's algorithm ([`super::envelope::ALGORITHM`]).
    pub algorithm: String,
    /// Fingerprint of the key that sealed them: `sha256:` and 16 hex digits.
    pub key_fingerprint: String,
    /// Size of the dump before encryption, in bytes.
    pub plaintext_size: u64,
}

/// A config backup covered by a manifest: the backup is good only if this object is stored
/// with exactly this size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    /// Its key ([`config_key`] of the dump's key).
    pub key: String,
    /// Its size in bytes, as stored (sealed, when encrypted).
    pub size: u64,
    /// Its SHA-256 as stored (sealed, when encrypted), lowercase hex.
    pub sha256: String,
    /// `Kind/name` of each object in it.
    pub objects: Vec<String>,
}

/// State recorded in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// The dump is complete and its size and SHA-256 are those recorded.
    Completed,
}

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON, or not a manifest.
    #[error("manifest {key} is not valid: {source}")]
    Parse {
        /// Key of the manifest.
        key: String,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer operator.
    #[error("manifest {key} has format version {found}, this operator reads up to {FORMAT_VERSION}")]
    Version {
        /// Key of the manifest.
        key: String,
        /// Its version.
        found: u32,
    },
}

impl Manifest {
    /// Parses a manifest read from `key`.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Self, Error> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|source| Error::Parse { key: key.to_owned(), source })?;
        if manifest.format_version > FORMAT_VERSION {
            return Err(Error::Version { key: key.to_owned(), found: manifest.format_version });
        }
        Ok(manifest)
    }

    /// The JSON text stored in the bucket (pretty, for humans reading it in a console).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and a map with string keys always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Key of the manifest of the dump at `dump_key`.
pub fn manifest_key(dump_key: &str) -> String {
    format!("{dump_key}{MANIFEST_SUFFIX}")
}

/// Key of the config backup stored with the dump at `dump_key`.
pub fn config_key(dump_key: &str) -> String {
    format!("{dump_key}{CONFIG_SUFFIX}")
}

/// Key of the dump a config backup at `config_key` belongs to, if it is one.
pub fn dump_key_of_config(config_key: &str) -> Option<&str> {
    config_key.strip_suffix(CONFIG_SUFFIX).filter(|dump| dump.ends_with(DUMP_SUFFIX))
}

/// Key of the dump described by the manifest at `manifest_key`, if it is one.
pub fn dump_key_of(manifest_key: &str) -> Option<&str> {
    manifest_key.strip_suffix(MANIFEST_SUFFIX)
}

/// Key of a new dump: `<prefix>/<guard>/<UTC time>.pgdump`, sortable by time.
pub fn new_dump_key(prefix: &str, guard: Option<&str>, at: Timestamp) -> String {
    let time = at.strftime("%Y%m%dT%H%M%S").to_string();
    let millis = at.subsec_millisecond();
    let name = format!("{time}.{millis:03}Z{DUMP_SUFFIX}");
    join_key(&[prefix, guard.unwrap_or("")], &name)
}

/// The folder in which the backups of `guard` (or of every guard) live.
pub fn folder(prefix: &str, guard: Option<&str>) -> String {
    join_key(&[prefix, guard.unwrap_or("")], "")
}

fn join_key(folders: &[&str], name: &str) -> String {
    let mut key = String::new();
    for folder in folders {
        let folder = folder.trim_matches('/');
        if !folder.is_empty() {
            key.push_str(folder);
            key.push('/');
        }
    }
    key.push_str(name);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format_version: PLAIN_FORMAT_VERSION,
            status: Status::Completed,
            guard: Some("prod".into()),
            database: "securityguard".into(),
            key: "backups/prod/20261125T090000.123Z.pgdump".into(),
            size: 42,
            sha256: "ab".repeat(32),
            row_counts: BTreeMap::from([("public.users".into(), 3)]),
            postgres_version: "15.8".into(),
            pg_dump_version: "pg_dump (PostgreSQL) 15.8".into(),
            operator_version: "0.1.0".into(),
            started_at: "2026-11-25T09:00:00.123Z".parse().expect("time"),
            finished_at: "2026-11-25T09:00:05Z".parse().expect("time"),
            config: None,
            encryption: None,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let manifest = sample();
        let parsed = Manifest::parse("k", &manifest.to_json()).expect("parse");
        assert_eq!(parsed, manifest);
        let value: serde_json::Value = serde_json::from_slice(&manifest.to_json()).expect("json");
        assert_eq!(value["status"], "completed");
        assert_eq!(value["rowCounts"]["public.users"], 3);
        assert_eq!(value["startedAt"], "2026-11-25T09:00:00.123Z");
        assert!(value.get("config").is_none(), "no config key without a config backup");
        assert!(value.get("encryption").is_none(), "no encryption key for a plain backup");
    }

    #[test]
    fn an_encrypted_backup_names_its_key_by_fingerprint_and_is_version_2() {
        let mut manifest = sample();
        manifest.encryption = Some(Encryption {
            algorithm: "chacha20poly1305-stream-64k".into(),
            key_fingerprint: "sha256:0123456789abcdef".into(),
            plaintext_size: 10,
        });
        manifest.format_version = format_version(manifest.encryption.as_ref());
        let value: serde_json::Value = serde_json::from_slice(&manifest.to_json()).expect("json");
        assert_eq!(value["formatVersion"], 2);
        assert_eq!(
            value["encryption"],
            serde_json::json!({"algorithm": "chacha20poly1305-stream-64k",
                               "keyFingerprint": "sha256:0123456789abcdef", "plaintextSize": 10})
        );
        assert_eq!(Manifest::parse("k", &manifest.to_json()).expect("parse"), manifest);
        assert_eq!(format_version(None), 1, "plain backups stay readable by older operators");
    }

    #[test]
    fn a_config_backup_is_recorded() {
        let mut manifest = sample();
        manifest.config = Some(ConfigFile {
            key: config_key(&manifest.key),
            size: 7,
            sha256: "cd".repeat(32),
            objects: vec!["SecurityGuard/prod".into(), "ConfigMap/prod-api".into()],
        });
        let value: serde_json::Value = serde_json::from_slice(&manifest.to_json()).expect("json");
        assert_eq!(
            value["config"],
            serde_json::json!({"key": "backups/prod/20261125T090000.123Z.pgdump.config.yaml", "size": 7,
                               "sha256": "cd".repeat(32), "objects": ["SecurityGuard/prod", "ConfigMap/prod-api"]})
        );
        assert_eq!(Manifest::parse("k", &manifest.to_json()).expect("parse"), manifest);
    }

    #[test]
    fn refuses_newer_format_and_garbage() {
        let mut manifest = sample();
        manifest.format_version = FORMAT_VERSION + 1;
        let error = Manifest::parse("k.manifest.json", &manifest.to_json()).expect_err("newer");
        assert!(error.to_string().contains("k.manifest.json has format version 3"), "{error}");
        let error = Manifest::parse("k", b"{\"size\": 1}").expect_err("garbage");
        assert!(error.to_string().starts_with("manifest k is not valid"), "{error}");
    }

    #[test]
    fn keys() {
        let at: Timestamp = "2026-11-25T09:00:07.045Z".parse().expect("time");
        assert_eq!(new_dump_key("/backups/", Some("prod"), at), "backups/prod/20261125T090007.045Z.pgdump");
        assert_eq!(new_dump_key("", None, at), "20261125T090007.045Z.pgdump");
        assert_eq!(folder("backups", Some("prod")), "backups/prod/");
        assert_eq!(folder("backups", None), "backups/");
        assert_eq!(folder("", None), "");
        let manifest = manifest_key("a/b.pgdump");
        assert_eq!(manifest, "a/b.pgdump.manifest.json");
        assert_eq!(dump_key_of(&manifest), Some("a/b.pgdump"));
        assert_eq!(dump_key_of("a/b.pgdump"), None);
        assert_eq!(config_key("a/b.pgdump"), "a/b.pgdump.config.yaml");
        assert_eq!(dump_key_of_config("a/b.pgdump.config.yaml"), Some("a/b.pgdump"));
        assert_eq!(dump_key_of_config("a/b.config.yaml"), None);
    }
}
