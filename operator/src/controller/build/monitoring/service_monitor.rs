//! The ServiceMonitor of the API Service (prometheus-operator), when monitoring is on.

use crate::controller::build::meta::monitoring_metadata;
use crate::controller::vocabulary::{Component, ValidatedGuard, selector_labels};
use crate::monitoring::api_service_monitor_spec;
use crate::monitoring::prometheus_operator::ServiceMonitor;

/// Scrapes the `http` port of the API Service (selected by its labels, in the guard's
/// namespace) at `spec.monitoring.interval`.
pub fn build(guard: &ValidatedGuard) -> ServiceMonitor {
    ServiceMonitor {
        metadata: monitoring_metadata(guard),
        spec: api_service_monitor_spec(selector_labels(&guard.name, Component::Api), &guard.spec.monitoring.interval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn selects_the_api_service_with_the_extra_labels_and_interval() {
        let g = guard(&format!(
            "{MINIMAL}  monitoring:\n    enabled: true\n    interval: 15s\n    labels: {{release: prometheus}}\n"
        ));
        assert_eq!(
            serde_json::to_value(build(&g)).expect("serializes"),
            serde_json::json!({
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {
                    "name": "sg-monitoring",
                    "namespace": "prod",
                    "labels": {
                        "release": "prometheus",
                        "app.kubernetes.io/name": "securityguard",
                        "app.kubernetes.io/instance": "sg",
                        "app.kubernetes.io/component": "monitoring",
                        "app.kubernetes.io/managed-by": "securityguard-operator",
                    },
                    "annotations": {"securityguard.io/extra-labels": "release"},
                    "ownerReferences": [{
                        "apiVersion": "securityguard.io/v1alpha1", "kind": "SecurityGuard", "name": "sg",
                        "uid": "uid-1", "controller": true,
                    }],
                },
                "spec": {
                    "selector": {"matchLabels": {
                        "app.kubernetes.io/name": "securityguard",
                        "app.kubernetes.io/instance": "sg",
                        "app.kubernetes.io/component": "api",
                    }},
                    "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
                },
            })
        );
    }
}
