//! Short-lived access tokens: JWT, HS256, signed with `JWT_SECRET`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::ApiError;

pub const ISSUER: &str = "securityguard-api";
pub const AUDIENCE: &str = "securityguard";
const LEEWAY_SECS: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

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

/// Access tokens that passed [`verify`], by their exact text, so that a client's every
/// request does not redo the HMAC and the two JSON parses (about 6 % of a scan's CPU). Only
/// verified tokens are kept, a token's expiry is checked again on every use, and the cache is
/// emptied when it holds [`VERIFIED_TOKENS`] of them. Revocation is not cached: callers check
/// it in Redis on every request.
#[derive(Default)]
pub struct VerifiedTokens(Mutex<HashMap<Box<str>, Claims>>);

pub const VERIFIED_TOKENS: usize = 10_000;

impl VerifiedTokens {
    /// The same outcome as [`verify`].
    pub fn verify(&self, config: &Config, token: &str) -> Result<Claims, ApiError> {
        let now = jiff::Timestamp::now().as_second();
        if let Some(claims) = self.lock().get(token)
            && claims.exp >= now - LEEWAY_SECS as i64
        {
            return Ok(claims.clone());
        }
        let claims = verify(config, token)?;
        let mut tokens = self.lock();
        if tokens.len() >= VERIFIED_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.into(), claims.clone());
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Claims>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Claims {
    /// How long a revocation of this token must be kept: until the token would no longer be
    /// accepted (its expiry and the leeway); `None` once that has passed.
    pub fn revocation_ttl_secs(&self) -> Option<i64> {
        let ttl = self.exp - jiff::Timestamp::now().as_second() + LEEWAY_SECS as i64;
        (ttl > 0).then_some(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config() -> Config {
        Config::parse_from([
            "securityguard-api",
            "--database-url=postgres://localhost/x",
            "--redis-url=redis://localhost",
            "--jwt-secret=0123456789abcdef0123456789abcdef",
        ])
    }

    fn claims(exp_in: i64) -> Claims {
        let now = jiff::Timestamp::now().as_second();
        Claims {
            sub: "wallet".into(),
            role: Role::User,
            iat: now,
            exp: now + exp_in,
            jti: "jti".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        }
    }

    #[test]
    fn cached_verification_has_the_outcomes_of_verify() {
        let config = config();
        let cache = VerifiedTokens::default();
        let token = encode(&config, &claims(60)).unwrap();
        assert_eq!(cache.verify(&config, &token).unwrap().sub, "wallet");
        assert_eq!(cache.lock().len(), 1);
        assert_eq!(cache.verify(&config, &token).unwrap().sub, "wallet");
        assert_eq!(cache.lock().len(), 1);

        // A token differing in one character is verified on its own, and refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let err = cache.verify(&config, &forged).unwrap_err();
        assert!(format!("{err:?}").contains("invalid_token"), "{err:?}");
        assert_eq!(cache.lock().len(), 1);

        // Signed with another secret: refused although the claims are the same.
        let mut other = config.clone();
        other.jwt_secret = "another-secret-another-secret-another".into();
        let foreign = encode(&other, &claims(60)).unwrap();
        assert!(cache.verify(&config, &foreign).is_err());
    }

    #[test]
    fn a_cached_token_expires() {
        let config = config();
        let cache = VerifiedTokens::default();
        // A token cached while it was valid, whose expiry (and leeway) has passed since.
        let expired = claims(-(LEEWAY_SECS as i64) - 10);
        let token = encode(&config, &expired).unwrap();
        cache.lock().insert(token.as_str().into(), expired);
        let err = cache.verify(&config, &token).unwrap_err();
        assert!(format!("{err:?}").contains("token_expired"), "{err:?}");
    }
}
