//! The scan cache in Redis: the reports of a transaction scan as JSON text, by pattern version
//! and content hash, kept SCAN_CACHE_TTL_SECONDS. Read in the limits' Redis round trip (the
//! route's `ratelimit::Lookup`); parsed and written here.
//!
//! Only transaction scans are cached, and they do not use the domain model. Domain scans are
//! analysed on every request (about 21 µs a domain, the model included), so a new model
//! version never meets verdicts cached under an older one; a domain cache would need the model
//! version in its key.

use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::redis::Keys;
use crate::scan::verdict::{Action, Severity};

/// The key of a scan of content hashed `content_hash` with the patterns of `pattern_version`.
pub fn key(keys: &Keys, pattern_version: i64, content_hash: &[u8; 32]) -> String {
    keys.key(&["scan", "tx", &pattern_version.to_string(), &hex::encode(content_hash)])
}

/// Stores a scan's reports. A failure is logged, not the scan's: the next scan of the same
/// content analyses it again.
pub async fn put(redis: &ConnectionManager, key: &str, reports: &str, ttl_secs: u64) {
    let mut conn = redis.clone();
    let _: Result<(), _> = redis::cmd("SET")
        .arg(key)
        .arg(reports)
        .arg("EX")
        .arg(ttl_secs)
        .query_async(&mut conn)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "scan cache write failed"));
}

/// A cache entry: the verdicts of its reports (what the metrics and the overall verdict need),
/// and the reports as stored, passed on without being serialized again.
pub struct Cached {
    pub reports: Vec<CachedReport>,
    pub json: Box<RawValue>,
}

#[derive(Deserialize)]
pub struct CachedReport {
    pub action: Action,
    pub risk_score: u32,
    pub warnings: Vec<CachedWarning>,
}

#[derive(Deserialize)]
pub struct CachedWarning {
    pub kind: String,
    pub severity: Severity,
}

impl Cached {
    /// `None` for a text that is not a list of reports: the scan is analysed again.
    pub fn parse(text: String) -> Option<Self> {
        let reports = serde_json::from_str(&text).ok()?;
        let json = RawValue::from_string(text).ok()?;
        Some(Self { reports, json })
    }
}
