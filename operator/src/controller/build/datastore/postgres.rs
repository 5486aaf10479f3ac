//! The managed PostgreSQL.

use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, Probe};

use super::stateful_set::{DATA_VOLUME, DatastoreParts, objects};
use crate::controller::build::children::DatastoreObjects;
use crate::controller::build::pod::{exec_probe, mount, resources, restricted_container_security_context, secret_env};
use crate::controller::vocabulary::{
    Component, POSTGRES_PASSWORD_KEY, POSTGRES_PORT, ValidatedGuard, credentials_secret_name,
};
use crate::crd::{ManagedPostgres, SecretKeyReference};

/// The `postgres` user of the Debian-based official image.
pub const POSTGRES_UID: i64 = 999;
/// Where the data volume is mounted; the cluster lives in a subdirectory of it.
pub const DATA_MOUNT: &str = "/var/lib/postgresql/data";

/// StatefulSet and Service of the managed PostgreSQL.
pub fn build(guard: &ValidatedGuard, spec: &ManagedPostgres) -> DatastoreObjects {
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
            EnvVar { name: "PGDATA".to_owned(), value: Some(format!("{DATA_MOUNT}/pgdata")), ..EnvVar::default() },
        ]),
        resources: Some(spec.resources.clone().unwrap_or_else(|| resources("250m", "512Mi", "2Gi"))),
        readiness_probe: Some(ready.clone()),
        liveness_probe: Some(Probe { period_seconds: Some(15), ..ready }),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, DATA_MOUNT),
            mount("run", "/var/run/postgresql"),
            mount("tmp", "/tmp"),
        ]),
        ..Container::default()
    };
    objects(
        guard,
        DatastoreParts {
            component: Component::Postgres,
            port: POSTGRES_PORT,
            container,
            uid: POSTGRES_UID,
            storage: spec.storage.clone(),
            storage_class_name: spec.storage_class_name.clone(),
            scratch_volumes: vec!["run", "tmp"],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn keeps_its_data_and_reads_its_password_from_the_generated_secret() {
        let g = guard(MINIMAL);
        let objects = build(&g, g.postgres_managed().expect("managed by default"));
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
}
