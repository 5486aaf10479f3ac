//! SPL Token and Token-2022 instructions.
//!
//! Both programs share the base instruction set (tags 0 to 24). Token-2022 adds its extensions:
//! a one-byte tag naming the extension, then (for most) a one-byte tag of the extension's own
//! instruction and its fixed-size data, as in the `spl-token-2022-interface` crate. It also
//! accepts the token-metadata and token-group interface instructions (8-byte discriminators)
//! and a batch of token instructions (tag 255). Every read is bounds-checked; a tag this module
//! does not know is reported as unchecked, never guessed.

use super::context::{Ctx, le_u64};
use crate::scan::tx::Pubkey;
use crate::scan::verdict::Severity;

/// Highest tag of the base instruction set shared by both programs (`UiAmountToAmount`).
const LAST_BASE_TAG: u8 = 24;
/// `WithdrawExcessLamports`, `UnwrapLamports` and `Batch` are accepted by both programs.
const WITHDRAW_EXCESS_LAMPORTS: u8 = 38;
const UNWRAP_LAMPORTS: u8 = 45;
const BATCH: u8 = 255;

/// The token-metadata interface's `UpdateAuthority`:
/// sha256("spl_token_metadata_interface:update_the_authority")[..8].
const METADATA_UPDATE_AUTHORITY: [u8; 8] = [215, 228, 166, 228, 84, 100, 86, 123];
/// The other token-metadata instructions: initialize, update field, remove key, emit.
const METADATA_OTHER: [[u8; 8]; 4] = [
    [210, 225, 30, 162, 88, 184, 77, 141],
    [221, 233, 49, 45, 181, 202, 220, 200],
    [234, 18, 32, 56, 89, 141, 37, 181],
    [250, 166, 180, 250, 13, 12, 184, 70],
];
/// The token-group interface's `UpdateGroupAuthority`:
/// sha256("spl_token_group_interface:update_authority")[..8].
const GROUP_UPDATE_AUTHORITY: [u8; 8] = [161, 105, 88, 1, 237, 221, 216, 203];
/// The other token-group instructions: initialize group, update max size, initialize member.
const GROUP_OTHER: [[u8; 8]; 3] =
    [[121, 113, 108, 39, 54, 51, 0, 4], [108, 37, 171, 143, 248, 30, 18, 110], [152, 32, 222, 176, 223, 237, 116, 134]];

/// One token instruction: its account indexes (into the message) and data. A batch's inner
/// instructions are views into the outer instruction.
#[derive(Clone, Copy)]
struct TokenIx<'a> {
    accounts: &'a [u8],
    data: &'a [u8],
}

impl TokenIx<'_> {
    fn account(&self, n: usize) -> Option<u8> {
        self.accounts.get(n).copied()
    }

    /// A 32-byte key at `at` in the data.
    fn key(&self, at: usize) -> Option<Pubkey> {
        self.data.get(at..at + 32).and_then(|k| <[u8; 32]>::try_from(k).ok()).map(Pubkey)
    }

    /// `MaybeNull<Pubkey>` (Token-2022 extensions): 32 bytes, all zero for none.
    fn maybe_null_key(&self, at: usize) -> Option<Option<Pubkey>> {
        self.key(at).map(|k| (k.0 != [0u8; 32]).then_some(k))
    }

    /// `COption<Pubkey>` (the base instruction set): a 0 or 1 byte, then the key when 1.
    fn coption_key(&self, at: usize) -> Option<Option<Pubkey>> {
        match self.data.get(at)? {
            0 => Some(None),
            1 => self.key(at + 1).map(Some),
            _ => None,
        }
    }
}

/// Warnings for one instruction of the SPL Token (`is_2022` false) or Token-2022 program.
pub(super) fn analyze(cx: &mut Ctx<'_>, i: usize, accounts: &[u8], data: &[u8], is_2022: bool) {
    instruction(cx, i, TokenIx { accounts, data }, is_2022, false);
}

