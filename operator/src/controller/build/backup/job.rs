//! The one-off Jobs a request or a restore asks for (on-demand backup, the restore's claim in
//! the ledger, safety backup, restore, rollback, and a point-in-time restore and its rollback),
//! created once and never changed.

use k8s_openapi::api::batch::v1::{Job, JobSpec};

use super::pod::{job_labels, job_spec};
use super::recovery::{Recovery, Step};
use crate::controller::build::meta::metadata;
use crate::controller::build::pod::plain_env;
use crate::controller::vocabulary::{Component, JobRequest, REQUEST_LABEL, ValidatedGuard};
use crate::crd::BackupSpec;

/// A one-off Job for a request, owned by the SecurityGuard; `image` is the operator's. None for
/// a point-in-time restore of a PostgreSQL the operator does not run (never asked for).
pub fn build(guard: &ValidatedGuard, backup: &BackupSpec, request: &JobRequest, image: &str) -> Option<Job> {
    let step = match request {
        JobRequest::PointInTimeRestore { target, .. } => Some(Step::Restore { target: *target }),
        JobRequest::PointInTimeRollback { .. } => Some(Step::RollBack),
        _ => None,
    };
    let spec = match step {
        Some(step) => {
            let postgres = guard.postgres_managed()?;
            let request_id = request.request_id();
            Recovery { guard, backup, postgres, request_id, step, operator_image: image }.job_spec()
        }
        None => backup_job_spec(guard, backup, request, image),
    };
    let mut meta = metadata(guard, Component::Backup, request.job_name(&guard.name));
    meta.labels = Some(job_labels(guard, request.kind(), Some(request.request_id())));
    Some(Job { metadata: meta, spec: Some(spec), ..Job::default() })
}

