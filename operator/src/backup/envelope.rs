//! The envelope of encrypted backups: what a dump, a config backup or a log archive becomes
//! when `spec.backup.encryption` names a key, before it leaves the pod. Any other object written
//! whole or as a stream (a base backup, a WAL segment) can be sealed the same way: the envelope
//! knows nothing of what it carries.
//!
//! Layout of a sealed object:
//!
//! ```text
//! header (49 bytes): "SG-ENC1\n" | algorithm (1 byte, 1) | key fingerprint (8 bytes) | salt (32 bytes)
//! chunks:            ChaCha20-Poly1305 of 64 KiB of plaintext + 16-byte tag, ...,
//!                    the final chunk (0 to 64 KiB - 1 bytes of plaintext + tag)
//! ```
//!
//! The chunks are the STREAM construction of the `aead` crate (`StreamBE32`: a 7-byte nonce
//! prefix, a 32-bit chunk counter and a last-chunk flag in each nonce), so every chunk is
//! authenticated in its place, and a stream cut short or extended does not open. The key and the
//! nonce prefix of each object come from HKDF-SHA256 of the backup key, with the object's random
//! salt and its whole header as input: a fresh key per object (no nonce is ever reused under a
//! key), and a header changed in any bit no longer opens the first chunk. A full-size chunk is
//! never the final one, so where the stream ends is never ambiguous.
//!
//! Memory is bounded by one chunk on each side, whatever the size of the object.
//!
//! Keys: a key file (the Secret key `spec.backup.encryption.keySecret` mounted into the pod)
//! holds one key a line, 32 random bytes as 64 hex digits or as base64 (`openssl rand -base64
//! 32`); blank lines and `#` comments are skipped. The first key seals; every key opens, so
//! that a rotated-out key still restores the backups it sealed. A key is known to logs,
//! manifests and errors only by its fingerprint, `sha256:` and the first 16 hex digits of the
//! SHA-256 of its 32 bytes.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32, Nonce, StreamBE32};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use rand::Rng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// First bytes of every sealed object.
pub const MAGIC: [u8; 8] = *b"SG-ENC1\n";

/// The algorithm byte of the header: ChaCha20-Poly1305 STREAM of 64 KiB chunks, per-object key
/// and nonce prefix from HKDF-SHA256.
pub const ALGORITHM_ID: u8 = 1;

/// The algorithm as manifests name it.
pub const ALGORITHM: &str = "chacha20poly1305-stream-64k";

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;

/// Bytes a chunk grows by (the Poly1305 tag).
pub const TAG: usize = 16;

/// Bytes of a key.
pub const KEY_BYTES: usize = 32;

/// Bytes of a header.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + FINGERPRINT_BYTES + SALT_BYTES;

const FINGERPRINT_BYTES: usize = 8;
const SALT_BYTES: usize = 32;
/// The nonce prefix of `StreamBE32` over a 12-byte nonce.
const NONCE_PREFIX_BYTES: usize = 7;
/// The HKDF info, before the header.
const KDF_INFO: &[u8] = b"securityguard backup envelope v1";

type Encryptor = EncryptorBE32<ChaCha20Poly1305>;
type Decryptor = DecryptorBE32<ChaCha20Poly1305>;

/// The size of the sealed object of `plaintext` bytes.
pub fn sealed_len(plaintext: u64) -> u64 {
    HEADER_LEN as u64 + plaintext + TAG as u64 * (plaintext / CHUNK as u64 + 1)
}

/// Whether `bytes` begin like a sealed object.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// What names a key without revealing it: the first 8 bytes of the SHA-256 of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; FINGERPRINT_BYTES]);

