//! NetworkPolicies: the managed PostgreSQL and Redis accept connections only from this
//! SecurityGuard's API pods and its own jobs (pods labelled as datastore clients).

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::meta::{client_labels, metadata};
use crate::controller::vocabulary::{
    Component, POSTGRES_PORT, REDIS_PORT, ValidatedGuard, object_name, selector_labels,
};

/// One policy per managed datastore.
pub fn build(guard: &ValidatedGuard) -> Vec<NetworkPolicy> {
    let mut policies = Vec::new();
    if guard.postgres_managed().is_some() {
        policies.push(fence(guard, Component::Postgres, POSTGRES_PORT));
    }
    if guard.redis_managed().is_some() {
        policies.push(fence(guard, Component::Redis, REDIS_PORT));
    }
    policies
}

fn fence(guard: &ValidatedGuard, component: Component, port: i32) -> NetworkPolicy {
    NetworkPolicy {
        metadata: metadata(guard, component, object_name(&guard.name, component)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&guard.name, component)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(client_labels(guard)),
                        ..LabelSelector::default()
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".to_owned()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
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
    fn none_for_external_datastores() {
        let yaml = format!(
            "{MINIMAL}  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n  redis:\n    external: {{connectionSecret: {{name: cache, key: url}}}}\n"
        );
        assert!(build(&guard(&yaml)).is_empty());
    }
}
