//! The recoverable window: from which base backups, through which unbroken chain of WAL
//! segments, up to which heartbeat a point-in-time restore can go.
//!
//! A base backup `B` recovers any time from just after it ended to just before the newest
//! heartbeat reachable from it: every segment from `B`'s start onwards must be in the bucket (the
//! file of the timeline recovery would read, see [`History::segment`]), up to the segment of the
//! marker's heartbeat, the last of which may be the `.partial` one. A missing segment cuts the
//! chain: behind it, the window ends at the newest heartbeat stored in the segments before the
//! gap; a base backup that needs the missing segment to become consistent recovers nothing.
//! Nothing is reported recoverable that is not.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::layout::{BaseManifest, Heartbeat, MAX_RECORD_BYTES, Marker};
use super::wal::{History, Lsn, Segment, WalFile};
use crate::backup::store::{self, ObjectInfo, S3Store, Store};

/// How far back from a gap the stored heartbeats are looked up.
const HEARTBEAT_LOOKBACK: u64 = 16;

/// What the bucket holds, as the window needs it.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    /// Complete segments stored.
    pub segments: BTreeSet<Segment>,
    /// `.partial` segments stored.
    pub partials: BTreeSet<Segment>,
    /// Timelines with a history file stored.
    pub histories: BTreeSet<u32>,
    /// The base backups with a readable manifest, oldest first.
    pub bases: Vec<BaseManifest>,
    /// Base backups whose manifest is missing or unreadable (key, why).
    pub broken_bases: Vec<(String, String)>,
    /// The marker, when written.
    pub marker: Option<Marker>,
    /// The history of the newest timeline.
    pub history: History,
}

impl Archive {
    /// Whether recovery finds segment `number` (complete; or, for the last, partial).
    fn has(&self, number: u64, last: u64) -> bool {
        let file = self.history.segment(number);
        self.segments.contains(&file) || (number == last && self.partials.contains(&file))
    }

    /// The segment holding the newest WAL position worth reaching (the marker's heartbeat).
    fn last_segment(&self) -> Option<u64> {
        let beat = self.marker.as_ref()?.heartbeat?;
        Some(Lsn(beat.lsn.0.saturating_sub(1)).segment())
    }
}

/// Where the chain of a base backup breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Unbroken up to the marker's heartbeat.
    Whole,
    /// Segment `.0` is missing.
    Gap(Segment),
}

/// The chain of each base backup (index into `archive.bases`); a base backup off the newest
/// timeline's history is left out.
pub fn chains(archive: &Archive) -> Vec<(usize, Chain)> {
    let Some(last) = archive.last_segment() else { return Vec::new() };
    archive
        .bases
        .iter()
        .enumerate()
        .filter(|(_, b)| archive.history.holds(b.timeline, b.start_lsn))
        .map(|(i, b)| {
            let first = b.start_lsn.segment();
            let gap = (first..=last).find(|n| !archive.has(*n, last)).map(|n| archive.history.segment(n));
            (i, gap.map_or(Chain::Whole, Chain::Gap))
        })
        .collect()
}

/// The segments before a gap whose heartbeats end the window there, newest first.
pub fn heartbeat_lookups(archive: &Archive, gap: Segment) -> Vec<Segment> {
    (gap.number.saturating_sub(HEARTBEAT_LOOKBACK)..gap.number)
        .rev()
        .map(|n| archive.history.segment(n))
        .filter(|s| archive.segments.contains(s))
        .collect()
}

/// What one base backup can recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The base backup.
    pub base: BaseManifest,
    /// The earliest target, whole seconds.
    pub first: Timestamp,
    /// The latest target, whole seconds.
    pub last: Timestamp,
    /// The heartbeat that ends it (recovery stops at or before it).
    pub end: Heartbeat,
}

/// The recoverable window, as reported in summaries, listings and the status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// The earliest time a point-in-time restore can reach (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_recoverable: Option<Timestamp>,
    /// The latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recoverable: Option<Timestamp>,
    /// Base backups stored with a manifest.
    pub base_backups: usize,
    /// Every change committed before this time was archived (the archiver's last pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_through: Option<Timestamp>,
    /// Why the window is shorter than the archive, or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Window {
    /// `from A to B`, or why there is none.
    pub fn describe(&self) -> String {
        match (self.first_recoverable, self.last_recoverable) {
            (Some(first), Some(last)) => format!("recoverable from {first} to {last}"),
            _ => format!(
                "nothing is recoverable to a point in time{}",
                self.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        }
    }
}

