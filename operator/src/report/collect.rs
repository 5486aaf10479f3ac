//! The reads of a support bundle (no writes): the children of a SecurityGuard, their Events,
//! the logs of the API and operator pods. A read that fails is recorded in the bundle and the
//! collection goes on: a partial bundle is still a bundle.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use serde_json::Value;

use super::bundle::{Bundle, LogGroup, Outcome, log_path, object_path};
use super::redact;
use crate::controller::vocabulary::{APP_NAME, INSTANCE_LABEL, describe};
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Reports what the collection is doing (on stderr, for the plugin).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// How much of each container's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// The last this many lines.
    pub tail_lines: i64,
    /// At most this many bytes.
    pub limit_bytes: i64,
}

/// The kinds of children, owners before what they own (Deployment → ReplicaSet → Pod,
/// CronJob → Job → Pod): an object belongs to the SecurityGuard when one of its owners does.
/// The kinds the controller writes and watches (`controller/read/stores.rs`), plus what their
/// controllers make of them (ReplicaSets, Jobs' and workloads' Pods).
pub fn child_kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        // After the StatefulSets: with a retention policy, their claims are owned by them.
        ApiResource::erase::<PersistentVolumeClaim>(&()),
        ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        ApiResource::erase::<PodDisruptionBudget>(&()),
        ApiResource::erase::<NetworkPolicy>(&()),
        ApiResource::erase::<Ingress>(&()),
        ApiResource::erase::<Role>(&()),
        ApiResource::erase::<RoleBinding>(&()),
        ApiResource::erase::<CronJob>(&()),
        ApiResource::erase::<ServiceMonitor>(&()),
        ApiResource::erase::<PrometheusRule>(&()),
        ApiResource::erase::<ReplicaSet>(&()),
        ApiResource::erase::<Job>(&()),
        ApiResource::erase::<Pod>(&()),
    ]
}

/// What is known of the SecurityGuard while collecting.
#[derive(Debug, Clone, Default)]
pub struct Family {
    /// Its name.
    pub name: String,
    /// UIDs of the SecurityGuard and of every child found so far.
    pub uids: BTreeSet<String>,
    /// Names of the Secrets its spec refers to (included, redacted, though not owned).
    pub referenced_secrets: BTreeSet<String>,
    /// Its API pods (for their logs).
    pub api_pods: Vec<Pod>,
}

/// Whether `object` (of kind `kind`) belongs to the SecurityGuard: one of its owners does, it
/// carries the SecurityGuard's labels (the claims of the datastores and of the local backup
/// tier have no owner), or it is a Secret the spec names (pure).
pub fn belongs(kind: &str, object: &Value, family: &Family) -> bool {
    let metadata = &object["metadata"];
    let owned = metadata["ownerReferences"]
        .as_array()
        .is_some_and(|owners| owners.iter().any(|o| o["uid"].as_str().is_some_and(|uid| family.uids.contains(uid))));
    let labels = &metadata["labels"];
    let labelled = labels["app.kubernetes.io/name"] == APP_NAME && labels[INSTANCE_LABEL] == family.name.as_str();
    let referenced =
        kind == "Secret" && metadata["name"].as_str().is_some_and(|name| family.referenced_secrets.contains(name));
    owned || labelled || referenced
}

/// How a failed read is recorded: an API the server does not serve is skipped, anything else
/// (forbidden included) failed.
pub fn failure(error: &kube::Error) -> (Outcome, String) {
    match error {
        kube::Error::Api(status) if status.code == 404 => {
            (Outcome::Skipped, format!("API not served by this cluster: {}", describe(error)))
        }
        kube::Error::Api(status) if status.code == 403 => (Outcome::Failed, format!("forbidden: {}", describe(error))),
        other => (Outcome::Failed, describe(other)),
    }
}

