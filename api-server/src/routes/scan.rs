//! `/v1/scan/*` and `/v1/scans/*`: scanning, past scans and feedback.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Instant;
use uuid::Uuid;

use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthUser};
use crate::metrics::{CacheLabels, FeedbackLabels, ScanLabels, WarningLabels};
use crate::ratelimit::{self, TokenCheck};
use crate::scan::patterns::PatternSet;
use crate::scan::verdict::{Action, Severity};
use crate::scan::tx::MAX_TRANSACTION_SIZE;
use crate::scan::{self, domain};
use crate::state::AppState;
use crate::store::scans::ScanRecord;

pub const MAX_TRANSACTIONS: usize = 16;
pub const MAX_DOMAINS: usize = 50;
pub const MAX_ADDRESSES: usize = 100;

/// The routes behind the limits middleware.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scan/domains", post(scan_domains))
        .route("/scan/addresses", post(scan_addresses))
        .route("/scans", get(list_scans))
        .route("/scans/{id}", get(get_scan))
        .route("/scans/{id}/feedback", post(feedback))
        .route("/scans/{id}/explain", post(crate::routes::explain::explain))
}

/// The routes that apply the limits themselves, in the same Redis round trip as their own
/// lookups (not behind the limits middleware).
pub fn self_limited_router() -> Router<AppState> {
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

#[allow(clippy::too_many_arguments)]
async fn record_scan(
    state: &AppState,
    user: &AuthUser,
    kind: &'static str,
    content_hash: &[u8],
    pattern_version: i64,
    action: Action,
    risk_score: u32,
    result: String,
    cached: bool,
) -> Result<Uuid, ApiError> {
    // Time-ordered (UUIDv7: 48-bit millisecond timestamp, 74 random bits): each INSERT lands
    // at the right edge of the primary-key index instead of a random page.
    let id = Uuid::now_v7();
    state
        .scans
        .record(ScanRecord {
            id,
            wallet: user.wallet.clone(),
            kind,
            content_hash: content_hash.to_vec(),
            pattern_version,
            action: action.as_str(),
            risk_score: risk_score as i32,
            result,
            cached,
            created_at: jiff::Timestamp::now(),
        })
        .await?;
    Ok(id)
}

/// What the metrics and the overall verdict need of one cached transaction report (the rest of
/// the cached JSON is passed through as it is).
#[derive(Deserialize)]
struct CachedReport {
    action: Action,
    risk_score: u32,
    warnings: Vec<CachedWarning>,
}

#[derive(Deserialize)]
struct CachedWarning {
    kind: String,
    severity: Severity,
}

/// A transactions request read and checked: its payloads, the pattern set, the content hash
/// and the cache key.
struct PreparedScan {
    payloads: Vec<Vec<u8>>,
    set: Arc<PatternSet>,
    hash: [u8; 32],
    cache_key: String,
}

async fn prepare_scan(state: &AppState, req: Request) -> Result<PreparedScan, ApiError> {
    let ApiJson(req) = ApiJson::<TransactionsRequest>::from_request(req, state).await?;
    if req.transactions.is_empty() || req.transactions.len() > MAX_TRANSACTIONS {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("send between 1 and {MAX_TRANSACTIONS} transactions"),
        ));
    }
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
    let hash: [u8; 32] = hasher.finalize().into();
    let cache_key = state.key(&["scan", "tx", &set.version.to_string(), &hex::encode(hash)]);
    Ok(PreparedScan { payloads, set, hash, cache_key })
}

/// `POST /v1/scan/transactions`. The rate limits, the token's revocation and the cache lookup
/// share one Redis round trip, so the limits are applied here rather than by the middleware,
/// in the same order of outcomes: an invalid token or a refused request before a bad body.
async fn scan_transactions(State(state): State<AppState>, req: Request) -> Response {
    let ip = ratelimit::client_key(&state, &req);
    let Some(claims) = ratelimit::verified_claims(&state, &req) else {
        // No valid token: counted against the IP's limit like any request, then refused with
        // the token's own error.
        if let Err(refused) = ratelimit::check_request(&state, &ip, None, None).await {
            return refused;
        }
        let (mut parts, _) = req.into_parts();
        return match AuthUser::from_request_parts(&mut parts, &state).await {
            Ok(_) => ApiError::unauthorized("invalid_token", "invalid access token").into_response(),
            Err(e) => e.into_response(),
        };
    };
    let prepared = prepare_scan(&state, req).await;
    let also_get = prepared.as_ref().ok().map(|p| p.cache_key.as_str());
    let checked = match ratelimit::check_request(&state, &ip, Some(claims), also_get).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    let user = match checked.token {
        Some(TokenCheck::Valid(claims)) => AuthUser { wallet: claims.sub.clone(), role: claims.role, claims },
        Some(TokenCheck::Revoked) => {
            return ApiError::unauthorized("token_revoked", "access token was revoked").into_response();
        }
        _ => return ApiError::Unavailable("the token store is unavailable".into()).into_response(),
    };
    match prepared {
        Ok(prepared) => scan_prepared(&state, &user, prepared, checked.got).await.unwrap_or_else(|e| e.into_response()),
        Err(e) => e.into_response(),
    }
}

