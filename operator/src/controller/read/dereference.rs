//! Dereference: read the objects a SecurityGuard refers to (its Secrets).
//!
//! A Secret that does not exist is not an error here: it is a fact that validation reports.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::controller::vocabulary::describe;
use crate::crd::SecurityGuard;

/// Failure to read a referenced object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a read.
    #[error("reading Secret {namespace}/{name}: {}", describe(.source))]
    ReadSecret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// The Secrets a SecurityGuard refers to that exist, by name.
#[derive(Debug, Default)]
pub struct References {
    secrets: BTreeMap<String, Secret>,
}

impl References {
    /// References made of the given existing Secrets.
    pub fn from_secrets(secrets: impl IntoIterator<Item = Secret>) -> Self {
        Self { secrets: secrets.into_iter().map(|s| (s.name_any(), s)).collect() }
    }

    /// The Secret of that name, if it exists.
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name)
    }
}

/// Names of every Secret the SecurityGuard's spec refers to.
pub fn referenced_secrets(guard: &SecurityGuard) -> Vec<&str> {
    let spec = &guard.spec;
    let mut names = vec![spec.secrets.jwt_secret.name.as_str()];
    names.extend(spec.secrets.claude_api_key.as_ref().map(|r| r.name.as_str()));
    names.extend(spec.postgres.external.as_ref().map(|e| e.connection_secret.name.as_str()));
    names.extend(spec.redis.external.as_ref().map(|e| e.connection_secret.name.as_str()));
    names.extend(spec.backup.as_ref().map(|b| b.s3.credentials_secret.as_str()));
    names.sort_unstable();
    names.dedup();
    names
}

/// Reads every referenced Secret that exists.
pub async fn dereference(client: &Client, guard: &SecurityGuard) -> Result<References, Error> {
    let namespace = guard.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut secrets = Vec::new();
    for name in referenced_secrets(guard) {
        let found = api.get_opt(name).await.map_err(|source| Error::ReadSecret {
            namespace: namespace.clone(),
            name: name.to_owned(),
            source,
        })?;
        secrets.extend(found);
    }
    Ok(References::from_secrets(secrets))
}
