//! `securityguard-operator run`: the process around the controller.
//!
//! Serves /metrics, /healthz and /readyz at once; reconciles only while it holds the leader
//! Lease; on SIGTERM or SIGINT it finishes the reconciles under way, releases the Lease (so
//! another replica takes over at once) and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::client::ClientBuilder;
use kube::{Client, Config};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::controller;
use crate::http::{self, Health};
use crate::metrics::{CountRequestsLayer, Metrics};

/// How long reconciles under way may take to finish at shutdown (the manager's pods have 30 s).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How the operator runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    pub http_addr: std::net::SocketAddr,
    /// Time between two reconciles of an unchanged SecurityGuard (drift detection).
    pub resync: std::time::Duration,
    /// Name of the coordination.k8s.io Lease used for leader election.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Identity of this process in the Lease (default: the host name and process id).
    pub identity: Option<String>,
    /// Seconds a Lease stays valid without renewal.
    pub lease_seconds: u64,
    /// Watch only this namespace (default: every namespace).
    pub namespace: Option<String>,
    /// SecurityGuards reconciled at the same time.
    pub concurrency: u16,
    /// Image of the backup and restore pods.
    pub job_image: String,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kubeconfig or in-cluster configuration.
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(#[from] kube::config::InferConfigError),
    /// The client could not be built.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// Leader election could not start.
    #[error("leader election on Lease {namespace}/{name}: {source}")]
    Lease {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// What failed.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// The HTTP endpoints could not be served.
    #[error("serving HTTP on {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Leadership was lost while reconciling; the process stops so that only one replica acts.
    #[error("lost the leader Lease; stopping so that only the new leader reconciles")]
    LostLease,
}

/// Builds a client whose requests are counted by verb and resource.
pub async fn client(metrics: &Arc<Metrics>) -> Result<Client, Error> {
    let config = Config::infer().await?;
    let builder = ClientBuilder::try_from(config).map_err(Error::Client)?;
    Ok(builder.with_layer(&CountRequestsLayer(metrics.clone())).build())
}

/// Runs the operator until a termination signal.
pub async fn run(options: Options) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(forward_signals(stop_tx));

    let health = Health { metrics: metrics.clone(), ready: ready.clone() };
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(http::serve(options.http_addr, health, async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    }));

    let client = client(&metrics).await?;
    let identity = options.identity.clone().unwrap_or_else(default_identity);
    let lease_err =
        |source| Error::Lease { namespace: options.lease_namespace.clone(), name: options.lease_name.clone(), source };
    let manager = LeaseManagerBuilder::new(client.clone(), &options.lease_name)
        .with_namespace(&options.lease_namespace)
        .with_identity(&identity)
        .with_duration(options.lease_seconds)
        .with_grace((options.lease_seconds / 3).max(1))
        .with_field_manager(format!("securityguard-operator-{identity}"))
        .build()
        .await
        .map_err(lease_err)?;
    let (mut leader, lease_task) = manager.watch().await;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%identity, lease = %options.lease_name, "waiting to become the leader");

    let mut stop = stop_rx.clone();
    let elected = tokio::select! {
        _ = stop.wait_for(|s| *s) => Ok(false),
        became = leader.wait_for(|is_leader| *is_leader) => became.map(|_| true).map_err(|_| Error::LostLease),
    };
    let outcome = match elected {
        Ok(true) => lead(&options, client, metrics.clone(), stop_rx.clone(), &mut leader).await,
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };

    ready.store(false, Ordering::Relaxed);
    metrics.leader.set(0);
    // Closing the channel makes the lease task release the Lease.
    drop(leader);
    match lease_task.await {
        Ok(Ok(_)) => tracing::info!("released the leader Lease"),
        Ok(Err(error)) => tracing::warn!(%error, "could not release the leader Lease"),
        Err(error) => tracing::warn!(%error, "lease task failed"),
    }
    if let Ok(Err(source)) = http.await {
        return Err(Error::Http { addr: options.http_addr, source });
    }
    outcome
}

/// Reconciles while the Lease is held; stops on a signal or when the Lease is lost.
async fn lead(
    options: &Options,
    client: Client,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    leader: &mut watch::Receiver<bool>,
) -> Result<(), Error> {
    tracing::info!(namespace = options.namespace.as_deref().unwrap_or("*"), "became the leader: reconciling");
    metrics.leader.set(1);
    let (lost_tx, lost_rx) = watch::channel(false);
    let mut controller_stop = stop.clone();
    let mut controller_lost = lost_rx;
    let settings = controller::Settings {
        resync: options.resync,
        concurrency: options.concurrency,
        namespace: options.namespace.clone(),
        job_image: options.job_image.clone(),
    };
    let controller = controller::run(client, metrics, settings, async move {
        tokio::select! {
            _ = controller_stop.wait_for(|s| *s) => {}
            _ = controller_lost.wait_for(|l| *l) => {}
        }
    });
    tokio::pin!(controller);
    let (finished, lost) = tokio::select! {
        () = &mut controller => (true, false),
        _ = stop.wait_for(|s| *s) => (false, false),
        _ = leader.wait_for(|is_leader| !*is_leader) => (false, true),
    };
    if lost {
        tracing::error!("lost the leader Lease: stopping reconciles");
        let _ = lost_tx.send(true);
    }
    if !finished {
        // Let the reconciles under way finish, within a bound: a controller stopped before its
        // caches filled waits for them forever (kube-runtime's applier waits on its store).
        if tokio::time::timeout(SHUTDOWN_GRACE, controller).await.is_err() {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles did not finish in time; stopping anyway");
        }
    }
    if lost { Err(Error::LostLease) } else { Ok(()) }
}

async fn forward_signals(stop: watch::Sender<bool>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("termination signal: shutting down");
    let _ = stop.send(true);
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "securityguard-operator".to_owned());
    format!("{host}-{}", std::process::id())
}
