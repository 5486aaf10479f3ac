//! `GET /v1/scans`, `GET /v1/scans/{id}` and `POST /v1/scans/{id}/feedback`: the caller's past
//! scans and their feedback on them.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::result::flagged_by_model;
use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthUser};
use crate::metrics::FeedbackLabels;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Serialize)]
pub(super) struct ScanList {
    scans: Vec<ScanSummary>,
}

#[derive(Serialize)]
struct ScanSummary {
    scan_id: Uuid,
    kind: String,
    action: String,
    risk_score: i32,
    created_at: String,
}

/// The caller's most recent scans, newest first (summaries; `GET /v1/scans/{id}` has the rest).
pub(super) async fn list_scans(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ScanList>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 100"));
    }
    if let Some(kind) = &query.kind
        && !["transaction", "domain", "address"].contains(&kind.as_str())
    {
        return Err(ApiError::bad_request("invalid_query", "kind must be transaction, domain or address"));
    }
    let rows = state.scans.list(&user.wallet, query.kind.as_deref(), limit).await?;
    let scans = rows
        .into_iter()
        .map(|s| ScanSummary {
            scan_id: s.id,
            kind: s.kind,
            action: s.action,
            risk_score: s.risk_score,
            created_at: s.created_at,
        })
        .collect();
    Ok(Json(ScanList { scans }))
}

/// One of the caller's own past scans (admins may read any): the recorded result with its id,
/// time and wallet.
pub(super) async fn get_scan(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    match state.scans.get(id).await? {
        Some(scan) if scan.wallet == user.wallet || user.role == Role::Admin => {
            let mut result = scan.result;
            result["scan_id"] = json!(id);
            result["created_at"] = json!(scan.created_at);
            result["wallet"] = json!(scan.wallet);
            Ok(Json(result))
        }
        // Other wallets' scans are indistinguishable from missing ones.
        _ => Err(ApiError::NotFound("no such scan".into())),
    }
}

#[derive(Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FeedbackVerdict {
    FalsePositive,
    FalseNegative,
    Correct,
}

impl FeedbackVerdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::FalsePositive => "false_positive",
            Self::FalseNegative => "false_negative",
            Self::Correct => "correct",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FeedbackRequest {
    verdict: FeedbackVerdict,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Serialize)]
pub(super) struct FeedbackRecorded {
    id: Uuid,
    scan_id: Uuid,
    verdict: FeedbackVerdict,
}

const MAX_COMMENT: usize = 2000;

/// The caller reports whether the verdict of their scan was right; a second report replaces the
/// first.
pub(super) async fn feedback(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<FeedbackRequest>,
) -> Result<(StatusCode, Json<FeedbackRecorded>), ApiError> {
    if req.comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return Err(ApiError::bad_request("invalid_body", format!("comment is longer than {MAX_COMMENT} characters")));
    }
    let scan = state.scans.get(id).await?.filter(|scan| scan.wallet == user.wallet);
    let Some(scan) = scan else {
        return Err(ApiError::NotFound("no such scan".into()));
    };
    let feedback_id =
        state.scans.record_feedback(id, &user.wallet, req.verdict.as_str(), req.comment.as_deref()).await?;
    state.metrics.feedback.get_or_create(&FeedbackLabels { verdict: req.verdict.as_str().into() }).inc();
    // The domain model's precision: was a verdict it raised right?
    let outcome = match req.verdict {
        FeedbackVerdict::Correct => Some("true_positive"),
        FeedbackVerdict::FalsePositive => Some("false_positive"),
        FeedbackVerdict::FalseNegative => None,
    };
    if let (Some(outcome), Some(version)) = (outcome, flagged_by_model(&scan.result)) {
        state.metrics.model.count_feedback(version, outcome);
    }
    Ok((StatusCode::CREATED, Json(FeedbackRecorded { id: feedback_id, scan_id: id, verdict: req.verdict })))
}