impl Fingerprint {
    fn of(key: &[u8; KEY_BYTES]) -> Self {
        let digest = Sha256::digest(key);
        let mut bytes = [0u8; FINGERPRINT_BYTES];
        bytes.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
        Fingerprint(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One key. Debug shows its fingerprint only; the bytes are wiped when dropped.
#[derive(Clone)]
pub struct Key {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    fingerprint: Fingerprint,
}

impl Key {
    /// The key of these bytes.
    pub fn new(bytes: [u8; KEY_BYTES]) -> Self {
        let fingerprint = Fingerprint::of(&bytes);
        Key { bytes: Zeroizing::new(bytes), fingerprint }
    }

    /// Its fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// The keys of a key file: the first seals, all open.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
}

/// A key file that cannot be used. Never shows a key, nor a line of the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the encryption key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not UTF-8 text.
    #[error("{origin} is not text: one key a line, as 64 hex digits or base64")]
    NotText {
        /// The file or Secret.
        origin: String,
    },
    /// A line is not a key.
    #[error("{origin} line {line}: {reason}")]
    Line {
        /// The file or Secret.
        origin: String,
        /// Its number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No key at all.
    #[error("{origin} holds no key: one key a line, 32 random bytes as 64 hex digits or base64")]
    Empty {
        /// The file or Secret.
        origin: String,
    },
}

impl Keyring {
    /// A keyring of these keys, the first sealing (`None` when empty).
    pub fn new(keys: Vec<Key>) -> Option<Self> {
        (!keys.is_empty()).then_some(Keyring { keys })
    }

    /// The keys of the text of a key file; `origin` names it in errors.
    pub fn parse(text: &[u8], origin: &str) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(text).map_err(|_| KeyError::NotText { origin: origin.to_owned() })?;
        let mut keys: Vec<Key> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = decode_key(line).map_err(|reason| KeyError::Line {
                origin: origin.to_owned(),
                line: index + 1,
                reason,
            })?;
            if !keys.iter().any(|k| k.fingerprint == key.fingerprint) {
                keys.push(key);
            }
        }
        Keyring::new(keys).ok_or_else(|| KeyError::Empty { origin: origin.to_owned() })
    }

    /// Reads and parses the key file at `path`.
    pub async fn read(path: &Path) -> Result<Self, KeyError> {
        let origin = path.display().to_string();
        let text = Zeroizing::new(
            tokio::fs::read(path).await.map_err(|source| KeyError::Read { path: origin.clone(), source })?,
        );
        Keyring::parse(&text, &origin)
    }

    /// The key that seals.
    pub fn current(&self) -> &Key {
        // `new` and `parse` never build an empty keyring.
        &self.keys[0]
    }

    /// The key of this fingerprint.
    pub fn find(&self, fingerprint: Fingerprint) -> Option<&Key> {
        self.keys.iter().find(|k| k.fingerprint == fingerprint)
    }

    /// The key whose fingerprint reads `text` (as manifests record it).
    pub fn find_named(&self, text: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.fingerprint.to_string() == text)
    }

    /// Every fingerprint, the sealing key's first.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.keys.iter().map(|k| k.fingerprint).collect()
    }
}

/// A key from one line: 64 hex digits, else base64 (standard alphabet, padded or not).
fn decode_key(line: &str) -> Result<Key, String> {
    let decoded = if line.len() == 2 * KEY_BYTES && line.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(line).map_err(|_| "not hex".to_owned())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(line)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(line))
            .map_err(|_| "not a key: 64 hex digits or base64 of 32 random bytes are expected".to_owned())?
    };
    let decoded = Zeroizing::new(decoded);
    let bytes: [u8; KEY_BYTES] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| format!("holds {} bytes, a key is {KEY_BYTES} random bytes", decoded.len()))?;
    Ok(Key::new(bytes))
}

/// The header of an object sealed with `fingerprint` and `salt`.
fn header(fingerprint: Fingerprint, salt: &[u8; SALT_BYTES]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(&MAGIC);
    header[MAGIC.len()] = ALGORITHM_ID;
    let at = MAGIC.len() + 1;
    header[at..at + FINGERPRINT_BYTES].copy_from_slice(&fingerprint.0);
    header[at + FINGERPRINT_BYTES..].copy_from_slice(salt);
    header
}

