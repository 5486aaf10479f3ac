//! Events on the SecurityGuard: what a reconcile wrote, backups and drills that finished,
//! restore phases entered, pods failing, readiness. A failure to publish is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use super::changes::Change;
use super::recorder::Recorder;
use crate::controller::decide::restore::Plan;
use crate::controller::read::jobs::FeedSync;
use crate::controller::read::jobs::Finished;
use crate::controller::vocabulary::JobKind;
use crate::crd::RestorePhase;

/// Longest Event note the API server keeps (1 kB).
const MAX_NOTE: usize = 1000;

/// Publishes Events about one SecurityGuard.
pub struct Events<'a> {
    /// The recorder.
    pub recorder: &'a Recorder,
    /// The SecurityGuard.
    pub reference: &'a ObjectReference,
}

impl Events<'_> {
    /// Publishes one Event.
    pub async fn publish(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let event =
            Event { type_, reason: reason.to_owned(), note: Some(note), action: action.to_owned(), secondary: None };
        if let Err(error) = self.recorder.publish(&event, self.reference).await {
            tracing::warn!(%error, reason, "could not publish an Event");
        }
    }

    /// What a reconcile wrote, one Event per kind of change (Created, Updated, Deleted) listing
    /// the objects, rather than one Event per object. Called whether the apply succeeded or not:
    /// what was written before a failure is reported too.
    pub async fn changes(&self, changes: &[(Change, String)]) {
        for change in [Change::Created, Change::Updated, Change::Deleted] {
            let objects: Vec<&str> = changes.iter().filter(|(c, _)| *c == change).map(|(_, o)| o.as_str()).collect();
            if objects.is_empty() {
                continue;
            }
            let mut note = format!("{} {}", change.as_str(), objects.join(", "));
            if change == Change::Deleted {
                note.push_str(": no longer asked for by the spec");
            }
            self.publish(EventType::Normal, change.as_str(), "Reconcile", clip(note)).await;
        }
    }

    /// One Event per backup or drill that finished; a drill that missed recovery targets, one
    /// Warning per target missed.
    pub async fn finished_jobs(&self, finished: &[Finished]) {
        for f in finished {
            for (kind, reason, note) in finished_job_events(f) {
                self.publish(kind, reason, "Backup", clip(note)).await;
            }
        }
    }

    /// Per threat-feed sync that finished: a Warning for each feed that failed (nothing changed
    /// for it), or a Normal Event naming what every feed holds now.
    pub async fn feed_syncs(&self, syncs: &[FeedSync]) {
        for sync in syncs {
            let failed: Vec<String> =
                sync.feeds.iter().filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.name))).collect();
            if failed.is_empty() && sync.error.is_none() {
                let feeds: Vec<String> = sync
                    .feeds
                    .iter()
                    .map(|f| {
                        format!(
                            "{} ({} entries, +{} -{})",
                            f.name,
                            f.entries.unwrap_or(0),
                            f.added.unwrap_or(0),
                            f.removed.unwrap_or(0)
                        )
                    })
                    .collect();
                let removed: Vec<String> =
                    sync.removed.iter().map(|f| format!("{} ({} entries)", f.name, f.entries)).collect();
                let removed = if removed.is_empty() {
                    String::new()
                } else {
                    format!("; entries of feeds no longer listed removed: {}", removed.join(", "))
                };
                let note = format!("Threat feeds synced (Job {}): {}{removed}", sync.job, feeds.join(", "));
                self.publish(EventType::Normal, "ThreatFeedsSynced", "FeedSync", clip(note)).await;
                continue;
            }
            let what = if failed.is_empty() { sync.error.clone().unwrap_or_default() } else { failed.join("; ") };
            let note =
                format!("Threat feed sync failed (Job {}); nothing changed for the failed feeds: {what}", sync.job);
            self.publish(EventType::Warning, "ThreatFeedSyncFailed", "FeedSync", clip(note)).await;
        }
    }

    /// One Event per restore phase entered.
    pub async fn restore_phases(&self, plan: &Plan) {
        let Some(status) = &plan.status else { return };
        for phase in &plan.entered {
            // Skipped is no failure, but a restore asked for did not happen: shown as a warning.
            let kind = match phase {
                RestorePhase::Failed | RestorePhase::Skipped => EventType::Warning,
                _ => EventType::Normal,
            };
            let note = if phase == &status.phase {
                format!("restore {}: {}", status.request_id, status.message)
            } else {
                format!("restore {}: {}", status.request_id, phase.as_str())
            };
            self.publish(kind, &format!("Restore{}", phase.as_str()), "Restore", note).await;
        }
    }
}

