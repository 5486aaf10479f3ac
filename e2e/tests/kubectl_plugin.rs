//! `kubectl securityguard backups|restore|report`, run through the real kubectl (which finds
//! the plugin on the PATH) as a user holding only the Role the plugin needs, against the control
//! plane and the local S3 server holding backups made by the real backup command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Client, Resource, ResourceExt};
use securityguard_e2e::backups::{Bucket, Database, run_dir, run_operator, service_account_with};
use securityguard_e2e::checks::{is_ready, owned_by};
use securityguard_e2e::fixtures::{GuardFixture, manifest, s3};
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, admin_kubeconfig, eventually, install, kubectl_ok,
    operator_binary, s3_credentials, secret, volumes_for_guard, wait_for,
};
use securityguard_operator::crd::{S3Spec, SecretKeyReference, SecurityGuard};
use securityguard_operator::report::redact::MIN_SCRUBBED_LEN;
use serde_json::Value;

const PREFIX: &str = "backups";

/// What the plugin's user needs: read the SecurityGuard and the credentials Secret, patch the
/// SecurityGuard for a restore.
const USER_RULES: &[&str] = &[
    "{apiGroups: [securityguard.io], resources: [securityguards], verbs: [get, patch]}",
    "{apiGroups: [\"\"], resources: [secrets], resourceNames: [s3-credentials], verbs: [get]}",
];

/// A directory holding only `kubectl-securityguard`, for the PATH.
fn plugin_dir() -> PathBuf {
    let operator = operator_binary();
    let plugin = operator.with_file_name("kubectl-securityguard");
    assert!(plugin.is_file(), "{} not found: cargo build -p securityguard-operator builds it", plugin.display());
    plugin.parent().expect("directory").to_owned()
}

/// `kubectl securityguard ARGS` as the user of `kubeconfig`.
fn plugin(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let path = format!("{}:{}", plugin_dir().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("kubectl")
        .arg("securityguard")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .output()
        .expect("kubectl runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    eprintln!("--- kubectl securityguard {args:?}: {}\n{stdout}\n{stderr}", out.status);
    (out.status.success(), stdout, stderr)
}

#[tokio::test]
async fn the_plugin_lists_backups_and_requests_restores() {
    let client = admin().await;
    install().await;
    let ns = TempNamespace::create(&client, "plugin").await;
    let ns = ns.name.as_str();
    let bucket = Bucket::create("plugin").await;
    s3_credentials(ns, "s3-credentials", &bucket.access_key, &bucket.secret_key);
    let guard = SecurityGuard::test("pg")
        .image("api:1")
        .backup(S3Spec { prefix: PREFIX.to_owned(), ..bucket.s3_spec("s3-credentials") });
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&manifest(&guard)));

    // Two backups by the real backup command, and an upload that never finished.
    let db = Database::create().await;
    let dir = run_dir(&format!("plugin-{ns}"));
    let mut env = bucket.env(PREFIX);
    env.push(("DATABASE_URL".into(), db.url.full().to_owned()));
    env.push(("SG_GUARD".into(), format!("{ns}/pg")));
    for _ in 0..2 {
        assert!(run_operator(&["backup"], &env, &dir).await.status.success());
    }
    bucket.put(&format!("{PREFIX}/{ns}/pg/20200101T000000.000Z.pgdump"), b"cut short".to_vec()).await;

    let user = service_account_with(ns, "on-call", USER_RULES);
    let (ok, table, _) = plugin(&user, &["backups", "pg", "-n", ns]);
    assert!(ok);
    // The same table as `securityguard-operator backups list` on the same folder.
    let list = run_operator(&["backups", "list"], &env, &dir).await;
    assert_eq!(table, String::from_utf8_lossy(&list.stdout));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "header and three backups:\n{table}");
    assert!(lines[0].starts_with("TIME") && lines[0].ends_with("KEY"), "{table}");
    assert_eq!(lines[1..].iter().filter(|l| l.contains(" good ")).count(), 2, "{table}");
    assert!(lines[3].contains("incomplete") && lines[3].ends_with("20200101T000000.000Z.pgdump"), "{table}");
    let (ok, json, _) = plugin(&user, &["backups", "pg", "-n", ns, "-o", "json"]);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&json).expect("JSON");
    let newest = listed[0]["key"].as_str().expect("key").to_owned();
    assert!(newest.starts_with(&format!("{PREFIX}/{ns}/pg/")), "{newest}");

    // A restore request: spec.restore gets a new requestId and the source.
    let gvk = GroupVersionKind::gvk("securityguard.io", "v1alpha1", "SecurityGuard");
    let guards: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "securityguards"));
    let (ok, out, _) = plugin(&user, &["restore", "pg", "-n", ns, "--source", &newest]);
    assert!(ok);
    assert!(out.contains("status.restore.phase"), "says how to follow it: {out}");
    let restore = |g: &DynamicObject| g.data["spec"]["restore"].clone();
    let first = restore(&guards.get("pg").await.expect("guard"));
    assert_eq!(first["source"], newest.as_str());
    let first_id = first["requestId"].as_str().expect("requestId").to_owned();
    assert!(out.contains(&first_id), "{out}");
    assert_eq!(first_id.len(), 36, "{first_id}");

    // Another request gets another id; the rest of the spec is untouched.
    let (ok, _, _) = plugin(&user, &["restore", "pg", "-n", ns, "--source", "before:2026-01-01T00:00:00Z"]);
    assert!(ok);
    let guard = guards.get("pg").await.expect("guard");
    assert_eq!(restore(&guard)["source"], "before:2026-01-01T00:00:00Z");
    assert_ne!(restore(&guard)["requestId"], first_id.as_str());
    assert_eq!(guard.data["spec"]["backup"]["s3"]["bucket"], bucket.name.as_str());
    assert_eq!(guard.data["spec"]["image"], "api:1");

    // A source that is not one is refused before anything is patched.
    let before = guards.get("pg").await.expect("guard").data["spec"]["restore"].clone();
    let (ok, _, err) = plugin(&user, &["restore", "pg", "-n", ns, "--source", "before:yesterday"]);
    assert!(!ok);
    assert!(err.contains("not an RFC 3339 time"), "{err}");
    assert_eq!(guards.get("pg").await.expect("guard").data["spec"]["restore"], before);

    // Without the Secret the listing names what it cannot read; never its content.
    kubectl_ok(&["-n", ns, "delete", "secret", "s3-credentials"], None);
    let (ok, _, err) = plugin(&user, &["backups", "pg", "-n", ns]);
    assert!(!ok);
    assert!(
        err.contains(&format!("cannot get Secret {ns}/s3-credentials (spec.backup.s3.credentialsSecret)")),
        "{err}"
    );
    // A SecurityGuard without backups says so (a restore needs backups: both go).
    kubectl_ok(
        &[
            "-n",
            ns,
            "patch",
            "securityguard",
            "pg",
            "--type=merge",
            "-p",
            "{\"spec\": {\"backup\": null, \"restore\": null}}",
        ],
        None,
    );
    let (ok, _, err) = plugin(&user, &["restore", "pg", "-n", ns, "--source", "latest"]);
    assert!(!ok);
    assert!(
        err.contains(&format!("SecurityGuard {ns}/pg has no backups configured: spec.backup.s3 is not set")),
        "{err}"
    );
}

