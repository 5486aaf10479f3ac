//! Where backups live: an S3 bucket, or a local directory (the PVC tier). Both hold the same keys
//! (`<prefix>/<guard>/<time>.pgdump` and its manifest), so a listing or a restore works the same
//! on either.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption as SseHeader;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Suffix of a local file still being written; never listed.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// How to reach the S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint of an S3-compatible server; `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (signing region for S3-compatible servers).
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Server-side encryption asked for every object written.
    pub server_side_encryption: Option<ServerSideEncryption>,
}

/// Server-side encryption asked of S3 for every object written (`PutObject`,
/// `CreateMultipartUpload`); reads need nothing. It protects the objects at rest inside S3 from
/// whoever reads its disks, not from whoever may read the bucket: that is what the client-side
/// encryption of [`super::envelope`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// SSE-S3: keys managed by S3 (`x-amz-server-side-encryption: AES256`).
    S3,
    /// SSE-KMS with this AWS KMS key (id, ARN or alias; `aws:kms`).
    Kms {
        /// The key.
        key_id: String,
    },
}

impl ServerSideEncryption {
    /// The `x-amz-server-side-encryption` header.
    pub fn header(&self) -> SseHeader {
        match self {
            ServerSideEncryption::S3 => SseHeader::Aes256,
            ServerSideEncryption::Kms { .. } => SseHeader::AwsKms,
        }
    }

    /// The `x-amz-server-side-encryption-aws-kms-key-id` header.
    pub fn kms_key_id(&self) -> Option<String> {
        match self {
            ServerSideEncryption::S3 => None,
            ServerSideEncryption::Kms { key_id } => Some(key_id.clone()),
        }
    }
}

/// Where to read backups from: the bucket when one is named, else the local tier.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceStore {
    /// The bucket, and how to reach it.
    pub s3: Option<S3Options>,
    /// The directory of the local tier, read only when no bucket is named.
    pub local_dir: Option<PathBuf>,
}

impl SourceStore {
    /// Opens the bucket, else the local directory; `None` when neither is named.
    pub async fn open(&self) -> Option<Store> {
        match (&self.s3, &self.local_dir) {
            (Some(s3), _) => Some(Store::s3(s3).await),
            (None, Some(dir)) => Some(Store::local(dir.clone())),
            (None, None) => None,
        }
    }
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, when the store says.
    pub modified: Option<Timestamp>,
}

/// A failed store operation, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An S3 call failed (after the SDK's retries).
    #[error("S3 {operation} of s3://{bucket}/{key} failed: {detail}")]
    S3 {
        /// The S3 operation.
        operation: &'static str,
        /// Bucket.
        bucket: String,
        /// Key (or prefix).
        key: String,
        /// The SDK's error with its causes.
        detail: String,
    },
    /// A local file operation failed.
    #[error("{operation} {} failed: {source}", .path.display())]
    Local {
        /// What was done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The object does not exist.
    #[error("{location} does not exist")]
    NotFound {
        /// Where it was looked for.
        location: String,
    },
    /// The object is larger than the caller accepts.
    #[error("{location} is larger than {max} bytes")]
    TooLarge {
        /// The object.
        location: String,
        /// The limit.
        max: u64,
    },
}

impl Error {
    pub(crate) fn s3(operation: &'static str, bucket: &str, key: &str, error: impl std::error::Error) -> Self {
        Error::S3 {
            operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail: DisplayErrorContext(error).to_string(),
        }
    }

    pub(crate) fn local(operation: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Local { operation, path: path.to_owned(), source }
    }
}

/// A bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    /// The client.
    pub client: Client,
    /// The bucket.
    pub bucket: String,
    /// Server-side encryption of the objects written.
    pub server_side_encryption: Option<ServerSideEncryption>,
}

/// A local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    /// The directory under which keys are relative paths.
    pub root: PathBuf,
}

/// Either tier.
#[derive(Debug, Clone)]
pub enum Store {
    /// Object storage.
    S3(S3Store),
    /// A directory (a PersistentVolume in a cluster).
    Local(LocalStore),
}

/// The SDK's HTTP client, with rustls on ring (the TLS stack of the kube client).
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The S3 client for `options`. Credentials come from the SDK's default chain: the
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment (from a Secret) first.
pub async fn s3_client(options: &S3Options) -> Client {
    s3_client_with(options, None).await
}

