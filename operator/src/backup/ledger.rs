//! The restore ledger: one small JSON object per restore request handled, in the folder of the
//! SecurityGuard's backups, `<prefix>/<namespace>/<name>/restores/<requestId>.restore.json`.
//!
//! `status.restore` remembers the last request only as long as the SecurityGuard exists; the
//! ledger lives with the backups, so a SecurityGuard deleted and re-created with the same
//! `spec.restore` (a GitOps re-sync after a cluster rebuild) does not restore a second time.
//!
//! `backups claim-restore` runs before anything is scaled down: the record is created with
//! `If-None-Match: *`, so of two claims only one can win; a record that exists is the earlier
//! claim, and the verdict follows from who holds it ([`judge`]). The claim is read before it is
//! written too, so a server that ignores the condition still refuses a repeat (only a race of
//! two claims within one round trip would then go unnoticed). The restore Job, once the database
//! holds the backup, adds the restored key and the time to the record.
//!
//! The suffix `.restore.json` keeps the records out of the backup catalog whatever the
//! `requestId`: a record's key never ends in `.pgdump`, `.manifest.json` or `.config.yaml`.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::manifest;
use super::store::{self, S3Options, S3Store};

/// Version of the record format; a reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 1;

/// Folder of the records, under the guard's folder.
pub const RESTORES_FOLDER: &str = "restores/";

/// File name suffix of a record, after the `requestId`.
pub const RECORD_SUFFIX: &str = ".restore.json";

/// Largest record a reader accepts.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// One restore request, as claimed and as far as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The `spec.restore.requestId`.
    pub request_id: String,
    /// The folder of the SecurityGuard (`<namespace>/<name>`).
    pub guard: String,
    /// UID of the SecurityGuard object that claimed the request.
    pub claimed_by: String,
    /// When it was claimed.
    pub claimed_at: Timestamp,
    /// The source asked for (`latest`, `before:<time>` or a key).
    pub source: String,
    /// The backup restored, once the database holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_key: Option<String>,
    /// When the restore of [`Record::restored_key`] finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<Timestamp>,
}

impl Record {
    /// The JSON text stored in the bucket (pretty, for humans reading it in a console).
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and times only: always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// No one had claimed the request: this claimant now holds it.
    Claimed,
    /// This claimant already held it and the restore did not finish (an operator restarted, a
    /// status lost): carry on.
    Resumed,
    /// Another SecurityGuard object claimed it, or this one restored it already: do not
    /// restore again.
    Refused,
}

/// The outcome of `backups claim-restore`, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// What the claim found.
    pub verdict: Verdict,
    /// Whether the record is this claimant's (false: an earlier SecurityGuard of this name).
    pub same_guard: bool,
    /// The record that holds the request (this claim's, or the earlier one).
    #[serde(flatten)]
    pub record: Record,
}

/// A ledger operation that failed, naming the record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was refused before any record was made (a point-in-time target outside the
    /// window).
    #[error("restore refused: {0}")]
    Refused(String),
    /// Reading or writing the record failed.
    #[error("restore ledger: {0}")]
    Store(#[from] store::Error),
    /// The record is not JSON of this format.
    #[error("restore ledger: {location} is not a restore record: {source}")]
    Parse {
        /// The record.
        location: String,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer operator.
    #[error("restore ledger: {location} has format version {found}, this operator reads up to {FORMAT_VERSION}")]
    Version {
        /// The record.
        location: String,
        /// Its version.
        found: u32,
    },
    /// The conditional create failed, yet no record could be read afterwards.
    #[error("restore ledger: {location} was claimed and then vanished; claim again")]
    Vanished {
        /// The record.
        location: String,
    },
    /// The restore is recorded against a record this claimant does not hold.
    #[error("restore ledger: {location} is held by {holder}, not by {claimant}")]
    NotHolder {
        /// The record.
        location: String,
        /// Who holds it.
        holder: String,
        /// Who tried to write.
        claimant: String,
    },
    /// The guard's folder is missing (`--guard`).
    #[error("restore ledger: --guard (the folder of the SecurityGuard's backups) is required")]
    NoGuard,
}

/// What `backups claim-restore` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOptions {
    /// The bucket, and how to reach it.
    pub s3: S3Options,
    /// Key prefix of the backups.
    pub prefix: String,
    /// The folder of the SecurityGuard's backups under the prefix (`<namespace>/<name>`).
    pub guard: Option<String>,
    /// Who claims: the SecurityGuard object's UID.
    pub claimant: String,
    /// The `spec.restore.requestId`.
    pub request_id: String,
    /// The `spec.restore.source`.
    pub source: String,
}

