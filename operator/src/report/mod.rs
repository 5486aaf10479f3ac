//! `kubectl securityguard report NAME`: the support bundle for on-call. One tar.gz (layout in
//! [`bundle`]) with the SecurityGuard and its status, its Events and its children's, every child
//! object, the recent logs of the API pods and of the operator's, the backup listing, and a
//! summary of what was collected and what could not be.
//!
//! Secret values never leave the cluster: [`redact`] removes them by structure from each
//! object, then scrubs every file of every value the namespace's Secrets hold.
//!
//! Only reading the SecurityGuard and writing the archive may fail the command; any other read
//! that fails (forbidden, an API the cluster does not serve, an unreachable bucket) is recorded
//! in `summary.txt` and the bundle is written without it.
//!
//! Runs with the user's kubeconfig. In the SecurityGuard's namespace it reads (`get` and `list`
//! unless said): securityguards (`get`), serviceaccounts, secrets (values used only to scrub;
//! without `list`, `get` on the Secrets the spec names), configmaps, services,
//! persistentvolumeclaims, deployments, replicasets, statefulsets, horizontalpodautoscalers,
//! poddisruptionbudgets, networkpolicies, ingresses, roles, rolebindings, cronjobs, jobs, pods,
//! pods/log (`get`), events, servicemonitors and prometheusrules (when served); and the
//! operator's pods and pods/log in every namespace (or, without that, in `securityguard-system`,
//! or in `--operator-namespace`).

pub mod bundle;
pub mod collect;
pub mod redact;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use serde_json::Value;

use self::bundle::{BACKUPS, Bundle, GUARD, LogGroup, Outcome, Record};
use self::collect::{Family, LogLimits};
use self::redact::Scrubber;
use crate::backup::list::Format;
use crate::plugin::{self, Target};

pub use self::collect::Progress;

/// Lines of each container's log by default.
pub const DEFAULT_TAIL_LINES: i64 = 2000;
/// Bytes of each container's log at most by default.
pub const DEFAULT_LIMIT_BYTES: i64 = 1024 * 1024;
/// How long the backup listing may take by default (an unreachable bucket retries).
pub const DEFAULT_BACKUPS_TIMEOUT: Duration = Duration::from_secs(30);

/// What `kubectl securityguard report` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The SecurityGuard.
    pub target: Target,
    /// The archive to write (default: `<bundle name>.tar.gz` in the current directory).
    pub output: Option<PathBuf>,
    /// Namespace of the operator's pods (default: found by their labels in every namespace).
    pub operator_namespace: Option<String>,
    /// How much of each container's log.
    pub logs: LogLimits,
    /// How long the backup listing may take.
    pub backups_timeout: Duration,
}

/// A written bundle.
#[derive(Debug, Clone)]
pub struct Written {
    /// Where.
    pub path: PathBuf,
    /// How many files it holds besides the summaries.
    pub files: usize,
    /// What was collected, skipped and failed.
    pub records: Vec<Record>,
}

impl Written {
    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let failed = self.records.iter().filter(|r| r.outcome == Outcome::Failed).count();
        let skipped = self.records.iter().filter(|r| r.outcome == Outcome::Skipped).count();
        format!(
            "support bundle written to {} ({} files; {failed} failed, {skipped} skipped: see summary.txt)\n",
            self.path.display(),
            self.files
        )
    }
}

