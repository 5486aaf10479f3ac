//! `kubectl securityguard`: the kubectl plugin (see `securityguard_operator::plugin`). Install by
//! putting this binary on the PATH; kubectl finds it by its name.

use std::process::ExitCode;

use clap::Parser;
use securityguard_operator::plugin::{self, PluginCli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = PluginCli::parse();
    match plugin::run(cli).await {
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
