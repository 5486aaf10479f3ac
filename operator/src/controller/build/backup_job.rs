//! The pods that back up, restore and check the database, and the one-off Jobs a request or a
//! restore asks for. Every such pod runs the operator's own image (`securityguard-operator
//! backup|restore|archive-logs`) and reports its outcome as JSON in its termination message.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec,
    ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::deployment::{database_env, plain_env, secret_env};
use super::network_policy::client_labels;
use super::{Component, labels, metadata, restricted_container_security_context, restricted_pod_security_context};
use crate::controller::validate::ValidatedGuard;
use crate::crd::{BackupSpec, SecretKeyReference};

/// Label naming what a backup pod does (`backup`, `verify`, `log-archive`, `safety-backup`,
/// `restore`, `rollback`).
pub const JOB_KIND_LABEL: &str = "securityguard.io/job";
/// Label carrying the `requestId` a Job was created for.
pub const REQUEST_LABEL: &str = "securityguard.io/request";
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

/// What a backup pod does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// A scheduled or on-demand backup.
    Backup,
    /// A restore drill into a scratch database.
    Verify,
    /// The weekly archive of the API's logs.
    LogArchive,
    /// The backup taken before a restore.
    SafetyBackup,
    /// The restore.
    Restore,
    /// Restoring the safety backup after a failed restore.
    Rollback,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 6] =
        [Self::Backup, Self::Verify, Self::LogArchive, Self::SafetyBackup, Self::Restore, Self::Rollback];

    /// Value of [`JOB_KIND_LABEL`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Verify => "verify",
            Self::LogArchive => "log-archive",
            Self::SafetyBackup => "safety-backup",
            Self::Restore => "restore",
            Self::Rollback => "rollback",
        }
    }

    /// The kind named by a label value.
    pub fn from_label(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// A one-off Job that the reconcile wants to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRequest {
    /// `spec.backup.requestId`.
    Backup {
        /// The request.
        request_id: String,
    },
    /// The safety backup of a restore.
    SafetyBackup {
        /// The restore's request.
        request_id: String,
    },
    /// The restore itself.
    Restore {
        /// The restore's request.
        request_id: String,
        /// `latest`, `before:<time>` or a key.
        source: String,
    },
    /// Restoring the safety backup.
    Rollback {
        /// The restore's request.
        request_id: String,
        /// Key of the safety backup.
        key: String,
    },
}

impl JobRequest {
    /// What the Job does.
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Backup { .. } => JobKind::Backup,
            Self::SafetyBackup { .. } => JobKind::SafetyBackup,
            Self::Restore { .. } => JobKind::Restore,
            Self::Rollback { .. } => JobKind::Rollback,
        }
    }

    /// The request it serves.
    pub fn request_id(&self) -> &str {
        match self {
            Self::Backup { request_id }
            | Self::SafetyBackup { request_id }
            | Self::Restore { request_id, .. }
            | Self::Rollback { request_id, .. } => request_id,
        }
    }

    /// Name of the Job: stable, so that creating it twice (a reconcile repeated, an operator
    /// restarted) finds the first one.
    pub fn job_name(&self, guard: &str) -> String {
        let hash = &super::short_hash(self.request_id().as_bytes())[..8];
        let suffix = match self {
            Self::Backup { .. } => format!("backup-{hash}"),
            Self::SafetyBackup { .. } => format!("restore-{hash}-safety"),
            Self::Restore { .. } => format!("restore-{hash}"),
            Self::Rollback { .. } => format!("restore-{hash}-rollback"),
        };
        bounded_name(guard, &suffix, 63)
    }
}

/// `<guard>-<suffix>`, shortened to `max` characters by cutting the guard's name and adding a
/// hash of it, so distinct guards keep distinct names.
pub fn bounded_name(guard: &str, suffix: &str, max: usize) -> String {
    let full = format!("{guard}-{suffix}");
    if full.len() <= max {
        return full;
    }
    let hash = &super::short_hash(guard.as_bytes())[..6];
    let keep = max.saturating_sub(suffix.len() + hash.len() + 2);
    let cut: String = guard.chars().take(keep).collect();
    format!("{}-{hash}-{suffix}", cut.trim_end_matches(['-', '.']))
}

/// Name of the ServiceAccount of the backup pods (and of the Role binding it may read the
/// SecurityGuard and its ConfigMaps).
pub fn backup_service_account(guard: &str) -> String {
    bounded_name(guard, "backup", 63)
}

/// Name of the ServiceAccount of the log-archive pods (may read the API pods' logs).
pub fn log_archive_service_account(guard: &str) -> String {
    bounded_name(guard, "log-archive", 63)
}

/// Name of the local-tier volume claim.
pub fn local_volume_name(guard: &str) -> String {
    bounded_name(guard, "backups", 63)
}

