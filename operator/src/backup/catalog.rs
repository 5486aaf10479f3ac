//! What a store holds: each dump paired with its manifest and judged good, incomplete or
//! inconsistent (pure), and which backup a restore `--source` names.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use serde::Serialize;

use super::manifest::{self, DUMP_SUFFIX, MAX_MANIFEST_BYTES, Manifest};
use super::store::{self, ObjectInfo, Store};

/// Manifests read at the same time while listing.
const MANIFEST_READS_IN_FLIGHT: usize = 16;

/// How far a backup can be trusted, from the listing alone (a restore also checks the SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum State {
    /// The manifest is present, readable, and names this dump with its size.
    Good,
    /// A dump without manifest: an upload that did not finish, or one still running.
    Incomplete,
    /// A manifest that cannot be read, disagrees with its dump, or has no dump.
    Inconsistent(String),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Good => f.write_str("good"),
            State::Incomplete => f.write_str("incomplete"),
            State::Inconsistent(reason) => write!(f, "inconsistent: {reason}"),
        }
    }
}

/// One backup in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// Key of the dump.
    pub key: String,
    /// When it was taken: the manifest's start, else the time in the key, else the object's.
    pub time: Timestamp,
    /// Size of the dump object, if it exists.
    pub size: Option<u64>,
    /// Verdict.
    #[serde(flatten)]
    pub state: State,
    /// The manifest, when readable.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// Whether a manifest object exists (readable or not).
    #[serde(skip)]
    pub has_manifest_object: bool,
    /// Other objects stored with the dump (its config backup), deleted with it.
    #[serde(skip)]
    pub companions: Vec<String>,
}

impl Backup {
    /// Good, with its manifest.
    pub fn good_manifest(&self) -> Option<&Manifest> {
        match self.state {
            State::Good => self.manifest.as_ref(),
            _ => None,
        }
    }
}

/// Pairs dumps with manifests. `manifests` maps a manifest key to its parsed content or the
/// reason it cannot be read. Newest first.
pub fn classify(objects: &[ObjectInfo], manifests: &HashMap<String, Result<Manifest, String>>) -> Vec<Backup> {
    let all: HashMap<&str, &ObjectInfo> = objects.iter().map(|o| (o.key.as_str(), o)).collect();
    let dumps: HashMap<&str, &ObjectInfo> =
        objects.iter().filter(|o| o.key.ends_with(DUMP_SUFFIX)).map(|o| (o.key.as_str(), o)).collect();
    let mut companions: HashMap<&str, Vec<String>> = HashMap::new();
    for object in objects {
        if let Some(dump_key) = manifest::dump_key_of_config(&object.key) {
            companions.entry(dump_key).or_default().push(object.key.clone());
        }
    }
    let companions_of = |dump_key: &str| companions.get(dump_key).cloned().unwrap_or_default();
    let mut backups = Vec::new();
    for object in dumps.values() {
        let manifest_key = manifest::manifest_key(&object.key);
        let key_time = time_in_key(&object.key);
        let fallback = key_time.or(object.modified).unwrap_or(Timestamp::UNIX_EPOCH);
        let (time, state, manifest) = match manifests.get(&manifest_key) {
            None => (fallback, State::Incomplete, None),
            Some(Err(reason)) => (fallback, State::Inconsistent(reason.clone()), None),
            Some(Ok(manifest)) => {
                let state = if manifest.key != object.key {
                    State::Inconsistent(format!("the manifest names {}", manifest.key))
                } else if manifest.size != object.size {
                    State::Inconsistent(format!(
                        "the manifest says {} bytes, the dump has {}",
                        manifest.size, object.size
                    ))
                } else if let Some(config) = &manifest.config {
                    match all.get(config.key.as_str()) {
                        None => State::Inconsistent(format!("config backup {} missing", config.key)),
                        Some(stored) if stored.size != config.size => State::Inconsistent(format!(
                            "the manifest says the config backup has {} bytes, it has {}",
                            config.size, stored.size
                        )),
                        Some(_) => State::Good,
                    }
                } else {
                    State::Good
                };
                (manifest.started_at, state, Some(manifest.clone()))
            }
        };
        backups.push(Backup {
            key: object.key.clone(),
            time,
            size: Some(object.size),
            state,
            manifest,
            has_manifest_object: manifests.contains_key(&manifest_key),
            companions: companions_of(&object.key),
        });
    }
    for (manifest_key, parsed) in manifests {
        let Some(dump_key) = manifest::dump_key_of(manifest_key) else { continue };
        if dumps.contains_key(dump_key) {
            continue;
        }
        let time = match parsed {
            Ok(manifest) => manifest.started_at,
            Err(_) => time_in_key(dump_key).unwrap_or(Timestamp::UNIX_EPOCH),
        };
        backups.push(Backup {
            key: dump_key.to_owned(),
            time,
            size: None,
            state: State::Inconsistent("manifest without dump".into()),
            manifest: parsed.as_ref().ok().cloned(),
            has_manifest_object: true,
            companions: companions_of(dump_key),
        });
    }
    // Left behind by a dump deleted by hand: listed, so that retention removes them in time.
    for (dump_key, keys) in &companions {
        if dumps.contains_key(dump_key) || manifests.contains_key(&manifest::manifest_key(dump_key)) {
            continue;
        }
        let time = time_in_key(dump_key)
            .or_else(|| keys.iter().filter_map(|k| all.get(k.as_str())?.modified).max())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        backups.push(Backup {
            key: (*dump_key).to_owned(),
            time,
            size: None,
            state: State::Inconsistent("config backup without dump".into()),
            manifest: None,
            has_manifest_object: false,
            companions: keys.clone(),
        });
    }
    backups.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.key.cmp(&a.key)));
    backups
}

