//! `POST /v1/scans/{id}/explain`: an optional plain-language explanation of a past scan from the
//! Messages API. Off the scan path: scans never wait for it. Explanations are cached in Redis
//! (`store::explanations`).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::{ApiPath, AuthUser};
use crate::state::AppState;
use crate::store::explanations;

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const MAX_TOKENS: u32 = 600;

pub fn router() -> Router<AppState> {
    Router::new().route("/scans/{id}/explain", post(explain))
}

fn prompt(result: &Value) -> String {
    // Only the verdict and warnings: no raw transactions are stored or sent.
    let mut summary = result.clone();
    if let Some(obj) = summary.as_object_mut() {
        obj.remove("scan_id");
        obj.remove("wallet");
    }
    format!(
        "You explain security scan results of a Solana wallet protection service to a non-expert \
         user. In at most 6 short sentences, say what the scanned item would do, why it got this \
         verdict, and what the user should do. Do not invent details that are not in the result.\n\n\
         Scan result (JSON):\n{summary}"
    )
}

/// The answer: the explanation of a scan, and whether it came from the cache.
#[derive(Serialize)]
struct Explanation {
    scan_id: Uuid,
    explanation: String,
    cached: bool,
}

async fn explain(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Explanation>, ApiError> {
    let Some(api_key) = state.config.claude_api_key.as_deref() else {
        return Err(ApiError::NotImplemented(
            "explanations are not enabled on this deployment (CLAUDE_API_KEY is not set)".into(),
        ));
    };
    let row = state.scans.get(id).await?.map(|scan| (scan.wallet, scan.result));
    let result = match row {
        Some((wallet, result)) if wallet == user.wallet || user.role == Role::Admin => result,
        _ => return Err(ApiError::NotFound("no such scan".into())),
    };
    if let Some(text) = explanations::get(&state.redis, &state.keys, id).await {
        return Ok(Json(Explanation { scan_id: id, explanation: text, cached: true }));
    }
    let text = ask(&state, api_key, &result).await?;
    explanations::put(&state.redis, &state.keys, id, &text).await;
    Ok(Json(Explanation { scan_id: id, explanation: text, cached: false }))
}

/// The explanation service's text for a scan result.
async fn ask(state: &AppState, api_key: &str, result: &Value) -> Result<String, ApiError> {
    let url = format!("{}/v1/messages", state.config.claude_api_url.trim_end_matches('/'));
    let body = json!({
        "model": state.config.claude_model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": prompt(result)}],
    });
    let response = state
        .http
        .post(&url)
        .header("x-api-key", api_key)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "explanation request failed");
            ApiError::BadGateway("the explanation service is unreachable".into())
        })?;
    let status = response.status();
    if !status.is_success() {
        tracing::warn!(%status, "explanation service answered with an error");
        return Err(ApiError::BadGateway(format!("the explanation service answered {}", status.as_u16())));
    }
    let answer: Value = response.json().await.map_err(|e| {
        tracing::warn!(error = %e, "explanation response is not JSON");
        ApiError::BadGateway("the explanation service sent an unreadable answer".into())
    })?;
    let text: String = answer["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "text")
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if text.trim().is_empty() {
        return Err(ApiError::BadGateway("the explanation service sent no text".into()));
    }
    Ok(text)
}
