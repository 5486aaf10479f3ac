//! What every scan answers and records: the overall verdict of its reports, its metrics, the
//! scan record and the response.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ApiError;
use crate::metrics::{ScanLabels, WarningLabels};
use crate::scan::verdict::{Action, Severity};
use crate::scan::{self, AddressReport, DomainReport, ScanKind};
use crate::state::AppState;
use crate::store::scans::NewScan;

/// A scan's answer; without its id, its record.
#[derive(Serialize)]
pub(super) struct ScanResult<'a> {
    kind: ScanKind,
    action: Action,
    risk_score: u32,
    pattern_version: i64,
    /// The domain model's version, in answers of domain scans.
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    cached: bool,
    #[serde(flatten)]
    reports: Reports<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_id: Option<Uuid>,
}

/// A scan's reports, under the name of their kind.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Reports<'a> {
    /// As JSON: from the cache as stored, or serialized once for the cache and the answer.
    Transactions(&'a RawValue),
    Domains(&'a [DomainReport]),
    Addresses(&'a [AddressReport]),
}

impl Reports<'_> {
    fn kind(&self) -> ScanKind {
        match self {
            Self::Transactions(_) => ScanKind::Transaction,
            Self::Domains(_) => ScanKind::Domain,
            Self::Addresses(_) => ScanKind::Address,
        }
    }
}

impl<'a> ScanResult<'a> {
    /// The result of `reports`, whose overall verdict is `(action, risk_score)`.
    pub(super) fn new(reports: Reports<'a>, (action, risk_score): (Action, u32), pattern_version: i64) -> Self {
        Self {
            kind: reports.kind(),
            action,
            risk_score,
            pattern_version,
            model_version: None,
            cached: false,
            reports,
            scan_id: None,
        }
    }

    /// Names the version of the domain model the reports were scored with.
    pub(super) fn scored_by(self, model_version: &'a str) -> Self {
        Self { model_version: Some(model_version), ..self }
    }

    /// Marks the result as served from the scan cache.
    pub(super) fn cached(self, cached: bool) -> Self {
        Self { cached, ..self }
    }

    pub(super) fn kind(&self) -> ScanKind {
        self.kind
    }

    pub(super) fn action(&self) -> Action {
        self.action
    }
}

/// The domain model's version, when the recorded scan `recorded` is one of domains in which
/// the model raised a verdict (a report with a `domain_model` warning).
pub(super) fn flagged_by_model(recorded: &Value) -> Option<&str> {
    let raised = |report: &Value| {
        report["warnings"].as_array().is_some_and(|ws| ws.iter().any(|w| w["kind"] == scan::MODEL_WARNING))
    };
    if recorded["domains"].as_array()?.iter().any(raised) { recorded["model_version"].as_str() } else { None }
}

/// Refuses a request of no items or of more than `max` (`what`: "domains").
pub(super) fn check_count(len: usize, max: usize, what: &str) -> Result<(), ApiError> {
    if len == 0 || len > max {
        return Err(ApiError::bad_request("invalid_body", format!("send between 1 and {max} {what}")));
    }
    Ok(())
}

/// The overall verdict of a scan: the worst action and the highest score of its reports.
pub(super) fn overall(verdicts: impl IntoIterator<Item = (Action, u32)>) -> (Action, u32) {
    verdicts.into_iter().fold((Action::None, 0), |(a, s), (ra, rs)| (a.max(ra), s.max(rs)))
}

pub(super) fn count_scan(state: &AppState, kind: ScanKind, action: Action) {
    state
        .metrics
        .scans
        .get_or_create(&ScanLabels { kind: kind.as_str().into(), verdict: action.as_str().into() })
        .inc();
}

pub(super) fn count_warning(state: &AppState, kind: &str, severity: Severity) {
    state
        .metrics
        .warnings
        .get_or_create(&WarningLabels { kind: kind.into(), severity: severity.as_str().into() })
        .inc();
}

/// Records the scan of `wallet` and answers it: the recorded result and its id.
pub(super) async fn record_and_answer(
    state: &AppState,
    wallet: String,
    mut result: ScanResult<'_>,
    content_hash: [u8; 32],
) -> Result<Response, ApiError> {
    let recorded = serde_json::to_string(&result).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut body = Vec::with_capacity(recorded.len() + 60);
    let scan = NewScan {
        wallet,
        kind: result.kind,
        content_hash,
        pattern_version: result.pattern_version,
        action: result.action,
        risk_score: result.risk_score,
        result: recorded,
        cached: result.cached,
    };
    result.scan_id = Some(state.scans.record(scan).await?);
    serde_json::to_writer(&mut body, &result).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_scan_is_flagged_by_the_model_when_one_of_its_domains_has_its_warning() {
        let warning = |kind: &str| json!({"kind": kind, "severity": "high", "message": ""});
        let scan = |warnings: Vec<Value>| {
            json!({"kind": "domain", "model_version": "dm1-x", "domains": [
                {"domain": "a.example", "warnings": []},
                {"domain": "b.example", "warnings": warnings},
            ]})
        };
        assert_eq!(flagged_by_model(&scan(vec![warning("phishing_keywords"), warning("domain_model")])), Some("dm1-x"));
        assert_eq!(flagged_by_model(&scan(vec![warning("brand_tld_swap")])), None);
        assert_eq!(flagged_by_model(&json!({"kind": "address", "addresses": []})), None);
        // Recorded before the model: no version to count it under.
        assert_eq!(
            flagged_by_model(&json!({"kind": "domain", "domains": [{"warnings": [warning("domain_model")]}]})),
            None
        );
    }
}
