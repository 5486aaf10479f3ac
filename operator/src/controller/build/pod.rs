//! Pod fragments every builder shares: security contexts, environment, probes, mounts,
//! resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, KeyToPath, Probe, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::controller::vocabulary::{
    Component, Datastore, FEED_TOKENS_DIR, FEED_TOKENS_FILE, FEED_TOKENS_KEY, POSTGRES_PASSWORD_KEY, POSTGRES_PORT,
    ValidatedGuard, credentials_secret_name, object_name,
};
use crate::crd::SecretKeyReference;

/// The container security context every container gets (Pod Security `restricted`).
pub fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
        ..SecurityContext::default()
    }
}

/// Pod-level security context for a non-root user (Pod Security `restricted`).
pub fn restricted_pod_security_context(uid: i64) -> k8s_openapi::api::core::v1::PodSecurityContext {
    k8s_openapi::api::core::v1::PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
        ..Default::default()
    }
}

/// DATABASE_URL (with DATABASE_PASSWORD before it for the managed PostgreSQL), as the API and
/// the backup pods get it.
pub fn database_env(guard: &ValidatedGuard) -> Vec<EnvVar> {
    match &guard.postgres {
        Datastore::External(url) => vec![secret_env("DATABASE_URL", url)],
        Datastore::Managed(m) => vec![
            secret_env("DATABASE_PASSWORD", &key_ref(&credentials_secret_name(&guard.name), POSTGRES_PASSWORD_KEY)),
            plain_env(
                "DATABASE_URL",
                format!(
                    "postgresql://{}:$(DATABASE_PASSWORD)@{}:{POSTGRES_PORT}/{}",
                    m.user,
                    object_name(&guard.name, Component::Postgres),
                    m.database
                ),
            ),
        ],
    }
}

/// A reference to a key of a Secret.
pub fn key_ref(name: &str, key: &str) -> SecretKeyReference {
    SecretKeyReference { name: name.to_owned(), key: key.to_owned() }
}

/// An environment variable read from a Secret key.
pub fn secret_env(name: &str, reference: &SecretKeyReference) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: reference.name.clone(),
                key: reference.key.clone(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// An environment variable with a literal value.
pub fn plain_env(name: &str, value: String) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value), ..EnvVar::default() }
}

/// A probe running a command every 5 s; six failures in a row count.
pub fn exec_probe(command: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(command.iter().map(|c| (*c).to_owned()).collect()) }),
        period_seconds: Some(5),
        timeout_seconds: Some(3),
        failure_threshold: Some(6),
        ..Probe::default()
    }
}

/// A volume mount.
pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.to_owned(), mount_path: path.to_owned(), ..VolumeMount::default() }
}

/// Requests of CPU and memory with a memory limit.
pub fn resources(cpu: &str, memory: &str, memory_limit: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), Quantity(memory_limit.to_owned()))])),
        ..ResourceRequirements::default()
    }
}

/// A scratch volume.
pub fn empty_dir(name: &str) -> Volume {
    Volume { name: name.to_owned(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }
}

/// The feed tokens of the generated credentials Secret as a read-only volume (not a subPath:
/// the kubelet updates it in place when the Secret changes, so tokens rotate without a restart),
/// its mount, and the path of the file.
pub fn feed_tokens_volume(guard: &ValidatedGuard) -> (Volume, VolumeMount, String) {
    let volume = Volume {
        name: "feed-tokens".to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(credentials_secret_name(&guard.name)),
            items: Some(vec![KeyToPath {
                key: FEED_TOKENS_KEY.to_owned(),
                path: FEED_TOKENS_FILE.to_owned(),
                mode: None,
            }]),
            default_mode: Some(0o440),
            optional: None,
        }),
        ..Volume::default()
    };
    let mount = VolumeMount { read_only: Some(true), ..mount("feed-tokens", FEED_TOKENS_DIR) };
    (volume, mount, format!("{FEED_TOKENS_DIR}/{FEED_TOKENS_FILE}"))
}
