//! The local tier: a PersistentVolumeClaim holding a copy of every backup. Like the data
//! volumes it has no owner: deleting the SecurityGuard keeps the backups.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controller::build::meta::labels;
use crate::controller::vocabulary::{Component, ValidatedGuard, local_volume_name};

/// The claim, when `spec.backup.local` is set.
pub fn build(guard: &ValidatedGuard) -> Option<PersistentVolumeClaim> {
    let local = guard.spec.backup.as_ref()?.local.as_ref()?;
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(local_volume_name(&guard.name)),
            namespace: Some(guard.namespace.clone()),
            labels: Some(labels(guard, Component::Backup)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: local.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), local.size.clone())])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn an_unowned_claim_of_the_asked_size() {
        let guard = guard(&format!(
            "{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3}}\n    local: {{size: 20Gi}}\n"
        ));
        let claim = serde_json::to_value(build(&guard)).expect("serializes");
        assert_eq!(claim["metadata"]["name"], "sg-backups");
        assert!(claim["metadata"].get("ownerReferences").is_none());
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
    }
}