fn instruction(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, is_2022: bool, in_batch: bool) {
    let Some(&tag) = ix.data.first() else {
        return unknown(cx, i, is_2022, "an empty instruction".into());
    };
    match tag {
        0..=LAST_BASE_TAG => base(cx, i, ix, tag),
        WITHDRAW_EXCESS_LAMPORTS => to_third_party(cx, i, ix, "moves the excess lamports of a token account or mint"),
        UNWRAP_LAMPORTS => {
            cx.transfers += 1;
            to_third_party(cx, i, ix, "unwraps SOL from a wrapped-SOL token account");
        }
        BATCH if in_batch => unreadable_batch(cx, i, "a batch inside a batch"),
        BATCH => batch(cx, i, ix, is_2022),
        _ if is_2022 => {
            if !extension(cx, i, ix, tag) && !interface(cx, i, ix) {
                unknown(cx, i, true, format!("instruction tag {tag}"));
            }
        }
        _ => unknown(cx, i, false, format!("instruction tag {tag}")),
    }
}

/// An instruction this module cannot read: reported, not guessed.
fn unknown(cx: &mut Ctx<'_>, i: usize, is_2022: bool, what: String) {
    let program = if is_2022 { "Token-2022" } else { "SPL Token" };
    cx.warn(
        "unknown_token_instruction",
        Severity::Medium,
        Some(i),
        format!("{program} {what} is not one this scanner knows, so it was not checked"),
    );
}

/// The base instruction set (both programs).
fn base(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, tag: u8) {
    match tag {
        // Transfer, TransferChecked
        3 | 12 => cx.transfers += 1,
        // Approve { amount } [source, delegate, owner]; ApproveChecked [source, mint, delegate, owner]
        4 | 13 => approve(cx, i, ix, tag),
        // SetAuthority { authority_type, new_authority: COption<Pubkey> } [account, current]
        6 => set_authority(cx, i, ix),
        // CloseAccount [account, destination, owner]
        9 => {
            if let (Some(dest), Some(owner)) = (ix.account(1), ix.account(2)) {
                let same = cx.tx.key(dest).is_some() && cx.tx.key(dest) == cx.tx.key(owner);
                if !same && !cx.is_user(dest) {
                    cx.warn(
                        "close_to_third_party",
                        Severity::High,
                        Some(i),
                        format!("closes a token account and sends its rent to {}", cx.name(dest)),
                    );
                }
            }
        }
        _ => {}
    }
}

fn approve(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, tag: u8) {
    let amount = le_u64(ix.data, 1);
    let delegate = ix.account(if tag == 4 { 1 } else { 2 });
    if amount == Some(u64::MAX) {
        cx.warn(
            "unlimited_approval",
            Severity::High,
            Some(i),
            "approves a delegate to spend an unlimited amount of your tokens".into(),
        );
    }
    if let Some(d) = delegate
        && !cx.is_user(d)
        && !cx.is_trusted(d)
    {
        cx.warn(
            "unknown_delegate_approval",
            Severity::Medium,
            Some(i),
            format!("approves {} (not a known address) as a delegate of your tokens", cx.name(d)),
        );
    }
}

fn set_authority(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    let kind = ix.data.get(1).copied();
    let new = ix.coption_key(2).flatten();
    cx.check_embedded(new, i, "the new authority");
    let new = new.map_or_else(|| "nobody".to_string(), |k| k.to_string());
    let (what, severity) = match kind {
        Some(2) => ("owner of a token account", Severity::Critical),
        Some(3) => ("close authority of a token account", Severity::Critical),
        Some(8) => ("permanent delegate of a mint (it can move or burn every holder's tokens)", Severity::Critical),
        Some(kind) => match authority_name(kind) {
            Some(name) => (name, Severity::High),
            None => ("authority of an unknown type", Severity::High),
        },
        None => ("an unreadable authority", Severity::High),
    };
    cx.warn("token_authority_change", severity, Some(i), format!("changes the {what} to {new}"));
}

