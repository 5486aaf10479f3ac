use std::process::ExitCode;

use clap::Parser;
use securityguard_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match securityguard_operator::crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot render the CRDs: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            securityguard_operator::telemetry::init(!args.log_text);
            match securityguard_operator::run::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "operator stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
