//! Streaming a dump into the stores in constant memory: fixed-size parts read from `pg_dump`,
//! hashed on the way, sent as S3 multipart parts (a bounded number in flight) and appended to a
//! local `.partial` file. Nothing is visible under the final key until every byte is stored.

use std::path::PathBuf;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::envelope::{self, SealError, Sealer};
use super::store::{self, Error, LocalStore, S3Store, ServerSideEncryption};

/// Parts uploaded at the same time. Memory is bounded by `(PARTS_IN_FLIGHT + 1) * part size`:
/// the parts in flight and the one being read.
pub const PARTS_IN_FLIGHT: usize = 2;

/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// S3's largest number of parts in one upload.
pub const MAX_PARTS: i32 = 10_000;

/// Bytes read from the source at a time.
const READ_SIZE: usize = 256 * 1024;

/// A multipart upload under way.
pub struct MultipartUpload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    next_part: i32,
    done: Vec<CompletedPart>,
    in_flight: JoinSet<Result<CompletedPart, Error>>,
}

impl MultipartUpload {
    /// Starts an upload to `key`, with the store's server-side encryption (the parts need no
    /// header of their own).
    pub async fn start(s3: &S3Store, key: &str) -> Result<Self, Error> {
        let output = s3
            .client
            .create_multipart_upload()
            .bucket(&s3.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .set_server_side_encryption(s3.server_side_encryption.as_ref().map(ServerSideEncryption::header))
            .set_ssekms_key_id(s3.server_side_encryption.as_ref().and_then(ServerSideEncryption::kms_key_id))
            .send()
            .await
            .map_err(|e| Error::s3("CreateMultipartUpload", &s3.bucket, key, e))?;
        let upload_id = output.upload_id().unwrap_or_default().to_owned();
        Ok(MultipartUpload {
            client: s3.client.clone(),
            bucket: s3.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            next_part: 1,
            done: Vec::new(),
            in_flight: JoinSet::new(),
        })
    }

    /// Sends one part, waiting first while [`PARTS_IN_FLIGHT`] parts are still being sent.
    pub async fn push(&mut self, data: Vec<u8>) -> Result<(), Error> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.collect_one().await?;
        }
        if self.next_part > MAX_PARTS {
            return Err(Error::S3 {
                operation: "UploadPart",
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                detail: format!("more than {MAX_PARTS} parts: raise --part-size-mib"),
            });
        }
        let number = self.next_part;
        self.next_part += 1;
        let (client, bucket, key, upload_id) =
            (self.client.clone(), self.bucket.clone(), self.key.clone(), self.upload_id.clone());
        self.in_flight.spawn(async move {
            let output = client
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| Error::s3("UploadPart", &bucket, &format!("{key} (part {number})"), e))?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(output.e_tag().map(str::to_owned)).build())
        });
        Ok(())
    }

    async fn collect_one(&mut self) -> Result<(), Error> {
        match self.in_flight.join_next().await {
            Some(Ok(part)) => {
                self.done.push(part?);
                Ok(())
            }
            Some(Err(join)) => Err(Error::S3 {
                operation: "UploadPart",
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                detail: format!("the upload task failed: {join}"),
            }),
            None => Ok(()),
        }
    }

    /// Waits for the parts in flight and completes the upload: the object appears only now.
    pub async fn finish(&mut self) -> Result<(), Error> {
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        self.done.sort_by_key(|p| p.part_number());
        let parts = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.done))).build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| Error::s3("CompleteMultipartUpload", &self.bucket, &self.key, e))?;
        Ok(())
    }

    /// Abandons the upload: parts in flight are cancelled and the stored parts discarded. An
    /// abort that fails too (the server is unreachable) leaves parts that only a bucket
    /// lifecycle rule (`AbortIncompleteMultipartUpload`) removes; it is logged, not fatal.
    pub async fn abort(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(key = %self.key, "aborted the multipart upload"),
            Err(e) => {
                let error = Error::s3("AbortMultipartUpload", &self.bucket, &self.key, e);
                tracing::warn!(%error, "could not abort the multipart upload");
            }
        }
    }
}

/// A dump being written to the local tier as `<key>.partial`, renamed when complete.
pub struct LocalWriter {
    file: tokio::fs::File,
    partial: PathBuf,
    path: PathBuf,
}

