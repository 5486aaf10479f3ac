//! NetworkPolicies: the managed PostgreSQL and Redis accept connections only from this
//! SecurityGuard's API pods and its own jobs (pods labelled as datastore clients). With
//! `spec.backup.pointInTime`, PostgreSQL's pod also serves its WAL archiver's metrics to whoever
//! scrapes them (Prometheus runs in a namespace of its own). The policies restrict ingress only:
//! the WAL archiver reaches DNS and S3 as the backup pods do, which no policy restricts either.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::meta::{client_labels, metadata};
use crate::controller::vocabulary::{
    Component, POSTGRES_PORT, REDIS_PORT, ValidatedGuard, WAL_METRICS_PORT, object_name, selector_labels,
};

/// One policy per managed datastore.
pub fn build(guard: &ValidatedGuard) -> Vec<NetworkPolicy> {
    let mut policies = Vec::new();
    if guard.postgres_managed().is_some() {
        let archiving = guard.spec.backup.as_ref().is_some_and(|b| b.point_in_time.is_some());
        let metrics =
            archiving.then(|| NetworkPolicyIngressRule { from: None, ports: Some(vec![tcp(WAL_METRICS_PORT)]) });
        policies.push(fence(guard, Component::Postgres, POSTGRES_PORT, metrics));
    }
    if guard.redis_managed().is_some() {
        policies.push(fence(guard, Component::Redis, REDIS_PORT, None));
    }
    policies
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
    }
}

/// The datastore's port for the clients, and `metrics` for anyone.
fn fence(
    guard: &ValidatedGuard,
    component: Component,
    port: i32,
    metrics: Option<NetworkPolicyIngressRule>,
) -> NetworkPolicy {
    let clients = NetworkPolicyIngressRule {
        from: Some(vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector { match_labels: Some(client_labels(guard)), ..LabelSelector::default() }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![tcp(port)]),
    };
    NetworkPolicy {
        metadata: metadata(guard, component, object_name(&guard.name, component)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&guard.name, component)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(std::iter::once(clients).chain(metrics).collect()),
            ..NetworkPolicySpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn fences_each_managed_datastore() {
        let policies = build(&guard(MINIMAL));
        let names: Vec<_> = policies.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
        assert_eq!(names, ["sg-postgres", "sg-redis"]);
        let spec = serde_json::to_value(&policies[0].spec).expect("serializes");
        assert_eq!(
            spec,
            serde_json::json!({
                "podSelector": {"matchLabels": {
                    "app.kubernetes.io/name": "securityguard",
                    "app.kubernetes.io/instance": "sg",
                    "app.kubernetes.io/component": "postgres",
                }},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"podSelector": {"matchLabels": {
                        "app.kubernetes.io/instance": "sg",
                        "securityguard.io/datastore-client": "true",
                    }}}],
                    "ports": [{"port": 5432, "protocol": "TCP"}],
                }],
            })
        );
    }

    #[test]
    fn with_point_in_time_recovery_the_archivers_metrics_are_open_and_egress_stays_free() {
        let g = guard(&format!(
            "{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3}}\n    pointInTime: {{}}\n"
        ));
        let policies = build(&g);
        let spec = serde_json::to_value(&policies[0].spec).expect("serializes");
        assert_eq!(spec["policyTypes"], serde_json::json!(["Ingress"]), "S3 and DNS stay reachable");
        assert_eq!(spec["ingress"][0]["ports"], serde_json::json!([{"port": 5432, "protocol": "TCP"}]));
        assert_eq!(spec["ingress"][1], serde_json::json!({"ports": [{"port": 9188, "protocol": "TCP"}]}));
        let redis = serde_json::to_value(&policies[1].spec).expect("serializes");
        assert_eq!(redis["ingress"].as_array().map(Vec::len), Some(1), "Redis has no archiver");
    }

    #[test]
    fn none_for_external_datastores() {
        let yaml = format!(
            "{MINIMAL}  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n  redis:\n    external: {{connectionSecret: {{name: cache, key: url}}}}\n"
        );
        assert!(build(&guard(&yaml)).is_empty());
    }
}