/// The ranges of each usable base backup, oldest base first, from the chains and the heartbeats
/// found before gaps (`before_gap[gap]`).
pub fn ranges(archive: &Archive, chains: &[(usize, Chain)], before_gap: &BTreeMap<Segment, Heartbeat>) -> Vec<Range> {
    let newest = archive.marker.as_ref().and_then(|m| m.heartbeat);
    let mut out = Vec::new();
    for (i, chain) in chains {
        let base = &archive.bases[*i];
        let end = match chain {
            Chain::Whole => newest,
            Chain::Gap(gap) if gap.number > base.stop_lsn.segment() => before_gap.get(gap).copied(),
            Chain::Gap(_) => None,
        };
        let Some(end) = end.filter(|e| e.lsn > base.stop_lsn) else { continue };
        let first = ceil_second(base.stopped_at);
        let last = ceil_second(end.at) - SignedDuration::from_secs(1);
        if first <= last {
            out.push(Range { base: base.clone(), first, last, end });
        }
    }
    out
}

/// The window from the ranges: the stretch of overlapping ranges that reaches the latest time.
pub fn window(archive: &Archive, ranges: &[Range], gaps: &[Segment]) -> Window {
    let mut window = Window {
        base_backups: archive.bases.len(),
        archived_through: archive.marker.as_ref().map(|m| m.through),
        ..Window::default()
    };
    let mut sorted: Vec<&Range> = ranges.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.last));
    if let Some(latest) = sorted.first() {
        let mut first = latest.first;
        let last = latest.last;
        // Extend back through ranges that overlap the stretch.
        let mut by_first: Vec<&Range> = ranges.iter().collect();
        by_first.sort_by_key(|r| std::cmp::Reverse(r.first));
        for r in by_first {
            if r.first < first && r.last >= first - SignedDuration::from_secs(1) {
                first = r.first;
            }
        }
        window.first_recoverable = Some(first);
        window.last_recoverable = Some(last);
    }
    let mut problems = Vec::new();
    if let Some(gap) = gaps.first() {
        problems.push(format!("WAL segment {} is missing from the archive", gap.name()));
    }
    if archive.marker.is_none() {
        problems.push("no WAL archived yet".to_owned());
    } else if archive.bases.is_empty() {
        problems.push("no base backup yet".to_owned());
    }
    if !problems.is_empty() {
        window.error = Some(problems.join("; "));
    }
    window
}

/// The range to restore `target` from: the newest base backup that reaches it.
pub fn choose(ranges: &[Range], target: Timestamp) -> Option<&Range> {
    ranges.iter().filter(|r| r.first <= target && target <= r.last).max_by_key(|r| r.base.stopped_at)
}

/// `time` rounded up to a whole second.
fn ceil_second(time: Timestamp) -> Timestamp {
    if time.subsec_nanosecond() == 0 { time } else { Timestamp::from_second(time.as_second() + 1).unwrap_or(time) }
}

/// Reading the archive failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket could not be read.
    #[error("reading the WAL archive failed: {0}")]
    Store(#[from] store::Error),
    /// A history file or the marker is not what the archiver writes.
    #[error("the WAL archive is damaged: {0}")]
    Damaged(String),
}

/// The archive, its ranges and its window, read from the bucket.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What is stored.
    pub archive: Archive,
    /// What each base backup can recover.
    pub ranges: Vec<Range>,
    /// The window.
    pub window: Window,
}