/// Lists every kind of child in `namespace`, adds those that belong to the SecurityGuard to
/// the bundle (redacted), and returns the decoded values of every Secret read (for the
/// scrubber). Fills `family` with the UIDs found and the API pods.
pub async fn children(
    client: &Client,
    namespace: &str,
    family: &mut Family,
    bundle: &mut Bundle,
    progress: Progress<'_>,
) -> Vec<Vec<u8>> {
    let mut secret_values = Vec::new();
    for resource in child_kinds() {
        let kind = resource.kind.clone();
        let item = format!("{kind} objects");
        progress(&format!("listing {}", resource.plural));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let listed = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(error) if kind == "Secret" => {
                // Without `list`, the Secrets the spec names may still be readable one by one.
                let (outcome, detail) = failure(&error);
                bundle.record("Secret objects (list)", outcome, detail);
                named_secrets(&api, family, bundle).await
            }
            Err(error) => {
                let (outcome, detail) = failure(&error);
                bundle.record(item, outcome, detail);
                continue;
            }
        };
        let mut found = 0;
        for object in listed {
            let mut value = serde_json::to_value(&object).unwrap_or(Value::Null);
            if kind == "Secret" {
                secret_values.extend(decoded_values(&value));
            }
            if !belongs(&kind, &value, family) {
                continue;
            }
            found += 1;
            if let Some(uid) = object.metadata.uid.clone() {
                family.uids.insert(uid);
            }
            if kind == "Pod"
                && value["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
                && let Ok(pod) = serde_json::from_value::<Pod>(value.clone())
            {
                family.api_pods.push(pod);
            }
            with_type(&mut value, &resource);
            redact::object(&kind, &mut value);
            let name = object.metadata.name.clone().unwrap_or_default();
            bundle.file(object_path(&kind, &name), yaml(&value));
        }
        bundle.record(item, Outcome::Collected, format!("{found}"));
    }
    secret_values
}

/// The Secrets the spec names, read one by one (when listing Secrets is not allowed).
async fn named_secrets(api: &Api<DynamicObject>, family: &Family, bundle: &mut Bundle) -> Vec<DynamicObject> {
    let mut found = Vec::new();
    for name in &family.referenced_secrets {
        match api.get_opt(name).await {
            Ok(secret) => found.extend(secret),
            Err(error) => {
                let (outcome, detail) = failure(&error);
                bundle.record(format!("Secret {name}"), outcome, detail);
            }
        }
    }
    found
}

/// The decoded values of a Secret's `data` (base64) and `stringData` (pure).
pub fn decoded_values(secret: &Value) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut values = Vec::new();
    if let Some(data) = secret["data"].as_object() {
        values.extend(
            data.values()
                .filter_map(Value::as_str)
                .filter_map(|v| base64::engine::general_purpose::STANDARD.decode(v).ok()),
        );
    }
    if let Some(data) = secret["stringData"].as_object() {
        values.extend(data.values().filter_map(Value::as_str).map(|v| v.as_bytes().to_vec()));
    }
    values
}

/// `apiVersion` and `kind` set (list items may come without them).
fn with_type(value: &mut Value, resource: &ApiResource) {
    if let Value::Object(map) = value {
        map.insert("apiVersion".into(), Value::String(resource.api_version.clone()));
        map.insert("kind".into(), Value::String(resource.kind.clone()));
    }
}

/// YAML of an object; its JSON if YAML fails (never nothing).
pub fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| serde_json::to_string_pretty(value).unwrap_or_default())
}

/// The Events whose object is the SecurityGuard or one of its children, oldest first, as a
/// table and whole.
pub async fn events(client: &Client, namespace: &str, family: &Family, bundle: &mut Bundle, progress: Progress<'_>) {
    progress("listing events");
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let listed = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(error) => {
            let (outcome, detail) = failure(&error);
            bundle.record("Events", outcome, detail);
            return;
        }
    };
    let mut events: Vec<Event> = listed
        .into_iter()
        .filter(|e| e.involved_object.uid.as_ref().is_some_and(|uid| family.uids.contains(uid)))
        .collect();
    events.sort_by_key(|e| event_time(e).unwrap_or_default());
    bundle.file(super::bundle::EVENTS_TEXT, events_table(&events));
    let values: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut value = serde_json::to_value(e).unwrap_or(Value::Null);
            with_type(&mut value, &ApiResource::erase::<Event>(&()));
            redact::object("Event", &mut value);
            value
        })
        .collect();
    bundle.file(super::bundle::EVENTS_YAML, yaml(&Value::Array(values)));
    bundle.record("Events", Outcome::Collected, format!("{}", events.len()));
}

