//! State shared by every handler.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

use crate::auth::jwt::VerifiedTokens;
use crate::auth::machine::MachineTokens;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scan::Detection;
use crate::store::patterns::PatternCache;
use crate::store::redis::Keys;
use crate::store::scans::ScanStore;

/// Cheap to clone (one `Arc`); handlers reach the fields through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    /// The Redis keys of this deployment (under REDIS_KEY_PREFIX).
    pub keys: Keys,
    pub metrics: Arc<Metrics>,
    pub patterns: Arc<PatternCache>,
    /// The domain model (and the official domains) of domain scans.
    pub detection: Detection,
    /// HTTP client for the optional explanation service.
    pub http: reqwest::Client,
    /// Scan records: batched background writes and reads.
    pub scans: ScanStore,
    /// Access tokens already verified (see [`VerifiedTokens`]).
    pub tokens: VerifiedTokens,
    /// The machine tokens of the threat-feed sync (FEED_TOKENS_FILE).
    pub machine_tokens: MachineTokens,
    shutting_down: Arc<AtomicBool>,
    migrated: AtomicBool,
}

impl AppState {
    pub fn new(config: Config, db: PgPool, redis: ConnectionManager, detection: Detection) -> Self {
        let scans = ScanStore::start(db.clone());
        let metrics = Metrics::new();
        metrics.model.serving(detection.model.version());
        Self(Arc::new(Shared {
            scans,
            machine_tokens: MachineTokens::new(config.feed_tokens_file.clone()),
            keys: Keys::new(config.redis_key_prefix.clone()),
            config: Arc::new(config),
            db,
            redis,
            metrics: Arc::new(metrics),
            patterns: Arc::new(PatternCache::default()),
            detection,
            http: http_client(),
            tokens: Default::default(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            migrated: AtomicBool::new(false),
        }))
    }

    /// A Redis key under this deployment's prefix.
    pub fn key(&self, parts: &[&str]) -> String {
        self.keys.key(parts)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::SeqCst);
    }

    /// Whether this replica has seen the schema fully migrated.
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// The client of the optional explanation service.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("a client with default TLS settings builds")
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
