//! Whether the cluster serves prometheus-operator's kinds, from the caches of their two
//! CustomResourceDefinitions (watched by name in `runtime::monitoring`).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::controller::vocabulary::{MonitoringApis, PROMETHEUS_RULES_CRD, SERVICE_MONITORS_CRD};

/// How long a reconcile waits for the definitions' first listing before taking them as absent.
const FIRST_LISTING_WAIT: Duration = Duration::from_secs(5);

/// The definition is established and serves the `v1` the operator writes.
pub fn serves_v1(crd: &CustomResourceDefinition) -> bool {
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    established
        && crd.meta().deletion_timestamp.is_none()
        && crd.spec.versions.iter().any(|v| v.name == "v1" && v.served)
}

/// The caches of the two definitions.
#[derive(Clone)]
pub struct Discovery {
    service_monitors: Store<CustomResourceDefinition>,
    prometheus_rules: Store<CustomResourceDefinition>,
}

impl Discovery {
    /// Discovery over the caches of the two definitions (filled by the runtime's watches).
    pub fn new(
        service_monitors: Store<CustomResourceDefinition>,
        prometheus_rules: Store<CustomResourceDefinition>,
    ) -> Self {
        Self { service_monitors, prometheus_rules }
    }

    /// What the caches say now.
    pub fn current(&self) -> MonitoringApis {
        let served = |store: &Store<CustomResourceDefinition>, name: &str| {
            store.get(&ObjectRef::new(name)).is_some_and(|crd| serves_v1(&crd))
        };
        MonitoringApis {
            service_monitors: served(&self.service_monitors, SERVICE_MONITORS_CRD),
            prometheus_rules: served(&self.prometheus_rules, PROMETHEUS_RULES_CRD),
        }
    }

    /// What the caches say once both have been listed (or after a short wait: a definition
    /// that cannot be listed counts as absent).
    pub async fn observe(&self) -> MonitoringApis {
        let listed = async {
            let _ = self.service_monitors.wait_until_ready().await;
            let _ = self.prometheus_rules.wait_until_ready().await;
        };
        if tokio::time::timeout(FIRST_LISTING_WAIT, listed).await.is_err() {
            tracing::warn!("prometheus-operator's CustomResourceDefinitions are not listed yet: taken as absent");
        }
        self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinitionCondition, CustomResourceDefinitionStatus, CustomResourceDefinitionVersion,
    };

    fn crd(established: &str, versions: &[(&str, bool)]) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.spec.versions = versions
            .iter()
            .map(|(name, served)| CustomResourceDefinitionVersion {
                name: (*name).to_owned(),
                served: *served,
                ..Default::default()
            })
            .collect();
        crd.status = Some(CustomResourceDefinitionStatus {
            conditions: Some(vec![CustomResourceDefinitionCondition {
                type_: "Established".to_owned(),
                status: established.to_owned(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        crd
    }

    #[test]
    fn a_definition_counts_once_established_and_serving_v1() {
        assert!(serves_v1(&crd("True", &[("v1", true)])));
        assert!(!serves_v1(&crd("False", &[("v1", true)])), "not established yet");
        assert!(!serves_v1(&crd("True", &[("v1", false), ("v1beta1", true)])), "v1 not served");
        assert!(!serves_v1(&CustomResourceDefinition::default()), "no status yet");
    }
}
