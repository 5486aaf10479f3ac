//! The support bundle's layout and its archive (pure): what is collected becomes files under one
//! top directory, every file passes the [`Scrubber`] on its way into the tar.gz, and
//! `summary.txt` and `index.json` say what was collected, what was skipped and what failed.
//!
//! ```text
//! securityguard-report-<namespace>-<name>-<time>/
//!   summary.txt                      for people: what is here, what is not and why
//!   index.json                       the same for scripts
//!   securityguard.yaml               the SecurityGuard with its status
//!   events.txt, events.yaml          Events of the SecurityGuard and of its children
//!   objects/<Kind>/<name>.yaml       every child (Secrets as names and keys only)
//!   logs/api/<pod>/<container>.log   tail of each API container (`.previous.log` after a restart)
//!   logs/operator/<pod>/<container>.log
//!   backups.txt                      the backup listing (`kubectl securityguard backups`)
//! ```

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use jiff::Timestamp;
use serde::Serialize;

use super::redact::Scrubber;

/// Name of the summary for people.
pub const SUMMARY: &str = "summary.txt";
/// Name of the summary for scripts.
pub const INDEX: &str = "index.json";
/// The SecurityGuard.
pub const GUARD: &str = "securityguard.yaml";
/// Its Events and its children's, as a table.
pub const EVENTS_TEXT: &str = "events.txt";
/// Its Events and its children's, whole.
pub const EVENTS_YAML: &str = "events.yaml";
/// The backup listing.
pub const BACKUPS: &str = "backups.txt";

/// Version of [`INDEX`]'s format.
pub const INDEX_VERSION: u32 = 1;

/// Whose pods a log belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogGroup {
    /// The SecurityGuard's API pods.
    Api,
    /// The operator's pods.
    Operator,
}

impl LogGroup {
    /// Folder name under `logs/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Operator => "operator",
        }
    }
}

/// Path of a child object in the bundle.
pub fn object_path(kind: &str, name: &str) -> String {
    format!("objects/{kind}/{name}.yaml")
}

/// Path of a container's log in the bundle. Pod and container names are DNS labels: no `/`.
pub fn log_path(group: LogGroup, pod: &str, container: &str, previous: bool) -> String {
    let suffix = if previous { ".previous" } else { "" };
    format!("logs/{}/{pod}/{container}{suffix}.log", group.as_str())
}

/// Name of the top directory (and, with `.tar.gz`, the default file name): safe characters only.
pub fn root_name(namespace: &str, name: &str, time: Timestamp) -> String {
    let stamp = time.strftime("%Y%m%dT%H%M%SZ");
    format!("securityguard-report-{namespace}-{name}-{stamp}")
}

/// What happened to one item of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It is in the bundle.
    Collected,
    /// It does not apply here (an API the cluster does not serve, a container not started).
    Skipped,
    /// It should be here and is not (forbidden, unreachable, failed).
    Failed,
}

/// One item and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// What: `Deployment objects`, `log api/sg-api-x/api`, `backup listing`.
    pub item: String,
    /// Collected, skipped or failed.
    pub outcome: Outcome,
    /// How many objects or bytes, or why not.
    pub detail: String,
}

/// The files of a bundle and the record of how they were collected.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    files: Vec<(String, Vec<u8>)>,
    records: Vec<Record>,
}

/// [`INDEX`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    format_version: u32,
    guard: String,
    collected_at: Timestamp,
    operator_version: &'static str,
    files: Vec<&'a str>,
    records: &'a [Record],
}

impl Bundle {
    /// Adds a file at `path` (relative to the top directory).
    pub fn file(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.push((path.into(), bytes.into()));
    }

    /// Records what happened to an item.
    pub fn record(&mut self, item: impl Into<String>, outcome: Outcome, detail: impl Into<String>) {
        self.records.push(Record { item: item.into(), outcome, detail: detail.into() });
    }

