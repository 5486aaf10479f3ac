//! The Grafana dashboards as ConfigMaps for Grafana's sidecar, when asked for.

use crate::controller::build::meta::{labels, metadata};
use crate::controller::vocabulary::{Component, ValidatedGuard};
use k8s_openapi::api::core::v1::ConfigMap;

use crate::monitoring::dashboards::{dashboard_config_map, dashboards};

/// One ConfigMap per dashboard, `<guard>-dashboard-<name>`: the same object as
/// `config/grafana` ships, owned by the SecurityGuard and labelled as its other objects.
pub fn build(guard: &ValidatedGuard) -> Vec<ConfigMap> {
    dashboards()
        .iter()
        .map(|dashboard| {
            let mut config_map = dashboard_config_map(dashboard, &guard.namespace);
            let name = format!("{}-dashboard-{}", guard.name, dashboard.file.trim_end_matches(".json"));
            let mut meta = metadata(guard, Component::Monitoring, name);
            let mut all = config_map.metadata.labels.take().unwrap_or_default();
            all.extend(labels(guard, Component::Monitoring));
            meta.labels = Some(all);
            config_map.metadata = meta;
            config_map
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};
    use crate::monitoring::dashboards::{DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE};

    #[test]
    fn four_config_maps_labelled_for_the_sidecar_and_owned() {
        let g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true, dashboards: true}}\n"));
        let maps = build(&g);
        let names: Vec<_> = maps.iter().filter_map(|m| m.metadata.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                "sg-dashboard-system-overview",
                "sg-dashboard-security-metrics",
                "sg-dashboard-performance",
                "sg-dashboard-business-kpis"
            ]
        );
        for m in &maps {
            let labels = m.metadata.labels.as_ref().expect("labels");
            assert_eq!(labels[DASHBOARD_LABEL], DASHBOARD_LABEL_VALUE);
            assert_eq!(labels["app.kubernetes.io/managed-by"], "securityguard-operator");
            assert_eq!(labels["app.kubernetes.io/instance"], "sg");
            assert_eq!(m.metadata.namespace.as_deref(), Some("prod"));
            assert_eq!(m.metadata.owner_references.as_ref().map(|o| o[0].uid.as_str()), Some("uid-1"));
        }
        assert!(maps[2].data.as_ref().expect("data")["performance.json"].contains("SecurityGuard / Performance"));
    }
}