/// The time written in a key by [`manifest::new_dump_key`] (`…/20261125T090007.045Z.pgdump`).
pub fn time_in_key(key: &str) -> Option<Timestamp> {
    let name = key.rsplit('/').next()?.strip_suffix(DUMP_SUFFIX)?;
    let b = name.as_bytes();
    if b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &name[0..4],
        &name[4..6],
        &name[6..8],
        &name[9..11],
        &name[11..13],
        &name[13..15],
        &name[16..19]
    );
    iso.parse().ok()
}

/// Lists `folder` of `store` and reads every manifest there.
pub async fn load(store: &Store, folder: &str) -> Result<Vec<Backup>, store::Error> {
    let objects = store.list(folder).await?;
    let manifest_keys: Vec<String> = objects
        .iter()
        .filter(|o| manifest::dump_key_of(&o.key).is_some_and(|d| d.ends_with(DUMP_SUFFIX)))
        .map(|o| o.key.clone())
        .collect();
    let manifests: HashMap<String, Result<Manifest, String>> = futures::stream::iter(manifest_keys)
        .map(|key| async move {
            match store.read_small(&key, MAX_MANIFEST_BYTES).await {
                Ok(bytes) => Ok((key.clone(), Manifest::parse(&key, &bytes).map_err(|e| e.to_string()))),
                // Deleted between the listing and the read: as if never listed.
                Err(store::Error::NotFound { .. }) => Ok((key, Err("manifest vanished while listing".to_owned()))),
                Err(too_large @ store::Error::TooLarge { .. }) => Ok((key, Err(too_large.to_string()))),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(MANIFEST_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(classify(&objects, &manifests))
}

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The newest good backup.
    Latest,
    /// The newest good backup taken strictly before this time.
    Before(Timestamp),
    /// This dump key.
    Key(String),
}

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "latest" {
            Ok(Source::Latest)
        } else if let Some(time) = text.strip_prefix("before:") {
            time.trim()
                .parse()
                .map(Source::Before)
                .map_err(|e| format!("{time:?} is not an RFC 3339 time (2026-11-25T09:00:00Z): {e}"))
        } else if text.is_empty() {
            Err("empty source: latest, before:<RFC 3339 time> or a backup key".to_owned())
        } else {
            Ok(Source::Key(text.to_owned()))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Latest => f.write_str("latest"),
            Source::Before(time) => write!(f, "before:{time}"),
            Source::Key(key) => f.write_str(key),
        }
    }
}

/// No backup matches a source.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// No good backup at all, or none before the time.
    #[error("no good backup matches {asked}: {good} good of {total} listed")]
    NoneGood {
        /// The source asked for.
        asked: String,
        /// Good backups listed.
        good: usize,
        /// Backups listed.
        total: usize,
    },
    /// The key is listed but not good.
    #[error("backup {key} is not usable: {state}")]
    NotGood {
        /// The key.
        key: String,
        /// Why.
        state: State,
    },
    /// The key is not listed.
    #[error("no backup has key {key}")]
    UnknownKey {
        /// The key.
        key: String,
    },
}