/// The cipher and the nonce prefix of the object of `header`.
fn object_cipher(
    key: &Key,
    header: &[u8; HEADER_LEN],
) -> (ChaCha20Poly1305, Nonce<ChaCha20Poly1305, StreamBE32<ChaCha20Poly1305>>) {
    let salt = &header[HEADER_LEN - SALT_BYTES..];
    let kdf = Hkdf::<Sha256>::new(Some(salt), key.bytes.as_slice());
    let mut okm = Zeroizing::new([0u8; KEY_BYTES + NONCE_PREFIX_BYTES]);
    // 39 bytes is far below HKDF-SHA256's limit of 8160.
    let _ = kdf.expand_multi_info(&[KDF_INFO, header.as_slice()], okm.as_mut_slice());
    let mut object_key = Zeroizing::new([0u8; KEY_BYTES]);
    object_key.copy_from_slice(&okm[..KEY_BYTES]);
    let mut prefix = [0u8; NONCE_PREFIX_BYTES];
    prefix.copy_from_slice(&okm[KEY_BYTES..]);
    let cipher = ChaCha20Poly1305::new(&(*object_key).into());
    (cipher, prefix.into())
}

/// Sealing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// More chunks than the 32-bit counter numbers (256 TiB).
    #[error("the object is too large to seal: more than 2^32 chunks of 64 KiB")]
    TooLarge,
    /// Used after `finish`.
    #[error("the sealed stream was already finished")]
    Finished,
}

/// Seals a stream: the plaintext goes in by [`Sealer::push`], the sealed bytes come out, the
/// header with the first of them.
pub struct Sealer {
    header: Option<[u8; HEADER_LEN]>,
    encryptor: Option<Encryptor>,
    pending: Vec<u8>,
    plaintext: u64,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("fingerprint", &self.fingerprint).field("plaintext", &self.plaintext).finish()
    }
}

impl Sealer {
    /// Seals with `key` and a random salt.
    pub fn new(key: &Key) -> Self {
        let mut salt = [0u8; SALT_BYTES];
        rand::rng().fill(&mut salt);
        Sealer::with_salt(key, salt)
    }

    fn with_salt(key: &Key, salt: [u8; SALT_BYTES]) -> Self {
        let header = header(key.fingerprint, &salt);
        let (cipher, nonce) = object_cipher(key, &header);
        Sealer {
            header: Some(header),
            encryptor: Some(Encryptor::from_aead(cipher, &nonce)),
            pending: Vec::with_capacity(CHUNK + TAG),
            plaintext: 0,
            fingerprint: key.fingerprint,
        }
    }

    /// The fingerprint of the sealing key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Plaintext bytes taken so far.
    pub fn plaintext(&self) -> u64 {
        self.plaintext
    }

    /// Takes `data`, appending to `out` what is sealed so far (the header, whole chunks).
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        let Some(encryptor) = self.encryptor.as_mut() else { return Err(SealError::Finished) };
        if let Some(header) = self.header.take() {
            out.extend_from_slice(&header);
        }
        self.plaintext += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                encryptor.encrypt_next_in_place(b"", &mut self.pending).map_err(|_| SealError::TooLarge)?;
                out.extend_from_slice(&self.pending);
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Seals the final chunk into `out`; returns the plaintext size.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<u64, SealError> {
        let encryptor = self.encryptor.take().ok_or(SealError::Finished)?;
        if let Some(header) = self.header.take() {
            out.extend_from_slice(&header);
        }
        encryptor.encrypt_last_in_place(b"", &mut self.pending).map_err(|_| SealError::TooLarge)?;
        out.extend_from_slice(&self.pending);
        self.pending = Vec::new();
        Ok(self.plaintext)
    }
}

/// Seals a small object whole.
pub fn seal(key: &Key, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut out = Vec::with_capacity(usize::try_from(sealed_len(plaintext.len() as u64)).unwrap_or(0));
    let mut sealer = Sealer::new(key);
    sealer.push(plaintext, &mut out)?;
    sealer.finish(&mut out)?;
    Ok(out)
}

