//! Dereference: read the objects a SecurityGuard refers to (its Secrets).
//!
//! A Secret that does not exist is not an error here: it is a fact that validation reports.
//!
//! Every Secret's metadata is watched (a change triggers the guards referring to it), so a
//! Secret is read again only when the watch shows a resourceVersion other than the one it was
//! last read at: a SecurityGuard converging through ten reconciles reads its Secrets once, not
//! ten times. What is kept of a read Secret is its data and identity, never its annotations
//! (`kubectl apply` copies the whole Secret, values included, into one).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
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

/// The referenced Secrets last read, by namespace and name, each as of its resourceVersion.
#[derive(Debug, Default)]
pub struct SecretReads {
    read: Mutex<HashMap<(String, String), Secret>>,
}

impl SecretReads {
    /// The Secret as last read, if the watch shows it unchanged since.
    fn unchanged(&self, namespace: &str, name: &str, watched_version: Option<&str>) -> Option<Secret> {
        let watched_version = watched_version?;
        let read = self.read.lock().ok()?;
        read.get(&(namespace.to_owned(), name.to_owned()))
            .filter(|s| s.metadata.resource_version.as_deref() == Some(watched_version))
            .cloned()
    }

    /// Remembers a read (its data and identity only), or forgets a Secret found missing.
    fn remember(&self, namespace: &str, name: &str, found: Option<&Secret>) {
        let Ok(mut read) = self.read.lock() else { return };
        let key = (namespace.to_owned(), name.to_owned());
        match found {
            Some(secret) => {
                let kept = Secret {
                    metadata: ObjectMeta {
                        name: secret.metadata.name.clone(),
                        namespace: secret.metadata.namespace.clone(),
                        uid: secret.metadata.uid.clone(),
                        resource_version: secret.metadata.resource_version.clone(),
                        ..ObjectMeta::default()
                    },
                    data: secret.data.clone(),
                    string_data: None,
                    type_: secret.type_.clone(),
                    immutable: secret.immutable,
                };
                read.insert(key, kept);
            }
            None => {
                read.remove(&key);
            }
        }
    }

    /// Forgets the Secrets the watch no longer shows (deleted).
    pub fn forget_deleted(&self, watched: &Store<PartialObjectMeta<Secret>>) {
        if let Ok(mut read) = self.read.lock() {
            read.retain(|(namespace, name), _| watched.get(&ObjectRef::new(name).within(namespace)).is_some());
        }
    }

    /// Secrets remembered.
    pub fn len(&self) -> usize {
        self.read.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// None remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads every referenced Secret that exists: from `reads` when the watch of every Secret's
/// metadata (`watched`) shows it unchanged since it was last read, from the API server
/// otherwise (also when the watch does not show it yet).
pub async fn dereference(
    client: &Client,
    guard: &SecurityGuard,
    watched: &Store<PartialObjectMeta<Secret>>,
    reads: &SecretReads,
) -> Result<References, Error> {
    let namespace = guard.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut secrets = Vec::new();
    for name in referenced_secrets(guard) {
        let watched_version =
            watched.get(&ObjectRef::new(name).within(&namespace)).and_then(|m| m.metadata.resource_version.clone());
        if let Some(secret) = reads.unchanged(&namespace, name, watched_version.as_deref()) {
            secrets.push(secret);
            continue;
        }
        let found = api.get_opt(name).await.map_err(|source| Error::ReadSecret {
            namespace: namespace.clone(),
            name: name.to_owned(),
            source,
        })?;
        reads.remember(&namespace, name, found.as_ref());
        secrets.extend(found);
    }
    Ok(References::from_secrets(secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::MINIMAL;
    use crate::controller::test_api::{Reply, api_server, cache, empty, expect};
    use serde_json::json;

    /// What the watch of every Secret's metadata shows: these names at these versions.
    fn watched(versions: &[(&str, &str)]) -> Store<PartialObjectMeta<Secret>> {
        cache::<PartialObjectMeta<Secret>, PartialObjectMeta<Secret>>(versions.iter().map(|(name, version)| {
            PartialObjectMeta {
                types: None,
                metadata: ObjectMeta {
                    name: Some((*name).to_owned()),
                    namespace: Some("prod".to_owned()),
                    resource_version: Some((*version).to_owned()),
                    ..ObjectMeta::default()
                },
                _phantom: Default::default(),
            }
        }))
    }

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
        let (refs, _) = server.run(dereference(&client, &guard, &empty(), &SecretReads::default())).await;
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
    async fn a_secret_is_read_again_only_when_the_watch_shows_it_changed() {
        let guard = guard("");
        let at = |version: &str| {
            Reply::Json(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {
                    "name": "jwt", "namespace": "prod", "resourceVersion": version,
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"jwt\":\"c2VjcmV0\"}}"},
                },
                "data": {"jwt": "c2VjcmV0"},
            }))
        };
        let (client, server) = api_server(vec![
            expect("GET /api/v1/namespaces/prod/secrets/jwt", at("7")),
            expect("GET /api/v1/namespaces/prod/secrets/jwt", at("8")),
        ]);
        let reads = SecretReads::default();
        let (steps, received) = server
            .run(async {
                let first = dereference(&client, &guard, &watched(&[("jwt", "7")]), &reads).await.expect("read");
                // Unchanged: no request.
                let again = dereference(&client, &guard, &watched(&[("jwt", "7")]), &reads).await.expect("cached");
                // Changed: read again.
                let changed = dereference(&client, &guard, &watched(&[("jwt", "8")]), &reads).await.expect("read");
                [first, again, changed].map(|r| r.secret("jwt").cloned().expect("found"))
            })
            .await;
        assert_eq!(received.len(), 2, "two reads for three reconciles");
        let [first, again, changed] = steps;
        assert_eq!(first.data, again.data);
        assert_eq!(again.metadata.resource_version.as_deref(), Some("7"));
        assert!(again.metadata.annotations.is_none(), "no copy of the values kept in annotations");
        assert_eq!(changed.metadata.resource_version.as_deref(), Some("8"));
        assert_eq!(reads.len(), 1);
        reads.forget_deleted(&watched(&[]));
        assert!(reads.is_empty(), "a deleted Secret is forgotten");
    }

    #[tokio::test]
    async fn another_failure_names_the_secret_and_stops() {
        let guard = guard("  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n");
        let (client, server) = api_server(vec![expect("GET /api/v1/namespaces/prod/secrets/jwt", Reply::Status(403))]);
        let (refs, _) = server.run(dereference(&client, &guard, &empty(), &SecretReads::default())).await;
        match refs {
            Err(Error::ReadSecret { namespace, name, source: kube::Error::Api(status) }) => {
                assert_eq!((namespace.as_str(), name.as_str(), status.code), ("prod", "jwt", 403));
            }
            other => panic!("expected ReadSecret, got {other:?}"),
        }
    }
}
