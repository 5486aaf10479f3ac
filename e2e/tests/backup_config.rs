//! `securityguard-operator backup --config-backup` against the control plane: the backup Job's
//! command and environment, run as a local process with a ServiceAccount token holding only the
//! Role the Job gets, against the local PostgreSQL and S3-compatible server.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use securityguard_e2e::backups::{Bucket, Database, job_env, run_dir, run_operator, service_account_with, termination};
use securityguard_e2e::fixtures::{self, GuardFixture};
use securityguard_e2e::{JWT, Operator, OperatorOptions, TempNamespace, admin, kubectl_ok, secret, wait_for};
use securityguard_operator::backup::manifest::{self, Manifest};
use securityguard_operator::crd::SecurityGuard;
use serde_json::Value;
use sha2::{Digest, Sha256};

const PREFIX: &str = "backups";

/// Exactly what the backup Job's ServiceAccount is granted.
const JOB_RULES: &[&str] = &[
    "{apiGroups: [securityguard.io], resources: [securityguards], verbs: [get]}",
    "{apiGroups: [\"\"], resources: [configmaps], verbs: [list]}",
];

const EXTRA_SETTINGS: &str = "plain-setting-from-a-user-config-map";

/// A SecurityGuard whose API takes one variable from a ConfigMap of the user's (not labelled),
/// as a manifest for kubectl.
fn guard_manifest(name: &str) -> String {
    fixtures::manifest(&SecurityGuard::test(name).env_from_config_map("EXTRA", "extra-settings", "extra"))
}

/// The backup Job's environment: a Job's, with the database to dump and the config backup on.
fn env_of(
    ns: &str,
    name: &str,
    bucket: &Bucket,
    db: &Database,
    kubeconfig: &Path,
    dir: &Path,
) -> Vec<(String, String)> {
    let mut env = job_env(bucket, PREFIX, ns, name, kubeconfig, dir);
    env.extend([
        ("DATABASE_URL".to_owned(), db.url.full().to_owned()),
        ("SG_BACKUP_CONFIG".to_owned(), "true".to_owned()),
    ]);
    env
}

