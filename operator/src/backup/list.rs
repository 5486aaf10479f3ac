//! `securityguard-operator backups list`: each backup's time, key, size and state, newest first,
//! as a table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::catalog::{self, Backup, State};
use super::manifest;
use super::store::{self, SourceStore};

/// What `backups list` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The bucket or the local directory.
    pub store: SourceStore,
    /// Key prefix of the backups.
    pub prefix: String,
    /// The SecurityGuard whose backups these are: a folder under the prefix.
    pub guard: Option<String>,
    /// How to print them.
    pub format: Format,
}

/// How the listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table for people.
    Table,
    /// A JSON array for scripts.
    Json,
}

/// One line of the listing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    time: String,
    key: &'a str,
    size: Option<u64>,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    /// Key of the config backup covered by the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a str>,
    /// Fingerprint of the key that encrypted the backup (absent: not encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_fingerprint: Option<&'a str>,
}

impl<'a> From<&'a Backup> for Line<'a> {
    fn from(backup: &'a Backup) -> Self {
        let (state, reason) = match &backup.state {
            State::Good => ("good", None),
            State::Incomplete => ("incomplete", None),
            State::Inconsistent(reason) => ("inconsistent", Some(reason.as_str())),
        };
        let manifest = backup.manifest.as_ref();
        Line {
            time: backup.time.to_string(),
            key: &backup.key,
            size: backup.size,
            state,
            reason,
            sha256: manifest.map(|m| m.sha256.as_str()),
            database: manifest.map(|m| m.database.as_str()),
            finished_at: manifest.map(|m| m.finished_at.to_string()),
            config: manifest.and_then(|m| m.config.as_ref()).map(|c| c.key.as_str()),
            key_fingerprint: manifest.and_then(|m| m.encryption.as_ref()).map(|e| e.key_fingerprint.as_str()),
        }
    }
}

/// Lists the backups as `options` say, returning the text to print.
pub async fn run(options: &Options) -> Result<String, store::Error> {
    let Some(store) = options.store.open().await else {
        return Err(store::Error::NotFound { location: "--bucket or --local-dir".into() });
    };
    let folder = manifest::folder(&options.prefix, options.guard.as_deref());
    let backups = catalog::load(&store, &folder).await?;
    Ok(render(&backups, options.format))
}

/// The listing of `backups` (newest first) in `format`.
pub fn render(backups: &[Backup], format: Format) -> String {
    let lines: Vec<Line<'_>> = backups.iter().map(Line::from).collect();
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&lines).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Table => {
            let rows: Vec<[String; 4]> = lines
                .iter()
                .map(|l| {
                    let state = match l.reason {
                        Some(reason) => format!("{} ({reason})", l.state),
                        None => l.state.to_owned(),
                    };
                    [l.time.clone(), l.size.map(human_size).unwrap_or_else(|| "-".into()), state, l.key.to_owned()]
                })
                .collect();
            let header = ["TIME".to_owned(), "SIZE".to_owned(), "STATE".to_owned(), "KEY".to_owned()];
            let mut widths = [0usize; 3];
            for row in std::iter::once(&header).chain(&rows) {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let mut text = String::new();
            for row in std::iter::once(&header).chain(&rows) {
                let _ = writeln!(
                    text,
                    "{:<w0$}  {:>w1$}  {:<w2$}  {}",
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2]
                );
            }
            if rows.is_empty() {
                text.push_str("(no backups)\n");
            }
            text
        }
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::tests::manifest;

    fn backups() -> Vec<Backup> {
        vec![
            Backup {
                key: "p/20261102T000000.000Z.pgdump".into(),
                time: "2026-11-02T00:00:00Z".parse().expect("time"),
                size: Some(2048),
                state: State::Incomplete,
                manifest: None,
                has_manifest_object: false,
                companions: Vec::new(),
            },
            Backup {
                key: "p/20261101T000000.000Z.pgdump".into(),
                time: "2026-11-01T00:00:00Z".parse().expect("time"),
                size: Some(10),
                state: State::Good,
                manifest: Some(manifest("p/20261101T000000.000Z.pgdump", 10, "2026-11-01T00:00:00Z")),
                has_manifest_object: true,
                companions: Vec::new(),
            },
        ]
    }

    #[test]
    fn renders_a_table() {
        assert_eq!(
            render(&backups(), Format::Table),
            "TIME                     SIZE  STATE       KEY\n\
             2026-11-02T00:00:00Z  2.0 KiB  incomplete  p/20261102T000000.000Z.pgdump\n\
             2026-11-01T00:00:00Z     10 B  good        p/20261101T000000.000Z.pgdump\n"
        );
        assert_eq!(render(&[], Format::Table), "TIME  SIZE  STATE  KEY\n(no backups)\n");
    }

    #[test]
    fn renders_json() {
        let value: serde_json::Value = serde_json::from_str(&render(&backups(), Format::Json)).expect("json");
        assert_eq!(
            value,
            serde_json::json!([
                {"time": "2026-11-02T00:00:00Z", "key": "p/20261102T000000.000Z.pgdump", "size": 2048,
                 "state": "incomplete"},
                {"time": "2026-11-01T00:00:00Z", "key": "p/20261101T000000.000Z.pgdump", "size": 10, "state": "good",
                 "sha256": "00".repeat(32), "database": "db", "finishedAt": "2026-11-01T00:00:00Z"},
            ])
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
