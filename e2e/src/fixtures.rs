//! The SecurityGuards the tests apply, built as typed objects in the manner of kube-rs
//! controller-rs' `Document::test().finalized()`: [`GuardFixture::test`] is the smallest valid
//! guard (`examples/minimal.yaml` under another name), and each chained method changes what a
//! test varies.
//!
//! ```
//! use securityguard_e2e::fixtures::{GuardFixture, s3};
//! use securityguard_operator::crd::SecurityGuard;
//!
//! let guard = SecurityGuard::test("shop")
//!     .fixed_replicas(2)
//!     .external_postgres("db", "url")
//!     .backup(s3("shop-backups", "s3"))
//!     .backup_request("b1");
//! assert_eq!(guard.spec.backup.and_then(|b| b.request_id).as_deref(), Some("b1"));
//! ```
//!
//! A guard serialises with every default filled in, the same values the API server's schema
//! defaults would give the fields a manifest leaves out (a unit test below holds the two
//! together), and without the optional fields it leaves unset.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVar, EnvVarSource, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use securityguard_operator::crd::{
    BackupSpec, EncryptionSpec, ExternalDatastore, LocalTierSpec, PointInTimeSpec, PostgresSpec, RedisSpec,
    RestoreSpec, S3Spec, SecretKeyReference, SecurityGuard, SecurityGuardSpec,
};
use serde_json::json;

use crate::kubectl_ok;

/// The image of `examples/minimal.yaml`.
pub const IMAGE: &str = "ghcr.io/securityguard/api:0.1.0";

/// Test SecurityGuards: a starting point and the changes tests make to it.
pub trait GuardFixture: Sized {
    /// `examples/minimal.yaml` named `name`: the API image [`IMAGE`], the JWT key in the Secret
    /// `securityguard-jwt` (key `secret`), and nothing else set (managed PostgreSQL and Redis,
    /// autoscaling from 3 to 20 replicas).
    fn test(name: &str) -> Self;

    /// Any other change.
    fn with(self, change: impl FnOnce(&mut SecurityGuard)) -> Self;

    /// In this namespace (for a server-side apply that names it: [`apply`]).
    fn in_namespace(self, ns: &str) -> Self {
        self.with(|g| g.metadata.namespace = Some(ns.to_owned()))
    }

    /// Another API image.
    fn image(self, image: &str) -> Self {
        self.with(|g| g.spec.image = image.to_owned())
    }

    /// The JWT key in another Secret.
    fn jwt_secret(self, name: &str, key: &str) -> Self {
        self.with(|g| g.spec.secrets.jwt_secret = key_of(name, key))
    }

    /// Autoscaling off and a fixed number of API replicas.
    fn fixed_replicas(self, replicas: i32) -> Self {
        self.with(|g| {
            g.spec.autoscaling.enabled = false;
            g.spec.replicas = Some(replicas);
        })
    }

    /// Autoscaling between `min` and `max` replicas.
    fn autoscaling(self, min: i32, max: i32) -> Self {
        self.with(|g| {
            g.spec.autoscaling.min_replicas = min;
            g.spec.autoscaling.max_replicas = max;
        })
    }

