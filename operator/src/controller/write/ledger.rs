//! The write ledger: what the operator last wrote to each child, so that the watch caches need
//! not hold whole specs to tell whether a child still holds what is asked for.
//!
//! For each child it records the hash of the desired object sent and the child's version right
//! after the write (`metadata.generation` for kinds with a busy status, else
//! `metadata.resourceVersion`; see `read::cached`). A child is taken as holding the desired
//! object when the desired object hashes the same, the cached child is the same object (uid)
//! and its version has not moved past the recorded one, and its cached metadata holds the
//! desired labels, annotations and owners (metadata edits do not bump a generation). Anything
//! else (someone else's edit, an autoscaler's scaling, an operator restarted with an empty
//! ledger) makes the applier read the child whole and compare; it writes only when that differs.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use serde::Serialize;

use crate::controller::read::cached::{Basis, Cached};

/// One child, under the SecurityGuard that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    guard_uid: String,
    kind: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    uid: Option<String>,
    desired: u64,
    version: Option<String>,
}

/// What the operator last wrote to each child of each SecurityGuard.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<HashMap<Key, Entry>>);

impl Ledger {
    /// Whether `cached` still holds the desired object of hash `desired` as last written.
    pub fn holds<K: Cached>(&self, guard_uid: &str, cached: &K, desired: u64) -> bool {
        let Ok(entries) = self.0.lock() else { return false };
        let Some(entry) = entries.get(&key(guard_uid, cached)) else { return false };
        entry.desired == desired && entry.uid == cached.uid() && not_moved::<K>(entry.version.as_deref(), cached)
    }

    /// Records that `written` (as the API server returned it, or read whole) holds the desired
    /// object of hash `desired`.
    pub fn record<K: Cached>(&self, guard_uid: &str, written: &K, desired: u64) {
        if let Ok(mut entries) = self.0.lock() {
            let entry = Entry { uid: written.uid(), desired, version: written.version() };
            entries.insert(key(guard_uid, written), entry);
        }
    }

    /// Forgets every child of a SecurityGuard (deleted).
    pub fn forget_guard(&self, guard_uid: &str) {
        if let Ok(mut entries) = self.0.lock() {
            entries.retain(|k, _| k.guard_uid != guard_uid);
        }
    }

    /// Children recorded.
    pub fn len(&self) -> usize {
        self.0.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn key<K: Cached>(guard_uid: &str, object: &K) -> Key {
    Key {
        guard_uid: guard_uid.to_owned(),
        kind: K::kind(&()).into_owned(),
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
    }
}

/// The cached version is the recorded one, or (generations only) an older one: the cache has not
/// caught up with the write yet.
fn not_moved<K: Cached>(recorded: Option<&str>, cached: &K) -> bool {
    let now = cached.version();
    match K::BASIS {
        Basis::ResourceVersion => now.as_deref() == recorded,
        Basis::Generation => {
            match (recorded.and_then(|r| r.parse::<i64>().ok()), now.and_then(|n| n.parse::<i64>().ok())) {
                (Some(recorded), Some(now)) => now <= recorded,
                (recorded, now) => recorded == now,
            }
        }
    }
}

/// A stable hash of a desired object.
pub fn desired_hash<K: Serialize>(desired: &K) -> u64 {
    use sha2::Digest;
    let bytes = serde_json::to_vec(desired).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn deployment(uid: &str, generation: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("sg-api".into()),
                namespace: Some("prod".into()),
                uid: Some(uid.into()),
                generation: Some(generation),
                resource_version: Some(format!("{}", generation * 10 + 1)),
                ..ObjectMeta::default()
            },
            ..Deployment::default()
        }
    }

    #[test]
    fn a_child_holds_what_was_written_until_its_spec_or_the_desired_object_changes() {
        let ledger = Ledger::default();
        assert!(!ledger.holds("g", &deployment("d1", 2), 7), "nothing recorded: read it");
        ledger.record("g", &deployment("d1", 2), 7);
        assert!(ledger.holds("g", &deployment("d1", 2), 7));
        assert!(ledger.holds("g", &deployment("d1", 1), 7), "the cache has not seen the write yet");
        assert!(!ledger.holds("g", &deployment("d1", 3), 7), "someone changed the spec");
        assert!(!ledger.holds("g", &deployment("d1", 2), 8), "the operator asks for something else");
        assert!(!ledger.holds("g", &deployment("d2", 2), 7), "deleted and created again");
        assert!(!ledger.holds("other", &deployment("d1", 2), 7), "another guard's child");
        ledger.forget_guard("g");
        assert!(ledger.is_empty());
    }

    #[test]
    fn kinds_without_a_busy_status_change_by_resource_version() {
        let ledger = Ledger::default();
        let cm = |rv: &str| ConfigMap {
            metadata: ObjectMeta {
                name: Some("sg-api".into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        ledger.record("g", &cm("5"), 1);
        assert!(ledger.holds("g", &cm("5"), 1));
        assert!(!ledger.holds("g", &cm("6"), 1), "any write moves it");
        assert!(!ledger.holds("g", &cm("4"), 1), "resource versions are not ordered");
    }

    #[test]
    fn the_hash_follows_the_content() {
        let a = deployment("d1", 1);
        let mut b = a.clone();
        assert_eq!(desired_hash(&a), desired_hash(&b));
        b.metadata.labels = Some([("x".into(), "y".into())].into());
        assert_ne!(desired_hash(&a), desired_hash(&b));
    }
}