/// The Events of a backup or drill Job that finished (pure): `BackupSucceeded`/`BackupFailed`;
/// for a drill `BackupVerified` with its figures, `BackupVerifyFailed` when it could not restore
/// or check its backup, or `RecoveryTimeOverTarget`/`RecoveryPointOverTarget` for each target
/// it missed.
pub fn finished_job_events(f: &Finished) -> Vec<(EventType, &'static str, String)> {
    let key = f.summary.as_ref().and_then(|s| s.key.as_deref()).unwrap_or("-");
    if f.kind != JobKind::Verify {
        let mut events = vec![if f.succeeded {
            (EventType::Normal, "BackupSucceeded", format!("Backup {key} succeeded (Job {})", f.job))
        } else {
            (EventType::Warning, "BackupFailed", format!("Backup failed (Job {}): {}", f.job, f.error()))
        }];
        events.extend(window_events(f));
        return events;
    }
    let recovery = f.summary.as_ref().and_then(|s| s.drill.as_deref());
    match recovery {
        Some(recovery) if !f.succeeded && !recovery.missed.is_empty() => recovery
            .missed
            .iter()
            .map(|target| {
                let note =
                    format!("Restore drill of {key} failed (Job {}): {}", f.job, recovery.shortfall(*target, key));
                (EventType::Warning, target.reason(), note)
            })
            .collect(),
        _ if !f.succeeded => vec![(
            EventType::Warning,
            "BackupVerifyFailed",
            format!("Restore drill failed (Job {}): {}", f.job, f.error()),
        )],
        Some(recovery) => vec![(
            EventType::Normal,
            "BackupVerified",
            format!("Restore drill of {key} passed (Job {}): {}", f.job, recovery.describe()),
        )],
        None => vec![(EventType::Normal, "BackupVerified", format!("Restore drill {key} succeeded (Job {})", f.job))],
    }
}

/// The recoverable window a backup found, with point-in-time recovery: appended to its Event,
/// and a Warning `PointInTimeWindowError` when the archive has a problem.
fn window_events(f: &Finished) -> Vec<(EventType, &'static str, String)> {
    let Some(window) = f.summary.as_ref().and_then(|s| s.point_in_time.as_ref()?.window()) else { return Vec::new() };
    let mut events = vec![(
        EventType::Normal,
        "PointInTimeWindow",
        format!("Point-in-time recovery possible {} (Job {})", window.describe(), f.job),
    )];
    if let Some(error) = &window.error {
        events.push((EventType::Warning, "PointInTimeWindowError", format!("WAL archive (Job {}): {error}", f.job)));
    }
    events
}

