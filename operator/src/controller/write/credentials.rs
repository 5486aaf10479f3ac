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
use crate::controller::read::cached::Remembered;
use crate::controller::vocabulary::{CREDENTIAL_KEYS_ANNOTATION, FIELD_MANAGER};

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
    pub stateful_sets: &'a Store<Remembered<StatefulSet>>,
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
pub(super) mod tests {
    use super::*;
    use crate::controller::build::datastore::credentials::build;
    use crate::controller::build::test_support::{MINIMAL, guard};
    use crate::controller::test_api::{Exchange, Received, Reply, api_server, cache, expect, object};
    use serde_json::json;

    /// The credentials Secret as the metadata cache holds it, its annotation listing `keys`.
    pub(in crate::controller::write) fn cached_credentials(
        credentials: &CredentialsSecret,
        keys: &[&str],
    ) -> PartialObjectMeta<Secret> {
        object(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": credentials.name, "namespace": credentials.namespace,
                         "annotations": {CREDENTIAL_KEYS_ANNOTATION: keys.join(",")}},
        }))
    }

    #[test]
    fn passwords_are_long_and_url_safe() {
        let a = generate_password();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }

    const SECRET: &str = "/api/v1/namespaces/prod/secrets/sg-credentials";
    const CREATE: &str = "POST /api/v1/namespaces/prod/secrets?fieldManager=securityguard-operator";

    /// `ensure` for the minimal SecurityGuard (managed PostgreSQL and Redis), over a Secret cache
    /// holding `cached` and a StatefulSet cache holding `stateful_sets`.
    async fn ensure(
        cached: Option<&[&str]>,
        stateful_sets: &[&str],
        script: Vec<Exchange>,
    ) -> (Result<Outcome, Error>, Vec<Received>) {
        let credentials = build(&guard(MINIMAL)).expect("managed datastores");
        let secrets = cache(cached.map(|keys| cached_credentials(&credentials, keys)));
        let stateful_sets = cache(
            stateful_sets
                .iter()
                .map(|name| object::<StatefulSet>(json!({"metadata": {"name": name, "namespace": "prod"}}))),
        );
        let (client, server) = api_server(script);
        let writer = Credentials { client: &client, secrets: &secrets, stateful_sets: &stateful_sets };
        server.run(writer.ensure(&credentials)).await
    }

    /// The Secret as the API server returns it, holding `keys`.
    fn stored(keys: &[&str]) -> Reply {
        let data: serde_json::Map<String, Value> = keys.iter().map(|k| ((*k).to_owned(), json!("b2xk"))).collect();
        Reply::Json(json!({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "sg-credentials", "namespace": "prod"}, "data": data}))
    }

    fn patch_of(received: &Received) -> (&str, &Value) {
        (received.content_type.as_deref().unwrap_or_default(), &received.body)
    }

    #[tokio::test]
    async fn a_new_secret_is_created_with_a_password_per_key() {
        let (outcome, received) = ensure(None, &[], vec![expect(CREATE, Reply::Echo)]).await;
        assert_eq!(outcome.expect("creates"), Outcome::Created);
        let body = &received[0].body;
        assert_eq!(body["metadata"]["annotations"][CREDENTIAL_KEYS_ANNOTATION], "postgres-password,redis-password");
        assert!(body["metadata"].get("ownerReferences").is_none(), "the passwords outlive the SecurityGuard");
        for key in ["postgres-password", "redis-password"] {
            let value: k8s_openapi::ByteString = serde_json::from_value(body["data"][key].clone()).expect("base64");
            assert_eq!(value.0.len(), 32, "{key}");
        }
    }

    #[tokio::test]
    async fn a_secret_holding_every_key_costs_no_request() {
        let (outcome, _) = ensure(Some(&["postgres-password", "redis-password"]), &["sg-postgres"], vec![]).await;
        assert_eq!(outcome.expect("keeps"), Outcome::Kept);
    }

    #[tokio::test]
    async fn a_missing_key_is_added_and_no_other_changed() {
        let (outcome, received) = ensure(
            Some(&["postgres-password"]),
            &["sg-postgres"],
            vec![
                expect(&format!("GET {SECRET}"), stored(&["postgres-password"])),
                expect(&format!("PATCH {SECRET}"), Reply::Echo),
            ],
        )
        .await;
        assert_eq!(outcome.expect("completes"), Outcome::Kept);
        let (content_type, patch) = patch_of(&received[1]);
        assert_eq!(content_type, "application/merge-patch+json");
        assert_eq!(patch["metadata"]["annotations"][CREDENTIAL_KEYS_ANNOTATION], "postgres-password,redis-password");
        let added: Vec<&String> = patch["data"].as_object().expect("data").keys().collect();
        assert_eq!(added, ["redis-password"]);
    }

    #[tokio::test]
    async fn a_secret_the_cache_has_not_seen_is_completed_not_replaced() {
        let (outcome, received) = ensure(
            None,
            &["sg-postgres"],
            vec![
                expect(&format!("GET {SECRET}"), stored(&["postgres-password", "redis-password"])),
                expect(CREATE, Reply::Status(409)),
                expect(&format!("GET {SECRET}"), stored(&["postgres-password", "redis-password"])),
                expect(&format!("PATCH {SECRET}"), Reply::Echo),
            ],
        )
        .await;
        assert_eq!(outcome.expect("keeps"), Outcome::Kept);
        assert!(received[0].accept.as_deref().unwrap_or_default().contains("as=PartialObjectMetadata"));
        let (_, patch) = patch_of(&received[3]);
        assert_eq!(patch["data"], json!({}), "no password is replaced");
    }

    #[tokio::test]
    async fn a_lost_secret_is_refused_while_its_data_exists() {
        let (outcome, _) =
            ensure(None, &["sg-redis"], vec![expect(&format!("GET {SECRET}"), Reply::Status(404))]).await;
        match outcome {
            Err(Error::CredentialsLost { namespace, name, stateful_sets }) => {
                assert_eq!([namespace, name, stateful_sets], ["prod", "sg-credentials", "sg-redis"]);
            }
            other => panic!("expected CredentialsLost, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_failed_write_names_the_secret() {
        let (outcome, _) = ensure(None, &[], vec![expect(CREATE, Reply::Status(403))]).await;
        assert!(
            matches!(&outcome, Err(Error::Credentials { namespace, name, .. }) if namespace == "prod" && name == "sg-credentials"),
            "{outcome:?}"
        );
    }
}
