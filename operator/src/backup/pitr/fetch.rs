//! Reading WAL files back from the archive: `securityguard-operator wal fetch NAME DEST`, the
//! `restore_command` a point-in-time recovery gives PostgreSQL, and the helpers the window and
//! the archiver share.
//!
//! Every object is checked against the SHA-256 the archiver stored with it, then opened (when
//! sealed) and decompressed. A segment asked for that only exists as `.partial` (the last one
//! archived) is served from the partial: the zeros after its last record end the replay there.
//! PostgreSQL asks for files that do not exist (the next timeline's history, the segment after
//! the last): those exit 1 quietly, as the protocol wants.

use std::io::Read;
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

use super::layout::{Heartbeat, wal_key};
use super::wal::{Segment, WalFile};
use crate::backup::envelope::{self, Keyring};
use crate::backup::store::{self, S3Store};

/// Largest stored WAL file read (a 16 MiB segment, sealed, incompressible).
const MAX_STORED: usize = 20 * 1024 * 1024;
/// Largest WAL file written (a segment).
const MAX_PLAIN: u64 = 17 * 1024 * 1024;

/// Fetching a WAL file failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive has no such file.
    #[error("{0} is not in the archive")]
    Absent(String),
    /// The bucket could not be read.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The object is not what the archiver stored.
    #[error("{key} is damaged: {why}")]
    Damaged {
        /// The object.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The object is encrypted and cannot be opened.
    #[error("{key} cannot be decrypted: {why}")]
    Sealed {
        /// The object.
        key: String,
        /// Why.
        why: String,
    },
    /// Writing the file failed.
    #[error("writing {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Compresses (and seals) a WAL file's content as stored: returns the bytes and their SHA-256.
pub fn pack(content: &[u8], keyring: Option<&Keyring>) -> Result<(Vec<u8>, String), String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(content.len() / 4), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, content).map_err(|e| format!("compressing: {e}"))?;
    let gz = encoder.finish().map_err(|e| format!("compressing: {e}"))?;
    let stored = match keyring {
        Some(keys) => envelope::seal(keys.current(), &gz).map_err(|e| format!("encrypting: {e}"))?,
        None => gz,
    };
    let sha = hex::encode(Sha256::digest(&stored));
    Ok((stored, sha))
}

/// Reverses [`pack`] after checking the SHA-256 recorded at upload (`expected`).
pub fn unpack(key: &str, stored: &[u8], expected: Option<&str>, keyring: Option<&Keyring>) -> Result<Vec<u8>, Error> {
    let damaged = |why: String| Error::Damaged { key: key.to_owned(), why };
    if let Some(expected) = expected {
        let found = hex::encode(Sha256::digest(stored));
        if found != expected {
            return Err(damaged(format!("its SHA-256 is {found}, {expected} was stored")));
        }
    }
    let opened;
    let gz: &[u8] = if envelope::is_sealed(stored) {
        let keys = keyring.ok_or_else(|| Error::Sealed {
            key: key.to_owned(),
            why: format!(
                "it is encrypted with key {} and no key file was given",
                envelope::sealed_with(stored).map(|f| f.to_string()).unwrap_or_default()
            ),
        })?;
        opened = envelope::open(keys, stored).map_err(|e| Error::Sealed { key: key.to_owned(), why: e.to_string() })?;
        &opened
    } else {
        stored
    };
    let mut content = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(MAX_PLAIN)
        .read_to_end(&mut content)
        .map_err(|e| damaged(format!("it does not decompress: {e}")))?;
    Ok(content)
}

