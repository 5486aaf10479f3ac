//! The two prometheus-operator kinds the operator writes (`monitoring.coreos.com/v1`), with only
//! the fields we use. The CRDs belong to prometheus-operator; these types are never used to
//! generate a CRD, only to server-side-apply objects of it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// API group of the prometheus-operator kinds.
pub const GROUP: &str = "monitoring.coreos.com";

/// Which Services' endpoints Prometheus scrapes, and how.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    plural = "servicemonitors",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Labels selecting the Services.
    pub selector: LabelSelector,
    /// Namespaces of the Services (default: the ServiceMonitor's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// The scraped ports.
    pub endpoints: Vec<Endpoint>,
    /// Label of the Service whose value becomes the `job` label (default: the Service name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
}

/// Namespaces a ServiceMonitor looks into.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// These namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_names: Vec<String>,
}

/// One scraped port of the selected Services.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Name of the Service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// HTTP path of the metrics (default `/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Scrape timeout, at most the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// Keep the scraped series' own labels when they clash with the target's (the operator's
    /// per-SecurityGuard series carry their own `namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_labels: Option<bool>,
}

/// Alerting and recording rules loaded by the Prometheus instances that select them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    plural = "prometheusrules",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRuleSpec {
    /// The rule groups, as in a Prometheus rule file.
    pub groups: Vec<RuleGroup>,
}

/// A Prometheus rule file (`promtool check rules` reads it): the same groups as a
/// [`PrometheusRule`] without the Kubernetes envelope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RuleFile {
    /// The rule groups.
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated together.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup {
    /// Unique within the file (or the PrometheusRule).
    pub name: String,
    /// Evaluation interval (default: Prometheus' global one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// An alerting rule (`alert`) or a recording rule (`record`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Name of the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Name of the recorded series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The PromQL expression.
    pub expr: String,
    /// How long the expression must hold before the alert fires, e.g. `5m`.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels added to the alert or the recorded series (`severity`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the alert (`summary`, `description`, `runbook_url`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
