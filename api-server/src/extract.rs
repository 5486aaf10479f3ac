//! Extractors whose rejections are our JSON errors instead of axum's plain-text ones, and the
//! signed-in wallet of a request.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::machine::Refused;
use crate::auth::{Role, bearer_token, jwt};
use crate::error::ApiError;
use crate::ratelimit::TokenCheck;
use crate::state::AppState;

/// `axum::Json` with JSON error responses.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Path` with JSON error responses.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A signed-in wallet: the outcome of the limits middleware (`crate::ratelimit`) for the
/// request's `Authorization: Bearer` access token, which is in front of every authenticated
/// route. Taken from the request, so extracted once per request.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub wallet: String,
    pub role: Role,
    pub claims: jwt::Claims,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.remove::<TokenCheck>() {
            // Verified, counted against the wallet's limit, not revoked.
            Some(TokenCheck::Valid(claims)) => Ok(Self { wallet: claims.sub.clone(), role: claims.role, claims }),
            Some(TokenCheck::Revoked) => Err(ApiError::unauthorized("token_revoked", "access token was revoked")),
            Some(TokenCheck::Unavailable) => Err(ApiError::Unavailable("the token store is unavailable".into())),
            // The middleware could not verify a token: refused with the reason.
            None => {
                jwt::verify(&state.config, bearer_token(&parts.headers)?)?;
                Err(ApiError::unauthorized("invalid_token", "invalid access token"))
            }
        }
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

/// A machine client holding one of the tokens of FEED_TOKENS_FILE (`Authorization: Bearer`).
/// Not a wallet: it may only do what the routes taking it allow (sync threat feeds).
#[derive(Clone, Copy, Debug)]
pub struct MachineClient;

impl FromRequestParts<AppState> for MachineClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        match state.machine_tokens.check(token) {
            Ok(()) => Ok(Self),
            Err(Refused::Invalid) => Err(ApiError::unauthorized("invalid_token", "invalid machine token")),
            Err(e @ Refused::NotConfigured) => Err(ApiError::Unavailable(e.to_string())),
            Err(e @ Refused::Unusable(_)) => {
                tracing::error!(error = %e, "machine token file");
                Err(ApiError::Unavailable("machine tokens cannot be checked now".into()))
            }
        }
    }
}
