//! Fixed-window rate limits (per subject, from its first request) kept in Redis, so they hold across replicas.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::ReasonLabels;
use crate::state::AppState;

const WINDOW_SECS: u64 = 60;

/// Counts one request for `subject` (e.g. `ip:1.2.3.4`) and refuses it past `limit` per minute.
/// When Redis is unreachable the request is let through (and logged): availability first.
pub async fn check(
    state: &AppState,
    kind: &str,
    subject: &str,
    limit: u32,
) -> Result<(), ApiError> {
    check_and_exists(state, kind, subject, limit, None)
        .await
        .map(|_| ())
}

/// `check`, and in the same round trip whether `exists_key` exists (e.g. a revoked token). With
/// `exists_key`, an unreachable Redis is an error instead of a pass.
pub async fn check_and_exists(
    state: &AppState,
    kind: &str,
    subject: &str,
    limit: u32,
    exists_key: Option<&str>,
) -> Result<bool, ApiError> {
    // The window opens with the first request of a subject and lasts WINDOW_SECS.
    let key = state.key(&["rl", kind, subject]);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .incr(&key, 1u64)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(WINDOW_SECS)
        .arg("NX")
        .ignore()
        .cmd("TTL")
        .arg(&key);
    if let Some(k) = exists_key {
        pipe.cmd("EXISTS").arg(k);
    }
    let mut conn = state.redis.clone();
    let result: redis::RedisResult<(u64, i64, Option<bool>)> = if exists_key.is_some() {
        pipe.query_async(&mut conn).await
    } else {
        pipe.query_async::<(u64, i64)>(&mut conn)
            .await
            .map(|(c, t)| (c, t, None))
    };
    match result {
        Ok((count, ttl, _)) if count > u64::from(limit) => {
            state
                .metrics
                .rate_limited
                .get_or_create(&ReasonLabels {
                    reason: kind.into(),
                })
                .inc();
            let retry_after_secs = u64::try_from(ttl)
                .unwrap_or(WINDOW_SECS)
                .clamp(1, WINDOW_SECS);
            Err(ApiError::RateLimited { retry_after_secs })
        }
        Ok((_, _, exists)) => Ok(exists.unwrap_or(false)),
        Err(e) if exists_key.is_some() => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; allowing request");
            Ok(false)
        }
    }
}

/// The client's IP: the TCP peer, or the first `X-Forwarded-For` entry when configured to trust
/// it (behind an ingress).
pub fn client_ip(state: &AppState, req: &Request) -> Option<IpAddr> {
    if state.config.trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Middleware: the per-IP limit on every `/v1` route.
pub async fn per_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = client_ip(&state, &req).map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    if let Err(e) = check(&state, "ip", &ip, state.config.rate_limit_per_ip).await {
        return e.into_response();
    }
    next.run(req).await
}
