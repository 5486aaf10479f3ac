//! The ServiceAccount of the API pods (no token is mounted: the API never calls Kubernetes).

use k8s_openapi::api::core::v1::ServiceAccount;

use super::{Component, metadata, object_name};
use crate::controller::validate::ValidatedGuard;

/// The API's ServiceAccount.
pub fn build(guard: &ValidatedGuard) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(guard, Component::Api, object_name(&guard.name, Component::Api)),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
