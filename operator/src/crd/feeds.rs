//! Threat feeds (`spec.threatFeeds`): public blocklists the operator downloads on a schedule and
//! imports into the API's pattern library, and what the last syncs did (`status.threatFeeds`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::formats;

/// Default schedule: every six hours, at minute 17 (off the hour, when feeds are busiest).
pub const DEFAULT_SCHEDULE: &str = "17 */6 * * *";
/// Default and largest number of entries one feed may hold.
pub const DEFAULT_MAX_ENTRIES: u32 = 100_000;
/// Largest `maxEntries` accepted (the API's FEED_MAX_ENTRIES default).
pub const LIMIT_MAX_ENTRIES: u32 = 200_000;
/// Default largest download of one feed: 16 MiB (polkadot-js `all.json` is about 1.4 MB).
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Largest `maxBytes` accepted: 64 MiB.
pub const LIMIT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default seconds one feed's download may take.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 60;
/// Most feeds one SecurityGuard syncs (their outcomes share the Job's 4 KiB termination message).
pub const MAX_FEEDS: usize = 10;

/// Threat feeds kept in sync with the pattern library by a CronJob running the operator's image.
/// Each sync replaces the feed's own entries atomically (one pattern version): entries the feed
/// dropped are removed; entries added by admins or by other feeds are never touched. A feed that
/// cannot be downloaded or parsed, or that lists an entry the API refuses (an official domain,
/// say), changes nothing and is reported in the `ThreatFeedsSynced` condition, an Event and the
/// operator's metrics. A feed taken off the list has its entries removed at the next sync;
/// removing `threatFeeds` altogether stops the syncs and leaves the entries of the last one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.feeds.all(f, self.feeds.exists_one(g, g.name == f.name))")
    .message("feed names must be unique")
    .field_path(".feeds"))]
pub struct ThreatFeedsSpec {
    /// When to sync, as a cron expression in UTC (default `17 */6 * * *`: every six hours). Five
    /// fields separated by spaces: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
    /// JAN-DEC, day of week 0-6 or SUN-SAT; each `*`, a value, a list `a,b`, a range `a-b` or a
    /// step `*/n` or `a-b/n` (`?` in the day fields). Or a macro: `@hourly`, `@daily`
    /// (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 1, max = 128), transform = formats::cron_schedule)]
    pub schedule: String,

    /// Stop the scheduled syncs; the entries already imported stay.
    #[serde(default)]
    pub suspend: bool,

    /// The feeds, at most 10, each with a unique name.
    #[schemars(length(min = 1, max = 10))]
    pub feeds: Vec<ThreatFeed>,
}

/// One feed: where it is, how it is written, and how large it may be.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.format == 'Plain' || !has(self.entries)")
    .message("entries is only for the Plain format: the other formats say what their entries are")
    .field_path(".entries"))]
pub struct ThreatFeed {
    /// Name of the feed: a DNS label (lower-case letters, digits and `-`). The API records the
    /// feed's entries under `feed:<name>`; renaming a feed imports it anew.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,

    /// Where the feed is downloaded from: an `http` or `https` URL, such as
    /// `https://raw.githubusercontent.com/polkadot-js/phishing/master/all.json`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']")
        .message("url must be an http or https URL"))]
    pub url: String,

    /// How the feed is written: `Plain` (one domain, URL or address a line; `#` starts a
    /// comment; hosts-file lines `0.0.0.0 host` are read as `host`), `PolkadotJs` (the JSON of
    /// polkadot-js/phishing `all.json`: `{"allow": [...], "deny": [...]}`, whose `deny` list is
    /// imported) or `PhantomBlocklist` (phantom/blocklist: the YAML list of `- url: host` and
    /// `- mint: address` entries, or its JSON form with `blocklist` and `nftBlocklist`).
    pub format: FeedFormat,

    /// For the `Plain` format: whether its lines are `Domains` (the default; blocked domains and
    /// their subdomains) or `Addresses` (malicious Solana addresses, base58).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<EntryKind>,

    /// Most entries the feed may list (default 100000, at most 200000); a longer feed is
    /// refused whole and changes nothing.
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1, max = 200000))]
    pub max_entries: u32,

    /// Largest download in bytes (default 16777216, 16 MiB; at most 64 MiB). The download stops
    /// as soon as it is larger, and the feed is refused.
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1, max = 67108864))]
    pub max_bytes: u64,

    /// Malformed entries tolerated (default 0): up to this many are left out of the import and
    /// reported by line (the Job's log, `status.threatFeeds`); more refuse the whole feed. Public
    /// lists do carry the odd typo (`-magiceden.io`) or a name with combining accents; a feed
    /// that is not in its format at all is always refused.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub max_invalid_entries: u32,

    /// Seconds the whole download may take (default 60).
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_seconds: u32,
}

