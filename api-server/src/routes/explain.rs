//! `POST /v1/scans/{id}/explain`: an optional plain-language explanation of a scan.

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;

pub async fn explain(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiPath(_id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    if state.config.claude_api_key.is_none() {
        return Err(ApiError::NotImplemented(
            "explanations are not enabled on this deployment (CLAUDE_API_KEY is not set)".into(),
        ));
    }
    Err(ApiError::NotImplemented(
        "explanations are not available yet".into(),
    ))
}