    /// Requests and limits of each API container (`("cpu", "50m")`); an empty list is left unset.
    fn resources(self, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Self {
        let quantities = |list: &[(&str, &str)]| {
            (!list.is_empty()).then(|| {
                list.iter().map(|(name, q)| ((*name).to_owned(), Quantity((*q).to_owned()))).collect::<BTreeMap<_, _>>()
            })
        };
        let resources =
            ResourceRequirements { requests: quantities(requests), limits: quantities(limits), ..Default::default() };
        self.with(|g| g.spec.resources = Some(resources))
    }

    /// One more environment variable of the API container.
    fn env(self, name: &str, value: &str) -> Self {
        let var = EnvVar { name: name.to_owned(), value: Some(value.to_owned()), ..Default::default() };
        self.with(|g| g.spec.env.push(var))
    }

    /// One more environment variable of the API container, from a key of a ConfigMap.
    fn env_from_config_map(self, name: &str, config_map: &str, key: &str) -> Self {
        let selector = ConfigMapKeySelector { name: config_map.to_owned(), key: key.to_owned(), optional: None };
        let source = EnvVarSource { config_map_key_ref: Some(selector), ..Default::default() };
        let var = EnvVar { name: name.to_owned(), value_from: Some(source), ..Default::default() };
        self.with(|g| g.spec.env.push(var))
    }

    /// PostgreSQL outside the cluster, its URL in a key of a Secret.
    fn external_postgres(self, secret: &str, key: &str) -> Self {
        let external = ExternalDatastore { connection_secret: key_of(secret, key) };
        self.with(|g| g.spec.postgres = PostgresSpec { managed: None, external: Some(external) })
    }

    /// Redis outside the cluster, its URL in a key of a Secret.
    fn external_redis(self, secret: &str, key: &str) -> Self {
        let external = ExternalDatastore { connection_secret: key_of(secret, key) };
        self.with(|g| g.spec.redis = RedisSpec { managed: None, external: Some(external) })
    }

    /// Backups into this bucket, every other backup setting defaulted.
    fn backup(self, s3: S3Spec) -> Self {
        let backup: BackupSpec = serde_json::from_value(json!({"s3": s3})).expect("a backup of only its bucket");
        self.with(|g| g.spec.backup = Some(backup))
    }

    /// The backups' schedule (after [`backup`](Self::backup)).
    fn backup_schedule(self, schedule: &str) -> Self {
        self.with(|g| backup_of(g).schedule = schedule.to_owned())
    }

    /// An on-demand backup (after [`backup`](Self::backup)).
    fn backup_request(self, request_id: &str) -> Self {
        self.with(|g| backup_of(g).request_id = Some(request_id.to_owned()))
    }

    /// Continuous WAL archiving for point-in-time recovery, with the defaults (after
    /// [`backup`](Self::backup)).
    fn point_in_time(self) -> Self {
        self.with(|g| backup_of(g).point_in_time = Some(PointInTimeSpec::default()))
    }

    /// A local copy of the backups on a volume of this size (after [`backup`](Self::backup)).
    fn local_backup(self, size: &str) -> Self {
        let local = LocalTierSpec { size: Quantity(size.to_owned()), storage_class_name: None };
        self.with(|g| backup_of(g).local = Some(local))
    }

    /// Client-side encryption of the backups with the keys in this Secret key (after
    /// [`backup`](Self::backup)).
    fn backup_encryption(self, secret: &str, key: &str) -> Self {
        let encryption = EncryptionSpec { key_secret: key_of(secret, key) };
        self.with(|g| backup_of(g).encryption = Some(encryption))
    }

    /// The restore drills' schedule (after [`backup`](Self::backup)).
    fn verify_schedule(self, schedule: &str) -> Self {
        self.with(|g| backup_of(g).verify.schedule = schedule.to_owned())
    }

    /// A restore request (`latest`, `before:<time>` or a backup key).
    fn restore(self, request_id: &str, source: &str) -> Self {
        let restore = RestoreSpec { request_id: request_id.to_owned(), source: source.to_owned() };
        self.with(|g| g.spec.restore = Some(restore))
    }
}

impl GuardFixture for SecurityGuard {
    fn test(name: &str) -> Self {
        let spec: SecurityGuardSpec = serde_json::from_value(json!({
            "image": IMAGE,
            "secrets": {"jwtSecret": {"name": "securityguard-jwt", "key": "secret"}},
        }))
        .expect("the minimal spec");
        SecurityGuard::new(name, spec)
    }