/// Static S3 credentials (read from a Secret by the kubectl plugin). Debug never shows the secret.
#[derive(Clone)]
pub struct StaticCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// The S3 client for `options`, with `credentials` when given, else the SDK's default chain.
pub async fn s3_client_with(options: &S3Options, credentials: Option<StaticCredentials>) -> Client {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        // One part of at most 64 MiB per attempt; the SDK retries a failed attempt.
        .operation_attempt_timeout(Duration::from_secs(300))
        .build();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(options.region.clone()))
        .timeout_config(timeouts)
        .load()
        .await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(options.path_style)
        // Integrity is end to end (SHA-256 in the manifest, checked before a restore); the
        // newer default CRC trailers are not understood by every S3-compatible server.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &options.endpoint {
        config = config.endpoint_url(endpoint);
    }
    if let Some(credentials) = credentials {
        config = config.credentials_provider(aws_sdk_s3::config::Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            None,
            None,
            "kubernetes-secret",
        ));
    }
    Client::from_conf(config.build())
}

impl Store {
    /// The S3 tier.
    pub async fn s3(options: &S3Options) -> Self {
        Store::S3(S3Store::connect(options).await)
    }

    /// The local tier.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Store::Local(LocalStore { root: root.into() })
    }

    /// `s3://bucket/key` or the local path, for messages.
    pub fn location(&self, key: &str) -> String {
        match self {
            Store::S3(s3) => format!("s3://{}/{key}", s3.bucket),
            Store::Local(local) => local.path(key).display().to_string(),
        }
    }

    /// `S3` or `local`, for logs.
    pub fn tier(&self) -> &'static str {
        match self {
            Store::S3(_) => "s3",
            Store::Local(_) => "local",
        }
    }

    /// Every object whose key starts with `prefix`, in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, Error> {
        match self {
            Store::S3(s3) => s3.list(prefix).await,
            Store::Local(local) => local.list(prefix).await,
        }
    }

    /// The whole content of a small object (a manifest), refusing more than `max` bytes.
    pub async fn read_small(&self, key: &str, max: u64) -> Result<Vec<u8>, Error> {
        let mut reader = self.open(key).await?;
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        while reader.next_chunk(&mut chunk).await? {
            if out.len() as u64 + chunk.len() as u64 > max {
                return Err(Error::TooLarge { location: self.location(key), max });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Writes a small object in one request (local: atomically, through a rename).
    pub async fn put_small(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Error> {
        match self {
            Store::S3(s3) => {
                s3.client
                    .put_object()
                    .bucket(&s3.bucket)
                    .key(key)
                    .content_type(content_type)
                    .set_server_side_encryption(s3.server_side_encryption.as_ref().map(ServerSideEncryption::header))
                    .set_ssekms_key_id(s3.server_side_encryption.as_ref().and_then(ServerSideEncryption::kms_key_id))
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| Error::s3("PutObject", &s3.bucket, key, e))?;
                Ok(())
            }
            Store::Local(local) => {
                let path = local.path(key);
                let partial = partial_path(&path);
                create_parent(&path).await?;
                let mut file =
                    tokio::fs::File::create(&partial).await.map_err(|e| Error::local("creating", &partial, e))?;
                file.write_all(&bytes).await.map_err(|e| Error::local("writing", &partial, e))?;
                file.sync_all().await.map_err(|e| Error::local("syncing", &partial, e))?;
                tokio::fs::rename(&partial, &path).await.map_err(|e| Error::local("renaming", &partial, e))?;
                Ok(())
            }
        }
    }

    /// Streams an object into the file at `path` (created or truncated), returning its size and
    /// SHA-256 (lowercase hex), in constant memory.
    pub async fn download(&self, key: &str, path: &Path) -> Result<(u64, String), Error> {
        self.download_with(key, path, |chunk, out| out.extend_from_slice(chunk.unwrap_or_default())).await
    }

    /// Streams an object through `transform` into the file at `path` (created or truncated),
    /// returning the size and SHA-256 (lowercase hex) of the object as stored, in constant memory.
    /// `transform` gets each chunk read (`None` once at the end) and appends what to write.
    pub async fn download_with(
        &self,
        key: &str,
        path: &Path,
        mut transform: impl FnMut(Option<&[u8]>, &mut Vec<u8>),
    ) -> Result<(u64, String), Error> {
        let mut reader = self.open(key).await?;
        let mut file = tokio::fs::File::create(path).await.map_err(|e| Error::local("creating", path, e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut chunk = Vec::new();
        let mut out = Vec::new();
        loop {
            let more = reader.next_chunk(&mut chunk).await?;
            out.clear();
            if more {
                hasher.update(&chunk);
                size += chunk.len() as u64;
                transform(Some(&chunk), &mut out);
            } else {
                transform(None, &mut out);
            }
            file.write_all(&out).await.map_err(|e| Error::local("writing", path, e))?;
            if !more {
                break;
            }
        }
        file.flush().await.map_err(|e| Error::local("writing", path, e))?;
        Ok((size, hex::encode(hasher.finalize())))
    }

    async fn open(&self, key: &str) -> Result<Reader, Error> {
        match self {
            Store::S3(s3) => {
                Ok(Reader::S3 { body: s3.get(key).await?, bucket: s3.bucket.clone(), key: key.to_owned() })
            }
            Store::Local(local) => {
                let path = local.path(key);
                Ok(Reader::Local { file: open_existing(&path).await?, path })
            }
        }
    }

    /// Deletes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self {
            Store::S3(s3) => {
                s3.client
                    .delete_object()
                    .bucket(&s3.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| Error::s3("DeleteObject", &s3.bucket, key, e))?;
                Ok(())
            }
            Store::Local(local) => {
                let path = local.path(key);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::local("deleting", &path, e)),
                }
            }
        }
    }
}

