//! Sign-In-With-Solana messages: parsing and checking (pure; the nonce store is elsewhere).
//!
//! ```text
//! {domain} wants you to sign in with your Solana account:
//! {address}
//!
//! {statement}
//!
//! URI: {uri}
//! Version: 1
//! Chain ID: {chain id}
//! Nonce: {nonce}
//! Issued At: {RFC 3339}
//! Expiration Time: {RFC 3339}
//! ```
//! The statement and the lines after `Issued At` (`Expiration Time`, `Not Before`,
//! `Request ID`, `Resources`) are optional.

use std::iter::Peekable;

use ed25519_dalek::Signature;
use jiff::Timestamp;

use crate::wallet::decode_pubkey;

const HEADER_SUFFIX: &str = " wants you to sign in with your Solana account:";
/// Longest message accepted; real ones are a few hundred bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Clock skew tolerated between the wallet and us.
pub const CLOCK_SKEW_SECS: i64 = 60;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiwsMessage {
    pub domain: String,
    pub address: String,
    pub statement: Option<String>,
    pub uri: String,
    pub version: String,
    pub chain_id: String,
    pub nonce: String,
    pub issued_at: Timestamp,
    pub expiration_time: Option<Timestamp>,
    pub not_before: Option<Timestamp>,
    pub request_id: Option<String>,
    pub resources: Vec<String>,
}

/// Why a sign-in was refused. `reason()` is the metric label and the error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SiwsError {
    #[error("message is malformed: {0}")]
    Malformed(String),
    #[error("message is for domain {0:?}, not this service")]
    WrongDomain(String),
    #[error("message is for URI {0:?}, not this service")]
    WrongUri(String),
    #[error("message is for chain {0:?}, not {1:?}")]
    WrongChain(String, String),
    #[error("message version {0:?} is not supported")]
    UnsupportedVersion(String),
    #[error("message has expired")]
    Expired,
    #[error("message is not valid yet")]
    NotYetValid,
    #[error("message was issued too long ago")]
    TooOld,
    #[error("address in the message is not a valid Solana public key")]
    InvalidAddress,
    #[error("signature is not valid for the address in the message")]
    BadSignature,
    #[error("the given public key is not the address in the message")]
    AddressMismatch,
    #[error("nonce is unknown, expired or already used")]
    InvalidNonce,
}

impl SiwsError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_message",
            Self::WrongDomain(_) => "wrong_domain",
            Self::WrongUri(_) => "wrong_uri",
            Self::WrongChain(..) => "wrong_chain",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::Expired => "expired_message",
            Self::NotYetValid => "not_yet_valid",
            Self::TooOld => "message_too_old",
            Self::InvalidAddress => "invalid_address",
            Self::BadSignature => "bad_signature",
            Self::AddressMismatch => "address_mismatch",
            Self::InvalidNonce => "invalid_nonce",
        }
    }
}

fn malformed(what: impl Into<String>) -> SiwsError {
    SiwsError::Malformed(what.into())
}

fn timestamp(field: &str, value: &str) -> Result<Timestamp, SiwsError> {
    value.parse().map_err(|_| malformed(format!("{field} is not an RFC 3339 timestamp")))
}

/// The optional statement, between blank lines after the address.
fn statement<'a>(lines: &mut Peekable<impl Iterator<Item = &'a str>>) -> Result<Option<String>, SiwsError> {
    if lines.peek() != Some(&"") {
        return Ok(None);
    }
    lines.next();
    let Some(next) = lines.peek().filter(|next| !next.starts_with("URI: ") && !next.is_empty()) else {
        return Ok(None);
    };
    let statement = next.to_string();
    lines.next();
    if lines.next() != Some("") {
        return Err(malformed("statement must be followed by a blank line"));
    }
    Ok(Some(statement))
}

/// The `Key: value` fields (each known, none twice) and the resources of the lines after the
/// statement.
fn fields<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Fields<'a>, SiwsError> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    let mut resources = Vec::new();
    let mut in_resources = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if in_resources {
            let r = line.strip_prefix("- ").ok_or_else(|| malformed("resources must be '- <uri>' lines"))?;
            resources.push(r.to_string());
            continue;
        }
        if line == "Resources:" {
            in_resources = true;
            continue;
        }
        let (key, value) = line.split_once(": ").ok_or_else(|| malformed(format!("bad line {line:?}")))?;
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(malformed(format!("duplicate field {key:?}")));
        }
        fields.push((key, value));
    }
    if let Some((key, _)) = fields.iter().find(|(key, _)| !KNOWN_FIELDS.contains(key)) {
        return Err(malformed(format!("unknown field {key:?}")));
    }
    Ok(Fields { fields, resources })
}