/// Reads the archive of `folder` and works out its window.
pub async fn load(s3: &S3Store, folder: &str) -> Result<Loaded, Error> {
    let store = Store::S3(s3.clone());
    let objects = store.list(&format!("{folder}/")).await?;
    let mut archive = index(folder, &objects);
    archive.marker = match store.read_small(&super::layout::marker_key(folder), MAX_RECORD_BYTES).await {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| Error::Damaged(format!("the marker: {e}")))?),
        Err(store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // The server's timeline, as the archiver last saw it: a timeline abandoned by a rolled-back
    // restore may have a history file, and is not followed.
    let newest = match &archive.marker {
        Some(marker) => marker.timeline,
        None => archive.histories.iter().copied().max().unwrap_or(1),
    };
    archive.history = if newest > 1 {
        let bytes = super::fetch::get_wal(s3, folder, &super::wal::history_name(newest), None)
            .await
            .map_err(|e| Error::Damaged(format!("timeline {newest}'s history: {e}")))?;
        History::parse(newest, &String::from_utf8_lossy(&bytes)).map_err(Error::Damaged)?
    } else {
        History::first()
    };
    for object in objects.iter().filter(|o| o.key.ends_with(".base.json")) {
        match store.read_small(&object.key, MAX_RECORD_BYTES).await {
            Ok(bytes) => match serde_json::from_slice::<BaseManifest>(&bytes) {
                Ok(m) if objects.iter().any(|o| o.key == m.key && o.size == m.size) => archive.bases.push(m),
                Ok(m) => archive.broken_bases.push((m.key, "its tar is missing or of another size".to_owned())),
                Err(e) => archive.broken_bases.push((object.key.clone(), e.to_string())),
            },
            Err(e) => archive.broken_bases.push((object.key.clone(), e.to_string())),
        }
    }
    archive.bases.sort_by_key(|b| b.stopped_at);
    let chains = chains(&archive);
    let gaps: BTreeSet<Segment> =
        chains.iter().filter_map(|(_, c)| if let Chain::Gap(g) = c { Some(*g) } else { None }).collect();
    let mut before_gap = BTreeMap::new();
    for gap in &gaps {
        for segment in heartbeat_lookups(&archive, *gap) {
            if let Some(beat) = super::fetch::heartbeat_of(s3, folder, segment).await? {
                before_gap.insert(*gap, beat);
                break;
            }
        }
    }
    let ranges = ranges(&archive, &chains, &before_gap);
    let gaps: Vec<Segment> = gaps.into_iter().collect();
    let window = window(&archive, &ranges, &gaps);
    Ok(Loaded { archive, ranges, window })
}

/// The window of the archive in `folder` for a summary or a listing: `None` when nothing was
/// ever archived there; a read failure is reported in `error`.
pub async fn report(s3: &S3Store, folder: &str) -> Option<Window> {
    match load(s3, folder).await {
        Ok(loaded) if loaded.archive.marker.is_none() && loaded.archive.bases.is_empty() => None,
        Ok(loaded) => Some(loaded.window),
        Err(error) => Some(Window { error: Some(error.to_string()), ..Window::default() }),
    }
}

/// The window as text for people: the window, how current the archive is, the base backups.
pub fn render(loaded: &Loaded) -> String {
    let mut text = format!("Point-in-time recovery: {}\n", loaded.window.describe_line());
    for base in loaded.archive.bases.iter().rev() {
        text.push_str(&format!(
            "  base backup {}  ended {}  timeline {}  {}\n",
            base.key,
            base.stopped_at,
            base.timeline,
            crate::backup::list::human_size(base.size)
        ));
    }
    for (key, why) in &loaded.archive.broken_bases {
        text.push_str(&format!("  base backup {key}: not usable, {why}\n"));
    }
    text
}

impl Window {
    /// The window, how current the archive is and what is wrong, on one line.
    pub fn describe_line(&self) -> String {
        let mut line = match (self.first_recoverable, self.last_recoverable) {
            (Some(first), Some(last)) => format!("recoverable from {first} to {last}"),
            _ => "nothing recoverable yet".to_owned(),
        };
        if let Some(through) = self.archived_through {
            line.push_str(&format!("; WAL archived through {through}"));
        }
        line.push_str(&format!("; {} base backup(s)", self.base_backups));
        if let Some(error) = &self.error {
            line.push_str(&format!("; {error}"));
        }
        line
    }
}

