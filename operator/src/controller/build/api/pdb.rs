//! The PodDisruptionBudget of the API: voluntary disruptions take one pod at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{Component, ValidatedGuard, object_name, selector_labels};

/// The API's PodDisruptionBudget.
pub fn build(guard: &ValidatedGuard) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: metadata(guard, Component::Api, object_name(&guard.name, Component::Api)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&guard.name, Component::Api)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
