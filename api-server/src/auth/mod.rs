//! Sign-In-With-Solana, access tokens (JWT) and refresh tokens.

pub mod jwt;
pub mod refresh;
pub mod siws;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::ratelimit::TokenCheck;
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// A signed-in wallet, from a valid `Authorization: Bearer` access token. Also applies the
/// per-wallet rate limit.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub wallet: String,
    pub role: Role,
    pub claims: jwt::Claims,
}

pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing_token", "Authorization header missing"))?;
    let value =
        value.to_str().map_err(|_| ApiError::unauthorized("invalid_token", "malformed Authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "expected a Bearer token"))?;
    Ok(token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = match parts.extensions.get::<TokenCheck>() {
            // The limits middleware (every /v1 route) already verified this request's token,
            // counted it and checked its revocation.
            Some(TokenCheck::Valid(checked)) => checked.clone(),
            Some(TokenCheck::Revoked) => {
                return Err(ApiError::unauthorized("token_revoked", "access token was revoked"));
            }
            Some(TokenCheck::Unavailable) => {
                return Err(ApiError::Unavailable("the token store is unavailable".into()));
            }
            // Outside the middleware, or a token it could not verify (which fails here with
            // the reason): per-wallet limit and revocation in one round trip.
            None => {
                let claims = jwt::verify(&state.config, bearer_token(parts)?)?;
                let revoked = crate::ratelimit::check_and_exists(
                    state,
                    "wallet",
                    &claims.sub,
                    state.config.rate_limit_per_wallet,
                    Some(&jwt::revoked_key(state, &claims.jti)),
                )
                .await?;
                if revoked {
                    return Err(ApiError::unauthorized("token_revoked", "access token was revoked"));
                }
                claims
            }
        };
        Ok(Self { wallet: claims.sub.clone(), role: claims.role, claims })
    }
}

/// A signed-in wallet with the admin role.
#[derive(Clone, Debug)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(ApiError::Forbidden("this action needs the admin role".into()));
        }
        Ok(Self(user))
    }
}
