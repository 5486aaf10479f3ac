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
            securityguard_operator::telemetry::init(!args.job.log_text);
            let clock = std::time::Instant::now();
            let result = backup::create::run(&args).await;
            if let Some(path) = &args.job.termination_log {
                backup::summary::Summary::of_backup(&result, clock.elapsed().as_secs_f64()).write(path);
            }
            match result {
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
        Command::Monitoring(args) => match securityguard_operator::monitoring::render(&args.command) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot render the monitoring rules: {error}");
                ExitCode::FAILURE
            }
        },
        Command::ArchiveLogs(args) => {
            securityguard_operator::telemetry::init(!args.log_text);
            let clock = std::time::Instant::now();
            let result = backup::logs::run(&args).await;
            if let Some(path) = &args.termination_log {
                backup::summary::Summary::of_archive(&result, clock.elapsed().as_secs_f64()).write(path);
            }
            match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "log archive failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Restore(args) => {
            securityguard_operator::telemetry::init(!args.job.log_text);
            let clock = std::time::Instant::now();
            let result = backup::restore::run(&args).await;
            if let Some(path) = &args.job.termination_log {
                let seconds = clock.elapsed().as_secs_f64();
                backup::summary::Summary::of_restore(&result, args.verify_only, seconds).write(path);
            }
            match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "restore failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
