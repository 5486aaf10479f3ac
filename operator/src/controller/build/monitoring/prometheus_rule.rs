//! The PrometheusRule with the guard's alerts (prometheus-operator), when monitoring is on.

use crate::controller::build::meta::monitoring_metadata;
use crate::controller::vocabulary::ValidatedGuard;
use crate::monitoring::guard_prometheus_rule_spec;
use crate::monitoring::prometheus_operator::PrometheusRule;

/// The alerts of `monitoring::alerts`, scoped to this guard's namespace and API Service.
pub fn build(guard: &ValidatedGuard) -> PrometheusRule {
    PrometheusRule {
        metadata: monitoring_metadata(guard),
        spec: guard_prometheus_rule_spec(&guard.namespace, &guard.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};
    use crate::monitoring::alerts::guard_rule_groups;

    #[test]
    fn carries_the_guards_alerts() {
        let g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true}}\n"));
        let rule = build(&g);
        assert_eq!(rule.metadata.name.as_deref(), Some("sg-monitoring"));
        assert_eq!(
            rule.metadata.annotations.as_ref().map(|a| a["securityguard.io/extra-labels"].as_str()),
            Some(""),
            "no extra labels"
        );
        assert_eq!(rule.spec.groups, guard_rule_groups("prod", "sg"));
        let alerts: Vec<_> =
            rule.spec.groups.iter().flat_map(|g| &g.rules).filter_map(|r| r.alert.as_deref()).collect();
        assert!(
            alerts.contains(&"SecurityGuardApiDown") && alerts.contains(&"SecurityGuardBackupFailed"),
            "{alerts:?}"
        );
        let value = serde_json::to_value(&rule).expect("serializes");
        assert_eq!(value["kind"], "PrometheusRule");
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    }
}
