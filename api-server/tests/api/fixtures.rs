//! The labelled fixture set: transactions serialized with the Solana SDK crates (legacy and v0
//! messages, signed) and phishing-style and legitimate domains.

use securityguard_api::scan::patterns::PatternSet;
use securityguard_api::scan::tx::Pubkey;
use solana_address::Address;
use solana_hash::Hash;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_message::{AddressLookupTableAccount, VersionedMessage, v0};
use solana_signer::Signer;
use solana_system_interface::instruction as system;
use solana_transaction::Transaction;
use solana_transaction::versioned::VersionedTransaction;
use spl_token_2022_interface::extension::{
    ExtensionType, cpi_guard, group_pointer, memo_transfer, metadata_pointer, transfer_fee, transfer_hook,
};
use spl_token_2022_interface::instruction::{self as t22, AuthorityType, TokenInstruction};

pub const TOKEN: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
pub const TOKEN_2022: &str = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
pub const STAKE: &str = "Stake11111111111111111111111111111111111111";
pub const LOADER: &str = "BPFLoaderUpgradeab1e11111111111111111111111";
pub const COMPUTE_BUDGET: &str = "ComputeBudget111111111111111111111111111111";
pub const MEMO: &str = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";
pub const ATA: &str = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL";

pub fn addr(s: &str) -> Address {
    Address::new_from_array(bs58::decode(s).into_vec().unwrap().try_into().unwrap())
}

/// A deterministic key per (kind, n).
pub fn key(kind: u8, n: u8) -> Address {
    let mut b = [kind; 32];
    b[31] = n;
    b[30] = 0xA5;
    Address::new_from_array(b)
}

pub fn payer(n: u8) -> Keypair {
    let mut seed = [0x11u8; 32];
    seed[0] = n;
    Keypair::new_from_array(seed)
}

/// Addresses the fixture pattern set knows: attackers (malicious), a trusted delegate and a
/// trusted program.
pub fn attacker(n: u8) -> Address {
    key(0xBA, n)
}
pub fn trusted_delegate() -> Address {
    key(0x7D, 0)
}
pub fn trusted_program() -> Address {
    key(0x7E, 0)
}
pub fn unknown_program(n: u8) -> Address {
    key(0x99, n)
}

pub fn pattern_set() -> PatternSet {
    let mut set = PatternSet { version: 1, ..PatternSet::default() };
    for n in 0..8 {
        set.malicious_addresses.insert(Pubkey(attacker(n).to_bytes()));
    }
    set.trusted_addresses.insert(Pubkey(trusted_delegate().to_bytes()));
    set.trusted_programs.insert(Pubkey(trusted_program().to_bytes()));
    for d in [
        "phantom.app",
        "solflare.com",
        "backpack.app",
        "jup.ag",
        "raydium.io",
        "orca.so",
        "magiceden.io",
        "tensor.trade",
        "solana.com",
        "marinade.finance",
        "solscan.io",
        "kamino.finance",
        "drift.trade",
        "coinbase.com",
        "binance.com",
    ] {
        set.protected_domains.push(d.into());
    }
    for d in ["solana.com", "phantom.app", "solflare.com", "jup.ag", "github.com"] {
        set.allowed_domains.push(d.into());
    }
    for d in ["drainer.xyz", "claim-airdrop.xyz"] {
        set.blocked_domains.insert(d.into());
    }
    set
}

fn blockhash(n: u8) -> Hash {
    Hash::new_from_array([n.wrapping_add(1); 32])
}

pub fn legacy(ixs: &[Instruction], signer: &Keypair, n: u8) -> Vec<u8> {
    let tx = Transaction::new_signed_with_payer(ixs, Some(&signer.pubkey()), &[signer], blockhash(n));
    bincode::serialize(&tx).unwrap()
}

