//! Rules over decoded transactions: System, SPL Token and Token-2022 (with its extensions, in
//! `token`), Stake and the upgradeable loader, plus unknown programs, lookup tables and
//! known-malicious addresses.

use std::sync::LazyLock;

use context::{Ctx, account, le_u32};

use super::patterns::PatternSet;
use super::tx::{Instruction, Pubkey, Transaction};
use super::verdict::{Severity, Warning};

mod context;
mod token;

pub static SYSTEM_PROGRAM: LazyLock<Pubkey> = LazyLock::new(|| Pubkey([0u8; 32]));
pub static TOKEN_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"));
pub static TOKEN_2022_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"));
pub static STAKE_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("Stake11111111111111111111111111111111111111"));
pub static UPGRADEABLE_LOADER: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("BPFLoaderUpgradeab1e11111111111111111111111"));
pub static COMPUTE_BUDGET: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("ComputeBudget111111111111111111111111111111"));
pub static MEMO_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"));
pub static MEMO_V1_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"));
pub static ASSOCIATED_TOKEN_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"));
pub static VOTE_PROGRAM: LazyLock<Pubkey> =
    LazyLock::new(|| Pubkey::must("Vote111111111111111111111111111111111111111"));

/// Every warning for one decoded transaction.
pub fn analyze(tx: &Transaction, set: &PatternSet) -> Vec<Warning> {
    let mut cx = Ctx { tx, set, warnings: Vec::new(), transfers: 0 };
    known_malicious(&mut cx);
    let mut hidden_writable = 0usize;
    for (i, ix) in tx.instructions.iter().enumerate() {
        let Some(program) = tx.key(ix.program_id_index).copied() else {
            continue;
        };
        hidden_writable += ix.accounts.iter().filter(|&&a| tx.is_from_lookup(a) && tx.is_writable(a)).count();
        instruction(&mut cx, i, ix, program);
    }
    if hidden_writable > 0 {
        cx.warn(
            "lookup_table_accounts",
            Severity::Medium,
            None,
            format!(
                "{hidden_writable} writable account reference(s) come from address lookup tables and cannot be checked here"
            ),
        );
    }
    if cx.transfers > set.params.max_transfers as usize {
        let n = cx.transfers;
        cx.warn(
            "many_transfers",
            Severity::High,
            None,
            format!("{n} transfers in one transaction (more than {})", set.params.max_transfers),
        );
    }
    cx.warnings
}

/// Known malicious addresses among the transaction's accounts and lookup tables.
fn known_malicious(cx: &mut Ctx<'_>) {
    let (tx, set) = (cx.tx, cx.set);
    for key in &tx.account_keys {
        if set.malicious_addresses.contains(key) {
            cx.warn(
                "known_malicious_address",
                Severity::Critical,
                None,
                format!("the transaction involves {key}, a known malicious address"),
            );
        }
    }
    for lookup in &tx.lookups {
        if set.malicious_addresses.contains(&lookup.table) {
            cx.warn(
                "known_malicious_address",
                Severity::Critical,
                None,
                format!("the transaction loads accounts from {}, a known malicious lookup table", lookup.table),
            );
        }
    }
}

/// The rules of the instruction's program; an unknown program's access to the user's writable
/// accounts.
fn instruction(cx: &mut Ctx<'_>, i: usize, ix: &Instruction, program: Pubkey) {
    if program == *SYSTEM_PROGRAM {
        system(cx, i, ix);
    } else if program == *TOKEN_PROGRAM || program == *TOKEN_2022_PROGRAM {
        token::analyze(cx, i, &ix.accounts, &ix.data, program == *TOKEN_2022_PROGRAM);
    } else if program == *STAKE_PROGRAM {
        stake(cx, i, ix);
    } else if program == *UPGRADEABLE_LOADER {
        loader(cx, i, ix);
    } else if program == *COMPUTE_BUDGET
        || program == *MEMO_PROGRAM
        || program == *MEMO_V1_PROGRAM
        || program == *ASSOCIATED_TOKEN_PROGRAM
        || program == *VOTE_PROGRAM
        || cx.set.trusted_programs.contains(&program)
    {
    } else {
        let tx = cx.tx;
        let touched: Vec<u8> = ix.accounts.iter().copied().filter(|&a| cx.is_user(a) && tx.is_writable(a)).collect();
        if !touched.is_empty() {
            let names: Vec<String> = touched.iter().map(|&a| cx.name(a)).collect();
            cx.warn(
                "unknown_program_writable_accounts",
                Severity::Medium,
                Some(i),
                format!("unknown program {program} can modify your writable account(s) {}", names.join(", ")),
            );
        }
    }
}