/// Opening failed. Names keys by fingerprint only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The object does not begin with the envelope's header.
    #[error("it is not encrypted (no envelope header)")]
    NotEncrypted,
    /// A newer envelope.
    #[error("it is encrypted with algorithm {0}, which this operator does not know")]
    UnknownAlgorithm(u8),
    /// None of the keys given is the one that sealed it.
    #[error("it is encrypted with key {expected}, the key file holds {}", list(.given))]
    WrongKey {
        /// The sealing key's fingerprint, from the header.
        expected: Fingerprint,
        /// The fingerprints of the keys given.
        given: Vec<Fingerprint>,
    },
    /// A chunk does not authenticate.
    #[error("chunk {chunk} does not authenticate: the object was altered or cut short")]
    Authentication {
        /// Its number, from 0.
        chunk: u64,
    },
    /// The object ends before its final chunk.
    #[error("it is truncated: it ends after {chunks} chunk(s), without its final chunk")]
    Truncated {
        /// Whole chunks read.
        chunks: u64,
    },
    /// Used after `finish`.
    #[error("the sealed stream was already finished")]
    Finished,
}

/// Fingerprints as `a, b`.
pub fn list(fingerprints: &[Fingerprint]) -> String {
    fingerprints.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

enum OpenState {
    Header,
    Body(Decryptor),
    Done,
}

/// Opens a sealed stream: the sealed bytes go in by [`Opener::push`], the plaintext comes out
/// chunk by chunk, each authenticated. The first failure sticks: later calls return it.
pub struct Opener {
    keyring: Keyring,
    state: OpenState,
    pending: Vec<u8>,
    chunks: u64,
    plaintext: u64,
    failed: Option<OpenError>,
}

impl Opener {
    /// Opens with any key of `keyring`.
    pub fn new(keyring: &Keyring) -> Self {
        Opener {
            keyring: keyring.clone(),
            state: OpenState::Header,
            pending: Vec::with_capacity(CHUNK + TAG),
            chunks: 0,
            plaintext: 0,
            failed: None,
        }
    }

    /// Takes sealed `data`, appending to `out` the plaintext of every whole chunk.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), OpenError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.take(data, out);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn take(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), OpenError> {
        while !data.is_empty() {
            let unit = match self.state {
                OpenState::Header => HEADER_LEN,
                OpenState::Body(_) => CHUNK + TAG,
                OpenState::Done => return Err(OpenError::Finished),
            };
            let take = (unit - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < unit {
                continue;
            }
            match &mut self.state {
                OpenState::Header => {
                    let decryptor = start(&self.keyring, &self.pending)?;
                    self.state = OpenState::Body(decryptor);
                }
                OpenState::Body(decryptor) => {
                    // A full-size chunk is never the final one.
                    decryptor
                        .decrypt_next_in_place(b"", &mut self.pending)
                        .map_err(|_| OpenError::Authentication { chunk: self.chunks })?;
                    self.chunks += 1;
                    self.plaintext += self.pending.len() as u64;
                    out.extend_from_slice(&self.pending);
                }
                OpenState::Done => return Err(OpenError::Finished),
            }
            self.pending.clear();
        }
        Ok(())
    }

    /// Opens the final chunk into `out` (the sealed stream has ended); returns the plaintext size.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<u64, OpenError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        match std::mem::replace(&mut self.state, OpenState::Done) {
            OpenState::Header if self.pending.len() >= MAGIC.len() && !is_sealed(&self.pending) => {
                Err(OpenError::NotEncrypted)
            }
            OpenState::Header => Err(OpenError::Truncated { chunks: 0 }),
            OpenState::Body(_) if self.pending.len() < TAG => Err(OpenError::Truncated { chunks: self.chunks }),
            OpenState::Body(decryptor) => {
                decryptor
                    .decrypt_last_in_place(b"", &mut self.pending)
                    .map_err(|_| OpenError::Authentication { chunk: self.chunks })?;
                self.plaintext += self.pending.len() as u64;
                out.extend_from_slice(&self.pending);
                self.pending = Vec::new();
                Ok(self.plaintext)
            }
            OpenState::Done => Err(OpenError::Finished),
        }
    }
}