pub fn versioned(ixs: &[Instruction], signer: &Keypair, tables: &[AddressLookupTableAccount], n: u8) -> Vec<u8> {
    let msg = v0::Message::try_compile(&signer.pubkey(), ixs, tables, blockhash(n)).unwrap();
    let tx = VersionedTransaction::try_new(VersionedMessage::V0(msg), &[signer]).unwrap();
    bincode::serialize(&tx).unwrap()
}

fn token_ix(program: &str, data: Vec<u8>, accounts: Vec<AccountMeta>) -> Instruction {
    Instruction { program_id: addr(program), accounts, data }
}

fn token_program(n: u8) -> &'static str {
    if n.is_multiple_of(2) { TOKEN } else { TOKEN_2022 }
}

pub fn spl_transfer(n: u8, owner: &Address) -> Instruction {
    let mut data = vec![3];
    data.extend(1000u64.wrapping_mul(u64::from(n) + 1).to_le_bytes());
    token_ix(
        token_program(n),
        data,
        vec![
            AccountMeta::new(key(0x20, n), false),
            AccountMeta::new(key(0x21, n), false),
            AccountMeta::new_readonly(*owner, true),
        ],
    )
}

pub fn spl_transfer_checked(n: u8, owner: &Address) -> Instruction {
    let mut data = vec![12];
    data.extend(500u64.to_le_bytes());
    data.push(6);
    token_ix(
        token_program(n),
        data,
        vec![
            AccountMeta::new(key(0x20, n), false),
            AccountMeta::new_readonly(key(0x22, n), false),
            AccountMeta::new(key(0x21, n), false),
            AccountMeta::new_readonly(*owner, true),
        ],
    )
}

pub fn approve(n: u8, owner: &Address, delegate: &Address, amount: u64, checked: bool) -> Instruction {
    if checked {
        let mut data = vec![13];
        data.extend(amount.to_le_bytes());
        data.push(6);
        token_ix(
            token_program(n),
            data,
            vec![
                AccountMeta::new(key(0x20, n), false),
                AccountMeta::new_readonly(key(0x22, n), false),
                AccountMeta::new_readonly(*delegate, false),
                AccountMeta::new_readonly(*owner, true),
            ],
        )
    } else {
        let mut data = vec![4];
        data.extend(amount.to_le_bytes());
        token_ix(
            token_program(n),
            data,
            vec![
                AccountMeta::new(key(0x20, n), false),
                AccountMeta::new_readonly(*delegate, false),
                AccountMeta::new_readonly(*owner, true),
            ],
        )
    }
}

pub fn set_token_authority(n: u8, owner: &Address, kind: u8, new: &Address) -> Instruction {
    let mut data = vec![6, kind, 1];
    data.extend(new.to_bytes());
    token_ix(
        token_program(n),
        data,
        vec![AccountMeta::new(key(0x20, n), false), AccountMeta::new_readonly(*owner, true)],
    )
}

pub fn close_account(n: u8, owner: &Address, destination: &Address) -> Instruction {
    token_ix(
        token_program(n),
        vec![9],
        vec![
            AccountMeta::new(key(0x20, n), false),
            AccountMeta::new(*destination, false),
            AccountMeta::new_readonly(*owner, true),
        ],
    )
}

pub fn stake_authorize(n: u8, authority: &Address, new: &Address) -> Instruction {
    let mut data = 1u32.to_le_bytes().to_vec();
    data.extend(new.to_bytes());
    data.extend(u32::from(n % 2).to_le_bytes()); // staker or withdrawer
    Instruction {
        program_id: addr(STAKE),
        accounts: vec![
            AccountMeta::new(key(0x30, n), false),
            AccountMeta::new_readonly(addr("SysvarC1ock11111111111111111111111111111111"), false),
            AccountMeta::new_readonly(*authority, true),
        ],
        data,
    }
}

pub fn upgrade_authority(n: u8, authority: &Address, new: &Address) -> Instruction {
    Instruction {
        program_id: addr(LOADER),
        accounts: vec![
            AccountMeta::new(key(0x40, n), false),
            AccountMeta::new_readonly(*authority, true),
            AccountMeta::new_readonly(*new, false),
        ],
        data: if n.is_multiple_of(2) { 4u32 } else { 7u32 }.to_le_bytes().to_vec(),
    }
}

