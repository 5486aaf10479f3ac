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

    /// One Event per backup or drill that finished.
    pub async fn finished_jobs(&self, finished: &[Finished]) {
        for f in finished {
            let what = match f.kind {
                JobKind::Verify => "Restore drill",
                _ => "Backup",
            };
            let key = f.summary.as_ref().and_then(|s| s.key.as_deref()).unwrap_or("-");
            let (kind, reason, note) = if f.succeeded {
                let reason = if f.kind == JobKind::Verify { "BackupVerified" } else { "BackupSucceeded" };
                (EventType::Normal, reason, format!("{what} {key} succeeded (Job {})", f.job))
            } else {
                let reason = if f.kind == JobKind::Verify { "BackupVerifyFailed" } else { "BackupFailed" };
                (EventType::Warning, reason, format!("{what} failed (Job {}): {}", f.job, f.error()))
            };
            self.publish(kind, reason, "Backup", note).await;
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

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        assert_eq!(clip("short".into()), "short");
        let long = "é".repeat(600);
        let cut = clip(long);
        assert!(cut.len() <= MAX_NOTE && cut.ends_with("..."), "{}", cut.len());
    }
}
