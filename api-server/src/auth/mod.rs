//! Sign-In-With-Solana, access tokens (JWT), refresh tokens, and the machine tokens of the
//! threat-feed sync. No HTTP state here: the
//! extractors that turn a request into a signed-in wallet are in `crate::extract`.

pub mod jwt;
pub mod machine;
pub mod refresh;
pub mod siws;

use axum::http::{HeaderMap, header};

pub use jwt::Role;

use crate::error::ApiError;

/// The access token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
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
