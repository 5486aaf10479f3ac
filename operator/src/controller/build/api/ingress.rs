//! The API's Ingress (ingress-nginx), when enabled.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};

use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{Component, SERVICE_PORT, ValidatedGuard, object_name};

/// ingress-nginx annotation: requests per second per client IP.
pub const LIMIT_RPS: &str = "nginx.ingress.kubernetes.io/limit-rps";
/// ingress-nginx annotation: burst as a multiple of the rate.
pub const LIMIT_BURST: &str = "nginx.ingress.kubernetes.io/limit-burst-multiplier";
/// ingress-nginx annotation: concurrent connections per client IP.
pub const LIMIT_CONNECTIONS: &str = "nginx.ingress.kubernetes.io/limit-connections";

/// The Ingress, or `None` when ingress is off.
pub fn build(guard: &ValidatedGuard) -> Option<Ingress> {
    let spec = &guard.spec.ingress;
    if !spec.enabled {
        return None;
    }
    let host = spec.host.clone()?;
    let name = object_name(&guard.name, Component::Api);
    let mut annotations: BTreeMap<String, String> = spec.annotations.clone();
    annotations.insert(LIMIT_RPS.to_owned(), spec.rate_limit.requests_per_second.to_string());
    annotations.insert(LIMIT_BURST.to_owned(), spec.rate_limit.burst_multiplier.to_string());
    annotations.insert(LIMIT_CONNECTIONS.to_owned(), spec.rate_limit.connections.to_string());
    let mut meta = metadata(guard, Component::Api, name.clone());
    meta.annotations = Some(annotations);
    Some(Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            tls: spec
                .tls_secret_name
                .as_ref()
                .map(|secret| vec![IngressTLS { hosts: Some(vec![host.clone()]), secret_name: Some(secret.clone()) }]),
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name,
                                port: Some(ServiceBackendPort { number: Some(SERVICE_PORT), name: None }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    })
}

/// The public URL of the API when the Ingress is on.
pub fn public_url(guard: &ValidatedGuard) -> Option<String> {
    let spec = &guard.spec.ingress;
    let host = spec.host.as_ref().filter(|_| spec.enabled)?;
    let scheme = if spec.tls_secret_name.is_some() { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn rate_limits_become_ingress_nginx_annotations() {
        let yaml = format!(
            "{MINIMAL}  ingress:\n    enabled: true\n    host: api.example.com\n    className: nginx\n    tlsSecretName: api-tls\n    rateLimit: {{requestsPerSecond: 20, burstMultiplier: 3, connections: 10}}\n"
        );
        let g = guard(&yaml);
        let ingress = serde_json::to_value(build(&g).expect("enabled")).expect("serializes");
        assert_eq!(
            ingress["metadata"]["annotations"],
            serde_json::json!({LIMIT_RPS: "20", LIMIT_BURST: "3", LIMIT_CONNECTIONS: "10"})
        );
        assert_eq!(
            ingress["spec"],
            serde_json::json!({
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["api.example.com"], "secretName": "api-tls"}],
                "rules": [{"host": "api.example.com", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "sg-api", "port": {"number": 80}}},
                }]}}],
            })
        );
        assert_eq!(public_url(&g).as_deref(), Some("https://api.example.com"));
    }

    #[test]
    fn none_when_disabled() {
        assert!(build(&guard(MINIMAL)).is_none());
    }
}