/// When an Event last happened, as RFC 3339 text.
fn event_time(event: &Event) -> Option<String> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()))
}

/// `LAST SEEN  TYPE  REASON  OBJECT  COUNT  MESSAGE`, one Event a line (pure).
pub fn events_table(events: &[Event]) -> String {
    let mut out = String::from("LAST SEEN\tTYPE\tREASON\tOBJECT\tCOUNT\tMESSAGE\n");
    for event in events {
        let object = &event.involved_object;
        out.push_str(&format!(
            "{}\t{}\t{}\t{}/{}\t{}\t{}\n",
            event_time(event).unwrap_or_default(),
            event.type_.as_deref().unwrap_or(""),
            event.reason.as_deref().unwrap_or(""),
            object.kind.as_deref().unwrap_or(""),
            object.name.as_deref().unwrap_or(""),
            event.count.unwrap_or(1),
            event.message.as_deref().unwrap_or("").replace('\n', " "),
        ));
    }
    out
}

/// Pods of the operator: those labelled as `config/manager/deployment.yaml` labels them.
pub const OPERATOR_POD_SELECTOR: &str = "app.kubernetes.io/name=securityguard-operator";

/// The operator's pods: in `namespace` when given, else in every namespace, and in the
/// namespace of `config/` when listing every namespace is not allowed.
pub async fn operator_pods(client: &Client, namespace: Option<&str>, bundle: &mut Bundle) -> Vec<Pod> {
    let params = ListParams::default().labels(OPERATOR_POD_SELECTOR);
    let everywhere = match namespace {
        Some(ns) => Api::<Pod>::namespaced(client.clone(), ns).list(&params).await,
        None => Api::<Pod>::all(client.clone()).list(&params).await,
    };
    let listed = match everywhere {
        Err(kube::Error::Api(status)) if status.code == 403 && namespace.is_none() => {
            let ns = crate::monitoring::OPERATOR_NAMESPACE;
            bundle.record(
                "operator pods (all namespaces)",
                Outcome::Skipped,
                format!("listing pods in every namespace is forbidden; looked in {ns} only"),
            );
            Api::<Pod>::namespaced(client.clone(), ns).list(&params).await
        }
        other => other,
    };
    match listed {
        Ok(list) => {
            if list.items.is_empty() {
                bundle.record("operator pods", Outcome::Skipped, format!("no pod labelled {OPERATOR_POD_SELECTOR}"));
            }
            list.items
        }
        Err(error) => {
            let (outcome, detail) = failure(&error);
            bundle.record("operator pods", outcome, detail);
            Vec::new()
        }
    }
}

/// One container's log to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// The log of the container's previous instance (it restarted).
    pub previous: bool,
}

/// The logs to read of `pods`: each container's, init containers included, and the previous
/// instance's of each container that restarted (pure).
pub fn log_requests(pods: &[Pod]) -> Vec<LogRequest> {
    let mut requests = Vec::new();
    for pod in pods {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let containers = spec.iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
        let statuses: Vec<_> = status
            .iter()
            .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()))
            .collect();
        for container in containers {
            let restarted = statuses.iter().any(|s| s.name == container.name && s.restart_count > 0);
            for previous in [false, true] {
                if previous && !restarted {
                    continue;
                }
                requests.push(LogRequest {
                    namespace: namespace.clone(),
                    pod: name.clone(),
                    container: container.name.clone(),
                    previous,
                });
            }
        }
    }
    requests
}

