use std::process::ExitCode;

use clap::Parser;
use securityguard_operator::backup;
use securityguard_operator::cli::{BackupsCommand, Cli, Command};

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
        Command::Backup(args) => {
            securityguard_operator::telemetry::init(!args.log_text);
            match backup::create::run(&args).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "backup failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Backups(args) => match args.command {
            BackupsCommand::List(args) => match backup::list::run(&args).await {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: cannot list the backups: {error}");
                    ExitCode::FAILURE
                }
            },
        },
        Command::Restore(args) => {
            securityguard_operator::telemetry::init(!args.log_text);
            match backup::restore::run(&args).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "restore failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
