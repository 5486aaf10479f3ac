//! A bounds-checked decoder of the Solana transaction wire format (legacy and v0 messages).
//!
//! ```text
//! transaction := shortvec<signature[64]> message
//! message     := [0x80 | version]? header account_keys blockhash instructions [lookups if v0]
//! header      := num_required_signatures u8, num_readonly_signed u8, num_readonly_unsigned u8
//! instruction := program_id_index u8, shortvec<u8> account indexes, shortvec<u8> data
//! lookup      := table key[32], shortvec<u8> writable indexes, shortvec<u8> readonly indexes
//! ```
//! Every length is checked against the remaining input before use; nothing is guessed: an
//! unknown message version is an error naming the version.

use std::fmt;

/// Largest transaction Solana accepts (the packet size).
pub const MAX_TRANSACTION_SIZE: usize = 1232;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pubkey(pub [u8; 32]);

impl Pubkey {
    pub fn from_base58(s: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        match bs58::decode(s).onto(&mut bytes) {
            Ok(32) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// For constants; panics on invalid input (compile-time-known strings only).
    pub fn must(s: &str) -> Self {
        Self::from_base58(s).unwrap_or_else(|| panic!("invalid pubkey constant {s}"))
    }
}

impl fmt::Display for Pubkey {
    /// Base58, as Solana writes addresses. five8's fixed-size encoder: encoding the reports'
    /// addresses with the general-purpose bs58 took about 5 % of a scan's CPU.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; five8::BASE58_ENCODED_32_MAX_LEN];
        let len = usize::from(five8::encode_32(&self.0, &mut out));
        // The base58 alphabet is ASCII.
        f.write_str(std::str::from_utf8(&out[..len]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Pubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pubkey({self})")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageVersion {
    Legacy,
    V0,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub num_required_signatures: u8,
    pub num_readonly_signed: u8,
    pub num_readonly_unsigned: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub program_id_index: u8,
    pub accounts: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub table: Pubkey,
    pub writable: Vec<u8>,
    pub readonly: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub signatures: Vec<[u8; 64]>,
    pub version: MessageVersion,
    pub header: Header,
    pub account_keys: Vec<Pubkey>,
    pub recent_blockhash: [u8; 32],
    pub instructions: Vec<Instruction>,
    pub lookups: Vec<Lookup>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("transaction is empty")]
    Empty,
    #[error("transaction is {0} bytes, more than the {MAX_TRANSACTION_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("unexpected end of data while reading {0}")]
    Truncated(&'static str),
    #[error("invalid compact length encoding for {0}")]
    BadLength(&'static str),
    #[error("message version {0} is not supported (known: legacy, 0)")]
    UnsupportedVersion(u8),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("invalid message header: {0}")]
    BadHeader(&'static str),
    #[error("instruction {instruction}: {what} index {index} is out of range ({len} accounts)")]
    IndexOutOfRange { instruction: usize, what: &'static str, index: u8, len: usize },
    #[error("instruction {0}: the program id must be a static account key")]
    ProgramFromLookup(usize),
    #[error("{expected} signatures required by the header but {found} present")]
    SignatureCount { expected: u8, found: usize },
}

impl DecodeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion(_) => "unsupported_message_version",
            Self::TooLarge(_) => "transaction_too_large",
            _ => "malformed_transaction",
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    /// Solana's compact-u16 ("shortvec"): 1 to 3 bytes, 7 bits each, canonical only.
    fn compact_u16(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..3 {
            let byte = self.u8(what)?;
            let bits = u32::from(byte & 0x7f);
            if i == 2 && byte > 0x03 {
                return Err(DecodeError::BadLength(what));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // A zero continuation byte would be a non-canonical (longer) encoding.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::BadLength(what));
                }
                return Ok(value as usize);
            }
        }
        Err(DecodeError::BadLength(what))
    }

    /// A length-prefixed byte vector; the length is checked against the remaining input.
    fn vec_u8(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = self.compact_u16(what)?;
        Ok(self.bytes(n, what)?.to_vec())
    }

    fn signatures(&mut self) -> Result<Vec<[u8; 64]>, DecodeError> {
        let n = self.compact_u16("signature count")?;
        if n.saturating_mul(64) > self.remaining() {
            return Err(DecodeError::Truncated("signatures"));
        }
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            signatures.push(self.array::<64>("signature")?);
        }
        Ok(signatures)
    }

    /// The message version: a prefix byte with the high bit set, or none for a legacy message.
    fn version(&mut self) -> Result<MessageVersion, DecodeError> {
        match self.peek() {
            Some(b) if b & 0x80 != 0 => {
                self.pos += 1;
                match b & 0x7f {
                    0 => Ok(MessageVersion::V0),
                    v => Err(DecodeError::UnsupportedVersion(v)),
                }
            }
            Some(_) => Ok(MessageVersion::Legacy),
            None => Err(DecodeError::Truncated("message")),
        }
    }

    fn account_keys(&mut self) -> Result<Vec<Pubkey>, DecodeError> {
        let n = self.compact_u16("account key count")?;
        if n.saturating_mul(32) > self.remaining() {
            return Err(DecodeError::Truncated("account keys"));
        }
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(Pubkey(self.array::<32>("account key")?));
        }
        Ok(keys)
    }

    fn instructions(&mut self) -> Result<Vec<Instruction>, DecodeError> {
        let n = self.compact_u16("instruction count")?;
        // Each instruction takes at least 3 bytes.
        if n.saturating_mul(3) > self.remaining() {
            return Err(DecodeError::Truncated("instructions"));
        }
        let mut instructions = Vec::with_capacity(n);
        for _ in 0..n {
            instructions.push(Instruction {
                program_id_index: self.u8("program id index")?,
                accounts: self.vec_u8("instruction accounts")?,
                data: self.vec_u8("instruction data")?,
            });
        }
        Ok(instructions)
    }

    /// The address lookup tables of a v0 message.
    fn lookups(&mut self) -> Result<Vec<Lookup>, DecodeError> {
        let n = self.compact_u16("lookup table count")?;
        if n.saturating_mul(34) > self.remaining() {
            return Err(DecodeError::Truncated("lookup tables"));
        }
        let mut lookups = Vec::new();
        for _ in 0..n {
            lookups.push(Lookup {
                table: Pubkey(self.array::<32>("lookup table key")?),
                writable: self.vec_u8("lookup writable indexes")?,
                readonly: self.vec_u8("lookup readonly indexes")?,
            });
        }
        Ok(lookups)
    }
}

impl Transaction {
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        if data.is_empty() {
            return Err(DecodeError::Empty);
        }
        if data.len() > MAX_TRANSACTION_SIZE {
            return Err(DecodeError::TooLarge(data.len()));
        }
        let mut r = Reader { data, pos: 0 };
        let signatures = r.signatures()?;
        let version = r.version()?;
        let header = Header {
            num_required_signatures: r.u8("header")?,
            num_readonly_signed: r.u8("header")?,
            num_readonly_unsigned: r.u8("header")?,
        };
        let account_keys = r.account_keys()?;
        let recent_blockhash = r.array::<32>("recent blockhash")?;
        let instructions = r.instructions()?;
        let lookups = if version == MessageVersion::V0 { r.lookups()? } else { Vec::new() };
        if r.remaining() > 0 {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }

        let tx = Self { signatures, version, header, account_keys, recent_blockhash, instructions, lookups };
        tx.validate()?;
        Ok(tx)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let h = self.header;
        let n = self.account_keys.len();
        if h.num_required_signatures == 0 {
            return Err(DecodeError::BadHeader("no required signatures (no fee payer)"));
        }
        if usize::from(h.num_required_signatures) > n {
            return Err(DecodeError::BadHeader("more required signatures than account keys"));
        }
        if h.num_readonly_signed >= h.num_required_signatures {
            return Err(DecodeError::BadHeader("the fee payer cannot be read-only"));
        }
        if usize::from(h.num_readonly_unsigned) > n - usize::from(h.num_required_signatures) {
            return Err(DecodeError::BadHeader("more read-only unsigned accounts than unsigned keys"));
        }
        if self.signatures.len() != usize::from(h.num_required_signatures) {
            return Err(DecodeError::SignatureCount {
                expected: h.num_required_signatures,
                found: self.signatures.len(),
            });
        }
        let total = self.total_accounts();
        if total > 256 {
            return Err(DecodeError::BadHeader("more than 256 accounts"));
        }
        for (i, ix) in self.instructions.iter().enumerate() {
            if usize::from(ix.program_id_index) >= total {
                return Err(DecodeError::IndexOutOfRange {
                    instruction: i,
                    what: "program id",
                    index: ix.program_id_index,
                    len: total,
                });
            }
            if usize::from(ix.program_id_index) >= n {
                return Err(DecodeError::ProgramFromLookup(i));
            }
            if let Some(&bad) = ix.accounts.iter().find(|&&a| usize::from(a) >= total) {
                return Err(DecodeError::IndexOutOfRange { instruction: i, what: "account", index: bad, len: total });
            }
        }
        Ok(())
    }

    /// Static keys plus the accounts loaded from lookup tables.
    pub fn total_accounts(&self) -> usize {
        self.account_keys.len() + self.lookups.iter().map(|l| l.writable.len() + l.readonly.len()).sum::<usize>()
    }

    /// The account at a message index: a static key, or `None` for one loaded from a lookup
    /// table (unknown without resolving the table on chain).
    pub fn key(&self, index: u8) -> Option<&Pubkey> {
        self.account_keys.get(usize::from(index))
    }

    pub fn is_signer(&self, index: u8) -> bool {
        index < self.header.num_required_signatures
    }

    /// Whether the message marks the account at `index` writable.
    pub fn is_writable(&self, index: u8) -> bool {
        let i = usize::from(index);
        let h = self.header;
        let n = self.account_keys.len();
        let signed = usize::from(h.num_required_signatures);
        if i < signed {
            return i < signed - usize::from(h.num_readonly_signed);
        }
        if i < n {
            return i < n - usize::from(h.num_readonly_unsigned);
        }
        // Lookup accounts: all writable ones first (table by table), then read-only ones.
        let writable_loaded: usize = self.lookups.iter().map(|l| l.writable.len()).sum();
        i - n < writable_loaded
    }

    /// Whether the account at `index` comes from a lookup table.
    pub fn is_from_lookup(&self, index: u8) -> bool {
        usize::from(index) >= self.account_keys.len()
    }

    pub fn fee_payer(&self) -> &Pubkey {
        &self.account_keys[0]
    }

    /// The signers' keys (the user's accounts).
    pub fn signers(&self) -> &[Pubkey] {
        &self.account_keys[..usize::from(self.header.num_required_signatures)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_base58_like_bs58() {
        let mut keys = vec![[0u8; 32], [255u8; 32], [1u8; 32]];
        let mut leading_zeros = [7u8; 32];
        leading_zeros[..5].fill(0);
        keys.push(leading_zeros);
        // A deterministic spread of other keys.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let mut k = [0u8; 32];
            for b in &mut k {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            keys.push(k);
        }
        for k in keys {
            let text = Pubkey(k).to_string();
            assert_eq!(text, bs58::encode(k).into_string());
            assert_eq!(Pubkey::from_base58(&text), Some(Pubkey(k)));
        }
        assert_eq!(Pubkey([0u8; 32]).to_string(), "11111111111111111111111111111111");
    }

    fn legacy_transfer() -> Vec<u8> {
        let mut tx = vec![1];
        tx.extend([0u8; 64]);
        tx.extend([1, 0, 1]); // header
        tx.push(3); // keys
        tx.extend([1u8; 32]);
        tx.extend([2u8; 32]);
        tx.extend([0u8; 32]); // system program
        tx.extend([9u8; 32]); // blockhash
        tx.push(1); // instructions
        tx.push(2);
        tx.extend([2, 0, 1]);
        let mut data = vec![2, 0, 0, 0];
        data.extend(5u64.to_le_bytes());
        tx.push(data.len() as u8);
        tx.extend(data);
        tx
    }

    #[test]
    fn decodes_a_legacy_transfer() {
        let tx = Transaction::decode(&legacy_transfer()).unwrap();
        assert_eq!(tx.version, MessageVersion::Legacy);
        assert_eq!(tx.account_keys.len(), 3);
        assert_eq!(tx.instructions[0].accounts, vec![0, 1]);
        assert!(tx.is_writable(0) && tx.is_writable(1) && !tx.is_writable(2));
        assert!(tx.is_signer(0) && !tx.is_signer(1));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let full = legacy_transfer();
        for len in 0..full.len() {
            assert!(Transaction::decode(&full[..len]).is_err(), "prefix of {len} bytes");
        }
        let mut longer = full.clone();
        longer.push(0);
        assert_eq!(Transaction::decode(&longer), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn unknown_versions_are_reported() {
        let mut tx = vec![1];
        tx.extend([0u8; 64]);
        tx.push(0x81);
        tx.extend([1, 0, 0]);
        assert_eq!(Transaction::decode(&tx), Err(DecodeError::UnsupportedVersion(1)));
    }

    #[test]
    fn compact_u16_is_canonical_and_bounded() {
        let read = |b: &[u8]| Reader { data: b, pos: 0 }.compact_u16("x");
        assert_eq!(read(&[0x00]), Ok(0));
        assert_eq!(read(&[0x7f]), Ok(127));
        assert_eq!(read(&[0x80, 0x01]), Ok(128));
        assert_eq!(read(&[0xff, 0xff, 0x03]), Ok(0xffff));
        assert!(read(&[0x80, 0x00]).is_err());
        assert!(read(&[0xff, 0xff, 0x04]).is_err());
        assert!(read(&[0x80]).is_err());
    }

    #[test]
    fn index_out_of_range_is_an_error() {
        let mut tx = legacy_transfer();
        let n = tx.len();
        // accounts [2, 0, 1] -> [2, 0, 7]
        tx[n - 14] = 7;
        assert!(matches!(
            Transaction::decode(&tx),
            Err(DecodeError::IndexOutOfRange { what: "account", index: 7, .. })
        ));
    }
}
