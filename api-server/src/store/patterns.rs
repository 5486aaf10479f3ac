//! The pattern library in PostgreSQL, and a per-replica snapshot of its current version.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

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
    /// The current snapshot, reloaded when the version in PostgreSQL moved; the last snapshot
    /// while PostgreSQL cannot be reached.
    pub async fn current(&self, db: &PgPool) -> Result<Arc<PatternSet>, sqlx::Error> {
        let cached = self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((set, checked)) = &cached
            && checked.elapsed() < RECHECK
        {
            return Ok(set.clone());
        }
        let version = match current_version(db).await {
            Ok(v) => v,
            // PostgreSQL unreachable: keep scanning with the last snapshot this replica has.
            Err(e) => match &cached {
                Some((set, _)) => {
                    // Try again after RECHECK, not on every request.
                    *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Some((set.clone(), Instant::now()));
                    tracing::warn!(error = %e, version = set.version, "pattern version check failed; using the last snapshot");
                    return Ok(set.clone());
                }
                None => return Err(e),
            },
        };
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

/// One library entry as stored.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Pattern {
    pub id: Uuid,
    pub kind: String,
    pub value: String,
    pub data: Value,
    pub note: Option<String>,
    /// `admin`, or `feed:<name>` for an entry a threat feed owns.
    pub source: String,
}

/// The source of the entries admins manage.
pub const ADMIN_SOURCE: &str = "admin";

/// The source of a threat feed's entries.
pub fn feed_source(feed: &str) -> String {
    format!("feed:{feed}")
}

/// A validated entry to write.
#[derive(Clone, Debug)]
pub struct NewPattern {
    pub kind: String,
    pub value: String,
    pub data: Value,
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{kind} {value} already exists")]
    Duplicate { kind: String, value: String },
    #[error("no such pattern")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505")
}

/// Bumps the pattern-set version and records the change, in the caller's transaction.
async fn bump(
    tx: &mut Transaction<'_, Postgres>,
    action: &str,
    kind: &str,
    value: &str,
    actor: &str,
) -> Result<i64, sqlx::Error> {
    let version: i64 =
        sqlx::query_scalar("UPDATE pattern_set SET version = version + 1, updated_at = now() RETURNING version")
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query("INSERT INTO pattern_changes (version, action, kind, value, actor) VALUES ($1, $2, $3, $4, $5)")
        .bind(version)
        .bind(action)
        .bind(kind)
        .bind(value)
        .bind(actor)
        .execute(&mut **tx)
        .await?;
    Ok(version)
}