pub fn compute_budget(units: u32) -> Instruction {
    let mut data = vec![2];
    data.extend(units.to_le_bytes());
    Instruction { program_id: addr(COMPUTE_BUDGET), accounts: vec![], data }
}

pub fn memo(text: &str, signer: &Address) -> Instruction {
    Instruction {
        program_id: addr(MEMO),
        accounts: vec![AccountMeta::new_readonly(*signer, true)],
        data: text.as_bytes().to_vec(),
    }
}

pub fn create_ata(n: u8, payer: &Address) -> Instruction {
    Instruction {
        program_id: addr(ATA),
        accounts: vec![
            AccountMeta::new(*payer, true),
            AccountMeta::new(key(0x23, n), false),
            AccountMeta::new_readonly(*payer, false),
            AccountMeta::new_readonly(key(0x22, n), false),
            AccountMeta::new_readonly(Address::new_from_array([0; 32]), false),
            AccountMeta::new_readonly(addr(TOKEN), false),
        ],
        data: vec![1],
    }
}

pub fn program_call(program: Address, user: &Address, extra_writable: &[Address]) -> Instruction {
    let mut accounts = vec![AccountMeta::new(*user, true)];
    accounts.extend(extra_writable.iter().map(|a| AccountMeta::new(*a, false)));
    Instruction { program_id: program, accounts, data: vec![0xE5, 1, 2, 3] }
}

/// An instruction built by the Token-2022 interface crates (which use an older
/// `solana-instruction` than these fixtures), as the same instruction for the fixtures.
macro_rules! t22 {
    ($ix:expr) => {{
        let ix = $ix;
        Instruction {
            program_id: ix.program_id,
            accounts: ix
                .accounts
                .into_iter()
                .map(|m| AccountMeta { pubkey: m.pubkey, is_signer: m.is_signer, is_writable: m.is_writable })
                .collect(),
            data: ix.data,
        }
    }};
}

pub fn token_2022() -> Address {
    addr(TOKEN_2022)
}

/// The user's Token-2022 account, mint and a recipient's account.
fn t22_accounts(n: u8) -> (Address, Address, Address) {
    (key(0x24, n), key(0x25, n), key(0x26, n))
}

pub fn transfer_with_fee(n: u8, owner: &Address, amount: u64, fee: u64) -> Instruction {
    let (source, mint, dest) = t22_accounts(n);
    t22!(
        transfer_fee::instruction::transfer_checked_with_fee(
            &token_2022(),
            &source,
            &mint,
            &dest,
            owner,
            &[],
            amount,
            6,
            fee
        )
        .unwrap()
    )
}

/// A Token-2022 batch: `(account count, data length, data)` per inner instruction, the inner
/// instructions' accounts in order.
pub fn batch(inner: &[Instruction]) -> Instruction {
    let mut data = Vec::new();
    let mut accounts = Vec::new();
    for ix in inner {
        data.push(u8::try_from(ix.accounts.len()).unwrap());
        data.push(u8::try_from(ix.data.len()).unwrap());
        data.extend(&ix.data);
        accounts.extend(ix.accounts.iter().cloned());
    }
    Instruction { program_id: token_2022(), accounts, data: TokenInstruction::Batch { data }.pack() }
}

