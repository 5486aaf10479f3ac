use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use securityguard_operator::backup::summary::Summary;
use securityguard_operator::backup::{create, decrypt, drill, ledger, list, logs, restore};
use securityguard_operator::cli::{BackupsCommand, Cli, Command, FeedsCommand, MonitoringCommand};
use securityguard_operator::{crds_yaml, feeds, monitoring, run, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => print(crds_yaml(), "cannot render the CRDs"),
        Command::Run(args) => logged(args.log_text, "operator stopped", run::run(args.options())).await,
        Command::Backup(args) => {
            let options = args.options();
            let work = summarised(args.job.termination_log.as_deref(), create::run(&options), Summary::of_backup);
            logged(args.job.log_text, "backup failed", work).await
        }
        Command::Backups(args) => match args.command {
            BackupsCommand::List(args) => print(list::run(&args.options()).await, "cannot list the backups"),
            BackupsCommand::ClaimRestore(args) => {
                let options = args.options();
                let key =
                    ledger::record_key(&options.prefix, options.guard.as_deref().unwrap_or(""), &options.request_id);
                let summary = |result: &_, seconds| Summary::of_claim(result, key, seconds);
                let work = summarised(args.termination_log.as_deref(), claim(&options), summary);
                logged(args.log_text, "claiming the restore request failed", work).await
            }
            BackupsCommand::Decrypt(args) => {
                let options = args.options();
                let decrypted = decrypt::run(&options)
                    .await
                    .map(|size| format!("decrypted {size} bytes into {}\n", options.output.display()));
                print(decrypted, "cannot decrypt")
            }
        },
        Command::Monitoring(args) => print(monitoring_yaml(&args.command), "cannot render the monitoring rules"),
        Command::ArchiveLogs(args) => {
            let options = args.options();
            let work = summarised(args.termination_log.as_deref(), logs::run(&options), Summary::of_archive);
            logged(args.log_text, "log archive failed", work).await
        }
        Command::Feeds(args) => match args.command {
            FeedsCommand::Sync(args) => {
                telemetry::init(!args.log_text);
                let clock = Instant::now();
                let (report, result) = feeds::run(&args.options()).await;
                if let Some(path) = &args.termination_log {
                    feeds::Summary::new(report, &result, clock.elapsed().as_secs_f64()).write(path);
                }
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => {
                        tracing::error!(%error, "threat feed sync failed");
                        ExitCode::FAILURE
                    }
                }
            }
        },
        Command::Restore(args) if args.verify_only => {
            let options = args.options();
            let work = drill::run(&options, args.targets());
            let work = summarised(args.job.termination_log.as_deref(), work, Summary::of_drill);
            logged(args.job.log_text, "restore drill failed", work).await
        }
        Command::Restore(args) => {
            let options = args.options();
            let work = summarised(args.job.termination_log.as_deref(), restore::run(&options), Summary::of_restore);
            logged(args.job.log_text, "restore failed", work).await
        }
    }
}

/// Claims a restore request and logs the verdict.
async fn claim(options: &ledger::ClaimOptions) -> Result<ledger::Claim, ledger::Error> {
    let claim = ledger::claim(options, jiff::Timestamp::now()).await?;
    let record = &claim.record;
    tracing::info!(
        request = %record.request_id,
        verdict = ?claim.verdict,
        claimed_by = %record.claimed_by,
        claimed_at = %record.claimed_at,
        restored = record.restored_key.as_deref().unwrap_or("-"),
        "restore request judged"
    );
    Ok(claim)
}

/// Prints what a command rendered; or says on stderr what it `cannot` do, and exits 1.
fn print(rendered: Result<String, impl Display>, cannot: &str) -> ExitCode {
    match rendered {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {cannot}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` with logs on stderr (JSON lines unless `log_text`); a failure is logged as
/// `failed` with its error, and exits 1.
async fn logged<T, E: Display>(log_text: bool, failed: &str, work: impl Future<Output = Result<T, E>>) -> ExitCode {
    telemetry::init(!log_text);
    match work.await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "{failed}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work`, then writes its summary to `termination_log` (in a Job: the container's
/// termination message, where the controller reads the outcome).
async fn summarised<T, E>(
    termination_log: Option<&Path>,
    work: impl Future<Output = Result<T, E>>,
    summary: impl FnOnce(&Result<T, E>, f64) -> Summary,
) -> Result<T, E> {
    let clock = Instant::now();
    let result = work.await;
    if let Some(path) = termination_log {
        summary(&result, clock.elapsed().as_secs_f64()).write(path);
    }
    result
}

/// What `monitoring ...` prints.
fn monitoring_yaml(command: &MonitoringCommand) -> Result<String, serde_saphyr::SerializeError> {
    match command {
        MonitoringCommand::Rules { namespace, name } => monitoring::guard_rules_yaml(namespace, name),
        MonitoringCommand::OperatorRules { job } => monitoring::operator_rules_yaml(job),
        MonitoringCommand::OperatorManifests => monitoring::operator_manifests_yaml(),
    }
}