/// `SetAuthority` authority types other than account owner, close authority and permanent
/// delegate (Token-2022 `AuthorityType`).
fn authority_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0 => "mint authority",
        1 => "freeze authority",
        4 => "transfer fee authority of a mint",
        5 => "withheld-fee withdraw authority of a mint",
        6 => "close authority of a mint",
        7 => "interest rate authority of a mint",
        9 => "confidential transfer authority of a mint",
        10 => "transfer hook authority of a mint",
        11 => "confidential transfer fee authority of a mint",
        12 => "metadata pointer authority of a mint",
        13 => "group pointer authority of a mint",
        14 => "group member pointer authority of a mint",
        15 => "UI amount scale authority of a mint",
        16 => "pause authority of a mint",
        17 => "permissioned burn authority of a mint",
        _ => return None,
    })
}

/// `[source, destination, authority]`: warns when the destination is not the user's.
fn to_third_party(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, what: &str) {
    let Some(dest) = ix.account(1) else { return };
    let owner = ix.account(2);
    let same = cx.tx.key(dest).is_some() && owner.and_then(|o| cx.tx.key(o)) == cx.tx.key(dest);
    if !same && !cx.is_user(dest) {
        cx.warn("lamports_to_third_party", Severity::High, Some(i), format!("{what} to {}", cx.name(dest)));
    }
}

/// A batch: `(u8 account count, u8 data length, data)` per inner instruction, accounts taken in
/// order from the outer instruction's. Each inner instruction gets the same rules.
fn batch(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, is_2022: bool) {
    let mut data = &ix.data[1..];
    let mut accounts = ix.accounts;
    let mut inner = Vec::new();
    while !data.is_empty() {
        let (Some(&n_accounts), Some(&n_data)) = (data.first(), data.get(1)) else {
            return unreadable_batch(cx, i, "a truncated inner instruction header");
        };
        let (n_accounts, n_data) = (usize::from(n_accounts), usize::from(n_data));
        let (Some(ix_data), Some(ix_accounts)) = (data.get(2..2 + n_data), accounts.get(..n_accounts)) else {
            return unreadable_batch(cx, i, "an inner instruction longer than the batch");
        };
        if ix_data.is_empty() {
            return unreadable_batch(cx, i, "an inner instruction without data");
        }
        inner.push(TokenIx { accounts: ix_accounts, data: ix_data });
        data = &data[2 + n_data..];
        accounts = &accounts[n_accounts..];
    }
    if inner.is_empty() {
        return unreadable_batch(cx, i, "no inner instruction");
    }
    for ix in inner {
        instruction(cx, i, ix, is_2022, true);
    }
}

fn unreadable_batch(cx: &mut Ctx<'_>, i: usize, why: &str) {
    cx.warn(
        "unreadable_token_batch",
        Severity::Medium,
        Some(i),
        format!("a batch of token instructions could not be read ({why}), so it was not checked"),
    );
}

/// Token-2022 extension instructions; false for a tag that is not an extension.
fn extension(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, tag: u8) -> bool {
    let sub = ix.data.get(1).copied();
    let name = match tag {
        // InitializeMintCloseAuthority, CreateNativeMint, InitializeNonTransferableMint: new
        // mints, nothing of the user's changes.
        25 | 31 | 32 => return true,
        26 => "transfer fee",
        27 => "confidential transfer",
        28 => "default account state",
        29 => {
            reallocate(cx, i, ix);
            return true;
        }
        30 => "memo transfer",
        33 => "interest-bearing mint",
        34 => "CPI guard",
        35 => {
            permanent_delegate(cx, i, ix);
            return true;
        }
        36 => "transfer hook",
        37 => "confidential transfer fee",
        39 => "metadata pointer",
        40 => "group pointer",
        41 => "group member pointer",
        42 => "confidential mint and burn",
        43 => "scaled UI amount",
        44 => "pausable",
        46 => "permissioned burn",
        _ => return false,
    };
    let Some(sub) = sub else {
        unknown(cx, i, true, format!("{name} extension instruction without a sub-instruction"));
        return true;
    };
    if !extension_instruction(cx, i, ix, tag, sub) {
        unknown(cx, i, true, format!("{name} extension instruction {sub}"));
    }
    true
}

