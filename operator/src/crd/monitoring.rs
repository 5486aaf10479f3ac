//! Monitoring of the API through prometheus-operator (`spec.monitoring`).

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A Prometheus duration, as prometheus-operator's CRDs accept it (`30s`, `1m30s`, `500ms`).
const DURATION_PATTERN: &str =
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$";

/// Label keys (`prefix/name`) as Kubernetes accepts them (values are checked by their schema).
const LABEL_KEYS_RULE: &str = r"self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))";

/// The labels the operator sets itself and selects its objects by.
const RESERVED_LABELS_RULE: &str = "!self.exists(k, k in ['app.kubernetes.io/name', 'app.kubernetes.io/instance', \
                                    'app.kubernetes.io/component', 'app.kubernetes.io/managed-by'])";

/// A ServiceMonitor scraping the API and a PrometheusRule with its alerts, for a Prometheus run
/// by prometheus-operator; optionally the Grafana dashboards. Without prometheus-operator's
/// CustomResourceDefinitions in the cluster the status says so (condition `MonitoringReady`),
/// and the objects are created as soon as they are installed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Whether the operator manages a ServiceMonitor and a PrometheusRule for this SecurityGuard
    /// (default false). Turning it off deletes them.
    #[serde(default)]
    pub enabled: bool,

    /// Extra labels of the ServiceMonitor and the PrometheusRule, so that a Prometheus's
    /// `serviceMonitorSelector` and `ruleSelector` pick them up, for example
    /// `release: prometheus` for the kube-prometheus-stack chart.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 32,
        "additionalProperties" = {
            "type": "string",
            "maxLength": 63,
            "pattern": "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$",
        },
    ))]
    #[x_kube(validation = Rule::new(LABEL_KEYS_RULE)
        .message("labels must have valid Kubernetes label keys, such as release or example.com/team"))]
    #[x_kube(validation = Rule::new(RESERVED_LABELS_RULE)
        .message("labels must not set app.kubernetes.io/name, instance, component or managed-by: the operator sets them"))]
    pub labels: BTreeMap<String, String>,

    /// How often Prometheus scrapes the API's metrics, as a Prometheus duration (default `30s`).
    /// The alerts' windows assume at most a minute.
    #[serde(default = "default_interval")]
    #[schemars(length(min = 1, max = 32), regex(pattern = DURATION_PATTERN))]
    pub interval: String,

    /// Whether, with `enabled`, the four Grafana dashboards (System Overview, Security Metrics,
    /// Performance, Business KPIs) are shipped as ConfigMaps in this namespace, labelled
    /// `grafana_dashboard: "1"` for Grafana's dashboard sidecar (default false). They show any
    /// SecurityGuard (chosen in their variables), so one SecurityGuard per cluster is enough.
    #[serde(default)]
    pub dashboards: bool,
}

fn default_interval() -> String {
    "30s".to_owned()
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        Self { enabled: false, labels: BTreeMap::new(), interval: default_interval(), dashboards: false }
    }
}