/// Token-2022 instructions that hurt the user, each with its name.
fn token_2022_malicious(n: u8, me: &Address) -> Vec<(&'static str, Instruction)> {
    let (account, mint, _) = t22_accounts(n);
    let p = token_2022();
    let stranger = key(0x6B, n);
    let owner_change =
        t22!(t22::set_authority(&p, &account, Some(&stranger), AuthorityType::AccountOwner, me, &[]).unwrap());
    vec![
        // The fee-on-transfer trap: 60 % of what is sent goes to the fee.
        ("t22-transfer-fee-trap", transfer_with_fee(n, me, 1_000_000, 600_000)),
        ("t22-cpi-guard-off", t22!(cpi_guard::instruction::disable_cpi_guard(&p, &account, me, &[]).unwrap())),
        (
            "t22-memo-transfer-off",
            t22!(memo_transfer::instruction::disable_required_transfer_memos(&p, &account, me, &[]).unwrap()),
        ),
        (
            "t22-transfer-hook-update",
            t22!(transfer_hook::instruction::update(&p, &mint, me, &[], Some(unknown_program(n))).unwrap()),
        ),
        (
            "t22-metadata-pointer-update",
            t22!(metadata_pointer::instruction::update(&p, &mint, me, &[], Some(stranger)).unwrap()),
        ),
        (
            "t22-group-pointer-update",
            t22!(group_pointer::instruction::update(&p, &mint, me, &[], Some(stranger)).unwrap()),
        ),
        ("t22-permanent-delegate", t22!(t22::initialize_permanent_delegate(&p, &mint, &stranger).unwrap())),
        (
            "t22-permanent-delegate-authority",
            t22!(t22::set_authority(&p, &mint, Some(&stranger), AuthorityType::PermanentDelegate, me, &[]).unwrap()),
        ),
        (
            "t22-transfer-fee-authority",
            t22!(t22::set_authority(&p, &mint, Some(&stranger), AuthorityType::TransferFeeConfig, me, &[]).unwrap()),
        ),
        (
            "t22-withdraw-excess-lamports",
            t22!(t22::withdraw_excess_lamports(&p, &account, &stranger, me, &[]).unwrap()),
        ),
        ("t22-unwrap-to-stranger", t22!(t22::unwrap_lamports(&p, &account, &stranger, me, &[], None).unwrap())),
        (
            "t22-metadata-authority",
            t22!(spl_token_metadata_interface::instruction::update_authority(&p, &mint, me, stranger.into())),
        ),
        // An owner change hidden among transfers in a batch.
        (
            "t22-batch-owner-change",
            batch(&[
                t22!(t22::transfer_checked(&p, &account, &mint, &key(0x26, n), me, &[], 10, 6).unwrap()),
                owner_change,
            ]),
        ),
    ]
}

/// Token-2022 instructions a wallet signs every day.
fn token_2022_benign(n: u8, me: &Address) -> Vec<(&'static str, Instruction)> {
    let (account, mint, dest) = t22_accounts(n);
    let p = token_2022();
    vec![
        // A 1 % transfer fee.
        ("t22-transfer-with-fee", transfer_with_fee(n, me, 1_000_000, 10_000)),
        ("t22-cpi-guard-on", t22!(cpi_guard::instruction::enable_cpi_guard(&p, &account, me, &[]).unwrap())),
        (
            "t22-memo-transfer-on",
            t22!(memo_transfer::instruction::enable_required_transfer_memos(&p, &account, me, &[]).unwrap()),
        ),
        (
            "t22-reallocate",
            t22!(
                t22::reallocate(&p, &account, me, me, &[], &[ExtensionType::MemoTransfer, ExtensionType::CpiGuard])
                    .unwrap()
            ),
        ),
        // The user's own new mint, with the user as permanent delegate.
        ("t22-own-permanent-delegate", t22!(t22::initialize_permanent_delegate(&p, &mint, me).unwrap())),
        ("t22-unwrap-to-self", t22!(t22::unwrap_lamports(&p, &account, me, me, &[], Some(5_000)).unwrap())),
        (
            "t22-batch-transfers",
            batch(&[
                t22!(t22::transfer_checked(&p, &account, &mint, &dest, me, &[], 10, 6).unwrap()),
                t22!(t22::transfer_checked(&p, &account, &mint, &key(0x27, n), me, &[], 20, 6).unwrap()),
            ]),
        ),
    ]
}

