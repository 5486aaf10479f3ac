//! What the rules of every program share: the context of one transaction's analysis and the
//! readers of instruction data.

use crate::scan::patterns::PatternSet;
use crate::scan::tx::{Instruction, Pubkey, Transaction};
use crate::scan::verdict::{Severity, Warning};

pub(super) fn le_u32(data: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(..4)?.try_into().ok()?))
}

pub(super) fn le_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// The instruction's n-th account: its message index, if present.
pub(super) fn account(ix: &Instruction, n: usize) -> Option<u8> {
    ix.accounts.get(n).copied()
}

/// What the rules of one transaction share: the transaction, the patterns, the warnings so far and
/// the transfers counted.
pub(super) struct Ctx<'a> {
    pub(super) tx: &'a Transaction,
    pub(super) set: &'a PatternSet,
    pub(super) warnings: Vec<Warning>,
    pub(super) transfers: usize,
}

impl Ctx<'_> {
    pub(super) fn warn(&mut self, kind: &'static str, severity: Severity, ix: Option<usize>, message: String) {
        self.warnings.push(Warning { kind, severity, message, instruction: ix });
    }

    pub(super) fn name(&self, index: u8) -> String {
        match self.tx.key(index) {
            Some(k) => k.to_string(),
            None => format!("lookup-table account #{index}"),
        }
    }

    pub(super) fn is_user(&self, index: u8) -> bool {
        self.tx.is_signer(index)
    }

    /// A key carried in instruction data (a new owner or authority): warns when it is known
    /// malicious and not already reported as one of the transaction's accounts.
    pub(super) fn check_embedded(&mut self, key: Option<Pubkey>, ix: usize, role: &str) {
        let Some(key) = key else { return };
        if self.set.malicious_addresses.contains(&key) && !self.tx.account_keys.contains(&key) {
            self.warn(
                "known_malicious_address",
                Severity::Critical,
                Some(ix),
                format!("names {key}, a known malicious address, as {role}"),
            );
        }
    }

    pub(super) fn is_trusted(&self, index: u8) -> bool {
        self.tx.key(index).is_some_and(|k| self.set.trusted_addresses.contains(k))
    }
}
