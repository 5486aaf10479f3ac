//! `/v1/auth/*`: Sign-In-With-Solana, refresh and logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::siws::{self, Expected, SiwsError, SiwsMessage};
use crate::auth::{Role, bearer_token, jwt, refresh};
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;
use crate::store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/nonce", get(nonce))
        .route("/auth/verify", post(verify))
        .route("/auth/refresh", post(refresh_token))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

fn new_nonce() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    // 56 symbols; the modulo bias is irrelevant for a single-use nonce.
    Ok(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect())
}

/// A single-use nonce, kept in Redis for NONCE_TTL_SECONDS, and the fields the wallet's message
/// must carry.
async fn nonce(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let nonce = new_nonce()?;
    let ttl = state.config.nonce_ttl_seconds;
    let mut conn = state.redis.clone();
    redis::cmd("SET").arg(state.key(&["nonce", &nonce])).arg(1).arg("EX").arg(ttl).query_async::<()>(&mut conn).await?;
    let now = jiff::Timestamp::now();
    let expires_at = now + jiff::SignedDuration::from_secs(ttl as i64);
    Ok(Json(json!({
        "nonce": nonce,
        "domain": state.config.siws_domain,
        "uri": state.config.siws_uri,
        "chain_id": state.config.siws_chain_id,
        "version": "1",
        "statement": "Sign in to SecurityGuard",
        "issued_at": now.to_string(),
        "expires_at": expires_at.to_string(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    /// The exact signed text of the Sign-In-With-Solana message.
    message: String,
    /// ed25519 signature over the message, base58 or base64.
    signature: String,
    /// Optional: the signer's address as the wallet reported it; must match the message.
    #[serde(default)]
    public_key: Option<String>,
}

fn signin_error(state: &AppState, e: SiwsError) -> ApiError {
    state.metrics.signin_failure(e.reason());
    tracing::info!(reason = e.reason(), "sign-in refused");
    match e {
        SiwsError::Malformed(_) => ApiError::bad_request(e.reason(), e.to_string()),
        _ => ApiError::unauthorized(e.reason(), e.to_string()),
    }
}

async fn verify(State(state): State<AppState>, ApiJson(req): ApiJson<VerifyRequest>) -> Result<Json<Value>, ApiError> {
    let fail = |e| signin_error(&state, e);
    let msg = SiwsMessage::parse(&req.message).map_err(fail)?;
    if let Some(pk) = &req.public_key
        && pk.trim() != msg.address
    {
        return Err(fail(SiwsError::AddressMismatch));
    }
    let expected = Expected {
        domain: &state.config.siws_domain,
        uri: &state.config.siws_uri,
        chain_id: &state.config.siws_chain_id,
        max_age_secs: state.config.nonce_ttl_seconds as i64,
    };
    siws::check_fields(&msg, &expected, jiff::Timestamp::now()).map_err(fail)?;
    let signature = siws::decode_signature(&req.signature).ok_or_else(|| {
        state.metrics.signin_failure("malformed_signature");
        ApiError::bad_request("malformed_signature", "signature must be 64 bytes, base58 or base64 encoded")
    })?;
    siws::verify_signature(&msg, &req.message, &signature).map_err(fail)?;

    // Consume the nonce last: only a valid signed message can spend it, and only once.
    let mut conn = state.redis.clone();
    let consumed: Option<String> =
        redis::cmd("GETDEL").arg(state.key(&["nonce", &msg.nonce])).query_async(&mut conn).await?;
    if consumed.is_none() {
        return Err(fail(SiwsError::InvalidNonce));
    }

    let role = if state.config.is_admin(&msg.address) { Role::Admin } else { Role::User };
    let mut tx = state.db.begin().await?;
    store::users::signed_in(&mut *tx, &msg.address, role.as_str()).await?;
    let (_, refresh_token) =
        refresh::store(&mut *tx, &msg.address, uuid::Uuid::new_v4(), state.config.refresh_ttl_seconds).await?;
    tx.commit().await?;
    state.metrics.signins.inc();
    tracing::info!(wallet = %msg.address, role = role.as_str(), "signed in");
    token_response(&state, &msg.address, role, refresh_token)
}

fn token_response(state: &AppState, wallet: &str, role: Role, refresh_token: String) -> Result<Json<Value>, ApiError> {
    let access = jwt::issue(&state.config, wallet, role)?;
    Ok(Json(json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": state.config.jwt_ttl_seconds,
        "refresh_token": refresh_token,
        "refresh_expires_in": state.config.refresh_ttl_seconds,
        "wallet": wallet,
        "role": role,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh_token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<Value>, ApiError> {
    let rotated = refresh::rotate(&state.db, req.refresh_token.trim(), state.config.refresh_ttl_seconds)
        .await
        .inspect_err(|e| {
            if let ApiError::Unauthorized { code, .. } = e {
                state.metrics.signin_failure(code);
            }
        })?;
    let role = if state.config.is_admin(&rotated.wallet) { Role::Admin } else { Role::User };
    token_response(&state, &rotated.wallet, role, rotated.token)
}

/// Revokes the refresh token's family and, when an access token is presented, that token too.
async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    if !refresh::is_well_formed(req.refresh_token.trim()) {
        return Err(ApiError::bad_request("invalid_refresh_token", "refresh token is malformed"));
    }
    refresh::revoke_family(&state.db, req.refresh_token.trim()).await?;
    if let Ok(token) = bearer_token(&parts.headers)
        && let Ok(claims) = jwt::verify(&state.config, token)
        && let Some(ttl) = claims.revocation_ttl_secs()
    {
        store::revoked::revoke(&state.redis, &state.keys, &claims.jti, ttl).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({"wallet": user.wallet, "role": user.role, "expires_at": user.claims.exp}))
}
