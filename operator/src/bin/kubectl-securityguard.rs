//! `kubectl securityguard`: the kubectl plugin (see `securityguard_operator::plugin`). Install by
//! putting this binary on the PATH; kubectl finds it by its name.

use std::process::ExitCode;

use clap::Parser;
use securityguard_operator::cli::plugin::{PluginCli, PluginCommand};
use securityguard_operator::plugin;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match PluginCli::parse().command {
        PluginCommand::Backups(args) => plugin::backups(&args.target.target(), args.output.output.into()).await,
        PluginCommand::Restore(args) => plugin::restore(&args.request()).await,
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
