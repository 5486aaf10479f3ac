//! The PostgreSQL pool and the embedded migrations.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

/// The schema, embedded in the binary. `Migrator::run` holds a PostgreSQL advisory lock while it
/// applies migrations, so replicas starting at once apply each migration exactly once.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A lazily connecting pool: the service starts (unready) even while PostgreSQL is unreachable.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        // No `SELECT 1`-style ping before each use: it doubled the round trips of the scan
        // writer's batches and the pattern version checks. A connection that went bad fails
        // its query instead, which every caller already handles (the writer retries, the
        // version check keeps the last snapshot, readiness reports it).
        .test_before_acquire(false)
        .connect_lazy(url)
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// `SELECT 1`, for health checks.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// The newest migration applied to this database.
pub async fn schema_version(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await
}