/// The spec of a Job whose pod is the backup pod of the operator's image.
fn backup_job_spec(guard: &ValidatedGuard, backup: &BackupSpec, request: &JobRequest, image: &str) -> JobSpec {
    let kind = request.kind();
    // The claimant in the restore ledger is this SecurityGuard object: a re-created one of the
    // same name has another UID.
    let ledger = |request_id: &str| {
        [
            plain_env("SG_RESTORE_REQUEST_ID", request_id.to_owned()),
            plain_env("SG_RESTORE_CLAIMANT", guard.owner.uid.clone()),
        ]
    };
    let extra = match request {
        JobRequest::Backup { .. }
        | JobRequest::SafetyBackup { .. }
        | JobRequest::PointInTimeRestore { .. }
        | JobRequest::PointInTimeRollback { .. } => Vec::new(),
        JobRequest::ClaimRestore { request_id, source, .. } | JobRequest::Restore { request_id, source } => {
            let mut env = vec![plain_env("SG_RESTORE_SOURCE", source.clone())];
            env.extend(ledger(request_id));
            env
        }
        JobRequest::Rollback { key, .. } => vec![plain_env("SG_RESTORE_SOURCE", key.clone())],
    };
    let mut spec = job_spec(guard, backup, kind, image, extra);
    if let Some(meta) = spec.template.metadata.as_mut() {
        meta.labels.get_or_insert_default().insert(REQUEST_LABEL.to_owned(), request.request_id().to_owned());
    }
    // The claim of a point-in-time restore checks the time against the recoverable window.
    if let JobRequest::ClaimRestore { point_in_time: Some(target), .. } = request
        && let Some(container) = spec.template.spec.as_mut().and_then(|p| p.containers.first_mut())
    {
        container.args.get_or_insert_default().extend(["--point-in-time".to_owned(), target.to_string()]);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};
    use crate::controller::vocabulary::{JOB_KIND_LABEL, short_hash};

    const BACKUP: &str = "  backup:\n    s3: {bucket: sg-backups, credentialsSecret: s3, endpoint: 'http://s3.local:9000', pathStyle: true}\n";

    fn restore_job(request: &JobRequest) -> serde_json::Value {
        let guard = guard(&format!("{MINIMAL}{BACKUP}"));
        let backup = guard.spec.backup.clone().expect("backup set");
        serde_json::to_value(build(&guard, &backup, request, "operator:test")).expect("serializes")
    }

    #[test]
    fn a_restore_job_is_restricted_tokenless_and_names_its_source() {
        let job = restore_job(&JobRequest::Restore { request_id: "r1".into(), source: "latest".into() });
        assert_eq!(job["metadata"]["name"], format!("sg-restore-{}", &short_hash(b"r1")[..8]));
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
        assert_eq!(value("SG_RESTORE_REQUEST_ID")["value"], "r1", "the restore records itself in the ledger");
        assert_eq!(value("SG_RESTORE_CLAIMANT")["value"], "uid-1");
        assert_eq!(value("SG_GUARD")["value"], "prod/sg");
        assert_eq!(value("SG_BACKUP_ENDPOINT")["value"], "http://s3.local:9000");
        assert_eq!(value("SG_BACKUP_PATH_STYLE")["value"], "true");
        assert_eq!(value("AWS_SECRET_ACCESS_KEY")["valueFrom"]["secretKeyRef"]["name"], "s3");
        assert!(value("AWS_SECRET_ACCESS_KEY").get("value").is_none(), "no credential value in the Job");
        assert_eq!(value("DATABASE_PASSWORD")["valueFrom"]["secretKeyRef"]["name"], "sg-credentials");
        // The pod may reach the managed PostgreSQL.
        assert_eq!(job["spec"]["template"]["metadata"]["labels"]["securityguard.io/datastore-client"], "true");
    }

    const ENCRYPTED: &str = "  backup:\n    s3: {bucket: sg-backups, credentialsSecret: s3, serverSideEncryption: {type: SSE-KMS, kmsKeyId: alias/backups}}\n    encryption: {keySecret: {name: backup-key, key: keys}}\n";

    #[test]
    fn every_backup_pod_reads_the_encryption_keys_from_a_mounted_secret_never_from_args_or_env() {
        let guard = guard(&format!("{MINIMAL}{ENCRYPTED}"));
        let backup = guard.spec.backup.clone().expect("backup set");
        let requests = [
            JobRequest::Backup { request_id: "b1".into() },
            JobRequest::SafetyBackup { request_id: "r1".into() },
            JobRequest::Restore { request_id: "r1".into(), source: "latest".into() },
            JobRequest::Rollback { request_id: "r1".into(), key: "k.pgdump".into() },
        ];
        let cron_jobs = super::super::cron_job::build(&guard, false, "operator:test");
        let pods: Vec<serde_json::Value> = requests
            .iter()
            .map(|r| serde_json::to_value(build(&guard, &backup, r, "operator:test")).expect("job")["spec"]["template"]["spec"].clone())
            .chain(cron_jobs.iter().map(|c| {
                serde_json::to_value(c).expect("cron job")["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone()
            }))
            .collect();
        assert_eq!(pods.len(), 7, "four one-off Jobs, backup, drill and log archive");
        for pod in &pods {
            let volume = pod["volumes"].as_array().expect("volumes").iter().find(|v| v["name"] == "encryption-key");
            assert_eq!(
                volume.cloned(),
                Some(serde_json::json!({"name": "encryption-key", "secret": {
                    "secretName": "backup-key", "items": [{"key": "keys", "path": "keys"}], "defaultMode": 0o440}})),
                "{pod}"
            );
            let container = &pod["containers"][0];
            let mount =
                container["volumeMounts"].as_array().expect("mounts").iter().find(|m| m["name"] == "encryption-key");
            assert_eq!(
                mount.cloned(),
                Some(
                    serde_json::json!({"name": "encryption-key", "mountPath": "/var/run/securityguard/backup-encryption", "readOnly": true})
                )
            );
            let env = container["env"].as_array().expect("env");
            let value = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone());
            assert_eq!(
                value("SG_BACKUP_ENCRYPTION_KEY_FILE"),
                Some("/var/run/securityguard/backup-encryption/keys".into())
            );
            assert_eq!(value("SG_BACKUP_SSE_KMS_KEY_ID"), Some("alias/backups".into()));
            assert_eq!(value("SG_BACKUP_SSE_S3"), None);
            // The keys reach the pod only as that file: no variable reads the Secret, no argument names it.
            assert!(!env.iter().any(|e| e["valueFrom"]["secretKeyRef"]["name"] == "backup-key"), "{env:?}");
            let args = container["args"].as_array().expect("args");
            assert!(args.iter().all(|a| a.as_str().is_some_and(|a| !a.contains("key"))), "{args:?}");
        }
    }

    #[test]
    fn without_encryption_no_key_is_mounted_and_sse_s3_is_a_flag() {
        let guard = guard(&format!(
            "{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3, serverSideEncryption: {{type: SSE-S3}}}}\n"
        ));
        let backup = guard.spec.backup.clone().expect("backup set");
        let job = serde_json::to_value(build(&guard, &backup, &JobRequest::Backup { request_id: "b".into() }, "o:t"))
            .expect("job");
        let pod = &job["spec"]["template"]["spec"];
        assert!(pod["volumes"].as_array().expect("volumes").iter().all(|v| v["name"] != "encryption-key"));
        let env = pod["containers"][0]["env"].as_array().expect("env");
        let value = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone());
        assert_eq!(value("SG_BACKUP_ENCRYPTION_KEY_FILE"), None);
        assert_eq!(value("SG_BACKUP_SSE_S3"), Some("true".into()));
        assert_eq!(value("SG_BACKUP_SSE_KMS_KEY_ID"), None);
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
    fn the_claim_job_is_restricted_and_reaches_s3_only() {
        let job = restore_job(&JobRequest::ClaimRestore {
            request_id: "r1".into(),
            source: "latest".into(),
            point_in_time: None,
        });
        assert_eq!(job["metadata"]["name"], format!("sg-restore-{}-claim", &short_hash(b"r1")[..8]));
        assert_eq!(job["metadata"]["labels"][JOB_KIND_LABEL], "claim-restore");
        assert_eq!(job["metadata"]["labels"][REQUEST_LABEL], "r1");
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(job["spec"]["backoffLimit"], 0);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "sg-backup");
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let container = &pod["containers"][0];
        assert_eq!(container["command"], serde_json::json!(["securityguard-operator"]));
        assert_eq!(container["args"], serde_json::json!(["backups", "claim-restore"]));
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(container["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        let env = container["env"].as_array().expect("env");
        let value = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone());
        assert_eq!(value("SG_RESTORE_REQUEST_ID"), Some("r1".into()));
        assert_eq!(value("SG_RESTORE_CLAIMANT"), Some("uid-1".into()), "the guard's UID claims");
        assert_eq!(value("SG_RESTORE_SOURCE"), Some("latest".into()));
        assert_eq!(value("SG_GUARD"), Some("prod/sg".into()), "the ledger is in the guard's own folder");
        assert!(env.iter().all(|e| !e["name"].as_str().is_some_and(|n| n.starts_with("DATABASE"))), "{env:?}");
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert!(labels.get("securityguard.io/datastore-client").is_none(), "no access to the datastores");
        assert_eq!(labels[REQUEST_LABEL], "r1");
    }

    const PITR: &str = "  backup:\n    s3: {bucket: sg-backups, credentialsSecret: s3}\n    encryption: {keySecret: {name: backup-key, key: keys}}\n    pointInTime: {}\n";

    fn pitr_job(request: &JobRequest) -> serde_json::Value {
        let guard = guard(&format!("{MINIMAL}{PITR}"));
        let backup = guard.spec.backup.clone().expect("backup set");
        serde_json::to_value(build(&guard, &backup, request, "operator:test").expect("a job")).expect("serializes")
    }

    fn target() -> k8s_openapi::jiff::Timestamp {
        "2026-11-30T12:00:00Z".parse().expect("time")
    }

    #[test]
    fn the_claim_of_a_point_in_time_restore_checks_its_time() {
        let claim = JobRequest::ClaimRestore {
            request_id: "r1".into(),
            source: "before:2026-11-30T12:00:00Z".into(),
            point_in_time: Some(target()),
        };
        let job = pitr_job(&claim);
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"],
            serde_json::json!(["backups", "claim-restore", "--point-in-time", "2026-11-30T12:00:00Z"])
        );
    }

    #[test]
    fn the_point_in_time_restore_runs_the_operator_in_the_postgres_image_on_the_data_volume() {
        let job = pitr_job(&JobRequest::PointInTimeRestore { request_id: "r1".into(), target: target() });
        assert_eq!(job["metadata"]["name"], format!("sg-restore-{}", &short_hash(b"r1")[..8]));
        assert_eq!(job["metadata"]["labels"][JOB_KIND_LABEL], "restore");
        assert_eq!(job["metadata"]["labels"][REQUEST_LABEL], "r1");
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(job["spec"]["backoffLimit"], 0);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(job["spec"]["template"]["metadata"]["labels"][REQUEST_LABEL], "r1");
        assert!(job["spec"]["template"]["metadata"]["labels"].get("securityguard.io/datastore-client").is_none());
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(
            (&pod["securityContext"]["runAsUser"], &pod["securityContext"]["runAsNonRoot"]),
            (&serde_json::json!(999), &serde_json::json!(true))
        );
        let init = &pod["initContainers"][0];
        assert_eq!(init["image"], "operator:test");
        assert_eq!(init["command"], serde_json::json!(["securityguard-operator"]));
        assert_eq!(init["args"], serde_json::json!(["install-self", "/sg/bin/securityguard-operator"]));
        assert_eq!(init["volumeMounts"], serde_json::json!([{"name": "sg-bin", "mountPath": "/sg/bin"}]));
        let main = &pod["containers"][0];
        assert_eq!(main["image"], "postgres:15", "the server binaries of the managed PostgreSQL");
        assert_eq!(main["command"], serde_json::json!(["/sg/bin/securityguard-operator"]));
        assert_eq!(
            main["args"],
            serde_json::json!([
                "restore",
                "--point-in-time",
                "2026-11-30T12:00:00Z",
                "--data-dir",
                "/var/lib/postgresql/data",
                "--request-id",
                "r1"
            ])
        );
        assert_eq!(main["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(main["securityContext"]["allowPrivilegeEscalation"], false);
        let volumes = pod["volumes"].as_array().expect("volumes");
        let data = volumes.iter().find(|v| v["name"] == "data").expect("the data volume");
        assert_eq!(data["persistentVolumeClaim"]["claimName"], "data-sg-postgres-0");
        let mounts = main["volumeMounts"].as_array().expect("mounts");
        assert!(mounts.contains(&serde_json::json!({"name": "data", "mountPath": "/var/lib/postgresql/data"})));
        assert!(mounts.contains(&serde_json::json!({"name": "sg-bin", "mountPath": "/sg/bin", "readOnly": true})));
        let env = main["env"].as_array().expect("env");
        let value = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap_or_default();
        assert_eq!(value("SG_GUARD")["value"], "prod/sg", "the WAL archive of the guard's own folder");
        assert_eq!(value("SG_RESTORE_CLAIMANT")["value"], "uid-1");
        assert_eq!(value("PGUSER")["value"], "securityguard", "the managed PostgreSQL's superuser");
        assert_eq!(value("SG_BACKUP_ENCRYPTION_KEY_FILE")["value"], "/var/run/securityguard/backup-encryption/keys");
        assert_eq!(value("AWS_SECRET_ACCESS_KEY")["valueFrom"]["secretKeyRef"]["name"], "s3");
        assert!(env.iter().all(|e| e["valueFrom"]["secretKeyRef"]["name"] != "backup-key"));
        assert!(env.iter().all(|e| !e["name"].as_str().is_some_and(|n| n.starts_with("DATABASE"))), "{env:?}");
    }

    #[test]
    fn the_point_in_time_rollback_has_the_same_pod_and_moves_the_data_back() {
        let restore = pitr_job(&JobRequest::PointInTimeRestore { request_id: "r1".into(), target: target() });
        let rollback = pitr_job(&JobRequest::PointInTimeRollback { request_id: "r1".into() });
        assert_eq!(rollback["metadata"]["name"], format!("sg-restore-{}-rollback", &short_hash(b"r1")[..8]));
        assert_eq!(rollback["metadata"]["labels"][JOB_KIND_LABEL], "rollback");
        let (a, b) = (&restore["spec"]["template"]["spec"], &rollback["spec"]["template"]["spec"]);
        assert_eq!(a["volumes"], b["volumes"]);
        assert_eq!(a["initContainers"], b["initContainers"]);
        assert_eq!(a["containers"][0]["env"], b["containers"][0]["env"]);
        assert_eq!(
            b["containers"][0]["args"],
            serde_json::json!([
                "restore",
                "--roll-back-point-in-time",
                "--data-dir",
                "/var/lib/postgresql/data",
                "--request-id",
                "r1"
            ])
        );
        // Never for a PostgreSQL the operator does not run.
        let external =
            guard(&format!("{MINIMAL}  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n{PITR}"));
        let backup = external.spec.backup.clone().expect("backup");
        assert!(
            build(&external, &backup, &JobRequest::PointInTimeRollback { request_id: "r1".into() }, "o:t").is_none()
        );
    }
}
