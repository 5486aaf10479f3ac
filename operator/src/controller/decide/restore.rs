//! The restore procedure as a state machine over `status.restore` (pure).
//!
//! Each reconcile observes the world (Deployment, autoscaler, API pods, the restore's Jobs),
//! advances the phase as far as what it observed allows, and says how the SecurityGuard must
//! run meanwhile ([`Directives`]): API replicas, whether schedules are suspended, which Jobs
//! must exist. Everything needed to resume is in the status and in the Jobs' stable names, so
//! an operator restarted in any phase picks up where it was.
//!
//! Pending (replicas and autoscaler bounds recorded, before anything changes) → Claiming (the
//! `requestId` claimed in the restore ledger beside the backups, still before anything changes)
//! → ScalingDown (API at 0, schedules suspended, until no API pod is left) → SafetyBackup →
//! Restoring (download, verify, restore, check) → ScalingUp (back to the recorded size) →
//! Completed. A restore that failed after touching the database goes through RollingBack (the
//! safety backup restored) before ScalingUp; every failure ends in Failed with the reason.
//!
//! A claim refused by the ledger (the request was handled already, by an earlier SecurityGuard
//! of this name re-created from the same spec) ends in Skipped: not a failure, nothing was
//! touched, and the message says when the request was handled. A claim that could not be made
//! ends in Failed, equally untouched.
//!
//! A point-in-time restore (`before:<time>` with `spec.backup.pointInTime` and the managed
//! PostgreSQL; decided once, when the restore is recorded) takes the same path with three
//! differences: the claim also refuses a time outside the recoverable window; there is no
//! logical safety backup, since the restore keeps PostgreSQL's data directory aside on its volume
//! and the rollback moves it back; and while Restoring and RollingBack PostgreSQL too is scaled
//! to 0, its Job created only once no PostgreSQL pod is left.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::controller::read::jobs::{ClaimReport, ClaimVerdict, Finished, JobState};
use crate::controller::read::observe::Observed;
use crate::controller::vocabulary::{Directives, JobRequest, Scale};
use crate::crd::{RecordedAutoscaling, RestorePhase, RestoreSpec, RestoreStatus, SecurityGuardSpec};

/// The outcome of one step of the restore.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The new `status.restore`.
    pub status: Option<RestoreStatus>,
    /// How to run meanwhile.
    pub directives: Directives,
    /// Phases entered during this step, for Events.
    pub entered: Vec<RestorePhase>,
}

impl Plan {
    /// A restore is under way (not finished).
    pub fn active(&self) -> bool {
        self.status.as_ref().is_some_and(|s| !s.phase.is_finished())
    }
}

/// Advances the restore.
pub fn plan(spec: &SecurityGuardSpec, previous: Option<&RestoreStatus>, observed: &Observed) -> Plan {
    let mut entered = Vec::new();
    let mut status = previous.cloned();
    let start = match (&spec.restore, previous) {
        (Some(asked), None) => Some(asked),
        (Some(asked), Some(last)) if last.phase.is_finished() && last.request_id != asked.request_id => Some(asked),
        _ => None,
    };
    if let Some(asked) = start {
        // Only record in this step: the recorded size is persisted before anything is scaled.
        status = Some(record(spec, asked, observed));
        entered.push(RestorePhase::Pending);
    } else if let Some(s) = status.as_mut() {
        advance(s, observed, &mut entered);
    }
    let directives = directives(status.as_ref(), observed);
    Plan { status, directives, entered }
}

/// The time a restore of `asked` recovers to, when it is a point-in-time restore: `before:<time>`
/// while `spec.backup.pointInTime` is set and the operator runs PostgreSQL.
fn point_in_time_target(spec: &SecurityGuardSpec, asked: &RestoreSpec) -> Option<Timestamp> {
    spec.backup.as_ref()?.point_in_time.as_ref()?;
    if spec.postgres.external.is_some() {
        return None;
    }
    asked.source.strip_prefix("before:")?.parse().ok()
}

fn record(spec: &SecurityGuardSpec, asked: &RestoreSpec, observed: &Observed) -> RestoreStatus {
    let autoscaling = if spec.autoscaling.enabled {
        Some(observed.autoscaler.unwrap_or(RecordedAutoscaling {
            min_replicas: spec.autoscaling.min_replicas,
            max_replicas: spec.autoscaling.max_replicas,
        }))
    } else {
        None
    };
    let replicas = observed.deployment_replicas.unwrap_or_else(|| match &autoscaling {
        Some(a) => a.min_replicas,
        None => spec.replicas.unwrap_or(3),
    });
    let bounds = autoscaling.map(|a| format!(", autoscaler {}-{}", a.min_replicas, a.max_replicas)).unwrap_or_default();
    let point_in_time = point_in_time_target(spec, asked);
    let what = point_in_time.map(|t| format!("; a point-in-time restore to {t}")).unwrap_or_default();
    RestoreStatus {
        request_id: asked.request_id.clone(),
        source: asked.source.clone(),
        phase: RestorePhase::Pending,
        message: format!(
            "recorded {replicas} API replicas{bounds}{what}; claiming the request in the restore ledger next"
        ),
        started_at: Time(observed.now),
        finished_at: None,
        recorded_replicas: replicas,
        recorded_autoscaling: autoscaling,
        safety_backup_key: None,
        restored_key: None,
        outcome: None,
        error: None,
        point_in_time: point_in_time.map(Time),
    }
}