/// The entries (of one kind and source, or all) and the version they belong to.
pub async fn list(db: &PgPool, kind: Option<&str>, source: Option<&str>) -> Result<(i64, Vec<Pattern>), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM pattern_set").fetch_one(&mut *tx).await?;
    let rows = sqlx::query_as(
        "SELECT id, kind, value, data, note, source FROM patterns
         WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR source = $2) ORDER BY kind, value, source",
    )
    .bind(kind)
    .bind(source)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((version, rows))
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Pattern>, sqlx::Error> {
    sqlx::query_as("SELECT id, kind, value, data, note, source FROM patterns WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Adds an entry; returns it and the new version.
pub async fn create(db: &PgPool, new: NewPattern, actor: &str) -> Result<(Pattern, i64), ChangeError> {
    let mut tx = db.begin().await?;
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO patterns (id, kind, value, data, note) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(&new.kind)
        .bind(&new.value)
        .bind(&new.data)
        .bind(&new.note)
        .execute(&mut *tx)
        .await
        .map_err(|e| duplicate_or(e, &new.kind, &new.value))?;
    let version = bump(&mut tx, "create", &new.kind, &new.value, actor).await?;
    tx.commit().await?;
    let NewPattern { kind, value, data, note } = new;
    Ok((Pattern { id, kind, value, data, note, source: ADMIN_SOURCE.to_owned() }, version))
}

fn duplicate_or(e: sqlx::Error, kind: &str, value: &str) -> ChangeError {
    if unique_violation(&e) {
        ChangeError::Duplicate { kind: kind.to_string(), value: value.to_string() }
    } else {
        ChangeError::Db(e)
    }
}

/// Changes an entry: `change` gets the current entry (locked) and returns the new one, already
/// validated, or an error of the caller's.
pub async fn update<E>(
    db: &PgPool,
    id: Uuid,
    actor: &str,
    change: impl FnOnce(Pattern) -> Result<NewPattern, E>,
) -> Result<Result<(Pattern, i64), E>, ChangeError> {
    let mut tx = db.begin().await?;
    let current: Option<Pattern> =
        sqlx::query_as("SELECT id, kind, value, data, note, source FROM patterns WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let current = current.ok_or(ChangeError::NotFound)?;
    let source = current.source.clone();
    let new = match change(current) {
        Ok(new) => new,
        Err(e) => return Ok(Err(e)),
    };
    sqlx::query("UPDATE patterns SET value = $2, data = $3, note = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&new.value)
        .bind(&new.data)
        .bind(&new.note)
        .execute(&mut *tx)
        .await
        .map_err(|e| duplicate_or(e, &new.kind, &new.value))?;
    let version = bump(&mut tx, "update", &new.kind, &new.value, actor).await?;
    tx.commit().await?;
    let NewPattern { kind, value, data, note } = new;
    Ok(Ok((Pattern { id, kind, value, data, note, source }, version)))
}

/// Deletes an entry; returns the new version.
pub async fn delete(db: &PgPool, id: Uuid, actor: &str) -> Result<i64, ChangeError> {
    let mut tx = db.begin().await?;
    let deleted: Option<(String, String)> = sqlx::query_as("DELETE FROM patterns WHERE id = $1 RETURNING kind, value")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let (kind, value) = deleted.ok_or(ChangeError::NotFound)?;
    let version = bump(&mut tx, "delete", &kind, &value, actor).await?;
    tx.commit().await?;
    Ok(version)
}

pub struct Imported {
    pub version: i64,
    pub added: u64,
    pub removed: u64,
}

/// Adds many entries in one transaction and one version; existing ones are left as they are.
/// With `replace`, every admin entry of the kinds present is removed first (the threat feeds'
/// entries are theirs: each feed's next sync replaces them).
pub async fn import(db: &PgPool, entries: &[NewPattern], replace: bool, actor: &str) -> Result<Imported, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut removed = 0u64;
    if replace {
        let mut kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        removed = sqlx::query("DELETE FROM patterns WHERE kind = ANY($1) AND source = 'admin'")
            .bind(&kinds)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    let mut added = 0u64;
    for e in entries {
        added += sqlx::query(
            "INSERT INTO patterns (id, kind, value, data, note) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, value, source) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(&e.kind)
        .bind(&e.value)
        .bind(&e.data)
        .bind(&e.note)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    let action = if replace { "import-replace" } else { "import" };
    let version = bump(&mut tx, action, "*", &format!("{added} added, {removed} removed"), actor).await?;
    tx.commit().await?;
    Ok(Imported { version, added, removed })
}

/// One entry of a threat feed, validated.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedEntry {
    pub kind: String,
    pub value: String,
}

/// What a feed's sync changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSynced {
    /// The pattern-set version after the sync (unchanged when the sync changed nothing).
    pub version: i64,
    /// Entries the feed holds now.
    pub entries: u64,
    pub added: u64,
    pub removed: u64,
}

/// A threat feed the library holds entries of.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct HeldFeed {
    /// The feed's name (its source without `feed:`).
    pub name: String,
    /// How many entries it holds.
    pub entries: i64,
}

/// Every threat feed the library holds entries of, by name.
pub async fn held_feeds(db: &PgPool) -> Result<Vec<HeldFeed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT substr(source, 6) AS name, count(*) AS entries FROM patterns
         WHERE source LIKE 'feed:%' GROUP BY source ORDER BY source",
    )
    .fetch_all(db)
    .await
}

/// Makes the entries of source `feed:<feed>` exactly `entries`, in one transaction and at most
/// one version (none when nothing changed): entries the feed no longer lists are removed, new
/// ones added; entries of admins and of other feeds are not touched. The change is recorded in
/// `pattern_changes` with the feed as the actor.
pub async fn sync_feed(db: &PgPool, feed: &str, entries: &[FeedEntry]) -> Result<FeedSynced, sqlx::Error> {
    let source = feed_source(feed);
    let mut tx = db.begin().await?;
    // A request that times out drops this transaction, but PostgreSQL would finish a statement
    // already running while it holds the library's lock: bound every statement.
    sqlx::query("SET LOCAL statement_timeout = '15s'").execute(&mut *tx).await?;
    // One writer of the library at a time: the version row is the lock.
    let current: i64 = sqlx::query_scalar("SELECT version FROM pattern_set FOR UPDATE").fetch_one(&mut *tx).await?;
    // The difference is computed here, with hash sets: a feed of 50,000 entries that shrinks by
    // a tenth is a few indexed deletes, not a join PostgreSQL would plan on guessed row counts.
    let held: Vec<(Uuid, String, String)> = sqlx::query_as("SELECT id, kind, value FROM patterns WHERE source = $1")
        .bind(&source)
        .fetch_all(&mut *tx)
        .await?;
    let wanted: HashSet<(&str, &str)> = entries.iter().map(|e| (e.kind.as_str(), e.value.as_str())).collect();
    let have: HashSet<(&str, &str)> = held.iter().map(|(_, k, v)| (k.as_str(), v.as_str())).collect();
    let dropped: Vec<Uuid> =
        held.iter().filter(|(_, k, v)| !wanted.contains(&(k.as_str(), v.as_str()))).map(|(id, _, _)| *id).collect();
    let new: Vec<&FeedEntry> =
        entries.iter().filter(|e| !have.contains(&(e.kind.as_str(), e.value.as_str()))).collect();
    let removed =
        sqlx::query("DELETE FROM patterns WHERE id = ANY($1)").bind(&dropped).execute(&mut *tx).await?.rows_affected();
    let kinds: Vec<&str> = new.iter().map(|e| e.kind.as_str()).collect();
    let values: Vec<&str> = new.iter().map(|e| e.value.as_str()).collect();
    let added = sqlx::query(
        "INSERT INTO patterns (id, kind, value, source)
         SELECT gen_random_uuid(), n.kind, n.value, $1 FROM UNNEST($2::text[], $3::text[]) AS n(kind, value)
         ON CONFLICT (kind, value, source) DO NOTHING",
    )
    .bind(&source)
    .bind(&kinds)
    .bind(&values)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let version = if added + removed > 0 {
        let summary = format!("{added} added, {removed} removed, {} listed", entries.len());
        bump(&mut tx, "feed-sync", "*", &summary, &source).await?
    } else {
        current
    };
    tx.commit().await?;
    Ok(FeedSynced { version, entries: entries.len() as u64, added, removed })
}