/// How a feed is written.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedFormat {
    /// One entry a line, `#` comments.
    Plain,
    /// polkadot-js/phishing `all.json` (its `deny` list).
    PolkadotJs,
    /// phantom/blocklist `blocklist.yaml` (or its JSON form).
    PhantomBlocklist,
}

/// What the lines of a `Plain` feed are.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EntryKind {
    /// Domains (or URLs, whose host is taken).
    #[default]
    Domains,
    /// Solana addresses, base58.
    Addresses,
}

fn default_schedule() -> String {
    DEFAULT_SCHEDULE.to_owned()
}

fn default_max_entries() -> u32 {
    DEFAULT_MAX_ENTRIES
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

fn default_timeout_seconds() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

/// What one sync did for one feed: the sync Job's termination message lists one per feed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FeedOutcome {
    /// The feed's name.
    pub name: String,
    /// Entries the feed holds after the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// The pattern-set version after the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Entries the sync added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
    /// Entries the sync removed (the feed dropped them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// Malformed entries left out (within `maxInvalidEntries`), the first few by line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the feed was not imported (nothing changed for it then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A feed the pattern library held entries of although the list no longer names it: the sync
/// removed them.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemovedFeed {
    /// The feed's name.
    pub name: String,
    /// How many entries it held.
    pub entries: u64,
}

/// The last syncs of the threat feeds.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThreatFeedsStatus {
    /// The last sync Job recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job: Option<String>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// Each feed's last sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feeds: Vec<ThreatFeedStatus>,
}

/// One feed's last sync, and its last successful one.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThreatFeedStatus {
    /// The feed's name.
    pub name: String,
    /// When it was last synced, successfully or not.
    pub last_attempt_time: Time,
    /// When it was last imported successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<Time>,
    /// Entries it held after its last successful sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// The pattern-set version after its last successful sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Malformed entries its last successful sync left out (within `maxInvalidEntries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why its last sync failed (absent after a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SecurityGuard;

    #[test]
    fn the_example_parses_with_the_defaults_applied() {
        let guard: SecurityGuard =
            serde_saphyr::from_str(include_str!("../../../examples/threat-feeds.yaml")).expect("example parses");
        let feeds = guard.spec.threat_feeds.expect("threatFeeds");
        assert_eq!(feeds.schedule, DEFAULT_SCHEDULE);
        assert!(!feeds.suspend);
        let names: Vec<&str> = feeds.feeds.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["polkadot-js", "phantom", "in-house"]);
        let phantom = &feeds.feeds[1];
        assert_eq!(phantom.format, FeedFormat::PhantomBlocklist);
        assert_eq!(phantom.entries, None);
        assert_eq!(
            (phantom.max_entries, phantom.max_bytes, phantom.timeout_seconds),
            (DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS)
        );
        assert_eq!(phantom.max_invalid_entries, 10);
        assert_eq!(feeds.feeds[0].max_invalid_entries, 20);
        assert_eq!(feeds.feeds[2].max_invalid_entries, 0, "strict by default");
        assert_eq!(feeds.feeds[2].entries, Some(EntryKind::Domains));
        assert!(feeds.feeds.len() <= MAX_FEEDS);
        assert!(u64::from(LIMIT_MAX_ENTRIES) >= u64::from(DEFAULT_MAX_ENTRIES) && LIMIT_MAX_BYTES >= DEFAULT_MAX_BYTES);
    }
}