/// The backup `source` names among `backups` (newest first), which must be good.
pub fn resolve<'a>(backups: &'a [Backup], source: &Source) -> Result<&'a Backup, ResolveError> {
    let none_good = || ResolveError::NoneGood {
        asked: source.to_string(),
        good: backups.iter().filter(|b| b.state == State::Good).count(),
        total: backups.len(),
    };
    match source {
        Source::Latest => backups.iter().find(|b| b.state == State::Good).ok_or_else(none_good),
        Source::Before(time) => backups.iter().find(|b| b.state == State::Good && b.time < *time).ok_or_else(none_good),
        Source::Key(key) => match backups.iter().find(|b| &b.key == key) {
            None => Err(ResolveError::UnknownKey { key: key.clone() }),
            Some(backup) if backup.state == State::Good => Ok(backup),
            Some(backup) => Err(ResolveError::NotGood { key: key.clone(), state: backup.state.clone() }),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::backup::manifest::{PLAIN_FORMAT_VERSION, Status};

    pub(crate) fn manifest(key: &str, size: u64, started_at: &str) -> Manifest {
        Manifest {
            format_version: PLAIN_FORMAT_VERSION,
            status: Status::Completed,
            guard: None,
            database: "db".into(),
            key: key.into(),
            size,
            sha256: "00".repeat(32),
            row_counts: BTreeMap::new(),
            postgres_version: "15".into(),
            pg_dump_version: "15".into(),
            operator_version: "0".into(),
            started_at: started_at.parse().expect("time"),
            finished_at: started_at.parse().expect("time"),
            config: None,
            encryption: None,
        }
    }

    fn object(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo { key: key.into(), size, modified: None }
    }

    #[test]
    fn classifies_and_sorts_newest_first() {
        let objects = vec![
            object("p/20261101T000000.000Z.pgdump", 10),
            object("p/20261101T000000.000Z.pgdump.manifest.json", 1),
            object("p/20261102T000000.000Z.pgdump", 20),
            object("p/20261103T000000.000Z.pgdump", 30),
            object("p/20261103T000000.000Z.pgdump.manifest.json", 1),
            object("p/20261104T000000.000Z.pgdump.manifest.json", 1),
            object("p/20261105T000000.000Z.pgdump", 50),
            object("p/20261105T000000.000Z.pgdump.manifest.json", 1),
            object("p/notes.txt", 5),
        ];
        let manifests = HashMap::from([
            (
                "p/20261101T000000.000Z.pgdump.manifest.json".to_owned(),
                Ok(manifest("p/20261101T000000.000Z.pgdump", 10, "2026-11-01T00:00:00Z")),
            ),
            (
                "p/20261103T000000.000Z.pgdump.manifest.json".to_owned(),
                Ok(manifest("p/20261103T000000.000Z.pgdump", 31, "2026-11-03T00:00:00Z")),
            ),
            (
                "p/20261104T000000.000Z.pgdump.manifest.json".to_owned(),
                Ok(manifest("p/20261104T000000.000Z.pgdump", 40, "2026-11-04T00:00:00Z")),
            ),
            ("p/20261105T000000.000Z.pgdump.manifest.json".to_owned(), Err("manifest is not valid".to_owned())),
        ]);
        let backups = classify(&objects, &manifests);
        let summary: Vec<(&str, String, Option<u64>)> =
            backups.iter().map(|b| (b.key.as_str(), b.state.to_string(), b.size)).collect();
        assert_eq!(
            summary,
            vec![
                ("p/20261105T000000.000Z.pgdump", "inconsistent: manifest is not valid".into(), Some(50)),
                ("p/20261104T000000.000Z.pgdump", "inconsistent: manifest without dump".into(), None),
                (
                    "p/20261103T000000.000Z.pgdump",
                    "inconsistent: the manifest says 31 bytes, the dump has 30".into(),
                    Some(30)
                ),
                ("p/20261102T000000.000Z.pgdump", "incomplete".into(), Some(20)),
                ("p/20261101T000000.000Z.pgdump", "good".into(), Some(10)),
            ]
        );
        assert_eq!(backups[3].time, "2026-11-02T00:00:00Z".parse::<Timestamp>().expect("time"));
    }

    #[test]
    fn a_manifest_naming_another_dump_is_not_good() {
        let objects = vec![object("a.pgdump", 1), object("a.pgdump.manifest.json", 1)];
        let manifests =
            HashMap::from([("a.pgdump.manifest.json".to_owned(), Ok(manifest("b.pgdump", 1, "2026-11-01T00:00:00Z")))]);
        assert_eq!(classify(&objects, &manifests)[0].state, State::Inconsistent("the manifest names b.pgdump".into()));
    }

    #[test]
    fn a_backup_with_a_config_backup_is_good_only_with_it_complete() {
        let with_config = |key: &str, size: u64| {
            let mut m = manifest(key, 1, "2026-11-01T00:00:00Z");
            m.config = Some(manifest::ConfigFile {
                key: manifest::config_key(key),
                size,
                sha256: "00".repeat(32),
                objects: vec!["SecurityGuard/a".into()],
            });
            m
        };
        let objects = vec![
            object("p/20261101T000000.000Z.pgdump", 1),
            object("p/20261101T000000.000Z.pgdump.config.yaml", 9),
            object("p/20261101T000000.000Z.pgdump.manifest.json", 1),
            object("p/20261102T000000.000Z.pgdump", 1),
            object("p/20261102T000000.000Z.pgdump.manifest.json", 1),
            object("p/20261103T000000.000Z.pgdump", 1),
            object("p/20261103T000000.000Z.pgdump.config.yaml", 5),
            object("p/20261103T000000.000Z.pgdump.manifest.json", 1),
            object("p/20261104T000000.000Z.pgdump", 1),
            object("p/20261104T000000.000Z.pgdump.config.yaml", 5),
            object("p/20261105T000000.000Z.pgdump.config.yaml", 5),
        ];
        let manifests = HashMap::from([
            (
                "p/20261101T000000.000Z.pgdump.manifest.json".to_owned(),
                Ok(with_config("p/20261101T000000.000Z.pgdump", 9)),
            ),
            (
                "p/20261102T000000.000Z.pgdump.manifest.json".to_owned(),
                Ok(with_config("p/20261102T000000.000Z.pgdump", 9)),
            ),
            (
                "p/20261103T000000.000Z.pgdump.manifest.json".to_owned(),
                Ok(with_config("p/20261103T000000.000Z.pgdump", 9)),
            ),
        ]);
        let backups = classify(&objects, &manifests);
        let by_key = |key: &str| backups.iter().find(|b| b.key == key).expect("listed");
        let first = by_key("p/20261101T000000.000Z.pgdump");
        assert_eq!(first.state, State::Good);
        assert_eq!(first.companions, vec!["p/20261101T000000.000Z.pgdump.config.yaml"]);
        assert_eq!(
            by_key("p/20261102T000000.000Z.pgdump").state,
            State::Inconsistent("config backup p/20261102T000000.000Z.pgdump.config.yaml missing".into())
        );
        assert_eq!(
            by_key("p/20261103T000000.000Z.pgdump").state,
            State::Inconsistent("the manifest says the config backup has 9 bytes, it has 5".into())
        );
        // Dump and config stored, manifest not yet: incomplete, deleted together.
        let fourth = by_key("p/20261104T000000.000Z.pgdump");
        assert_eq!((fourth.state.clone(), fourth.companions.len()), (State::Incomplete, 1));
        let orphan = by_key("p/20261105T000000.000Z.pgdump");
        assert_eq!(orphan.state, State::Inconsistent("config backup without dump".into()));
        assert_eq!((orphan.size, orphan.companions.len()), (None, 1));
        assert_eq!(backups.len(), 5);
    }

    #[test]
    fn reads_the_time_in_keys() {
        assert_eq!(
            time_in_key("x/y/20261125T090007.045Z.pgdump"),
            Some("2026-11-25T09:00:07.045Z".parse().expect("time"))
        );
        assert_eq!(time_in_key("x/other.pgdump"), None);
        assert_eq!(time_in_key("x/20261125T090007.045Z.sql"), None);
    }

    fn good(key: &str, at: &str) -> Backup {
        Backup {
            key: key.into(),
            time: at.parse().expect("time"),
            size: Some(1),
            state: State::Good,
            manifest: Some(manifest(key, 1, at)),
            has_manifest_object: true,
            companions: Vec::new(),
        }
    }

    #[test]
    fn resolves_sources() {
        let mut incomplete = good("c", "2026-11-03T00:00:00Z");
        incomplete.state = State::Incomplete;
        let backups = vec![incomplete, good("b", "2026-11-02T00:00:00Z"), good("a", "2026-11-01T00:00:00Z")];
        let key = |s: &str| resolve(&backups, &s.parse().expect("source")).map(|b| b.key.clone());
        assert_eq!(key("latest"), Ok("b".into()));
        assert_eq!(key("before:2026-11-02T00:00:00Z"), Ok("a".into()));
        assert_eq!(key("before:2026-11-02T00:00:01Z"), Ok("b".into()));
        assert_eq!(key("a"), Ok("a".into()));
        assert_eq!(
            key("before:2026-11-01T00:00:00Z"),
            Err(ResolveError::NoneGood { asked: "before:2026-11-01T00:00:00Z".into(), good: 2, total: 3 })
        );
        assert_eq!(key("c"), Err(ResolveError::NotGood { key: "c".into(), state: State::Incomplete }));
        assert_eq!(key("zz"), Err(ResolveError::UnknownKey { key: "zz".into() }));
        assert!("before:yesterday".parse::<Source>().is_err());
        assert!("".parse::<Source>().is_err());
    }
}
