//! Backups of the SecurityGuard database, the data path of the backup and restore Jobs.
//!
//! A store (an S3 bucket, or a local directory on a PersistentVolume) holds, per backup:
//!
//! - `<prefix>/<guard>/<UTC time>.pgdump`: `pg_dump --format=custom`, streamed in constant memory;
//! - `<that key>.config.yaml` (with `--config-backup`): the SecurityGuard and its ConfigMaps as
//!   YAML, never Secrets; its size and SHA-256 are in the manifest;
//! - `<that key>.manifest.json`: written LAST, with size, SHA-256 and row counts per table.
//!
//! Beside them, `<prefix>/<guard>/restores/<requestId>.restore.json`: the restore ledger
//! ([`ledger`]), one record per restore request handled, so that a request runs once even
//! across a SecurityGuard deleted and re-created.
//!
//! A dump without its manifest is never a good backup. Restores verify the dump against the
//! manifest before touching any database.
//!
//! With `--encryption-key-file` (`spec.backup.encryption`), the dump, the config backup and the
//! log archives are encrypted in the pod before they are stored, in every tier
//! ([`envelope`]); the manifest names the key by its fingerprint. Server-side encryption by S3
//! (SSE-S3, SSE-KMS) is asked on every write when set ([`store::ServerSideEncryption`]).
//!
//! The dump is not compressed again: the custom format already compresses each table's data
//! with zlib. Measured on a 104 MB database of scan-like rows (PostgreSQL 15): `pg_dump -Fc`
//! 24.5 MB in 5.8 s; piped through `zstd -3` 24.3 MB (-0.6 %) or `gzip -6` 24.3 MB, each
//! taking about twice as long; `-Z0 | zstd -3` 23.5 MB (-4 %) at about the same time on one
//! core. Not worth a second codec on both ends, nor an object that `pg_restore` no longer
//! reads directly.

pub mod catalog;
pub mod config;
pub mod create;
pub mod decrypt;
pub mod drill;
pub mod envelope;
pub mod ledger;
pub mod list;
pub mod logs;
pub mod manifest;
pub mod pg;
pub mod pitr;
pub mod restore;
pub mod retention;
pub mod store;
pub mod summary;
pub mod tools;
pub mod upload;