/// The key folder of the guard's backups (`SG_GUARD`): `<namespace>/<name>`, or for safety
/// backups `<namespace>/.safety/<name>`.
pub fn guard_folder(guard: &ValidatedGuard, kind: JobKind) -> String {
    match kind {
        JobKind::SafetyBackup | JobKind::Rollback => format!("{}/{SAFETY_FOLDER}/{}", guard.namespace, guard.name),
        _ => format!("{}/{}", guard.namespace, guard.name),
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
pub fn job_spec(guard: &ValidatedGuard, backup: &BackupSpec, kind: JobKind, extra_env: Vec<EnvVar>) -> JobSpec {
    JobSpec {
        backoff_limit: Some(0),
        ttl_seconds_after_finished: Some(FINISHED_JOB_TTL_SECONDS),
        template: pod_template(guard, backup, kind, extra_env),
        ..JobSpec::default()
    }
}

/// A one-off Job for a request, owned by the SecurityGuard.
pub fn build(guard: &ValidatedGuard, backup: &BackupSpec, request: &JobRequest) -> Job {
    let kind = request.kind();
    let extra = match request {
        JobRequest::Backup { .. } | JobRequest::SafetyBackup { .. } => Vec::new(),
        JobRequest::Restore { source, .. } => vec![plain_env("SG_RESTORE_SOURCE", source.clone())],
        JobRequest::Rollback { key, .. } => vec![plain_env("SG_RESTORE_SOURCE", key.clone())],
    };
    let mut meta = metadata(guard, Component::Backup, request.job_name(&guard.name));
    meta.labels = Some(job_labels(guard, kind, Some(request.request_id())));
    let mut spec = job_spec(guard, backup, kind, extra);
    if let Some(meta) = spec.template.metadata.as_mut() {
        meta.labels.get_or_insert_default().insert(REQUEST_LABEL.to_owned(), request.request_id().to_owned());
    }
    Job { metadata: meta, spec: Some(spec), ..Job::default() }
}

fn pod_template(guard: &ValidatedGuard, backup: &BackupSpec, kind: JobKind, extra_env: Vec<EnvVar>) -> PodTemplateSpec {
    let mut pod_labels = job_labels(guard, kind, None);
    pod_labels.extend(client_labels(guard));
    let (args, service_account, api_access) = match kind {
        JobKind::Backup => (vec!["backup"], backup_service_account(&guard.name), true),
        JobKind::SafetyBackup => (vec!["backup"], backup_service_account(&guard.name), false),
        JobKind::Verify => (vec!["restore", "--verify-only"], backup_service_account(&guard.name), false),
        JobKind::Restore | JobKind::Rollback => (vec!["restore"], backup_service_account(&guard.name), false),
        JobKind::LogArchive => (vec!["archive-logs"], log_archive_service_account(&guard.name), true),
    };
    let mut volumes = vec![empty_dir("tmp")];
    let mut mounts = vec![mount("tmp", "/tmp")];
    if matches!(kind, JobKind::Verify | JobKind::Restore | JobKind::Rollback) {
        volumes.push(empty_dir("work"));
        mounts.push(mount("work", WORK_DIR));
    }
    let local = backup.local.is_some() && kind == JobKind::Backup;
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

    let mut env = Vec::new();
    if kind != JobKind::LogArchive {
        env.extend(database_env(guard));
    }
    env.extend(s3_env(guard, backup, kind));
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
        JobKind::Verify => env.push(plain_env("SG_RESTORE_VERIFY_ONLY", "true".to_owned())),
        JobKind::Restore | JobKind::Rollback => env.push(plain_env("SG_RESTORE_WORK_DIR", WORK_DIR.to_owned())),
        JobKind::LogArchive => {
            env.push(plain_env("SG_BACKUP_RETENTION_DAYS_S3", backup.retention.s3_days.to_string()));
        }
    }
    env.push(plain_env("SG_TERMINATION_LOG", TERMINATION_LOG.to_owned()));
    env.extend(extra_env);

    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
        spec: Some(PodSpec {
            service_account_name: Some(service_account),
            automount_service_account_token: Some(api_access),
            restart_policy: Some("Never".to_owned()),
            security_context: Some(restricted_pod_security_context(JOB_UID)),
            containers: vec![Container {
                name: kind.as_str().to_owned(),
                image: Some(guard.directives.job_image.clone()),
                command: Some(vec!["securityguard-operator".to_owned()]),
                args: Some(args.into_iter().map(str::to_owned).collect()),
                env: Some(env),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity("100m".to_owned())),
                        ("memory".to_owned(), Quantity("128Mi".to_owned())),
                    ])),
                    limits: Some(BTreeMap::from([("memory".to_owned(), Quantity("512Mi".to_owned()))])),
                    ..ResourceRequirements::default()
                }),
                security_context: Some(restricted_container_security_context()),
                termination_message_path: Some(TERMINATION_LOG.to_owned()),
                termination_message_policy: Some("File".to_owned()),
                volume_mounts: Some(mounts),
                ..Container::default()
            }],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

