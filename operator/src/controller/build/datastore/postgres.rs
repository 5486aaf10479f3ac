//! The managed PostgreSQL.

use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, Probe, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::stateful_set::{DatastoreParts, objects};
use super::wal_archiver;
use crate::controller::build::children::DatastoreObjects;
use crate::controller::build::pod::{exec_probe, mount, resources, restricted_container_security_context, secret_env};
use crate::controller::vocabulary::{
    Component, DATA_VOLUME, Directives, POSTGRES_DATA_DIR, POSTGRES_PASSWORD_KEY, POSTGRES_PORT, POSTGRES_UID,
    ValidatedGuard, WAL_METRICS_PORT, WAL_METRICS_PORT_NAME, credentials_secret_name,
};
use crate::crd::{ManagedPostgres, SecretKeyReference};

/// StatefulSet and Service of the managed PostgreSQL, with the WAL archiver beside it when
/// `spec.backup.pointInTime` asks for one (running `job_image`, the operator's), stopped while
/// `directives` say so.
pub fn build(
    guard: &ValidatedGuard,
    spec: &ManagedPostgres,
    directives: &Directives,
    job_image: &str,
) -> DatastoreObjects {
    let password =
        SecretKeyReference { name: credentials_secret_name(&guard.name), key: POSTGRES_PASSWORD_KEY.to_owned() };
    let ready = exec_probe(&["pg_isready", "-h", "127.0.0.1", "-U", &spec.user, "-d", &spec.database]);
    let container = Container {
        name: "postgres".to_owned(),
        image: Some(spec.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("postgres".to_owned()),
            container_port: POSTGRES_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(vec![
            EnvVar { name: "POSTGRES_USER".to_owned(), value: Some(spec.user.clone()), ..EnvVar::default() },
            EnvVar { name: "POSTGRES_DB".to_owned(), value: Some(spec.database.clone()), ..EnvVar::default() },
            secret_env("POSTGRES_PASSWORD", &password),
            EnvVar {
                name: "PGDATA".to_owned(),
                value: Some(format!("{POSTGRES_DATA_DIR}/pgdata")),
                ..EnvVar::default()
            },
        ]),
        resources: Some(spec.resources.clone().unwrap_or_else(|| resources("250m", "512Mi", "2Gi"))),
        readiness_probe: Some(ready.clone()),
        liveness_probe: Some(Probe { period_seconds: Some(15), ..ready }),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, POSTGRES_DATA_DIR),
            mount("run", "/var/run/postgresql"),
            mount("tmp", "/tmp"),
        ]),
        ..Container::default()
    };
    let archiver = wal_archiver::build(guard, spec, job_image);
    let extra_ports = archiver.as_ref().map(|_| metrics_port()).into_iter().collect();
    let (sidecars, volumes) = match archiver {
        Some((container, key)) => (vec![container], key.into_iter().collect()),
        None => (Vec::new(), Vec::new()),
    };
    objects(
        guard,
        DatastoreParts {
            component: Component::Postgres,
            port: POSTGRES_PORT,
            container,
            sidecars,
            volumes,
            extra_ports,
            replicas: if directives.stop_postgres { 0 } else { 1 },
            uid: POSTGRES_UID,
            storage: spec.storage.clone(),
            storage_class_name: spec.storage_class_name.clone(),
            scratch_volumes: vec!["run", "tmp"],
        },
    )
}

