//! `securityguard-operator restore --verify-only`: the restore drill that measures.
//!
//! The drill is a restore of the newest good backup into a scratch database ([`restore::run`]).
//! Around it, this module measures what a restore at that moment would have achieved, and holds
//! it to the recovery targets (`spec.backup.verify.targets`):
//!
//! - the **recovery time**: from the start of the drill until the restored data was checked,
//!   with the time of each step (download, verify, restore, checks);
//! - the **recovery point**: how old the restored data was when the drill started, the drill's
//!   start minus the time the backup's snapshot was taken (its manifest's `startedAt`).
//!
//! A drill that restored and checked its backup but missed a target fails, saying which target
//! it missed, by how much, and with the figures; the figures are in its summary either way.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::catalog::Source;
use super::restore::{self, Steps};
use crate::crd::{DrillRecovery, RecoverySteps};

/// The recovery targets a drill is held to; a target left out is only measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    /// Longest the restore may take.
    pub recovery_time: Option<Duration>,
    /// Oldest the restored data may be.
    pub recovery_point: Option<Duration>,
}

/// A drill that failed: it could not restore and check the backup, or it did and missed a
/// recovery target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A recovery point target with a source other than `latest`: the age of an older backup
    /// says nothing about the data a loss now would lose.
    #[error(
        "a recovery point target needs the source latest, not {asked}: the drill measures the age of the newest good backup"
    )]
    PointNeedsLatest {
        /// The source asked for.
        asked: Source,
    },
    /// The restore into the scratch database, or its checks, failed.
    #[error(transparent)]
    Restore(#[from] restore::Error),
    /// The backup restored and checked, but a target was missed: `reason` says which and why.
    #[error("{reason}")]
    TargetsMissed {
        /// Which targets, the figures and where the time went.
        reason: String,
        /// The drill, as measured.
        drill: Box<Drill>,
    },
}

impl Error {
    /// The drill as measured, when it got as far as a measurement.
    pub fn drill(&self) -> Option<&Drill> {
        match self {
            Error::PointNeedsLatest { .. } | Error::Restore(_) => None,
            Error::TargetsMissed { drill, .. } => Some(drill),
        }
    }
}

/// A drill that restored and checked its backup, with what it achieved.
#[derive(Debug, Clone)]
pub struct Drill {
    /// The restore into the scratch database.
    pub restore: restore::Report,
    /// What it achieved, against the targets.
    pub recovery: DrillRecovery,
}

/// Runs the drill (`options.verify_only` is forced on), measures it and holds it to `targets`.
pub async fn run(options: &restore::Options, targets: Targets) -> Result<Drill, Error> {
    if targets.recovery_point.is_some() && options.source != Source::Latest {
        return Err(Error::PointNeedsLatest { asked: options.source.clone() });
    }
    let options = restore::Options { verify_only: true, ..options.clone() };
    let report = restore::run(&options).await?;
    let recovery = measure(&report, targets);
    let key = report.manifest.key.clone();
    let drill = Drill { restore: report, recovery };
    tracing::info!(key = %key, figures = %drill.recovery.describe(), "restore drill measured");
    match reason(&drill.recovery, &key) {
        None => Ok(drill),
        Some(reason) => Err(Error::TargetsMissed { reason, drill: Box::new(drill) }),
    }
}

/// What a restore achieved, against `targets` (pure). Every figure is rounded to the
/// millisecond before it is compared, so that whoever compares the figures of the status
/// again reaches the same verdict.
pub fn measure(report: &restore::Report, targets: Targets) -> DrillRecovery {
    let taken_at = report.manifest.started_at;
    let age = report.started_at.duration_since(taken_at).as_secs_f64();
    let Steps { download, verify, restore: restoring, checks } = report.steps;
    let mut recovery = DrillRecovery {
        started_at: time(report.started_at),
        backup_taken_at: time(taken_at),
        recovery_time_seconds: millis(report.recovered_in.as_secs_f64()),
        recovery_time_target_seconds: targets.recovery_time.map(|t| t.as_secs_f64()),
        // A backup stamped after the drill started (clocks apart) is as fresh as can be.
        recovery_point_seconds: millis(age.max(0.0)),
        recovery_point_target_seconds: targets.recovery_point.map(|t| t.as_secs_f64()),
        steps: RecoverySteps {
            download_seconds: millis(download.as_secs_f64()),
            verify_seconds: millis(verify.as_secs_f64()),
            restore_seconds: millis(restoring.as_secs_f64()),
            checks_seconds: millis(checks.as_secs_f64()),
        },
        missed: Vec::new(),
    };
    recovery.missed = recovery.over_targets();
    recovery
}

/// Why a drill of the backup `key` failed on its targets, each missed target in turn; `None`
/// when it missed none (pure).
pub fn reason(recovery: &DrillRecovery, key: &str) -> Option<String> {
    if recovery.missed.is_empty() {
        return None;
    }
    Some(recovery.missed.iter().map(|target| recovery.shortfall(*target, key)).collect::<Vec<_>>().join("; "))
}

/// A time of the data path (jiff 1) as a Kubernetes time (k8s-openapi's jiff), in whole seconds
/// as the status keeps it. Both cover the same years, -9999 to 9999, so the conversion cannot
/// fail; the epoch stands in if it did.
fn time(t: jiff::Timestamp) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.as_second()).unwrap_or_default())
}

