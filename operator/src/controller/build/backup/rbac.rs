//! The identities of the backup pods: one ServiceAccount for the backups (which read the
//! SecurityGuard and its ConfigMaps for the configuration backup) and one for the log archive
//! (which reads the API pods' logs). Each is bound in this namespace to a ClusterRole shipped
//! with the operator (config/rbac), holding exactly that; restore and drill pods use the backup
//! account without a token.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};

use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{Component, ValidatedGuard, backup_service_account, log_archive_service_account};

/// ClusterRole of the backup pods: get the SecurityGuard, list its ConfigMaps.
pub const BACKUP_CLUSTER_ROLE: &str = "securityguard-backup";
/// ClusterRole of the log-archive pods: list pods, get their logs.
pub const LOG_ARCHIVE_CLUSTER_ROLE: &str = "securityguard-log-archive";

/// ServiceAccounts and RoleBindings, when backups are on.
pub fn build(guard: &ValidatedGuard) -> (Vec<ServiceAccount>, Vec<RoleBinding>) {
    if guard.spec.backup.is_none() {
        return (Vec::new(), Vec::new());
    }
    let mut accounts = Vec::new();
    let mut bindings = Vec::new();
    for (account, role) in [
        (backup_service_account(&guard.name), BACKUP_CLUSTER_ROLE),
        (log_archive_service_account(&guard.name), LOG_ARCHIVE_CLUSTER_ROLE),
    ] {
        accounts.push(ServiceAccount {
            metadata: metadata(guard, Component::Backup, account.clone()),
            // Pods that need the API ask for a token themselves.
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        });
        bindings.push(RoleBinding {
            metadata: metadata(guard, Component::Backup, account.clone()),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: role.to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: account,
                namespace: Some(guard.namespace.clone()),
                api_group: None,
            }]),
        });
    }
    (accounts, bindings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn each_account_is_bound_to_its_own_role_in_the_namespace() {
        let (accounts, bindings) =
            build(&guard(&format!("{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3}}\n")));
        let bindings = serde_json::to_value(&bindings).expect("serializes");
        assert_eq!(accounts.len(), 2);
        assert_eq!(bindings[0]["roleRef"]["name"], BACKUP_CLUSTER_ROLE);
        assert_eq!(
            bindings[0]["subjects"][0],
            serde_json::json!({"kind": "ServiceAccount", "name": "sg-backup", "namespace": "prod"})
        );
        assert_eq!(bindings[1]["roleRef"]["name"], LOG_ARCHIVE_CLUSTER_ROLE);
        assert_eq!(bindings[1]["subjects"][0]["name"], "sg-log-archive");
        assert!(build(&guard(MINIMAL)).0.is_empty());
    }
}
