//! Building the router and running the server.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::error::{ApiError, error_response};
use crate::scan::Detection;
use crate::state::AppState;
use crate::store;
use crate::{ratelimit, routes};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application: API, health and metrics.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(routes::auth::router())
        .merge(routes::scan::router())
        .merge(routes::explain::router())
        .merge(routes::patterns::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), ratelimit::limits))
        // The same limits, with the scan cache's GET in their Redis round trip.
        .merge(routes::scan::transactions::router().route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limits_with::<routes::scan::transactions::CacheLookup>,
        )))
        // Machine clients (the operator's feed sync): their own token, no wallet limits, and
        // their own body limit (inside the global one, so it wins).
        .merge(routes::feeds::router(state.config.feed_max_body_bytes));

    Router::new()
        .merge(routes::health::router())
        .merge(routes::metrics::router())
        .nest("/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        // While draining, every answer closes its connection: a client's pooled keep-alive
        // connection to this replica is not reused for a request that could meet the listener
        // closing; its next request opens a connection the Service routes to a ready replica.
        .layer(SetResponseHeaderLayer::overriding(header::CONNECTION, {
            let state = state.clone();
            move |_: &Response| state.is_shutting_down().then_some(HeaderValue::from_static("close"))
        }))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            // The span gives every line logged during a request its method, path and id; the
            // access line itself is written by `record_metrics` (crate::logging::access).
            TraceLayer::new_for_http()
                .on_response(())
                .on_failure(DefaultOnFailure::new().level(Level::WARN))
                .make_span_with(|req: &Request| {
                    let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %request_id,
                    )
                }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(CatchPanicLayer::custom(|_panic| {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed for this route")
}

/// Bounds every request, including the time its body takes to arrive.
async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = Duration::from_secs(state.config.request_timeout_seconds);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            &format!("the request took longer than {} s", limit.as_secs()),
        ),
    }
}

/// Request metrics and the access log.
async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let access = crate::logging::access_enabled().then(|| {
        let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
        (req.uri().path().to_owned(), request_id.to_owned())
    });
    state.metrics.http_in_flight.inc();
    // Decremented on drop too, so a cancelled request is not counted forever.
    let _in_flight = InFlight(&state);
    let response = next.run(req).await;
    let (status, elapsed) = (response.status().as_u16(), started.elapsed());
    state.metrics.observe_http(&route, &method, status, elapsed);
    if let Some((path, request_id)) = access {
        crate::logging::access(&method, &path, &request_id, status, elapsed);
    }
    response
}

struct InFlight<'a>(&'a AppState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.http_in_flight.dec();
    }
}

/// Start-up failures, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid DATABASE_URL: {0}")]
    DatabaseUrl(#[source] sqlx::Error),
    #[error("invalid REDIS_URL: {0}")]
    RedisUrl(#[source] redis::RedisError),
    #[error("applying database migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("PostgreSQL did not become reachable within {0:?}")]
    DatabaseUnreachable(Duration),
    #[error("the compiled-in detection data is invalid: {0}")]
    Detection(String),
    #[error("cannot listen on LISTEN_ADDR {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Validates the configuration, creates the (lazy) PostgreSQL pool and Redis connection and
    /// binds the listener. Touches neither PostgreSQL nor Redis, so that the process serves
    /// `/health/live` (and an unready `/health/ready`) while they are still coming up.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        let db = store::db::pool(&config.database_url, config.database_max_connections)
            .map_err(StartupError::DatabaseUrl)?;
        let redis = store::redis::connect(&config.redis_url).map_err(StartupError::RedisUrl)?;
        let addr = config.listen_addr;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
        let detection = Detection::compiled_in().map_err(StartupError::Detection)?;
        let state = AppState::new(config, db, redis, detection);
        Ok(Self { listener, state })
    }

    /// Applies the embedded migrations, retrying while PostgreSQL is unreachable, for at most
    /// `wait` (forever with `None`). Other migration errors are returned at once.
    pub async fn migrate(&self, wait: Option<Duration>) -> Result<(), StartupError> {
        migrate_until_done(&self.state, wait).await
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; then turns unready, waits SHUTDOWN_DELAY_SECONDS so
    /// load balancers stop routing here, stops accepting and drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let state = self.state.clone();
        let scans = state.scans.clone();
        crate::auth::refresh::spawn_cleanup(state.db.clone());
        // Migrations run in the background when not applied yet (unready until done); a
        // migration that fails for another reason than an unreachable database stops the server.
        let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel::<String>();
        if !state.is_migrated() {
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = migrate_until_done(&state, None).await {
                    tracing::error!(error = %e, "stopping: migrations failed");
                    let _ = fatal_tx.send(e.to_string());
                }
            });
        }
        let fatal = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let fatal_seen = fatal.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                Ok(message) = fatal_rx => {
                    *fatal_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                }
            }
        };
        let delay = Duration::from_secs(state.config.shutdown_delay_seconds);
        let router = app(self.state);
        tracing::info!(addr = %self.listener.local_addr()?, "listening");
        // Responses leave at once (no Nagle delay behind an unacknowledged segment).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                state.begin_shutdown();
                tracing::info!(delay_secs = delay.as_secs(), "shutting down: now unready");
                tokio::time::sleep(delay).await;
                tracing::info!("closing listener and draining in-flight requests");
            })
            .await;
        // Scans answered before the drain ended are written before the process exits.
        scans.flush().await;
        served?;
        match fatal.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(message) => Err(std::io::Error::other(message)),
            None => Ok(()),
        }
    }
}

async fn migrate_until_done(state: &AppState, wait: Option<Duration>) -> Result<(), StartupError> {
    let started = Instant::now();
    loop {
        match store::db::migrate(&state.db).await {
            Ok(()) => {
                state.set_migrated();
                tracing::info!("database migrations applied");
                return Ok(());
            }
            Err(sqlx::migrate::MigrateError::Execute(e)) if is_connect_error(&e) => {
                if let Some(wait) = wait
                    && started.elapsed() >= wait
                {
                    return Err(StartupError::DatabaseUnreachable(wait));
                }
                tracing::warn!(error = %e, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(StartupError::Migrate(e)),
        }
    }
}

fn is_connect_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