fn system(cx: &mut Ctx<'_>, i: usize, ix: &Instruction) {
    let Some(tag) = le_u32(&ix.data) else { return };
    match tag {
        // Assign { owner }, AssignWithSeed { base, seed, owner }
        1 | 10 => {
            let owner = if tag == 1 {
                ix.data.get(4..36)
            } else {
                ix.data.len().checked_sub(32).and_then(|s| ix.data.get(s..))
            };
            let owner = owner.and_then(|o| <[u8; 32]>::try_from(o).ok()).map(Pubkey);
            cx.check_embedded(owner, i, "the new owner program");
            let Some(acct) = account(ix, 0) else { return };
            if owner != Some(*SYSTEM_PROGRAM) && cx.is_user(acct) {
                let owner = owner.map_or_else(|| "an unreadable owner".into(), |o| o.to_string());
                cx.warn(
                    "owner_reassignment",
                    Severity::Critical,
                    Some(i),
                    format!("assigns your account {} to program {owner}, giving it full control", cx.name(acct)),
                );
            }
        }
        // Transfer, TransferWithSeed
        2 | 11 => {
            cx.transfers += 1;
        }
        // AdvanceNonceAccount
        4 => cx.warn(
            "durable_nonce",
            Severity::Medium,
            Some(i),
            "uses a durable nonce: this signed transaction stays valid indefinitely and can be submitted later".into(),
        ),
        // AuthorizeNonceAccount { new authority }
        7 => {
            let new = ix.data.get(4..36).and_then(|o| <[u8; 32]>::try_from(o).ok()).map(Pubkey);
            cx.check_embedded(new, i, "the new nonce authority");
            let new = new.map_or_else(|| "an unreadable key".into(), |k| k.to_string());
            cx.warn(
                "nonce_authority_change",
                Severity::High,
                Some(i),
                format!("hands the authority of a durable nonce account to {new}"),
            );
        }
        _ => {}
    }
}

fn stake(cx: &mut Ctx<'_>, i: usize, ix: &Instruction) {
    let tag = le_u32(&ix.data);
    // Authorize { new_authorized, .. } carries the new authority in its data.
    if tag == Some(1) {
        let new = ix.data.get(4..36).and_then(|o| <[u8; 32]>::try_from(o).ok()).map(Pubkey);
        cx.check_embedded(new, i, "the new stake authority");
    }
    // Authorize, AuthorizeChecked, AuthorizeWithSeed, AuthorizeCheckedWithSeed
    if let Some(1 | 8 | 10 | 11) = tag {
        cx.warn(
            "stake_authority_change",
            Severity::High,
            Some(i),
            "changes the staker or withdrawer authority of a stake account".into(),
        );
    }
}

fn loader(cx: &mut Ctx<'_>, i: usize, ix: &Instruction) {
    match le_u32(&ix.data) {
        // SetAuthority, SetAuthorityChecked
        Some(4 | 7) => cx.warn(
            "upgrade_authority_change",
            Severity::Critical,
            Some(i),
            "changes the upgrade authority of a program".into(),
        ),
        Some(3) => cx.warn("program_upgrade", Severity::Medium, Some(i), "upgrades a program's code".into()),
        _ => {}
    }
}
