//! The CronJobs: scheduled backups, restore drills and the weekly log archive. All are
//! suspended while a restore runs.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pod::{job_labels, job_spec};
use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{Component, JobKind, ValidatedGuard, bounded_name};
use crate::crd::BackupSpec;

/// Longest CronJob name (its Jobs get an 11-character suffix).
const MAX_CRONJOB_NAME: usize = 52;

/// Name of the CronJob doing `kind`.
pub fn name(guard: &str, kind: JobKind) -> String {
    bounded_name(guard, kind.as_str(), MAX_CRONJOB_NAME)
}

/// The CronJobs `spec.backup` asks for, all suspended when `suspended` (a restore runs); their
/// pods run `image`.
pub fn build(guard: &ValidatedGuard, suspended: bool, image: &str) -> Vec<CronJob> {
    let Some(backup) = &guard.spec.backup else { return Vec::new() };
    let cron_job = |kind, schedule: &str, suspend| cron_job(guard, backup, kind, schedule, suspend, image);
    let mut cron_jobs = vec![cron_job(JobKind::Backup, &backup.schedule, backup.suspend || suspended)];
    if backup.verify.enabled {
        cron_jobs.push(cron_job(JobKind::Verify, &backup.verify.schedule, suspended));
    }
    if backup.log_archive.enabled {
        cron_jobs.push(cron_job(JobKind::LogArchive, &backup.log_archive.schedule, suspended));
    }
    cron_jobs
}

fn cron_job(
    guard: &ValidatedGuard,
    backup: &BackupSpec,
    kind: JobKind,
    schedule: &str,
    suspend: bool,
    image: &str,
) -> CronJob {
    let mut meta = metadata(guard, Component::Backup, name(&guard.name, kind));
    meta.labels = Some(job_labels(guard, kind, None));
    CronJob {
        metadata: meta,
        spec: Some(CronJobSpec {
            schedule: schedule.to_owned(),
            time_zone: Some("Etc/UTC".to_owned()),
            suspend: Some(suspend),
            // One at a time: a backup still running when the next is due makes that one wait.
            concurrency_policy: Some("Forbid".to_owned()),
            // A run missed by more than this (the controller was down) is skipped, not piled up.
            starting_deadline_seconds: Some(600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(job_labels(guard, kind, None)), ..ObjectMeta::default() }),
                spec: Some(job_spec(guard, backup, kind, image, Vec::new())),
            },
        }),
        ..CronJob::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn hourly_backups_weekly_drills_and_log_archive_by_default() {
        let guard = guard(&format!("{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3}}\n"));
        let jobs: Vec<serde_json::Value> = build(&guard, false, "operator:test")
            .iter()
            .map(|c| serde_json::to_value(c).expect("serializes"))
            .collect();
        let names: Vec<&str> = jobs.iter().filter_map(|c| c["metadata"]["name"].as_str()).collect();
        assert_eq!(names, ["sg-backup", "sg-verify", "sg-log-archive"]);
        assert_eq!(jobs[0]["spec"]["schedule"], "0 * * * *");
        assert_eq!(jobs[0]["spec"]["suspend"], false);
        assert_eq!(jobs[0]["spec"]["concurrencyPolicy"], "Forbid");
        assert_eq!(jobs[0]["spec"]["timeZone"], "Etc/UTC");
        assert_eq!(jobs[1]["spec"]["schedule"], "30 3 * * 0");
        let pod = &jobs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "sg-backup");
        assert_eq!(pod["automountServiceAccountToken"], true);
        let archive = &jobs[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(archive["serviceAccountName"], "sg-log-archive");
        let drill = &jobs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(drill["automountServiceAccountToken"], false);
        assert_eq!(drill["containers"][0]["args"], serde_json::json!(["restore", "--verify-only"]));
    }

    /// The value of `name` in the environment of the first container of a CronJob.
    fn env_of(cron_job: &serde_json::Value, name: &str) -> Option<String> {
        let container = &cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        let env = container["env"].as_array()?;
        env.iter().find(|e| e["name"] == name).and_then(|e| e["value"].as_str()).map(str::to_owned)
    }

    #[test]
    fn drills_are_held_to_the_recovery_targets_of_the_spec() {
        let render = |backup: &str| -> Vec<serde_json::Value> {
            build(&guard(&format!("{MINIMAL}{backup}")), false, "operator:test")
                .iter()
                .map(|c| serde_json::to_value(c).expect("serializes"))
                .collect()
        };
        let defaults = render("  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n");
        assert_eq!(env_of(&defaults[1], "SG_DRILL_RECOVERY_TIME_TARGET").as_deref(), Some("15m"));
        assert_eq!(env_of(&defaults[1], "SG_DRILL_RECOVERY_POINT_TARGET").as_deref(), Some("1h"));
        assert_eq!(env_of(&defaults[0], "SG_DRILL_RECOVERY_TIME_TARGET"), None, "backups have no targets");
        let set = render(
            "  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n    verify: {targets: {recoveryTime: 1h30m, recoveryPoint: 2d}}\n",
        );
        assert_eq!(env_of(&set[1], "SG_DRILL_RECOVERY_TIME_TARGET").as_deref(), Some("1h30m"));
        assert_eq!(env_of(&set[1], "SG_DRILL_RECOVERY_POINT_TARGET").as_deref(), Some("2d"));
        // The drill restores the newest good backup: the one whose age is the recovery point.
        assert_eq!(env_of(&set[1], "SG_RESTORE_SOURCE"), None);
    }

    #[test]
    fn a_restore_suspends_every_schedule() {
        let guard = guard(&format!(
            "{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3}}\n    verify: {{enabled: false}}\n"
        ));
        let jobs = build(&guard, true, "operator:test");
        assert_eq!(jobs.len(), 2);
        assert!(jobs.iter().all(|c| c.spec.as_ref().and_then(|s| s.suspend) == Some(true)));
    }

    #[test]
    fn none_without_backup() {
        assert!(build(&guard(MINIMAL), false, "operator:test").is_empty());
    }
}
