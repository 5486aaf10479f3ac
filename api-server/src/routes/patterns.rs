//! `/v1/patterns`: the pattern library, managed by admins. Every change bumps the pattern-set
//! version (which keys the scan cache) and is written to `pattern_changes`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AdminUser, ApiJson, ApiPath};
use crate::scan::domain;
use crate::scan::patterns::PatternSet;
use crate::scan::tx::Pubkey;
use crate::state::AppState;
use crate::store::patterns as store;

pub const MAX_IMPORT: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/patterns", get(list).post(create))
        .route("/patterns/import", post(import))
        .route("/patterns/{id}", put(update).delete(delete).get(get_one))
}

const KINDS: &[&str] = &[
    "blocked_domain",
    "allowed_domain",
    "protected_domain",
    "malicious_address",
    "trusted_address",
    "trusted_program",
    "rule_parameter",
];

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternInput {
    kind: String,
    value: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    note: Option<String>,
}

/// Checks and normalizes one entry (domains lowercased, addresses validated, parameters known).
fn validate(input: PatternInput) -> Result<store::NewPattern, ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_pattern", m);
    if !KINDS.contains(&input.kind.as_str()) {
        return Err(bad(format!("unknown kind {:?}; one of {}", input.kind, KINDS.join(", "))));
    }
    let data = input.data.clone().unwrap_or_else(|| json!({}));
    if !data.is_object() {
        return Err(bad("data must be a JSON object".into()));
    }
    if input.note.as_ref().is_some_and(|n| n.len() > 1000) {
        return Err(bad("note is longer than 1000 bytes".into()));
    }
    let value = match input.kind.as_str() {
        "blocked_domain" | "allowed_domain" | "protected_domain" => {
            domain::normalize(&input.value).map_err(|why| bad(format!("{:?} is not a domain: {why}", input.value)))?
        }
        "malicious_address" | "trusted_address" | "trusted_program" => {
            let v = input.value.trim();
            Pubkey::from_base58(v).ok_or_else(|| bad(format!("{v:?} is not a base58 Solana address")))?;
            v.to_string()
        }
        _ => {
            let mut probe = PatternSet::default();
            probe.add(&input.kind, &input.value, &data).map_err(bad)?;
            input.value.trim().to_string()
        }
    };
    Ok(store::NewPattern { kind: input.kind, value, data, note: input.note })
}

impl From<store::ChangeError> for ApiError {
    fn from(e: store::ChangeError) -> Self {
        match e {
            store::ChangeError::Duplicate { .. } => ApiError::Conflict(e.to_string()),
            store::ChangeError::NotFound => ApiError::NotFound(e.to_string()),
            store::ChangeError::Db(e) => ApiError::Database(e),
        }
    }
}

fn entry_json(p: &store::Pattern, version: Option<i64>) -> Value {
    let mut v =
        json!({"id": p.id, "kind": p.kind, "value": p.value, "data": p.data, "note": p.note, "source": p.source});
    if let Some(version) = version {
        v["version"] = json!(version);
    }
    v
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
    /// `admin`, or `feed:<name>`.
    source: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query?;
    let (version, rows) = store::list(&state.db, query.kind.as_deref(), query.source.as_deref()).await?;
    Ok(Json(json!({
        "version": version,
        "patterns": rows.iter().map(|p| entry_json(p, None)).collect::<Vec<_>>(),
    })))
}

async fn get_one(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let row = store::get(&state.db, id).await?;
    row.map(|p| Json(entry_json(&p, None))).ok_or_else(|| ApiError::NotFound("no such pattern".into()))
}

async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(input): ApiJson<PatternInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = validate(input)?;
    let (pattern, version) = store::create(&state.db, new, &admin.wallet).await?;
    state.patterns.invalidate();
    Ok((StatusCode::CREATED, Json(entry_json(&pattern, Some(version)))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternUpdate {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    note: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(change): ApiJson<PatternUpdate>,
) -> Result<Json<Value>, ApiError> {
    let (pattern, version) = store::update(&state.db, id, &admin.wallet, |current| {
        validate(PatternInput {
            kind: current.kind,
            value: change.value.unwrap_or(current.value),
            data: Some(change.data.unwrap_or(current.data)),
            note: change.note.or(current.note),
        })
    })
    .await??;
    state.patterns.invalidate();
    Ok(Json(entry_json(&pattern, Some(version))))
}

async fn delete(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    store::delete(&state.db, id, &admin.wallet).await?;
    state.patterns.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    patterns: Vec<PatternInput>,
    /// Replace every entry of the kinds present in the import instead of adding to them.
    #[serde(default)]
    replace: bool,
}

/// Bulk import in one transaction and one version: all entries are validated first; entries
/// that already exist are counted as unchanged.
async fn import(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.patterns.is_empty() || req.patterns.len() > MAX_IMPORT {
        return Err(ApiError::bad_request("invalid_body", format!("import between 1 and {MAX_IMPORT} patterns")));
    }
    let total = req.patterns.len() as u64;
    let mut entries = Vec::with_capacity(req.patterns.len());
    for (i, p) in req.patterns.into_iter().enumerate() {
        entries.push(validate(p).map_err(|e| match e {
            ApiError::BadRequest { code, message } => {
                ApiError::BadRequest { code, message: format!("patterns[{i}]: {message}") }
            }
            other => other,
        })?);
    }
    let imported = store::import(&state.db, &entries, req.replace, &admin.wallet).await?;
    state.patterns.invalidate();
    Ok(Json(json!({
        "version": imported.version,
        "added": imported.added,
        "removed": imported.removed,
        "unchanged": total - imported.added.min(total),
    })))
}
