//! The transaction decoder and the rules on arbitrary bytes: no panic, no unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securityguard_api::scan::patterns::PatternSet;
use securityguard_api::scan::scan_transaction;
use securityguard_api::scan::tx::Transaction;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::decode(data) {
        // Whatever decodes must be internally consistent.
        for ix in &tx.instructions {
            assert!(usize::from(ix.program_id_index) < tx.account_keys.len());
            assert!(ix.accounts.iter().all(|&a| usize::from(a) < tx.total_accounts()));
        }
    }
    let _ = scan_transaction(0, data, &PatternSet::default());
});
