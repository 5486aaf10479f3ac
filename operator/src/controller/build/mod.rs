//! Build: every object a validated SecurityGuard asks for, as typed k8s-openapi structs.
//!
//! Pure functions only: no I/O, no clock, no randomness. One file per kind of child, grouped by
//! what they serve (`api/`, `datastore/`, `backup/`, `monitoring/`, `feeds/`); the fragments several
//! builders share (`meta`, `pod`, `bucket`) are apart from the whole objects, and no builder
//! imports another.

pub mod api;
pub mod backup;
pub mod bucket;
pub mod children;
pub mod datastore;
pub mod feeds;
pub mod meta;
pub mod monitoring;
pub mod pod;

use std::marker::PhantomData;

use super::vocabulary::ValidatedGuard;
use super::vocabulary::{Directives, Platform};

pub use children::{
    Applied, BackupObjects, ChildResources, CredentialsSecret, DatastoreObjects, MonitoringObjects, Prepared,
};

/// Builds every object the SecurityGuard asks for, run as `directives` say, with what the
/// platform offers.
pub fn build(guard: &ValidatedGuard, directives: &Directives, platform: &Platform) -> ChildResources<Prepared> {
    let config_map = api::config_map::build(guard);
    ChildResources {
        service_account: api::service_account::build(guard),
        credentials: datastore::credentials::build(guard),
        postgres: guard
            .postgres_managed()
            .map(|m| datastore::postgres::build(guard, m, directives, &platform.job_image)),
        redis: guard.redis_managed().map(|m| datastore::redis::build(guard, m)),
        network_policies: datastore::network_policy::build(guard),
        deployment: api::deployment::build(guard, directives.scale, &config_map),
        service: api::service::build(guard),
        hpa: api::hpa::build(guard, directives.scale),
        pdb: api::pdb::build(guard),
        ingress: api::ingress::build(guard),
        backup: backup::build(guard, directives, &platform.job_image),
        monitoring: monitoring::build(guard, platform.monitoring_apis),
        threat_feeds: feeds::cron_job::build(guard, &platform.job_image),
        config_map,
        state: PhantomData,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A SecurityGuard fixture for the builders' tests.
    use crate::controller::decide::validate::validate;
    use crate::controller::read::dereference::References;
    use crate::controller::vocabulary::ValidatedGuard;
    use crate::crd::SecurityGuard;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    /// Parses a SecurityGuard from YAML and validates it against Secrets that hold what it
    /// references.
    pub fn guard(yaml: &str) -> ValidatedGuard {
        let guard: SecurityGuard = serde_saphyr::from_str(yaml).expect("fixture parses");
        let secret = |name: &str, key: &str, value: &str| Secret {
            metadata: kube::api::ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
            data: Some([(key.to_owned(), ByteString(value.as_bytes().to_vec()))].into()),
            ..Default::default()
        };
        let refs = References::from_secrets([
            secret("jwt", "secret", "0123456789abcdef0123456789abcdef"),
            secret("db", "url", "postgresql://u:p@db.example.com:5432/sg"),
            secret("cache", "url", "rediss://:p@cache.example.com:6379/0"),
            secret("claude", "key", "sk-test"),
            secret("backup-key", "keys", &"0f".repeat(32)),
            Secret {
                metadata: kube::api::ObjectMeta { name: Some("s3".to_owned()), ..Default::default() },
                data: Some(
                    [("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "key")]
                        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                        .into(),
                ),
                ..Default::default()
            },
        ]);
        validate(&guard, &refs).expect("fixture is valid")
    }

    /// The minimal example: image and JWT secret only.
    pub const MINIMAL: &str = "
apiVersion: securityguard.io/v1alpha1
kind: SecurityGuard
metadata: {name: sg, namespace: prod, uid: uid-1, generation: 1}
spec:
  image: securityguard/api:1.0.0
  secrets:
    jwtSecret: {name: jwt, key: secret}
";
}