/// What `report` needs (README, "The kubectl plugin"): read the SecurityGuard, list every kind
/// of child and the Events, list the Secrets (whose values it scrubs), read the pods' logs.
/// Nothing outside the namespace: the operator's pods cannot be listed, which the bundle says.
const REPORT_RULES: &[&str] = &[
    "{apiGroups: [securityguard.io], resources: [securityguards], verbs: [get]}",
    "{apiGroups: [\"\"], resources: [serviceaccounts, secrets, configmaps, services, persistentvolumeclaims, pods, events], verbs: [list]}",
    "{apiGroups: [\"\"], resources: [secrets, pods/log], verbs: [get]}",
    "{apiGroups: [apps], resources: [deployments, replicasets, statefulsets], verbs: [list]}",
    "{apiGroups: [autoscaling], resources: [horizontalpodautoscalers], verbs: [list]}",
    "{apiGroups: [policy], resources: [poddisruptionbudgets], verbs: [list]}",
    "{apiGroups: [networking.k8s.io], resources: [networkpolicies, ingresses], verbs: [list]}",
    "{apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [list]}",
    "{apiGroups: [batch], resources: [cronjobs, jobs], verbs: [list]}",
    "{apiGroups: [monitoring.coreos.com], resources: [servicemonitors, prometheusrules], verbs: [list]}",
];

/// Every file under `dir`, by path relative to it.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("below").to_string_lossy().into_owned();
                out.insert(relative, std::fs::read(&path).expect("read file"));
            }
        }
    }
    out
}

/// The files of a support bundle, unpacked by tar, relative to its one top directory (whose name
/// starts with `root_prefix`).
fn unpack(archive: &Path, root_prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let unpacked = archive.with_extension("unpacked");
    std::fs::create_dir(&unpacked).expect("directory");
    let tar = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(&unpacked).status().expect("tar runs");
    assert!(tar.success());
    let roots: Vec<_> = std::fs::read_dir(&unpacked).expect("read").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(roots.len(), 1, "one top directory: {roots:?}");
    let root_name = roots[0].to_string_lossy().into_owned();
    assert!(root_name.starts_with(root_prefix), "{root_name}");
    files_under(&unpacked.join(&root_name))
}