struct Fields<'a> {
    fields: Vec<(&'a str, &'a str)>,
    resources: Vec<String>,
}

impl<'a> Fields<'a> {
    fn get(&self, k: &str) -> Option<&'a str> {
        self.fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
    }

    fn required(&self, k: &str) -> Result<&'a str, SiwsError> {
        self.get(k).ok_or_else(|| malformed(format!("missing field {k:?}")))
    }
}

const KNOWN_FIELDS: [&str; 8] =
    ["URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time", "Not Before", "Request ID"];

impl SiwsMessage {
    pub fn parse(text: &str) -> Result<Self, SiwsError> {
        if text.len() > MAX_MESSAGE_LEN {
            return Err(malformed("message is too long"));
        }
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).peekable();
        let header = lines.next().ok_or_else(|| malformed("empty message"))?;
        let domain = header
            .strip_suffix(HEADER_SUFFIX)
            .filter(|d| !d.is_empty() && !d.contains(char::is_whitespace))
            .ok_or_else(|| {
            malformed("first line must be '<domain> wants you to sign in with your Solana account:'")
        })?;
        let address = lines.next().ok_or_else(|| malformed("missing address line"))?.trim();
        if address.is_empty() {
            return Err(malformed("missing address"));
        }
        let statement = statement(&mut lines)?;
        let fields = fields(lines)?;
        let nonce = fields.required("Nonce")?;
        if nonce.len() < 8 || nonce.len() > 64 || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(malformed("nonce must be 8 to 64 alphanumeric characters"));
        }
        Ok(Self {
            domain: domain.to_string(),
            address: address.to_string(),
            statement,
            uri: fields.required("URI")?.to_string(),
            version: fields.required("Version")?.to_string(),
            chain_id: fields.required("Chain ID")?.to_string(),
            nonce: nonce.to_string(),
            issued_at: timestamp("Issued At", fields.required("Issued At")?)?,
            expiration_time: fields.get("Expiration Time").map(|v| timestamp("Expiration Time", v)).transpose()?,
            not_before: fields.get("Not Before").map(|v| timestamp("Not Before", v)).transpose()?,
            request_id: fields.get("Request ID").map(str::to_string),
            resources: fields.resources,
        })
    }

    /// The canonical text of this message (what a wallet signs).
    pub fn to_text(&self) -> String {
        let mut s = format!("{}{HEADER_SUFFIX}\n{}\n", self.domain, self.address);
        if let Some(st) = &self.statement {
            s.push_str(&format!("\n{st}\n"));
        }
        s.push_str(&format!(
            "\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.uri, self.version, self.chain_id, self.nonce, self.issued_at
        ));
        if let Some(t) = self.expiration_time {
            s.push_str(&format!("\nExpiration Time: {t}"));
        }
        if let Some(t) = self.not_before {
            s.push_str(&format!("\nNot Before: {t}"));
        }
        if let Some(r) = &self.request_id {
            s.push_str(&format!("\nRequest ID: {r}"));
        }
        if !self.resources.is_empty() {
            s.push_str("\nResources:");
            for r in &self.resources {
                s.push_str(&format!("\n- {r}"));
            }
        }
        s
    }
}

/// What the service expects of a message.
pub struct Expected<'a> {
    pub domain: &'a str,
    pub uri: &'a str,
    pub chain_id: &'a str,
    /// Longest accepted age of `Issued At` (the nonce lifetime).
    pub max_age_secs: i64,
}

/// Checks the message's fields against the expectations and the clock.
pub fn check_fields(msg: &SiwsMessage, expected: &Expected<'_>, now: Timestamp) -> Result<(), SiwsError> {
    if msg.domain != expected.domain {
        return Err(SiwsError::WrongDomain(msg.domain.clone()));
    }
    if msg.uri != expected.uri {
        return Err(SiwsError::WrongUri(msg.uri.clone()));
    }
    if msg.version != "1" {
        return Err(SiwsError::UnsupportedVersion(msg.version.clone()));
    }
    let chain = msg.chain_id.strip_prefix("solana:").unwrap_or(&msg.chain_id);
    let expected_chain = expected.chain_id.strip_prefix("solana:").unwrap_or(expected.chain_id);
    if chain != expected_chain {
        return Err(SiwsError::WrongChain(msg.chain_id.clone(), expected.chain_id.to_string()));
    }
    let now_s = now.as_second();
    if msg.issued_at.as_second() > now_s + CLOCK_SKEW_SECS {
        return Err(SiwsError::NotYetValid);
    }
    if let Some(exp) = msg.expiration_time
        && exp.as_second() <= now_s
    {
        return Err(SiwsError::Expired);
    }
    if msg.issued_at.as_second() < now_s - expected.max_age_secs - CLOCK_SKEW_SECS {
        return Err(SiwsError::TooOld);
    }
    if let Some(nbf) = msg.not_before
        && nbf.as_second() > now_s + CLOCK_SKEW_SECS
    {
        return Err(SiwsError::NotYetValid);
    }
    Ok(())
}