async fn scan_prepared(
    state: &AppState,
    user: &AuthUser,
    prepared: PreparedScan,
    cached: Option<String>,
) -> Result<Response, ApiError> {
    let PreparedScan { payloads, set, hash, cache_key } = prepared;
    let mut conn = state.redis.clone();
    // The reports as JSON text, with their verdicts: from the cache as stored (only the
    // verdicts are parsed), or analysed and serialized once for the cache, the response and
    // the scan record.
    let cached = cached.and_then(|text| Some((serde_json::from_str::<Vec<CachedReport>>(&text).ok()?, text)));
    let hit = cached.is_some();
    let (verdicts, reports_json) = match cached {
        Some((reports, text)) => {
            state.metrics.cache.get_or_create(&CacheLabels { result: "hit".into() }).inc();
            for w in reports.iter().flat_map(|r| &r.warnings) {
                count_warning(state, &w.kind, w.severity);
            }
            (reports.iter().map(|r| (r.action, r.risk_score)).collect::<Vec<_>>(), text)
        }
        None => {
            state.metrics.cache.get_or_create(&CacheLabels { result: "miss".into() }).inc();
            let started = Instant::now();
            let reports: Vec<_> =
                payloads.iter().enumerate().map(|(i, p)| scan::scan_transaction(i, p, &set)).collect();
            state.metrics.scan_duration.observe(started.elapsed().as_secs_f64());
            for w in reports.iter().flat_map(|r| &r.warnings) {
                count_warning(state, w.kind, w.severity);
            }
            let text = serde_json::to_string(&reports).map_err(|e| ApiError::Internal(e.to_string()))?;
            let _: Result<(), _> = redis::cmd("SET")
                .arg(&cache_key)
                .arg(&text)
                .arg("EX")
                .arg(state.config.scan_cache_ttl_seconds)
                .query_async(&mut conn)
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "scan cache write failed"));
            (reports.iter().map(|r| (r.action, r.risk_score)).collect(), text)
        }
    };
    let (action, risk_score) = verdicts.into_iter().fold((Action::None, 0), |(a, s), (ra, rs)| (a.max(ra), s.max(rs)));
    count_scan(state, "transaction", action);
    let body = format!(
        r#"{{"kind":"transaction","action":"{}","risk_score":{risk_score},"pattern_version":{},"cached":{hit},"transactions":{reports_json}}}"#,
        action.as_str(),
        set.version,
    );
    // The response is the recorded result plus its id: the last `}` becomes `,"scan_id":...}`.
    let mut response = String::with_capacity(body.len() + 60);
    response.push_str(&body[..body.len() - 1]);
    let id = record_scan(state, user, "transaction", &hash, set.version, action, risk_score, body, hit).await?;
    response.push_str(r#","scan_id":""#);
    response.push_str(id.as_hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    response.push_str(r#""}"#);
    Ok(([(header::CONTENT_TYPE, "application/json")], response).into_response())
}

/// Overall action and score of a list of reports: the worst of them.
fn overall(reports: &Value) -> (Action, u32) {
    let mut action = Action::None;
    let mut score = 0u32;
    for r in reports.as_array().into_iter().flatten() {
        let a = match r["action"].as_str() {
            Some("BLOCK") => Action::Block,
            Some("WARN") => Action::Warn,
            _ => Action::None,
        };
        action = action.max(a);
        score = score.max(r["risk_score"].as_u64().unwrap_or(0) as u32);
    }
    (action, score)
}

fn count_scan(state: &AppState, kind: &str, action: Action) {
    state.metrics.scans.get_or_create(&ScanLabels { kind: kind.into(), verdict: action.as_str().into() }).inc();
}

fn count_warning(state: &AppState, kind: &str, severity: Severity) {
    state
        .metrics
        .warnings
        .get_or_create(&WarningLabels { kind: kind.into(), severity: severity.as_str().into() })
        .inc();
}

/// Counts the scan and its warnings in the metrics.
fn summarize(state: &AppState, kind: &str, reports: &Value) {
    let (action, _) = overall(reports);
    count_scan(state, kind, action);
    for r in reports.as_array().into_iter().flatten() {
        for w in r["warnings"].as_array().into_iter().flatten() {
            state
                .metrics
                .warnings
                .get_or_create(&WarningLabels {
                    kind: w["kind"].as_str().unwrap_or("").into(),
                    severity: w["severity"].as_str().unwrap_or("").into(),
                })
                .inc();
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainsRequest {
    domains: Vec<String>,
}

async fn scan_domains(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<DomainsRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.domains.is_empty() || req.domains.len() > MAX_DOMAINS {
        return Err(ApiError::bad_request("invalid_body", format!("send between 1 and {MAX_DOMAINS} domains")));
    }
    let normalized = req
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            domain::normalize(d).map_err(|why| ApiError::bad_request("invalid_domain", format!("domains[{i}]: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let set = state.patterns.current(&state.db).await?;
    let reports: Vec<_> = normalized.into_iter().map(|d| scan::scan_domain(d, &set)).collect();
    let reports = serde_json::to_value(&reports).map_err(|e| ApiError::Internal(e.to_string()))?;
    finish(&state, &user, "domain", "domains", reports, set.version).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressesRequest {
    addresses: Vec<String>,
}

async fn scan_addresses(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<AddressesRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.addresses.is_empty() || req.addresses.len() > MAX_ADDRESSES {
        return Err(ApiError::bad_request("invalid_body", format!("send between 1 and {MAX_ADDRESSES} addresses")));
    }
    for (i, a) in req.addresses.iter().enumerate() {
        if crate::scan::tx::Pubkey::from_base58(a.trim()).is_none() {
            return Err(ApiError::bad_request(
                "invalid_address",
                format!("addresses[{i}] is not a base58 Solana address"),
            ));
        }
    }
    let set = state.patterns.current(&state.db).await?;
    let reports: Vec<_> = req.addresses.iter().map(|a| scan::scan_address(a.trim(), &set)).collect();
    let reports = serde_json::to_value(&reports).map_err(|e| ApiError::Internal(e.to_string()))?;
    finish(&state, &user, "address", "addresses", reports, set.version).await
}

async fn finish(
    state: &AppState,
    user: &AuthUser,
    kind: &'static str,
    field: &str,
    reports: Value,
    version: i64,
) -> Result<Json<Value>, ApiError> {
    let hash = Sha256::digest(reports.to_string().as_bytes());
    summarize(state, kind, &reports);
    let (action, risk_score) = overall(&reports);
    let mut body = json!({
        "kind": kind,
        "action": action.as_str(),
        "risk_score": risk_score,
        "pattern_version": version,
        "cached": false,
    });
    body[field] = reports;
    let id = record_scan(state, user, kind, &hash, version, action, risk_score, body.to_string(), false).await?;
    body["scan_id"] = json!(id);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    kind: Option<String>,
}

/// The caller's most recent scans, newest first (summaries; `GET /v1/scans/{id}` has the rest).
async fn list_scans(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let axum::extract::Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 100"));
    }
    if let Some(kind) = &query.kind
        && !["transaction", "domain", "address"].contains(&kind.as_str())
    {
        return Err(ApiError::bad_request("invalid_query", "kind must be transaction, domain or address"));
    }
    let rows = state.scans.list(&user.wallet, query.kind.as_deref(), limit).await?;
    let scans: Vec<Value> = rows
        .into_iter()
        .map(|s| {
            json!({
                "scan_id": s.id, "kind": s.kind, "action": s.action,
                "risk_score": s.risk_score, "created_at": s.created_at,
            })
        })
        .collect();
    Ok(Json(json!({"scans": scans})))
}

/// One of the caller's own past scans (admins may read any).
async fn get_scan(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    match state.scans.get(id).await? {
        Some(scan) if scan.wallet == user.wallet || user.role == Role::Admin => {
            let mut result = scan.result;
            result["scan_id"] = json!(id);
            result["created_at"] = json!(scan.created_at);
            result["wallet"] = json!(scan.wallet);
            Ok(Json(result))
        }
        // Other wallets' scans are indistinguishable from missing ones.
        _ => Err(ApiError::NotFound("no such scan".into())),
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FeedbackVerdict {
    FalsePositive,
    FalseNegative,
    Correct,
}

impl FeedbackVerdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::FalsePositive => "false_positive",
            Self::FalseNegative => "false_negative",
            Self::Correct => "correct",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackRequest {
    verdict: FeedbackVerdict,
    #[serde(default)]
    comment: Option<String>,
}

const MAX_COMMENT: usize = 2000;

/// The caller reports whether the verdict of their scan was right; a second report replaces the
/// first.
async fn feedback(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<FeedbackRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return Err(ApiError::bad_request("invalid_body", format!("comment is longer than {MAX_COMMENT} characters")));
    }
    let owner = state.scans.get(id).await?.map(|scan| scan.wallet);
    if owner.as_deref() != Some(user.wallet.as_str()) {
        return Err(ApiError::NotFound("no such scan".into()));
    }
    let feedback_id =
        state.scans.record_feedback(id, &user.wallet, req.verdict.as_str(), req.comment.as_deref()).await?;
    state.metrics.feedback.get_or_create(&FeedbackLabels { verdict: req.verdict.as_str().into() }).inc();
    Ok((StatusCode::CREATED, Json(json!({"id": feedback_id, "scan_id": id, "verdict": req.verdict.as_str()}))))
}