/// The WAL archiver's metrics on the Service, for the ServiceMonitor.
fn metrics_port() -> ServicePort {
    ServicePort {
        name: Some(WAL_METRICS_PORT_NAME.to_owned()),
        port: WAL_METRICS_PORT,
        target_port: Some(IntOrString::String(WAL_METRICS_PORT_NAME.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn keeps_its_data_and_reads_its_password_from_the_generated_secret() {
        let g = guard(MINIMAL);
        let objects = build(&g, g.postgres_managed().expect("managed by default"), &Directives::default(), "op:1");
        let sts = serde_json::to_value(&objects.stateful_set).expect("serializes");
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"],
            serde_json::json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "10Gi");
        let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(
            env[2],
            serde_json::json!({"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sg-credentials", "key": "postgres-password"}}})
        );
        assert_eq!(sts["spec"]["template"]["spec"]["securityContext"]["runAsUser"], 999);
        let svc = serde_json::to_value(&objects.service).expect("serializes");
        assert_eq!(svc["metadata"]["name"], "sg-postgres");
        assert_eq!(svc["spec"]["ports"][0]["port"], 5432);
    }

    const PITR: &str = "  backup:\n    s3: {bucket: sg-backups, credentialsSecret: s3, endpoint: 'http://s3.local:9000', pathStyle: true}\n    encryption: {keySecret: {name: backup-key, key: keys}}\n    pointInTime: {baseBackupInterval: 12h}\n";

    #[test]
    fn with_point_in_time_recovery_a_wal_archiver_runs_beside_postgres() {
        let g = guard(&format!("{MINIMAL}{PITR}"));
        let objects = build(&g, g.postgres_managed().expect("managed"), &Directives::default(), "operator:test");
        let sts = serde_json::to_value(&objects.stateful_set).expect("serializes");
        assert_eq!(sts["spec"]["replicas"], 1);
        let pod = &sts["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 999, "the archiver reads the data as postgres");
        let archiver = &pod["containers"][1];
        assert_eq!(archiver["name"], "wal-archiver");
        assert_eq!(archiver["image"], "operator:test", "the image of the backup Jobs");
        assert_eq!(archiver["command"], serde_json::json!(["securityguard-operator"]));
        assert_eq!(archiver["args"], serde_json::json!(["wal", "archive"]));
        assert_eq!(
            archiver["ports"],
            serde_json::json!([{"name": "wal-metrics", "containerPort": 9188, "protocol": "TCP"}])
        );
        assert_eq!(
            archiver["livenessProbe"]["httpGet"],
            serde_json::json!({"path": "/healthz", "port": "wal-metrics"})
        );
        assert!(archiver.get("readinessProbe").is_none(), "PostgreSQL stays ready while S3 is down");
        assert_eq!(archiver["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(archiver["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(archiver["resources"]["limits"]["memory"], "256Mi");
        assert_eq!(
            archiver["volumeMounts"],
            serde_json::json!([
                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "encryption-key", "mountPath": "/var/run/securityguard/backup-encryption", "readOnly": true},
            ])
        );
        let env = archiver["env"].as_array().expect("env");
        let value = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap_or_default();
        assert_eq!(value("SG_GUARD")["value"], "prod/sg", "the guard's own folder");
        assert_eq!(value("SG_BACKUP_BUCKET")["value"], "sg-backups");
        assert_eq!(value("SG_BACKUP_ENDPOINT")["value"], "http://s3.local:9000");
        assert_eq!(value("SG_BACKUP_PATH_STYLE")["value"], "true");
        assert_eq!(value("PGUSER")["value"], "securityguard");
        assert_eq!(value("SG_BASE_BACKUP_INTERVAL")["value"], "12h");
        assert_eq!(
            (value("SG_BACKUP_RETENTION_DAYS_S3")["value"].clone(), value("SG_BACKUP_KEEP_LAST")["value"].clone()),
            ("90".into(), "3".into())
        );
        assert_eq!(value("SG_BACKUP_ENCRYPTION_KEY_FILE")["value"], "/var/run/securityguard/backup-encryption/keys");
        assert_eq!(value("AWS_ACCESS_KEY_ID")["valueFrom"]["secretKeyRef"]["name"], "s3");
        assert!(env.iter().all(|e| e["valueFrom"]["secretKeyRef"]["name"] != "backup-key"), "the key is a file only");
        let volumes = pod["volumes"].as_array().expect("volumes");
        assert!(volumes.iter().any(|v| v["name"] == "encryption-key" && v["secret"]["secretName"] == "backup-key"));
        // Its metrics are on the Service, for the ServiceMonitor.
        let svc = serde_json::to_value(&objects.service).expect("serializes");
        assert_eq!(
            svc["spec"]["ports"][1],
            serde_json::json!({"name": "wal-metrics", "port": 9188, "targetPort": "wal-metrics", "protocol": "TCP"})
        );
    }

    #[test]
    fn without_point_in_time_recovery_postgres_runs_alone_and_a_restore_can_stop_it() {
        let g = guard(MINIMAL);
        let objects = build(&g, g.postgres_managed().expect("managed"), &Directives::default(), "operator:test");
        let sts = serde_json::to_value(&objects.stateful_set).expect("serializes");
        assert_eq!(sts["spec"]["template"]["spec"]["containers"].as_array().map(Vec::len), Some(1));
        let svc = serde_json::to_value(&objects.service).expect("serializes");
        assert_eq!(svc["spec"]["ports"].as_array().map(Vec::len), Some(1));
        let stopped = Directives { stop_postgres: true, ..Directives::default() };
        let objects = build(&g, g.postgres_managed().expect("managed"), &stopped, "operator:test");
        assert_eq!(objects.stateful_set.spec.and_then(|s| s.replicas), Some(0));
    }
}
