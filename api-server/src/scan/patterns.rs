//! The pattern library as the scanners use it: an immutable snapshot of one version.

use std::collections::HashSet;

use super::skeleton::ProtectedDomain;
use super::tx::Pubkey;

/// Tunable rule parameters (kind `rule_parameter` in the library).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleParams {
    /// More transfers than this in one transaction is suspicious.
    pub max_transfers: u32,
    /// Risk score from which the action is BLOCK.
    pub block_score: u32,
    /// Risk score from which the action is WARN.
    pub warn_score: u32,
}

impl Default for RuleParams {
    fn default() -> Self {
        Self { max_transfers: 8, block_score: 70, warn_score: 30 }
    }
}

#[derive(Clone, Debug, Default)]
pub struct PatternSet {
    pub version: i64,
    /// A set: a scan looks up each suffix of the domain (a feed adds tens of thousands).
    pub blocked_domains: HashSet<String>,
    pub allowed_domains: Vec<String>,
    /// With their comparison forms, computed once here rather than for every scanned domain.
    pub protected_domains: Vec<ProtectedDomain>,
    /// Addresses as keys, so that checking a transaction's accounts encodes nothing.
    pub malicious_addresses: HashSet<Pubkey>,
    pub trusted_addresses: HashSet<Pubkey>,
    pub trusted_programs: HashSet<Pubkey>,
    pub params: RuleParams,
}

impl PatternSet {
    /// Adds one library entry. Unknown kinds and bad parameters are skipped (and reported).
    pub fn add(&mut self, kind: &str, value: &str, data: &serde_json::Value) -> Result<(), String> {
        let value = value.trim();
        match kind {
            "blocked_domain" => {
                self.blocked_domains.insert(value.to_ascii_lowercase());
            }
            "allowed_domain" => self.allowed_domains.push(value.to_ascii_lowercase()),
            "protected_domain" => self.protected_domains.push(ProtectedDomain::new(value)),
            "malicious_address" | "trusted_address" | "trusted_program" => {
                let key =
                    Pubkey::from_base58(value).ok_or_else(|| format!("{kind} {value} is not a base58 address"))?;
                match kind {
                    "malicious_address" => self.malicious_addresses.insert(key),
                    "trusted_address" => self.trusted_addresses.insert(key),
                    _ => self.trusted_programs.insert(key),
                };
            }
            "rule_parameter" => {
                let n = data
                    .get("value")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("rule parameter {value} needs data.value (a u32)"))?;
                match value {
                    "max_transfers" => self.params.max_transfers = n,
                    "block_score" => self.params.block_score = n,
                    "warn_score" => self.params.warn_score = n,
                    other => return Err(format!("unknown rule parameter {other}")),
                }
            }
            other => return Err(format!("unknown pattern kind {other}")),
        }
        Ok(())
    }
}
