//! The config backup: the SecurityGuard and its ConfigMaps as one multi-document YAML text,
//! stored next to the dump (`<dump key>.config.yaml`) and covered by the dump's manifest, so a
//! partial config backup is never part of a good backup.
//!
//! Secrets are never read: the SecurityGuard only names them. What it needs from the API server
//! (in the SecurityGuard's namespace): `get` on `securityguards.securityguard.io` and `list` on
//! `configmaps` (ConfigMaps referenced by name are listed with a field selector, so no `get`).
//!
//! The objects are stored as a user would re-apply them: server-set fields (`managedFields`,
//! `resourceVersion`, `uid`, `generation`, `creationTimestamp`, owner references, finalizers,
//! `status`) and kubectl's last-applied annotation are removed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, Resource};
use serde_json::Value;

use crate::crd::SecurityGuard;

/// Label naming the application of every object the operator creates.
const NAME_LABEL: &str = "app.kubernetes.io/name=securityguard";

/// Label naming the SecurityGuard an object belongs to.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Metadata fields set by the API server or by controllers, not by whoever wrote the object.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "ownerReferences",
    "finalizers",
];

/// Annotations that only repeat the object.
const NOISE_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// Which SecurityGuard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for GuardRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl GuardRef {
    /// The SecurityGuard named by `namespace` and `name`, each taken from a `folder` of the
    /// form `<namespace>/<name>` when not given.
    pub fn resolve(namespace: Option<&str>, name: Option<&str>, folder: Option<&str>) -> Option<GuardRef> {
        let from_folder = folder.and_then(|g| g.trim_matches('/').split_once('/'));
        let namespace = namespace.or(from_folder.map(|(ns, _)| ns))?;
        let name = name.or(from_folder.map(|(_, name)| name))?;
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return None;
        }
        Some(GuardRef { namespace: namespace.to_owned(), name: name.to_owned() })
    }
}

/// A config backup that could not be taken, naming what could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `--guard-namespace`/`--guard-name` nor a `--guard` of the form `<namespace>/<name>`.
    #[error(
        "the config backup needs the SecurityGuard: --guard-namespace and --guard-name \
         (SG_GUARD_NAMESPACE, SG_GUARD_NAME), or --guard <namespace>/<name>"
    )]
    NoGuard,
    /// No Kubernetes client configuration (no kubeconfig, not in a pod).
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    /// Reading the SecurityGuard failed.
    #[error("cannot get SecurityGuard {guard}: {source}")]
    Guard {
        /// The SecurityGuard.
        guard: GuardRef,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// Listing ConfigMaps failed.
    #[error("cannot list the ConfigMaps ({selector}) in namespace {namespace}: {source}")]
    ConfigMaps {
        /// The namespace.
        namespace: String,
        /// The label or field selector.
        selector: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The objects could not be written as YAML.
    #[error("cannot write the config backup of {guard} as YAML: {reason}")]
    Yaml {
        /// The SecurityGuard.
        guard: GuardRef,
        /// Why.
        reason: String,
    },
}

/// A config backup ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBackup {
    /// The YAML text: the SecurityGuard first, then the ConfigMaps by name.
    pub yaml: String,
    /// `Kind/name` of each object in it, in the same order.
    pub objects: Vec<String>,
}

