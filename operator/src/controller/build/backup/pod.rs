//! The backup pod shared by the CronJobs and the one-off Jobs: the operator's own image running
//! `securityguard-operator backup|restore|archive-logs|backups claim-restore`, restricted,
//! tokenless, reporting its outcome as JSON in its termination message.
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, ResourceRequirements, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controller::build::bucket::{encryption_key, own_folder, s3_env};
use crate::controller::build::meta::{client_labels, labels};
use crate::controller::build::pod::{
    database_env, empty_dir, mount, plain_env, resources, restricted_container_security_context,
    restricted_pod_security_context,
};
use crate::controller::vocabulary::{
    Component, JOB_KIND_LABEL, JobKind, REQUEST_LABEL, ValidatedGuard, backup_service_account, local_volume_name,
    log_archive_service_account,
};
use crate::crd::BackupSpec;

/// User the operator image runs as.
pub const JOB_UID: i64 = 65532;
/// Where the termination message is written (the kubelet's default path).
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Seconds a finished Job is kept (its outcome is in the status by then).
pub const FINISHED_JOB_TTL_SECONDS: i32 = 7 * 24 * 3600;
/// Folder, beside the guards' folders, of the safety backups taken before a restore. Not a
/// valid object name, so never a SecurityGuard's folder; not under the guard's own folder, so
/// `latest` never picks a safety backup.
pub const SAFETY_FOLDER: &str = ".safety";
/// Mount path of the local tier.
pub const LOCAL_DIR: &str = "/backups";
/// Mount path of the restore's scratch space (the downloaded dump).
pub const WORK_DIR: &str = "/work";

/// The key folder of the guard's backups (`SG_GUARD`): `<namespace>/<name>`, or for safety
/// backups `<namespace>/.safety/<name>`.
pub fn guard_folder(guard: &ValidatedGuard, kind: JobKind) -> String {
    match kind {
        JobKind::SafetyBackup | JobKind::Rollback => format!("{}/{SAFETY_FOLDER}/{}", guard.namespace, guard.name),
        _ => own_folder(guard),
    }
}

/// Labels of a backup pod and its Job.
pub fn job_labels(guard: &ValidatedGuard, kind: JobKind, request_id: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = labels(guard, Component::Backup);
    labels.insert(JOB_KIND_LABEL.to_owned(), kind.as_str().to_owned());
    if let Some(id) = request_id {
        labels.insert(REQUEST_LABEL.to_owned(), id.to_owned());
    }
    labels
}

/// The Job spec shared by CronJobs and one-off Jobs: one attempt (a failure is reported, the
/// next schedule or the restore's next step decides), kept a week after it finishes.
pub fn job_spec(
    guard: &ValidatedGuard,
    backup: &BackupSpec,
    kind: JobKind,
    image: &str,
    extra_env: Vec<EnvVar>,
) -> JobSpec {
    JobSpec {
        backoff_limit: Some(0),
        ttl_seconds_after_finished: Some(FINISHED_JOB_TTL_SECONDS),
        template: pod_template(guard, backup, kind, image, extra_env),
        ..JobSpec::default()
    }
}

