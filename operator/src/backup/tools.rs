//! `pg_dump` and `pg_restore` as child processes: the password only in `PGPASSWORD`, the end of
//! their stderr kept for the error message.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::pg::{self, DbUrl};

/// Bytes of stderr kept for an error message.
const STDERR_TAIL: usize = 4096;

/// A tool that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started.
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("waiting for {} failed: {source}", .program.display())]
    Wait {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited with an error.
    #[error("{} failed ({status}): {stderr}", .program.display())]
    Failed {
        /// The program.
        program: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
}

/// A running `pg_dump --format=custom`, its output to be read from [`Dump::stdout`].
pub struct Dump {
    program: PathBuf,
    child: Child,
    stderr: JoinHandle<String>,
}

impl Dump {
    /// Starts `pg_dump` on the database of `url`, reading the exported `snapshot`.
    pub fn start(bin_dir: Option<&Path>, url: &DbUrl, snapshot: &str) -> Result<(Self, ChildStdout), Error> {
        let program = pg::program(bin_dir, "pg_dump");
        let mut command = Command::new(&program);
        command
            .arg("--format=custom")
            .arg(format!("--snapshot={snapshot}"))
            .arg("--no-password")
            .arg("--dbname")
            .arg(url.without_password())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        url.password_env(&mut command);
        let mut child = command.spawn().map_err(|source| Error::Spawn { program: program.clone(), source })?;
        let stdout = child.stdout.take();
        let stderr = spawn_tail(child.stderr.take());
        let Some(stdout) = stdout else {
            return Err(Error::Spawn { program, source: std::io::Error::other("no stdout pipe") });
        };
        Ok((Dump { program, child, stderr }, stdout))
    }

    /// Waits for `pg_dump` to exit; an error unless it succeeded.
    pub async fn wait(mut self) -> Result<(), Error> {
        let status = self.child.wait().await.map_err(|source| Error::Wait { program: self.program.clone(), source })?;
        let stderr = self.stderr.await.unwrap_or_default();
        if status.success() {
            if !stderr.trim().is_empty() {
                tracing::warn!(stderr = %stderr.trim(), "pg_dump warnings");
            }
            Ok(())
        } else {
            Err(Error::Failed { program: self.program, status, stderr: stderr.trim().to_owned() })
        }
    }

    /// Kills `pg_dump` (the upload failed).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `pg_restore` of `file` into the database of `url`, in one transaction: an error rolls back
/// everything. `clean` drops the objects of the dump first (restoring over a live database).
pub async fn restore(bin_dir: Option<&Path>, url: &DbUrl, file: &Path, clean: bool) -> Result<(), Error> {
    let program = pg::program(bin_dir, "pg_restore");
    let mut command = Command::new(&program);
    command.arg("--single-transaction").arg("--exit-on-error").arg("--no-password");
    if clean {
        command.arg("--clean").arg("--if-exists");
    }
    command
        .arg("--dbname")
        .arg(url.without_password())
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    url.password_env(&mut command);
    let mut child = command.spawn().map_err(|source| Error::Spawn { program: program.clone(), source })?;
    let stderr = spawn_tail(child.stderr.take());
    let status = child.wait().await.map_err(|source| Error::Wait { program: program.clone(), source })?;
    let stderr = stderr.await.unwrap_or_default();
    if status.success() { Ok(()) } else { Err(Error::Failed { program, status, stderr: stderr.trim().to_owned() }) }
}

/// `<program> --version`, e.g. `pg_dump (PostgreSQL) 15.8`.
pub async fn version(bin_dir: Option<&Path>, name: &str) -> Result<String, Error> {
    let program = pg::program(bin_dir, name);
    let output = Command::new(&program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| Error::Spawn { program: program.clone(), source })?;
    if !output.status.success() {
        return Err(Error::Failed {
            program,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Peak resident memory of this process in MiB (`VmHWM`), where the system tells (Linux): the
/// proof that a backup or restore runs in constant memory.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// Reads a pipe to its end, keeping the last [`STDERR_TAIL`] bytes.
fn spawn_tail(pipe: Option<impl AsyncRead + Unpin + Send + 'static>) -> JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut pipe) = pipe else { return String::new() };
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    })
}

/// Resolves when the process is asked to stop: SIGTERM (the kubelet) or SIGINT (Ctrl-C).
pub async fn stop_requested() -> &'static str {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
