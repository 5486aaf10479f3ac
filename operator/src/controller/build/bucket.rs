//! Fragments of every pod that reaches the backup bucket (the backup Jobs, the WAL archiver
//! beside PostgreSQL, the point-in-time restore): where the backups are, the S3 credentials
//! read from their Secret (never copied), and the encryption keys as a mounted file.

use k8s_openapi::api::core::v1::{EnvVar, KeyToPath, SecretVolumeSource, Volume, VolumeMount};

use crate::controller::build::pod::{mount, plain_env, secret_env};
use crate::controller::vocabulary::ValidatedGuard;
use crate::crd::backup::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::crd::{BackupSpec, EncryptionSpec, SecretKeyReference, ServerSideEncryptionType};

/// Mount path of the encryption keys (`spec.backup.encryption.keySecret`).
pub const ENCRYPTION_KEY_DIR: &str = "/var/run/securityguard/backup-encryption";
/// The file of the keys in [`ENCRYPTION_KEY_DIR`].
pub const ENCRYPTION_KEY_FILE: &str = "keys";

/// The guard's own key folder (`SG_GUARD`): `<namespace>/<name>`.
pub fn own_folder(guard: &ValidatedGuard) -> String {
    format!("{}/{}", guard.namespace, guard.name)
}

/// Where the backups are, for the key folder `folder` (`SG_GUARD`), and the credentials to reach
/// them (from the Secret, never copied).
pub fn s3_env(guard: &ValidatedGuard, backup: &BackupSpec, folder: String) -> Vec<EnvVar> {
    let s3 = &backup.s3;
    let credential =
        |key: &str| secret_env(key, &SecretKeyReference { name: s3.credentials_secret.clone(), key: key.to_owned() });
    let mut env = vec![
        plain_env("SG_BACKUP_BUCKET", s3.bucket.clone()),
        plain_env("SG_BACKUP_PREFIX", s3.prefix.clone()),
        plain_env("SG_BACKUP_REGION", s3.region.clone()),
        credential(ACCESS_KEY_ID),
        credential(SECRET_ACCESS_KEY),
        plain_env("SG_GUARD", folder),
        plain_env("SG_GUARD_NAMESPACE", guard.namespace.clone()),
        plain_env("SG_GUARD_NAME", guard.name.clone()),
    ];
    if let Some(endpoint) = &s3.endpoint {
        env.push(plain_env("SG_BACKUP_ENDPOINT", endpoint.clone()));
    }
    if s3.path_style {
        env.push(plain_env("SG_BACKUP_PATH_STYLE", "true".to_owned()));
    }
    if let Some(sse) = &s3.server_side_encryption {
        match (sse.type_, &sse.kms_key_id) {
            (ServerSideEncryptionType::SseKms, Some(key_id)) => {
                env.push(plain_env("SG_BACKUP_SSE_KMS_KEY_ID", key_id.clone()));
            }
            (ServerSideEncryptionType::SseS3, _) => env.push(plain_env("SG_BACKUP_SSE_S3", "true".to_owned())),
            // Refused at admission, and by validation: never built.
            (ServerSideEncryptionType::SseKms, None) => {}
        }
    }
    env
}

/// The Secret key of the encryption keys as a read-only file (readable by the pod's group
/// only), its mount, and the variable naming the file; nothing without
/// `spec.backup.encryption`.
pub fn encryption_key(backup: &BackupSpec) -> Option<(Volume, VolumeMount, EnvVar)> {
    let encryption = backup.encryption.as_ref()?;
    let (volume, key_mount) = encryption_key_volume(encryption);
    let env = plain_env("SG_BACKUP_ENCRYPTION_KEY_FILE", format!("{ENCRYPTION_KEY_DIR}/{ENCRYPTION_KEY_FILE}"));
    Some((volume, key_mount, env))
}

fn encryption_key_volume(encryption: &EncryptionSpec) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: "encryption-key".to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(encryption.key_secret.name.clone()),
            items: Some(vec![KeyToPath {
                key: encryption.key_secret.key.clone(),
                path: ENCRYPTION_KEY_FILE.to_owned(),
                mode: None,
            }]),
            default_mode: Some(0o440),
            optional: None,
        }),
        ..Volume::default()
    };
    (volume, VolumeMount { read_only: Some(true), ..mount("encryption-key", ENCRYPTION_KEY_DIR) })
}
