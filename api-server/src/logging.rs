//! JSON logs on standard output. Lines are formatted where they happen and written by a
//! background thread in batches (one `write` per batch while lines keep coming, flushed as
//! soon as none are waiting), so a busy API's access log costs no system call per request.
//! When the writer falls 128,000 lines behind (standard output blocked), further lines are
//! dropped rather than stalling requests; they are counted in
//! `securityguard_log_lines_dropped_total`.

use std::io::{BufWriter, stdout};
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the writer thread; dropping it writes what is queued (for at most a second).
#[must_use = "logs written after this is dropped are lost"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Installs the JSON subscriber, filtered by RUST_LOG (default `info`).
pub fn init() -> LogGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(64 * 1024, stdout()));
    let _ = DROPPED.set(writer.error_counter());
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    LogGuard(guard)
}

/// Lines dropped so far because the writer was too far behind (0 before `init`).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}
