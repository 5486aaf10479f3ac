use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use securityguard_operator::backup::summary::Summary;
use securityguard_operator::backup::{create, decrypt, drill, ledger, list, logs, pitr, restore};
use securityguard_operator::cli::{
    BackupsCommand, Cli, Command, FeedsCommand, ListOutput, MonitoringCommand, RestoreArgs, WalCommand, WindowArgs,
};
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
            BackupsCommand::List(args) => print(listing(&args).await, "cannot list the backups"),
            BackupsCommand::ClaimRestore(args) => {
                let options = args.options();
                let key =
                    ledger::record_key(&options.prefix, options.guard.as_deref().unwrap_or(""), &options.request_id);
                let summary = |result: &_, seconds| Summary::of_claim(result, key, seconds);
                let work = summarised(args.termination_log.as_deref(), claim(&options, args.point_in_time), summary);
                logged(args.log_text, "claiming the restore request failed", work).await
            }
            BackupsCommand::Window(args) => print(window(&args).await, "cannot read the WAL archive"),
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
        Command::Restore(args) if args.roll_back_point_in_time => {
            let request = args.request_id.clone().unwrap_or_default();
            let work = pitr::recover::roll_back(&args.data_dir, &request);
            let work = summarised(args.job.termination_log.as_deref(), work, Summary::of_point_in_time_rollback);
            logged(args.job.log_text, "rolling back the point-in-time restore failed", work).await
        }
        Command::Restore(args) if args.point_in_time.is_some() => point_in_time(&args).await,
        Command::Wal(args) => match args.command {
            WalCommand::Archive(args) => {
                let work = async { pitr::archive::run(args.options()?).await.map_err(|e| e.to_string()) };
                logged(args.job.log_text, "the WAL archiver stopped", work).await
            }
            WalCommand::Fetch(args) => fetch(&args).await,
        },
        Command::InstallSelf { dest } => print(install_self(&dest), "cannot copy this program"),
        Command::Restore(args) => {
            let options = args.options();
            let work = summarised(args.job.termination_log.as_deref(), restore::run(&options), Summary::of_restore);
            logged(args.job.log_text, "restore failed", work).await
        }
    }
}

/// Claims a restore request and logs the verdict; a point-in-time target outside the window is
/// refused first, and nothing is recorded.
async fn claim(
    options: &ledger::ClaimOptions,
    point_in_time: Option<jiff::Timestamp>,
) -> Result<ledger::Claim, ledger::Error> {
    if let Some(target) = point_in_time {
        let s3 = securityguard_operator::backup::store::S3Store::connect(&options.s3).await;
        let folder = pitr::folder(&options.prefix, options.guard.as_deref().unwrap_or_default());
        let loaded = pitr::window::load(&s3, &folder).await.map_err(|e| ledger::Error::Refused(e.to_string()))?;
        if pitr::window::choose(&loaded.ranges, target).is_none() {
            return Err(ledger::Error::Refused(format!(
                "{target} is outside the point-in-time window ({}); nothing was changed",
                loaded.window.describe()
            )));
        }
    }
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

/// `backups list`; the table also says the point-in-time window when the guard's WAL is archived
/// (the JSON stays an array of backups: `backups window -o json` has the window).
async fn listing(args: &securityguard_operator::cli::ListArgs) -> Result<String, String> {
    let mut text = list::run(&args.options()).await.map_err(|e| e.to_string())?;
    if let (ListOutput::Table, Some(bucket), Some(guard)) = (args.output.output, &args.store.bucket, &args.s3.guard) {
        let s3 = securityguard_operator::backup::store::S3Store::connect(&args.s3.options(bucket)).await;
        if let Some(window) = pitr::window::report(&s3, &pitr::folder(&args.s3.prefix, guard)).await {
            text.push_str(&format!("\nPoint-in-time recovery: {}\n", window.describe_line()));
        }
    }
    Ok(text)
}

/// `backups window`: the window as JSON or a line of text.
async fn window(args: &WindowArgs) -> Result<String, String> {
    let guard = args.s3.guard.clone().ok_or("--guard <namespace>/<name> is required")?;
    let s3 = securityguard_operator::backup::store::S3Store::connect(&args.s3.options(&args.bucket)).await;
    let loaded = pitr::window::load(&s3, &pitr::folder(&args.s3.prefix, &guard)).await.map_err(|e| e.to_string())?;
    Ok(match args.output.output {
        ListOutput::Json => format!("{}\n", serde_json::to_string_pretty(&loaded.window).map_err(|e| e.to_string())?),
        ListOutput::Table => pitr::window::render(&loaded),
    })
}

/// A point-in-time restore, summarised for the controller.
async fn point_in_time(args: &RestoreArgs) -> ExitCode {
    let work = async {
        let target = args.point_in_time.ok_or_else(|| pitr::recover::Error::Copy {
            step: "reading the arguments",
            detail: "no --point-in-time".into(),
        })?;
        let options = args
            .point_in_time(target)
            .map_err(|detail| pitr::recover::Error::Copy { step: "reading the arguments", detail })?;
        pitr::recover::run(&options).await
    };
    let work = summarised(args.job.termination_log.as_deref(), work, Summary::of_point_in_time);
    logged(args.job.log_text, "point-in-time restore failed", work).await
}

/// `wal fetch`: exit 0 with the file written, 1 when the archive lacks it (quietly: PostgreSQL
/// asks for files that may not exist), 2 on any other failure.
async fn fetch(args: &securityguard_operator::cli::WalFetchArgs) -> ExitCode {
    let Some(guard) = args.s3.guard.clone() else {
        eprintln!("error: --guard <namespace>/<name> is required");
        return ExitCode::from(2);
    };
    let keyring = match &args.encryption.encryption_key_file {
        Some(path) => match securityguard_operator::backup::envelope::Keyring::read(path).await {
            Ok(keys) => Some(keys),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let s3 = securityguard_operator::backup::store::S3Store::connect(&args.s3.options(&args.bucket)).await;
    let folder = pitr::folder(&args.s3.prefix, &guard);
    match pitr::fetch::fetch(&s3, &folder, &args.name, &args.dest, keyring.as_ref()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(pitr::fetch::Error::Absent(_)) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: wal fetch {}: {error}", args.name);
            ExitCode::from(2)
        }
    }
}

/// Copies this program to `dest`, executable.
fn install_self(dest: &Path) -> Result<String, std::io::Error> {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe()?;
    std::fs::copy(&exe, dest)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))?;
    Ok(format!("copied {} to {}\n", exe.display(), dest.display()))
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