/// Moves the restore on as far as the observations allow: each phase either moves on (and the
/// next phase looks at the same observations) or waits for the world to change.
fn advance(s: &mut RestoreStatus, observed: &Observed, entered: &mut Vec<RestorePhase>) {
    loop {
        let moved = match s.phase {
            RestorePhase::Pending => {
                let window = target(s)
                    .map(|t| format!(" and checking that {t} is inside the recoverable window"))
                    .unwrap_or_default();
                let message = format!(
                    "claiming request {} in the restore ledger beside the backups{window}; nothing changes before it is granted",
                    s.request_id
                );
                enter(entered, s, RestorePhase::Claiming, message);
                false
            }
            RestorePhase::Claiming => claimed(s, observed, entered),
            RestorePhase::ScalingDown => scaled_down(s, observed, entered),
            RestorePhase::SafetyBackup => safety_backup_taken(s, &observed.safety_backup, entered),
            RestorePhase::Restoring => match target(s) {
                Some(t) => recovered(s, t, observed, entered),
                None => restored(s, &observed.restore, entered),
            },
            RestorePhase::RollingBack if target(s).is_some() => moved_back(s, &observed.rollback, entered),
            RestorePhase::RollingBack => rolled_back(s, &observed.rollback, entered),
            RestorePhase::ScalingUp => {
                scaled_up(s, observed, entered);
                false
            }
            RestorePhase::Completed | RestorePhase::Failed | RestorePhase::Skipped => false,
        };
        if !moved {
            return;
        }
    }
}

/// Claiming → ScalingDown once the ledger granted the claim (new, or this object's own
/// unfinished one); → Skipped when it refused; → Failed when the claim could not be made. Nothing
/// has changed yet in any of these cases.
fn claimed(s: &mut RestoreStatus, observed: &Observed, entered: &mut Vec<RestorePhase>) -> bool {
    let JobState::Finished(f) = &observed.claim else { return false };
    let claim = f.summary.as_ref().and_then(|r| r.claim.as_ref()).filter(|_| f.succeeded);
    match claim.map(|c| (c.verdict, c)) {
        Some((ClaimVerdict::Claimed | ClaimVerdict::Resumed, c)) => {
            let how = if c.verdict == ClaimVerdict::Resumed {
                "resumed (claimed by this SecurityGuard before)"
            } else {
                "claimed"
            };
            let message = format!(
                "request {} {how} in the restore ledger; scaling the API to 0 and suspending the scheduled backups",
                s.request_id
            );
            enter(entered, s, RestorePhase::ScalingDown, message);
            true
        }
        Some((ClaimVerdict::Refused, c)) => {
            let message = refusal(&s.request_id, c);
            s.finished_at = Some(Time(observed.now));
            enter(entered, s, RestorePhase::Skipped, message);
            false
        }
        None => {
            let cause = if f.succeeded { "the claim Job reported no verdict".to_owned() } else { f.error() };
            let message = format!(
                "claiming request {} in the restore ledger failed: {cause}; nothing was changed. Set a new requestId to try again",
                s.request_id
            );
            s.error = Some(message.clone());
            s.outcome = Some(RestorePhase::Failed);
            s.finished_at = Some(Time(observed.now));
            enter(entered, s, RestorePhase::Failed, message);
            false
        }
    }
}

/// Why a request is not repeated: when it was handled, what it restored, for whom.
fn refusal(request_id: &str, c: &ClaimReport) -> String {
    let whose = if c.same_guard { "by this SecurityGuard" } else { "for an earlier SecurityGuard of this name" };
    let what = match (&c.restored_key, c.restored_at) {
        (Some(key), Some(at)) => format!("restored {key} at {at}, {whose}"),
        _ => format!("claimed {whose}, which recorded no restored backup: it failed or was interrupted"),
    };
    format!(
        "request {request_id} was already handled at {} ({what}); not repeated: set a new requestId to restore again",
        c.claimed_at
    )
}

/// The time a point-in-time restore recovers to (None: a restore of a dump).
fn target(s: &RestoreStatus) -> Option<Timestamp> {
    s.point_in_time.as_ref().map(|t| t.0)
}

/// ScalingDown → SafetyBackup once no API pod is left and PostgreSQL is ready; a point-in-time
/// restore goes straight on to Restoring once no API pod is left.
fn scaled_down(s: &mut RestoreStatus, observed: &Observed, entered: &mut Vec<RestorePhase>) -> bool {
    if let (Some(t), Some(0)) = (target(s), observed.api_pods) {
        let message = format!("no API pod left; stopping PostgreSQL to recover it to {t}; {}", kept_aside(s));
        enter(entered, s, RestorePhase::Restoring, message);
        return true;
    }
    match observed.api_pods {
        Some(0) if observed.postgres_ready => {
            let message = "backing up the database as it is, to undo the restore if it fails".to_owned();
            enter(entered, s, RestorePhase::SafetyBackup, message);
            true
        }
        Some(0) => {
            s.message = "waiting for PostgreSQL to be ready".to_owned();
            false
        }
        Some(n) => {
            s.message = format!("waiting for {n} API pod(s) to stop");
            false
        }
        None => false,
    }
}

/// SafetyBackup → Restoring once the safety backup reported its key; a failure ends it
/// untouched.
fn safety_backup_taken(s: &mut RestoreStatus, job: &JobState, entered: &mut Vec<RestorePhase>) -> bool {
    match job {
        JobState::Finished(f) if f.succeeded => match f.summary.as_ref().and_then(|r| r.key.clone()) {
            Some(key) => {
                s.safety_backup_key = Some(key.clone());
                let message = format!("safety backup {key} taken; restoring {}", s.source);
                enter(entered, s, RestorePhase::Restoring, message);
            }
            None => fail_untouched(s, "the safety backup did not report its key".to_owned(), entered),
        },
        JobState::Finished(f) => fail_untouched(s, format!("the safety backup failed: {}", f.error()), entered),
        JobState::Absent | JobState::Running => return false,
    }
    true
}

