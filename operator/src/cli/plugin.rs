//! Command line of `kubectl securityguard` (see [`crate::plugin`] and [`crate::report`]): clap
//! only, each command's arguments become the plain options of the function that carries it out.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::output::OutputArgs;
use crate::backup::catalog::Source;
use crate::plugin::{RestoreRequest, Target};
use crate::report::{self, collect::LogLimits};

/// `kubectl securityguard`: backups, restores and support bundles of a SecurityGuard.
#[derive(Parser, Debug)]
#[command(name = "kubectl securityguard", bin_name = "kubectl securityguard", version, about)]
pub struct PluginCli {
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// List the backups of a SecurityGuard, newest first, with their state; then the newest
    /// restore drill and, with point-in-time recovery, the recoverable window.
    Backups(GuardBackupsArgs),
    /// Ask the operator to restore a SecurityGuard's database from a backup.
    Restore(RequestRestoreArgs),
    /// Write a support bundle for on-call: one tar.gz with the SecurityGuard, its status and
    /// Events, every child object, the recent logs of the API and operator pods, and the backup
    /// listing. Secret values are redacted; what could not be read is listed in summary.txt.
    Report(ReportArgs),
}

/// Which SecurityGuard.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Name of the SecurityGuard.
    pub name: String,
    /// Its namespace (default: the kubeconfig context's).
    #[arg(long, short)]
    pub namespace: Option<String>,
}

impl TargetArgs {
    /// The SecurityGuard named.
    pub fn target(&self) -> Target {
        Target { name: self.name.clone(), namespace: self.namespace.clone() }
    }
}

/// Options of `backups`.
#[derive(Args, Debug, Clone)]
pub struct GuardBackupsArgs {
    /// The SecurityGuard.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `restore`.
#[derive(Args, Debug, Clone)]
pub struct RequestRestoreArgs {
    /// The SecurityGuard.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which backup: `latest`, `before:<RFC 3339 time>` (the newest taken before it), or a key
    /// as `kubectl securityguard backups` shows it.
    #[arg(long)]
    pub source: Source,
    /// Identifier of this request (default: a new random one). The operator runs a restore once
    /// per identifier.
    #[arg(long)]
    pub request_id: Option<String>,
}

impl RequestRestoreArgs {
    /// The restore to ask for.
    pub fn request(&self) -> RestoreRequest {
        RestoreRequest {
            target: self.target.target(),
            source: self.source.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Options of `report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The SecurityGuard.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The archive to write (default: securityguard-report-<namespace>-<name>-<time>.tar.gz in
    /// the current directory).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Namespace of the operator's pods (default: found by their labels in every namespace,
    /// else in securityguard-system).
    #[arg(long)]
    pub operator_namespace: Option<String>,
    /// The last this many lines of each container's log.
    #[arg(long, default_value_t = report::DEFAULT_TAIL_LINES, value_parser = clap::value_parser!(i64).range(1..))]
    pub tail: i64,
    /// At most this many bytes of each container's log.
    #[arg(long, default_value_t = report::DEFAULT_LIMIT_BYTES, value_parser = clap::value_parser!(i64).range(1..))]
    pub limit_bytes: i64,
    /// Seconds the backup listing may take before the bundle records it as failed.
    #[arg(long, default_value_t = report::DEFAULT_BACKUPS_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub backups_timeout: u64,
}

impl ReportArgs {
    /// What the report does.
    pub fn options(&self) -> report::Options {
        report::Options {
            target: self.target.target(),
            output: self.output.clone(),
            operator_namespace: self.operator_namespace.clone(),
            logs: LogLimits { tail_lines: self.tail, limit_bytes: self.limit_bytes },
            backups_timeout: Duration::from_secs(self.backups_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        PluginCli::command().debug_assert();
    }

    #[test]
    fn report_takes_the_guard_the_file_and_the_log_limits() {
        let cli = PluginCli::try_parse_from([
            "kubectl securityguard",
            "report",
            "sg",
            "-n",
            "prod",
            "-o",
            "/tmp/b.tar.gz",
            "--tail",
            "10",
        ])
        .expect("parses");
        let PluginCommand::Report(args) = cli.command else { panic!("report") };
        let options = args.options();
        assert_eq!(options.target, Target { name: "sg".into(), namespace: Some("prod".into()) });
        assert_eq!(options.output, Some(PathBuf::from("/tmp/b.tar.gz")));
        assert_eq!(options.logs, LogLimits { tail_lines: 10, limit_bytes: report::DEFAULT_LIMIT_BYTES });
        assert_eq!((options.operator_namespace, options.backups_timeout), (None, report::DEFAULT_BACKUPS_TIMEOUT));
    }
}
