//! What the tests ask of a SecurityGuard and of the objects the operator made for it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use securityguard_operator::crd::SecurityGuard;

/// Whether the guard is `Ready=True` for its current generation.
pub fn is_ready(guard: &SecurityGuard) -> bool {
    let status = guard.status.as_ref();
    status.and_then(|s| s.observed_generation) == guard.metadata.generation
        && status.and_then(|s| s.condition("Ready")).is_some_and(|c| c.status == "True")
}

/// The guard's condition of this type, if its status has one.
pub fn condition(guard: &SecurityGuard, type_: &str) -> Option<Condition> {
    guard.status.as_ref()?.condition(type_).cloned()
}

/// Whether the object's controller owner reference is the guard.
pub fn owned_by(obj: &impl Resource, guard: &SecurityGuard) -> bool {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| Some(&r.uid) == guard.metadata.uid.as_ref() && r.controller == Some(true) && r.kind == "SecurityGuard")
}