/// An extension's instruction `sub`; false for one this module does not know.
fn extension_instruction(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, tag: u8, sub: u8) -> bool {
    match (tag, sub) {
        // TransferFee: InitializeTransferFeeConfig, TransferCheckedWithFee, WithdrawWithheld-
        // TokensFromMint, WithdrawWithheldTokensFromAccounts, HarvestWithheldTokensToMint,
        // SetTransferFee
        (26, 1) => transfer_checked_with_fee(cx, i, ix),
        (26, 5) => transfer_fee_change(cx, i, ix),
        // ConfidentialTransfer: UpdateMint sets the auditor key that can decrypt every amount.
        (27, 1) => cx.warn(
            "confidential_transfer_auditor_change",
            Severity::High,
            Some(i),
            "changes the auditor of a mint's confidential transfers (who can decrypt every amount)".into(),
        ),
        // Transfer, TransferWithFee
        (27, 7 | 13) => cx.transfers += 1,
        // DefaultAccountState: Initialize, Update { state } (0 uninitialized, 1 initialized,
        // 2 frozen)
        (28, 1) => default_account_state_change(cx, i, ix),
        // MemoTransfer, CpiGuard: Enable, Disable [account, owner]
        (30 | 34, 1) => protection_disabled(cx, i, ix, tag),
        // InterestBearingMint: Initialize, UpdateRate
        (33, 1) => {
            cx.warn("interest_rate_change", Severity::Low, Some(i), "changes the interest rate of a mint".into())
        }
        // TransferHook: Initialize, Update { program_id: MaybeNull<Pubkey> } [mint, authority]
        (36, 1) => transfer_hook_change(cx, i, ix),
        // MetadataPointer, GroupPointer, GroupMemberPointer: Initialize, Update { address }
        (39..=41, 1) => pointer_change(cx, i, ix, tag),
        // ScaledUiAmount: Initialize, UpdateMultiplier
        (43, 1) => cx.warn(
            "ui_amount_multiplier_change",
            Severity::Medium,
            Some(i),
            "changes the multiplier wallets apply to every balance of a mint".into(),
        ),
        // Pausable: Initialize, Pause, Resume
        (44, 1) => cx.warn(
            "mint_paused",
            Severity::Medium,
            Some(i),
            "pauses a mint: no holder can transfer, mint or burn the token until it is resumed".into(),
        ),
        // The instructions that change nothing of the user's. ConfidentialTransferFee,
        // ConfidentialMintBurn: their instructions move nothing of the user's beyond what the
        // proofs bind. PermissionedBurn: Initialize, Burn, BurnChecked, ConfidentialBurn.
        (26, 0 | 2..=4)
        | (27, 0 | 2..=6 | 8..=12 | 14)
        | (28, 0)
        | (30 | 34, 0)
        | (33, 0)
        | (36 | 39..=41, 0)
        | (37, 0..=5)
        | (42, 0..=5)
        | (43, 0)
        | (44, 0 | 2)
        | (46, 0..=3) => {}
        _ => return false,
    }
    true
}

/// TransferFee `SetTransferFee { basis points, .. }`.
fn transfer_fee_change(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    let bps = ix.data.get(2..4).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let bps = bps.map_or_else(|| "an unreadable fee".into(), |b| format!("{}%", f64::from(b) / 100.0));
    cx.warn(
        "transfer_fee_change",
        Severity::Medium,
        Some(i),
        format!("changes the transfer fee of a mint to {bps}, charged on every transfer of the token"),
    );
}

fn default_account_state_change(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    let state = match ix.data.get(2) {
        Some(2) => "frozen",
        Some(1) => "usable",
        _ => "an unreadable state",
    };
    cx.warn(
        "default_account_state_change",
        Severity::Medium,
        Some(i),
        format!("changes the state of every new token account of a mint to {state}"),
    );
}

/// MemoTransfer (`tag` 30) or CpiGuard (34) `Disable` [account, owner].
fn protection_disabled(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, tag: u8) {
    let acct = ix.account(0).map_or_else(|| "a token account".into(), |a| cx.name(a));
    let (kind, severity, message) = if tag == 30 {
        let message = format!("stops requiring a memo on transfers into your token account {acct}");
        ("memo_transfer_disabled", Severity::Medium, message)
    } else {
        let message = format!(
            "turns off CPI Guard on your token account {acct}: other programs can then move or \
             approve its tokens inside the calls you sign"
        );
        ("cpi_guard_disabled", Severity::High, message)
    };
    cx.warn(kind, severity, Some(i), message);
}

