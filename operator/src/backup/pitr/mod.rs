//! Point-in-time recovery of the managed PostgreSQL: continuous archiving of the write-ahead log
//! (WAL) and base backups, in the same bucket and prefix as the dumps.
//!
//! For the guard `<ns>/<name>` and the prefix `P`, the folder `P/<ns>/.pitr/<name>/` (beside the
//! dumps' folder, so that listing the dumps never pages through the WAL) holds:
//!
//! - `wal/<segment>.gz`: each complete 16 MiB segment, gzip-compressed (sealed when a key file
//!   is given), with its SHA-256 as S3 user metadata `sha256` and, when it holds one, the newest
//!   heartbeat inside it as `heartbeat` ([`Heartbeat`]);
//! - `wal/<segment>.partial.gz`: the segment still being written, uploaded again whenever it grew,
//!   so that the archive trails the database by seconds, not by a segment;
//! - `wal/<timeline>.history.gz`: the history of each timeline begun by a promotion;
//! - `wal/archived.json`: [`Marker`], written after every pass of the archiver;
//! - `base/<UTC time>.tar.gz` and, LAST, `base/<UTC time>.base.json` ([`BaseManifest`]): a base
//!   backup (`pg_basebackup` of the whole cluster, WAL left to the archive).
//!
//! The sidecar [`archive`] streams the WAL with `pg_receivewal` through a replication slot (the
//! server keeps what the archiver has not received), spools it on the data volume (what is not
//! uploaded survives restarts and S3 outages), uploads it, and takes the base backups. A
//! recovery target time needs a commit after it in the WAL: the archiver commits a
//! [`Heartbeat`] transaction on each pass that follows new WAL, and the recoverable window
//! ([`window`]) ends at the newest heartbeat that reached the bucket through an unbroken chain of
//! segments. [`recover`] restores a base backup beside the live data, replays the WAL up to the
//! target with a private server, checks it and only then swaps it in; [`fetch`] is the
//! `restore_command` it gives PostgreSQL.

pub mod archive;
pub mod base;
pub mod fetch;
pub mod layout;
pub mod recover;
pub mod wal;
pub mod window;

pub use layout::{
    BASE_MANIFEST_VERSION, BaseManifest, Heartbeat, MAX_RECORD_BYTES, Marker, SLOT, base_key, base_manifest_key,
    folder, marker_key, wal_key, wal_name,
};
