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
    names.extend(spec.backup.as_ref().and_then(|b| b.encryption.as_ref()).map(|e| e.key_secret.name.as_str()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::MINIMAL;
    use crate::controller::test_api::{Reply, api_server, expect};
    use serde_json::json;

    fn guard(extra: &str) -> SecurityGuard {
        serde_saphyr::from_str(&format!("{MINIMAL}{extra}")).expect("fixture parses")
    }

    fn secret(name: &str) -> Reply {
        Reply::Json(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "prod"}}))
    }

    #[tokio::test]
    async fn reads_each_referenced_secret_once_and_a_missing_one_is_absent() {
        let guard = guard(
            "    claudeApiKey: {name: jwt, key: claude}\n  postgres:\n    external: {connectionSecret: {name: db, key: url}}\n  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n",
        );
        let (client, server) = api_server(vec![
            expect("GET /api/v1/namespaces/prod/secrets/db", Reply::Status(404)),
            expect("GET /api/v1/namespaces/prod/secrets/jwt", secret("jwt")),
            expect("GET /api/v1/namespaces/prod/secrets/s3", secret("s3")),
        ]);
        let (refs, _) = server.run(dereference(&client, &guard)).await;
        let refs = refs.expect("a 404 is no error");
        assert!(refs.secret("db").is_none());
        assert_eq!(refs.secret("jwt").and_then(|s| s.metadata.name.as_deref()), Some("jwt"));
        assert_eq!(refs.secret("s3").and_then(|s| s.metadata.name.as_deref()), Some("s3"));
    }

    #[test]
    fn the_backup_encryption_keys_are_referenced() {
        let guard = guard(
            "  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n    encryption: {keySecret: {name: backup-key, key: keys}}\n",
        );
        assert_eq!(referenced_secrets(&guard), vec!["backup-key", "jwt", "s3"]);
    }

    #[tokio::test]
    async fn another_failure_names_the_secret_and_stops() {
        let guard = guard("  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n");
        let (client, server) = api_server(vec![expect("GET /api/v1/namespaces/prod/secrets/jwt", Reply::Status(403))]);
        let (refs, _) = server.run(dereference(&client, &guard)).await;
        match refs {
            Err(Error::ReadSecret { namespace, name, source: kube::Error::Api(status) }) => {
                assert_eq!((namespace.as_str(), name.as_str(), status.code), ("prod", "jwt", 403));
            }
            other => panic!("expected ReadSecret, got {other:?}"),
        }
    }
}