/// Who holds a request, for the restore Job that records its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The `spec.restore.requestId`.
    pub request_id: String,
    /// The SecurityGuard object's UID that claimed it.
    pub claimant: String,
}

/// Key of the record of `request_id` in the folder of `guard`.
pub fn record_key(prefix: &str, guard: &str, request_id: &str) -> String {
    format!("{}{RESTORES_FOLDER}{request_id}{RECORD_SUFFIX}", manifest::folder(prefix, Some(guard)))
}

/// The verdict on an existing record for `claimant` (pure): its own unfinished claim resumes;
/// anything else, a claim of an earlier object or a restore already done, is refused.
pub fn judge(existing: &Record, claimant: &str) -> Verdict {
    if existing.claimed_by == claimant && existing.restored_at.is_none() { Verdict::Resumed } else { Verdict::Refused }
}

/// Claims the request for `options.claimant`, at `now`.
pub async fn claim(options: &ClaimOptions, now: Timestamp) -> Result<Claim, Error> {
    let guard = options.guard.clone().ok_or(Error::NoGuard)?;
    let s3 = S3Store::connect(&options.s3).await;
    let key = record_key(&options.prefix, &guard, &options.request_id);
    let verdict_on = |existing: Record| Claim {
        verdict: judge(&existing, &options.claimant),
        same_guard: existing.claimed_by == options.claimant,
        record: existing,
    };
    if let Some((existing, _)) = read(&s3, &key).await? {
        return Ok(verdict_on(existing));
    }
    let record = Record {
        format_version: FORMAT_VERSION,
        request_id: options.request_id.clone(),
        guard,
        claimed_by: options.claimant.clone(),
        claimed_at: now,
        source: options.source.clone(),
        restored_key: None,
        restored_at: None,
    };
    if create_if_absent(&s3, &key, record.to_json()).await? {
        tracing::info!(%key, request = %record.request_id, claimant = %record.claimed_by, "restore request claimed");
        return Ok(Claim { verdict: Verdict::Claimed, same_guard: true, record });
    }
    // Another claim won between the read and the create.
    match read(&s3, &key).await? {
        Some((existing, _)) => Ok(verdict_on(existing)),
        None => Err(Error::Vanished { location: location(&s3, &key) }),
    }
}

/// Adds the restored backup to the record held by `holder` (a read, then a write conditional on
/// the ETag read, so that nothing written in between is lost).
pub async fn record_restored(
    s3: &S3Store,
    prefix: &str,
    guard: &str,
    holder: &Holder,
    restored_key: &str,
    at: Timestamp,
) -> Result<Record, Error> {
    let key = record_key(prefix, guard, &holder.request_id);
    let Some((mut record, etag)) = read(s3, &key).await? else {
        return Err(Error::Store(store::Error::NotFound { location: location(s3, &key) }));
    };
    if record.claimed_by != holder.claimant {
        return Err(Error::NotHolder {
            location: location(s3, &key),
            holder: record.claimed_by,
            claimant: holder.claimant.clone(),
        });
    }
    record.restored_key = Some(restored_key.to_owned());
    record.restored_at = Some(at);
    let mut put = s3
        .client
        .put_object()
        .bucket(&s3.bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(record.to_json()));
    if let Some(etag) = etag {
        put = put.if_match(etag);
    }
    put.send().await.map_err(|e| store::Error::s3("PutObject", &s3.bucket, &key, e))?;
    Ok(record)
}

/// The record at `key` with its ETag, `None` when there is none.
async fn read(s3: &S3Store, key: &str) -> Result<Option<(Record, Option<String>)>, Error> {
    let output = match s3.client.get_object().bucket(&s3.bucket).key(key).send().await {
        Ok(output) => output,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(store::Error::s3("GetObject", &s3.bucket, key, e).into()),
    };
    let etag = output.e_tag().map(str::to_owned);
    let bytes = output.body.collect().await.map_err(|e| store::Error::s3("GetObject (body)", &s3.bucket, key, e))?;
    let bytes = bytes.into_bytes();
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(store::Error::TooLarge { location: location(s3, key), max: MAX_RECORD_BYTES }.into());
    }
    let record: Record =
        serde_json::from_slice(&bytes).map_err(|source| Error::Parse { location: location(s3, key), source })?;
    if record.format_version > FORMAT_VERSION {
        return Err(Error::Version { location: location(s3, key), found: record.format_version });
    }
    Ok(Some((record, etag)))
}

