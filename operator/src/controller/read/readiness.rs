//! How far the API Deployment and the datastores' StatefulSets are, from their status as the
//! watch caches hold it.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};

/// Rollout state of the API Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentState {
    /// Replicas the Deployment asks for.
    pub desired: i32,
    /// Pods of the current template.
    pub updated: i32,
    /// Ready pods.
    pub ready: i32,
    /// Available pods.
    pub available: i32,
    /// The controller saw the current spec and every pod runs the current template.
    pub rolled_out: bool,
}

/// Reads the rollout state of a Deployment.
pub fn deployment_state(d: &Deployment, wanted: i32) -> DeploymentState {
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(wanted);
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    DeploymentState {
        desired,
        updated,
        ready: status.ready_replicas.unwrap_or(0),
        available,
        rolled_out: observed && updated >= desired && total == updated && available >= desired,
    }
}

/// A one-replica StatefulSet has its pod ready on the current revision.
pub fn stateful_set_ready(s: &StatefulSet) -> bool {
    let Some(status) = &s.status else { return false };
    let observed = status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
    let wanted = s.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(1);
    observed
        && status.ready_replicas.unwrap_or(0) >= wanted
        && status.update_revision.is_some()
        && status.current_revision == status.update_revision
}