/// Restoring → ScalingUp once the restore succeeded; a failure rolls back or ends untouched.
fn restored(s: &mut RestoreStatus, job: &JobState, entered: &mut Vec<RestorePhase>) -> bool {
    match job {
        JobState::Finished(f) if f.succeeded => {
            s.restored_key = f.summary.as_ref().and_then(|r| r.key.clone());
            s.outcome = Some(RestorePhase::Completed);
            let key = s.restored_key.clone().unwrap_or_else(|| s.source.clone());
            enter(entered, s, RestorePhase::ScalingUp, format!("restored {key}; scaling the API back"));
        }
        JobState::Finished(f) => restore_failed(s, f, entered),
        JobState::Absent | JobState::Running => return false,
    }
    true
}

/// Restoring (point in time) → ScalingUp once the recovery succeeded; a failure moves the data
/// directory back or ends untouched. Waits for PostgreSQL's pod to be gone before its Job is
/// asked for.
fn recovered(s: &mut RestoreStatus, t: Timestamp, observed: &Observed, entered: &mut Vec<RestorePhase>) -> bool {
    match &observed.restore {
        JobState::Finished(f) if f.succeeded => {
            let summary = f.summary.as_ref();
            s.restored_key = summary.and_then(|r| r.key.clone());
            s.outcome = Some(RestorePhase::Completed);
            let base = s.restored_key.as_deref().map(|k| format!(" from base backup {k}")).unwrap_or_default();
            let segments = summary
                .and_then(|r| r.recovered()?.wal_segments)
                .map(|n| format!(" ({n} WAL segments replayed)"))
                .unwrap_or_default();
            let message = format!("recovered to {t}{base}{segments}; starting PostgreSQL and scaling the API back");
            enter(entered, s, RestorePhase::ScalingUp, message);
            true
        }
        JobState::Finished(f) => {
            recovery_failed(s, t, f, entered);
            true
        }
        JobState::Running => {
            s.message = format!("recovering PostgreSQL's data directory to {t}");
            false
        }
        JobState::Absent => {
            // Counted from the reconcile after Restoring was entered on.
            if let Some(pods) = observed.postgres_pods {
                let now = match pods {
                    0 => format!("PostgreSQL is stopped; starting the recovery to {t}"),
                    _ => format!("waiting for PostgreSQL's pod to stop before recovering to {t}"),
                };
                s.message = format!("{now}; {}", kept_aside(s));
            }
            false
        }
    }
}

/// What stands in for the safety backup of a point-in-time restore.
fn kept_aside(s: &RestoreStatus) -> String {
    format!(
        "no logical safety backup: the rollback is PostgreSQL's data directory as it is, kept aside on \
         its volume as pgdata.before-{}",
        s.request_id
    )
}

/// A point-in-time restore that failed: untouched when its pod says the data directory was not
/// swapped yet, else the directory kept aside is moved back.
fn recovery_failed(s: &mut RestoreStatus, t: Timestamp, f: &Finished, entered: &mut Vec<RestorePhase>) {
    let error = f.error();
    if f.summary.as_ref().and_then(|r| r.database_changed) == Some(false) {
        let cause = format!("the point-in-time restore to {t} failed before changing the database: {error}");
        fail_untouched(s, cause, entered);
        return;
    }
    // Only a pod that says so left the data directory in place; silence means it may be swapped.
    let how = match f.summary.as_ref().and_then(|r| r.database_changed) {
        Some(true) => "after swapping the data directory",
        _ => "without saying whether it swapped the data directory",
    };
    s.error = Some(format!("the point-in-time restore to {t} failed {how}: {error}"));
    s.phase = RestorePhase::RollingBack;
    s.message = format!(
        "the point-in-time restore to {t} failed {how} ({error}); moving the data directory kept aside \
         (pgdata.before-{}) back, PostgreSQL still stopped",
        s.request_id
    );
    entered.push(RestorePhase::RollingBack);
}

/// RollingBack (point in time) → ScalingUp once the data directory kept aside was moved back,
/// saying whether the data is as before.
fn moved_back(s: &mut RestoreStatus, job: &JobState, entered: &mut Vec<RestorePhase>) -> bool {
    let JobState::Finished(f) = job else { return false };
    let cause = s.error.clone().unwrap_or_default();
    let kept = format!("pgdata.before-{}", s.request_id);
    let message = if f.succeeded {
        format!("{cause}; the data directory kept aside ({kept}) was moved back: the data is as before")
    } else {
        format!(
            "{cause}; moving the data directory kept aside back failed too: {}. PostgreSQL's volume still \
             holds it as {kept}: move it back to pgdata by hand while PostgreSQL is stopped",
            f.error()
        )
    };
    s.error = Some(message.clone());
    s.outcome = Some(RestorePhase::Failed);
    enter(entered, s, RestorePhase::ScalingUp, format!("{message}; starting PostgreSQL and scaling the API back"));
    true
}

/// RollingBack → ScalingUp once the safety backup's restore finished, saying whether the data
/// is as before.
fn rolled_back(s: &mut RestoreStatus, job: &JobState, entered: &mut Vec<RestorePhase>) -> bool {
    let JobState::Finished(f) = job else { return false };
    let cause = s.error.clone().unwrap_or_default();
    let key = s.safety_backup_key.clone().unwrap_or_default();
    let message = if f.succeeded {
        format!("{cause}; the safety backup {key} was restored: the data is as before")
    } else {
        format!(
            "{cause}; restoring the safety backup {key} failed too: {}. The database may be \
             incomplete: restore {key} with a new requestId",
            f.error()
        )
    };
    s.error = Some(message.clone());
    s.outcome = Some(RestorePhase::Failed);
    enter(entered, s, RestorePhase::ScalingUp, format!("{message}; scaling the API back"));
    true
}