/// An object being read, chunk by chunk.
enum Reader {
    S3 { body: ByteStream, bucket: String, key: String },
    Local { file: tokio::fs::File, path: PathBuf },
}

impl Reader {
    /// Replaces `chunk` with the next bytes; `false` at the end.
    async fn next_chunk(&mut self, chunk: &mut Vec<u8>) -> Result<bool, Error> {
        chunk.clear();
        match self {
            Reader::S3 { body, bucket, key } => {
                match body.try_next().await.map_err(|e| Error::s3("GetObject (body)", bucket, key, e))? {
                    Some(bytes) => {
                        chunk.extend_from_slice(&bytes);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Reader::Local { file, path } => {
                chunk.resize(256 * 1024, 0);
                let n = file.read(chunk).await.map_err(|e| Error::local("reading", path, e))?;
                chunk.truncate(n);
                Ok(n > 0)
            }
        }
    }
}

impl S3Store {
    /// A client for the bucket of `options`.
    pub async fn connect(options: &S3Options) -> Self {
        S3Store {
            client: s3_client(options).await,
            bucket: options.bucket.clone(),
            server_side_encryption: options.server_side_encryption.clone(),
        }
    }

    /// Size of an object, from `HeadObject`.
    pub async fn head_size(&self, key: &str) -> Result<u64, Error> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::s3("HeadObject", &self.bucket, key, e))?;
        Ok(output.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, Error> {
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::s3("ListObjectsV2", &self.bucket, prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectInfo {
                    key: key.to_owned(),
                    size: object.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified: object.last_modified().and_then(|t| Timestamp::from_second(t.secs()).ok()),
                });
            }
        }
        Ok(out)
    }

    /// The body of an object.
    pub async fn get(&self, key: &str) -> Result<ByteStream, Error> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => Ok(output.body),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(Error::NotFound { location: format!("s3://{}/{key}", self.bucket) })
            }
            Err(e) => Err(Error::s3("GetObject", &self.bucket, key, e)),
        }
    }
}

impl LocalStore {
    /// The file of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        let mut path = self.root.clone();
        for part in key.split('/').filter(|p| !p.is_empty() && *p != "." && *p != "..") {
            path.push(part);
        }
        path
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, Error> {
        let mut out = Vec::new();
        let mut folders = vec![(self.root.clone(), String::new())];
        while let Some((dir, key_prefix)) = folders.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::local("listing", &dir, e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(|e| Error::local("listing", &dir, e))? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let key = format!("{key_prefix}{name}");
                let meta = entry.metadata().await.map_err(|e| Error::local("reading", &entry.path(), e))?;
                if meta.is_dir() {
                    let folder = format!("{key}/");
                    if folder.starts_with(prefix) || prefix.starts_with(&folder) {
                        folders.push((entry.path(), folder));
                    }
                } else if key.starts_with(prefix) && !key.ends_with(PARTIAL_SUFFIX) {
                    let modified = meta.modified().ok().and_then(|t| Timestamp::try_from(t).ok());
                    out.push(ObjectInfo { key, size: meta.len(), modified });
                }
            }
        }
        Ok(out)
    }
}

/// `path` + [`PARTIAL_SUFFIX`].
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

/// Creates the parent directories of `path`.
pub async fn create_parent(path: &Path) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| Error::local("creating directory", parent, e))?;
    }
    Ok(())
}

async fn open_existing(path: &Path) -> Result<tokio::fs::File, Error> {
    match tokio::fs::File::open(path).await {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound { location: path.display().to_string() }),
        Err(e) => Err(Error::local("opening", path, e)),
    }
}
