//! The Grafana dashboards (`config/grafana/*.json`, compiled in) and the ConfigMaps that ship
//! them to Grafana's dashboard sidecar.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;

/// The label Grafana's dashboard sidecar looks for (`sidecar.dashboards.label`).
pub const DASHBOARD_LABEL: &str = "grafana_dashboard";
/// Its value.
pub const DASHBOARD_LABEL_VALUE: &str = "1";

/// One dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dashboard {
    /// File name in `config/grafana/`, also the key in its ConfigMap.
    pub file: &'static str,
    /// The dashboard model (JSON).
    pub json: &'static str,
}

impl Dashboard {
    /// Name of its ConfigMap: `securityguard-dashboard-<file stem>`.
    pub fn config_map_name(&self) -> String {
        format!("securityguard-dashboard-{}", self.file.trim_end_matches(".json"))
    }
}

/// The four dashboards: System Overview, Security Metrics, Performance, Business KPIs.
pub fn dashboards() -> [Dashboard; 4] {
    [
        Dashboard { file: "system-overview.json", json: include_str!("../../../config/grafana/system-overview.json") },
        Dashboard {
            file: "security-metrics.json",
            json: include_str!("../../../config/grafana/security-metrics.json"),
        },
        Dashboard { file: "performance.json", json: include_str!("../../../config/grafana/performance.json") },
        Dashboard { file: "business-kpis.json", json: include_str!("../../../config/grafana/business-kpis.json") },
    ]
}

/// The ConfigMap of one dashboard in `namespace`, labelled for Grafana's sidecar (the same
/// object `config/grafana`'s kustomization generates).
pub fn dashboard_config_map(dashboard: &Dashboard, namespace: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(dashboard.config_map_name()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (DASHBOARD_LABEL.to_owned(), DASHBOARD_LABEL_VALUE.to_owned()),
                ("app.kubernetes.io/name".to_owned(), "securityguard".to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(dashboard.file.to_owned(), dashboard.json.to_owned())])),
        ..ConfigMap::default()
    }
}

/// Every PromQL query of a dashboard, with its panel title, as written (Grafana variables
/// such as `$namespace` and `$__rate_interval` unexpanded).
pub fn queries(dashboard: &Dashboard) -> Result<Vec<(String, String)>, serde_json::Error> {
    let model: serde_json::Value = serde_json::from_str(dashboard.json)?;
    let mut out = Vec::new();
    for panel in model["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((title.to_owned(), expr.to_owned()));
            }
        }
    }
    Ok(out)
}

/// A dashboard query with its Grafana variables replaced, ready for Prometheus' query API.
pub fn expand(query: &str, namespace: &str, guard: &str, range: &str) -> String {
    query
        .replace("${securityguard}", guard)
        .replace("$securityguard", guard)
        .replace("$namespace", namespace)
        .replace("$__rate_interval", range)
        .replace("$__range", range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_dashboards_with_queries_and_stable_uids() {
        let titles: Vec<String> = dashboards()
            .iter()
            .map(|d| {
                let model: serde_json::Value = serde_json::from_str(d.json).expect("valid JSON");
                assert!(model["uid"].as_str().is_some_and(|u| u.starts_with("securityguard-")), "{}", d.file);
                let queries = queries(d).expect("queries");
                assert!(queries.len() >= 8, "{}: {} queries", d.file, queries.len());
                for (title, q) in &queries {
                    // Scoped to the chosen guard, or to the operator.
                    assert!(
                        q.contains(r#"namespace="$namespace""#)
                            || q.contains(r#"job="securityguard-operator-metrics""#),
                        "{}/{title}: {q}",
                        d.file
                    );
                }
                model["title"].as_str().expect("title").to_owned()
            })
            .collect();
        assert_eq!(
            titles,
            [
                "SecurityGuard / System Overview",
                "SecurityGuard / Security Metrics",
                "SecurityGuard / Performance",
                "SecurityGuard / Business KPIs"
            ]
        );
    }

    #[test]
    fn config_maps_are_labelled_for_the_sidecar() {
        let cm = dashboard_config_map(&dashboards()[2], "monitoring");
        assert_eq!(cm.metadata.name.as_deref(), Some("securityguard-dashboard-performance"));
        assert_eq!(cm.metadata.labels.as_ref().expect("labels")[DASHBOARD_LABEL], "1");
        assert!(cm.data.as_ref().expect("data")["performance.json"].contains("SecurityGuard / Performance"));
    }

    #[test]
    fn expand_replaces_every_variable() {
        let q = r#"rate(x{namespace="$namespace", service="${securityguard}-api"}[$__rate_interval]) + increase(y{securityguard="$securityguard"}[$__range])"#;
        assert_eq!(
            expand(q, "shop", "g", "1m"),
            r#"rate(x{namespace="shop", service="g-api"}[1m]) + increase(y{securityguard="g"}[1m])"#
        );
    }
}