/// Reads the SecurityGuard and its ConfigMaps with `client` and renders them.
pub async fn collect(client: Client, guard: &GuardRef) -> Result<ConfigBackup, Error> {
    let resource = ApiResource::erase::<SecurityGuard>(&());
    // Dynamic, not the typed resource: the backup keeps every field the API server holds, also
    // those a newer CRD version added.
    let guards: Api<DynamicObject> = Api::namespaced_with(client.clone(), &guard.namespace, &resource);
    let object = guards.get(&guard.name).await.map_err(|source| Error::Guard { guard: guard.clone(), source })?;
    let object = serde_json::to_value(&object).map_err(|e| yaml_error(guard, e))?;

    let config_maps: Api<ConfigMap> = Api::namespaced(client, &guard.namespace);
    let list_error = |selector: String| {
        let namespace = guard.namespace.clone();
        move |source| Error::ConfigMaps { namespace, selector, source }
    };
    let selector = format!("{NAME_LABEL},{INSTANCE_LABEL}={}", guard.name);
    let mut found: Vec<ConfigMap> =
        config_maps.list(&ListParams::default().labels(&selector)).await.map_err(list_error(selector.clone()))?.items;
    let listed: BTreeSet<String> = found.iter().filter_map(|c| c.metadata.name.clone()).collect();
    for name in referenced_config_maps(object.get("spec").unwrap_or(&Value::Null)) {
        if listed.contains(&name) {
            continue;
        }
        let selector = format!("metadata.name={name}");
        let items =
            config_maps.list(&ListParams::default().fields(&selector)).await.map_err(list_error(selector))?.items;
        if items.is_empty() {
            tracing::warn!(guard = %guard, config_map = %name, "the SecurityGuard names a ConfigMap that does not exist");
        }
        found.extend(items);
    }
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let config_maps = found
        .iter()
        .map(|c| serde_json::to_value(c).map(with_type::<ConfigMap>))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| yaml_error(guard, e))?;
    render(guard, object, config_maps)
}

fn yaml_error(guard: &GuardRef, reason: impl std::fmt::Display) -> Error {
    Error::Yaml { guard: guard.clone(), reason: reason.to_string() }
}

/// `apiVersion` and `kind` first (list items may come without them).
fn with_type<K: Resource<DynamicType = ()>>(value: Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), Value::String(K::api_version(&()).into_owned()));
    out.insert("kind".into(), Value::String(K::kind(&()).into_owned()));
    if let Value::Object(map) = value {
        for (key, field) in map {
            if key != "apiVersion" && key != "kind" {
                out.insert(key, field);
            }
        }
    }
    Value::Object(out)
}

/// The YAML of the SecurityGuard `object` and `config_maps`, cleaned (pure).
pub fn render(guard: &GuardRef, mut object: Value, mut config_maps: Vec<Value>) -> Result<ConfigBackup, Error> {
    clean(&mut object);
    config_maps.iter_mut().for_each(clean);
    let mut objects = vec![format!("SecurityGuard/{}", guard.name)];
    objects.extend(config_maps.iter().map(|c| format!("ConfigMap/{}", c["metadata"]["name"].as_str().unwrap_or(""))));
    let mut documents = vec![object];
    documents.extend(config_maps);
    let body = serde_saphyr::to_string_multiple(&documents).map_err(|e| yaml_error(guard, e))?;
    let header = format!(
        "# SecurityGuard {guard} with {} ConfigMap(s), as stored by securityguard-operator {}.\n\
         # Secrets are not included. Re-create with: kubectl apply -f <this file>\n",
        objects.len() - 1,
        env!("CARGO_PKG_VERSION"),
    );
    let yaml = if body.starts_with("---") { format!("{header}{body}") } else { format!("{header}---\n{body}") };
    Ok(ConfigBackup { yaml, objects })
}

/// Removes what the API server and controllers set, keeping what a user wrote.
pub fn clean(object: &mut Value) {
    let Value::Object(map) = object else { return };
    map.remove("status");
    if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
        for field in SERVER_METADATA {
            metadata.remove(*field);
        }
        if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
            for annotation in NOISE_ANNOTATIONS {
                annotations.remove(*annotation);
            }
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
}

