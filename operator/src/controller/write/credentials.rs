//! The generated passwords of the managed datastores: their Secret is created once and later
//! only completed with the keys it lacks, never changed; and never re-created while the data it
//! opens still exists.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use super::error::Error;
use crate::controller::build::CredentialsSecret;
use crate::controller::vocabulary::FIELD_MANAGER;

/// Annotation on the generated credentials Secret listing the keys it holds.
pub const CREDENTIAL_KEYS_ANNOTATION: &str = "securityguard.io/credential-keys";

/// What writing the credentials did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The Secret was created with every key.
    Created,
    /// The Secret existed; keys it lacked, if any, were added.
    Kept,
}

/// Writes the credentials Secret of one SecurityGuard.
pub struct Credentials<'a> {
    /// Client.
    pub client: &'a Client,
    /// Metadata of every Secret (the cache tells which keys the Secret holds).
    pub secrets: &'a Store<PartialObjectMeta<Secret>>,
    /// The StatefulSets (whose data the passwords open).
    pub stateful_sets: &'a Store<StatefulSet>,
}

impl Credentials<'_> {
    /// Creates the Secret once; later only adds keys it lacks, never changing one.
    pub async fn ensure(&self, credentials: &CredentialsSecret) -> Result<Outcome, Error> {
        let cached = self.secrets.get(&ObjectRef::new(&credentials.name).within(&credentials.namespace));
        let held: Vec<String> = match &cached {
            Some(meta) => meta
                .annotations()
                .get(CREDENTIAL_KEYS_ANNOTATION)
                .map(|keys| keys.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            None => {
                self.refuse_lost(credentials).await?;
                if self.create(credentials).await? {
                    return Ok(Outcome::Created);
                }
                // Created meanwhile (or before our cache saw it): check what it holds.
                Vec::new()
            }
        };
        if !credentials.keys.iter().all(|k| held.iter().any(|h| h == k)) {
            self.complete(credentials).await?;
        }
        Ok(Outcome::Kept)
    }

    /// Creates the Secret with fresh passwords; false when it exists already.
    async fn create(&self, credentials: &CredentialsSecret) -> Result<bool, Error> {
        let mut secret = credentials.with_passwords(generate_password);
        secret
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CREDENTIAL_KEYS_ANNOTATION.to_owned(), credentials.keys.join(","));
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..Default::default() };
        match self.api(credentials).create(&params, &secret).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(error(credentials, source)),
        }
    }

    /// Some key is missing (a datastore became managed later): reads the Secret and adds only
    /// what is absent.
    async fn complete(&self, credentials: &CredentialsSecret) -> Result<(), Error> {
        let api = self.api(credentials);
        let current = api.get(&credentials.name).await.map_err(|source| error(credentials, source))?;
        let data = current.data.unwrap_or_default();
        let fresh = credentials.with_passwords(generate_password);
        let mut added = serde_json::Map::new();
        for (key, value) in fresh.data.unwrap_or_default() {
            if !data.contains_key(&key) {
                added.insert(key, serde_json::to_value(value).unwrap_or(Value::Null));
            }
        }
        let mut all: Vec<String> = data.keys().cloned().collect();
        all.extend(added.keys().cloned());
        let patch = serde_json::json!({
            "metadata": {"annotations": {CREDENTIAL_KEYS_ANNOTATION: all.join(",")}},
            "data": added,
        });
        api.patch(&credentials.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| error(credentials, source))?;
        Ok(())
    }

    /// New passwords would lock the API out of data that already exists: when a datastore's
    /// StatefulSet exists but the Secret does not (deleted by hand), stop and say so.
    async fn refuse_lost(&self, credentials: &CredentialsSecret) -> Result<(), Error> {
        let existing: Vec<&str> = credentials
            .protects
            .iter()
            .map(String::as_str)
            .filter(|name| self.stateful_sets.get(&ObjectRef::new(name).within(&credentials.namespace)).is_some())
            .collect();
        if existing.is_empty() {
            return Ok(());
        }
        // The cache may lag behind our own creation: ask the API server.
        match self.api(credentials).get_metadata_opt(&credentials.name).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Error::CredentialsLost {
                namespace: credentials.namespace.clone(),
                name: credentials.name.clone(),
                stateful_sets: existing.join(", "),
            }),
            Err(source) => Err(error(credentials, source)),
        }
    }

    fn api(&self, credentials: &CredentialsSecret) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &credentials.namespace)
    }
}

fn error(credentials: &CredentialsSecret, source: kube::Error) -> Error {
    Error::Credentials { namespace: credentials.namespace.clone(), name: credentials.name.clone(), source }
}

/// A 32-character alphanumeric password (safe inside URLs without escaping).
fn generate_password() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_and_url_safe() {
        let a = generate_password();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }
}
