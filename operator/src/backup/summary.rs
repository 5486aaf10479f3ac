//! A one-object JSON summary of a backup or restore, written to the container's termination
//! message file (`/dev/termination-log` in a Job): the kubelet copies it into the pod's
//! `status.containerStatuses[].state.terminated.message`, where the controller reads the
//! outcome (key, size, duration, error, whether the database changed) without parsing logs.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

use super::{create, drill, ledger, logs, pitr, restore};
use crate::crd::DrillRecovery;

/// Largest termination message the kubelet keeps.
pub const MAX_BYTES: usize = 4096;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Done.
    Succeeded,
    /// Failed; see `error`.
    Failed,
}

/// The summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `backup`, `restore`, `archive-logs` or `claim-restore`.
    pub command: &'static str,
    /// Outcome.
    pub result: Outcome,
    /// Key of the backup written or restored (archive-logs: of the archive's index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its size in bytes (archive-logs: of all the compressed logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// archive-logs: container logs archived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<usize>,
    /// Its SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// When the backup's snapshot was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<Timestamp>,
    /// Key of the config backup stored with the dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Seconds the command ran.
    pub seconds: f64,
    /// Backups (archive-logs: archives) deleted by retention, per tier.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted: BTreeMap<&'static str, usize>,
    /// Restore only: whether the target database may have changed (false: it is as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_changed: Option<bool>,
    /// claim-restore only: the verdict and the record that holds the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<ledger::Claim>,
    /// Drill only: the recovery it achieved, against its targets (absent when it could not
    /// restore and check the backup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillRecovery>,
    /// backup: the point-in-time recovery window of the guard's WAL archive, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<pitr::window::Window>,
    /// Point-in-time restore: what was recovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<pitr::recover::Report>,
    /// The error, when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    /// The summary of a backup.
    pub fn of_backup(result: &Result<create::Report, create::Error>, seconds: f64) -> Self {
        let mut summary = Summary::empty("backup", seconds);
        match result {
            Ok(report) => {
                summary.key = Some(report.manifest.key.clone());
                summary.size = Some(report.manifest.size);
                summary.sha256 = Some(report.manifest.sha256.clone());
                summary.taken_at = Some(report.manifest.started_at);
                summary.deleted = report.deleted.iter().copied().collect();
                summary.config = report.manifest.config.as_ref().map(|c| c.key.clone());
                summary.point_in_time = report.point_in_time.clone();
            }
            Err(error) => {
                summary.result = Outcome::Failed;
                summary.error = Some(error.to_string());
            }
        }
        summary
    }

    /// The summary of a restore (a drill's is [`Summary::of_drill`]).
    pub fn of_restore(result: &Result<restore::Report, restore::Error>, seconds: f64) -> Self {
        let mut summary = Summary::empty("restore", seconds);
        match result {
            Ok(report) => {
                summary.key = Some(report.manifest.key.clone());
                summary.size = Some(report.manifest.size);
                summary.sha256 = Some(report.manifest.sha256.clone());
                summary.taken_at = Some(report.manifest.started_at);
                summary.database_changed = Some(true);
            }
            Err(error) => {
                summary.result = Outcome::Failed;
                summary.error = Some(error.to_string());
                summary.database_changed = Some(error.database_changed());
            }
        }
        summary
    }

    /// The summary of a restore drill: the restore's, with the recovery it achieved. A drill
    /// that missed a target failed, with its figures.
    pub fn of_drill(result: &Result<drill::Drill, drill::Error>, seconds: f64) -> Self {
        let measured = match result {
            Ok(drill) => Some(drill),
            Err(error) => error.drill(),
        };
        let mut summary = Summary::empty("restore", seconds);
        summary.database_changed = Some(false);
        if let Some(drill) = measured {
            let manifest = &drill.restore.manifest;
            summary.key = Some(manifest.key.clone());
            summary.size = Some(manifest.size);
            summary.sha256 = Some(manifest.sha256.clone());
            summary.taken_at = Some(manifest.started_at);
            summary.drill = Some(drill.recovery.clone());
        }
        if let Err(error) = result {
            summary.result = Outcome::Failed;
            summary.error = Some(error.to_string());
        }
        summary
    }

    /// The summary of a log archive.
    pub fn of_archive(result: &Result<logs::Report, logs::Error>, seconds: f64) -> Self {
        let mut summary = Summary::empty("archive-logs", seconds);
        match result {
            Ok(report) => {
                summary.key = Some(report.index_key.clone());
                summary.size = Some(report.index.objects.iter().map(|o| o.size).sum());
                summary.archived = Some(report.index.objects.len());
                summary.deleted = BTreeMap::from([("s3", report.deleted)]);
            }
            Err(error) => {
                summary.result = Outcome::Failed;
                summary.error = Some(error.to_string());
            }
        }
        summary
    }

    /// The summary of a claim in the restore ledger (key: the record's). A refused claim is a
    /// success: the command found out what it was asked to.
    pub fn of_claim(result: &Result<ledger::Claim, ledger::Error>, key: String, seconds: f64) -> Self {
        let mut summary = Summary::empty("claim-restore", seconds);
        summary.key = Some(key);
        match result {
            Ok(claim) => summary.claim = Some(claim.clone()),
            Err(error) => {
                summary.result = Outcome::Failed;
                summary.error = Some(error.to_string());
            }
        }
        summary
    }

    /// The summary of a point-in-time restore (`command: restore`, as the dump's restore).
    pub fn of_point_in_time(result: &Result<pitr::recover::Report, pitr::recover::Error>, seconds: f64) -> Self {
        let mut summary = Summary::empty("restore", seconds);
        match result {
            Ok(report) => {
                summary.key = Some(report.base_backup.clone());
                summary.taken_at = Some(report.base_backup_at);
                summary.database_changed = Some(true);
                summary.recovery = Some(report.clone());
            }
            Err(error) => {
                summary.result = Outcome::Failed;
                summary.error = Some(error.to_string());
                summary.database_changed = Some(error.database_changed());
            }
        }
        summary
    }

    /// The summary of the rollback of a point-in-time restore.
    pub fn of_point_in_time_rollback(result: &Result<bool, pitr::recover::Error>, seconds: f64) -> Self {
        let mut summary = Summary::empty("restore", seconds);
        match result {
            Ok(moved) => summary.database_changed = Some(*moved),
            Err(error) => {
                summary.result = Outcome::Failed;
                summary.error = Some(error.to_string());
                summary.database_changed = Some(true);
            }
        }
        summary
    }

    fn empty(command: &'static str, seconds: f64) -> Self {
        Summary {
            command,
            result: Outcome::Succeeded,
            key: None,
            size: None,
            archived: None,
            sha256: None,
            taken_at: None,
            config: None,
            seconds: (seconds * 1000.0).round() / 1000.0,
            deleted: BTreeMap::new(),
            database_changed: None,
            claim: None,
            drill: None,
            point_in_time: None,
            recovery: None,
            error: None,
        }
    }

    /// The JSON text, at most [`MAX_BYTES`]: a long error is shortened.
    pub fn to_json(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        if text.len() <= MAX_BYTES {
            return text;
        }
        let mut shorter = self.clone();
        if let Some(error) = &mut shorter.error {
            let excess = text.len() - MAX_BYTES + "…".len();
            let mut keep = error.len().saturating_sub(excess);
            while !error.is_char_boundary(keep) {
                keep -= 1;
            }
            error.truncate(keep);
            error.push('…');
        }
        serde_json::to_string(&shorter).unwrap_or_default()
    }

    /// Writes the summary to `path`; a failure is logged, never fatal.
    pub fn write(&self, path: &Path) {
        if let Err(error) = std::fs::write(path, self.to_json()) {
            tracing::warn!(path = %path.display(), %error, "cannot write the termination message");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_fits_the_termination_message() {
        let mut summary = Summary::empty("restore", 1.23456);
        summary.result = Outcome::Failed;
        summary.database_changed = Some(false);
        summary.error = Some("é".repeat(5000));
        let text = summary.to_json();
        assert!(text.len() <= MAX_BYTES, "{}", text.len());
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["result"], "failed");
        assert_eq!(value["databaseChanged"], false);
        assert_eq!(value["seconds"], 1.235);
        assert!(value["error"].as_str().is_some_and(|e| e.ends_with('…')));
    }

    /// A drill that restored the backup of `taken` in 41 s, started at 03:30, against the
    /// default targets.
    fn measured_drill(taken: &str) -> drill::Drill {
        let secs = std::time::Duration::from_secs_f64;
        let report = restore::Report {
            manifest: crate::backup::catalog::tests::manifest("p/backup.pgdump", 4096, taken),
            database: "postgres://u:***@h/sg_restore_check_1".into(),
            seconds: 41.5,
            started_at: "2026-11-29T03:30:00Z".parse().expect("time"),
            recovered_in: secs(41.0),
            steps: restore::Steps { download: secs(3.0), verify: secs(0.5), restore: secs(35.0), checks: secs(2.5) },
        };
        let targets = drill::Targets {
            recovery_time: Some(std::time::Duration::from_secs(900)),
            recovery_point: Some(std::time::Duration::from_secs(3600)),
        };
        let recovery = drill::measure(&report, targets);
        drill::Drill { restore: report, recovery }
    }

    #[test]
    fn a_drill_reports_its_figures_and_fails_over_a_target() {
        let passed = Summary::of_drill(&Ok(measured_drill("2026-11-29T03:00:00Z")), 41.5);
        let value: serde_json::Value = serde_json::from_str(&passed.to_json()).expect("json");
        assert_eq!(value["result"], "succeeded");
        assert_eq!(value["databaseChanged"], false);
        assert_eq!(value["key"], "p/backup.pgdump");
        assert_eq!(
            value["drill"],
            serde_json::json!({
                "startedAt": "2026-11-29T03:30:00Z", "backupTakenAt": "2026-11-29T03:00:00Z",
                "recoveryTimeSeconds": 41.0, "recoveryTimeTargetSeconds": 900.0,
                "recoveryPointSeconds": 1800.0, "recoveryPointTargetSeconds": 3600.0,
                "steps": {"downloadSeconds": 3.0, "verifySeconds": 0.5, "restoreSeconds": 35.0, "checksSeconds": 2.5},
            })
        );

        let late = measured_drill("2026-11-29T01:17:00Z");
        let reason = drill::reason(&late.recovery, "p/backup.pgdump").expect("the recovery point is missed");
        let failed = Summary::of_drill(&Err(drill::Error::TargetsMissed { reason, drill: Box::new(late) }), 41.5);
        let value: serde_json::Value = serde_json::from_str(&failed.to_json()).expect("json");
        assert_eq!(value["result"], "failed");
        assert_eq!(value["key"], "p/backup.pgdump", "the backup restored is still named");
        assert_eq!(value["drill"]["recoveryPointSeconds"], 7980.0);
        assert_eq!(value["drill"]["missed"], serde_json::json!(["RecoveryPoint"]));
        assert_eq!(
            value["error"],
            "recovery point 2h13m exceeds the target 1h: the newest good backup is from 2026-11-29T01:17:00Z \
             (p/backup.pgdump)"
        );

        // A drill that could not restore: the restore's error, no figures.
        let broken = restore::Error::RowCounts {
            key: "p/backup.pgdump".into(),
            database: "scratch".into(),
            mismatches: vec!["public.users: expected 251, found 250".into()],
        };
        let failed = Summary::of_drill(&Err(drill::Error::Restore(broken)), 2.0);
        assert_eq!(failed.drill, None);
        assert!(failed.error.as_deref().is_some_and(|e| e.contains("public.users: expected 251, found 250")));
        assert_eq!(failed.database_changed, Some(false));
    }

    #[test]
    fn a_success_names_the_backup() {
        let mut summary = Summary::empty("backup", 2.0);
        summary.key = Some("k".into());
        summary.deleted = BTreeMap::from([("s3", 2), ("local", 0)]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&summary.to_json()).expect("json"),
            serde_json::json!({"command": "backup", "result": "succeeded", "key": "k", "seconds": 2.0,
                               "deleted": {"local": 0, "s3": 2}})
        );
    }

    #[test]
    fn a_refused_claim_is_a_success_that_names_the_earlier_claim() {
        let record = ledger::Record {
            format_version: ledger::FORMAT_VERSION,
            request_id: "r1".into(),
            guard: "prod/sg".into(),
            claimed_by: "uid-1".into(),
            claimed_at: "2026-11-25T09:00:00Z".parse().expect("time"),
            source: "latest".into(),
            restored_key: None,
            restored_at: None,
        };
        let claim = ledger::Claim { verdict: ledger::Verdict::Refused, same_guard: false, record };
        let value: serde_json::Value =
            serde_json::from_str(&Summary::of_claim(&Ok(claim), "k".into(), 0.5).to_json()).expect("json");
        assert_eq!(value["command"], "claim-restore");
        assert_eq!(value["result"], "succeeded");
        assert_eq!(value["key"], "k");
        assert_eq!(value["claim"]["verdict"], "refused");
        assert_eq!(value["claim"]["claimedBy"], "uid-1");
        assert_eq!(value["claim"]["claimedAt"], "2026-11-25T09:00:00Z");
        let failed = Summary::of_claim(&Err(ledger::Error::NoGuard), "k".into(), 0.5);
        assert_eq!((failed.result, failed.claim.is_none()), (Outcome::Failed, true));
    }
}
