//! The managed Redis.

use k8s_openapi::api::core::v1::{Container, ContainerPort, Probe};

use super::stateful_set::{DatastoreParts, objects};
use crate::controller::build::children::DatastoreObjects;
use crate::controller::build::pod::{exec_probe, mount, resources, restricted_container_security_context, secret_env};
use crate::controller::vocabulary::{
    Component, DATA_VOLUME, REDIS_PASSWORD_KEY, REDIS_PORT, ValidatedGuard, credentials_secret_name,
};
use crate::crd::{ManagedRedis, SecretKeyReference};

/// The `redis` user of the official image.
pub const REDIS_UID: i64 = 999;

/// StatefulSet and Service of the managed Redis. The password reaches redis-server on standard
/// input, so it never appears in a command line.
pub fn build(guard: &ValidatedGuard, spec: &ManagedRedis) -> DatastoreObjects {
    let password =
        SecretKeyReference { name: credentials_secret_name(&guard.name), key: REDIS_PASSWORD_KEY.to_owned() };
    // A here-document keeps redis-server as the container's main process (it gets SIGTERM).
    let script = format!(
        "exec redis-server - --port {REDIS_PORT} --dir /data --appendonly yes --maxmemory {} \
         --maxmemory-policy allkeys-lru <<EOF\nrequirepass $REDIS_PASSWORD\nEOF\n",
        spec.max_memory
    );
    let ping = exec_probe(&["sh", "-c", "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli -p 6379 ping | grep -q PONG"]);
    let container = Container {
        name: "redis".to_owned(),
        image: Some(spec.image.clone()),
        command: Some(vec!["sh".to_owned(), "-c".to_owned(), script]),
        ports: Some(vec![ContainerPort {
            name: Some("redis".to_owned()),
            container_port: REDIS_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(vec![secret_env("REDIS_PASSWORD", &password)]),
        resources: Some(
            spec.resources
                .clone()
                .unwrap_or_else(|| resources("100m", "128Mi", crate::crd::REDIS_DEFAULT_MEMORY_LIMIT)),
        ),
        readiness_probe: Some(ping.clone()),
        liveness_probe: Some(Probe { period_seconds: Some(15), ..ping }),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![mount(DATA_VOLUME, "/data"), mount("tmp", "/tmp")]),
        ..Container::default()
    };
    objects(
        guard,
        DatastoreParts {
            component: Component::Redis,
            port: REDIS_PORT,
            container,
            sidecars: Vec::new(),
            volumes: Vec::new(),
            extra_ports: Vec::new(),
            replicas: 1,
            uid: REDIS_UID,
            storage: spec.storage.clone(),
            storage_class_name: spec.storage_class_name.clone(),
            scratch_volumes: vec!["tmp"],
        },
    )
}
