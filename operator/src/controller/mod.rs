//! The SecurityGuard controller. A reconcile is a one-way pipeline, one module per step:
//!
//! 1. [`read`]: the referenced Secrets (dereference), then what the backups, a restore in
//!    progress and failing pods depend on (observe), from the caches and, only when they cannot
//!    tell, from the API server;
//! 2. [`decide`]: validate the spec (pure, a [`vocabulary::ValidatedGuard`] never changed
//!    afterwards), advance a restore and settle how the guard runs now ([`vocabulary::Directives`]);
//! 3. [`build`]: every desired child, as typed objects (pure);
//! 4. [`write`]: server-side apply in a stated order, orphans deleted, then Events, gauges
//!    and the status;
//! 5. [`status`]: conditions from what the API server accepted (pure).
//!
//! Imports run one way: read → decide → build → write → status; every step may import
//! [`vocabulary`], and none imports this module. [`runtime`] holds the watches; `test_api`
//! (tests only) is the mocked API server and the filled caches that the steps' tests share.

pub mod build;
pub mod decide;
pub mod read;
pub mod runtime;
pub mod status;
#[cfg(test)]
pub(crate) mod test_api;
pub mod vocabulary;
pub mod write;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};

use self::build::{Applied, ChildResources, Prepared};
use self::read::Stores;
use self::read::monitoring_apis::Discovery;
use self::read::pods;
use self::vocabulary::ValidatedGuard;
use self::vocabulary::{FIELD_MANAGER, MonitoringApis, Platform, describe};
use self::write::apply::Applier;
use self::write::events::Events;
use self::write::ledger::Ledger;
use self::write::recorder::Recorder;
use crate::crd::{CONDITION_DEGRADED, CONDITION_READY, SecurityGuard};
use crate::metrics::Metrics;

/// What the controller watches and how fast it works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between reconciles of an unchanged SecurityGuard.
    pub resync: Duration,
    /// SecurityGuards reconciled at once.
    pub concurrency: u16,
    /// Only this namespace, or every namespace.
    pub namespace: Option<String>,
    /// Image of the backup and restore pods.
    pub job_image: String,
}

/// Shared state of every reconcile.
pub struct Context {
    /// Kubernetes client (requests counted by the metrics layer).
    pub client: Client,
    /// Caches of the children.
    pub stores: Stores,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Time between reconciles of an unchanged SecurityGuard.
    pub resync: Duration,
    /// Image of the backup and restore pods.
    pub job_image: String,
    /// Whether prometheus-operator's kinds are served.
    pub discovery: Discovery,
    /// What was last written to each child.
    pub ledger: Arc<Ledger>,
    /// The referenced Secrets as last read.
    pub secret_reads: read::dereference::SecretReads,
}

/// A reconcile that failed, naming the SecurityGuard and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a referenced object failed.
    #[error("SecurityGuard {guard}: {source}")]
    Dereference {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: read::dereference::Error,
    },
    /// Observing the backup Jobs or the API pods failed.
    #[error("SecurityGuard {guard}: {source}")]
    Observe {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: read::observe::Error,
    },
    /// Writing a child failed.
    #[error("SecurityGuard {guard}: {source}")]
    Apply {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: write::Error,
    },
    /// Writing the status failed.
    #[error("SecurityGuard {guard}: writing status: {}", describe(.source))]
    Status {
        /// namespace/name of the SecurityGuard.
        guard: String,
        /// What failed.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// What failed, without the SecurityGuard's name (for its own status and Events).
    pub fn step_message(&self) -> String {
        match self {
            Self::Dereference { source, .. } => source.to_string(),
            Self::Observe { source, .. } => source.to_string(),
            Self::Apply { source, .. } => source.to_string(),
            Self::Status { source, .. } => format!("writing status: {}", describe(source)),
        }
    }

    /// Short category: the metric label and the Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Dereference { .. } | Self::Observe { .. } => "ReadFailed",
            Self::Apply { .. } => "ApplyFailed",
            Self::Status { .. } => "StatusFailed",
        }
    }
}

/// Reconciles one SecurityGuard.
pub async fn reconcile(guard: Arc<SecurityGuard>, ctx: Arc<Context>) -> Result<Action, Error> {
    let mut timer = ctx.metrics.reconcile_timer();
    let reference = guard.object_ref(&());
    let events = Events { recorder: &ctx.recorder, reference: &reference };
    let result = reconcile_steps(&guard, &ctx, &events).await;
    match &result {
        Ok(_) => timer.set_result("success"),
        Err(error) => {
            timer.set_result(error.category());
            tracing::warn!(%error, "reconcile failed");
            report_degraded(&ctx, &events, &guard, error.category(), &error.step_message()).await;
        }
    }
    result
}

/// The pipeline: read → decide → build → write → status.
async fn reconcile_steps(guard: &SecurityGuard, ctx: &Context, events: &Events<'_>) -> Result<Action, Error> {
    let key = format!("{}/{}", guard.namespace().unwrap_or_default(), guard.name_any());
    if guard.spec.paused {
        return pause(ctx, events, guard).await.map_err(|source| Error::Status { guard: key, source });
    }
    let refs = read::dereference::dereference(&ctx.client, guard, &ctx.stores.secrets, &ctx.secret_reads)
        .await
        .map_err(|source| Error::Dereference { guard: key.clone(), source })?;
    let validated = match decide::validate::validate(guard, &refs) {
        Ok(validated) => validated,
        Err(invalid) => {
            // Nothing can work until the spec or a Secret changes; both are watched.
            report_degraded(ctx, events, guard, "InvalidReference", &invalid.to_string()).await;
            return Ok(Action::await_change());
        }
    };
    let now = Timestamp::now();
    let observed = read::observe::observe(&ctx.client, &ctx.stores, guard, &validated, now)
        .await
        .map_err(|source| Error::Observe { guard: key.clone(), source })?;
    let platform = platform(ctx, &validated).await;
    let decision = decide::decide(guard, &observed);
    let prepared = build::build(&validated, &decision.directives, &platform);
    let applied =
        apply(ctx, events, &validated, prepared).await.map_err(|source| Error::Apply { guard: key.clone(), source })?;
    let inputs = status::Inputs {
        guard,
        validated: &validated,
        observed: &observed,
        decision: &decision,
        applied: &applied,
        monitoring_apis: platform.monitoring_apis,
        now,
    };
    report(ctx, events, &inputs).await.map_err(|source| Error::Status { guard: key, source })?;
    Ok(Action::requeue(decision.requeue_after(observed.recheck_pods, ctx.resync)))
}