/// ScalingUp → Completed or Failed once the API is back at its recorded size (and, after a
/// point-in-time restore, PostgreSQL is ready again).
fn scaled_up(s: &mut RestoreStatus, observed: &Observed, entered: &mut Vec<RestorePhase>) {
    if observed.ready_replicas < s.recorded_replicas || (target(s).is_some() && !observed.postgres_ready) {
        return;
    }
    let outcome = s.outcome.unwrap_or(RestorePhase::Completed);
    let restored = match (target(s), &s.restored_key) {
        (Some(t), Some(key)) => format!("recovered to {t} from base backup {key}"),
        (Some(t), None) => format!("recovered to {t}"),
        (None, key) => format!("restored {}", key.clone().unwrap_or_else(|| s.source.clone())),
    };
    let message = match outcome {
        RestorePhase::Completed => format!("{restored}; the API is back at {} replicas", s.recorded_replicas),
        _ => s.error.clone().unwrap_or_else(|| "failed".to_owned()),
    };
    s.finished_at = Some(Time(observed.now));
    enter(entered, s, outcome, message);
}

fn enter(entered: &mut Vec<RestorePhase>, s: &mut RestoreStatus, phase: RestorePhase, message: String) {
    s.phase = phase;
    s.message = message;
    entered.push(phase);
}

/// A failure before the database was touched: scale back, report Failed.
fn fail_untouched(s: &mut RestoreStatus, cause: String, entered: &mut Vec<RestorePhase>) {
    let message = format!("{cause}; the database was not touched");
    s.error = Some(message.clone());
    s.outcome = Some(RestorePhase::Failed);
    s.phase = RestorePhase::ScalingUp;
    s.message = format!("{message}; scaling the API back");
    entered.push(RestorePhase::ScalingUp);
}

fn restore_failed(s: &mut RestoreStatus, f: &Finished, entered: &mut Vec<RestorePhase>) {
    let error = f.error();
    // Only a pod that says so left the database as it was; silence means it may have changed.
    if f.summary.as_ref().and_then(|r| r.database_changed) == Some(false) {
        fail_untouched(s, format!("the restore failed before changing the database: {error}"), entered);
        return;
    }
    let key = s.safety_backup_key.clone().unwrap_or_default();
    s.error = Some(format!("the restore failed after changing the database: {error}"));
    s.phase = RestorePhase::RollingBack;
    s.message = format!("the restore failed after changing the database ({error}); restoring the safety backup {key}");
    entered.push(RestorePhase::RollingBack);
}

/// How to run in a phase.
fn directives(status: Option<&RestoreStatus>, observed: &Observed) -> Directives {
    let Some(s) = status else { return Directives::default() };
    let request_id = s.request_id.clone();
    if let Some(t) = target(s)
        && let Some(directives) = point_in_time_directives(s, t, observed)
    {
        return directives;
    }
    match s.phase {
        RestorePhase::Pending | RestorePhase::Completed | RestorePhase::Failed | RestorePhase::Skipped => {
            Directives::default()
        }
        // The API keeps running as the spec says while the ledger is asked.
        RestorePhase::Claiming => Directives {
            jobs: vec![JobRequest::ClaimRestore { request_id, source: s.source.clone(), point_in_time: target(s) }],
            ..Directives::default()
        },
        RestorePhase::ScalingDown => Directives { scale: Scale::Zero, suspend_backups: true, ..Directives::default() },
        RestorePhase::SafetyBackup => Directives {
            scale: Scale::Zero,
            suspend_backups: true,
            jobs: vec![JobRequest::SafetyBackup { request_id }],
            ..Directives::default()
        },
        RestorePhase::Restoring => Directives {
            scale: Scale::Zero,
            suspend_backups: true,
            jobs: vec![JobRequest::Restore { request_id, source: s.source.clone() }],
            ..Directives::default()
        },
        RestorePhase::RollingBack => Directives {
            scale: Scale::Zero,
            suspend_backups: true,
            jobs: vec![JobRequest::Rollback { request_id, key: s.safety_backup_key.clone().unwrap_or_default() }],
            ..Directives::default()
        },
        RestorePhase::ScalingUp => Directives {
            scale: Scale::Recorded { replicas: s.recorded_replicas, autoscaling: s.recorded_autoscaling },
            ..Directives::default()
        },
    }
}