/// At least 60 malicious transactions, each with what makes it malicious.
pub fn malicious_transactions() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for n in 0..8u8 {
        let p = payer(n);
        let me = p.pubkey();
        out.push((format!("assign-{n}"), legacy(&[system::assign(&me, &unknown_program(n))], &p, n)));
        out.push((
            format!("token-owner-change-{n}"),
            legacy(&[set_token_authority(n, &me, 2 + n % 2, &key(0x66, n))], &p, n),
        ));
        out.push((
            format!("unlimited-approve-{n}"),
            legacy(&[approve(n, &me, &key(0x67, n), u64::MAX, n % 2 == 1)], &p, n),
        ));
        out.push((format!("stake-authorize-{n}"), legacy(&[stake_authorize(n, &me, &key(0x68, n))], &p, n)));
        out.push((
            format!("upgrade-authority-{n}"),
            versioned(&[upgrade_authority(n, &me, &key(0x69, n))], &p, &[], n),
        ));
        let many: Vec<Instruction> =
            (0..12u8).map(|i| system::transfer(&me, &key(0x70 + i, n), 1_000 + u64::from(i))).collect();
        out.push((format!("many-transfers-{n}"), legacy(&many, &p, n)));
        out.push((
            format!("transfer-to-known-drainer-{n}"),
            legacy(&[system::transfer(&me, &attacker(n), 5_000_000)], &p, n),
        ));
        // An unknown program gets the user's account writable, with its other writable
        // accounts hidden behind a lookup table.
        let hidden = [key(0x71, n), key(0x72, n)];
        let table = AddressLookupTableAccount { key: key(0x73, n), addresses: hidden.to_vec() };
        out.push((
            format!("unknown-program-alt-{n}"),
            versioned(&[program_call(unknown_program(n), &me, &hidden)], &p, &[table], n),
        ));
    }
    for n in 0..4u8 {
        let p = payer(n);
        let me = p.pubkey();
        // The attacker appears only inside instruction data.
        out.push((
            format!("authority-to-known-drainer-{n}"),
            legacy(&[set_token_authority(n, &me, 1, &attacker(n))], &p, n),
        ));
        out.push((format!("close-to-third-party-{n}"), legacy(&[close_account(n, &me, &key(0x74, n))], &p, n)));
        for (name, ix) in token_2022_malicious(n, &me) {
            let tx = if n % 2 == 0 { legacy(&[ix], &p, n) } else { versioned(&[ix], &p, &[], n) };
            out.push((format!("{name}-{n}"), tx));
        }
        out.push((
            format!("nonce-authority-{n}"),
            legacy(
                &[
                    system::advance_nonce_account(&key(0x75, n), &me),
                    system::authorize_nonce_account(&key(0x75, n), &me, &key(0x76, n)),
                ],
                &p,
                n,
            ),
        ));
    }
    out
}