/// Where the backups are, and the credentials to reach them (from the Secret, never copied).
fn s3_env(guard: &ValidatedGuard, backup: &BackupSpec, kind: JobKind) -> Vec<EnvVar> {
    let s3 = &backup.s3;
    let credential =
        |key: &str| secret_env(key, &SecretKeyReference { name: s3.credentials_secret.clone(), key: key.to_owned() });
    let mut env = vec![
        plain_env("SG_BACKUP_BUCKET", s3.bucket.clone()),
        plain_env("SG_BACKUP_PREFIX", s3.prefix.clone()),
        plain_env("SG_BACKUP_REGION", s3.region.clone()),
        credential("AWS_ACCESS_KEY_ID"),
        credential("AWS_SECRET_ACCESS_KEY"),
        plain_env("SG_GUARD", guard_folder(guard, kind)),
        plain_env("SG_GUARD_NAMESPACE", guard.namespace.clone()),
        plain_env("SG_GUARD_NAME", guard.name.clone()),
    ];
    if let Some(endpoint) = &s3.endpoint {
        env.push(plain_env("SG_BACKUP_ENDPOINT", endpoint.clone()));
    }
    if s3.path_style {
        env.push(plain_env("SG_BACKUP_PATH_STYLE", "true".to_owned()));
    }
    env
}

fn empty_dir(name: &str) -> Volume {
    Volume { name: name.to_owned(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.to_owned(), mount_path: path.to_owned(), ..VolumeMount::default() }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{MINIMAL, guard};
    use super::*;

    const BACKUP: &str = "  backup:\n    s3: {bucket: sg-backups, credentialsSecret: s3, endpoint: 'http://s3.local:9000', pathStyle: true}\n";

    fn restore_job(request: &JobRequest) -> serde_json::Value {
        let guard = guard(&format!("{MINIMAL}{BACKUP}"));
        let backup = guard.spec.backup.clone().expect("backup set");
        serde_json::to_value(build(&guard, &backup, request)).expect("serializes")
    }

    #[test]
    fn a_restore_job_is_restricted_tokenless_and_names_its_source() {
        let job = restore_job(&JobRequest::Restore { request_id: "r1".into(), source: "latest".into() });
        assert_eq!(job["metadata"]["name"], format!("sg-restore-{}", &super::super::short_hash(b"r1")[..8]));
        assert_eq!(job["metadata"]["labels"][JOB_KIND_LABEL], "restore");
        assert_eq!(job["metadata"]["labels"][REQUEST_LABEL], "r1");
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let container = &pod["containers"][0];
        assert_eq!(container["args"], serde_json::json!(["restore"]));
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
        let env = container["env"].as_array().expect("env");
        let value = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap_or_default();
        assert_eq!(value("SG_RESTORE_SOURCE")["value"], "latest");
        assert_eq!(value("SG_GUARD")["value"], "prod/sg");
        assert_eq!(value("SG_BACKUP_ENDPOINT")["value"], "http://s3.local:9000");
        assert_eq!(value("SG_BACKUP_PATH_STYLE")["value"], "true");
        assert_eq!(value("AWS_SECRET_ACCESS_KEY")["valueFrom"]["secretKeyRef"]["name"], "s3");
        assert!(value("AWS_SECRET_ACCESS_KEY").get("value").is_none(), "no credential value in the Job");
        assert_eq!(value("DATABASE_PASSWORD")["valueFrom"]["secretKeyRef"]["name"], "sg-credentials");
        // The pod may reach the managed PostgreSQL.
        assert_eq!(job["spec"]["template"]["metadata"]["labels"]["securityguard.io/datastore-client"], "true");
    }

    #[test]
    fn safety_backups_and_rollbacks_use_the_safety_folder() {
        let safety = restore_job(&JobRequest::SafetyBackup { request_id: "r1".into() });
        let rollback = restore_job(&JobRequest::Rollback { request_id: "r1".into(), key: "k.pgdump".into() });
        for job in [&safety, &rollback] {
            let env = job["spec"]["template"]["spec"]["containers"][0]["env"].as_array().expect("env").clone();
            let folder = env.iter().find(|e| e["name"] == "SG_GUARD").expect("SG_GUARD")["value"].clone();
            assert_eq!(folder, "prod/.safety/sg");
        }
        assert_ne!(safety["metadata"]["name"], rollback["metadata"]["name"]);
        assert_eq!(safety["spec"]["template"]["spec"]["containers"][0]["args"], serde_json::json!(["backup"]));
    }

    #[test]
    fn long_names_are_bounded_and_distinct() {
        let a = bounded_name(&"a".repeat(80), "restore-12345678-rollback", 63);
        let b = bounded_name(&format!("{}b", "a".repeat(79)), "restore-12345678-rollback", 63);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.ends_with("-restore-12345678-rollback"));
        assert_eq!(bounded_name("sg", "backup", 63), "sg-backup");
    }
}
