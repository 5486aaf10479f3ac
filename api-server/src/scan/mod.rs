//! Scanning: the transaction decoder, the rules and the domain matcher. Pure code, no I/O.

pub mod domain;
pub mod model;
pub mod patterns;
pub mod rules;
pub mod tx;
pub mod verdict;

use serde::Serialize;

use patterns::PatternSet;
use verdict::{Action, Severity, Verdict, Warning, verdict};

/// What a scan looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanKind {
    Transaction,
    Domain,
    Address,
}

impl ScanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transaction => "transaction",
            Self::Domain => "domain",
            Self::Address => "address",
        }
    }
}

/// The verdict for one serialized transaction; undecodable ones are reported, not guessed.
#[derive(Clone, Debug, Serialize)]
pub struct TransactionReport {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<tx::MessageVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportError>,
    pub action: Action,
    pub risk_score: u32,
    pub warnings: Vec<Warning>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportError {
    pub code: &'static str,
    pub message: String,
}

pub fn scan_transaction(index: usize, bytes: &[u8], set: &PatternSet) -> TransactionReport {
    match tx::Transaction::decode(bytes) {
        Ok(tx) => {
            let Verdict { action, risk_score, warnings } = verdict(rules::analyze(&tx, set), set);
            TransactionReport { index, version: Some(tx.version), error: None, action, risk_score, warnings }
        }
        Err(e) => {
            let warning = Warning {
                kind: e.code(),
                severity: Severity::High,
                message: format!("the transaction could not be checked: {e}"),
                instruction: None,
            };
            let Verdict { action, risk_score, warnings } = verdict(vec![warning], set);
            TransactionReport {
                index,
                version: None,
                error: Some(ReportError { code: e.code(), message: e.to_string() }),
                action: action.max(Action::Warn),
                risk_score,
                warnings,
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub action: Action,
    pub risk_score: u32,
    pub warnings: Vec<Warning>,
}

pub fn scan_domain(normalized: String, set: &PatternSet) -> DomainReport {
    let Verdict { action, risk_score, warnings } = verdict(domain::analyze(&normalized, set), set);
    DomainReport { domain: normalized, action, risk_score, warnings }
}

#[derive(Clone, Debug, Serialize)]
pub struct AddressReport {
    pub address: String,
    pub reputation: &'static str,
    pub action: Action,
    pub risk_score: u32,
    pub warnings: Vec<Warning>,
}

pub fn scan_address(address: &str, set: &PatternSet) -> AddressReport {
    let key = tx::Pubkey::from_base58(address);
    let (reputation, warnings) = if key.is_some_and(|k| set.malicious_addresses.contains(&k)) {
        (
            "malicious",
            vec![Warning {
                kind: "known_malicious_address",
                severity: Severity::Critical,
                message: format!("{address} is a known malicious address"),
                instruction: None,
            }],
        )
    } else if key.is_some_and(|k| set.trusted_addresses.contains(&k)) {
        ("trusted", Vec::new())
    } else {
        ("unknown", Vec::new())
    };
    let Verdict { action, risk_score, warnings } = verdict(warnings, set);
    AddressReport { address: address.to_string(), reputation, action, risk_score, warnings }
}
