//! `/v1/patterns`: the pattern library, managed by admins. Every change bumps the pattern-set
//! version (which keys the scan cache) and is written to `pattern_changes`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::scan::domain;
use crate::scan::patterns::PatternSet;
use crate::scan::tx::Pubkey;
use crate::state::AppState;

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
fn validate(input: &PatternInput) -> Result<(String, Value), ApiError> {
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
    Ok((value, data))
}

async fn bump(tx: &mut Transaction<'_, Postgres>) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar("UPDATE pattern_set SET version = version + 1, updated_at = now() RETURNING version")
        .fetch_one(&mut **tx)
        .await?)
}

async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    version: i64,
    action: &str,
    kind: &str,
    value: &str,
    actor: &str,
) -> Result<(), ApiError> {
    sqlx::query("INSERT INTO pattern_changes (version, action, kind, value, actor) VALUES ($1, $2, $3, $4, $5)")
        .bind(version)
        .bind(action)
        .bind(kind)
        .bind(value)
        .bind(actor)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

type Row = (Uuid, String, String, Value, Option<String>);

fn row_json((id, kind, value, data, note): Row) -> Value {
    json!({"id": id, "kind": kind, "value": value, "data": data, "note": note})
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505")
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query?;
    let mut tx = state.db.begin().await?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM pattern_set").fetch_one(&mut *tx).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, kind, value, data, note FROM patterns
         WHERE $1::text IS NULL OR kind = $1 ORDER BY kind, value",
    )
    .bind(&query.kind)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "version": version,
        "patterns": rows.into_iter().map(row_json).collect::<Vec<_>>(),
    })))
}

async fn get_one(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let row: Option<Row> = sqlx::query_as("SELECT id, kind, value, data, note FROM patterns WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db)
        .await?;
    row.map(|r| Json(row_json(r))).ok_or_else(|| ApiError::NotFound("no such pattern".into()))
}

async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(input): ApiJson<PatternInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (value, data) = validate(&input)?;
    let mut tx = state.db.begin().await?;
    let id = Uuid::new_v4();
    let inserted = sqlx::query("INSERT INTO patterns (id, kind, value, data, note) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(&input.kind)
        .bind(&value)
        .bind(&data)
        .bind(&input.note)
        .execute(&mut *tx)
        .await;
    if let Err(e) = inserted {
        return Err(if unique_violation(&e) {
            ApiError::Conflict(format!("{} {value} already exists", input.kind))
        } else {
            e.into()
        });
    }
    let version = bump(&mut tx).await?;
    audit(&mut tx, version, "create", &input.kind, &value, &admin.wallet).await?;
    tx.commit().await?;
    state.patterns.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "kind": input.kind, "value": value, "data": data, "note": input.note,
            "version": version,
        })),
    ))
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
    let mut tx = state.db.begin().await?;
    let current: Option<Row> =
        sqlx::query_as("SELECT id, kind, value, data, note FROM patterns WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((_, kind, value, data, note)) = current else {
        return Err(ApiError::NotFound("no such pattern".into()));
    };
    let input = PatternInput {
        kind: kind.clone(),
        value: change.value.unwrap_or(value),
        data: Some(change.data.unwrap_or(data)),
        note: change.note.or(note),
    };
    let (value, data) = validate(&input)?;
    let updated = sqlx::query("UPDATE patterns SET value = $2, data = $3, note = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&value)
        .bind(&data)
        .bind(&input.note)
        .execute(&mut *tx)
        .await;
    if let Err(e) = updated {
        return Err(if unique_violation(&e) {
            ApiError::Conflict(format!("{kind} {value} already exists"))
        } else {
            e.into()
        });
    }
    let version = bump(&mut tx).await?;
    audit(&mut tx, version, "update", &kind, &value, &admin.wallet).await?;
    tx.commit().await?;
    state.patterns.invalidate();
    Ok(Json(json!({
        "id": id, "kind": kind, "value": value, "data": data, "note": input.note,
        "version": version,
    })))
}

async fn delete(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.begin().await?;
    let deleted: Option<(String, String)> = sqlx::query_as("DELETE FROM patterns WHERE id = $1 RETURNING kind, value")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((kind, value)) = deleted else {
        return Err(ApiError::NotFound("no such pattern".into()));
    };
    let version = bump(&mut tx).await?;
    audit(&mut tx, version, "delete", &kind, &value, &admin.wallet).await?;
    tx.commit().await?;
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
    let mut entries = Vec::with_capacity(req.patterns.len());
    for (i, p) in req.patterns.iter().enumerate() {
        let (value, data) = validate(p).map_err(|e| match e {
            ApiError::BadRequest { code, message } => {
                ApiError::BadRequest { code, message: format!("patterns[{i}]: {message}") }
            }
            other => other,
        })?;
        entries.push((p.kind.clone(), value, data, p.note.clone()));
    }
    let mut tx = state.db.begin().await?;
    let mut removed = 0u64;
    if req.replace {
        let mut kinds: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        removed = sqlx::query("DELETE FROM patterns WHERE kind = ANY($1)")
            .bind(&kinds)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    let mut added = 0u64;
    for (kind, value, data, note) in &entries {
        added += sqlx::query(
            "INSERT INTO patterns (id, kind, value, data, note) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(kind)
        .bind(value)
        .bind(data)
        .bind(note)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    let version = bump(&mut tx).await?;
    let action = if req.replace { "import-replace" } else { "import" };
    audit(&mut tx, version, action, "*", &format!("{added} added, {removed} removed"), &admin.wallet).await?;
    tx.commit().await?;
    state.patterns.invalidate();
    Ok(Json(json!({
        "version": version,
        "added": added,
        "removed": removed,
        "unchanged": entries.len() as u64 - added.min(entries.len() as u64),
    })))
}
