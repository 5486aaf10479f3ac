//! The API's HorizontalPodAutoscaler (`autoscaling/v2`), when autoscaling is on.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget, ResourceMetricSource,
};

use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{Component, Scale, ValidatedGuard, object_name};
use crate::crd::AutoscalingSpec;

/// The autoscaler, or `None` when autoscaling is off (the Deployment then has fixed replicas)
/// or while a restore (`scale`) holds the API at zero. Scaling back after a restore uses the bounds
/// recorded before it.
pub fn build(guard: &ValidatedGuard, scale: Scale) -> Option<HorizontalPodAutoscaler> {
    let a = &guard.spec.autoscaling;
    let (min_replicas, max_replicas) = match scale {
        Scale::Zero => return None,
        Scale::Recorded { autoscaling: Some(r), .. } => (r.min_replicas, r.max_replicas),
        Scale::Recorded { autoscaling: None, .. } => return None,
        Scale::Spec if !a.enabled => return None,
        Scale::Spec => (a.min_replicas, a.max_replicas),
    };
    let name = object_name(&guard.name, Component::Api);
    Some(HorizontalPodAutoscaler {
        metadata: metadata(guard, Component::Api, name.clone()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name,
            },
            min_replicas: Some(min_replicas),
            max_replicas,
            metrics: Some(vec![
                utilization("cpu", a.target_cpu_utilization_percentage),
                utilization("memory", a.target_memory_utilization_percentage),
            ]),
            behavior: Some(behavior(a)),
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

/// Scaling as fast as the spec allows: up, the larger of `percent` % or `pods` pods per
/// period; down, at most `percent` % per period, after the stabilisation window.
fn behavior(a: &AutoscalingSpec) -> HorizontalPodAutoscalerBehavior {
    let policy = |type_: &str, value: i32, period_seconds: i32| HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds,
    };
    HorizontalPodAutoscalerBehavior {
        scale_up: Some(HPAScalingRules {
            stabilization_window_seconds: Some(a.scale_up.stabilization_window_seconds),
            select_policy: Some("Max".to_owned()),
            policies: Some(vec![
                policy("Percent", a.scale_up.percent, a.scale_up.period_seconds),
                policy("Pods", a.scale_up.pods, a.scale_up.period_seconds),
            ]),
            ..HPAScalingRules::default()
        }),
        scale_down: Some(HPAScalingRules {
            stabilization_window_seconds: Some(a.scale_down.stabilization_window_seconds),
            select_policy: Some("Max".to_owned()),
            policies: Some(vec![policy("Percent", a.scale_down.percent, a.scale_down.period_seconds)]),
            ..HPAScalingRules::default()
        }),
    }
}

/// Average utilisation of a resource, in percent of the pods' requests.
fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: resource.to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn defaults_follow_the_infrastructure_guide() {
        let hpa = build(&guard(MINIMAL), Scale::Spec).expect("autoscaling is on by default");
        let spec = serde_json::to_value(hpa.spec).expect("serializes");
        assert_eq!(
            spec,
            serde_json::json!({
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sg-api"},
                "minReplicas": 3,
                "maxReplicas": 20,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
                ],
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                        {"type": "Percent", "value": 50, "periodSeconds": 60},
                        {"type": "Pods", "value": 2, "periodSeconds": 60},
                    ]},
                    "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
                        {"type": "Percent", "value": 10, "periodSeconds": 60},
                    ]},
                },
            })
        );
    }

    #[test]
    fn none_when_disabled() {
        let yaml = format!("{MINIMAL}  autoscaling: {{enabled: false}}\n  replicas: 2\n");
        assert!(build(&guard(&yaml), Scale::Spec).is_none());
    }
}
