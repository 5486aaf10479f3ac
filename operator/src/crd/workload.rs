//! The API workload: secrets, application settings, autoscaling.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret in the SecurityGuard's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret, in the same namespace as the SecurityGuard.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

impl std::fmt::Display for SecretKeyReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {:?} key {:?}", self.name, self.key)
    }
}

/// Secrets of the API. Only references are stored here, never values.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSpec {
    /// The key signing the API's JWTs (HS256), given to the API as JWT_SECRET. Required; the value
    /// must be at least 32 bytes long.
    pub jwt_secret: SecretKeyReference,
    /// The Claude API key enabling plain-language explanations of scans (CLAUDE_API_KEY).
    /// Optional: without it the explanation endpoint answers 501.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_api_key: Option<SecretKeyReference>,
}

/// How the kubelet pulls the image.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the node lacks the image.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl ImagePullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Deployment environment of the API (ENVIRONMENT).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production.
    #[default]
    Production,
    /// Staging.
    Staging,
    /// Development.
    Development,
}

impl Environment {
    /// The value given to the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Staging => "staging",
            Self::Development => "development",
        }
    }
}

/// Log level of the API (its RUST_LOG).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational messages (default).
    #[default]
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The value given to the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// Application settings of the API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiConfig {
    /// Deployment environment: `production` (default), `staging` or `development`.
    #[serde(default)]
    pub environment: Environment,
    /// Solana JSON-RPC endpoint the API queries (SOLANA_RPC_URL), an http or https URL.
    #[serde(default = "default_solana_rpc_url")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']")
        .message("solanaRpcUrl must be an absolute http or https URL"))]
    pub solana_rpc_url: String,
    /// Log level of the API: `error`, `warn`, `info` (default), `debug` or `trace`.
    #[serde(default)]
    pub log_level: LogLevel,
}

fn default_solana_rpc_url() -> String {
    "https://api.mainnet-beta.solana.com".to_owned()
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            environment: Environment::default(),
            solana_rpc_url: default_solana_rpc_url(),
            log_level: LogLevel::default(),
        }
    }
}

/// Horizontal autoscaling of the API (an `autoscaling/v2` HorizontalPodAutoscaler).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("minReplicas must not be greater than maxReplicas")
    .field_path(".minReplicas"))]
pub struct AutoscalingSpec {
    /// Whether the autoscaler runs. When false, the API runs `spec.replicas` pods and no
    /// HorizontalPodAutoscaler exists.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fewest replicas (default 3, for high availability).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most replicas (default 20, for traffic spikes).
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Target average CPU utilisation, in percent of the CPU request (default 70).
    #[serde(default = "default_cpu")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
    /// Target average memory utilisation, in percent of the memory request (default 80).
    #[serde(default = "default_memory")]
    #[schemars(range(min = 1, max = 100))]
    pub target_memory_utilization_percentage: i32,
    /// How fast to scale up.
    #[serde(default)]
    pub scale_up: ScaleUpPolicy,
    /// How fast to scale down.
    #[serde(default)]
    pub scale_down: ScaleDownPolicy,
}

/// Scale-up speed: per period, add the larger of `percent` % of the current replicas or `pods` pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUpPolicy {
    /// Percent of the current replicas that may be added per period (default 50).
    #[serde(default = "default_up_percent")]
    #[schemars(range(min = 1, max = 1000))]
    pub percent: i32,
    /// Pods that may be added per period (default 2).
    #[serde(default = "default_up_pods")]
    #[schemars(range(min = 1, max = 1000))]
    pub pods: i32,
    /// Length of a period in seconds (default 60).
    #[serde(default = "default_period")]
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
    /// Seconds of recommendations considered before scaling up (default 0: at once).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: i32,
}

/// Scale-down speed: per period, remove at most `percent` % of the current replicas, after a
/// stabilisation window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDownPolicy {
    /// Percent of the current replicas that may be removed per period (default 10).
    #[serde(default = "default_down_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub percent: i32,
    /// Length of a period in seconds (default 60).
    #[serde(default = "default_period")]
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
    /// Seconds of lower recommendations required before scaling down (default 300).
    #[serde(default = "default_down_window")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: i32,
}

fn yes() -> bool {
    true
}
fn default_min_replicas() -> i32 {
    3
}
fn default_max_replicas() -> i32 {
    20
}
fn default_cpu() -> i32 {
    70
}
fn default_memory() -> i32 {
    80
}
fn default_up_percent() -> i32 {
    50
}
fn default_up_pods() -> i32 {
    2
}
fn default_period() -> i32 {
    60
}
fn default_down_percent() -> i32 {
    10
}
fn default_down_window() -> i32 {
    300
}

impl Default for ScaleUpPolicy {
    fn default() -> Self {
        Self {
            percent: default_up_percent(),
            pods: default_up_pods(),
            period_seconds: default_period(),
            stabilization_window_seconds: 0,
        }
    }
}

impl Default for ScaleDownPolicy {
    fn default() -> Self {
        Self {
            percent: default_down_percent(),
            period_seconds: default_period(),
            stabilization_window_seconds: default_down_window(),
        }
    }
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            target_cpu_utilization_percentage: default_cpu(),
            target_memory_utilization_percentage: default_memory(),
            scale_up: ScaleUpPolicy::default(),
            scale_down: ScaleDownPolicy::default(),
        }
    }
}
