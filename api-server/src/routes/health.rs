//! `/health`, `/health/live`, `/health/ready`, `/health/detailed`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::store;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/detailed", get(detailed))
}

async fn health() -> Json<Value> {
    Json(json!({
        "status": "ok",
        "service": "securityguard-api",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// The process is up and serving HTTP; dependencies do not matter here.
async fn live() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

struct Check {
    ok: bool,
    latency: Duration,
    error: Option<String>,
}

impl Check {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "status": if self.ok { "up" } else { "down" },
            "latency_ms": (self.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        });
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }
}

async fn timed<F, E>(f: F) -> Check
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, f).await;
    let latency = started.elapsed();
    match result {
        Ok(Ok(())) => Check { ok: true, latency, error: None },
        Ok(Err(e)) => Check { ok: false, latency, error: Some(e.to_string()) },
        Err(_) => Check { ok: false, latency, error: Some("timed out".into()) },
    }
}

async fn check_dependencies(state: &AppState) -> (Check, Check) {
    tokio::join!(timed(store::db::ping(&state.db)), timed(store::redis::ping(&state.redis)))
}

/// Ready while PostgreSQL and Redis answer and the service is not shutting down.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting_down"})));
    }
    let (pg, redis) = check_dependencies(&state).await;
    let migrated = state.is_migrated();
    let ok = pg.ok && redis.ok && migrated;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": if ok { "ready" } else { "not_ready" },
            "checks": {
                "postgres": pg.to_json(),
                "redis": redis.to_json(),
                "schema": if migrated { "migrated" } else { "pending" },
            },
        })),
    )
}

async fn detailed(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (pg, redis) = check_dependencies(&state).await;
    let pattern_version = if pg.ok {
        tokio::time::timeout(CHECK_TIMEOUT, crate::store::patterns::current_version(&state.db))
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    let schema_version: Option<i64> = if pg.ok {
        tokio::time::timeout(CHECK_TIMEOUT, crate::store::db::schema_version(&state.db))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    } else {
        None
    };
    let embedded_schema = crate::store::db::MIGRATOR.iter().map(|m| m.version).max();
    let ok = pg.ok && redis.ok && !state.is_shutting_down();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": if ok { "ok" } else if state.is_shutting_down() { "shutting_down" } else { "degraded" },
            "service": "securityguard-api",
            "version": env!("CARGO_PKG_VERSION"),
            "environment": state.config.environment,
            "components": {
                "postgres": pg.to_json(),
                "redis": redis.to_json(),
                "patterns": {"version": pattern_version},
                "schema": {"version": schema_version, "expected": embedded_schema},
                "claude": {"configured": state.config.claude_api_key.is_some()},
                "solana_rpc": {"configured": state.config.solana_rpc_url.is_some()},
            },
        })),
    )
}
