//! `kubectl securityguard`: the kubectl plugin (see `securityguard_operator::plugin` and
//! `securityguard_operator::report`). Install by putting this binary on the PATH; kubectl finds
//! it by its name.

use std::process::ExitCode;

use clap::Parser;
use securityguard_operator::cli::plugin::{PluginCli, PluginCommand};
use securityguard_operator::{plugin, report};

#[tokio::main]
async fn main() -> ExitCode {
    let result = match PluginCli::parse().command {
        PluginCommand::Backups(args) => {
            plugin::backups(&args.target.target(), args.output.output.into()).await.map_err(|e| e.to_string())
        }
        PluginCommand::Restore(args) => plugin::restore(&args.request()).await.map_err(|e| e.to_string()),
        // Progress on stderr; the archive's path on stdout.
        PluginCommand::Report(args) => report::run(&args.options(), &|step| eprintln!("report: {step}"))
            .await
            .map(|written| written.describe())
            .map_err(|error| error.to_string()),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