    fn with(mut self, change: impl FnOnce(&mut SecurityGuard)) -> Self {
        change(&mut self);
        self
    }
}

/// An S3 bucket on AWS (region `us-east-1`, prefix `securityguard`), its credentials in the
/// Secret `credentials_secret`; change the rest with `S3Spec { endpoint, ..s3(..) }`.
pub fn s3(bucket: &str, credentials_secret: &str) -> S3Spec {
    serde_json::from_value(json!({"bucket": bucket, "credentialsSecret": credentials_secret}))
        .expect("a bucket and its credentials")
}

/// The guard as JSON, for kubectl.
pub fn manifest(guard: &SecurityGuard) -> String {
    serde_json::to_string(guard).expect("a SecurityGuard serialises")
}

/// Applies the guard server-side as the field manager `e2e`, in the namespace it names.
pub fn apply(guard: &SecurityGuard) {
    assert!(guard.metadata.namespace.is_some(), "{manifest}: no namespace", manifest = manifest(guard));
    kubectl_ok(&["apply", "--server-side", "--field-manager=e2e", "-f", "-"], Some(&manifest(guard)));
}

fn key_of(name: &str, key: &str) -> SecretKeyReference {
    SecretKeyReference { name: name.to_owned(), key: key.to_owned() }
}

fn backup_of(guard: &mut SecurityGuard) -> &mut BackupSpec {
    guard.spec.backup.as_mut().expect("spec.backup is not set: call .backup(s3(..)) first")
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;
    use serde_json::Value;

    use super::*;

    /// What the API server stores for `object`: its structural schema's defaults filled into
    /// every field that is absent, level by level.
    fn defaulted(mut object: Value) -> Value {
        fn fill(value: &mut Value, schema: &Value) {
            if let (Some(object), Some(properties)) = (value.as_object_mut(), schema["properties"].as_object()) {
                for (name, property) in properties {
                    if let (false, Some(default)) = (object.contains_key(name), property.get("default")) {
                        object.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = object.get_mut(name) {
                        fill(child, property);
                    }
                }
            }
            if let (Some(items), Some(schema)) = (value.as_array_mut(), schema.get("items")) {
                items.iter_mut().for_each(|item| fill(item, schema));
            }
        }
        let crd = serde_json::to_value(SecurityGuard::crd()).expect("the CRD serialises");
        fill(&mut object, &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]);
        object
    }

    fn nulls(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Null => out.push(path.to_owned()),
            Value::Object(map) => map.iter().for_each(|(k, v)| nulls(v, &format!("{path}.{k}"), out)),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| nulls(v, &format!("{path}[{i}]"), out)),
            _ => {}
        }
    }

    /// A guard that every method of [`GuardFixture`] changed.
    fn everything() -> SecurityGuard {
        SecurityGuard::test("shop")
            .in_namespace("ns")
            .image("securityguard/api:e2e")
            .jwt_secret("jwt", "secret")
            .fixed_replicas(2)
            .resources(&[("cpu", "50m"), ("memory", "64Mi")], &[("memory", "512Mi")])
            .env("FEATURE_X", "on")
            .env_from_config_map("EXTRA", "extra-settings", "extra")
            .external_postgres("db", "url")
            .external_redis("cache", "url")
            .backup(S3Spec { endpoint: Some("http://127.0.0.1:9000".into()), path_style: true, ..s3("bkt", "s3") })
            .backup_schedule("0 0 1 1 *")
            .backup_request("b1")
            .local_backup("1Gi")
            .verify_schedule("* * * * *")
            .restore("r1", "latest")
    }

    #[test]
    fn the_test_guard_is_the_minimal_example() {
        let path = crate::repo_root().join("examples/minimal.yaml");
        let example: SecurityGuard =
            serde_saphyr::from_str(&std::fs::read_to_string(path).expect("examples/minimal.yaml")).expect("parses");
        let guard = SecurityGuard::test("minimal");
        assert_eq!((guard.metadata, guard.spec), (example.metadata, example.spec));
    }

    /// The API server fills nothing into a serialised guard that it would fill differently into
    /// a manifest leaving the field out: every default is already there, with the schema's value.
    #[test]
    fn a_guard_serialises_with_the_schema_defaults_and_no_nulls() {
        for guard in [SecurityGuard::test("minimal"), SecurityGuard::test("bench").autoscaling(1, 3), everything()] {
            let json = serde_json::to_value(&guard).expect("serialises");
            assert_eq!(defaulted(json.clone()), json, "defaults the API server would add or change");
            let mut found = Vec::new();
            nulls(&json, "", &mut found);
            assert!(found.is_empty(), "nulls at {found:?} in {json}");
            let back: SecurityGuard = serde_json::from_value(json).expect("parses back");
            assert_eq!((back.metadata, back.spec), (guard.metadata, guard.spec));
        }
    }

    /// The minimal manifest and the typed guard are the same object once the API server has
    /// defaulted the manifest.
    #[test]
    fn the_minimal_manifest_defaulted_is_the_typed_guard() {
        let manifest = json!({
            "apiVersion": "securityguard.io/v1alpha1",
            "kind": "SecurityGuard",
            "metadata": {"name": "minimal"},
            "spec": {"image": IMAGE, "secrets": {"jwtSecret": {"name": "securityguard-jwt", "key": "secret"}}},
        });
        assert_eq!(defaulted(manifest), serde_json::to_value(SecurityGuard::test("minimal")).expect("serialises"));
    }
}
