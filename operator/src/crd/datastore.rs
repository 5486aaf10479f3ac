//! PostgreSQL and Redis: run by the operator or provided from outside.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::formats;
use super::workload::SecretKeyReference;

/// Memory limit of the Redis container when `resources` is absent.
pub const REDIS_DEFAULT_MEMORY_LIMIT: &str = "512Mi";

/// The PostgreSQL database of the API: exactly one of `managed` or `external`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.managed) != has(self.external)")
    .message("exactly one of postgres.managed or postgres.external must be set"))]
pub struct PostgresSpec {
    /// The operator runs PostgreSQL (a StatefulSet with a volume, a Service, and a generated
    /// password in a Secret that is created once and never overwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedPostgres>,
    /// A PostgreSQL run elsewhere, reached through the connection URL in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatastore>,
}

impl Default for PostgresSpec {
    fn default() -> Self {
        Self { managed: Some(ManagedPostgres::default()), external: None }
    }
}

/// The Redis cache of the API: exactly one of `managed` or `external`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.managed) != has(self.external)")
    .message("exactly one of redis.managed or redis.external must be set"))]
pub struct RedisSpec {
    /// The operator runs Redis (a StatefulSet with a volume and a Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedRedis>,
    /// A Redis run elsewhere, reached through the connection URL in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatastore>,
}

impl Default for RedisSpec {
    fn default() -> Self {
        Self { managed: Some(ManagedRedis::default()), external: None }
    }
}

/// A database or cache run outside the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDatastore {
    /// Secret key holding the connection URL, such as
    /// `postgresql://user:password@db.example.com:5432/securityguard` or
    /// `rediss://:password@cache.example.com:6379/0`.
    pub connection_secret: SecretKeyReference,
}

/// PostgreSQL run by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedPostgres {
    /// PostgreSQL container image (default `postgres:15`, Debian based, running as uid 999), as
    /// `[host[:port]/]path[:tag][@sha256:digest]` with a lower-case path.
    #[serde(default = "default_postgres_image")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(formats::image_rule()).message(formats::IMAGE_MESSAGE))]
    pub image: String,
    /// Size of the data volume (default `10Gi`). Fixed once the volume exists.
    #[serde(default = "default_postgres_storage")]
    #[x_kube(validation = Rule::new(formats::positive_quantity_rule())
        .message("storage must be a positive quantity such as 10Gi"))]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("storage cannot change once the volume exists (a StatefulSet's volume claim template is immutable)"))]
    pub storage: Quantity,
    /// StorageClass of the data volume (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = formats::DNS_SUBDOMAIN_PATTERN))]
    pub storage_class_name: Option<String>,
    /// Name of the database the API uses (default `securityguard`).
    #[serde(default = "default_name")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub database: String,
    /// Name of the database user the API connects as (default `securityguard`).
    #[serde(default = "default_name")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub user: String,
    /// CPU and memory of the PostgreSQL container, as quantities (default requests 250m / 512Mi,
    /// limit 2Gi). A request may not exceed its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "formats::resources_schema")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for ManagedPostgres {
    fn default() -> Self {
        Self {
            image: default_postgres_image(),
            storage: default_postgres_storage(),
            storage_class_name: None,
            database: default_name(),
            user: default_name(),
            resources: None,
        }
    }
}

/// Redis run by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(formats::redis_memory_below_limit_rule(REDIS_DEFAULT_MEMORY_LIMIT))
    .message("maxMemory must be below the memory limit of the Redis container (resources.limits.memory, default 512Mi): Redis evicts keys at maxMemory, the container is killed at its limit")
    .field_path(".maxMemory"))]
pub struct ManagedRedis {
    /// Redis container image (default `redis:7`, running as uid 999), as
    /// `[host[:port]/]path[:tag][@sha256:digest]` with a lower-case path.
    #[serde(default = "default_redis_image")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(formats::image_rule()).message(formats::IMAGE_MESSAGE))]
    pub image: String,
    /// Size of the volume holding Redis' append-only file (default `1Gi`). Fixed once the volume
    /// exists.
    #[serde(default = "default_redis_storage")]
    #[x_kube(validation = Rule::new(formats::positive_quantity_rule())
        .message("storage must be a positive quantity such as 1Gi"))]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("storage cannot change once the volume exists (a StatefulSet's volume claim template is immutable)"))]
    pub storage: Quantity,
    /// StorageClass of the volume (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = formats::DNS_SUBDOMAIN_PATTERN))]
    pub storage_class_name: Option<String>,
    /// Memory Redis may use for data before evicting least-recently-used keys (default `256mb`),
    /// as redis-server reads it: a positive number with an optional unit `b`, `k`, `kb`, `m`, `mb`,
    /// `g` or `gb` in any case (`k` is 1000, `kb` 1024). It must stay below the memory limit of
    /// the container (512Mi unless `resources` says otherwise).
    #[serde(default = "default_maxmemory")]
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new(formats::redis_memory_rule())
        .message("maxMemory must be a positive size as redis-server reads it, such as 256mb or 2gb (units b, k, kb, m, mb, g, gb)"))]
    pub max_memory: String,
    /// CPU and memory of the Redis container, as quantities (default requests 100m / 128Mi,
    /// limit 512Mi). The memory limit must exceed `maxMemory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "formats::resources_schema")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for ManagedRedis {
    fn default() -> Self {
        Self {
            image: default_redis_image(),
            storage: default_redis_storage(),
            storage_class_name: None,
            max_memory: default_maxmemory(),
            resources: None,
        }
    }
}

fn default_postgres_image() -> String {
    "postgres:15".to_owned()
}
fn default_redis_image() -> String {
    "redis:7".to_owned()
}
fn default_postgres_storage() -> Quantity {
    Quantity("10Gi".to_owned())
}
fn default_redis_storage() -> Quantity {
    Quantity("1Gi".to_owned())
}
fn default_name() -> String {
    "securityguard".to_owned()
}
fn default_maxmemory() -> String {
    "256mb".to_owned()
}
