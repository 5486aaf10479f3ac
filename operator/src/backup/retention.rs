//! Retention: which backups to delete after a successful backup (pure), and deleting them.
//!
//! Anything older than the retention period goes, except the newest `keep_last` good backups,
//! which stay whatever their age: a store never loses its last good backups because backups
//! stopped working for a while.

use jiff::{SignedDuration, Timestamp};

use super::catalog::{Backup, State};
use super::manifest;
use super::store::{self, Store};

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Backups older than this many days are deleted...
    pub max_age_days: u32,
    /// ...except the newest this many good ones.
    pub keep_last: usize,
}

/// The backups to delete among `backups` at `now`, oldest first.
pub fn select(backups: &[Backup], now: Timestamp, policy: Policy) -> Vec<&Backup> {
    let age = SignedDuration::from_hours(24 * i64::from(policy.max_age_days));
    let Ok(cutoff) = now.checked_sub(age) else { return Vec::new() };
    let mut newest_first: Vec<&Backup> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.key.cmp(&a.key)));
    let protected: Vec<&str> =
        newest_first.iter().filter(|b| b.state == State::Good).take(policy.keep_last).map(|b| b.key.as_str()).collect();
    let mut doomed: Vec<&Backup> =
        newest_first.into_iter().filter(|b| b.time < cutoff && !protected.contains(&b.key.as_str())).collect();
    doomed.reverse();
    doomed
}

/// Deletes each backup: its manifest first, so that a backup half deleted is never listed as good,
/// then what is stored with it (its config backup), then the dump.
pub async fn delete(store: &Store, doomed: &[&Backup]) -> Result<usize, store::Error> {
    for backup in doomed {
        tracing::info!(
            tier = store.tier(),
            key = %backup.key,
            time = %backup.time,
            state = %backup.state,
            "retention: deleting backup"
        );
        if backup.has_manifest_object {
            store.delete(&manifest::manifest_key(&backup.key)).await?;
        }
        for companion in &backup.companions {
            store.delete(companion).await?;
        }
        if backup.size.is_some() {
            store.delete(&backup.key).await?;
        }
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::tests::manifest;

    fn backup(key: &str, at: &str, state: State) -> Backup {
        Backup {
            key: key.into(),
            time: at.parse().expect("time"),
            size: Some(1),
            manifest: (state == State::Good).then(|| manifest(key, 1, at)),
            has_manifest_object: state == State::Good,
            companions: Vec::new(),
            state,
        }
    }

    fn keys(doomed: &[&Backup]) -> Vec<String> {
        doomed.iter().map(|b| b.key.clone()).collect()
    }

    fn now() -> Timestamp {
        "2026-11-25T00:00:00Z".parse().expect("time")
    }

    #[test]
    fn deletes_what_is_older_than_the_period() {
        let backups = vec![
            backup("d100", "2026-08-17T00:00:00Z", State::Good),
            backup("d91", "2026-08-26T00:00:00Z", State::Good),
            backup("d90", "2026-08-27T00:00:00Z", State::Good),
            backup("d10", "2026-11-15T00:00:00Z", State::Good),
            backup("d2", "2026-11-23T00:00:00Z", State::Good),
            backup("d1", "2026-11-24T00:00:00Z", State::Good),
        ];
        let doomed = select(&backups, now(), Policy { max_age_days: 90, keep_last: 3 });
        // Exactly 90 days old is not older than 90 days.
        assert_eq!(keys(&doomed), vec!["d100", "d91"]);
    }

    #[test]
    fn never_deletes_the_newest_good_ones_whatever_their_age() {
        // Backups stopped working 200 days ago: the last 3 good ones stay, failures around them go.
        let backups = vec![
            backup("g1", "2026-01-01T00:00:00Z", State::Good),
            backup("g2", "2026-01-02T00:00:00Z", State::Good),
            backup("g3", "2026-01-03T00:00:00Z", State::Good),
            backup("i4", "2026-01-04T00:00:00Z", State::Incomplete),
            backup("g5", "2026-01-05T00:00:00Z", State::Good),
            backup("x6", "2026-01-06T00:00:00Z", State::Inconsistent("bad".into())),
        ];
        let doomed = select(&backups, now(), Policy { max_age_days: 30, keep_last: 3 });
        assert_eq!(keys(&doomed), vec!["g1", "i4", "x6"]);
    }

    #[test]
    fn keeps_everything_young_and_nothing_listed_twice() {
        let backups = vec![
            backup("a", "2026-11-20T00:00:00Z", State::Good),
            backup("b", "2026-11-21T00:00:00Z", State::Incomplete),
        ];
        assert!(select(&backups, now(), Policy { max_age_days: 30, keep_last: 1 }).is_empty());
        assert!(select(&[], now(), Policy { max_age_days: 0, keep_last: 3 }).is_empty());
        // Age 0: everything older than now goes, but the floor holds.
        let doomed = select(&backups, now(), Policy { max_age_days: 0, keep_last: 1 });
        assert_eq!(keys(&doomed), vec!["b"]);
    }
}