/// The content of the WAL file `name` (checked, opened, decompressed).
pub async fn get_wal(s3: &S3Store, folder: &str, name: &str, keyring: Option<&Keyring>) -> Result<Vec<u8>, Error> {
    let key = wal_key(folder, name);
    let output = match s3.client.get_object().bucket(&s3.bucket).key(&key).send().await {
        Ok(output) => output,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            return Err(Error::Absent(name.to_owned()));
        }
        Err(e) => return Err(store::Error::s3("GetObject", &s3.bucket, &key, e).into()),
    };
    let expected = output.metadata().and_then(|m| m.get("sha256")).cloned();
    let stored = collect(output.body, &s3.bucket, &key).await?;
    unpack(&key, &stored, expected.as_deref(), keyring)
}

async fn collect(body: ByteStream, bucket: &str, key: &str) -> Result<Vec<u8>, Error> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(bytes) = body.try_next().await.map_err(|e| store::Error::s3("GetObject (body)", bucket, key, e))? {
        if out.len() + bytes.len() > MAX_STORED {
            return Err(Error::Damaged { key: key.to_owned(), why: format!("it is larger than {MAX_STORED} bytes") });
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// The heartbeat stored with a complete segment, if any.
pub async fn heartbeat_of(s3: &S3Store, folder: &str, segment: Segment) -> Result<Option<Heartbeat>, store::Error> {
    let key = wal_key(folder, &segment.name());
    match s3.client.head_object().bucket(&s3.bucket).key(&key).send().await {
        Ok(output) => Ok(output.metadata().and_then(|m| m.get("heartbeat")).and_then(|h| Heartbeat::from_metadata(h))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(store::Error::s3("HeadObject", &s3.bucket, &key, e)),
    }
}

/// `wal fetch NAME DEST`: writes the WAL file `name` to `dest` (through a temporary file and a
/// rename, so that PostgreSQL never reads half a file). A segment stored only as `.partial` is
/// served from it.
pub async fn fetch(
    s3: &S3Store,
    folder: &str,
    name: &str,
    dest: &Path,
    keyring: Option<&Keyring>,
) -> Result<u64, Error> {
    let content = match get_wal(s3, folder, name, keyring).await {
        Err(Error::Absent(_)) if matches!(WalFile::parse(name), Some(WalFile::Segment(_))) => {
            get_wal(s3, folder, &format!("{name}.partial"), keyring).await.map_err(|e| match e {
                Error::Absent(_) => Error::Absent(name.to_owned()),
                other => other,
            })?
        }
        other => other?,
    };
    let mut temporary = dest.as_os_str().to_owned();
    temporary.push(".fetching");
    let temporary = PathBuf::from(temporary);
    let write = |e| Error::Write { path: dest.to_owned(), source: e };
    tokio::fs::write(&temporary, &content).await.map_err(write)?;
    tokio::fs::rename(&temporary, dest).await.map_err(write)?;
    Ok(content.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_refuses_what_was_altered() {
        let content: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let (stored, sha) = pack(&content, None).expect("pack");
        assert!(stored.len() < content.len());
        assert_eq!(unpack("k", &stored, Some(&sha), None).expect("unpack"), content);
        let mut altered = stored.clone();
        altered[20] ^= 1;
        assert!(matches!(unpack("k", &altered, Some(&sha), None), Err(Error::Damaged { .. })));
        assert!(matches!(unpack("k", &altered, None, None), Err(Error::Damaged { .. })), "gzip's CRC still catches it");
    }

    #[test]
    fn sealed_wal_needs_its_key() {
        let keys = Keyring::parse(format!("{}\n", "ab".repeat(32)).as_bytes(), "test").expect("keys");
        let other = Keyring::parse(format!("{}\n", "cd".repeat(32)).as_bytes(), "test").expect("keys");
        let (stored, sha) = pack(b"segment", Some(&keys)).expect("pack");
        assert!(envelope::is_sealed(&stored));
        assert_eq!(unpack("k", &stored, Some(&sha), Some(&keys)).expect("opens"), b"segment");
        assert!(matches!(unpack("k", &stored, Some(&sha), None), Err(Error::Sealed { .. })));
        assert!(matches!(unpack("k", &stored, Some(&sha), Some(&other)), Err(Error::Sealed { .. })));
    }
}
