//! The API Service.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{
    Component, SERVICE_PORT, ValidatedGuard, api_cluster_url, object_name, selector_labels,
};

/// The API's ClusterIP Service (port 80 to the pods' `http` port).
pub fn build(guard: &ValidatedGuard) -> Service {
    Service {
        metadata: metadata(guard, Component::Api, object_name(&guard.name, Component::Api)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(&guard.name, Component::Api)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The in-cluster URL of the API.
pub fn cluster_url(guard: &ValidatedGuard) -> String {
    api_cluster_url(&guard.name, &guard.namespace)
}
