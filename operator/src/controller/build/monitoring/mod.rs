//! The objects of `spec.monitoring`: the ServiceMonitor and the PrometheusRule (only while the
//! cluster serves prometheus-operator's kinds) and the Grafana dashboards.

pub mod dashboards;
pub mod prometheus_rule;
pub mod service_monitor;

use super::children::MonitoringObjects;
use crate::controller::vocabulary::{MonitoringApis, ValidatedGuard};

/// The monitoring objects the spec asks for and the cluster can hold.
pub fn build(guard: &ValidatedGuard, served: MonitoringApis) -> MonitoringObjects {
    let spec = &guard.spec.monitoring;
    if !spec.enabled {
        return MonitoringObjects::default();
    }
    MonitoringObjects {
        service_monitor: served.service_monitors.then(|| service_monitor::build(guard)),
        prometheus_rule: served.prometheus_rules.then(|| prometheus_rule::build(guard)),
        dashboards: if spec.dashboards { dashboards::build(guard) } else { Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn monitoring_objects_follow_the_spec_and_what_the_cluster_serves() {
        let mut g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true, dashboards: true}}\n"));
        let missing = build(&g, MonitoringApis::default());
        assert!(missing.service_monitor.is_none() && missing.prometheus_rule.is_none(), "kinds not served");
        assert_eq!(missing.dashboards.len(), 4, "dashboards need no prometheus-operator");

        let partial = build(&g, MonitoringApis { service_monitors: true, prometheus_rules: false });
        assert!(partial.service_monitor.is_some() && partial.prometheus_rule.is_none());

        let all = build(&g, MonitoringApis::ALL);
        assert!(all.service_monitor.is_some() && all.prometheus_rule.is_some());

        g.spec.monitoring.enabled = false;
        let off = build(&g, MonitoringApis::ALL);
        assert!(off.service_monitor.is_none() && off.prometheus_rule.is_none() && off.dashboards.is_empty());
    }
}