/// Reads the logs of `pods` into `logs/<group>/`.
pub async fn logs(
    client: &Client,
    group: LogGroup,
    pods: &[Pod],
    limits: LogLimits,
    bundle: &mut Bundle,
    progress: Progress<'_>,
) {
    for request in log_requests(pods) {
        let path = log_path(group, &request.pod, &request.container, request.previous);
        let item = format!("log {}", path.trim_start_matches("logs/"));
        progress(&format!("reading {item}"));
        let params = LogParams {
            container: Some(request.container.clone()),
            previous: request.previous,
            tail_lines: Some(limits.tail_lines),
            limit_bytes: Some(limits.limit_bytes),
            timestamps: true,
            ..LogParams::default()
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &request.namespace);
        match api.logs(&request.pod, &params).await {
            Ok(text) => {
                bundle.record(item, Outcome::Collected, format!("{} bytes", text.len()));
                bundle.file(path, redact::url_passwords(&text));
            }
            Err(error) => {
                // A container not started yet, or waiting: nothing to read, not a failure.
                let (outcome, detail) = match &error {
                    kube::Error::Api(status) if status.code == 400 => (Outcome::Skipped, describe(&error)),
                    _ => failure(&error),
                };
                bundle.record(item, outcome, detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn family() -> Family {
        Family {
            name: "sg".into(),
            uids: BTreeSet::from(["guard-uid".to_owned(), "deploy-uid".to_owned()]),
            referenced_secrets: BTreeSet::from(["jwt".to_owned()]),
            api_pods: Vec::new(),
        }
    }

    #[test]
    fn an_object_belongs_by_owner_labels_or_reference() {
        let f = family();
        let owned = json!({"metadata": {"name": "rs", "ownerReferences": [{"uid": "deploy-uid"}]}});
        let labelled = json!({"metadata": {"name": "data-sg-postgres-0",
            "labels": {"app.kubernetes.io/name": "securityguard", "app.kubernetes.io/instance": "sg"}}});
        let other_guard = json!({"metadata": {"name": "x",
            "labels": {"app.kubernetes.io/name": "securityguard", "app.kubernetes.io/instance": "other"}}});
        let stranger = json!({"metadata": {"name": "y", "ownerReferences": [{"uid": "someone-else"}]}});
        let jwt = json!({"metadata": {"name": "jwt"}});
        assert!(belongs("ReplicaSet", &owned, &f));
        assert!(belongs("PersistentVolumeClaim", &labelled, &f));
        assert!(!belongs("Service", &other_guard, &f));
        assert!(!belongs("Pod", &stranger, &f));
        assert!(belongs("Secret", &jwt, &f));
        assert!(!belongs("ConfigMap", &jwt, &f));
    }

    #[test]
    fn owners_come_before_what_they_own() {
        let kinds: Vec<String> = child_kinds().into_iter().map(|r| r.kind).collect();
        let at = |kind: &str| kinds.iter().position(|k| k == kind).unwrap_or_else(|| panic!("{kind} listed"));
        assert!(at("Deployment") < at("ReplicaSet") && at("ReplicaSet") < at("Pod"));
        assert!(at("CronJob") < at("Job") && at("Job") < at("Pod"));
        assert!(at("StatefulSet") < at("Pod"));
        for kind in ["ServiceMonitor", "PrometheusRule", "HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget"] {
            at(kind);
        }
    }

    #[test]
    fn every_kind_the_controller_watches_is_listed() {
        fn kind<K: kube::Resource<DynamicType = ()> + Clone>(_: &kube::runtime::reflector::Store<K>) -> String {
            K::kind(&()).into_owned()
        }
        // Exhaustive on purpose (no `..`): a new watched kind of child does not compile (in the
        // tests) until the report lists it.
        let crate::controller::read::Stores {
            service_accounts,
            config_maps,
            secrets,
            stateful_sets,
            services,
            network_policies,
            deployments,
            hpas,
            pdbs,
            ingresses,
            role_bindings,
            cron_jobs,
            jobs,
            volume_claims,
            service_monitors,
            prometheus_rules,
        } = crate::controller::test_api::empty_caches();
        let watched = [
            kind(&service_accounts),
            kind(&config_maps),
            kind(&secrets),
            kind(&stateful_sets),
            kind(&services),
            kind(&network_policies),
            kind(&deployments),
            kind(&hpas),
            kind(&pdbs),
            kind(&ingresses),
            kind(&role_bindings),
            kind(&cron_jobs),
            kind(&jobs),
            kind(&volume_claims),
            kind(&service_monitors),
            kind(&prometheus_rules),
        ];
        let listed: Vec<String> = child_kinds().into_iter().map(|r| r.kind).collect();
        for kind in watched {
            assert!(listed.contains(&kind), "{kind} is not in child_kinds()");
        }
    }

    #[test]
    fn secrets_are_decoded_from_data_and_string_data() {
        let secret =
            json!({"data": {"a": redact::base64(b"first-value"), "bad": "%%%"}, "stringData": {"b": "second"}});
        assert_eq!(decoded_values(&secret), vec![b"first-value".to_vec(), b"second".to_vec()]);
    }

    #[test]
    fn restarted_containers_also_give_their_previous_log() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "sg-api-1", "namespace": "prod"},
            "spec": {"initContainers": [{"name": "migrate"}], "containers": [{"name": "api"}, {"name": "sidecar"}]},
            "status": {"containerStatuses": [
                {"name": "api", "restartCount": 2, "ready": true, "image": "i", "imageID": ""},
                {"name": "sidecar", "restartCount": 0, "ready": true, "image": "i", "imageID": ""}]},
        }))
        .expect("pod");
        let got: Vec<(String, bool)> = log_requests(&[pod]).into_iter().map(|r| (r.container, r.previous)).collect();
        assert_eq!(
            got,
            vec![("migrate".into(), false), ("api".into(), false), ("api".into(), true), ("sidecar".into(), false)]
        );
    }

    #[test]
    fn missing_apis_are_skipped_and_forbidden_reads_failed() {
        let status = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("nope", if code == 404 { "NotFound" } else { "Forbidden" })
                    .with_code(code)
                    .boxed(),
            )
        };
        assert_eq!(failure(&status(404)).0, Outcome::Skipped);
        let (outcome, detail) = failure(&status(403));
        assert_eq!(outcome, Outcome::Failed);
        assert!(detail.starts_with("forbidden: "), "{detail}");
    }
}

