//! Write-ahead log positions, segment and history file names, and timeline histories: pure.
//!
//! A log sequence number (LSN) is a 64-bit byte position written `X/Y` (two hex halves). The log
//! is cut into segments of 16 MiB named `TTTTTTTTXXXXXXXXYYYYYYYY`: the timeline, then the
//! segment number split in two. A promotion starts a new timeline, described by its history file
//! `TTTTTTTT.history`: one line per ancestor, `parent-timeline<TAB>switch-point<TAB>reason`.

use std::fmt;
use std::str::FromStr;

/// The segment size this archive handles (PostgreSQL's default, `wal_segment_size = 16MB`).
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Segments per "log file" (the middle 8 hex digits of a segment name).
const SEGMENTS_PER_XLOGID: u64 = 0x1_0000_0000 / SEGMENT_BYTES;

/// A log sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The number of the segment holding this position.
    pub fn segment(self) -> u64 {
        self.0 / SEGMENT_BYTES
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a log sequence number (X/Y in hex)");
        let (high, low) = text.trim().split_once('/').ok_or_else(bad)?;
        let high = u64::from_str_radix(high, 16).map_err(|_| bad())?;
        let low = u64::from_str_radix(low, 16).map_err(|_| bad())?;
        if high > 0xFFFF_FFFF || low > 0xFFFF_FFFF {
            return Err(bad());
        }
        Ok(Lsn((high << 32) | low))
    }
}

impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A segment of one timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    /// The timeline.
    pub timeline: u32,
    /// The segment number (position / segment size).
    pub number: u64,
}

impl Segment {
    /// The file name, `TTTTTTTTXXXXXXXXYYYYYYYY`.
    pub fn name(self) -> String {
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.number / SEGMENTS_PER_XLOGID,
            self.number % SEGMENTS_PER_XLOGID
        )
    }

    /// The segment named `name` (24 hex digits), if it is one.
    pub fn parse(name: &str) -> Option<Segment> {
        if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let timeline = u32::from_str_radix(&name[0..8], 16).ok()?;
        let high = u64::from_str_radix(&name[8..16], 16).ok()?;
        let low = u64::from_str_radix(&name[16..24], 16).ok()?;
        if low >= SEGMENTS_PER_XLOGID || timeline == 0 {
            return None;
        }
        Some(Segment { timeline, number: high * SEGMENTS_PER_XLOGID + low })
    }

    /// The first position after this segment.
    pub fn end(self) -> Lsn {
        Lsn((self.number + 1) * SEGMENT_BYTES)
    }
}

/// What a file of the write-ahead log is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFile {
    /// A complete segment.
    Segment(Segment),
    /// The segment still being written (`.partial`).
    Partial(Segment),
    /// A timeline history file.
    History(u32),
}

impl WalFile {
    /// Classifies a file name; `None` for anything else (temporary files, other names).
    pub fn parse(name: &str) -> Option<WalFile> {
        if let Some(segment) = name.strip_suffix(".partial") {
            return Segment::parse(segment).map(WalFile::Partial);
        }
        if let Some(timeline) = name.strip_suffix(".history") {
            if timeline.len() == 8 && timeline.bytes().all(|b| b.is_ascii_hexdigit()) {
                return u32::from_str_radix(timeline, 16).ok().filter(|t| *t > 1).map(WalFile::History);
            }
            return None;
        }
        Segment::parse(name).map(WalFile::Segment)
    }

    /// The file name.
    pub fn name(self) -> String {
        match self {
            WalFile::Segment(s) => s.name(),
            WalFile::Partial(s) => format!("{}.partial", s.name()),
            WalFile::History(t) => history_name(t),
        }
    }
}

/// `TTTTTTTT.history`.
pub fn history_name(timeline: u32) -> String {
    format!("{timeline:08X}.history")
}

/// The timelines a timeline descends from, each with where it begins: what recovery on the
/// newest timeline follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// `(timeline, begins at)`, oldest first; the first begins at 0, the last is the newest.
    pub timelines: Vec<(u32, Lsn)>,
}

impl Default for History {
    fn default() -> Self {
        History::first()
    }
}

impl History {
    /// The history of timeline 1 (no ancestors).
    pub fn first() -> Self {
        History { timelines: vec![(1, Lsn(0))] }
    }

