//! Wallet addresses: base58 ed25519 public keys (Solana addresses).

use ed25519_dalek::VerifyingKey;

/// A base58 ed25519 public key (a Solana address).
pub fn decode_pubkey(address: &str) -> Option<VerifyingKey> {
    let mut bytes = [0u8; 32];
    let n = bs58::decode(address).onto(&mut bytes).ok()?;
    if n != 32 {
        return None;
    }
    VerifyingKey::from_bytes(&bytes).ok()
}
