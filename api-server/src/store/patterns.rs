//! The pattern library in PostgreSQL, and a per-replica snapshot of its current version.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::scan::patterns::PatternSet;

/// How long a replica serves a snapshot before checking the version again; changes made through
/// this replica are seen at once.
const RECHECK: Duration = Duration::from_secs(1);

pub async fn current_version(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM pattern_set").fetch_one(db).await
}

pub async fn load(db: &PgPool) -> Result<PatternSet, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM pattern_set").fetch_one(&mut *tx).await?;
    let rows: Vec<(String, String, serde_json::Value)> =
        sqlx::query_as("SELECT kind, value, data FROM patterns ORDER BY kind, value").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let mut set = PatternSet { version, ..PatternSet::default() };
    for (kind, value, data) in rows {
        if let Err(e) = set.add(&kind, &value, &data) {
            tracing::warn!(%kind, %value, error = %e, "skipping pattern");
        }
    }
    Ok(set)
}

#[derive(Default)]
pub struct PatternCache {
    snapshot: RwLock<Option<(Arc<PatternSet>, Instant)>>,
}

impl PatternCache {
    /// The current snapshot, reloaded when the version in PostgreSQL moved.
    pub async fn current(&self, db: &PgPool) -> Result<Arc<PatternSet>, sqlx::Error> {
        let cached = self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((set, checked)) = &cached
            && checked.elapsed() < RECHECK
        {
            return Ok(set.clone());
        }
        let version = current_version(db).await?;
        let set = match cached {
            Some((set, _)) if set.version == version => set,
            _ => Arc::new(load(db).await?),
        };
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Some((set.clone(), Instant::now()));
        Ok(set)
    }

    /// Forgets the snapshot (after a change through this replica).
    pub fn invalidate(&self) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