    /// Parses the history file of `timeline`.
    pub fn parse(timeline: u32, text: &str) -> Result<Self, String> {
        let mut timelines = Vec::new();
        let mut begins = Lsn(0);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let bad = || format!("line {} of {} is not `timeline switch-point reason`", n + 1, history_name(timeline));
            let parent: u32 = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
            let switch: Lsn = fields.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
            if timelines.last().is_some_and(|(t, _)| *t >= parent) || parent >= timeline {
                return Err(format!("{} lists timelines out of order", history_name(timeline)));
            }
            timelines.push((parent, begins));
            begins = switch;
        }
        timelines.push((timeline, begins));
        Ok(History { timelines })
    }

    /// The newest timeline.
    pub fn newest(&self) -> u32 {
        self.timelines.last().map_or(1, |(t, _)| *t)
    }

    /// Whether `timeline` is on this history.
    pub fn contains(&self, timeline: u32) -> bool {
        self.timelines.iter().any(|(t, _)| *t == timeline)
    }

    /// The segment file recovery reads for segment `number`: that of the newest timeline
    /// already begun at the segment's start or within it (at a switch, the new timeline's copy).
    pub fn segment(&self, number: u64) -> Segment {
        let timeline =
            self.timelines.iter().rev().find(|(_, begins)| begins.segment() <= number).map_or(1, |(t, _)| *t);
        Segment { timeline, number }
    }

    /// Whether position `lsn` of `timeline` is on this history (the timeline is an ancestor and
    /// the position is before its switch to the next).
    pub fn holds(&self, timeline: u32, lsn: Lsn) -> bool {
        let Some(at) = self.timelines.iter().position(|(t, _)| *t == timeline) else { return false };
        match self.timelines.get(at + 1) {
            Some((_, next_begins)) => lsn <= *next_begins,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_and_parse_as_postgres_writes_them() {
        let lsn: Lsn = "1/A0000028".parse().expect("lsn");
        assert_eq!(lsn.0, 0x1_A000_0028);
        assert_eq!(lsn.to_string(), "1/A0000028");
        assert_eq!("0/0".parse::<Lsn>(), Ok(Lsn(0)));
        for bad in ["", "1", "1/", "/1", "G/1", "100000000/0", "1/2/3"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn segment_names_follow_postgres() {
        let lsn: Lsn = "1/A0000028".parse().expect("lsn");
        let segment = Segment { timeline: 2, number: lsn.segment() };
        assert_eq!(segment.name(), "0000000200000001000000A0");
        assert_eq!(Segment::parse("0000000200000001000000A0"), Some(segment));
        assert_eq!(segment.end().to_string(), "1/A1000000");
        assert_eq!(Segment::parse("000000010000000000000100"), None, "only 256 segments per log file");
        assert_eq!(Segment::parse("000000000000000000000001"), None, "timeline 0 does not exist");
        assert_eq!(
            WalFile::parse("000000010000000000000003.partial"),
            Some(WalFile::Partial(Segment { timeline: 1, number: 3 }))
        );
        assert_eq!(WalFile::parse("00000002.history"), Some(WalFile::History(2)));
        assert_eq!(WalFile::parse("000000010000000000000003.partial.tmp"), None);
        assert_eq!(WalFile::parse("archive_status"), None);
    }

    #[test]
    fn recovery_reads_the_newest_timeline_begun_by_each_segment() {
        let history = History::parse(
            3,
            "1\t0/3000158\tbefore 2026-11-30 10:00:00+00\n\n2\t0/5800000\tno recovery target specified\n",
        )
        .expect("history");
        assert_eq!(history.timelines, vec![(1, Lsn(0)), (2, Lsn(0x300_0158)), (3, Lsn(0x580_0000))]);
        assert_eq!(history.segment(2), Segment { timeline: 1, number: 2 });
        assert_eq!(history.segment(3), Segment { timeline: 2, number: 3 }, "the switch segment is the child's");
        assert_eq!(history.segment(4), Segment { timeline: 2, number: 4 });
        assert_eq!(history.segment(5), Segment { timeline: 3, number: 5 });
        assert!(history.holds(1, Lsn(0x200_0000)));
        assert!(!history.holds(1, Lsn(0x400_0000)), "timeline 1 went on after the switch: not ours");
        assert!(history.holds(3, Lsn(u64::MAX)));
        assert!(!history.holds(4, Lsn(0)));
        assert!(History::parse(2, "2\t0/1\tself\n").is_err());
        assert!(History::parse(3, "garbage\n").is_err());
        assert_eq!(History::first().segment(9), Segment { timeline: 1, number: 9 });
    }
}
