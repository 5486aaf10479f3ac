//! The ServiceMonitor of the API Service (prometheus-operator), when monitoring is on; with
//! point-in-time recovery it also scrapes the WAL archiver through PostgreSQL's Service.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::controller::build::meta::monitoring_metadata;
use crate::controller::vocabulary::{
    COMPONENT_LABEL, Component, ValidatedGuard, WAL_METRICS_PORT_NAME, selector_labels,
};
use crate::monitoring::api_service_monitor_spec;
use crate::monitoring::prometheus_operator::{Endpoint, ServiceMonitor, ServiceMonitorSpec};

/// Scrapes the `http` port of the API Service (selected by its labels, in the guard's
/// namespace) at `spec.monitoring.interval`, and the `wal-metrics` port of PostgreSQL's Service
/// while the operator runs it with `spec.backup.pointInTime`.
pub fn build(guard: &ValidatedGuard) -> ServiceMonitor {
    let interval = &guard.spec.monitoring.interval;
    let mut spec = api_service_monitor_spec(selector_labels(&guard.name, Component::Api), interval);
    let archiving = guard.spec.backup.as_ref().is_some_and(|b| b.point_in_time.is_some());
    if archiving && guard.postgres_managed().is_some() {
        add_wal_archiver(&mut spec, &guard.name, interval);
    }
    ServiceMonitor { metadata: monitoring_metadata(guard), spec }
}

/// Selects PostgreSQL's Service besides the API's and scrapes its `wal-metrics` port: each
/// endpoint only finds the Services that have its port.
fn add_wal_archiver(spec: &mut ServiceMonitorSpec, guard: &str, interval: &str) {
    let mut labels = selector_labels(guard, Component::Api);
    labels.remove(COMPONENT_LABEL);
    spec.selector = LabelSelector {
        match_labels: Some(labels),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: COMPONENT_LABEL.to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![Component::Api.as_str().to_owned(), Component::Postgres.as_str().to_owned()]),
        }]),
    };
    spec.endpoints.push(Endpoint {
        port: Some(WAL_METRICS_PORT_NAME.to_owned()),
        path: Some("/metrics".to_owned()),
        interval: Some(interval.to_owned()),
        ..Endpoint::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn with_point_in_time_recovery_the_wal_archiver_is_scraped_through_the_postgres_service() {
        let backup = "  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n    pointInTime: {}\n";
        let g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true}}\n{backup}"));
        let spec = serde_json::to_value(build(&g).spec).expect("serializes");
        assert_eq!(
            spec,
            serde_json::json!({
                "selector": {
                    "matchLabels": {"app.kubernetes.io/name": "securityguard", "app.kubernetes.io/instance": "sg"},
                    "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "postgres"]}],
                },
                "endpoints": [
                    {"port": "http", "path": "/metrics", "interval": "30s"},
                    {"port": "wal-metrics", "path": "/metrics", "interval": "30s"},
                ],
            })
        );
        // No archiver beside an external PostgreSQL.
        let external = guard(&format!(
            "{MINIMAL}  monitoring: {{enabled: true}}\n  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n{backup}"
        ));
        assert_eq!(build(&external).spec.endpoints.len(), 1);
    }

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