/// Checks that `signature` is the message address's ed25519 signature over `text`.
pub fn verify_signature(msg: &SiwsMessage, text: &str, signature: &[u8]) -> Result<(), SiwsError> {
    let key = decode_pubkey(&msg.address).ok_or(SiwsError::InvalidAddress)?;
    let signature = Signature::from_slice(signature).map_err(|_| SiwsError::BadSignature)?;
    key.verify_strict(text.as_bytes(), &signature).map_err(|_| SiwsError::BadSignature)
}

/// Decodes a signature given as base58 or base64 (64 bytes either way).
pub fn decode_signature(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let s = s.trim();
    if let Ok(b) = bs58::decode(s).into_vec()
        && b.len() == 64
    {
        return Some(b);
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok().filter(|b| b.len() == 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn message(now: Timestamp) -> SiwsMessage {
        SiwsMessage {
            domain: "example.org".into(),
            address: bs58::encode(key().verifying_key().as_bytes()).into_string(),
            statement: Some("Sign in to SecurityGuard".into()),
            uri: "https://example.org".into(),
            version: "1".into(),
            chain_id: "mainnet".into(),
            nonce: "abcdef123456".into(),
            issued_at: now,
            expiration_time: Some(now + jiff::SignedDuration::from_secs(300)),
            not_before: None,
            request_id: None,
            resources: vec!["https://example.org/terms".into()],
        }
    }

    fn expected() -> Expected<'static> {
        Expected { domain: "example.org", uri: "https://example.org", chain_id: "mainnet", max_age_secs: 300 }
    }

    #[test]
    fn round_trips_and_verifies() {
        let now = Timestamp::now();
        let msg = message(now);
        let text = msg.to_text();
        let parsed = SiwsMessage::parse(&text).unwrap();
        assert_eq!(parsed, msg);
        check_fields(&parsed, &expected(), now).unwrap();
        let sig = key().sign(text.as_bytes());
        verify_signature(&parsed, &text, &sig.to_bytes()).unwrap();
        let mut tampered = text.clone();
        tampered.push(' ');
        assert_eq!(verify_signature(&parsed, &tampered, &sig.to_bytes()), Err(SiwsError::BadSignature));
    }

    #[test]
    fn message_without_statement_parses() {
        let now = Timestamp::now();
        let mut msg = message(now);
        msg.statement = None;
        msg.resources.clear();
        assert_eq!(SiwsMessage::parse(&msg.to_text()).unwrap(), msg);
    }

    #[test]
    fn refuses_wrong_fields_and_times() {
        let now = Timestamp::now();
        let mut m = message(now);
        m.domain = "evil.org".into();
        assert_eq!(check_fields(&m, &expected(), now).unwrap_err().reason(), "wrong_domain");
        let mut m = message(now);
        m.chain_id = "devnet".into();
        assert_eq!(check_fields(&m, &expected(), now).unwrap_err().reason(), "wrong_chain");
        let mut m = message(now);
        m.uri = "https://evil.org".into();
        assert_eq!(check_fields(&m, &expected(), now).unwrap_err().reason(), "wrong_uri");
        let m = message(now - jiff::SignedDuration::from_secs(400));
        assert_eq!(check_fields(&m, &expected(), now).unwrap_err().reason(), "expired_message");
        let mut m = message(now);
        m.expiration_time = None;
        m.issued_at = now - jiff::SignedDuration::from_secs(1000);
        assert_eq!(check_fields(&m, &expected(), now).unwrap_err().reason(), "message_too_old");
        let m = message(now + jiff::SignedDuration::from_secs(600));
        assert_eq!(check_fields(&m, &expected(), now).unwrap_err().reason(), "not_yet_valid");
    }

    #[test]
    fn refuses_malformed_messages() {
        for text in [
            "",
            "hello",
            "example.org wants you to sign in with your Solana account:\n",
            "example.org wants you to sign in with your Solana account:\nabc\n\nURI: x\nVersion: 1\nChain ID: m\nNonce: short\nIssued At: 2026-01-01T00:00:00Z",
        ] {
            assert!(matches!(SiwsMessage::parse(text), Err(SiwsError::Malformed(_))), "{text:?}");
        }
    }
}