/// At least 60 benign transactions.
pub fn benign_transactions() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for n in 0..10u8 {
        let p = payer(n);
        let me = p.pubkey();
        out.push((
            format!("sol-transfer-{n}"),
            legacy(&[system::transfer(&me, &key(0x50, n), 10_000 * u64::from(n + 1))], &p, n),
        ));
        out.push((format!("sol-transfer-v0-{n}"), versioned(&[system::transfer(&me, &key(0x51, n), 42)], &p, &[], n)));
        out.push((format!("spl-transfer-{n}"), legacy(&[spl_transfer(n, &me)], &p, n)));
        out.push((
            format!("priority-fee-transfer-{n}"),
            legacy(&[compute_budget(200_000), spl_transfer_checked(n, &me)], &p, n),
        ));
        out.push((
            format!("memo-transfer-{n}"),
            legacy(&[memo("invoice 42", &me), system::transfer(&me, &key(0x52, n), 7)], &p, n),
        ));
        out.push((format!("create-ata-{n}"), legacy(&[create_ata(n, &me)], &p, n)));
    }
    for n in 0..5u8 {
        let p = payer(n);
        let me = p.pubkey();
        out.push((
            format!("limited-approve-trusted-{n}"),
            legacy(&[approve(n, &me, &trusted_delegate(), 1_000, n % 2 == 0)], &p, n),
        ));
        out.push((format!("close-to-self-{n}"), legacy(&[close_account(n, &me, &me)], &p, n)));
        out.push((
            format!("trusted-program-call-{n}"),
            legacy(&[compute_budget(400_000), program_call(trusted_program(), &me, &[key(0x53, n)])], &p, n),
        ));
        // v0 with a lookup table that only supplies read-only accounts.
        let table = AddressLookupTableAccount { key: key(0x54, n), addresses: vec![key(0x55, n)] };
        let ix = Instruction {
            program_id: trusted_program(),
            accounts: vec![AccountMeta::new(me, true), AccountMeta::new_readonly(key(0x55, n), false)],
            data: vec![1],
        };
        out.push((format!("v0-readonly-alt-{n}"), versioned(&[ix], &p, &[table], n)));
        let few: Vec<Instruction> = (0..3u8).map(|i| system::transfer(&me, &key(0x56 + i, n), 100)).collect();
        out.push((format!("three-transfers-{n}"), legacy(&few, &p, n)));
        for (name, ix) in token_2022_benign(n, &me) {
            let tx = if n % 2 == 0 { legacy(&[ix], &p, n) } else { versioned(&[ix], &p, &[], n) };
            out.push((format!("{name}-{n}"), tx));
        }
    }
    out
}

