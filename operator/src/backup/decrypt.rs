//! `securityguard-operator backups decrypt`: opens one object of an encrypted backup (a dump, a
//! config backup, a log archive), copied out of the bucket by any means, with the key file, in
//! constant memory. For what the restore Job does not do: reading a config backup or a log
//! archive, or restoring by hand with `pg_restore` when the operator is not there.
//!
//! The output is complete only if every chunk authenticated, the final one included; otherwise
//! it is removed.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::envelope::{self, Keyring, OpenError, Opener};

/// What `backups decrypt` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The key file: one key a line, every one may open the object.
    pub key_file: PathBuf,
    /// The sealed object.
    pub input: PathBuf,
    /// Where the plaintext goes.
    pub output: PathBuf,
}

/// Decryption that failed, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file cannot be used.
    #[error(transparent)]
    Key(#[from] envelope::KeyError),
    /// A file cannot be read or written.
    #[error("{operation} {} failed: {source}", .path.display())]
    File {
        /// What was done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The object does not open.
    #[error("{} cannot be decrypted: {source}", .input.display())]
    Open {
        /// The object.
        input: PathBuf,
        /// Why.
        #[source]
        source: OpenError,
    },
}

/// Decrypts as `options` say; returns the plaintext size.
pub async fn run(options: &Options) -> Result<u64, Error> {
    let keyring = Keyring::read(&options.key_file).await?;
    let result = open_file(&keyring, &options.input, &options.output).await;
    if result.is_err()
        && let Err(error) = tokio::fs::remove_file(&options.output).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %options.output.display(), %error, "could not remove the partial output");
    }
    result
}

/// Opens the sealed file `input` into `output` with `keyring`.
async fn open_file(keyring: &Keyring, input: &Path, output: &Path) -> Result<u64, Error> {
    let file_error = |operation, path: &Path| {
        let path = path.to_owned();
        move |source| Error::File { operation, path, source }
    };
    let open_error = |source| Error::Open { input: input.to_owned(), source };
    let mut reader = tokio::fs::File::open(input).await.map_err(file_error("opening", input))?;
    let mut writer = tokio::fs::File::create(output).await.map_err(file_error("creating", output))?;
    let mut opener = Opener::new(keyring);
    let mut chunk = vec![0u8; 256 * 1024];
    let mut out = Vec::new();
    loop {
        let n = reader.read(&mut chunk).await.map_err(file_error("reading", input))?;
        out.clear();
        let size = if n == 0 {
            Some(opener.finish(&mut out).map_err(open_error)?)
        } else {
            opener.push(&chunk[..n], &mut out).map_err(open_error)?;
            None
        };
        writer.write_all(&out).await.map_err(file_error("writing", output))?;
        if let Some(size) = size {
            writer.flush().await.map_err(file_error("writing", output))?;
            return Ok(size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_a_sealed_file_and_removes_what_does_not_open() {
        let dir = tempfile::tempdir().expect("dir");
        let key_file = dir.path().join("keys");
        std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).expect("keys");
        let keyring = Keyring::read(&key_file).await.expect("keyring");
        let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let sealed = envelope::seal(keyring.current(), &plaintext).expect("seal");
        let (input, output) = (dir.path().join("x.pgdump"), dir.path().join("x.plain"));
        std::fs::write(&input, &sealed).expect("input");

        let options = Options { key_file, input: input.clone(), output: output.clone() };
        assert_eq!(run(&options).await.expect("decrypts"), plaintext.len() as u64);
        assert!(std::fs::read(&output).expect("output") == plaintext);

        std::fs::write(&input, &sealed[..sealed.len() - 10]).expect("truncated input");
        let error = run(&options).await.expect_err("truncated");
        assert!(error.to_string().contains("cannot be decrypted: chunk 4 does not authenticate"), "{error}");
        assert!(!output.exists(), "no partial plaintext left");
    }
}
