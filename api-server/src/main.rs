use std::process::ExitCode;

use clap::Parser;
use securityguard_api::config::Config;
use securityguard_api::startup::{Application, shutdown_signal};

/// glibc malloc showed up at the top of the scan benchmark's profile (thread contention).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let _logs = securityguard_api::logging::init();
    tracing::info!(
        environment = config.environment.as_str(),
        listen_addr = %config.listen_addr,
        version = env!("CARGO_PKG_VERSION"),
        "starting securityguard-api"
    );

    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            eprintln!("securityguard-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
