//! The Secret holding the generated passwords of the managed PostgreSQL and Redis.
//!
//! It is created once and never overwritten, and it has no owner reference: like the data
//! volumes it protects, it outlives the SecurityGuard, so that re-creating the SecurityGuard
//! finds its data and the password that opens it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controller::build::meta::labels;
use crate::controller::decide::validate::ValidatedGuard;
use crate::controller::vocabulary::{
    COMPONENT_LABEL, Component, POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY, credentials_secret_name, object_name,
};

/// The generated-credentials Secret, before its passwords are drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsSecret {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret.
    pub namespace: String,
    /// Labels of the Secret.
    pub labels: BTreeMap<String, String>,
    /// The keys to fill with a password each.
    pub keys: Vec<&'static str>,
    /// The StatefulSets whose data these passwords open.
    pub protects: Vec<String>,
}

impl CredentialsSecret {
    /// The Secret with a fresh password (from `password`) in each key.
    pub fn with_passwords(&self, mut password: impl FnMut() -> String) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(self.keys.iter().map(|k| ((*k).to_owned(), ByteString(password().into_bytes()))).collect()),
            ..Secret::default()
        }
    }
}

/// The credentials Secret, when at least one datastore is managed.
pub fn build(guard: &ValidatedGuard) -> Option<CredentialsSecret> {
    let mut keys = Vec::new();
    let mut protects = Vec::new();
    if guard.postgres_managed().is_some() {
        keys.push(POSTGRES_PASSWORD_KEY);
        protects.push(object_name(&guard.name, Component::Postgres));
    }
    if guard.redis_managed().is_some() {
        keys.push(REDIS_PASSWORD_KEY);
        protects.push(object_name(&guard.name, Component::Redis));
    }
    if keys.is_empty() {
        return None;
    }
    let mut labels = labels(guard, Component::Api);
    labels.remove(COMPONENT_LABEL);
    Some(CredentialsSecret {
        name: credentials_secret_name(&guard.name),
        namespace: guard.namespace.clone(),
        labels,
        keys,
        protects,
    })
}
