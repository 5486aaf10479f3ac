//! The SQL side: a snapshot shared with `pg_dump`, row counts, server version, scratch databases,
//! and connection URLs that never show their password.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{Connection, PgConnection, Row};
use url::Url;

/// A failed database step, naming the database (never the password).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not a PostgreSQL URL.
    #[error("the database URL {url} is not valid: {reason}")]
    Url {
        /// The URL, password hidden.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A statement or the connection failed.
    #[error("PostgreSQL {url}: {what} failed: {source}")]
    Sql {
        /// The URL, password hidden.
        url: String,
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

/// A PostgreSQL connection URL, split so that the password travels only in `PGPASSWORD`.
#[derive(Clone)]
pub struct DbUrl {
    url: Url,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DbUrl {
    /// Parses `postgres://` or `postgresql://` URLs.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let url = Url::parse(text).map_err(|e| Error::Url { url: redact(text), reason: e.to_string() })?;
        if url.scheme() != "postgres" && url.scheme() != "postgresql" {
            return Err(Error::Url {
                url: redact(text),
                reason: format!("scheme {:?}, expected postgres:// or postgresql://", url.scheme()),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::Url { url: redact(text), reason: "no host".into() });
        }
        Ok(DbUrl { url })
    }

    /// The URL with `***` for the password: what logs and errors show.
    pub fn redacted(&self) -> String {
        redact(self.url.as_str())
    }

    /// The URL without password: what `pg_dump` and `pg_restore` get on their command line.
    pub fn without_password(&self) -> String {
        let mut url = self.url.clone();
        // Only fails for URLs that cannot have a password, which `parse` refused.
        let _ = url.set_password(None);
        url.to_string()
    }

    /// The password, percent-decoded, for `PGPASSWORD`.
    pub fn password(&self) -> Option<String> {
        self.url.password().map(percent_decode)
    }

    /// The full URL, for the driver.
    pub fn full(&self) -> &str {
        self.url.as_str()
    }

    /// Name of the database (the URL's path), if given.
    pub fn database(&self) -> Option<String> {
        let name = self.url.path().trim_start_matches('/');
        (!name.is_empty()).then(|| percent_decode(name))
    }

    /// The same server and user, another database.
    pub fn with_database(&self, database: &str) -> DbUrl {
        let mut url = self.url.clone();
        url.set_path(&format!("/{database}"));
        DbUrl { url }
    }

    /// Connects; an unreachable server is an error at once.
    pub async fn connect(&self) -> Result<PgConnection, Error> {
        self.connect_patiently(Duration::ZERO).await
    }

    /// Connects, waiting up to `patience` while the server cannot be reached or refuses
    /// connections (an I/O error: a managed PostgreSQL that is still starting, a Service without
    /// a ready endpoint yet). Any other error (authentication, a missing database) is returned
    /// at once, and so is the last I/O error when the patience runs out.
    pub async fn connect_patiently(&self, patience: Duration) -> Result<PgConnection, Error> {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match PgConnection::connect(self.full()).await {
                Err(sqlx::Error::Io(error)) if start.elapsed() + delay < patience => {
                    tracing::info!(
                        database = %self.redacted(),
                        attempt,
                        %error,
                        "the database does not accept connections yet, waiting"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                result => return result.map_err(|source| self.sql("connecting", source)),
            }
        }
    }

    /// An [`Error::Sql`] naming this database.
    pub fn sql(&self, what: &'static str, source: sqlx::Error) -> Error {
        Error::Sql { url: self.redacted(), what, source }
    }

    /// Sets `PGPASSWORD` (when the URL has a password) on a `pg_dump` / `pg_restore` command.
    pub fn password_env(&self, command: &mut tokio::process::Command) {
        if let Some(password) = self.password() {
            command.env("PGPASSWORD", password);
        }
    }
}

/// Hides the password of anything that looks like a URL; text that does not parse is replaced
/// whole, since it may be a password itself.
pub fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long a backup waits for its database to accept connections: a backup that starts while
/// the managed PostgreSQL starts (a new guard, a restart, a drained node) is not a failed backup.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(120);

/// A `REPEATABLE READ` transaction kept open while `pg_dump --snapshot` dumps what it sees: the
/// row counts of the manifest are those of the dump.
pub struct Snapshot {
    conn: PgConnection,
    /// Identifier for `pg_dump --snapshot`.
    pub id: String,
    /// `current_database()`.
    pub database: String,
    /// `server_version`.
    pub server_version: String,
    /// Rows per table, in this snapshot.
    pub row_counts: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Opens the transaction, exports its snapshot and counts rows in it.
    pub async fn take(url: &DbUrl) -> Result<Self, Error> {
        let mut conn = url.connect_patiently(CONNECT_PATIENCE).await?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(|e| url.sql("starting the snapshot transaction", e))?;
        let row = sqlx::query("SELECT pg_export_snapshot(), current_database(), current_setting('server_version')")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| url.sql("exporting the snapshot", e))?;
        let id: String = row.try_get(0).map_err(|e| url.sql("exporting the snapshot", e))?;
        let database: String = row.try_get(1).map_err(|e| url.sql("exporting the snapshot", e))?;
        let server_version: String = row.try_get(2).map_err(|e| url.sql("exporting the snapshot", e))?;
        let row_counts = row_counts(url, &mut conn).await?;
        Ok(Snapshot { conn, id, database, server_version, row_counts })
    }

    /// Ends the transaction, once `pg_dump` is done with the snapshot.
    pub async fn release(mut self, url: &DbUrl) -> Result<(), Error> {
        sqlx::raw_sql("COMMIT").execute(&mut self.conn).await.map_err(|e| url.sql("ending the snapshot", e))?;
        let _ = self.conn.close().await;
        Ok(())
    }
}

/// Rows of every ordinary table (partitions each on their own, `ONLY`), keyed `schema.table`,
/// outside the system schemas.
pub async fn row_counts(url: &DbUrl, conn: &mut PgConnection) -> Result<BTreeMap<String, u64>, Error> {
    let tables = sqlx::query(
        "SELECT n.nspname, c.relname, format('SELECT count(*) FROM ONLY %I.%I', n.nspname, c.relname)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r'
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| url.sql("listing tables", e))?;
    let mut counts = BTreeMap::new();
    for table in tables {
        let schema: String = table.try_get(0).map_err(|e| url.sql("listing tables", e))?;
        let name: String = table.try_get(1).map_err(|e| url.sql("listing tables", e))?;
        let statement: String = table.try_get(2).map_err(|e| url.sql("listing tables", e))?;
        let count: i64 =
            sqlx::query_scalar(&statement).fetch_one(&mut *conn).await.map_err(|e| url.sql("counting rows", e))?;
        counts.insert(format!("{schema}.{name}"), u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

/// Creates an empty database (for a restore drill).
pub async fn create_database(admin: &DbUrl, name: &str) -> Result<(), Error> {
    let mut conn = admin.connect().await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {}", quote_ident(name)))
        .execute(&mut conn)
        .await
        .map_err(|e| admin.sql("creating the scratch database", e))?;
    Ok(())
}

/// Drops a database, disconnecting its sessions.
pub async fn drop_database(admin: &DbUrl, name: &str) -> Result<(), Error> {
    let mut conn = admin.connect().await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)))
        .execute(&mut conn)
        .await
        .map_err(|e| admin.sql("dropping the scratch database", e))?;
    Ok(())
}

/// `"name"` with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The directory of `pg_dump` and `pg_restore`: `bin_dir` when given, else found on `PATH`.
pub fn program(bin_dir: Option<&Path>, name: &str) -> PathBuf {
    match bin_dir {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_password() {
        let url = DbUrl::parse("postgres://app:s3cr%40t@db.example:5432/securityguard?sslmode=require").expect("url");
        assert_eq!(url.redacted(), "postgres://app:***@db.example:5432/securityguard?sslmode=require");
        assert_eq!(url.without_password(), "postgres://app@db.example:5432/securityguard?sslmode=require");
        assert_eq!(url.password().as_deref(), Some("s3cr@t"));
        assert_eq!(url.database().as_deref(), Some("securityguard"));
        assert_eq!(format!("{url:?}"), url.redacted());
        assert_eq!(
            url.with_database("scratch").redacted(),
            "postgres://app:***@db.example:5432/scratch?sslmode=require"
        );
        assert_eq!(redact("not a url with password hunter2"), "<unparseable URL>");
    }

    #[test]
    fn refuses_other_urls() {
        let error = DbUrl::parse("mysql://root:pw@db/x").expect_err("scheme");
        assert!(error.to_string().contains("mysql://root:***@db/x"), "{error}");
        assert!(!error.to_string().contains("pw"), "{error}");
        assert!(DbUrl::parse("postgres:///x").is_err());
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("sg_check"), "\"sg_check\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