/// A paused SecurityGuard: only its status says so.
async fn pause(ctx: &Context, events: &Events<'_>, guard: &SecurityGuard) -> Result<Action, kube::Error> {
    if write::status::write(&ctx.client, guard, status::paused(guard, Timestamp::now())).await? {
        events.publish(EventType::Normal, "Paused", "Reconcile", "Reconciliation paused by spec.paused".into()).await;
    }
    Ok(Action::await_change())
}

/// What the platform offers this reconcile: the operator's image for the Job pods, and which
/// prometheus-operator kinds are served (looked up only when the guard asks for monitoring).
async fn platform(ctx: &Context, validated: &ValidatedGuard) -> Platform {
    let monitoring_apis =
        if validated.spec.monitoring.enabled { ctx.discovery.observe().await } else { MonitoringApis::default() };
    Platform { job_image: ctx.job_image.clone(), monitoring_apis }
}

/// Applies the children and publishes what was written, whether the apply succeeded or not.
async fn apply(
    ctx: &Context,
    events: &Events<'_>,
    validated: &ValidatedGuard,
    prepared: ChildResources<Prepared>,
) -> Result<ChildResources<Applied>, write::Error> {
    let applier = Applier::new(&ctx.client, &ctx.stores, &ctx.ledger, &validated.owner.uid);
    let applied = applier.apply(validated, prepared).await;
    events.changes(&applier.changes()).await;
    applied
}

/// Publishes what the reconcile observed and decided, exports the gauges and writes the status;
/// then a Warning per pod failure the status reports for the first time, and `Ready` when the
/// SecurityGuard became ready.
async fn report(ctx: &Context, events: &Events<'_>, inputs: &status::Inputs<'_>) -> Result<(), kube::Error> {
    let guard = inputs.guard;
    events.finished_jobs(&inputs.observed.finished).await;
    events.feed_syncs(&inputs.observed.feed_syncs).await;
    write::metrics::count_feed_failures(&ctx.metrics, inputs.validated, &inputs.observed.feed_syncs);
    events.restore_phases(&inputs.decision.restore).await;
    let previous = guard.status.as_ref();
    let failing: Vec<String> = pods::newly_failing(
        previous.and_then(|s| s.condition(CONDITION_DEGRADED)),
        &status::shown_pod_problems(inputs),
    )
    .iter()
    .map(ToString::to_string)
    .collect();
    let new_status = status::from_applied(inputs);
    write::metrics::export(&ctx.metrics, inputs.validated, &new_status, inputs.now);
    let is_ready =
        |s: &crate::crd::SecurityGuardStatus| s.condition(CONDITION_READY).is_some_and(|c| c.status == "True");
    let became_ready = is_ready(&new_status) && !previous.is_some_and(is_ready);
    write::status::write(&ctx.client, guard, new_status).await?;
    for note in failing {
        events.publish(EventType::Warning, pods::REASON, "Reconcile", note).await;
    }
    if became_ready {
        events.publish(EventType::Normal, "Ready", "Reconcile", "Every object is available".into()).await;
    }
    Ok(())
}

/// Sets Degraded with the message and publishes a Warning Event when the message is new.
async fn report_degraded(
    ctx: &Context,
    events: &Events<'_>,
    guard: &SecurityGuard,
    reason: &'static str,
    message: &str,
) {
    let already = guard
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_DEGRADED))
        .is_some_and(|c| c.status == "True" && c.message == message);
    if !already {
        events.publish(EventType::Warning, reason, "Reconcile", message.to_owned()).await;
    }
    let status = status::degraded(guard, reason, message, Timestamp::now());
    if let Err(error) = write::status::write(&ctx.client, guard, status).await {
        tracing::warn!(%error, "could not write the Degraded status");
    }
}

/// How often the Secrets read and since deleted are forgotten.
const SECRET_SWEEP: Duration = Duration::from_secs(600);

/// Retries a failed reconcile after a pause (never at once: no hot loop).
pub fn error_policy(_guard: Arc<SecurityGuard>, _error: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(10))
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let runtime::Wired { controller, stores, discovery, ledger } =
        runtime::wire(&client, settings.namespace.as_deref(), settings.concurrency, metrics.clone());
    let recorder = Recorder::new(client.clone(), FIELD_MANAGER);
    let ctx = Arc::new(Context {
        client,
        stores,
        recorder,
        metrics,
        resync: settings.resync,
        job_image: settings.job_image,
        discovery,
        ledger,
        secret_reads: read::dereference::SecretReads::default(),
    });
    let sweeper = ctx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SECRET_SWEEP);
        loop {
            every.tick().await;
            sweeper.secret_reads.forget_deleted(&sweeper.stores.secrets);
        }
    });
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((guard, _)) => tracing::debug!(guard = %guard, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
}