fn transfer_hook_change(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    let program = ix.maybe_null_key(2);
    cx.check_embedded(program.flatten(), i, "the new transfer hook program");
    let program = match program {
        Some(Some(p)) => format!("program {p}"),
        Some(None) => "no program".into(),
        None => "an unreadable program".into(),
    };
    cx.warn(
        "transfer_hook_change",
        Severity::High,
        Some(i),
        format!("changes the transfer hook of a mint to {program}, which runs on every transfer of the token"),
    );
}

/// MetadataPointer (`tag` 39), GroupPointer (40), GroupMemberPointer (41) `Update { address }`.
fn pointer_change(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>, tag: u8) {
    let what = match tag {
        39 => "metadata",
        40 => "group",
        _ => "group membership",
    };
    let address = ix.maybe_null_key(2);
    cx.check_embedded(address.flatten(), i, &format!("the new {what} address"));
    let address = match address {
        Some(Some(a)) => a.to_string(),
        Some(None) => "nowhere".into(),
        None => "an unreadable address".into(),
    };
    let severity = if tag == 39 { Severity::High } else { Severity::Medium };
    cx.warn(
        "token_pointer_change",
        severity,
        Some(i),
        format!("points the {what} of a mint to {address}, changing what wallets show for the token"),
    );
}

/// TransferFee `TransferCheckedWithFee { amount: u64, decimals: u8, fee: u64 }`
/// [source, mint, destination, authority]: a transfer; a fee that takes a large share of the
/// amount (the fee-on-transfer trap) is reported.
fn transfer_checked_with_fee(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    cx.transfers += 1;
    let (Some(amount), Some(fee)) = (le_u64(ix.data, 2), le_u64(ix.data, 11)) else {
        return unknown(cx, i, true, "transfer-with-fee instruction with unreadable amounts".into());
    };
    if amount == 0 {
        return;
    }
    let (amount, fee) = (u128::from(amount), u128::from(fee));
    let severity = if fee * 2 >= amount {
        Severity::High
    } else if fee * 10 >= amount {
        Severity::Medium
    } else {
        return;
    };
    let percent = fee * 100 / amount;
    cx.warn(
        "high_transfer_fee",
        severity,
        Some(i),
        format!("the token's transfer fee takes {percent}% of the amount sent ({fee} of {amount})"),
    );
}

/// `Reallocate { extension_types: [u16] }` [account, payer, system program, owner]: adds
/// extensions to a token account, paid by `payer`.
fn reallocate(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    let raw = &ix.data[1..];
    if !raw.len().is_multiple_of(2) {
        return unknown(cx, i, true, "reallocate instruction with an odd-length extension list".into());
    }
    let mut names = Vec::new();
    let mut unknown_types = Vec::new();
    for t in raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])) {
        match extension_type_name(t) {
            Some(n) => names.push(n),
            None => unknown_types.push(t.to_string()),
        }
    }
    let acct = ix.account(0).map_or_else(|| "a token account".into(), |a| cx.name(a));
    if !unknown_types.is_empty() {
        cx.warn(
            "unknown_token_instruction",
            Severity::Medium,
            Some(i),
            format!("reallocates {acct} for unknown extension type(s) {}", unknown_types.join(", ")),
        );
    }
    let payer = ix.account(1).filter(|&p| !cx.is_user(p)).map(|p| format!(", paid by {}", cx.name(p)));
    cx.warn(
        "token_account_reallocation",
        Severity::Low,
        Some(i),
        format!(
            "adds room for extension(s) [{}] to token account {acct}{}",
            names.join(", "),
            payer.unwrap_or_default()
        ),
    );
}

