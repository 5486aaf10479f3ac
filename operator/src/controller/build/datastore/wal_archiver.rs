//! The `wal-archiver` container beside the managed PostgreSQL, with `spec.backup.pointInTime`:
//! the operator's image running `securityguard-operator wal archive`, which streams the WAL and
//! takes the base backups into the backup bucket. It has a liveness probe and no readiness
//! probe: the database stays ready while S3 is unreachable, and the archiver catches up.

use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, HTTPGetAction, Probe, Volume};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::bucket::{encryption_key, own_folder, s3_env};
use crate::controller::build::pod::{mount, plain_env, resources, restricted_container_security_context};
use crate::controller::vocabulary::{
    DATA_VOLUME, POSTGRES_DATA_DIR, ValidatedGuard, WAL_METRICS_PORT, WAL_METRICS_PORT_NAME,
};
use crate::crd::{BackupSpec, ManagedPostgres, PointInTimeSpec};

/// Name of the container.
pub const CONTAINER: &str = "wal-archiver";

/// The archiver of the managed PostgreSQL `postgres` (its data volume mounted where PostgreSQL
/// has it), running `image`; and the volume of the encryption keys it reads, if any. Nothing
/// without `spec.backup.pointInTime`.
pub fn build(guard: &ValidatedGuard, postgres: &ManagedPostgres, image: &str) -> Option<(Container, Option<Volume>)> {
    let backup = guard.spec.backup.as_ref()?;
    let pitr = backup.point_in_time.as_ref()?;
    let mut mounts = vec![mount(DATA_VOLUME, POSTGRES_DATA_DIR), mount("tmp", "/tmp")];
    let mut env = env(guard, backup, pitr, postgres);
    let key = encryption_key(backup).map(|(volume, key_mount, key_file)| {
        mounts.push(key_mount);
        env.push(key_file);
        volume
    });
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec!["securityguard-operator".to_owned()]),
        args: Some(vec!["wal".to_owned(), "archive".to_owned()]),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some(WAL_METRICS_PORT_NAME.to_owned()),
            container_port: WAL_METRICS_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: Some(pitr.resources.clone().unwrap_or_else(|| resources("50m", "64Mi", "256Mi"))),
        liveness_probe: Some(liveness()),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    Some((container, key))
}

/// The bucket and the guard's folder, the superuser it connects as over 127.0.0.1, the base
/// backups' interval, and the retention of the dumps, which the base backups (and the WAL they
/// need) follow.
fn env(guard: &ValidatedGuard, backup: &BackupSpec, pitr: &PointInTimeSpec, postgres: &ManagedPostgres) -> Vec<EnvVar> {
    let mut env = s3_env(guard, backup, own_folder(guard));
    env.push(plain_env("PGUSER", postgres.user.clone()));
    env.push(plain_env("SG_BASE_BACKUP_INTERVAL", pitr.base_backup_interval.clone()));
    env.push(plain_env("SG_BACKUP_RETENTION_DAYS_S3", backup.retention.s3_days.to_string()));
    env.push(plain_env("SG_BACKUP_KEEP_LAST", backup.retention.keep_last.to_string()));
    env
}

/// `GET /healthz` on the metrics port: a hung archiver is restarted (PostgreSQL is not).
fn liveness() -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".to_owned()),
            port: IntOrString::String(WAL_METRICS_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(10),
        period_seconds: Some(15),
        timeout_seconds: Some(5),
        failure_threshold: Some(4),
        ..Probe::default()
    }
}