/// How a point-in-time restore runs while PostgreSQL's data directory is being replaced: the
/// API and PostgreSQL at 0, and the Job once no PostgreSQL pod is left (or already created, so
/// that it stays asked for). None in the other phases, which run as any restore's.
fn point_in_time_directives(s: &RestoreStatus, target: Timestamp, observed: &Observed) -> Option<Directives> {
    let request_id = s.request_id.clone();
    let (job, state) = match s.phase {
        RestorePhase::Restoring => (JobRequest::PointInTimeRestore { request_id, target }, &observed.restore),
        RestorePhase::RollingBack => (JobRequest::PointInTimeRollback { request_id }, &observed.rollback),
        _ => return None,
    };
    let stopped = observed.postgres_pods == Some(0) || *state != JobState::Absent;
    Some(Directives {
        scale: Scale::Zero,
        suspend_backups: true,
        stop_postgres: true,
        jobs: if stopped { vec![job] } else { Vec::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::read::jobs::{PointInTimeReport, Summary};
    use crate::controller::vocabulary::JobKind;
    use k8s_openapi::jiff::Timestamp;

    fn spec(restore: Option<(&str, &str)>) -> SecurityGuardSpec {
        let mut spec: SecurityGuardSpec = serde_json::from_value(serde_json::json!({
            "image": "a:1",
            "secrets": {"jwtSecret": {"name": "j", "key": "k"}},
            "backup": {"s3": {"bucket": "b", "credentialsSecret": "s3"}},
        }))
        .expect("spec");
        spec.restore = restore.map(|(id, source)| RestoreSpec { request_id: id.into(), source: source.into() });
        spec
    }

    fn observed() -> Observed {
        Observed {
            now: Timestamp::from_second(1_000).expect("time"),
            deployment_replicas: Some(5),
            ready_replicas: 5,
            autoscaler: Some(RecordedAutoscaling { min_replicas: 4, max_replicas: 9 }),
            api_pods: None,
            postgres_ready: true,
            postgres_pods: None,
            claim: JobState::Absent,
            safety_backup: JobState::Absent,
            restore: JobState::Absent,
            rollback: JobState::Absent,
        }
    }

    fn finished(kind: JobKind, succeeded: bool, summary: Summary) -> JobState {
        JobState::Finished(Finished {
            job: format!("job-{}", kind.as_str()),
            kind,
            request: Some("r1".into()),
            at: Timestamp::from_second(2_000).expect("time"),
            succeeded,
            summary: Some(Box::new(summary)),
        })
    }

    /// A restore Job whose pod was killed: failed, no summary.
    fn killed_restore() -> JobState {
        JobState::Finished(Finished {
            job: "restore".into(),
            kind: JobKind::Restore,
            request: Some("r1".into()),
            at: Timestamp::from_second(2_000).expect("time"),
            succeeded: false,
            summary: None,
        })
    }

    /// Runs plan steps from `spec` with `observe` adjusting what is seen at each step.
    fn step(spec: &SecurityGuardSpec, status: Option<&RestoreStatus>, o: &Observed) -> Plan {
        plan(spec, status, o)
    }

    #[test]
    fn records_before_anything_changes_then_walks_to_completed() {
        let spec = spec(Some(("r1", "latest")));
        let mut o = observed();
        let p = step(&spec, None, &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Pending);
        assert_eq!(s.recorded_replicas, 5);
        assert_eq!(s.recorded_autoscaling, Some(RecordedAutoscaling { min_replicas: 4, max_replicas: 9 }));
        assert_eq!(p.directives.scale, Scale::Spec, "nothing scales before the recording is persisted");

        // The claim in the ledger comes first, with the API as the spec says.
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Claiming);
        assert_eq!((p.directives.scale, p.directives.suspend_backups), (Scale::Spec, false));
        assert_eq!(
            p.directives.jobs,
            [JobRequest::ClaimRestore { request_id: "r1".into(), source: "latest".into(), point_in_time: None }]
        );
        o.claim = JobState::Running;
        assert_eq!(step(&spec, Some(&s), &o).status.as_ref(), Some(&s), "waits for the verdict");

        o.claim = claim(ClaimVerdict::Claimed, true, None);
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::ScalingDown);
        assert_eq!((p.directives.scale, p.directives.suspend_backups), (Scale::Zero, true));
        assert!(p.directives.jobs.is_empty());

        o.api_pods = Some(2);
        let s = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!(s.phase, RestorePhase::ScalingDown);
        assert!(s.message.contains("2 API pod"), "{}", s.message);

        o.api_pods = Some(0);
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::SafetyBackup);
        assert_eq!(p.directives.jobs, [JobRequest::SafetyBackup { request_id: "r1".into() }]);

        o.safety_backup =
            finished(JobKind::SafetyBackup, true, Summary { key: Some("safe.pgdump".into()), ..Summary::default() });
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Restoring);
        assert_eq!(s.safety_backup_key.as_deref(), Some("safe.pgdump"));
        assert_eq!(p.directives.jobs, [JobRequest::Restore { request_id: "r1".into(), source: "latest".into() }]);

        o.restore = finished(JobKind::Restore, true, Summary { key: Some("k.pgdump".into()), ..Summary::default() });
        o.ready_replicas = 0;
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::ScalingUp);
        assert_eq!(
            p.directives.scale,
            Scale::Recorded {
                replicas: 5,
                autoscaling: Some(RecordedAutoscaling { min_replicas: 4, max_replicas: 9 })
            }
        );
        assert!(!p.directives.suspend_backups);

        o.ready_replicas = 5;
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Completed);
        assert_eq!(s.restored_key.as_deref(), Some("k.pgdump"));
        assert!(s.finished_at.is_some());
        assert_eq!(p.directives, Directives::default());

        // The same request again changes nothing; a new one starts over.
        assert_eq!(step(&spec, Some(&s), &o).status.as_ref(), Some(&s));
        let again = step(&self::spec(Some(("r2", "latest"))), Some(&s), &o).status.expect("status");
        assert_eq!((again.request_id.as_str(), again.phase), ("r2", RestorePhase::Pending));
    }

    /// A finished claim Job with its verdict; `restored`: the record's restored key.
    fn claim(verdict: ClaimVerdict, same_guard: bool, restored: Option<&str>) -> JobState {
        let report = ClaimReport {
            verdict,
            same_guard,
            claimed_at: Timestamp::from_second(1_764_061_200).expect("time"),
            claimed_by: if same_guard { "uid-1".into() } else { "uid-0".into() },
            restored_key: restored.map(str::to_owned),
            restored_at: restored.map(|_| Timestamp::from_second(1_764_061_500).expect("time")),
        };
        finished(JobKind::ClaimRestore, true, Summary { claim: Some(Box::new(report)), ..Summary::default() })
    }

    #[test]
    fn a_refused_claim_ends_skipped_without_touching_anything() {
        let spec = spec(Some(("r1", "latest")));
        let mut o = observed();
        o.claim = claim(ClaimVerdict::Refused, false, Some("b/prod/sg/20261125T080000.000Z.pgdump"));
        let p = step(&spec, Some(&in_phase(RestorePhase::Claiming)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Skipped);
        assert_eq!(p.entered, [RestorePhase::Skipped]);
        assert_eq!(p.directives, Directives::default(), "nothing scaled, nothing suspended, no Job");
        assert!(!p.active());
        assert_eq!(s.finished_at, Some(Time(o.now)));
        assert_eq!(s.error, None, "not a failure");
        assert_eq!(
            s.message,
            "request r1 was already handled at 2025-11-25T09:00:00Z (restored \
             b/prod/sg/20261125T080000.000Z.pgdump at 2025-11-25T09:05:00Z, for an earlier SecurityGuard of \
             this name); not repeated: set a new requestId to restore again"
        );
        // Re-applying the same spec changes nothing; a new requestId starts over.
        assert_eq!(step(&spec, Some(&s), &o).status.as_ref(), Some(&s));
        let again = step(&self::spec(Some(("r2", "latest"))), Some(&s), &o).status.expect("status");
        assert_eq!((again.request_id.as_str(), again.phase), ("r2", RestorePhase::Pending));
    }

    #[test]
    fn a_claim_without_a_restored_backup_says_so() {
        let mut o = observed();
        o.claim = claim(ClaimVerdict::Refused, false, None);
        let s = step(&spec(Some(("r1", "latest"))), Some(&in_phase(RestorePhase::Claiming)), &o).status.expect("s");
        assert_eq!(s.phase, RestorePhase::Skipped);
        assert!(
            s.message.contains("claimed for an earlier SecurityGuard of this name, which recorded no restored backup"),
            "{}",
            s.message
        );
    }

    #[test]
    fn the_same_object_holding_the_claim_resumes() {
        let mut o = observed();
        o.claim = claim(ClaimVerdict::Resumed, true, None);
        let p = step(&spec(Some(("r1", "latest"))), Some(&in_phase(RestorePhase::Claiming)), &o);
        let s = p.status.expect("status");
        assert_eq!(s.phase, RestorePhase::ScalingDown);
        assert!(s.message.contains("resumed"), "{}", s.message);
        assert_eq!(p.directives.scale, Scale::Zero);
    }

    #[test]
    fn a_claim_that_cannot_be_made_fails_before_anything_changes() {
        let spec = spec(Some(("r1", "latest")));
        let mut o = observed();
        o.claim = finished(
            JobKind::ClaimRestore,
            false,
            Summary { error: Some("restore ledger: S3 GetObject failed: AccessDenied".into()), ..Summary::default() },
        );
        let p = step(&spec, Some(&in_phase(RestorePhase::Claiming)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!((s.phase, s.outcome), (RestorePhase::Failed, Some(RestorePhase::Failed)));
        assert_eq!(p.entered, [RestorePhase::Failed], "straight to Failed: nothing to scale back");
        assert_eq!(p.directives, Directives::default());
        assert!(s.message.contains("AccessDenied") && s.message.contains("nothing was changed"), "{}", s.message);
        assert!(s.finished_at.is_some());

        // A Job that succeeded without a verdict is no claim either.
        o.claim = finished(JobKind::ClaimRestore, true, Summary::default());
        let s = step(&spec, Some(&in_phase(RestorePhase::Claiming)), &o).status.expect("status");
        assert_eq!(s.phase, RestorePhase::Failed);
        assert!(s.message.contains("no verdict"), "{}", s.message);
    }

    /// What is seen while the API is at zero.
    fn scaled_down() -> Observed {
        Observed { ready_replicas: 0, api_pods: Some(0), ..observed() }
    }

    fn in_phase(phase: RestorePhase) -> RestoreStatus {
        let mut s = step(&spec(Some(("r1", "latest"))), None, &observed()).status.expect("status");
        s.phase = phase;
        s.safety_backup_key = Some("safe.pgdump".into());
        s
    }

    #[test]
    fn a_failure_before_the_database_changed_scales_back_and_fails() {
        let spec = spec(Some(("r1", "latest")));
        let mut o = scaled_down();
        o.restore = finished(
            JobKind::Restore,
            false,
            Summary { error: Some("SHA-256 mismatch".into()), database_changed: Some(false), ..Summary::default() },
        );
        let s = step(&spec, Some(&in_phase(RestorePhase::Restoring)), &o).status.expect("status");
        assert_eq!(s.phase, RestorePhase::ScalingUp, "scaling back toward Failed");
        assert_eq!(s.outcome, Some(RestorePhase::Failed));
        o.ready_replicas = 5;
        let s = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!(s.phase, RestorePhase::Failed);
        assert!(s.message.contains("SHA-256 mismatch") && s.message.contains("not touched"), "{}", s.message);
    }

    #[test]
    fn a_failure_after_the_database_changed_rolls_back() {
        let spec = spec(Some(("r1", "latest")));
        let mut o = scaled_down();
        // No summary at all (the pod was killed): the database may have changed.
        o.restore = killed_restore();
        let p = step(&spec, Some(&in_phase(RestorePhase::Restoring)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::RollingBack);
        assert_eq!(p.directives.scale, Scale::Zero);
        assert_eq!(p.directives.jobs, [JobRequest::Rollback { request_id: "r1".into(), key: "safe.pgdump".into() }]);

        o.rollback = finished(JobKind::Rollback, true, Summary::default());
        let s = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!((s.phase, s.outcome), (RestorePhase::ScalingUp, Some(RestorePhase::Failed)));
        o.ready_replicas = 5;
        let s = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!(s.phase, RestorePhase::Failed);
        assert!(s.message.contains("safe.pgdump was restored"), "{}", s.message);
    }

    #[test]
    fn a_failed_safety_backup_never_touches_the_database() {
        let spec = spec(Some(("r1", "latest")));
        let mut o = scaled_down();
        o.safety_backup =
            finished(JobKind::SafetyBackup, false, Summary { error: Some("S3 down".into()), ..Summary::default() });
        let p = step(&spec, Some(&in_phase(RestorePhase::SafetyBackup)), &o);
        let s = p.status.expect("status");
        assert_eq!((s.phase, s.outcome), (RestorePhase::ScalingUp, Some(RestorePhase::Failed)));
        assert!(p.directives.jobs.is_empty(), "no restore Job");
        assert!(s.message.contains("S3 down"), "{}", s.message);
    }

    #[test]
    fn a_restore_removed_from_the_spec_midway_still_finishes() {
        let o = observed();
        let p = step(&spec(None), Some(&in_phase(RestorePhase::Restoring)), &o);
        assert_eq!(p.status.map(|s| s.phase), Some(RestorePhase::Restoring));
        assert_eq!(p.directives.scale, Scale::Zero);
    }

    const T: &str = "2026-11-30T12:00:00Z";

    /// A spec with point-in-time recovery, asking for `source`; `external`: PostgreSQL is not
    /// the operator's.
    fn pitr_spec(source: &str, external: bool) -> SecurityGuardSpec {
        let mut spec = spec(Some(("r1", source)));
        spec.backup.as_mut().expect("backup").point_in_time = Some(crate::crd::PointInTimeSpec::default());
        if external {
            spec.postgres = serde_json::from_value(
                serde_json::json!({"external": {"connectionSecret": {"name": "db", "key": "url"}}}),
            )
            .expect("external");
        }
        spec
    }

    fn t() -> Timestamp {
        T.parse().expect("time")
    }

    #[test]
    fn before_a_time_is_a_point_in_time_restore_only_with_the_archive_and_the_managed_postgres() {
        let o = observed();
        let recorded = |spec: &SecurityGuardSpec| step(spec, None, &o).status.expect("status");
        let pitr = recorded(&pitr_spec(&format!("before:{T}"), false));
        assert_eq!(pitr.point_in_time, Some(Time(t())));
        assert!(pitr.message.contains(&format!("a point-in-time restore to {T}")), "{}", pitr.message);
        // An offset is the same instant.
        let offset = recorded(&pitr_spec("before:2026-11-30T14:00:00+02:00", false));
        assert_eq!(offset.point_in_time, Some(Time(t())));
        // Otherwise unchanged: the newest dump before the time, or not a time at all.
        assert_eq!(recorded(&pitr_spec(&format!("before:{T}"), true)).point_in_time, None);
        assert_eq!(recorded(&spec(Some(("r1", &format!("before:{T}"))))).point_in_time, None);
        assert_eq!(recorded(&pitr_spec("latest", false)).point_in_time, None);
    }

    /// A point-in-time restore of `r1` in `phase`.
    fn pitr_in_phase(phase: RestorePhase) -> RestoreStatus {
        let mut s = step(&pitr_spec(&format!("before:{T}"), false), None, &observed()).status.expect("status");
        s.phase = phase;
        s
    }

    #[test]
    fn a_point_in_time_restore_claims_with_its_time_and_skips_the_safety_backup() {
        let spec = pitr_spec(&format!("before:{T}"), false);
        let mut o = observed();
        let p = step(&spec, Some(&pitr_in_phase(RestorePhase::Pending)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Claiming);
        assert!(s.message.contains(&format!("checking that {T} is inside the recoverable window")), "{}", s.message);
        assert_eq!(
            p.directives.jobs,
            [JobRequest::ClaimRestore {
                request_id: "r1".into(),
                source: format!("before:{T}"),
                point_in_time: Some(t())
            }]
        );
        assert!(!p.directives.stop_postgres);

        o.claim = claim(ClaimVerdict::Claimed, true, None);
        o.api_pods = Some(0);
        o.postgres_ready = false;
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Restoring, "no safety backup, PostgreSQL need not be ready");
        assert_eq!(p.entered, [RestorePhase::ScalingDown, RestorePhase::Restoring]);
        assert!(s.message.contains("pgdata.before-r1"), "the rollback is the data kept aside: {}", s.message);
        assert_eq!(
            (p.directives.scale, p.directives.suspend_backups, p.directives.stop_postgres),
            (Scale::Zero, true, true)
        );
        assert!(p.directives.jobs.is_empty(), "PostgreSQL's pod was not counted yet");
        assert_eq!(s.safety_backup_key, None);
    }

    #[test]
    fn a_window_refused_by_the_claim_fails_before_anything_changes() {
        let mut o = observed();
        let error =
            "2026-11-01T00:00:00Z is outside the recoverable window: from 2026-11-29T00:00:05Z to 2026-11-30T19:40:00Z";
        o.claim = finished(JobKind::ClaimRestore, false, Summary { error: Some(error.into()), ..Summary::default() });
        let p =
            step(&pitr_spec("before:2026-11-01T00:00:00Z", false), Some(&pitr_in_phase(RestorePhase::Claiming)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Failed);
        assert_eq!(p.directives, Directives::default(), "nothing scaled, PostgreSQL untouched");
        assert!(s.message.contains("outside the recoverable window: from 2026-11-29T00:00:05Z"), "{}", s.message);
        assert!(s.message.contains("nothing was changed"), "{}", s.message);
    }

    #[test]
    fn the_point_in_time_job_waits_for_postgres_to_stop_then_recovers_and_scales_both_back() {
        let spec = pitr_spec(&format!("before:{T}"), false);
        let mut o = scaled_down();
        o.postgres_ready = false;
        o.postgres_pods = Some(1);
        let restoring = pitr_in_phase(RestorePhase::Restoring);
        let p = step(&spec, Some(&restoring), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::Restoring);
        assert!(s.message.contains("waiting for PostgreSQL's pod to stop"), "{}", s.message);
        assert!(p.directives.stop_postgres && p.directives.jobs.is_empty());

        o.postgres_pods = Some(0);
        let p = step(&spec, Some(&s), &o);
        assert_eq!(p.directives.jobs, [JobRequest::PointInTimeRestore { request_id: "r1".into(), target: t() }]);
        // Once created, the Job stays asked for whatever is counted.
        o.postgres_pods = None;
        o.restore = JobState::Running;
        let p = step(&spec, Some(&s), &o);
        assert_eq!(p.directives.jobs.len(), 1);
        assert!(p.status.expect("status").message.contains("recovering"));

        let recovery = crate::crd::PointInTimeRecovery {
            target: Time(t()),
            base_backup: Some("base/x.tar.gz".into()),
            wal_segments: Some(17),
        };
        o.restore = finished(
            JobKind::Restore,
            true,
            Summary {
                key: Some("b/prod/.pitr/sg/base/x.tar.gz".into()),
                database_changed: Some(true),
                point_in_time: Some(Box::new(PointInTimeReport::Recovery(recovery))),
                ..Summary::default()
            },
        );
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!((s.phase, s.outcome), (RestorePhase::ScalingUp, Some(RestorePhase::Completed)));
        assert!(
            s.message.contains(&format!(
                "recovered to {T} from base backup b/prod/.pitr/sg/base/x.tar.gz (17 WAL segments replayed)"
            )),
            "{}",
            s.message
        );
        assert!(!p.directives.stop_postgres, "PostgreSQL comes back");
        assert!(matches!(p.directives.scale, Scale::Recorded { replicas: 5, .. }));

        // Completed once the API is back and PostgreSQL ready.
        o.ready_replicas = 5;
        let waiting = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!(waiting.phase, RestorePhase::ScalingUp, "PostgreSQL is not ready yet");
        o.postgres_ready = true;
        let done = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!(done.phase, RestorePhase::Completed);
        assert!(done.message.starts_with(&format!("recovered to {T} from base backup")), "{}", done.message);
    }

    #[test]
    fn a_point_in_time_restore_that_failed_before_the_swap_ends_untouched() {
        let spec = pitr_spec(&format!("before:{T}"), false);
        let mut o = Observed { postgres_pods: Some(0), ..scaled_down() };
        o.restore = finished(
            JobKind::Restore,
            false,
            Summary {
                error: Some("WAL segment 0000000100000000000000A7 is missing".into()),
                database_changed: Some(false),
                ..Summary::default()
            },
        );
        let p = step(&spec, Some(&pitr_in_phase(RestorePhase::Restoring)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!((s.phase, s.outcome), (RestorePhase::ScalingUp, Some(RestorePhase::Failed)));
        assert!(!p.directives.stop_postgres && p.directives.jobs.is_empty(), "PostgreSQL and the API scale back");
        assert!(s.message.contains("is missing") && s.message.contains("not touched"), "{}", s.message);
        o.ready_replicas = 5;
        let s = step(&spec, Some(&s), &o).status.expect("status");
        assert_eq!(s.phase, RestorePhase::Failed);
    }

    #[test]
    fn a_point_in_time_restore_that_failed_after_the_swap_moves_the_data_back_with_postgres_stopped() {
        let spec = pitr_spec(&format!("before:{T}"), false);
        let mut o = Observed { postgres_pods: Some(0), ..scaled_down() };
        o.restore = finished(
            JobKind::Restore,
            false,
            Summary { error: Some("row counts differ".into()), database_changed: Some(true), ..Summary::default() },
        );
        let p = step(&spec, Some(&pitr_in_phase(RestorePhase::Restoring)), &o);
        let s = p.status.clone().expect("status");
        assert_eq!(s.phase, RestorePhase::RollingBack);
        assert_eq!(p.entered, [RestorePhase::RollingBack]);
        assert!(p.directives.stop_postgres && p.directives.scale == Scale::Zero);
        assert_eq!(p.directives.jobs, [JobRequest::PointInTimeRollback { request_id: "r1".into() }]);
        assert!(s.message.contains("pgdata.before-r1"), "{}", s.message);

        o.rollback = finished(JobKind::Rollback, true, Summary::default());
        let p = step(&spec, Some(&s), &o);
        let s = p.status.clone().expect("status");
        assert_eq!((s.phase, s.outcome), (RestorePhase::ScalingUp, Some(RestorePhase::Failed)));
        assert!(!p.directives.stop_postgres);
        assert!(s.message.contains("was moved back: the data is as before"), "{}", s.message);

        // A pod killed without a word may have swapped: moved back all the same.
        o.restore = killed_restore();
        o.rollback = JobState::Absent;
        let p = step(&spec, Some(&pitr_in_phase(RestorePhase::Restoring)), &o);
        let killed = p.status.clone().expect("status");
        assert_eq!(killed.phase, RestorePhase::RollingBack);
        assert!(killed.message.contains("without saying whether it swapped"), "{}", killed.message);
        assert_eq!(p.directives.jobs, [JobRequest::PointInTimeRollback { request_id: "r1".into() }]);

        // A rollback that fails too says where the data is.
        o.rollback =
            finished(JobKind::Rollback, false, Summary { error: Some("rename: busy".into()), ..Summary::default() });
        let mut rolling = pitr_in_phase(RestorePhase::RollingBack);
        rolling.error = Some("the point-in-time restore failed".into());
        let s = step(&spec, Some(&rolling), &o).status.expect("status");
        assert!(s.message.contains("rename: busy") && s.message.contains("by hand"), "{}", s.message);
    }
}