impl LocalWriter {
    /// Creates `<key>.partial`.
    pub async fn start(local: &LocalStore, key: &str) -> Result<Self, Error> {
        let path = local.path(key);
        store::create_parent(&path).await?;
        let partial = store::partial_path(&path);
        let file = tokio::fs::File::create(&partial).await.map_err(|e| Error::local("creating", &partial, e))?;
        Ok(LocalWriter { file, partial, path })
    }

    /// Appends bytes.
    pub async fn push(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file.write_all(data).await.map_err(|e| Error::local("writing", &self.partial, e))
    }

    /// Syncs and renames to the final name.
    pub async fn finish(&mut self) -> Result<(), Error> {
        self.file.flush().await.map_err(|e| Error::local("writing", &self.partial, e))?;
        self.file.sync_all().await.map_err(|e| Error::local("syncing", &self.partial, e))?;
        tokio::fs::rename(&self.partial, &self.path).await.map_err(|e| Error::local("renaming", &self.partial, e))
    }

    /// Removes the partial file.
    pub async fn abort(&mut self) {
        if let Err(error) = tokio::fs::remove_file(&self.partial).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.partial.display(), %error, "could not remove the partial dump");
        }
    }
}

/// Where the dump goes.
pub struct Sinks {
    /// The S3 upload.
    pub s3: MultipartUpload,
    /// The local copy, if any.
    pub local: Option<LocalWriter>,
}

/// What was streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    /// Bytes stored (sealed, when encrypted).
    pub size: u64,
    /// SHA-256 of the bytes stored, lowercase hex.
    pub sha256: String,
    /// Parts sent to S3.
    pub parts: u32,
    /// Bytes read from the source (before sealing).
    pub plaintext_size: u64,
}

/// Reading the dump failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading `pg_dump`'s output failed.
    #[error("reading the output of pg_dump failed: {0}")]
    Read(#[source] std::io::Error),
    /// Encrypting failed.
    #[error("encrypting failed: {0}")]
    Seal(#[source] SealError),
    /// A store refused a part.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Copies `reader` to the sinks in parts of `part_size` bytes, sealed by `sealer` when given
/// (encrypted), hashing what is stored on the way. Every part but the last is exactly
/// `part_size` bytes.
pub async fn stream(
    mut reader: impl AsyncRead + Unpin,
    part_size: usize,
    sinks: &mut Sinks,
    mut sealer: Option<Sealer>,
) -> Result<Streamed, StreamError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut plaintext_size = 0u64;
    let mut parts = 0u32;
    let mut chunk = vec![0u8; READ_SIZE];
    let mut sealed = Vec::with_capacity(READ_SIZE + envelope::HEADER_LEN + envelope::CHUNK + envelope::TAG);
    let mut part = Vec::with_capacity(part_size);
    loop {
        let n = reader.read(&mut chunk).await.map_err(StreamError::Read)?;
        let eof = n == 0;
        plaintext_size += n as u64;
        let bytes: &[u8] = match &mut sealer {
            None => &chunk[..n],
            Some(sealer) => {
                sealed.clear();
                if eof {
                    sealer.finish(&mut sealed).map_err(StreamError::Seal)?;
                } else {
                    sealer.push(&chunk[..n], &mut sealed).map_err(StreamError::Seal)?;
                }
                &sealed
            }
        };
        hasher.update(bytes);
        size += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (part_size - part.len()).min(rest.len());
            part.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if part.len() == part_size {
                let full = std::mem::replace(&mut part, Vec::with_capacity(part_size));
                send(sinks, full).await?;
                parts += 1;
                tracing::info!(bytes = size, parts, "dump progress");
            }
        }
        if eof {
            if !part.is_empty() || parts == 0 {
                send(sinks, std::mem::take(&mut part)).await?;
                parts += 1;
                tracing::info!(bytes = size, parts, "dump progress");
            }
            return Ok(Streamed { size, sha256: hex::encode(hasher.finalize()), parts, plaintext_size });
        }
    }
}

/// One part to every sink.
async fn send(sinks: &mut Sinks, part: Vec<u8>) -> Result<(), StreamError> {
    if let Some(local) = &mut sinks.local {
        local.push(&part).await?;
    }
    sinks.s3.push(part).await?;
    Ok(())
}