/// Seconds rounded to the millisecond.
fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::tests::manifest;
    use crate::crd::RecoveryTarget;
    use jiff::Timestamp;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    /// A drill started at 03:30:00 that restored the backup of `taken` (10 s download, 0.5 s
    /// verify, 60 s restore, 2 s checks, 73 s in all).
    fn report(taken: &str) -> restore::Report {
        let secs = Duration::from_secs_f64;
        restore::Report {
            manifest: manifest("p/backup.pgdump", 10, taken),
            database: "postgres://u:***@h/scratch".into(),
            seconds: 74.0,
            started_at: at("2026-11-29T03:30:00Z"),
            recovered_in: secs(73.0004),
            steps: Steps { download: secs(10.0), verify: secs(0.5), restore: secs(60.0), checks: secs(2.0) },
        }
    }

    fn targets(time: u64, point: u64) -> Targets {
        Targets { recovery_time: Some(Duration::from_secs(time)), recovery_point: Some(Duration::from_secs(point)) }
    }

    #[test]
    fn measures_the_recovery_time_its_steps_and_the_age_of_the_data() {
        let recovery = measure(&report("2026-11-29T03:00:00Z"), targets(900, 3600));
        assert_eq!(recovery.recovery_time_seconds, 73.0);
        assert_eq!(recovery.recovery_point_seconds, 1800.0);
        assert_eq!(
            recovery.steps,
            RecoverySteps { download_seconds: 10.0, verify_seconds: 0.5, restore_seconds: 60.0, checks_seconds: 2.0 }
        );
        assert_eq!(recovery.started_at.0.to_string(), "2026-11-29T03:30:00Z");
        assert_eq!(recovery.backup_taken_at.0.to_string(), "2026-11-29T03:00:00Z");
        assert_eq!(
            (recovery.recovery_time_target_seconds, recovery.recovery_point_target_seconds),
            (Some(900.0), Some(3600.0))
        );
        assert!(recovery.missed.is_empty());
        assert_eq!(reason(&recovery, "p/backup.pgdump"), None);
    }

    #[test]
    fn a_backup_older_than_the_recovery_point_target_misses_it() {
        let recovery = measure(&report("2026-11-29T01:17:00Z"), targets(900, 3600));
        assert_eq!(recovery.recovery_point_seconds, 7980.0);
        assert_eq!(recovery.missed, [RecoveryTarget::RecoveryPoint]);
        assert_eq!(
            reason(&recovery, "p/backup.pgdump").as_deref(),
            Some(
                "recovery point 2h13m exceeds the target 1h: the newest good backup is from \
                 2026-11-29T01:17:00Z (p/backup.pgdump)"
            )
        );
    }

    #[test]
    fn a_slow_restore_misses_the_recovery_time_target_and_says_where_the_time_went() {
        let recovery = measure(&report("2026-11-29T03:00:00Z"), targets(60, 3600));
        assert_eq!(recovery.missed, [RecoveryTarget::RecoveryTime]);
        assert_eq!(
            reason(&recovery, "k").as_deref(),
            Some("recovery time 1m13s exceeds the target 1m: download 10s, verify 0.5s, restore 1m, checks 2s")
        );
        // Both at once: each in turn.
        let both = measure(&report("2026-11-28T03:30:00Z"), targets(60, 3600));
        assert_eq!(both.missed, [RecoveryTarget::RecoveryTime, RecoveryTarget::RecoveryPoint]);
        let text = reason(&both, "k").expect("missed");
        assert!(text.starts_with("recovery time 1m13s exceeds the target 1m: "), "{text}");
        assert!(text.contains("; recovery point 1d exceeds the target 1h: "), "{text}");
    }

    #[test]
    fn at_the_target_passes_and_without_targets_only_measures() {
        // Exactly the target, once rounded to the millisecond: not over it.
        let recovery = measure(&report("2026-11-29T02:30:00Z"), targets(73, 3600));
        assert!(recovery.missed.is_empty(), "{recovery:?}");
        let measured = measure(&report("2020-01-01T00:00:00Z"), Targets::default());
        assert!(measured.missed.is_empty());
        assert_eq!(measured.recovery_point_target_seconds, None);
        assert!(measured.recovery_point_seconds > 86_400.0 * 365.0);
    }

    #[tokio::test]
    async fn a_recovery_point_target_needs_the_newest_backup() {
        let options = restore::Options {
            database_url: "postgres://u:p@127.0.0.1:9/db".into(),
            source: Source::Key("p/older.pgdump".into()),
            store: crate::backup::store::SourceStore::default(),
            prefix: "p".into(),
            guard: None,
            verify_only: true,
            scratch_database: None,
            work_dir: None,
            pg_bin: None,
            ledger: None,
            encryption_key_file: None,
        };
        let error = run(&options, targets(900, 3600)).await.expect_err("refused before anything is read");
        assert!(matches!(&error, Error::PointNeedsLatest { asked } if *asked == options.source), "{error}");
        assert!(error.to_string().starts_with("a recovery point target needs the source latest, not p/older.pgdump"));
        // Without a recovery point target it goes on (and here finds no store to read).
        let only_time = Targets { recovery_point: None, ..targets(900, 3600) };
        let error = run(&options, only_time).await.expect_err("no store");
        assert!(matches!(error, Error::Restore(restore::Error::Store(_))), "{error}");
    }

    #[test]
    fn a_backup_stamped_after_the_drill_started_has_no_age() {
        let recovery = measure(&report("2026-11-29T03:30:05Z"), targets(900, 3600));
        assert_eq!(recovery.recovery_point_seconds, 0.0);
    }
}
