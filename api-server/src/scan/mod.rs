//! Scanning: the transaction decoder, the rules and the domain matcher. Pure code, no I/O.

pub mod domain;
pub mod model;
pub mod official;
pub mod patterns;
pub mod rules;
pub mod skeleton;
pub mod tx;
pub mod verdict;

use serde::Serialize;

use model::DomainModel;
use official::OfficialDomains;
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

/// What domain scans use besides the pattern library, loaded once at start.
pub struct Detection {
    pub model: DomainModel,
    pub official: OfficialDomains,
}

impl Detection {
    /// The model and the official domains compiled into the service.
    pub fn compiled_in() -> Result<Self, String> {
        Ok(Self { model: DomainModel::compiled_in()?, official: OfficialDomains::compiled_in()? })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub action: Action,
    pub risk_score: u32,
    pub warnings: Vec<Warning>,
    /// The domain model's calibrated probability that the domain is phishing; absent for
    /// allowlisted domains, which are not scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

/// The kind of the warning the domain model adds when it raises a verdict.
pub const MODEL_WARNING: &str = "domain_model";

/// The warnings of the name rules that hold whatever the model says: the pattern library's
/// block list, the look-alikes of a protected domain (its name under another top-level
/// domain, one edit from it, its characters imitated, or its name and a top-level domain in
/// front of another site's domain), and a bare IP address (no name for
/// the model to vouch for). Two edits from a long name (`distant_typosquat_domain`) is a
/// heuristic like the others: on the validation split it warned 10 legitimate names (explorers
/// named `*scan`, `balance.*`, `fantom`) and one phishing name.
const CERTAIN_RULES: [&str; 6] = [
    "blocked_domain",
    "homoglyph_domain",
    "typosquat_domain",
    "brand_tld_swap",
    "brand_domain_in_subdomain",
    "ip_address_domain",
];

/// A domain's verdict: the rules', raised to WARN or BLOCK when the model's calibrated
/// probability reaches that threshold (a BLOCK of the rules stays). Below the model's `rules`
/// threshold the model vouches for the name, and only the rules' certain warnings (block list,
/// look-alikes of a protected domain) count: the others (a brand's name inside another name,
/// keywords, top-level domains, non-ASCII) are heuristics that fire on legitimate names too.
/// Official domains and allowlisted ones (and their subdomains) are neither warned nor scored.
pub fn scan_domain(normalized: String, set: &PatternSet, detection: &Detection) -> DomainReport {
    let rules = match detection.official.covering(&normalized) {
        Some(_) => None,
        None => domain::analyze(&normalized, set),
    };
    let Some(mut warnings) = rules else {
        return DomainReport {
            domain: normalized,
            action: Action::None,
            risk_score: 0,
            warnings: Vec::new(),
            probability: None,
        };
    };
    let assessment = detection.model.assess(&normalized);
    if assessment.probability < detection.model.thresholds().rules {
        warnings.retain(|w| CERTAIN_RULES.contains(&w.kind));
    }
    let Verdict { mut action, mut risk_score, mut warnings } = verdict(warnings, set);
    if assessment.action > action {
        let (severity, floor) = match assessment.action {
            Action::Block => (Severity::Critical, set.params.block_score),
            _ => (Severity::High, set.params.warn_score),
        };
        warnings.push(Warning {
            kind: MODEL_WARNING,
            severity,
            message: format!(
                "{normalized} looks like phishing to the domain model (probability {:.3})",
                assessment.probability
            ),
            instruction: None,
        });
        action = assessment.action;
        risk_score = risk_score.max(floor.min(100));
    }
    DomainReport { domain: normalized, action, risk_score, warnings, probability: Some(assessment.probability) }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled-in model with other thresholds (and none under which it vouches for a name).
    fn detection(warn: f64, block: f64) -> Detection {
        detection_with(serde_json::json!({"warn": warn, "block": block}))
    }

    fn detection_with(thresholds: serde_json::Value) -> Detection {
        let mut art: serde_json::Value = serde_json::from_str(model::ARTIFACT).unwrap();
        art["thresholds"] = thresholds;
        Detection { model: DomainModel::from_json(&art.to_string()).unwrap(), official: OfficialDomains::default() }
    }

    fn set() -> PatternSet {
        let mut set = PatternSet::default();
        set.allowed_domains.push("solana.com".into());
        set.blocked_domains.insert("drainer.xyz".into());
        set.protected_domains.push("phantom.app".into());
        set
    }

    #[test]
    fn the_model_raises_what_the_rules_let_pass() {
        // Thresholds every domain reaches: WARN, then BLOCK.
        let r = scan_domain("example.org".into(), &set(), &detection(0.0, 2.0));
        assert_eq!((r.action, r.risk_score), (Action::Warn, 30));
        assert_eq!(r.warnings.len(), 1);
        assert_eq!((r.warnings[0].kind, r.warnings[0].severity), (MODEL_WARNING, Severity::High));
        let r = scan_domain("example.org".into(), &set(), &detection(0.0, 0.0));
        assert_eq!((r.action, r.risk_score), (Action::Block, 70));
        assert_eq!(r.warnings[0].severity, Severity::Critical);
        // Thresholds nothing reaches: the rules' verdict.
        let r = scan_domain("example.org".into(), &set(), &detection(2.0, 2.0));
        assert_eq!((r.action, r.risk_score, r.warnings.len()), (Action::None, 0, 0));
        assert!(r.probability.is_some_and(|p| (0.0..=1.0).contains(&p)));
    }

    #[test]
    fn a_block_of_the_rules_stays_and_allowlisted_domains_are_not_scored() {
        let warn_all = detection(0.0, 2.0);
        let r = scan_domain("app.drainer.xyz".into(), &set(), &warn_all);
        assert_eq!((r.action, r.warnings[0].kind), (Action::Block, "blocked_domain"));
        assert!(r.warnings.iter().all(|w| w.kind != MODEL_WARNING) && r.probability.is_some());
        // A look-alike the rules already block gets no model warning either.
        let r = scan_domain("phant0m.app".into(), &set(), &detection(0.0, 0.0));
        assert_eq!((r.action, r.warnings.len()), (Action::Block, 1));
        for allowed in ["solana.com", "docs.solana.com"] {
            let r = scan_domain(allowed.into(), &set(), &detection(0.0, 0.0));
            assert_eq!((r.action, r.risk_score, r.warnings.len(), r.probability), (Action::None, 0, 0, None));
        }
    }

    #[test]
    fn where_the_model_vouches_for_a_name_only_the_certain_rules_count() {
        let set = set();
        let rules_alone = detection(2.0, 2.0);
        let r = scan_domain("phantom-wallet.io".into(), &set, &rules_alone);
        assert_eq!((r.action, r.warnings[0].kind), (Action::Warn, "brand_impersonation"));
        // Every probability is below the `rules` threshold: the model vouches for every name.
        let vouched = detection_with(serde_json::json!({"warn": 2.0, "block": 2.0, "rules": 2.0}));
        let r = scan_domain("phantom-wallet.io".into(), &set, &vouched);
        assert_eq!((r.action, r.risk_score, r.warnings.len()), (Action::None, 0, 0));
        assert!(r.probability.is_some());
        // The block list and homoglyphs of a protected domain hold.
        let r = scan_domain("app.drainer.xyz".into(), &set, &vouched);
        assert_eq!((r.action, r.warnings[0].kind), (Action::Block, "blocked_domain"));
        let r = scan_domain("phant0m.app".into(), &set, &vouched);
        assert_eq!((r.action, r.warnings[0].kind), (Action::Block, "homoglyph_domain"));
        // So do the protected domain's name under another top-level domain, and its typos.
        for (lookalike, kind) in [("phantom.io", "brand_tld_swap"), ("phamtom.app", "typosquat_domain")] {
            let r = scan_domain(lookalike.into(), &set, &vouched);
            assert_eq!((r.action, r.warnings[0].kind), (Action::Warn, kind), "{lookalike}");
        }
        // Two edits from it is a heuristic: it counts only where the model does not vouch.
        assert_eq!(scan_domain("phantuomn.app".into(), &set, &vouched).action, Action::None);
        assert_eq!(
            scan_domain("phantuomn.app".into(), &set, &rules_alone).warnings[0].kind,
            "distant_typosquat_domain"
        );
        // And a bare IP address, which has no name to vouch for.
        let r = scan_domain("185.22.13.7".into(), &set, &vouched);
        assert_eq!((r.action, r.warnings[0].kind), (Action::Warn, "ip_address_domain"));
        // Nothing is vouched for below a threshold of 0.
        let none = detection_with(serde_json::json!({"warn": 2.0, "block": 2.0, "rules": 0.0}));
        assert_eq!(scan_domain("phantom-wallet.io".into(), &set, &none).action, Action::Warn);
    }

    #[test]
    fn official_domains_are_neither_warned_nor_scored() {
        let mut d = detection(0.0, 0.0);
        d.official = OfficialDomains::parse("phantom.com | Phantom | github.com/phantom\n").unwrap();
        // The rules take phantom.com for phantom.app under another top-level domain.
        let set = set();
        assert_eq!(domain::analyze("phantom.com", &set).unwrap()[0].kind, "brand_tld_swap");
        for official in ["phantom.com", "www.phantom.com", "app.phantom.com"] {
            let r = scan_domain(official.into(), &set, &d);
            assert_eq!((r.action, r.risk_score, r.warnings.len(), r.probability), (Action::None, 0, 0, None));
        }
        // Names merely containing it are scanned as before.
        for other in ["phantom.com.claim.io", "myphantom.com"] {
            assert_eq!(scan_domain(other.into(), &set, &d).action, Action::Block, "{other}");
        }
    }

    #[test]
    fn the_compiled_in_thresholds_flag_a_lure_and_pass_a_plain_name() {
        let d = Detection::compiled_in().unwrap();
        let lure = scan_domain("claim-solana-airdrop-rewards.vercel.app".into(), &PatternSet::default(), &d);
        assert!(lure.probability.unwrap() >= d.model.thresholds().warn, "{lure:?}");
        assert_ne!(lure.action, Action::None);
        let plain = scan_domain("example.org".into(), &PatternSet::default(), &d);
        assert!(plain.probability.unwrap() < d.model.thresholds().warn, "{plain:?}");
        assert_eq!(plain.action, Action::None);
    }
}
