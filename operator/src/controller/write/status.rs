//! Writes the SecurityGuard's status (server-side apply on the status subresource), only when it
//! changed.

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};

use crate::controller::vocabulary::FIELD_MANAGER;
use crate::crd::{SecurityGuard, SecurityGuardStatus};

/// Writes the status when it differs from the current one. Returns whether it wrote.
pub async fn write(client: &Client, guard: &SecurityGuard, status: SecurityGuardStatus) -> Result<bool, kube::Error> {
    if guard.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let api: Api<SecurityGuard> = Api::namespaced(client.clone(), &guard.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": SecurityGuard::api_version(&()),
        "kind": SecurityGuard::kind(&()),
        "status": status,
    });
    api.patch_status(&guard.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(true)
}
