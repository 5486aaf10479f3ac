//! Command line of `kubectl securityguard` (see [`crate::plugin`]): clap only, each command's
//! arguments become the plain options of the plugin function that carries it out.

use clap::{Args, Parser, Subcommand};

use super::output::OutputArgs;
use crate::backup::catalog::Source;
use crate::plugin::{RestoreRequest, Target};

/// `kubectl securityguard`: backups and restores of a SecurityGuard.
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
    /// List the backups of a SecurityGuard, newest first, with their state.
    Backups(GuardBackupsArgs),
    /// Ask the operator to restore a SecurityGuard's database from a backup.
    Restore(RequestRestoreArgs),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        PluginCli::command().debug_assert();
    }
}