    /// Every record so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Paths of the files so far, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.files.iter().map(|(path, _)| path.as_str()).collect()
    }

    /// How many items failed.
    pub fn failures(&self) -> usize {
        self.records.iter().filter(|r| r.outcome == Outcome::Failed).count()
    }

    /// `summary.txt`: the header, the problems first, then everything collected.
    pub fn summary(&self, guard: &str, time: Timestamp, scrubbed: usize) -> String {
        let count = |outcome| self.records.iter().filter(|r| r.outcome == outcome).count();
        let mut out = format!(
            "Support bundle of SecurityGuard {guard}\n\
             collected at {time} by kubectl securityguard report {}\n\
             {} collected, {} skipped, {} failed\n\n\
             Redaction: Secrets appear as names and keys only; the last-applied-configuration\n\
             annotation, credential-like env values and URL passwords are replaced by <redacted>;\n\
             {scrubbed} known secret value forms (raw and base64) were scrubbed from every file.\n",
            env!("CARGO_PKG_VERSION"),
            count(Outcome::Collected),
            count(Outcome::Skipped),
            count(Outcome::Failed),
        );
        for (title, outcome) in
            [("FAILED", Outcome::Failed), ("SKIPPED", Outcome::Skipped), ("COLLECTED", Outcome::Collected)]
        {
            let records: Vec<&Record> = self.records.iter().filter(|r| r.outcome == outcome).collect();
            if records.is_empty() {
                continue;
            }
            out.push_str(&format!("\n{title}\n"));
            let width = records.iter().map(|r| r.item.len()).max().unwrap_or(0);
            for record in records {
                out.push_str(&format!("  {:width$}  {}\n", record.item, record.detail));
            }
        }
        out.push_str("\nFILES\n");
        for path in self.paths() {
            out.push_str(&format!("  {path}\n"));
        }
        out
    }

    /// `index.json`.
    fn index(&self, guard: &str, time: Timestamp) -> Vec<u8> {
        let mut files = self.paths();
        files.extend([SUMMARY, INDEX]);
        let index = Index {
            format_version: INDEX_VERSION,
            guard: guard.to_owned(),
            collected_at: time,
            operator_version: env!("CARGO_PKG_VERSION"),
            files,
            records: &self.records,
        };
        serde_json::to_vec_pretty(&index).unwrap_or_default()
    }

    /// The tar.gz of the bundle under the top directory `root`, with `summary.txt` and
    /// `index.json` first, every file scrubbed.
    pub fn archive(&self, root: &str, guard: &str, time: Timestamp, scrubber: &Scrubber) -> std::io::Result<Vec<u8>> {
        let summary = self.summary(guard, time, scrubber.len());
        let index = self.index(guard, time);
        let mtime = u64::try_from(time.as_second()).unwrap_or(0);
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let all = [(SUMMARY, summary.as_bytes()), (INDEX, index.as_slice())]
            .into_iter()
            .chain(self.files.iter().map(|(path, bytes)| (path.as_str(), bytes.as_slice())));
        for (path, bytes) in all {
            let bytes = scrubber.scrub(bytes);
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_entry_type(tar::EntryType::Regular);
            // Long names (pod names up to 253 characters) become GNU long-name entries.
            tar.append_data(&mut header, format!("{root}/{path}"), bytes.as_slice())?;
        }
        let mut gzip = tar.into_inner()?;
        gzip.flush()?;
        gzip.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn unpack(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        let mut out = Vec::new();
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            out.push((path, bytes));
        }
        out
    }

    #[test]
    fn paths_follow_the_layout() {
        assert_eq!(object_path("Deployment", "sg-api"), "objects/Deployment/sg-api.yaml");
        assert_eq!(log_path(LogGroup::Api, "sg-api-1", "api", false), "logs/api/sg-api-1/api.log");
        assert_eq!(log_path(LogGroup::Operator, "op-1", "operator", true), "logs/operator/op-1/operator.previous.log");
        let time: Timestamp = "2026-11-30T13:05:09Z".parse().expect("time");
        assert_eq!(root_name("prod", "sg", time), "securityguard-report-prod-sg-20261130T130509Z");
    }

    #[test]
    fn the_archive_has_one_top_directory_the_summaries_first_and_long_names() {
        let time: Timestamp = "2026-11-30T13:05:09Z".parse().expect("time");
        let mut bundle = Bundle::default();
        bundle.file(GUARD, "kind: SecurityGuard\n");
        let long_pod = format!("sg-api-{}", "x".repeat(200));
        bundle.file(log_path(LogGroup::Api, &long_pod, "api", false), "line\n");
        bundle.record("Deployment objects", Outcome::Collected, "1");
        bundle.record("ServiceMonitor objects", Outcome::Skipped, "API not served");
        bundle.record("backup listing", Outcome::Failed, "S3 unreachable");
        let archive = bundle.archive("root", "prod/sg", time, &Scrubber::default()).expect("archive");
        let files = unpack(&archive);
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "root/summary.txt".to_owned(),
                "root/index.json".to_owned(),
                "root/securityguard.yaml".to_owned(),
                format!("root/logs/api/{long_pod}/api.log"),
            ]
        );
        let summary = String::from_utf8(files[0].1.clone()).expect("utf-8");
        assert!(summary.starts_with("Support bundle of SecurityGuard prod/sg\n"), "{summary}");
        assert!(summary.contains("1 collected, 1 skipped, 1 failed"), "{summary}");
        let failed = summary.find("FAILED\n  backup listing").expect("failures listed");
        let skipped = summary.find("SKIPPED\n  ServiceMonitor objects").expect("skipped listed");
        assert!(failed < skipped, "{summary}");
        assert!(summary.contains("  securityguard.yaml\n"), "{summary}");
        let index: serde_json::Value = serde_json::from_slice(&files[1].1).expect("json");
        assert_eq!(index["guard"], "prod/sg");
        assert_eq!(
            index["records"][2],
            serde_json::json!({"item": "backup listing", "outcome": "failed", "detail": "S3 unreachable"})
        );
        assert_eq!(index["files"][0], "securityguard.yaml");
        assert_eq!(bundle.failures(), 1);
    }
}
