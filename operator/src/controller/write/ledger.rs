//! The write ledger: what the operator last wrote to each child, so that the watch caches need
//! not hold whole specs to tell whether a child still holds what is asked for.
//!
//! For each child it records, as hashes, the desired object sent, the child's uid, its labels,
//! annotations and owners, and its version right after the write (`metadata.generation` for
//! kinds with a busy status, else `metadata.resourceVersion`; see `read::cached`). A child is
//! taken as holding the desired object when the desired object hashes the same, the cached
//! child is the same object (uid), its version has not moved past the recorded one and its
//! metadata fingerprint is the recorded one (metadata edits do not bump a generation). Anything
//! else (someone else's edit, an autoscaler's scaling, an operator restarted with an empty
//! ledger) makes the applier read the child whole and compare; it writes only when that differs.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Resource;
use serde::Serialize;

use crate::controller::read::cached::{Cached, Remembered, Version, fingerprint, metadata_fingerprint};

/// What was written to one child, in hashes: about 40 bytes whatever the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The child's uid (a child deleted and created again is another child).
    uid: u64,
    /// The desired object sent.
    desired: u64,
    /// The child's labels, annotations and owners right after the write.
    metadata: u64,
    /// The child's version right after the write.
    version: Option<Version>,
}

/// What the operator last wrote to each child of each SecurityGuard: by the SecurityGuard's
/// uid, then by the child's kind, namespace and name (hashed).
#[derive(Debug, Default)]
pub struct Ledger(Mutex<HashMap<String, HashMap<u64, Entry>>>);

impl Ledger {
    /// Whether `cached` still holds the desired object of hash `desired` as last written.
    pub fn holds<K: Cached>(&self, guard_uid: &str, cached: &Remembered<K>, desired: u64) -> bool {
        let Ok(guards) = self.0.lock() else { return false };
        let Some(entry) = guards.get(guard_uid).and_then(|children| children.get(&key::<K>(cached.meta()))) else {
            return false;
        };
        entry.desired == desired
            && entry.uid == fingerprint(&cached.metadata.uid)
            && entry.metadata == cached.fingerprint
            && not_moved(entry.version, cached.version())
    }

    /// Records that `written` (as the API server returned it, or read whole) holds the desired
    /// object of hash `desired`.
    pub fn record<K: Cached>(&self, guard_uid: &str, written: &K, desired: u64) {
        if let Ok(mut guards) = self.0.lock() {
            let meta = written.meta();
            let entry = Entry {
                uid: fingerprint(&meta.uid),
                desired,
                metadata: metadata_fingerprint(meta),
                version: Version::of::<K>(meta),
            };
            guards.entry(guard_uid.to_owned()).or_default().insert(key::<K>(meta), entry);
        }
    }

    /// Forgets every child of a SecurityGuard (deleted).
    pub fn forget_guard(&self, guard_uid: &str) {
        if let Ok(mut guards) = self.0.lock() {
            guards.remove(guard_uid);
        }
    }

    /// Children recorded.
    pub fn len(&self) -> usize {
        self.0.lock().map(|g| g.values().map(HashMap::len).sum()).unwrap_or(0)
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A child of kind `K`: its kind, namespace and name, hashed.
fn key<K: Resource<DynamicType = ()>>(meta: &kube::api::ObjectMeta) -> u64 {
    fingerprint(&(K::kind(&()), &meta.namespace, &meta.name))
}

/// The cached version is the recorded one, or (generations only) an older one: the cache has not
/// caught up with the write yet.
fn not_moved(recorded: Option<Version>, now: Option<Version>) -> bool {
    match (recorded, now) {
        (Some(Version::Generation(recorded)), Some(Version::Generation(now))) => now <= recorded,
        (recorded, now) => recorded == now,
    }
}

/// A stable hash of a desired object.
pub fn desired_hash<K: Serialize>(desired: &K) -> u64 {
    fingerprint(desired)
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
        assert!(!ledger.holds("g", &Remembered::of(deployment("d1", 2)), 7), "nothing recorded: read it");
        ledger.record("g", &deployment("d1", 2), 7);
        assert!(ledger.holds("g", &Remembered::of(deployment("d1", 2)), 7));
        assert!(ledger.holds("g", &Remembered::of(deployment("d1", 1)), 7), "the cache has not seen the write yet");
        assert!(!ledger.holds("g", &Remembered::of(deployment("d1", 3)), 7), "someone changed the spec");
        assert!(!ledger.holds("g", &Remembered::of(deployment("d1", 2)), 8), "the operator asks for something else");
        assert!(!ledger.holds("g", &Remembered::of(deployment("d2", 2)), 7), "deleted and created again");
        assert!(!ledger.holds("other", &Remembered::of(deployment("d1", 2)), 7), "another guard's child");
        ledger.forget_guard("g");
        assert!(ledger.is_empty());
    }

    #[test]
    fn an_edit_of_labels_annotations_or_owners_is_seen_though_it_bumps_no_generation() {
        let ledger = Ledger::default();
        ledger.record("g", &deployment("d1", 2), 7);
        let mut labelled = deployment("d1", 2);
        labelled.metadata.labels = Some([("app.kubernetes.io/instance".into(), "other".into())].into());
        assert!(!ledger.holds("g", &Remembered::of(labelled), 7), "a label changed by hand");
        let mut annotated = deployment("d1", 2);
        annotated.metadata.annotations = Some([("team".into(), "x".into())].into());
        assert!(!ledger.holds("g", &Remembered::of(annotated), 7), "an annotation added by hand");
        let mut rolled = deployment("d1", 2);
        rolled.metadata.annotations = Some([("deployment.kubernetes.io/revision".into(), "2".into())].into());
        assert!(ledger.holds("g", &Remembered::of(rolled), 7), "the Deployment controller's revision is not an edit");
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
        assert!(ledger.holds("g", &Remembered::of(cm("5")), 1));
        assert!(!ledger.holds("g", &Remembered::of(cm("6")), 1), "any write moves it");
        assert!(!ledger.holds("g", &Remembered::of(cm("4")), 1), "resource versions are not ordered");
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