/// Names of the ConfigMaps a spec refers to, wherever it does (`configMapKeyRef`,
/// `configMapRef`, `configMap` volume sources), in name order (pure).
pub fn referenced_config_maps(spec: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    walk(spec, &mut names);
    fn walk(node: &Value, names: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    if matches!(key.as_str(), "configMapKeyRef" | "configMapRef" | "configMap")
                        && let Some(name) = child.get("name").and_then(Value::as_str)
                        && !name.is_empty()
                    {
                        names.insert(name.to_owned());
                    }
                    walk(child, names);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, names)),
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_guard_comes_from_its_options_or_its_folder() {
        let found = |ns, name, folder| GuardRef::resolve(ns, name, folder).map(|g| g.to_string());
        assert_eq!(found(Some("prod"), Some("sg"), Some("x/y")), Some("prod/sg".into()));
        assert_eq!(found(None, None, Some("prod/sg")), Some("prod/sg".into()));
        assert_eq!(found(None, Some("other"), Some("prod/sg")), Some("prod/other".into()));
        assert_eq!(found(None, None, Some("prod")), None);
        assert_eq!(found(None, None, Some("a/b/c")), None);
        assert_eq!(found(None, None, None), None);
    }

    fn guard() -> GuardRef {
        GuardRef { namespace: "prod".into(), name: "sg".into() }
    }

    #[test]
    fn finds_referenced_config_maps_anywhere_in_the_spec() {
        let spec = json!({
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "extra", "key": "a"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "not-a-config-map", "key": "b"}}},
                {"name": "C", "value": "configMap"},
            ],
            "later": {"volumes": [{"configMap": {"name": "files"}}], "envFrom": [{"configMapRef": {"name": "extra"}}]},
        });
        assert_eq!(referenced_config_maps(&spec), BTreeSet::from(["extra".to_owned(), "files".to_owned()]));
        assert!(referenced_config_maps(&json!({"image": "a"})).is_empty());
    }

    #[test]
    fn renders_clean_documents_that_parse_back() {
        let object = json!({
            "apiVersion": "securityguard.io/v1alpha1",
            "kind": "SecurityGuard",
            "metadata": {
                "name": "sg", "namespace": "prod", "uid": "u", "resourceVersion": "7", "generation": 2,
                "creationTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["securityguard.io/cleanup"],
                "managedFields": [{"manager": "kubectl"}], "labels": {"team": "a"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            },
            "spec": {"image": "api:1", "secrets": {"jwtSecret": {"name": "jwt", "key": "secret"}}},
            "status": {"readyReplicas": 3},
        });
        let config_map = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "sg-api", "namespace": "prod", "uid": "v", "ownerReferences": [{"uid": "u"}],
                         "annotations": {"note": "kept"}},
            "data": {"LOG_LEVEL": "info", "MULTI": "line one\nline two\n"},
        });
        let backup = render(&guard(), object, vec![config_map]).expect("renders");
        assert_eq!(backup.objects, vec!["SecurityGuard/sg", "ConfigMap/sg-api"]);
        assert!(
            backup.yaml.starts_with("# SecurityGuard prod/sg with 1 ConfigMap(s), as stored by"),
            "{}",
            backup.yaml
        );
        let documents: Vec<Value> = serde_saphyr::from_multiple(&backup.yaml).expect("parses");
        assert_eq!(
            documents,
            vec![
                json!({
                    "apiVersion": "securityguard.io/v1alpha1", "kind": "SecurityGuard",
                    "metadata": {"name": "sg", "namespace": "prod", "labels": {"team": "a"}},
                    "spec": {"image": "api:1", "secrets": {"jwtSecret": {"name": "jwt", "key": "secret"}}},
                }),
                json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "sg-api", "namespace": "prod", "annotations": {"note": "kept"}},
                    "data": {"LOG_LEVEL": "info", "MULTI": "line one\nline two\n"},
                }),
            ]
        );
    }

    #[test]
    fn a_list_item_gets_its_type() {
        let value = with_type::<ConfigMap>(json!({"metadata": {"name": "a"}, "data": {"k": "v"}}));
        assert_eq!(
            value,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );
    }
}
