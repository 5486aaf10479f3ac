//! External access to the API.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::formats;

/// External access through an Ingress handled by ingress-nginx.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.enabled || has(self.host)")
    .message("ingress.host is required when ingress is enabled")
    .field_path(".host"))]
#[x_kube(validation = Rule::new("!has(self.tlsSecretName) || has(self.host)")
    .message("ingress.tlsSecretName needs ingress.host: the certificate is issued for that host")
    .field_path(".tlsSecretName"))]
pub struct IngressSpec {
    /// Whether an Ingress is created for the API (default false).
    #[serde(default)]
    pub enabled: bool,
    /// Host name clients use, for example `api.securityguard.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host: Option<String>,
    /// IngressClass to use (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = formats::DNS_SUBDOMAIN_PATTERN))]
    pub class_name: Option<String>,
    /// Secret holding the TLS certificate for `host`. Without it the Ingress serves plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub tls_secret_name: Option<String>,
    /// Rate limits applied per client IP by ingress-nginx.
    #[serde(default)]
    pub rate_limit: RateLimitSpec,
    /// Extra annotations for the Ingress (for example cert-manager's), with keys such as
    /// `cert-manager.io/cluster-issuer`. Rate-limit annotations are set from `rateLimit`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new(formats::annotation_keys_rule())
        .message("annotations must have valid Kubernetes annotation keys, such as cert-manager.io/cluster-issuer"))]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Per-client-IP rate limits, as ingress-nginx annotations (`limit-rps`,
/// `limit-burst-multiplier`, `limit-connections`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Requests per second allowed from one client IP (default 50).
    #[serde(default = "default_rps")]
    #[schemars(range(min = 1, max = 100000))]
    pub requests_per_second: i32,
    /// Burst size as a multiple of `requestsPerSecond` (default 5).
    #[serde(default = "default_burst")]
    #[schemars(range(min = 1, max = 100))]
    pub burst_multiplier: i32,
    /// Concurrent connections allowed from one client IP (default 100).
    #[serde(default = "default_connections")]
    #[schemars(range(min = 1, max = 100000))]
    pub connections: i32,
}

fn default_rps() -> i32 {
    50
}
fn default_burst() -> i32 {
    5
}
fn default_connections() -> i32 {
    100
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            requests_per_second: default_rps(),
            burst_multiplier: default_burst(),
            connections: default_connections(),
        }
    }
}
