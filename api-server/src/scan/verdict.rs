//! The vocabulary of scan results: warnings, their severity, and the verdict (action and risk
//! score) computed from them. Shared by the rules, the domain matcher and the API.

use serde::Serialize;

use super::patterns::PatternSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn score(self) -> u32 {
        match self {
            Self::Low => 10,
            Self::Medium => 30,
            Self::High => 60,
            Self::Critical => 100,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum Action {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "BLOCK")]
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Warn => "WARN",
            Self::Block => "BLOCK",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Index of the instruction that triggered it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub action: Action,
    pub risk_score: u32,
    pub warnings: Vec<Warning>,
}

/// Risk score (capped at 100) and action from the warnings and the rule parameters.
pub fn verdict(warnings: Vec<Warning>, set: &PatternSet) -> Verdict {
    let risk_score = warnings.iter().map(|w| w.severity.score()).sum::<u32>().min(100);
    let action = if risk_score >= set.params.block_score {
        Action::Block
    } else if risk_score >= set.params.warn_score {
        Action::Warn
    } else {
        Action::None
    };
    Verdict { action, risk_score, warnings }
}