/// Token-2022 `ExtensionType` values.
fn extension_type_name(t: u16) -> Option<&'static str> {
    const NAMES: [&str; 29] = [
        "Uninitialized",
        "TransferFeeConfig",
        "TransferFeeAmount",
        "MintCloseAuthority",
        "ConfidentialTransferMint",
        "ConfidentialTransferAccount",
        "DefaultAccountState",
        "ImmutableOwner",
        "MemoTransfer",
        "NonTransferable",
        "InterestBearingConfig",
        "CpiGuard",
        "PermanentDelegate",
        "NonTransferableAccount",
        "TransferHook",
        "TransferHookAccount",
        "ConfidentialTransferFeeConfig",
        "ConfidentialTransferFeeAmount",
        "MetadataPointer",
        "TokenMetadata",
        "GroupPointer",
        "TokenGroup",
        "GroupMemberPointer",
        "TokenGroupMember",
        "ConfidentialMintBurn",
        "ScaledUiAmount",
        "Pausable",
        "PausableAccount",
        "PermissionedBurn",
    ];
    NAMES.get(usize::from(t)).copied()
}

/// `InitializePermanentDelegate { delegate }` [mint]: the delegate can transfer or burn any
/// holder's tokens of the mint, forever. Reported unless the delegate signs this transaction
/// (the user's own mint) or is trusted.
fn permanent_delegate(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) {
    let Some(delegate) = ix.key(1) else {
        return unknown(cx, i, true, "permanent delegate instruction without a delegate".into());
    };
    cx.check_embedded(Some(delegate), i, "the permanent delegate");
    let own = cx.tx.signers().contains(&delegate) || cx.set.trusted_addresses.contains(&delegate);
    if !own {
        let mint = ix.account(0).map_or_else(|| "a mint".into(), |m| cx.name(m));
        cx.warn(
            "permanent_delegate",
            Severity::High,
            Some(i),
            format!(
                "makes {delegate} permanent delegate of {mint}: it can transfer or burn every holder's tokens \
                 of this mint at any time"
            ),
        );
    }
}

/// The token-metadata and token-group interface instructions (8-byte discriminators), which
/// Token-2022 runs for mints that hold their own metadata or group; false when `ix` is not one.
fn interface(cx: &mut Ctx<'_>, i: usize, ix: TokenIx<'_>) -> bool {
    let Some(disc) = ix.data.get(..8).and_then(|d| <[u8; 8]>::try_from(d).ok()) else {
        return false;
    };
    let what = if disc == METADATA_UPDATE_AUTHORITY {
        "token metadata"
    } else if disc == GROUP_UPDATE_AUTHORITY {
        "token group"
    } else {
        return METADATA_OTHER.contains(&disc) || GROUP_OTHER.contains(&disc);
    };
    // UpdateAuthority { new_authority: MaybeNull<Pubkey> } [metadata or group, current authority]
    let new = ix.maybe_null_key(8);
    cx.check_embedded(new.flatten(), i, &format!("the new {what} authority"));
    let new = match new {
        Some(Some(k)) => k.to_string(),
        Some(None) => "nobody".into(),
        None => "an unreadable key".into(),
    };
    cx.warn(
        "token_authority_change",
        Severity::High,
        Some(i),
        format!("changes the update authority of a {what} to {new}"),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn discriminator(input: &str) -> [u8; 8] {
        Sha256::digest(input.as_bytes())[..8].try_into().unwrap()
    }

    #[test]
    fn interface_discriminators_are_the_hashes_of_their_names() {
        let m = "spl_token_metadata_interface:";
        assert_eq!(METADATA_UPDATE_AUTHORITY, discriminator(&format!("{m}update_the_authority")));
        let others = ["initialize_account", "updating_field", "remove_key_ix", "emitter"];
        assert_eq!(METADATA_OTHER.to_vec(), others.map(|n| discriminator(&format!("{m}{n}"))).to_vec());
        let g = "spl_token_group_interface:";
        assert_eq!(GROUP_UPDATE_AUTHORITY, discriminator(&format!("{g}update_authority")));
        let others = ["initialize_token_group", "update_group_max_size", "initialize_member"];
        assert_eq!(GROUP_OTHER.to_vec(), others.map(|n| discriminator(&format!("{g}{n}"))).to_vec());
        // None of them starts like a Token-2022 instruction tag (which would take precedence).
        for d in METADATA_OTHER.iter().chain(&GROUP_OTHER).chain([&METADATA_UPDATE_AUTHORITY, &GROUP_UPDATE_AUTHORITY])
        {
            assert!(d[0] > 46 && d[0] != BATCH, "{d:?}");
        }
    }
}