/// Cuts a note to what an Event keeps, marking the cut.
fn clip(mut note: String) -> String {
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drill(succeeded: bool, recovery: Option<crate::crd::DrillRecovery>) -> Finished {
        Finished {
            job: "sg-verify-1".into(),
            kind: JobKind::Verify,
            request: None,
            at: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            succeeded,
            summary: Some(Box::new(crate::controller::read::jobs::Summary {
                key: Some("k.pgdump".into()),
                error: (!succeeded).then(|| "the Job's own error".to_owned()),
                drill: recovery.map(Box::new),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn a_backup_names_the_recoverable_window_it_found() {
        use crate::controller::read::jobs::PointInTimeReport;
        use crate::crd::RecoverableWindow;
        let t = |s: i64| {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(s).expect("time"),
            )
        };
        let window = RecoverableWindow {
            first_recoverable: Some(t(0)),
            last_recoverable: Some(t(60)),
            base_backups: Some(1),
            archived_through: None,
            error: Some("segment 7 missing".into()),
        };
        let mut backup = drill(true, None);
        backup.kind = JobKind::Backup;
        backup.job = "sg-backup-1".into();
        if let Some(summary) = backup.summary.as_mut() {
            summary.point_in_time = Some(Box::new(PointInTimeReport::Window(window)));
        }
        let events = finished_job_events(&backup);
        let reasons: Vec<_> = events.iter().map(|(_, reason, _)| *reason).collect();
        assert_eq!(reasons, ["BackupSucceeded", "PointInTimeWindow", "PointInTimeWindowError"]);
        assert_eq!(
            events[1].2,
            "Point-in-time recovery possible from 1970-01-01T00:00:00Z to 1970-01-01T00:01:00Z (1 base backups) (Job sg-backup-1)"
        );
        assert_eq!(events[2].0, EventType::Warning);
    }

    fn figures(time: f64, point: f64) -> crate::crd::DrillRecovery {
        let t = |s: i64| {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(s).expect("time"),
            )
        };
        let mut recovery = crate::crd::DrillRecovery {
            started_at: t(10_000),
            backup_taken_at: t(10_000 - point as i64),
            recovery_time_seconds: time,
            recovery_time_target_seconds: Some(900.0),
            recovery_point_seconds: point,
            recovery_point_target_seconds: Some(3600.0),
            steps: crate::crd::RecoverySteps {
                download_seconds: 1.0,
                verify_seconds: 1.0,
                restore_seconds: time - 3.0,
                checks_seconds: 1.0,
            },
            missed: Vec::new(),
        };
        recovery.missed = recovery.over_targets();
        recovery
    }

    #[test]
    fn a_passing_drill_says_its_figures() {
        let events = finished_job_events(&drill(true, Some(figures(63.0, 1800.0))));
        assert_eq!(events.len(), 1);
        let (kind, reason, note) = &events[0];
        assert_eq!((kind, *reason), (&EventType::Normal, "BackupVerified"));
        assert_eq!(
            note,
            "Restore drill of k.pgdump passed (Job sg-verify-1): recovery time 1m3s (target 15m: download 1s, \
             verify 1s, restore 1m, checks 1s), recovery point 30m (target 1h, backup taken at 1970-01-01T02:16:40Z)"
        );
    }

    #[test]
    fn a_drill_that_missed_targets_warns_once_per_target() {
        let events = finished_job_events(&drill(false, Some(figures(1203.0, 7980.0))));
        let reasons: Vec<&str> = events.iter().map(|(_, reason, _)| *reason).collect();
        assert_eq!(reasons, ["RecoveryTimeOverTarget", "RecoveryPointOverTarget"]);
        assert!(events.iter().all(|(kind, _, _)| *kind == EventType::Warning));
        assert!(events[0].2.contains("recovery time 20m3s exceeds the target 15m: download 1s"), "{}", events[0].2);
        assert!(events[1].2.contains("recovery point 2h13m exceeds the target 1h: the newest good backup is from"));
        // A drill that could not restore or check its backup: the Job's own error.
        let events = finished_job_events(&drill(false, None));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, "BackupVerifyFailed");
        assert!(events[0].2.ends_with("the Job's own error"), "{}", events[0].2);
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        assert_eq!(clip("short".into()), "short");
        let long = "é".repeat(600);
        let cut = clip(long);
        assert!(cut.len() <= MAX_NOTE && cut.ends_with("..."), "{}", cut.len());
    }
}