/// Creates the object at `key` unless one exists (`If-None-Match: *`): `false` when the server
/// says one does (412, or 409 when another conditional write to the key is in flight).
pub async fn create_if_absent(s3: &S3Store, key: &str, bytes: Vec<u8>) -> Result<bool, Error> {
    let result = s3
        .client
        .put_object()
        .bucket(&s3.bucket)
        .key(key)
        .content_type("application/json")
        .if_none_match("*")
        .body(ByteStream::from(bytes))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if exists_already(e.raw_response().map(|r| r.status().as_u16()), e.code()) => Ok(false),
        Err(e) => Err(store::Error::s3("PutObject (If-None-Match)", &s3.bucket, key, e).into()),
    }
}

/// Whether a failed conditional create means that the object exists (pure).
fn exists_already(status: Option<u16>, code: Option<&str>) -> bool {
    matches!(status, Some(412 | 409)) || matches!(code, Some("PreconditionFailed" | "ConditionalRequestConflict"))
}

fn location(s3: &S3Store, key: &str) -> String {
    format!("s3://{}/{key}", s3.bucket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog;
    use crate::backup::store::ObjectInfo;

    fn record(claimed_by: &str, restored: bool) -> Record {
        Record {
            format_version: FORMAT_VERSION,
            request_id: "r1".into(),
            guard: "prod/sg".into(),
            claimed_by: claimed_by.into(),
            claimed_at: "2026-11-25T09:00:00Z".parse().expect("time"),
            source: "latest".into(),
            restored_key: restored.then(|| "b/prod/sg/20261125T080000.000Z.pgdump".into()),
            restored_at: restored.then(|| "2026-11-25T09:05:00Z".parse().expect("time")),
        }
    }

    #[test]
    fn only_an_unfinished_claim_of_the_same_object_resumes() {
        assert_eq!(judge(&record("uid-1", false), "uid-1"), Verdict::Resumed);
        assert_eq!(judge(&record("uid-1", true), "uid-1"), Verdict::Refused, "restored already");
        assert_eq!(judge(&record("uid-1", false), "uid-2"), Verdict::Refused);
        assert_eq!(judge(&record("uid-1", true), "uid-2"), Verdict::Refused);
    }

    #[test]
    fn records_stay_out_of_the_backup_catalog_whatever_the_request() {
        assert_eq!(record_key("b", "prod/sg", "r1"), "b/prod/sg/restores/r1.restore.json");
        let objects: Vec<ObjectInfo> = ["r1", "x.pgdump", "x.pgdump.manifest", "x.pgdump.config"]
            .iter()
            .map(|id| ObjectInfo { key: record_key("b", "prod/sg", id), size: 10, modified: None })
            .collect();
        assert!(catalog::classify(&objects, &Default::default()).is_empty(), "{objects:?}");
    }

    #[test]
    fn a_claim_reports_the_record_it_found() {
        let claim = Claim { verdict: Verdict::Refused, same_guard: false, record: record("uid-1", true) };
        assert_eq!(
            serde_json::to_value(&claim).expect("json"),
            serde_json::json!({"verdict": "refused", "sameGuard": false, "formatVersion": 1, "requestId": "r1",
                "guard": "prod/sg", "claimedBy": "uid-1", "claimedAt": "2026-11-25T09:00:00Z", "source": "latest",
                "restoredKey": "b/prod/sg/20261125T080000.000Z.pgdump", "restoredAt": "2026-11-25T09:05:00Z"})
        );
    }

    #[test]
    fn a_taken_key_is_told_from_other_failures() {
        assert!(exists_already(Some(412), None));
        assert!(exists_already(Some(409), Some("ConditionalRequestConflict")));
        assert!(exists_already(None, Some("PreconditionFailed")));
        assert!(!exists_already(Some(403), Some("AccessDenied")));
        assert!(!exists_already(None, None));
    }
}