/// The bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Kubernetes client, or the SecurityGuard cannot be read.
    #[error(transparent)]
    Guard(#[from] plugin::Error),
    /// The archive could not be written.
    #[error("cannot write the support bundle {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Collects the bundle of `options.target` and writes it.
pub async fn run(options: &Options, progress: Progress<'_>) -> Result<Written, Error> {
    let client = plugin::connect().await?;
    progress(&format!("reading SecurityGuard {}", options.target.name));
    let (namespace, guard) = plugin::read_guard(&client, &options.target).await?;
    let time = Timestamp::now();
    let root = bundle::root_name(&namespace, &options.target.name, time);
    let path = options.output.clone().unwrap_or_else(|| PathBuf::from(format!("{root}.tar.gz")));
    let (bundle, scrubber) = collect(&client, &namespace, guard, options, progress).await;
    progress(&format!("writing {}", path.display()));
    let guard_id = format!("{namespace}/{}", options.target.name);
    let write_error = |source| Error::Write { path: path.clone(), source };
    let bytes = bundle.archive(&root, &guard_id, time, &scrubber).map_err(write_error)?;
    // Never a half-written archive under the final name.
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    std::fs::write(&partial, bytes).map_err(write_error)?;
    std::fs::rename(&partial, &path).map_err(write_error)?;
    Ok(Written { path, files: bundle.paths().len(), records: bundle.records().to_vec() })
}

/// Everything but the writing: the bundle of the SecurityGuard `guard` (as read) in
/// `namespace`, and the scrubber of the Secret values seen.
pub async fn collect(
    client: &Client,
    namespace: &str,
    guard: Value,
    options: &Options,
    progress: Progress<'_>,
) -> (Bundle, Scrubber) {
    let name = options.target.name.clone();
    let mut bundle = Bundle::default();
    let mut family = Family {
        name: name.clone(),
        uids: guard["metadata"]["uid"].as_str().map(str::to_owned).into_iter().collect(),
        referenced_secrets: referenced_secrets(&guard),
        api_pods: Vec::new(),
    };
    let mut object = guard.clone();
    redact::object("SecurityGuard", &mut object);
    bundle.file(GUARD, collect::yaml(&object));
    bundle.record("SecurityGuard", Outcome::Collected, conditions(&guard));

    let secret_values = collect::children(client, namespace, &mut family, &mut bundle, progress).await;
    collect::events(client, namespace, &family, &mut bundle, progress).await;

    if family.api_pods.is_empty() {
        bundle.record("API pods", Outcome::Skipped, "no API pod found");
    }
    collect::logs(client, LogGroup::Api, &family.api_pods, options.logs, &mut bundle, progress).await;
    progress("listing the operator's pods");
    let operators = collect::operator_pods(client, options.operator_namespace.as_deref(), &mut bundle).await;
    collect::logs(client, LogGroup::Operator, &operators, options.logs, &mut bundle, progress).await;

    backups(client, namespace, &name, &guard, options.backups_timeout, &mut bundle, progress).await;
    let scrubber = Scrubber::new(secret_values.iter().map(Vec::as_slice));
    (bundle, scrubber)
}

/// The SecurityGuard's conditions in one line (`Ready=True, Degraded=False`), for the summary.
fn conditions(guard: &Value) -> String {
    let Some(conditions) = guard["status"]["conditions"].as_array() else {
        return "no status yet".to_owned();
    };
    let text = |c: &Value, field: &str| c[field].as_str().unwrap_or("?").to_owned();
    let listed: Vec<String> = conditions.iter().map(|c| format!("{}={}", text(c, "type"), text(c, "status"))).collect();
    format!("conditions: {}", listed.join(", "))
}

/// Names of the Secrets the spec refers to, wherever it does (pure): a `{name, key}` under a
/// field whose name says Secret (`jwtSecret`, `connectionSecret`, `claudeApiKey` is under
/// `secrets`), and a name in a field ending in `Secret` or `SecretName` (`credentialsSecret`,
/// `tlsSecretName`). Read from the dynamic object, so any version of the CRD works.
pub fn referenced_secrets(guard: &Value) -> BTreeSet<String> {
    fn walk(node: &Value, under_secret: bool, names: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                if under_secret && let Some(name) = map.get("name").and_then(Value::as_str) {
                    names.insert(name.to_owned());
                }
                for (field, child) in map {
                    let lower = field.to_ascii_lowercase();
                    if let Value::String(name) = child
                        && (lower.ends_with("secret") || lower.ends_with("secretname"))
                        && !name.is_empty()
                    {
                        names.insert(name.clone());
                    }
                    walk(child, under_secret || lower.contains("secret"), names);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, under_secret, names)),
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    walk(&guard["spec"], false, &mut names);
    names
}

/// The backup listing, as `kubectl securityguard backups` prints it; its error instead when
/// the bucket cannot be read.
async fn backups(
    client: &Client,
    namespace: &str,
    name: &str,
    guard: &Value,
    timeout: Duration,
    bundle: &mut Bundle,
    progress: Progress<'_>,
) {
    const ITEM: &str = "backup listing";
    if let Err(reason) = plugin::backup_location(guard) {
        bundle.record(ITEM, Outcome::Skipped, reason);
        return;
    }
    progress("listing the backups");
    match tokio::time::timeout(timeout, plugin::listing(client, namespace, name, guard, Format::Table)).await {
        Ok(Ok(table)) => {
            bundle.record(ITEM, Outcome::Collected, format!("{} backups", table.lines().count().saturating_sub(1)));
            bundle.file(BACKUPS, table);
        }
        Ok(Err(error)) => {
            bundle.record(ITEM, Outcome::Failed, error.to_string());
            bundle.file(BACKUPS, format!("the backups could not be listed: {error}\n"));
        }
        Err(_) => {
            let error = format!("no answer from the bucket within {}s", timeout.as_secs());
            bundle.record(ITEM, Outcome::Failed, error.clone());
            bundle.file(BACKUPS, format!("the backups could not be listed: {error}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use serde_json::json;

    use super::*;
    use crate::controller::test_api::{Reply, api_server, expect, list};

    const JWT: &str = "jwt-signing-key-0123456789";
    const GENERATED: &str = "Pg-generated-pw-42";
    const UNRELATED: &str = "unrelated-value-9876";
    const LITERAL: &str = "literal-db-password";

    #[test]
    fn the_secrets_the_spec_names_are_found_wherever_they_are() {
        let guard = json!({"spec": {
            "secrets": {"jwtSecret": {"name": "jwt", "key": "secret"}, "claudeApiKey": {"name": "claude", "key": "k"}},
            "postgres": {"external": {"connectionSecret": {"name": "db", "key": "url"}}},
            "backup": {"s3": {"bucket": "b", "credentialsSecret": "s3"}},
            "ingress": {"host": "h", "tlsSecretName": "tls"},
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "extra", "key": "a"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "not-a-secret", "key": "b"}}}],
            "image": "api:1",
        }});
        let names: Vec<String> = referenced_secrets(&guard).into_iter().collect();
        assert_eq!(names, vec!["claude", "db", "extra", "jwt", "s3", "tls"]);
    }

    fn options() -> Options {
        Options {
            target: Target { name: "sg".into(), namespace: Some("prod".into()) },
            output: None,
            operator_namespace: None,
            logs: LogLimits { tail_lines: 100, limit_bytes: 4096 },
            backups_timeout: Duration::from_secs(5),
        }
    }

    fn meta(name: &str, owner: Option<&str>, uid: &str) -> Value {
        let owners: Vec<Value> =
            owner.iter().map(|o| json!({"apiVersion": "v1", "kind": "X", "name": "o", "uid": o})).collect();
        json!({"name": name, "namespace": "prod", "uid": uid, "ownerReferences": owners})
    }

    fn guard() -> Value {
        json!({
            "apiVersion": "securityguard.io/v1alpha1", "kind": "SecurityGuard",
            "metadata": {"name": "sg", "namespace": "prod", "uid": "guard-uid", "annotations": {
                redact::LAST_APPLIED: format!("{{\"spec\":{{\"note\":\"{JWT}\"}}}}")}},
            "spec": {"image": "api:1", "secrets": {"jwtSecret": {"name": "jwt", "key": "secret"}}},
            "status": {"readyReplicas": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "NotAvailable", "message": "m", "lastTransitionTime": "2026-11-30T12:00:00Z"},
                {"type": "Degraded", "status": "True", "reason": "PodsFailing", "message": "m", "lastTransitionTime": "2026-11-30T12:00:00Z"}]},
        })
    }

    fn secret(name: &str, owner: Option<&str>, key: &str, value: &str) -> Value {
        let mut metadata = meta(name, owner, &format!("{name}-uid"));
        metadata["annotations"] = json!({redact::LAST_APPLIED: format!(
            "{{\"data\":{{\"{key}\":\"{}\"}},\"kind\":\"Secret\"}}", redact::base64(value.as_bytes()))});
        json!({"metadata": metadata, "data": {key: redact::base64(value.as_bytes())}, "type": "Opaque"})
    }

    fn log_request(pod: &str, ns: &str, previous: bool) -> String {
        let previous = if previous { "&previous=true" } else { "" };
        format!(
            "GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=api&limitBytes=4096{previous}&tailLines=100&timestamps=true"
        )
    }

    /// The whole collection against a scripted API server: what is found, what is skipped or
    /// forbidden, and a bundle in which no Secret value survives.
    #[tokio::test]
    async fn the_bundle_holds_the_family_and_no_secret_value() {
        let empty = || Reply::Json(list([]));
        let ns = |kind: &str| format!("GET /api/v1/namespaces/prod/{kind}");
        let group = |group: &str, kind: &str| format!("GET /apis/{group}/namespaces/prod/{kind}");
        let deployment = json!({
            "metadata": meta("sg-api", Some("guard-uid"), "deploy-uid"),
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "api", "env": [
                {"name": "DB_PASSWORD", "value": LITERAL},
                {"name": "JWT_SECRET", "valueFrom": {"secretKeyRef": {"name": "jwt", "key": "secret"}}},
                {"name": "LOG_LEVEL", "value": "info"},
            ]}]}}},
        });
        let pod = json!({
            "metadata": {"name": "sg-api-1", "namespace": "prod", "uid": "pod-uid",
                "labels": {"app.kubernetes.io/component": "api"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "sg-api-1", "uid": "rs-uid"}]},
            "spec": {"containers": [{"name": "api"}]},
            "status": {"containerStatuses": [{"name": "api", "restartCount": 1, "ready": true, "image": "i", "imageID": ""}]},
        });
        let operator = json!({"metadata": {"name": "op-1", "namespace": "securityguard-system", "uid": "op-uid"},
            "spec": {"containers": [{"name": "api"}]}});
        let event = json!({
            "metadata": {"name": "e1", "namespace": "prod"},
            "involvedObject": {"kind": "Deployment", "name": "sg-api", "uid": "deploy-uid"},
            "reason": "Failed", "type": "Warning", "count": 2, "lastTimestamp": "2026-11-30T12:00:00Z",
            "message": format!("cannot use {GENERATED}"),
        });
        let stranger_event = json!({"metadata": {"name": "e2", "namespace": "prod"},
            "involvedObject": {"kind": "Pod", "name": "x", "uid": "x-uid"}, "reason": "Other"});
        let (client, server) = api_server(vec![
            expect(
                &ns("serviceaccounts"),
                Reply::Json(list([json!({"metadata": meta("sg-api", Some("guard-uid"), "sa-uid")})])),
            ),
            expect(
                &ns("secrets"),
                Reply::Json(list([
                    secret("jwt", None, "secret", JWT),
                    secret("sg-credentials", Some("guard-uid"), "postgres-password", GENERATED),
                    secret("unrelated", None, "token", UNRELATED),
                ])),
            ),
            expect(
                &ns("configmaps"),
                Reply::Json(list([json!({"metadata": meta("sg-api", Some("guard-uid"), "cm-uid"),
                    "data": {"NOTE": format!("copied {UNRELATED} here"), "LOG_LEVEL": "info"}})])),
            ),
            expect(&ns("services"), empty()),
            expect(&group("apps/v1", "deployments"), Reply::Json(list([deployment]))),
            expect(&group("apps/v1", "statefulsets"), empty()),
            expect(&ns("persistentvolumeclaims"), empty()),
            expect(&group("autoscaling/v2", "horizontalpodautoscalers"), Reply::Status(403)),
            expect(&group("policy/v1", "poddisruptionbudgets"), empty()),
            expect(&group("networking.k8s.io/v1", "networkpolicies"), empty()),
            expect(&group("networking.k8s.io/v1", "ingresses"), empty()),
            expect(&group("rbac.authorization.k8s.io/v1", "roles"), empty()),
            expect(&group("rbac.authorization.k8s.io/v1", "rolebindings"), empty()),
            expect(&group("batch/v1", "cronjobs"), empty()),
            expect(&group("monitoring.coreos.com/v1", "servicemonitors"), Reply::Status(404)),
            expect(&group("monitoring.coreos.com/v1", "prometheusrules"), Reply::Status(404)),
            expect(
                &group("apps/v1", "replicasets"),
                Reply::Json(list([
                    json!({"metadata": meta("sg-api-1", Some("deploy-uid"), "rs-uid"), "spec": {"selector": {}}}),
                ])),
            ),
            expect(&group("batch/v1", "jobs"), empty()),
            expect(&ns("pods"), Reply::Json(list([pod]))),
            expect(&ns("events"), Reply::Json(list([event, stranger_event]))),
            expect(&log_request("sg-api-1", "prod", false), Reply::Json(json!(format!("using jwt {JWT}\n")))),
            expect(
                &log_request("sg-api-1", "prod", true),
                Reply::Json(json!("crashed on postgres://sg:hunter2hunter2@db:5432/sg\n")),
            ),
            expect("GET /api/v1/pods?labelSelector=app.kubernetes.io/name=securityguard-operator", Reply::Status(403)),
            expect(
                "GET /api/v1/namespaces/securityguard-system/pods?labelSelector=app.kubernetes.io/name=securityguard-operator",
                Reply::Json(list([operator])),
            ),
            expect(&log_request("op-1", "securityguard-system", false), Reply::Json(json!("reconciled\n"))),
        ]);
        let ((bundle, scrubber), _) = server.run(collect(&client, "prod", guard(), &options(), &|_: &str| {})).await;
        let time: Timestamp = "2026-11-30T13:00:00Z".parse().expect("time");
        let archive = bundle.archive("root", "prod/sg", time, &scrubber).expect("archive");

        // Nothing of any Secret value, raw or base64, in the archive's bytes (gunzipped).
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(archive.as_slice()).read_to_end(&mut tar_bytes).expect("gzip");
        let text = String::from_utf8_lossy(&tar_bytes);
        for value in [JWT, GENERATED, UNRELATED, LITERAL, "hunter2hunter2"] {
            assert!(!text.contains(value), "{value} leaked:\n{text}");
            assert!(!text.contains(&redact::base64(value.as_bytes())), "base64 of {value} leaked:\n{text}");
        }
        for value in [JWT, GENERATED, UNRELATED] {
            let base64 = redact::base64(value.as_bytes());
            assert!(!archive.windows(value.len()).any(|w| w == value.as_bytes()));
            assert!(!archive.windows(base64.len()).any(|w| w == base64.as_bytes()));
        }

        let mut files = std::collections::BTreeMap::new();
        let mut tar = tar::Archive::new(tar_bytes.as_slice());
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut content = String::new();
            entry.read_to_string(&mut content).expect("utf-8");
            files.insert(path, content);
        }
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            vec![
                "root/events.txt",
                "root/events.yaml",
                "root/index.json",
                "root/logs/api/sg-api-1/api.log",
                "root/logs/api/sg-api-1/api.previous.log",
                "root/logs/operator/op-1/api.log",
                "root/objects/ConfigMap/sg-api.yaml",
                "root/objects/Deployment/sg-api.yaml",
                "root/objects/Pod/sg-api-1.yaml",
                "root/objects/ReplicaSet/sg-api-1.yaml",
                "root/objects/Secret/jwt.yaml",
                "root/objects/Secret/sg-credentials.yaml",
                "root/objects/ServiceAccount/sg-api.yaml",
                "root/securityguard.yaml",
                "root/summary.txt",
            ]
        );
        // The Secrets keep their names and keys; the env keeps its references.
        let credentials: Value =
            serde_saphyr::from_str(&files["root/objects/Secret/sg-credentials.yaml"]).expect("yaml");
        assert_eq!(credentials["data"], json!({"postgres-password": redact::REDACTED}));
        assert_eq!(credentials["kind"], "Secret");
        let deployment: Value = serde_saphyr::from_str(&files["root/objects/Deployment/sg-api.yaml"]).expect("yaml");
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0], json!({"name": "DB_PASSWORD", "value": redact::REDACTED}));
        assert_eq!(env[1]["valueFrom"]["secretKeyRef"], json!({"name": "jwt", "key": "secret"}));
        assert_eq!(env[2], json!({"name": "LOG_LEVEL", "value": "info"}));
        let guard: Value = serde_saphyr::from_str(&files["root/securityguard.yaml"]).expect("yaml");
        assert_eq!(guard["status"]["readyReplicas"], 1);
        assert_eq!(guard["metadata"]["annotations"][redact::LAST_APPLIED], redact::REDACTED);
        // Only the family's Events, the message scrubbed.
        let events = &files["root/events.txt"];
        assert!(events.contains("Warning\tFailed\tDeployment/sg-api\t2\tcannot use <redacted>"), "{events}");
        assert!(!events.contains("Other"), "{events}");
        assert!(files["root/logs/api/sg-api-1/api.previous.log"].contains("postgres://sg:<redacted>@db"));
        // What was not collected, and why.
        let summary = &files["root/summary.txt"];
        assert!(summary.contains("HorizontalPodAutoscaler objects  forbidden: mocked Forbidden"), "{summary}");
        assert!(summary.contains("ServiceMonitor objects"), "{summary}");
        assert!(summary.contains("backup listing"), "{summary}");
        assert!(summary.contains("conditions: Ready=False, Degraded=True"), "{summary}");
        let index: Value = serde_json::from_str(&files["root/index.json"]).expect("json");
        let outcome = |item: &str| {
            index["records"]
                .as_array()
                .expect("records")
                .iter()
                .find(|r| r["item"] == item)
                .map(|r| r["outcome"].clone())
        };
        assert_eq!(outcome("HorizontalPodAutoscaler objects"), Some(json!("failed")));
        assert_eq!(outcome("PrometheusRule objects"), Some(json!("skipped")));
        assert_eq!(outcome("backup listing"), Some(json!("skipped")));
        assert_eq!(outcome("operator pods (all namespaces)"), Some(json!("skipped")));
        assert_eq!(outcome("Deployment objects"), Some(json!("collected")));
        assert_eq!(outcome("Events"), Some(json!("collected")));
    }
}
