//! The limits middleware in front of every `/v1` route: fixed-window rate limits per IP and per
//! wallet (a subject's window opens with its first request) kept in Redis, so that they hold
//! across replicas, and the access token's revocation check, in one Redis round trip.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::bearer_token;
use crate::auth::jwt::Claims;
use crate::error::ApiError;
use crate::metrics::ReasonLabels;
use crate::state::AppState;
use crate::store::revoked;

const WINDOW_SECS: u64 = 60;

/// What the limits middleware learned about the caller's access token, for `AuthUser`.
#[derive(Clone, Debug)]
pub enum TokenCheck {
    /// Valid, not revoked, within the wallet's limit.
    Valid(Claims),
    Revoked,
    /// Redis could not be asked whether the token is revoked.
    Unavailable,
}

/// A route that reads a Redis key of its own in the limits' round trip (the scan cache), with
/// [`limits_with`]. The key is computed from the request once its token is verified.
pub trait Lookup {
    /// Reads what the key depends on (for a body: reads it, and leaves what the handler needs
    /// in the request's extensions); returns the request and the key, or why there is none (a
    /// bad body), which is the answer once the limits and the token are passed.
    fn prepare(state: &AppState, req: Request) -> impl Future<Output = (Request, Result<String, ApiError>)> + Send;
}

/// What the limits' round trip found under a route's [`Lookup`] key, in the request extensions.
#[derive(Clone, Debug)]
pub struct LookedUp {
    pub key: String,
    /// The value, when there is one and Redis answered.
    pub value: Option<String>,
}

/// Middleware on every `/v1` route: the limits and the token check in one Redis round trip. A
/// refused request is answered 429; the token's outcome is left in the request extensions for
/// `AuthUser`.
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = client_key(&state, req.headers(), req.extensions());
    let claims = verified_claims(&state, req.headers());
    admit(&state, &ip, claims, req, None, next).await
}

/// [`limits`] for a route with a [`Lookup`]: its GET joins the same round trip. The request of
/// a token that does not verify is not read (refused by `AuthUser` with the reason).
pub async fn limits_with<L: Lookup>(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = client_key(&state, req.headers(), req.extensions());
    let claims = verified_claims(&state, req.headers());
    let (req, key) = match claims {
        Some(_) => {
            let (req, key) = L::prepare(&state, req).await;
            (req, Some(key))
        }
        None => (req, None),
    };
    admit(&state, &ip, claims, req, key, next).await
}

/// Runs the round trip and hands the request on with its outcomes, or answers it: 429 past a
/// limit, then (with a valid token) the lookup's error.
async fn admit(
    state: &AppState,
    ip: &str,
    claims: Option<Claims>,
    mut req: Request,
    key: Option<Result<String, ApiError>>,
    next: Next,
) -> Response {
    let also_get = key.as_ref().and_then(|k| k.as_ref().ok()).map(String::as_str);
    let checked = match check_request(state, ip, claims, also_get).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    match key {
        Some(Ok(key)) => {
            req.extensions_mut().insert(LookedUp { key, value: checked.got });
        }
        // Only after the limits and the token, as every route answers: a revoked token is
        // refused by `AuthUser` whatever the body.
        Some(Err(e)) if matches!(checked.token, Some(TokenCheck::Valid(_))) => return e.into_response(),
        _ => {}
    }
    if let Some(token) = checked.token {
        req.extensions_mut().insert(token);
    }
    next.run(req).await
}

/// The client's IP: the TCP peer, or the first `X-Forwarded-For` entry when configured to trust
/// it (behind an ingress).
fn client_ip(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
    if state.config.trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
}

/// The client IP as the limits key it.
fn client_key(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> String {
    client_ip(state, headers, extensions).map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// The access token of a request, verified (signature and expiry), if it carries one.
fn verified_claims(state: &AppState, headers: &HeaderMap) -> Option<Claims> {
    let token = bearer_token(headers).ok()?;
    state.tokens.verify(&state.config, token).ok()
}

/// What [`check_request`] learned besides the limits.
struct Checked {
    /// The outcome for the access token, when the request carried a valid one.
    token: Option<TokenCheck>,
    /// The value of the key asked for with `also_get`, when there is one and Redis answered.
    got: Option<String>,
}

/// The per-IP limit and, for a request with a verified access token, the per-wallet limit and
/// the revocation check, all in one Redis round trip; `also_get` adds a GET of the caller's
/// own to the same round trip. A refused request is the 429 response. When Redis is
/// unreachable the limits let the request through (availability first) but the token cannot
/// be checked.
async fn check_request(
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
    match pipe.query_async::<Vec<redis::Value>>(&mut conn).await {
        Ok(values) => read_replies(state, values, &ip_key, claims.zip(wallet_key), also_get.is_some()).await,
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; allowing request");
            Ok(Checked { token: claims.map(|_| TokenCheck::Unavailable), got: None })
        }
    }
}

/// The outcomes of [`check_request`]'s round trip: its replies in the order of its commands.
async fn read_replies(
    state: &AppState,
    mut values: Vec<redis::Value>,
    ip_key: &str,
    wallet: Option<(Claims, String)>,
    also_get: bool,
) -> Result<Checked, Response> {
    let int = |values: &[redis::Value], i: usize| {
        values.get(i).and_then(|v| <i64 as redis::FromRedisValue>::from_redis_value_ref(v).ok()).unwrap_or(0)
    };
    if int(&values, 0) > i64::from(state.config.rate_limit_per_ip) {
        return Err(refuse(state, "ip", remaining_window(state, ip_key).await));
    }
    let token = match wallet {
        Some((claims, wallet_key)) => {
            if int(&values, 1) > i64::from(state.config.rate_limit_per_wallet) {
                return Err(refuse(state, "wallet", remaining_window(state, &wallet_key).await));
            }
            Some(if int(&values, 2) != 0 { TokenCheck::Revoked } else { TokenCheck::Valid(claims) })
        }
        None => None,
    };
    let get_index = if token.is_some() { 3 } else { 1 };
    let got = match also_get {
        true if values.len() > get_index => {
            let v = values.swap_remove(get_index);
            <Option<String> as redis::FromRedisValue>::from_redis_value(v).ok().flatten()
        }
        _ => None,
    };
    Ok(Checked { token, got })
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
