//! The pod of the point-in-time restore and of its rollback: it runs in the managed
//! PostgreSQL's image (the recovery needs the `postgres` server binaries) with the data volume
//! of the StatefulSet's pod mounted, while the StatefulSet is scaled to 0. The operator's binary
//! reaches that image through an init container of the operator's image that copies itself into
//! a scratch volume (`install-self`).

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::pod::{FINISHED_JOB_TTL_SECONDS, TERMINATION_LOG, job_container, job_labels};
use crate::controller::build::bucket::{encryption_key, own_folder, s3_env};
use crate::controller::build::pod::{
    empty_dir, mount, plain_env, resources, restricted_container_security_context, restricted_pod_security_context,
};
use crate::controller::vocabulary::{
    DATA_VOLUME, JobKind, POSTGRES_DATA_DIR, POSTGRES_UID, ValidatedGuard, backup_service_account, postgres_data_claim,
};
use crate::crd::{BackupSpec, ManagedPostgres};

/// Where the init container puts the operator's binary.
pub const BIN_DIR: &str = "/sg/bin";
/// The operator's binary in [`BIN_DIR`].
pub const BINARY: &str = "/sg/bin/securityguard-operator";

/// What the pod does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Recover the data directory to `target`.
    Restore {
        /// The time recovered to.
        target: Timestamp,
    },
    /// Move back the data directory the restore kept aside.
    RollBack,
}

impl Step {
    /// The kind of Job (and the name of its container).
    fn kind(self) -> JobKind {
        match self {
            Self::Restore { .. } => JobKind::Restore,
            Self::RollBack => JobKind::Rollback,
        }
    }
}

/// One step of the point-in-time restore of `request_id`.
pub struct Recovery<'a> {
    /// The guard.
    pub guard: &'a ValidatedGuard,
    /// Where the backups and the WAL archive are.
    pub backup: &'a BackupSpec,
    /// The managed PostgreSQL: its image and resources.
    pub postgres: &'a ManagedPostgres,
    /// The restore's request.
    pub request_id: &'a str,
    /// What the pod does.
    pub step: Step,
    /// The operator's image, which the init container copies the binary from.
    pub operator_image: &'a str,
}

impl Recovery<'_> {
    /// The Job spec: one attempt, kept a week, as every restore Job.
    pub fn job_spec(&self) -> JobSpec {
        JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(FINISHED_JOB_TTL_SECONDS),
            template: self.pod_template(),
            ..JobSpec::default()
        }
    }

    fn pod_template(&self) -> PodTemplateSpec {
        let kind = self.step.kind();
        let (volumes, mounts) = volumes(self.guard, self.backup);
        let labels = job_labels(self.guard, kind, Some(self.request_id));
        let resources = self.postgres.resources.clone().unwrap_or_else(|| resources("250m", "512Mi", "2Gi"));
        let env = env(self.guard, self.backup, self.postgres);
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
            spec: Some(PodSpec {
                service_account_name: Some(backup_service_account(&self.guard.name)),
                automount_service_account_token: Some(false),
                restart_policy: Some("Never".to_owned()),
                security_context: Some(restricted_pod_security_context(POSTGRES_UID)),
                init_containers: Some(vec![install_self(self.operator_image)]),
                containers: vec![job_container(
                    kind,
                    &self.postgres.image,
                    BINARY,
                    self.args(),
                    env,
                    resources,
                    mounts,
                )],
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
        }
    }

    /// `restore --point-in-time T ...` or `restore --roll-back-point-in-time ...`.
    fn args(&self) -> Vec<String> {
        let mut args = vec!["restore".to_owned()];
        match self.step {
            Step::Restore { target } => args.extend(["--point-in-time".to_owned(), target.to_string()]),
            Step::RollBack => args.push("--roll-back-point-in-time".to_owned()),
        }
        let data_dir = ["--data-dir", POSTGRES_DATA_DIR, "--request-id", self.request_id];
        args.extend(data_dir.map(str::to_owned));
        args
    }
}

/// The bucket and the guard's own folder (the WAL archive's), the superuser the checks of the
/// recovered cluster connect as, the claimant of the request (the ledger records the restore),
/// the keys' file, the termination log.
fn env(guard: &ValidatedGuard, backup: &BackupSpec, postgres: &ManagedPostgres) -> Vec<EnvVar> {
    let mut env = s3_env(guard, backup, own_folder(guard));
    env.push(plain_env("PGUSER", postgres.user.clone()));
    env.push(plain_env("SG_RESTORE_CLAIMANT", guard.owner.uid.clone()));
    if let Some((_, _, key_file)) = encryption_key(backup) {
        env.push(key_file);
    }
    env.push(plain_env("SG_TERMINATION_LOG", TERMINATION_LOG.to_owned()));
    env
}

/// The operator's image copying its binary into the scratch volume the main container runs it
/// from.
fn install_self(operator_image: &str) -> Container {
    Container {
        name: "install-self".to_owned(),
        image: Some(operator_image.to_owned()),
        command: Some(vec!["securityguard-operator".to_owned()]),
        args: Some(vec!["install-self".to_owned(), BINARY.to_owned()]),
        resources: Some(resources("50m", "32Mi", "128Mi")),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![mount("sg-bin", BIN_DIR)]),
        ..Container::default()
    }
}

/// PostgreSQL's data volume (its StatefulSet's claim of pod 0), the binary's scratch volume, the
/// private server's socket and temporary directories, and the encryption keys.
fn volumes(guard: &ValidatedGuard, backup: &BackupSpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let data = Volume {
        name: DATA_VOLUME.to_owned(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: postgres_data_claim(&guard.name),
            read_only: None,
        }),
        ..Volume::default()
    };
    let mut volumes = vec![data, empty_dir("sg-bin"), empty_dir("run"), empty_dir("tmp")];
    let mut mounts = vec![
        mount(DATA_VOLUME, POSTGRES_DATA_DIR),
        VolumeMount { read_only: Some(true), ..mount("sg-bin", BIN_DIR) },
        mount("run", "/var/run/postgresql"),
        mount("tmp", "/tmp"),
    ];
    if let Some((volume, key_mount, _)) = encryption_key(backup) {
        volumes.push(volume);
        mounts.push(key_mount);
    }
    (volumes, mounts)
}
