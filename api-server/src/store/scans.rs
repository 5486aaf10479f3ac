//! Scan records, written to PostgreSQL in the background and in batches so that a scan's
//! response does not wait for its own INSERT. Reads of a scan that is not found yet flush the
//! queue first, so a client always finds the scan whose id it was given.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::scan::ScanKind;
use crate::scan::verdict::Action;

const QUEUE: usize = 10_000;
const MAX_BATCH: usize = 500;
const RETRIES: u32 = 5;
/// How long the writer gathers records after the first of a batch. Under load this makes
/// tens of transactions per second of hundreds of rows each instead of hundreds of small
/// ones: PostgreSQL spent about as much CPU on a commit as on tens of rows.
const LINGER: Duration = Duration::from_millis(3);

/// A scan to record, as it was answered.
#[derive(Clone, Debug)]
pub struct NewScan {
    pub wallet: String,
    pub kind: ScanKind,
    /// SHA-256 of what was scanned.
    pub content_hash: [u8; 32],
    pub pattern_version: i64,
    pub action: Action,
    pub risk_score: u32,
    /// The result as JSON text (stored as jsonb).
    pub result: String,
    pub cached: bool,
}

#[derive(Clone, Debug)]
struct ScanRecord {
    id: Uuid,
    scan: NewScan,
    /// When the scan was answered (not when the batch was written).
    created_at: jiff::Timestamp,
}

#[derive(Debug, sqlx::FromRow)]
pub struct StoredScan {
    pub wallet: String,
    pub result: Value,
    pub created_at: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct ScanSummary {
    pub id: Uuid,
    pub kind: String,
    pub action: String,
    pub risk_score: i32,
    pub created_at: String,
}

enum Command {
    Insert(ScanRecord),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct ScanStore {
    tx: mpsc::Sender<Command>,
    db: PgPool,
}

impl ScanStore {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn start(db: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db.clone(), rx));
        Self { tx, db }
    }

    /// Queues a scan's record and returns its id; when the queue is full the record is written
    /// directly instead.
    pub async fn record(&self, scan: NewScan) -> Result<Uuid, sqlx::Error> {
        // Time-ordered (UUIDv7: 48-bit millisecond timestamp, 74 random bits): each INSERT lands
        // at the right edge of the primary-key index instead of a random page.
        let id = Uuid::now_v7();
        let record = ScanRecord { id, scan, created_at: jiff::Timestamp::now() };
        match self.tx.try_send(Command::Insert(record)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Command::Insert(r)))
            | Err(mpsc::error::TrySendError::Closed(Command::Insert(r))) => {
                insert(&self.db, std::slice::from_ref(&r)).await?;
            }
            Err(_) => {}
        }
        Ok(id)
    }

    /// A stored scan; when it is not found, queued records are flushed and it is looked up
    /// once more, so a client always finds the scan whose id it was just given.
    pub async fn get(&self, id: Uuid) -> Result<Option<StoredScan>, sqlx::Error> {
        const QUERY: &str = "SELECT wallet, result,
                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at
             FROM scans WHERE id = $1";
        let found: Option<StoredScan> = sqlx::query_as(QUERY).bind(id).fetch_optional(&self.db).await?;
        if found.is_some() {
            return Ok(found);
        }
        self.flush().await;
        sqlx::query_as(QUERY).bind(id).fetch_optional(&self.db).await
    }

    /// A wallet's most recent scans, newest first.
    pub async fn list(&self, wallet: &str, kind: Option<&str>, limit: i64) -> Result<Vec<ScanSummary>, sqlx::Error> {
        self.flush().await;
        sqlx::query_as(
            "SELECT id, kind, action, risk_score,
                    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at
             FROM scans WHERE wallet = $1 AND ($2::text IS NULL OR kind = $2)
             ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(wallet)
        .bind(kind)
        .bind(limit)
        .fetch_all(&self.db)
        .await
    }

    /// Records (or replaces) a wallet's feedback on a scan; returns the feedback id.
    pub async fn record_feedback(
        &self,
        scan_id: Uuid,
        wallet: &str,
        verdict: &str,
        comment: Option<&str>,
    ) -> Result<Uuid, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO scan_feedback (id, scan_id, wallet, verdict, comment) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (scan_id, wallet)
             DO UPDATE SET verdict = EXCLUDED.verdict, comment = EXCLUDED.comment, created_at = now()
             RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(scan_id)
        .bind(wallet)
        .bind(verdict)
        .bind(comment)
        .fetch_one(&self.db)
        .await
    }

    /// Waits until everything queued so far is written (or given up on).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }
}

async fn run(db: PgPool, mut rx: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        // Gather for up to LINGER after the first record, unless the batch fills up or a
        // reader waits for its scan (a flush), which are written at once.
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Insert(r) => batch.push(r),
                Command::Flush(w) => waiters.push(w),
            }
            if batch.len() >= MAX_BATCH || !waiters.is_empty() {
                break;
            }
            next = tokio::select! {
                biased;
                cmd = rx.recv() => cmd,
                () = &mut linger => None,
            };
        }
        if !batch.is_empty() {
            let mut attempt = 0;
            loop {
                match insert(&db, &batch).await {
                    Ok(()) => break,
                    Err(e) if attempt < RETRIES => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, rows = batch.len(), "writing scans failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, rows = batch.len(), "writing scans failed; dropping them");
                        break;
                    }
                }
            }
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

async fn insert(db: &PgPool, rows: &[ScanRecord]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let wallets: Vec<&str> = rows.iter().map(|r| r.scan.wallet.as_str()).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.scan.kind.as_str()).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|r| r.scan.content_hash.as_slice()).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.scan.pattern_version).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.scan.action.as_str()).collect();
    let scores: Vec<i32> = rows.iter().map(|r| r.scan.risk_score as i32).collect();
    let results: Vec<&str> = rows.iter().map(|r| r.scan.result.as_str()).collect();
    let cached: Vec<bool> = rows.iter().map(|r| r.scan.cached).collect();
    let created: Vec<String> = rows.iter().map(|r| r.created_at.to_string()).collect();
    sqlx::query(
        "INSERT INTO scans (id, wallet, kind, content_hash, pattern_version, action, risk_score,
                            result, cached, created_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::text[],
                              $7::int4[], $8::text[]::jsonb[], $9::bool[], $10::text[]::timestamptz[])",
    )
    .bind(ids)
    .bind(wallets)
    .bind(kinds)
    .bind(hashes)
    .bind(versions)
    .bind(actions)
    .bind(scores)
    .bind(results)
    .bind(cached)
    .bind(created)
    .execute(db)
    .await
    .map(|_| ())
}
