//! `POST /v1/scan/transactions`: serialized transactions, analysed or served from the scan
//! cache. The body is read before the limits (`ratelimit::limits_with::<CacheLookup>`), so that
//! the cache GET joins their Redis round trip; the handler takes the signed-in wallet from
//! `AuthUser` like every route.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::result::{Reports, ScanResult, check_count, count_scan, count_warning, overall, record_and_answer};
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser};
use crate::metrics::CacheLabels;
use crate::ratelimit::{LookedUp, Lookup};
use crate::scan::patterns::PatternSet;
use crate::scan::tx::MAX_TRANSACTION_SIZE;
use crate::scan::{self, ScanKind};
use crate::state::AppState;
use crate::store::scan_cache::{self, Cached};

pub const MAX_TRANSACTIONS: usize = 16;

/// The route; its limits middleware is `ratelimit::limits_with::<CacheLookup>`.
pub fn router() -> Router<AppState> {
    Router::new().route("/scan/transactions", post(scan_transactions))
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    #[default]
    Base64,
    Base58,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionsRequest {
    transactions: Vec<String>,
    #[serde(default)]
    encoding: Encoding,
}

fn decode_payload(i: usize, s: &str, encoding: Encoding) -> Result<Vec<u8>, ApiError> {
    // Base64 of the largest transaction, with slack for whitespace.
    if s.len() > MAX_TRANSACTION_SIZE * 2 {
        return Err(ApiError::bad_request(
            "transaction_too_large",
            format!("transactions[{i}] is longer than a Solana transaction can be"),
        ));
    }
    let decoded = match encoding {
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(s.trim()).ok(),
        Encoding::Base58 => bs58::decode(s.trim()).into_vec().ok(),
    };
    let decoded = decoded.filter(|b| !b.is_empty()).ok_or_else(|| {
        ApiError::bad_request("invalid_encoding", format!("transactions[{i}] is not valid {encoding:?}").to_lowercase())
    })?;
    if decoded.len() > MAX_TRANSACTION_SIZE {
        return Err(ApiError::bad_request(
            "transaction_too_large",
            format!("transactions[{i}] is {} bytes, more than the {MAX_TRANSACTION_SIZE}-byte limit", decoded.len()),
        ));
    }
    Ok(decoded)
}

/// A transactions request read and checked: its payloads, the pattern set and the content
/// hash. Left in the request's extensions by [`CacheLookup`] for the handler (`Clone` only
/// because extensions must be; it is taken, not cloned).
#[derive(Clone)]
struct PreparedScan {
    payloads: Vec<Vec<u8>>,
    set: Arc<PatternSet>,
    hash: [u8; 32],
}

async fn prepare_scan(state: &AppState, req: Request) -> Result<PreparedScan, ApiError> {
    let ApiJson(req) = ApiJson::<TransactionsRequest>::from_request(req, state).await?;
    check_count(req.transactions.len(), MAX_TRANSACTIONS, "transactions")?;
    let payloads = req
        .transactions
        .iter()
        .enumerate()
        .map(|(i, s)| decode_payload(i, s, req.encoding))
        .collect::<Result<Vec<_>, _>>()?;
    let set = state.patterns.current(&state.db).await?;
    let mut hasher = Sha256::new();
    for p in &payloads {
        hasher.update((p.len() as u32).to_le_bytes());
        hasher.update(p);
    }
    Ok(PreparedScan { payloads, set, hash: hasher.finalize().into() })
}

/// The scan cache's key of a request, for the limits middleware.
pub struct CacheLookup;

impl Lookup for CacheLookup {
    async fn prepare(state: &AppState, req: Request) -> (Request, Result<String, ApiError>) {
        // The body is read through a copy of the head: the request goes on with its own.
        let (parts, body) = req.into_parts();
        let prepared = prepare_scan(state, Request::from_parts(parts.clone(), body)).await;
        let mut req = Request::from_parts(parts, Body::empty());
        let key = prepared.map(|prepared| {
            let key = scan_cache::key(&state.keys, prepared.set.version, &prepared.hash);
            req.extensions_mut().insert(prepared);
            key
        });
        (req, key)
    }
}

/// What the handler takes over from the limits middleware: the prepared scan and the cache
/// lookup.
struct Prepared {
    scan: PreparedScan,
    lookup: LookedUp,
}

impl FromRequestParts<AppState> for Prepared {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        match (parts.extensions.remove::<PreparedScan>(), parts.extensions.remove::<LookedUp>()) {
            (Some(scan), Some(lookup)) => Ok(Self { scan, lookup }),
            _ => Err(ApiError::Internal("the transactions route runs without its cache lookup".into())),
        }
    }
}

async fn scan_transactions(
    State(state): State<AppState>,
    user: AuthUser,
    prepared: Prepared,
) -> Result<Response, ApiError> {
    let Prepared { scan: PreparedScan { payloads, set, hash }, lookup: LookedUp { key, value } } = prepared;
    let scanned = match value.and_then(Cached::parse) {
        Some(cached) => from_cache(&state, cached),
        None => analyse(&state, &payloads, &set, &key).await?,
    };
    let result =
        ScanResult::new(Reports::Transactions(&scanned.json), scanned.verdict, set.version).cached(scanned.hit);
    count_scan(&state, ScanKind::Transaction, result.action());
    record_and_answer(&state, user.wallet, result, hash).await
}

/// The reports of a scan as JSON, and their overall verdict.
struct Scanned {
    json: Box<RawValue>,
    verdict: (scan::verdict::Action, u32),
    /// Served from the scan cache.
    hit: bool,
}

fn from_cache(state: &AppState, cached: Cached) -> Scanned {
    state.metrics.cache.get_or_create(&CacheLabels { result: "hit".into() }).inc();
    for w in cached.reports.iter().flat_map(|r| &r.warnings) {
        count_warning(state, &w.kind, w.severity);
    }
    let verdict = overall(cached.reports.iter().map(|r| (r.action, r.risk_score)));
    Scanned { json: cached.json, verdict, hit: true }
}

/// Analyses the transactions and caches their reports.
async fn analyse(state: &AppState, payloads: &[Vec<u8>], set: &PatternSet, key: &str) -> Result<Scanned, ApiError> {
    state.metrics.cache.get_or_create(&CacheLabels { result: "miss".into() }).inc();
    let started = Instant::now();
    let reports: Vec<_> = payloads.iter().enumerate().map(|(i, p)| scan::scan_transaction(i, p, set)).collect();
    state.metrics.scan_duration.observe(started.elapsed().as_secs_f64());
    for w in reports.iter().flat_map(|r| &r.warnings) {
        count_warning(state, w.kind, w.severity);
    }
    let json = serde_json::value::to_raw_value(&reports).map_err(|e| ApiError::Internal(e.to_string()))?;
    scan_cache::put(&state.redis, key, json.get(), state.config.scan_cache_ttl_seconds).await;
    let verdict = overall(reports.iter().map(|r| (r.action, r.risk_score)));
    Ok(Scanned { json, verdict, hit: false })
}