pub fn phishing_domains() -> Vec<String> {
    let mut out: Vec<String> = [
        "phant0m.app",
        "phantom-app.com",
        "phantom.app.secure-login.io",
        "phamtom.app",
        "phantomm.app",
        "phanton.app",
        "рhantom.app",
        "phantom-wallet.xyz",
        "phantomwallet-support.com",
        "phantom.io",
        "app-phantom.net",
        "solf1are.com",
        "soIflare.com",
        "solfare.com",
        "solflare.app",
        "solflare-wallet.org",
        "solflare.com.verify-wallet.site",
        "backpaack.app",
        "backpack-wallet.com",
        "backpack.io",
        "jup-ag.com",
        "jupag-airdrop.xyz",
        "jup.ag.claim-rewards.live",
        "raydlum.io",
        "raydium.com",
        "raydium-swap.xyz",
        "rayd1um.io",
        "orca-so.com",
        "orca.app.login-portal.com",
        "magicedem.io",
        "magic-eden.xyz",
        "magiceden.com",
        "rnagiceden.io",
        "magiceden-airdrop.site",
        "tensor-trade.xyz",
        "tensor.trade.wallet-connect.top",
        "tensor.io",
        "so1ana.com",
        "solana-airdrop.click",
        "solana.com.claim.xyz",
        "sollana.com",
        "solana-wallet.support",
        "marinade.io",
        "marinade-finance.xyz",
        "rnarinade.finance",
        "solscan.com",
        "so1scan.io",
        "solscan-io.top",
        "kamino.io",
        "kamin0.finance",
        "kamino-finance.xyz",
        "drift-trade.xyz",
        "drift.com",
        "drlft.trade",
        "coinbase-wallet.xyz",
        "c0inbase.com",
        "coinbase.com.secure-auth.io",
        "colnbase.com",
        "binance-claim.xyz",
        "binance.org",
        "blnance.com",
        "drainer.xyz",
        "app.drainer.xyz",
        "claim-airdrop.xyz",
        "www.claim-airdrop.xyz",
        "free-mint-solana.top",
        "airdrop-claim-now.xyz",
        "wallet-connect-sync.online",
        "connect-wallet-validate.site",
        "restore-wallet.click",
        "verify-wallet-solana.live",
        "jito-airdrop-claim.xyz",
        "bonk-giveaway.top",
        "nft-freemint.fun",
        "presale-token-whitelist.buzz",
        "unlock-wallet.icu",
        "sync-wallet.monster",
        "wallet-recover-seed.shop",
        // Under multi-label public suffixes (Public Suffix List, private section included).
        "phantom.github.io",
        "solflare.vercel.app",
        "phantom.co.uk",
        "jup-ag.pages.dev",
        "raydium.com.au",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // Homoglyph and typo variants of each brand.
    for brand in ["phantom", "solflare", "raydium", "magiceden", "marinade", "coinbase", "binance", "backpack"] {
        let tld = match brand {
            "phantom" | "backpack" => "app",
            "raydium" | "magiceden" => "io",
            "marinade" => "finance",
            _ => "com",
        };
        let cyrillic = format!("{}.{tld}", brand.replacen('a', "а", 1)); // Cyrillic a
        // The same lookalike as a browser shows it in the address bar: punycode.
        out.push(idna::domain_to_ascii(&cyrillic).unwrap());
        out.push(cyrillic);
        let digits = brand.replacen('o', "0", 1).replacen('i', "1", 1);
        if digits != brand {
            out.push(format!("{digits}.{tld}"));
        }
        out.push(format!("{brand}-support.xyz"));
    }
    out.sort();
    out.dedup();
    out
}

pub fn legitimate_domains() -> Vec<String> {
    let mut out: Vec<String> = [
        "phantom.app",
        "help.phantom.app",
        // Phantom's and the Solana Foundation's own (once listed above as brand swaps).
        "phantom.com",
        "solana.org",
        "solflare.com",
        "docs.solflare.com",
        "backpack.app",
        "jup.ag",
        "station.jup.ag",
        "raydium.io",
        "orca.so",
        "magiceden.io",
        "tensor.trade",
        "solana.com",
        "docs.solana.com",
        "marinade.finance",
        "solscan.io",
        "kamino.finance",
        "drift.trade",
        "coinbase.com",
        "binance.com",
        "github.com",
        "gist.github.com",
        "google.com",
        "mail.google.com",
        "wikipedia.org",
        "en.wikipedia.org",
        "rust-lang.org",
        "docs.rs",
        "crates.io",
        "python.org",
        "pypi.org",
        "npmjs.com",
        "stackoverflow.com",
        "mozilla.org",
        "developer.mozilla.org",
        "apple.com",
        "microsoft.com",
        "amazon.com",
        "netflix.com",
        "nytimes.com",
        "bbc.co.uk",
        "theguardian.com",
        "reddit.com",
        "news.ycombinator.com",
        "cloudflare.com",
        "kubernetes.io",
        "postgresql.org",
        "redis.io",
        "debian.org",
        "ubuntu.com",
        "archlinux.org",
        "gnu.org",
        "kernel.org",
        "openai.com",
        "anthropic.com",
        "tensorflow.org",
        "pytorch.org",
        "jupyter.org",
        "docker.com",
        "hashicorp.com",
        "grafana.com",
        "prometheus.io",
        "helium.com",
        "ethereum.org",
        "bitcoin.org",
        "metamask.io",
        "uniswap.org",
        "opensea.io",
        "chainlink.com",
        "pyth.network",
        "helius.dev",
        "quicknode.com",
        "alchemy.com",
        "birdeye.so",
        "dexscreener.com",
        "coingecko.com",
        "coinmarketcap.com",
        "kraken.com",
        "gemini.com",
        "ledger.com",
        "trezor.io",
        "stripe.com",
        "paypal.com",
        "shopify.com",
        "spotify.com",
        "twitch.tv",
        "discord.com",
        "telegram.org",
        "x.com",
        "medium.com",
        "substack.com",
        "notion.so",
        "figma.com",
        "linear.app",
        "vercel.com",
        "netlify.com",
        "heroku.com",
        "digitalocean.com",
        "fly.io",
        "render.com",
        "supabase.com",
        "orcid.org",
        "phantomjs.org",
        "driftwood.com",
        "binary.com",
        "solar.com",
        "coin.dance",
        "www.gov.uk",
        "rust-lang.github.io",
        "www.abc.net.au",
        "tokio-rs.github.io",
        "example.co.jp",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    out.sort();
    out.dedup();
    out
}
