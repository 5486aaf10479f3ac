//! The transaction decoder and the rules on arbitrary bytes: no panic, no unbounded allocation.
//! The same bytes, read as text, also go through the domain normalizer and matcher.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use securityguard_api::scan::patterns::PatternSet;
use securityguard_api::scan::tx::Transaction;
use securityguard_api::scan::{domain, scan_transaction};

static SET: LazyLock<PatternSet> = LazyLock::new(|| {
    let mut set = PatternSet::default();
    set.protected_domains = vec!["phantom.app".into(), "jup.ag".into(), "solflare.com".into()];
    set.allowed_domains = vec!["solana.com".into()];
    set.blocked_domains = std::collections::HashSet::from(["drainer.xyz".into()]);
    set
});

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::decode(data) {
        // Whatever decodes must be internally consistent.
        for ix in &tx.instructions {
            assert!(usize::from(ix.program_id_index) < tx.account_keys.len());
            assert!(ix.accounts.iter().all(|&a| usize::from(a) < tx.total_accounts()));
        }
    }
    let _ = scan_transaction(0, data, &SET);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(normalized) = domain::normalize(text)
    {
        let _ = domain::analyze(&normalized, &SET);
    }
});
