//! Short-lived access tokens: JWT, HS256, signed with `JWT_SECRET`.

use std::sync::LazyLock;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;

pub const ISSUER: &str = "securityguard-api";
pub const AUDIENCE: &str = "securityguard";
const LEEWAY_SECS: u64 = 5;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
}

pub struct Issued {
    pub token: String,
    pub expires_at: i64,
}

pub fn issue(config: &Config, wallet: &str, role: Role) -> Result<Issued, ApiError> {
    let now = jiff::Timestamp::now().as_second();
    let exp = now + config.jwt_ttl_seconds as i64;
    let claims = Claims {
        sub: wallet.to_string(),
        role,
        iat: now,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    };
    encode(config, &claims).map(|token| Issued { token, expires_at: exp })
}

pub fn encode(config: &Config, claims: &Claims) -> Result<String, ApiError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(config.jwt_secret.as_bytes()),
    )
    .map_err(|e| ApiError::Internal(format!("signing a JWT: {e}")))
}

/// What every access token must satisfy; built once (it holds sets), not per request.
static VALIDATION: LazyLock<Validation> = LazyLock::new(|| {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    validation
});

pub fn verify(config: &Config, token: &str) -> Result<Claims, ApiError> {
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(config.jwt_secret.as_bytes()), &VALIDATION)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => ApiError::unauthorized("token_expired", "access token has expired"),
            _ => ApiError::unauthorized("invalid_token", "access token is invalid"),
        })
}

/// Access tokens revoked by logout before they expire (kept in Redis until their expiry).
pub async fn revoke(state: &AppState, claims: &Claims) -> Result<(), ApiError> {
    let ttl = claims.exp - jiff::Timestamp::now().as_second() + LEEWAY_SECS as i64;
    if ttl <= 0 {
        return Ok(());
    }
    let mut conn = state.redis.clone();
    let key = revoked_key(state, &claims.jti);
    redis::cmd("SET").arg(&key).arg(1).arg("EX").arg(ttl).query_async::<()>(&mut conn).await?;
    Ok(())
}

pub fn revoked_key(state: &AppState, jti: &str) -> String {
    state.key(&["revoked-jti", jti])
}