/// The WAL files and base backups among the objects of `folder`.
pub fn index(folder: &str, objects: &[ObjectInfo]) -> Archive {
    let mut archive = Archive { history: History::first(), ..Archive::default() };
    for object in objects {
        match super::layout::wal_name(folder, &object.key).as_deref().and_then(WalFile::parse) {
            Some(WalFile::Segment(s)) => {
                archive.segments.insert(s);
            }
            Some(WalFile::Partial(s)) => {
                archive.partials.insert(s);
            }
            Some(WalFile::History(t)) => {
                archive.histories.insert(t);
            }
            None => {}
        }
    }
    archive
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    fn seg(number: u64) -> Segment {
        Segment { timeline: 1, number }
    }

    fn base(start: u64, stop_at: &str) -> BaseManifest {
        BaseManifest {
            version: 1,
            key: format!("b/{start}.tar.gz"),
            size: 1,
            sha256: String::new(),
            tar_size: 1,
            start_lsn: Lsn(start * super::super::wal::SEGMENT_BYTES + 40),
            stop_lsn: Lsn(start * super::super::wal::SEGMENT_BYTES + 400),
            timeline: 1,
            started_at: at(stop_at) - SignedDuration::from_secs(5),
            stopped_at: at(stop_at),
            tool: "pg_basebackup (PostgreSQL) 15".into(),
            encryption: None,
        }
    }

    fn beat(number: u64, time: &str) -> Heartbeat {
        Heartbeat { at: at(time), lsn: Lsn(number * super::super::wal::SEGMENT_BYTES + 1000) }
    }

    fn archive(segments: &[u64], partial: Option<u64>, bases: Vec<BaseManifest>, newest: Heartbeat) -> Archive {
        Archive {
            segments: segments.iter().map(|n| seg(*n)).collect(),
            partials: partial.map(seg).into_iter().collect(),
            bases,
            marker: Some(Marker { through: newest.at, lsn: newest.lsn, timeline: 1, heartbeat: Some(newest) }),
            history: History::first(),
            ..Archive::default()
        }
    }

    fn solve(a: &Archive, before_gap: &BTreeMap<Segment, Heartbeat>) -> (Vec<Range>, Window) {
        let chains = chains(a);
        let gaps: Vec<Segment> =
            chains.iter().filter_map(|(_, c)| if let Chain::Gap(g) = c { Some(*g) } else { None }).collect();
        let ranges = ranges(a, &chains, before_gap);
        let window = window(a, &ranges, &gaps);
        (ranges, window)
    }

    #[test]
    fn an_unbroken_chain_recovers_from_the_oldest_base_to_the_newest_heartbeat() {
        let a = archive(
            &[1, 2, 3, 4],
            Some(5),
            vec![base(1, "2026-11-30T08:00:00Z"), base(3, "2026-11-30T09:00:00.5Z")],
            beat(5, "2026-11-30T10:00:00.2Z"),
        );
        let (ranges, window) = solve(&a, &BTreeMap::new());
        assert_eq!(window.first_recoverable, Some(at("2026-11-30T08:00:00Z")));
        assert_eq!(window.last_recoverable, Some(at("2026-11-30T10:00:00Z")), "before the heartbeat");
        assert_eq!(window.error, None);
        assert_eq!(choose(&ranges, at("2026-11-30T08:30:00Z")).map(|r| r.base.start_lsn.segment()), Some(1));
        assert_eq!(
            choose(&ranges, at("2026-11-30T09:30:00Z")).map(|r| r.base.start_lsn.segment()),
            Some(3),
            "the newest base that reaches it"
        );
        assert!(choose(&ranges, at("2026-11-30T10:00:01Z")).is_none());
        assert!(choose(&ranges, at("2026-11-30T07:59:59Z")).is_none());
    }

    #[test]
    fn a_heartbeat_on_a_whole_second_is_not_itself_a_target() {
        let a = archive(&[1], Some(2), vec![base(1, "2026-11-30T08:00:00Z")], beat(2, "2026-11-30T10:00:00Z"));
        let (_, window) = solve(&a, &BTreeMap::new());
        assert_eq!(window.last_recoverable, Some(at("2026-11-30T09:59:59Z")));
    }

    #[test]
    fn a_missing_segment_ends_the_older_bases_at_their_last_heartbeat_before_it() {
        let a = archive(
            &[1, 2, 4, 5],
            Some(6),
            vec![base(1, "2026-11-30T08:00:00Z"), base(4, "2026-11-30T09:00:00Z")],
            beat(6, "2026-11-30T10:00:00.5Z"),
        );
        let chains = chains(&a);
        assert_eq!(chains, vec![(0, Chain::Gap(seg(3))), (1, Chain::Whole)]);
        assert_eq!(heartbeat_lookups(&a, seg(3)), vec![seg(2), seg(1)]);
        let before = BTreeMap::from([(seg(3), beat(2, "2026-11-30T08:20:00.5Z"))]);
        let (ranges, window) = solve(&a, &before);
        assert_eq!(
            window.first_recoverable,
            Some(at("2026-11-30T09:00:00Z")),
            "the window shown shrinks to the newest stretch"
        );
        assert_eq!(window.last_recoverable, Some(at("2026-11-30T10:00:00Z")));
        assert!(window.error.as_deref().is_some_and(|e| e.contains("000000010000000000000003")), "{window:?}");
        assert_eq!(
            choose(&ranges, at("2026-11-30T08:10:00Z")).map(|r| r.end.at),
            Some(at("2026-11-30T08:20:00.5Z")),
            "still restorable before the gap"
        );
        assert!(choose(&ranges, at("2026-11-30T08:30:00Z")).is_none(), "not across the gap");
    }

    #[test]
    fn a_gap_after_the_only_base_cuts_the_end_and_a_gap_inside_it_leaves_nothing() {
        let a = archive(&[1, 2, 3, 5], Some(6), vec![base(1, "2026-11-30T08:00:00Z")], beat(6, "2026-11-30T10:00:00Z"));
        let (_, window) = solve(&a, &BTreeMap::from([(seg(4), beat(3, "2026-11-30T08:40:00Z"))]));
        assert_eq!(window.last_recoverable, Some(at("2026-11-30T08:39:59Z")));
        let (_, window) = solve(&a, &BTreeMap::new());
        assert_eq!(window.first_recoverable, None, "no heartbeat before the gap: nothing");
        let a = archive(&[2, 3], Some(4), vec![base(1, "2026-11-30T08:00:00Z")], beat(4, "2026-11-30T10:00:00Z"));
        let (ranges, window) = solve(&a, &BTreeMap::new());
        assert!(ranges.is_empty(), "the base needs its own first segment");
        assert!(window.describe().starts_with("nothing is recoverable"), "{}", window.describe());
    }

    #[test]
    fn the_partial_counts_only_as_the_last_segment() {
        let a = archive(&[1], Some(2), vec![base(1, "2026-11-30T08:00:00Z")], beat(3, "2026-11-30T10:00:00Z"));
        let (ranges, _) = solve(&a, &BTreeMap::new());
        assert!(ranges.is_empty(), "segment 2 is only partial but the heartbeat is in 3");
    }

    #[test]
    fn after_a_promotion_the_chain_follows_the_new_timeline() {
        let history = History::parse(2, "1\t0/3000100\tbefore 2026-11-30 09:00:00+00\n").expect("history");
        let mut a =
            archive(&[1, 2, 3, 4], None, vec![base(1, "2026-11-30T08:00:00Z")], beat(5, "2026-11-30T10:00:00Z"));
        a.history = history;
        a.segments.extend([Segment { timeline: 2, number: 3 }, Segment { timeline: 2, number: 4 }]);
        a.partials.insert(Segment { timeline: 2, number: 5 });
        if let Some(m) = a.marker.as_mut() {
            m.timeline = 2;
        }
        let (_, window) = solve(&a, &BTreeMap::new());
        assert_eq!(window.last_recoverable, Some(at("2026-11-30T09:59:59Z")));
        a.segments.remove(&Segment { timeline: 2, number: 3 });
        let chains = chains(&a);
        assert_eq!(
            chains,
            vec![(0, Chain::Gap(Segment { timeline: 2, number: 3 }))],
            "timeline 1's copy of the switch segment is not the one replayed"
        );
    }

    #[test]
    fn the_controller_reads_the_window_as_written() {
        let window = Window {
            first_recoverable: Some(at("2026-11-30T08:00:00Z")),
            last_recoverable: Some(at("2026-11-30T10:00:00Z")),
            base_backups: 2,
            archived_through: Some(at("2026-11-30T10:00:05.5Z")),
            error: Some("WAL segment 000000010000000000000003 is missing from the archive".into()),
        };
        let read: crate::crd::RecoverableWindow =
            serde_json::from_value(serde_json::to_value(&window).expect("JSON")).expect("the status type reads it");
        let text = |t: Option<Timestamp>| t.map(|t| t.to_string());
        assert_eq!(read.first_recoverable.map(|t| t.0.to_string()), text(window.first_recoverable));
        assert_eq!(read.last_recoverable.map(|t| t.0.to_string()), text(window.last_recoverable));
        assert_eq!(read.archived_through.map(|t| t.0.to_string()), text(window.archived_through));
        assert_eq!(read.base_backups, Some(2));
        assert_eq!(read.error, window.error);
    }

    #[test]
    fn an_archive_without_marker_or_base_says_so() {
        let a = Archive { history: History::first(), ..Archive::default() };
        let (_, window) = solve(&a, &BTreeMap::new());
        assert_eq!(window.error.as_deref(), Some("no WAL archived yet"));
        let a = archive(&[1], Some(2), vec![], beat(2, "2026-11-30T10:00:00Z"));
        let (_, window) = solve(&a, &BTreeMap::new());
        assert_eq!(window.error.as_deref(), Some("no base backup yet"));
    }
}
