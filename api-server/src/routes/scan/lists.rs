//! `POST /v1/scan/domains` and `POST /v1/scan/addresses`: lists of domains or addresses checked
//! against the pattern library.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::result::{Reports, ScanResult, check_count, count_scan, count_warning, overall, record_and_answer};
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser};
use crate::scan::tx::Pubkey;
use crate::scan::verdict::{Action, Warning};
use crate::scan::{self, AddressReport, DomainReport, domain};
use crate::state::AppState;

pub const MAX_DOMAINS: usize = 50;
pub const MAX_ADDRESSES: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DomainsRequest {
    domains: Vec<String>,
}

pub(super) async fn scan_domains(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<DomainsRequest>,
) -> Result<Response, ApiError> {
    check_count(req.domains.len(), MAX_DOMAINS, "domains")?;
    let normalized = req
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            domain::normalize(d).map_err(|why| ApiError::bad_request("invalid_domain", format!("domains[{i}]: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let set = state.patterns.current(&state.db).await?;
    let reports: Vec<_> = normalized.into_iter().map(|d| scan::scan_domain(d, &set, &state.detection)).collect();
    let model_version = state.detection.model.version();
    for r in &reports {
        state.metrics.model.count_domain_verdict(model_version, r.action.as_str());
    }
    let result = ScanResult::new(Reports::Domains(&reports), overall(reports.iter().map(Report::verdict)), set.version)
        .scored_by(model_version);
    finish(&state, user, &reports, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressesRequest {
    addresses: Vec<String>,
}

pub(super) async fn scan_addresses(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<AddressesRequest>,
) -> Result<Response, ApiError> {
    check_count(req.addresses.len(), MAX_ADDRESSES, "addresses")?;
    for (i, a) in req.addresses.iter().enumerate() {
        if Pubkey::from_base58(a.trim()).is_none() {
            return Err(ApiError::bad_request(
                "invalid_address",
                format!("addresses[{i}] is not a base58 Solana address"),
            ));
        }
    }
    let set = state.patterns.current(&state.db).await?;
    let reports: Vec<_> = req.addresses.iter().map(|a| scan::scan_address(a.trim(), &set)).collect();
    let result =
        ScanResult::new(Reports::Addresses(&reports), overall(reports.iter().map(Report::verdict)), set.version);
    finish(&state, user, &reports, result).await
}

/// A domain's or an address's report: its verdict and its warnings.
trait Report: Serialize {
    fn verdict(&self) -> (Action, u32);
    fn warnings(&self) -> &[Warning];
}

impl Report for DomainReport {
    fn verdict(&self) -> (Action, u32) {
        (self.action, self.risk_score)
    }

    fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

impl Report for AddressReport {
    fn verdict(&self) -> (Action, u32) {
        (self.action, self.risk_score)
    }

    fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// Counts, records and answers a scan of domains or addresses (`result`, of `reports`).
async fn finish<R: Report>(
    state: &AppState,
    user: AuthUser,
    reports: &[R],
    result: ScanResult<'_>,
) -> Result<Response, ApiError> {
    let hash = sorted_json_hash(reports)?;
    count_scan(state, result.kind(), result.action());
    for w in reports.iter().flat_map(R::warnings) {
        count_warning(state, w.kind, w.severity);
    }
    record_and_answer(state, user.wallet, result, hash).await
}

/// SHA-256 of the reports as JSON with sorted keys (the order of `serde_json::Value`): the
/// content hash recorded for scans of domains and addresses from the first version on.
fn sorted_json_hash<R: Serialize>(reports: &[R]) -> Result<[u8; 32], ApiError> {
    let value = serde_json::to_value(reports).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Sha256::digest(value.to_string().as_bytes()).into())
}
