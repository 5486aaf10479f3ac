//! Command line: `run` the operator, print the `crd`s.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The SecurityGuard operator.
#[derive(Parser, Debug)]
#[command(name = "securityguard-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller (with leader election).
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
}

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "SG_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Seconds between two reconciles of an unchanged SecurityGuard (drift detection).
    #[arg(long, env = "SG_RESYNC_SECONDS", default_value = "300", value_parser = parse_seconds)]
    pub resync: Duration,

    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "SG_LEASE_NAME", default_value = "securityguard-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (in a cluster: the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "securityguard-system")]
    pub lease_namespace: String,

    /// Identity of this process in the Lease (in a cluster: the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Seconds a Lease stays valid without renewal; a new leader takes over within this time
    /// when the old one dies without releasing it.
    #[arg(long, env = "SG_LEASE_SECONDS", default_value = "15")]
    pub lease_seconds: u64,

    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// SecurityGuards reconciled at the same time.
    #[arg(long, env = "SG_CONCURRENCY", default_value = "8")]
    pub concurrency: u16,

    /// Plain-text logs instead of JSON.
    #[arg(long, env = "SG_LOG_TEXT")]
    pub log_text: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n: u64 = s.parse().map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    if n == 0 {
        return Err("must be at least 1 second".to_owned());
    }
    Ok(Duration::from_secs(n))
}