#[tokio::test]
async fn config_backup_holds_the_guard_and_its_config_maps_but_no_secret() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "bkcfg").await;
    let ns = ns.name.as_str();
    let _operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;
    let name = "cfg";
    secret(ns, "securityguard-jwt", "secret", JWT);
    kubectl_ok(
        &["-n", ns, "create", "configmap", "extra-settings", &format!("--from-literal=extra={EXTRA_SETTINGS}")],
        None,
    );
    kubectl_ok(&["-n", ns, "create", "configmap", "unrelated", "--from-literal=other=not-ours"], None);
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&guard_manifest(name)));
    // The API's ConfigMap, as the operator builds it.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let api_config =
        wait_for(config_maps, &format!("{name}-api"), Duration::from_secs(60), |c: &ConfigMap| c.data.is_some()).await;

    let bucket = Bucket::create("cfg").await;
    let db = Database::create().await;
    let dir = run_dir(&format!("backup-{ns}"));
    let kubeconfig = service_account_with(ns, "backup", JOB_RULES);
    let output = run_operator(&["backup"], &env_of(ns, name, &bucket, &db, &kubeconfig, &dir), &dir).await;
    assert!(output.status.success(), "backup failed: {}", String::from_utf8_lossy(&output.stderr));

    let summary = termination(&dir);
    let dump_key = summary["key"].as_str().expect("key").to_owned();
    let config_key = manifest::config_key(&dump_key);
    assert_eq!(summary["config"], config_key.as_str());
    assert!(dump_key.starts_with(&format!("{PREFIX}/{ns}/{name}/")), "{dump_key}");
    assert_eq!(
        bucket.keys().await,
        vec![dump_key.clone(), config_key.clone(), manifest::manifest_key(&dump_key)],
        "dump, config backup and manifest"
    );

    let yaml = bucket.get(&config_key).await;
    let manifest_key = manifest::manifest_key(&dump_key);
    let manifest = Manifest::parse(&manifest_key, &bucket.get(&manifest_key).await).expect("manifest");
    let recorded = manifest.config.expect("the manifest covers the config backup");
    assert_eq!(
        (recorded.size, recorded.sha256.as_str()),
        (yaml.len() as u64, hex::encode(Sha256::digest(&yaml)).as_str())
    );
    let objects =
        vec!["SecurityGuard/cfg".to_owned(), "ConfigMap/cfg-api".to_owned(), "ConfigMap/extra-settings".to_owned()];
    assert_eq!(recorded.objects, objects);

    let text = String::from_utf8(yaml).expect("UTF-8");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("multi-document YAML");
    let kinds: Vec<String> = documents
        .iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap_or(""), d["metadata"]["name"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, objects);
    // The SecurityGuard as written, without what the server adds.
    let sg = &documents[0];
    assert_eq!(sg["apiVersion"], "securityguard.io/v1alpha1");
    assert_eq!(sg["metadata"]["namespace"], ns);
    assert_eq!(sg["spec"]["image"], "ghcr.io/securityguard/api:0.1.0");
    assert_eq!(sg["spec"]["secrets"]["jwtSecret"], serde_json::json!({"name": "securityguard-jwt", "key": "secret"}));
    assert_eq!(sg["spec"]["env"][0]["valueFrom"]["configMapKeyRef"]["name"], "extra-settings");
    for noise in ["uid", "resourceVersion", "managedFields", "generation", "creationTimestamp", "finalizers"] {
        assert!(sg["metadata"].get(noise).is_none(), "{noise} removed: {}", sg["metadata"]);
    }
    assert!(sg.get("status").is_none());
    // The ConfigMaps' data, exactly as in the cluster.
    let api = &documents[1];
    assert_eq!(serde_json::to_value(&api_config.data).expect("json"), api["data"]);
    assert!(api["metadata"].get("ownerReferences").is_none(), "{}", api["metadata"]);
    assert_eq!(api["metadata"]["labels"]["app.kubernetes.io/instance"], name);
    assert_eq!(documents[2]["data"]["extra"], EXTRA_SETTINGS);
    // No Secret, no secret value, nothing unrelated.
    assert!(documents.iter().all(|d| d["kind"] != "Secret"));
    assert!(!text.contains(JWT), "the JWT secret value is not in the config backup");
    assert!(!text.contains("not-ours"), "unrelated ConfigMaps are left out");

    // Listed as good, with the config backup named.
    let list_backups = async || -> Vec<Value> {
        let list = run_operator(
            &["backups", "list", "--output", "json"],
            &env_of(ns, name, &bucket, &db, &kubeconfig, &dir),
            &dir,
        )
        .await;
        serde_json::from_slice(&list.stdout).expect("list JSON")
    };
    let listed = list_backups().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0]["state"].as_str(), listed[0]["config"].as_str()), (Some("good"), Some(config_key.as_str())));

    // The same backup without the config backup in the bucket is no longer good.
    securityguard_operator::backup::store::Store::S3(bucket.s3.clone()).delete(&config_key).await.expect("delete");
    let listed = list_backups().await;
    assert_eq!(listed[0]["state"], "inconsistent");
    assert_eq!(listed[0]["reason"], format!("config backup {config_key} missing"));
}

#[tokio::test]
async fn config_backup_without_list_configmaps_fails_before_dumping() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "bkcfgrbac").await;
    let ns = ns.name.as_str();
    create_guard_without_operator(ns, "cfg").await;
    let bucket = Bucket::create("cfgrbac").await;
    let db = Database::create().await;
    let dir = run_dir(&format!("backup-{ns}"));
    let kubeconfig = service_account_with(ns, "backup", &JOB_RULES[..1]);
    let output = run_operator(&["backup"], &env_of(ns, "cfg", &bucket, &db, &kubeconfig, &dir), &dir).await;
    assert!(!output.status.success());
    let error = termination(&dir)["error"].as_str().expect("error").to_owned();
    assert!(
        error.starts_with(&format!(
            "config backup failed, nothing was dumped: cannot list the ConfigMaps \
             (app.kubernetes.io/name=securityguard,app.kubernetes.io/instance=cfg) in namespace {ns}"
        )),
        "{error}"
    );
    assert!(error.contains("forbidden"), "{error}");
    assert!(bucket.keys().await.is_empty(), "nothing stored");

    // Without `get securityguards` it is the SecurityGuard that cannot be read.
    let kubeconfig = service_account_with(ns, "backup-cm-only", &JOB_RULES[1..]);
    let output = run_operator(&["backup"], &env_of(ns, "cfg", &bucket, &db, &kubeconfig, &dir), &dir).await;
    assert!(!output.status.success());
    let error = termination(&dir)["error"].as_str().expect("error").to_owned();
    assert!(error.contains(&format!("cannot get SecurityGuard {ns}/cfg")) && error.contains("forbidden"), "{error}");
    assert!(bucket.keys().await.is_empty(), "nothing stored");
}

/// A SecurityGuard with no operator running (only its object matters).
async fn create_guard_without_operator(ns: &str, name: &str) {
    securityguard_e2e::install().await;
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&guard_manifest(name)));
}