/// Names of the objects of kind `K` in `ns` whose controller is the guard.
async fn owned_names<K>(client: &Client, ns: &str, guard: &SecurityGuard) -> Vec<String>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let listed = Api::<K>::namespaced(client.clone(), ns).list(&ListParams::default()).await.expect("list");
    listed.items.iter().filter(|o| owned_by(*o, guard)).map(|o| o.name_any()).collect()
}

#[tokio::test]
async fn the_report_bundles_the_guard_its_children_events_and_logs_without_any_secret_value() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "report").await;
    let ns = ns.name.as_str();
    let _operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;

    // Secret values long enough to be told from any other text; one Secret applied by kubectl
    // with stringData, so that its last-applied annotation holds the value in plain text.
    secret(ns, "securityguard-jwt", "secret", JWT);
    s3_credentials(ns, "s3-credentials", "AKIAREPORTE2E0123456", "report-e2e-s3-secret-0123456789");
    kubectl_ok(
        &["-n", ns, "apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: claude}\nstringData: {api-key: sk-ant-report-e2e-0123456789abcdef}\n",
        ),
    );
    volumes_for_guard(ns, "rep");
    // A bucket nobody answers at: the listing fails and the bundle says so.
    let guard = SecurityGuard::test("rep")
        .fixed_replicas(2)
        .env("SG_ADMIN_PASSWORD", "literal-admin-password-0123")
        .with(|g| {
            g.spec.secrets.claude_api_key = Some(SecretKeyReference { name: "claude".into(), key: "api-key".into() })
        })
        .backup(S3Spec {
            endpoint: Some("http://127.0.0.1:9".into()),
            path_style: true,
            ..s3("report", "s3-credentials")
        });
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&manifest(&guard)));
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    let guard = wait_for(guards.clone(), "rep", Duration::from_secs(120), is_ready).await;
    let guard_uid = guard.metadata.uid.clone().expect("uid");
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let guard_events = eventually("Events about the SecurityGuard", Duration::from_secs(60), || async {
        let listed = events.list(&ListParams::default()).await.ok()?;
        let names: Vec<String> = listed
            .items
            .iter()
            .filter(|e| e.involved_object.uid.as_deref() == Some(guard_uid.as_str()))
            .map(|e| e.name_any())
            .collect();
        (!names.is_empty()).then_some(names)
    })
    .await;

    // As on-call, with only the Role above.
    let user = service_account_with(ns, "on-call", REPORT_RULES);
    let out_dir = tempfile::tempdir().expect("temporary directory");
    let archive = out_dir.path().join("bundle.tar.gz");
    let archive_arg = archive.to_str().expect("utf-8");
    let (ok, stdout, stderr) =
        plugin(&user, &["report", "rep", "-n", ns, "-o", archive_arg, "--backups-timeout", "10", "--tail", "50"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(archive_arg), "{stdout}");
    assert!(stderr.contains("report: listing pods"), "progress on stderr: {stderr}");

    let files = unpack(&archive, &format!("securityguard-report-{ns}-rep-"));
    let text = |path: &str| -> String {
        String::from_utf8(files.get(path).unwrap_or_else(|| panic!("{path} in {:?}", files.keys())).clone())
            .expect("utf-8")
    };
    eprintln!("--- summary.txt\n{}", text("summary.txt"));

    // The SecurityGuard with its status.
    let bundled: Value = serde_saphyr::from_str(&text("securityguard.yaml")).expect("yaml");
    assert_eq!(bundled["metadata"]["uid"], guard_uid.as_str());
    assert!(bundled["status"]["conditions"].as_array().is_some_and(|c| !c.is_empty()), "{bundled}");

    // Every child the operator made, and the API pods with their logs.
    let mut expected = Vec::new();
    expected.extend(owned_names::<Deployment>(&client, ns, &guard).await.into_iter().map(|n| ("Deployment", n)));
    expected.extend(owned_names::<StatefulSet>(&client, ns, &guard).await.into_iter().map(|n| ("StatefulSet", n)));
    expected.extend(owned_names::<Service>(&client, ns, &guard).await.into_iter().map(|n| ("Service", n)));
    expected.extend(owned_names::<ConfigMap>(&client, ns, &guard).await.into_iter().map(|n| ("ConfigMap", n)));
    expected.extend(owned_names::<CronJob>(&client, ns, &guard).await.into_iter().map(|n| ("CronJob", n)));
    expected.extend(owned_names::<Secret>(&client, ns, &guard).await.into_iter().map(|n| ("Secret", n)));
    assert!(expected.iter().any(|(kind, _)| *kind == "Deployment") && expected.len() >= 6, "{expected:?}");
    for (kind, name) in &expected {
        assert!(files.contains_key(&format!("objects/{kind}/{name}.yaml")), "{kind} {name} in {:?}", files.keys());
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let api_pods = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=rep,app.kubernetes.io/component=api"))
        .await
        .expect("pods");
    assert!(!api_pods.items.is_empty());
    for pod in &api_pods.items {
        let name = pod.name_any();
        assert!(files.contains_key(&format!("objects/Pod/{name}.yaml")), "pod {name}");
        assert!(files.keys().any(|p| p.starts_with(&format!("logs/api/{name}/"))), "log of {name}: {:?}", files.keys());
    }
    // The referenced Secrets as names and keys.
    for (name, key) in [("securityguard-jwt", "secret"), ("claude", "api-key"), ("s3-credentials", "AWS_ACCESS_KEY_ID")]
    {
        let secret: Value = serde_saphyr::from_str(&text(&format!("objects/Secret/{name}.yaml"))).expect("yaml");
        assert_eq!(secret["data"][key], "<redacted>", "{secret}");
    }

    // The Events about the SecurityGuard.
    let events_yaml = text("events.yaml");
    for name in &guard_events {
        assert!(events_yaml.contains(name.as_str()), "Event {name} in events.yaml");
    }
    assert!(text("events.txt").contains("SecurityGuard/rep"), "{}", text("events.txt"));

    // What could not be collected, said: the bucket, the operator's pods outside the namespace.
    let index: Value = serde_json::from_str(&text("index.json")).expect("json");
    let outcome = |item: &str| {
        index["records"].as_array().expect("records").iter().find(|r| r["item"] == item).map(|r| r["outcome"].clone())
    };
    assert_eq!(outcome("backup listing"), Some(Value::from("failed")), "{index}");
    assert_eq!(outcome("operator pods"), Some(Value::from("failed")), "{index}");
    assert!(text("backups.txt").starts_with("the backups could not be listed"), "{}", text("backups.txt"));

    // No value any Secret of the namespace holds, raw or base64, anywhere in the bundle; nor the
    // literal env value with a credential's name.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut values: Vec<Vec<u8>> = vec![b"literal-admin-password-0123".to_vec()];
    for secret in secrets.list(&ListParams::default()).await.expect("secrets").items {
        values.extend(secret.data.into_iter().flatten().map(|(_, v)| v.0));
    }
    // Shorter values (`true`, a port) cannot be told from ordinary text; the fixtures' are longer.
    let values: Vec<Vec<u8>> = values.into_iter().filter(|v| v.len() >= MIN_SCRUBBED_LEN).collect();
    assert!(values.len() >= 6, "the jwt, claude, S3 and generated passwords: {}", values.len());
    for value in &values {
        let forms = [value.clone(), base64::engine::general_purpose::STANDARD.encode(value).into_bytes()];
        for (path, bytes) in &files {
            for form in &forms {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "{path} holds a Secret value ({} bytes)",
                    value.len()
                );
            }
        }
    }

    // As an administrator, the operator's pods (installed from config/) are found by their
    // labels in their own namespace; their logs are read, or skipped while they do not run.
    let admin_archive = out_dir.path().join("admin.tar.gz");
    let admin_arg = admin_archive.to_str().expect("utf-8");
    let (ok, _, stderr) =
        plugin(&admin_kubeconfig(), &["report", "rep", "-n", ns, "-o", admin_arg, "--backups-timeout", "5"]);
    assert!(ok, "{stderr}");
    let admin_files = unpack(&admin_archive, &format!("securityguard-report-{ns}-rep-"));
    let index: Value = serde_json::from_slice(&admin_files["index.json"]).expect("json");
    let records = index["records"].as_array().expect("records");
    assert!(!records.iter().any(|r| r["item"] == "operator pods"), "operator pods found: {index}");
    let operator_logs: Vec<&Value> =
        records.iter().filter(|r| r["item"].as_str().is_some_and(|i| i.starts_with("log operator/"))).collect();
    assert!(!operator_logs.is_empty(), "{index}");
    assert!(operator_logs.iter().all(|r| r["outcome"] != "failed"), "{index}");

    // Only a SecurityGuard that cannot be read fails the command.
    let (ok, _, err) = plugin(&user, &["report", "missing", "-n", ns, "-o", archive_arg]);
    assert!(!ok);
    assert!(err.contains(&format!("cannot get SecurityGuard {ns}/missing")), "{err}");
}