/// The decryptor of the object whose header is `header`, with its key from `keyring`.
fn start(keyring: &Keyring, header: &[u8]) -> Result<Decryptor, OpenError> {
    let header: &[u8; HEADER_LEN] = header.try_into().map_err(|_| OpenError::Truncated { chunks: 0 })?;
    if !is_sealed(header) {
        return Err(OpenError::NotEncrypted);
    }
    let algorithm = header[MAGIC.len()];
    if algorithm != ALGORITHM_ID {
        return Err(OpenError::UnknownAlgorithm(algorithm));
    }
    let at = MAGIC.len() + 1;
    let mut fingerprint = [0u8; FINGERPRINT_BYTES];
    fingerprint.copy_from_slice(&header[at..at + FINGERPRINT_BYTES]);
    let fingerprint = Fingerprint(fingerprint);
    let key = keyring
        .find(fingerprint)
        .ok_or_else(|| OpenError::WrongKey { expected: fingerprint, given: keyring.fingerprints() })?;
    let (cipher, nonce) = object_cipher(key, header);
    Ok(Decryptor::from_aead(cipher, &nonce))
}

/// The fingerprint of the key that sealed `bytes`, read from their header.
pub fn sealed_with(bytes: &[u8]) -> Option<Fingerprint> {
    if bytes.len() < HEADER_LEN || !is_sealed(bytes) {
        return None;
    }
    let at = MAGIC.len() + 1;
    let mut fingerprint = [0u8; FINGERPRINT_BYTES];
    fingerprint.copy_from_slice(&bytes[at..at + FINGERPRINT_BYTES]);
    Some(Fingerprint(fingerprint))
}