/// The backup pod doing `kind`, running `image` with the guard's database and S3 settings.
pub fn pod_template(
    guard: &ValidatedGuard,
    backup: &BackupSpec,
    kind: JobKind,
    image: &str,
    extra_env: Vec<EnvVar>,
) -> PodTemplateSpec {
    let mut pod_labels = job_labels(guard, kind, None);
    // The claim reaches S3 only: it is no datastore client.
    if kind != JobKind::ClaimRestore {
        pod_labels.extend(client_labels(guard));
    }
    let (args, service_account, api_access) = match kind {
        JobKind::Backup => (vec!["backup"], backup_service_account(&guard.name), true),
        JobKind::SafetyBackup => (vec!["backup"], backup_service_account(&guard.name), false),
        JobKind::Verify => (vec!["restore", "--verify-only"], backup_service_account(&guard.name), false),
        JobKind::Restore | JobKind::Rollback => (vec!["restore"], backup_service_account(&guard.name), false),
        JobKind::LogArchive => (vec!["archive-logs"], log_archive_service_account(&guard.name), true),
        JobKind::ClaimRestore => (vec!["backups", "claim-restore"], backup_service_account(&guard.name), false),
    };
    let local = backup.local.is_some() && kind == JobKind::Backup;
    let (volumes, mounts) = volumes(guard, backup, kind, local);
    let mut env = env(guard, backup, kind, local);
    env.extend(extra_env);
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
        spec: Some(PodSpec {
            service_account_name: Some(service_account),
            automount_service_account_token: Some(api_access),
            restart_policy: Some("Never".to_owned()),
            security_context: Some(restricted_pod_security_context(JOB_UID)),
            containers: vec![job_container(
                kind,
                image,
                "securityguard-operator",
                args.into_iter().map(str::to_owned).collect(),
                env,
                resources("100m", "128Mi", "512Mi"),
                mounts,
            )],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

/// The container of a Job's pod doing `kind`: `command` of `image` with `args`, restricted,
/// writing its summary as its termination message.
pub fn job_container(
    kind: JobKind,
    image: &str,
    command: &str,
    args: Vec<String>,
    env: Vec<EnvVar>,
    resources: ResourceRequirements,
    mounts: Vec<VolumeMount>,
) -> Container {
    Container {
        name: kind.as_str().to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec![command.to_owned()]),
        args: Some(args),
        env: Some(env),
        resources: Some(resources),
        security_context: Some(restricted_container_security_context()),
        termination_message_path: Some(TERMINATION_LOG.to_owned()),
        termination_message_policy: Some("File".to_owned()),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// Scratch space, the restore's work directory, the local tier's volume for a backup, and the
/// encryption keys.
fn volumes(guard: &ValidatedGuard, backup: &BackupSpec, kind: JobKind, local: bool) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![empty_dir("tmp")];
    let mut mounts = vec![mount("tmp", "/tmp")];
    if matches!(kind, JobKind::Verify | JobKind::Restore | JobKind::Rollback) {
        volumes.push(empty_dir("work"));
        mounts.push(mount("work", WORK_DIR));
    }
    if local {
        volumes.push(Volume {
            name: "local".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: local_volume_name(&guard.name),
                read_only: None,
            }),
            ..Volume::default()
        });
        mounts.push(mount("local", LOCAL_DIR));
    }
    if let Some((volume, key_mount, _)) = encryption_key(backup) {
        volumes.push(volume);
        mounts.push(key_mount);
    }
    (volumes, mounts)
}

/// The environment of the backup pod doing `kind` (the request's own variables come after).
fn env(guard: &ValidatedGuard, backup: &BackupSpec, kind: JobKind, local: bool) -> Vec<EnvVar> {
    let mut env = Vec::new();
    if !matches!(kind, JobKind::LogArchive | JobKind::ClaimRestore) {
        env.extend(database_env(guard));
    }
    env.extend(s3_env(guard, backup, guard_folder(guard, kind)));
    match kind {
        JobKind::Backup | JobKind::SafetyBackup => {
            env.push(plain_env("SG_BACKUP_RETENTION_DAYS_S3", backup.retention.s3_days.to_string()));
            env.push(plain_env("SG_BACKUP_RETENTION_DAYS_LOCAL", backup.retention.local_days.to_string()));
            env.push(plain_env("SG_BACKUP_KEEP_LAST", backup.retention.keep_last.to_string()));
            if local {
                env.push(plain_env("SG_BACKUP_LOCAL_DIR", LOCAL_DIR.to_owned()));
            }
            if kind == JobKind::Backup {
                env.push(plain_env("SG_BACKUP_CONFIG", "true".to_owned()));
            }
        }
        JobKind::Verify => {
            env.push(plain_env("SG_RESTORE_VERIFY_ONLY", "true".to_owned()));
            let targets = &backup.verify.targets;
            env.push(plain_env("SG_DRILL_RECOVERY_TIME_TARGET", targets.recovery_time.clone()));
            env.push(plain_env("SG_DRILL_RECOVERY_POINT_TARGET", targets.recovery_point.clone()));
        }
        JobKind::Restore | JobKind::Rollback => env.push(plain_env("SG_RESTORE_WORK_DIR", WORK_DIR.to_owned())),
        JobKind::LogArchive => {
            env.push(plain_env("SG_BACKUP_RETENTION_DAYS_S3", backup.retention.s3_days.to_string()));
        }
        JobKind::ClaimRestore => {}
    }
    if let Some((_, _, key_file)) = encryption_key(backup) {
        env.push(key_file);
    }
    env.push(plain_env("SG_TERMINATION_LOG", TERMINATION_LOG.to_owned()));
    env
}