#[cfg(test)]
mod reads {
    use serde_json::json;

    use super::*;
    use crate::controller::test_api::{Reply, api_server, expect, list};

    /// The list request of each kind in `prod`, answered by `reply` (an empty list by default).
    fn script(reply: impl Fn(&str) -> Option<Reply>) -> Vec<crate::controller::test_api::Exchange> {
        child_kinds()
            .into_iter()
            .map(|r| {
                let path = if r.group.is_empty() {
                    format!("GET /api/v1/namespaces/prod/{}", r.plural)
                } else {
                    format!("GET /apis/{}/namespaces/prod/{}", r.api_version, r.plural)
                };
                expect(&path, reply(&r.plural).unwrap_or(Reply::Json(list([]))))
            })
            .collect()
    }

    #[tokio::test]
    async fn without_list_on_secrets_the_named_ones_are_read_one_by_one() {
        let mut exchanges = script(|plural| (plural == "secrets").then_some(Reply::Status(403)));
        let at = exchanges.iter().position(|e| format!("{e:?}").contains("/secrets")).expect("secrets listed") + 1;
        let jwt = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jwt", "namespace": "prod"},
            "data": {"secret": redact::base64(b"jwt-signing-key-0123456789")}});
        exchanges.insert(at, expect("GET /api/v1/namespaces/prod/secrets/jwt", Reply::Json(jwt)));
        exchanges.insert(at + 1, expect("GET /api/v1/namespaces/prod/secrets/missing", Reply::Status(404)));
        let (client, server) = api_server(exchanges);
        let mut family = Family {
            name: "sg".into(),
            uids: BTreeSet::from(["guard-uid".to_owned()]),
            referenced_secrets: BTreeSet::from(["jwt".to_owned(), "missing".to_owned()]),
            api_pods: Vec::new(),
        };
        let mut bundle = Bundle::default();
        let (values, _) = server.run(children(&client, "prod", &mut family, &mut bundle, &|_: &str| {})).await;
        assert_eq!(values, vec![b"jwt-signing-key-0123456789".to_vec()]);
        assert_eq!(bundle.paths(), vec!["objects/Secret/jwt.yaml"]);
        let records: Vec<(&str, Outcome)> = bundle
            .records()
            .iter()
            .map(|r| (r.item.as_str(), r.outcome))
            .filter(|(i, _)| i.starts_with("Secret"))
            .collect();
        assert_eq!(records, vec![("Secret objects (list)", Outcome::Failed), ("Secret objects", Outcome::Collected)]);
    }
}