/// Opens a small object whole.
pub fn open(keyring: &Keyring, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut out = Vec::with_capacity(sealed.len());
    let mut opener = Opener::new(keyring);
    opener.push(sealed, &mut out)?;
    opener.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::new([byte; KEY_BYTES])
    }

    fn ring(keys: &[u8]) -> Keyring {
        Keyring::new(keys.iter().map(|b| key(*b)).collect()).expect("keys")
    }

    /// Sizes around the chunk boundaries, and none at all.
    const SIZES: &[usize] = &[0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17];

    fn plaintext(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Seals `data` pushed in pieces of `piece` bytes.
    fn seal_in_pieces(key: &Key, data: &[u8], piece: usize) -> Vec<u8> {
        let mut sealer = Sealer::new(key);
        let mut out = Vec::new();
        for part in data.chunks(piece.max(1)) {
            sealer.push(part, &mut out).expect("push");
        }
        assert_eq!(sealer.finish(&mut out).expect("finish"), data.len() as u64);
        out
    }

    /// Opens `sealed` pushed in pieces of `piece` bytes.
    fn open_in_pieces(keyring: &Keyring, sealed: &[u8], piece: usize) -> Result<Vec<u8>, OpenError> {
        let mut opener = Opener::new(keyring);
        let mut out = Vec::new();
        for part in sealed.chunks(piece.max(1)) {
            opener.push(part, &mut out)?;
        }
        opener.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_whatever_the_size_and_the_pieces() {
        let key = key(7);
        for &size in SIZES {
            let data = plaintext(size);
            for piece in [1000, 4096, CHUNK, 200_000] {
                let sealed = seal_in_pieces(&key, &data, piece);
                assert_eq!(sealed.len() as u64, sealed_len(size as u64), "size {size}");
                assert!(is_sealed(&sealed));
                assert_eq!(sealed_with(&sealed), Some(key.fingerprint()));
                for open_piece in [7, 65_000, 1 << 20] {
                    let opened = open_in_pieces(&ring(&[7]), &sealed, open_piece).expect("opens");
                    assert!(opened == data, "size {size}, pieces {piece}/{open_piece}");
                }
            }
        }
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let data = plaintext(1000);
        let (a, b) = (seal(&key(1), &data).expect("seal"), seal(&key(1), &data).expect("seal"));
        assert_ne!(a, b, "a fresh salt, hence a fresh key, per object");
        assert!(!a.windows(100).any(|w| w == &data[..100]), "no plaintext in the sealed bytes");
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let data = plaintext(2 * CHUNK + 100);
        let sealed = seal(&key(1), &data).expect("seal");
        // In the algorithm byte, the salt, the first, a middle and the last chunk.
        for at in [MAGIC.len(), HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + CHUNK + 20, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x01;
            let error = open(&ring(&[1]), &tampered).expect_err("tampered");
            assert!(
                matches!(error, OpenError::Authentication { .. } | OpenError::UnknownAlgorithm(_)),
                "byte {at}: {error}"
            );
        }
        // Chunks swapped: each authenticates only in its own place.
        let mut swapped = sealed.clone();
        let (first, second) =
            (HEADER_LEN..HEADER_LEN + CHUNK + TAG, HEADER_LEN + CHUNK + TAG..HEADER_LEN + 2 * (CHUNK + TAG));
        let chunk = sealed[first.clone()].to_vec();
        swapped.copy_within(second.clone(), first.start);
        swapped[second].copy_from_slice(&chunk);
        assert_eq!(open(&ring(&[1]), &swapped), Err(OpenError::Authentication { chunk: 0 }));
    }

    #[test]
    fn a_truncated_or_extended_stream_does_not_open() {
        let data = plaintext(2 * CHUNK + 100);
        let sealed = seal(&key(1), &data).expect("seal");
        let keyring = ring(&[1]);
        // Cut at a chunk boundary: every chunk left authenticates, the final one is missing.
        let at_boundary = &sealed[..HEADER_LEN + 2 * (CHUNK + TAG)];
        assert_eq!(open(&keyring, at_boundary), Err(OpenError::Truncated { chunks: 2 }));
        // Cut inside the final chunk, inside a chunk, inside the header, nothing at all.
        assert_eq!(open(&keyring, &sealed[..sealed.len() - 1]), Err(OpenError::Authentication { chunk: 2 }));
        assert_eq!(open(&keyring, &sealed[..HEADER_LEN + 1000]), Err(OpenError::Authentication { chunk: 0 }));
        assert_eq!(open(&keyring, &sealed[..HEADER_LEN - 1]), Err(OpenError::Truncated { chunks: 0 }));
        assert_eq!(open(&keyring, &[]), Err(OpenError::Truncated { chunks: 0 }));
        // Bytes appended after the final chunk.
        let mut extended = sealed.clone();
        extended.extend_from_slice(b"more");
        assert_eq!(open(&keyring, &extended), Err(OpenError::Authentication { chunk: 2 }));
    }

    #[test]
    fn the_wrong_key_is_named_by_fingerprints_only() {
        let sealed = seal(&key(1), b"secret data").expect("seal");
        let error = open(&ring(&[2, 3]), &sealed).expect_err("wrong key");
        assert_eq!(
            error,
            OpenError::WrongKey {
                expected: key(1).fingerprint(),
                given: vec![key(2).fingerprint(), key(3).fingerprint()]
            }
        );
        let text = error.to_string();
        assert!(text.starts_with("it is encrypted with key sha256:"), "{text}");
        assert!(text.contains(&key(2).fingerprint().to_string()) && text.contains(&key(3).fingerprint().to_string()));
        // The fingerprint is 16 hex digits of the key's SHA-256, labelled.
        let expected = format!("sha256:{}", &hex::encode(Sha256::digest([1u8; KEY_BYTES]))[..16]);
        assert_eq!(key(1).fingerprint().to_string(), expected);
        assert!(!format!("{:?}", key(1)).contains("1, 1"), "Debug never shows the key");
    }

    #[test]
    fn a_header_naming_another_key_does_not_open_with_that_key() {
        // The fingerprint in the header rewritten to the other key's: it is input to the key
        // derivation, so the first chunk no longer authenticates.
        let sealed = seal(&key(1), &plaintext(100)).expect("seal");
        let mut forged = sealed.clone();
        let at = MAGIC.len() + 1;
        forged[at..at + FINGERPRINT_BYTES].copy_from_slice(&key(2).fingerprint().0);
        assert_eq!(open(&ring(&[1, 2]), &forged), Err(OpenError::Authentication { chunk: 0 }));
    }

    #[test]
    fn a_previous_key_still_opens() {
        let old = seal(&key(1), b"sealed before the rotation").expect("seal");
        let rotated = ring(&[2, 1]);
        assert_eq!(rotated.current().fingerprint(), key(2).fingerprint());
        assert_eq!(open(&rotated, &old).expect("opens"), b"sealed before the rotation");
        assert_eq!(sealed_with(&seal(rotated.current(), b"x").expect("seal")), Some(key(2).fingerprint()));
    }

    #[test]
    fn plaintext_is_refused() {
        let error =
            open(&ring(&[1]), b"PGDMP\x01\x0e\x00 a plain dump, long enough for a header.....").expect_err("plain");
        assert_eq!(error, OpenError::NotEncrypted);
        assert!(!is_sealed(b"PGDMP"));
        assert_eq!(sealed_with(b"PGDMP"), None);
    }

    #[test]
    fn the_first_failure_sticks() {
        let mut sealed = seal(&key(1), &plaintext(3 * CHUNK)).expect("seal");
        sealed[HEADER_LEN + 5] ^= 0x80;
        let mut opener = Opener::new(&ring(&[1]));
        let mut out = Vec::new();
        let first = opener.push(&sealed[..HEADER_LEN + CHUNK + TAG], &mut out).expect_err("chunk 0");
        assert_eq!(opener.push(&sealed[HEADER_LEN + CHUNK + TAG..], &mut out), Err(first.clone()));
        assert_eq!(opener.finish(&mut out), Err(first));
        assert!(out.is_empty(), "nothing of a chunk that does not authenticate comes out");
    }

    #[test]
    fn key_files_hold_one_key_a_line() {
        let hex_key = "00".repeat(KEY_BYTES);
        let b64_key = base64::engine::general_purpose::STANDARD.encode([9u8; KEY_BYTES]);
        let text = format!("# current\n{b64_key}\n\n  {hex_key}  \n# retired 2026-01\n{b64_key}\n");
        let keyring = Keyring::parse(text.as_bytes(), "keys").expect("parses");
        assert_eq!(keyring.fingerprints(), vec![key(9).fingerprint(), key(0).fingerprint()], "duplicates once");
        assert_eq!(keyring.current().fingerprint(), key(9).fingerprint());
        assert!(keyring.find_named(&key(0).fingerprint().to_string()).is_some());

        let error = Keyring::parse(b"# nothing\n\n", "Secret \"k\" key \"keys\"").expect_err("empty");
        assert!(error.to_string().starts_with("Secret \"k\" key \"keys\" holds no key"), "{error}");
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let error = Keyring::parse(format!("{b64_key}\n{short}\n").as_bytes(), "keys").expect_err("short");
        assert_eq!(error.to_string(), "keys line 2: holds 16 bytes, a key is 32 random bytes");
        let error = Keyring::parse(b"correct horse battery staple", "keys").expect_err("a passphrase");
        assert!(error.to_string().starts_with("keys line 1: not a key"), "{error}");
        assert!(!error.to_string().contains("horse"), "a line is never shown: {error}");
        assert!(matches!(Keyring::parse(&[0xff, 0xfe], "keys"), Err(KeyError::NotText { .. })));
    }
}
