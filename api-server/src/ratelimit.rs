//! Fixed-window rate limits (per subject, from its first request) kept in Redis, so they hold across replicas.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::bearer_token;
use crate::auth::jwt::Claims;
use crate::error::ApiError;
use crate::metrics::ReasonLabels;
use crate::state::AppState;
use crate::store::revoked;

const WINDOW_SECS: u64 = 60;

/// Counts one request for `subject` (e.g. `ip:1.2.3.4`) and refuses it past `limit` per minute.
/// When Redis is unreachable the request is let through (and logged): availability first.
pub async fn check(state: &AppState, kind: &str, subject: &str, limit: u32) -> Result<(), ApiError> {
    check_and_exists(state, kind, subject, limit, None).await.map(|_| ())
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
    pipe.atomic().incr(&key, 1u64).cmd("EXPIRE").arg(&key).arg(WINDOW_SECS).arg("NX").ignore().cmd("TTL").arg(&key);
    if let Some(k) = exists_key {
        pipe.cmd("EXISTS").arg(k);
    }
    let mut conn = state.redis.clone();
    let result: redis::RedisResult<(u64, i64, Option<bool>)> = if exists_key.is_some() {
        pipe.query_async(&mut conn).await
    } else {
        pipe.query_async::<(u64, i64)>(&mut conn).await.map(|(c, t)| (c, t, None))
    };
    match result {
        Ok((count, ttl, _)) if count > u64::from(limit) => {
            state.metrics.rate_limited.get_or_create(&ReasonLabels { reason: kind.into() }).inc();
            let retry_after_secs = u64::try_from(ttl).unwrap_or(WINDOW_SECS).clamp(1, WINDOW_SECS);
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
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
}

/// What the limits middleware learned about the caller's access token, for `AuthUser`.
#[derive(Clone, Debug)]
pub enum TokenCheck {
    /// Valid, not revoked, within the wallet's limit.
    Valid(Claims),
    Revoked,
    /// Redis could not be asked whether the token is revoked.
    Unavailable,
}

/// Counts a request in its window, opening the window with the first one.
fn opened(pipe: &mut redis::Pipeline, key: &str) {
    pipe.incr(key, 1u64).cmd("EXPIRE").arg(key).arg(WINDOW_SECS).arg("NX").ignore();
}

/// Seconds left in a refused subject's window (the whole window when Redis does not say).
async fn remaining_window(state: &AppState, key: &str) -> i64 {
    let mut conn = state.redis.clone();
    redis::cmd("TTL").arg(key).query_async::<i64>(&mut conn).await.unwrap_or(WINDOW_SECS as i64)
}

fn refuse(state: &AppState, kind: &str, ttl: i64) -> Response {
    state.metrics.rate_limited.get_or_create(&ReasonLabels { reason: kind.into() }).inc();
    let retry_after_secs = u64::try_from(ttl).unwrap_or(WINDOW_SECS).clamp(1, WINDOW_SECS);
    ApiError::RateLimited { retry_after_secs }.into_response()
}

/// What [`check_request`] learned besides the limits.
pub struct Checked {
    /// The outcome for the access token, when the request carried a valid one.
    pub token: Option<TokenCheck>,
    /// The value of the key asked for with `also_get`, when there is one and Redis answered.
    pub got: Option<String>,
}

/// The per-IP limit and, for a request with a verified access token, the per-wallet limit and
/// the revocation check, all in one Redis round trip; `also_get` adds a GET of the caller's
/// own to the same round trip. A refused request is the 429 response. When Redis is
/// unreachable the limits let the request through (availability first) but the token cannot
/// be checked.
pub async fn check_request(
    state: &AppState,
    ip: &str,
    claims: Option<Claims>,
    also_get: Option<&str>,
) -> Result<Checked, Response> {
    // No MULTI/EXEC and no TTL on this path: the commands of one pipeline run in order, a
    // counter's window is opened by EXPIRE NX whatever interleaves, and the remaining window is
    // asked for only when a request is refused. Six commands per scan instead of ten.
    let ip_key = state.key(&["rl", "ip", ip]);
    let wallet_key = claims.as_ref().map(|c| state.key(&["rl", "wallet", &c.sub]));
    let mut pipe = redis::pipe();
    opened(&mut pipe, &ip_key);
    if let (Some(c), Some(wallet_key)) = (&claims, &wallet_key) {
        opened(&mut pipe, wallet_key);
        pipe.cmd("EXISTS").arg(revoked::key(&state.keys, &c.jti));
    }
    if let Some(key) = also_get {
        pipe.cmd("GET").arg(key);
    }
    let mut conn = state.redis.clone();
    let outcome: redis::RedisResult<Vec<redis::Value>> = pipe.query_async(&mut conn).await;
    match outcome {
        Ok(mut values) => {
            let int = |i: usize| {
                values.get(i).and_then(|v| <i64 as redis::FromRedisValue>::from_redis_value_ref(v).ok()).unwrap_or(0)
            };
            if int(0) > i64::from(state.config.rate_limit_per_ip) {
                return Err(refuse(state, "ip", remaining_window(state, &ip_key).await));
            }
            let token = match (claims, &wallet_key) {
                (Some(c), Some(wallet_key)) => {
                    if int(1) > i64::from(state.config.rate_limit_per_wallet) {
                        return Err(refuse(state, "wallet", remaining_window(state, wallet_key).await));
                    }
                    Some(if int(2) != 0 { TokenCheck::Revoked } else { TokenCheck::Valid(c) })
                }
                _ => None,
            };
            let get_index = if token.is_some() { 3 } else { 1 };
            let got = match also_get {
                Some(_) if values.len() > get_index => {
                    let v = values.swap_remove(get_index);
                    <Option<String> as redis::FromRedisValue>::from_redis_value(v).ok().flatten()
                }
                _ => None,
            };
            Ok(Checked { token, got })
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; allowing request");
            Ok(Checked { token: claims.map(|_| TokenCheck::Unavailable), got: None })
        }
    }
}

/// The client IP as the limits key it.
pub fn client_key(state: &AppState, req: &Request) -> String {
    client_ip(state, req).map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// The access token of a request, verified (signature and expiry), if it carries one.
pub fn verified_claims(state: &AppState, req: &Request) -> Option<Claims> {
    let token = bearer_token(req.headers()).ok()?;
    state.tokens.verify(&state.config, token).ok()
}

/// Middleware on every `/v1` route (except those that call [`check_request`] themselves): the
/// limits and the token check in one Redis round trip. The token outcome is left in the
/// request extensions for `AuthUser`.
pub async fn limits(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_key(&state, &req);
    let claims = verified_claims(&state, &req);
    match check_request(&state, &ip, claims, None).await {
        Ok(Checked { token: Some(token), .. }) => {
            req.extensions_mut().insert(token);
        }
        Ok(_) => {}
        Err(refused) => return refused,
    }
    next.run(req).await
}
