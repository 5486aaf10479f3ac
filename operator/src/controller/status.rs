//! Status: conditions and counts derived from the objects as the API server holds them.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};

use super::build::ingress::public_url;
use super::build::service::cluster_url;
use super::build::{Applied, ChildResources, FIELD_MANAGER};
use super::validate::ValidatedGuard;
use crate::crd::{
    CONDITION_DEGRADED, CONDITION_PAUSED, CONDITION_PROGRESSING, CONDITION_READY, SecurityGuard, SecurityGuardStatus,
};

/// One condition's new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl Observation {
    fn new(type_: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status, reason, message: message.into() }
    }
}

/// The status of a SecurityGuard whose children were applied.
pub fn from_applied(
    guard: &SecurityGuard,
    validated: &ValidatedGuard,
    applied: &ChildResources<Applied>,
    now: Timestamp,
) -> SecurityGuardStatus {
    let wanted = if validated.spec.autoscaling.enabled {
        validated.spec.autoscaling.min_replicas
    } else {
        validated.spec.replicas.unwrap_or(3)
    };
    let api = deployment_state(&applied.deployment, wanted);
    let mut waiting: Vec<String> = Vec::new();
    if !api.rolled_out {
        waiting.push(format!("API rollout in progress ({} of {} pods updated)", api.updated, api.desired));
    } else if api.available < wanted {
        waiting.push(format!("{} of {wanted} API replicas available", api.available));
    }
    for (what, objects) in [("PostgreSQL", &applied.postgres), ("Redis", &applied.redis)] {
        if let Some(objects) = objects
            && !stateful_set_ready(&objects.stateful_set)
        {
            waiting.push(format!("{what} StatefulSet {} is not ready", objects.stateful_set.name_any()));
        }
    }
    let ready = waiting.is_empty();
    let observations = [
        if ready {
            Observation::new(
                CONDITION_READY,
                true,
                "Available",
                format!("API available with {} ready replicas", api.ready),
            )
        } else {
            Observation::new(CONDITION_READY, false, "NotAvailable", waiting.join("; "))
        },
        if ready {
            Observation::new(CONDITION_PROGRESSING, false, "Complete", "every object is rolled out")
        } else {
            Observation::new(CONDITION_PROGRESSING, true, "RollingOut", waiting.join("; "))
        },
        Observation::new(CONDITION_DEGRADED, false, "AsExpected", "every object was applied"),
        Observation::new(CONDITION_PAUSED, false, "Reconciling", "spec.paused is false"),
    ];
    SecurityGuardStatus {
        observed_generation: guard.meta().generation,
        conditions: conditions(guard, &observations, now),
        replicas: Some(api.desired),
        ready_replicas: Some(api.ready),
        endpoint: Some(public_url(validated).unwrap_or_else(|| cluster_url(validated))),
    }
}

/// The status of a SecurityGuard that could not be reconciled: Degraded with the reason, the
/// rest of the previous status kept.
pub fn degraded(guard: &SecurityGuard, reason: &'static str, message: &str, now: Timestamp) -> SecurityGuardStatus {
    let previous = guard.status.clone().unwrap_or_default();
    let observations = [
        Observation::new(CONDITION_READY, false, reason, message),
        Observation::new(CONDITION_DEGRADED, true, reason, message),
        Observation::new(CONDITION_PAUSED, false, "Reconciling", "spec.paused is false"),
    ];
    SecurityGuardStatus {
        observed_generation: guard.meta().generation,
        conditions: conditions(guard, &observations, now),
        ..previous
    }
}

/// The status of a paused SecurityGuard: everything else as last observed.
pub fn paused(guard: &SecurityGuard, now: Timestamp) -> SecurityGuardStatus {
    let previous = guard.status.clone().unwrap_or_default();
    let observations = [Observation::new(
        CONDITION_PAUSED,
        true,
        "Paused",
        "spec.paused is true: the operator leaves every object as it is",
    )];
    SecurityGuardStatus {
        observed_generation: guard.meta().generation,
        conditions: conditions(guard, &observations, now),
        ..previous
    }
}

/// Merges observations into the existing conditions; a condition whose status did not change
/// keeps its lastTransitionTime.
fn conditions(guard: &SecurityGuard, observations: &[Observation], now: Timestamp) -> Vec<Condition> {
    let existing = guard.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    let mut out: Vec<Condition> =
        existing.iter().filter(|c| !observations.iter().any(|o| o.type_ == c.type_)).cloned().collect();
    for o in observations {
        let status = if o.status { "True" } else { "False" };
        let since = existing
            .iter()
            .find(|c| c.type_ == o.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(Condition {
            type_: o.type_.to_owned(),
            status: status.to_owned(),
            reason: o.reason.to_owned(),
            message: o.message.clone(),
            observed_generation: guard.meta().generation,
            last_transition_time: since,
        });
    }
    out.sort_by(|a, b| order(&a.type_).cmp(&order(&b.type_)).then(a.type_.cmp(&b.type_)));
    out
}

fn order(type_: &str) -> usize {
    [CONDITION_READY, CONDITION_PROGRESSING, CONDITION_DEGRADED, CONDITION_PAUSED]
        .iter()
        .position(|t| *t == type_)
        .unwrap_or(usize::MAX)
}

/// Writes the status when it differs from the current one. Returns whether it wrote.
pub async fn write(client: &Client, guard: &SecurityGuard, status: SecurityGuardStatus) -> Result<bool, kube::Error> {
    if guard.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let api: Api<SecurityGuard> = Api::namespaced(client.clone(), &guard.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": SecurityGuard::api_version(&()),
        "kind": SecurityGuard::kind(&()),
        "status": status,
    });
    api.patch_status(&guard.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(true)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};

    fn deployment(generation: i64, observed: i64, replicas: Option<i32>, updated: i32, available: i32) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta { generation: Some(generation), ..Default::default() },
            spec: Some(DeploymentSpec { replicas, ..Default::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                replicas: Some(updated),
                updated_replicas: Some(updated),
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn rollout_needs_the_current_generation_and_every_pod_available() {
        assert!(deployment_state(&deployment(2, 2, Some(3), 3, 3), 3).rolled_out);
        assert!(!deployment_state(&deployment(2, 1, Some(3), 3, 3), 3).rolled_out);
        assert!(!deployment_state(&deployment(2, 2, Some(3), 3, 2), 3).rolled_out);
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let mut guard: SecurityGuard = serde_saphyr::from_str(
            "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata: {name: sg, generation: 4}\nspec:\n  image: a\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        )
        .expect("parses");
        let t0 = Timestamp::from_second(1_000).expect("time");
        let t1 = Timestamp::from_second(2_000).expect("time");
        guard.status = Some(degraded(&guard, "MissingSecret", "x", t0));
        let again = degraded(&guard, "MissingSecret", "y", t1);
        let d = again.condition(CONDITION_DEGRADED).expect("present");
        assert_eq!(d.last_transition_time, Time(t0));
        assert_eq!(d.message, "y");
        assert_eq!(d.observed_generation, Some(4));
        let p = paused(&guard, t1);
        assert_eq!(p.condition(CONDITION_PAUSED).map(|c| c.status.as_str()), Some("True"));
        assert_eq!(
            p.condition(CONDITION_DEGRADED).map(|c| c.status.as_str()),
            Some("True"),
            "other conditions are kept"
        );
    }
}
