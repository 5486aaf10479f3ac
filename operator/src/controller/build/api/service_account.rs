//! The ServiceAccount of the API pods (no token is mounted: the API never calls Kubernetes).

use k8s_openapi::api::core::v1::ServiceAccount;

use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{Component, ValidatedGuard, object_name};

/// The API's ServiceAccount.
pub fn build(guard: &ValidatedGuard) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(guard, Component::Api, object_name(&guard.name, Component::Api)),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
