//! Machine credentials: bearer tokens for clients that are not wallets (the operator's threat-feed
//! sync). The accepted tokens are read from a file (FEED_TOKENS_FILE, mounted from a Secret the
//! operator generates), one a line; only their SHA-256 hashes are kept. The file is looked at on
//! every check and read again when it changed (a Secret volume is updated in place), so a token
//! is rotated without a restart: add the new one, move the clients over, remove the old one.
//! Tokens are never logged.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Shortest token accepted in the file (the operator generates 32 alphanumeric characters).
pub const MIN_TOKEN_LEN: usize = 24;

/// Why a presented token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No token file is configured: machine clients are turned off.
    #[error("machine tokens are not configured on this server (FEED_TOKENS_FILE)")]
    NotConfigured,
    /// The file cannot be read or holds no usable token.
    #[error("the machine token file cannot be used: {0}")]
    Unusable(String),
    /// The token is not one of the file's.
    #[error("invalid machine token")]
    Invalid,
}

/// What identifies a version of the file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        // Follows links: a Secret volume swaps the `..data` link when the Secret changes.
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }
}

struct Loaded {
    stamp: Stamp,
    hashes: Vec<[u8; 32]>,
}

/// The accepted machine tokens, as hashes, reloaded when their file changes.
pub struct MachineTokens {
    path: Option<PathBuf>,
    loaded: Mutex<Option<Loaded>>,
}

impl MachineTokens {
    /// Tokens read from `path`; `None` turns machine clients off.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path, loaded: Mutex::new(None) }
    }

    /// Whether a token file is configured.
    pub fn configured(&self) -> bool {
        self.path.is_some()
    }

    /// Accepts `presented` when its hash equals one of the file's (compared in constant time,
    /// every hash compared).
    pub fn check(&self, presented: &str) -> Result<(), Refused> {
        let path = self.path.as_deref().ok_or(Refused::NotConfigured)?;
        let stamp = Stamp::of(path).map_err(|e| Refused::Unusable(format!("{}: {e}", path.display())))?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.as_ref().is_none_or(|l| l.stamp != stamp) {
            let text =
                std::fs::read_to_string(path).map_err(|e| Refused::Unusable(format!("{}: {e}", path.display())))?;
            let hashes = parse(&text).map_err(Refused::Unusable)?;
            tracing::info!(path = %path.display(), tokens = hashes.len(), "machine tokens loaded");
            *loaded = Some(Loaded { stamp, hashes });
        }
        let hashes = loaded.as_ref().map(|l| l.hashes.as_slice()).unwrap_or_default();
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = false;
        for hash in hashes {
            found |= constant_time_eq(hash, &presented);
        }
        if found { Ok(()) } else { Err(Refused::Invalid) }
    }
}

/// The hashes of the tokens of a token file: one token a line, blank lines and `#` comments
/// ignored; a line too short to be a token refuses the file (naming the line, not its content).
pub fn parse(text: &str) -> Result<Vec<[u8; 32]>, String> {
    let mut hashes = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() < MIN_TOKEN_LEN || line.chars().any(char::is_whitespace) {
            return Err(format!("line {n} is not a token (at least {MIN_TOKEN_LEN} characters, no spaces)"));
        }
        hashes.push(Sha256::digest(line.as_bytes()).into());
    }
    if hashes.is_empty() {
        return Err("it holds no token".to_owned());
    }
    Ok(hashes)
}

/// Equality of two digests that takes the same time wherever they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "old-token-0123456789abcdef0123456789";
    const NEW: &str = "new-token-0123456789abcdef0123456789";

    #[test]
    fn accepts_every_listed_token_and_follows_rewrites() {
        let dir = std::env::temp_dir().join(format!("sg-machine-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(&file, format!("# rotation\n{OLD}\n\n{NEW}\n")).unwrap();
        let tokens = MachineTokens::new(Some(file.clone()));
        assert_eq!(tokens.check(OLD), Ok(()));
        assert_eq!(tokens.check(NEW), Ok(()));
        assert_eq!(tokens.check("nope"), Err(Refused::Invalid));
        assert_eq!(tokens.check(&format!("{OLD}x")), Err(Refused::Invalid));
        // The old token retired: refused at once, no restart.
        std::fs::write(&file, format!("{NEW}\n")).unwrap();
        assert_eq!(tokens.check(OLD), Err(Refused::Invalid));
        assert_eq!(tokens.check(NEW), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_when_unconfigured_missing_or_unusable() {
        assert_eq!(MachineTokens::new(None).check(NEW), Err(Refused::NotConfigured));
        let missing = MachineTokens::new(Some("/nonexistent/sg-tokens".into()));
        assert!(matches!(missing.check(NEW), Err(Refused::Unusable(_))));
        assert!(parse("# only a comment\n").unwrap_err().contains("no token"));
        let short = parse(&format!("{NEW}\nshort\n")).unwrap_err();
        assert!(short.contains("line 2") && !short.contains("short"), "{short}");
    }
}
