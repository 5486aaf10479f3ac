//! State shared by every handler.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::aio::ConnectionManager;
use sqlx::PgPool;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::patterns::PatternCache;

/// Cheap to clone (one `Arc`); handlers reach the fields through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub metrics: Arc<Metrics>,
    pub patterns: Arc<PatternCache>,
    /// HTTP client for the optional explanation service.
    pub http: reqwest::Client,
    /// Scan records: batched background writes and reads.
    pub scans: crate::store::scans::ScanStore,
    /// Access tokens already verified (see [`crate::auth::jwt::VerifiedTokens`]).
    pub tokens: crate::auth::jwt::VerifiedTokens,
    shutting_down: Arc<AtomicBool>,
    migrated: AtomicBool,
}

impl AppState {
    pub fn new(config: Config, db: PgPool, redis: ConnectionManager) -> Self {
        let scans = crate::store::scans::ScanStore::start(db.clone());
        Self(Arc::new(Shared {
            scans,
            config: Arc::new(config),
            db,
            redis,
            metrics: Arc::new(Metrics::new()),
            patterns: Arc::new(PatternCache::default()),
            http: crate::routes::explain::client(),
            tokens: Default::default(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            migrated: AtomicBool::new(false),
        }))
    }

    /// A Redis key under this deployment's prefix.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.config.redis_key_prefix.clone();
        key.push_str(&parts.join(":"));
        key
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

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
