//! `securityguard-operator archive-logs` against the control plane: the API pods the operator
//! created, their logs read through the API server's pods/log (served by kwok from
//! `pod-logs.log`), with a ServiceAccount token holding only the Job's Role, into the local S3
//! server.

use std::io::Read;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use securityguard_e2e::backups::{
    Bucket, append_pod_log, job_env, run_dir, run_operator, service_account_with, termination,
};
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, eventually, kubectl_ok, repo_root, secret,
};
use securityguard_operator::backup::envelope::{self, Keyring};
use securityguard_operator::backup::logs::Index;
use sha2::{Digest, Sha256};

const PREFIX: &str = "backups";

/// Exactly what the log archive Job's ServiceAccount is granted.
const JOB_RULES: &[&str] = &[
    "{apiGroups: [\"\"], resources: [pods], verbs: [list]}",
    "{apiGroups: [\"\"], resources: [pods/log], verbs: [get]}",
];

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).expect("gzip");
    text
}

/// The running API pods of the minimal example, by name.
async fn api_pods(pods: &Api<Pod>) -> Vec<String> {
    let selector = "app.kubernetes.io/instance=minimal,app.kubernetes.io/component=api";
    eventually("three running API pods", Duration::from_secs(90), || async {
        let list = pods.list(&ListParams::default().labels(selector)).await.ok()?;
        let running: Vec<String> = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        (running.len() == 3).then_some(running)
    })
    .await
}

#[tokio::test]
async fn the_api_pods_logs_are_archived_gzipped_with_an_index_and_old_archives_expire() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "logs").await;
    let ns = ns.name.as_str();
    let _operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;
    secret(ns, "securityguard-jwt", "secret", JWT);
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut api = api_pods(&pods).await;
    api.sort();

    let marker = format!("request served in {ns}");
    let now = SystemTime::now();
    append_pod_log(&[
        (now - Duration::from_secs(10 * 86_400), "a line from ten days ago"),
        (now - Duration::from_secs(60), &marker),
        (now, "second line"),
    ]);

    let bucket = Bucket::create("logs").await;
    let old = format!("{PREFIX}/{ns}/minimal/logs/2020-01-06/");
    let recent_date = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(24 * 3)).expect("date");
    let recent = format!("{PREFIX}/{ns}/minimal/logs/{}/", recent_date.strftime("%Y-%m-%d"));
    for folder in [&old, &recent] {
        bucket.put(&format!("{folder}index.json"), b"{}".to_vec()).await;
        bucket.put(&format!("{folder}p-api.log.gz"), b"x".to_vec()).await;
    }

    let dir = run_dir(&format!("archive-{ns}"));
    let kubeconfig = service_account_with(ns, "archive-logs", JOB_RULES);
    let output =
        run_operator(&["archive-logs"], &job_env(&bucket, PREFIX, ns, "minimal", &kubeconfig, &dir), &dir).await;
    assert!(output.status.success(), "archive-logs failed");

    let summary = termination(&dir);
    let index_key = summary["key"].as_str().expect("index key").to_owned();
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let folder = format!("{PREFIX}/{ns}/minimal/logs/{today}/");
    assert_eq!(index_key, format!("{folder}index.json"));
    assert_eq!((summary["archived"].as_u64(), summary["deleted"]["s3"].as_u64()), (Some(3), Some(1)), "{summary}");

    // One object per API container (the container is `api`), nothing for the datastores' pods.
    let mut expected: Vec<String> = api.iter().map(|p| format!("{folder}{p}-api.log.gz")).collect();
    expected.push(index_key.clone());
    expected.extend([format!("{recent}index.json"), format!("{recent}p-api.log.gz")]);
    expected.sort();
    assert_eq!(bucket.keys().await, expected, "the archive, the recent one kept, the old one deleted");

    let index: Index = serde_json::from_slice(&bucket.get(&index_key).await).expect("index");
    assert_eq!(index.guard, format!("{ns}/minimal"));
    assert_eq!(index.until.duration_since(index.since), jiff::SignedDuration::from_hours(24 * 7));
    assert!(index.skipped.is_empty() && index.failed.is_empty(), "{index:?}");
    assert_eq!(index.objects.iter().map(|o| o.pod.clone()).collect::<Vec<_>>(), api);
    for object in &index.objects {
        let gz = bucket.get(&object.key).await;
        assert_eq!((object.size, object.sha256.as_str()), (gz.len() as u64, hex::encode(Sha256::digest(&gz)).as_str()));
        let text = gunzip(&gz);
        let marked: Vec<&str> = text.lines().filter(|l| l.ends_with(&marker)).collect();
        assert_eq!(marked.len(), 1, "the line is in {}:\n{text}", object.key);
        // With its timestamp, as `kubectl logs --timestamps` shows it.
        assert!(marked[0].split(' ').next().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{}", marked[0]);
        assert!(!text.contains("a line from ten days ago"), "only the last 7 days: {text}");
    }

    // Encrypted (spec.backup.encryption): each object sealed after compression, the index
    // naming the key by its fingerprint and covering the sealed bytes.
    let key = "5a".repeat(32);
    let key_file = dir.join("keys");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    let keyring = Keyring::parse(key.as_bytes(), "key").expect("a key");
    let mut env = job_env(&bucket, PREFIX, ns, "minimal", &kubeconfig, &dir);
    env.push(("SG_BACKUP_ENCRYPTION_KEY_FILE".to_owned(), key_file.display().to_string()));
    let output = run_operator(&["archive-logs"], &env, &dir).await;
    assert!(output.status.success(), "encrypted archive-logs failed");
    let index: Index = serde_json::from_slice(&bucket.get(&index_key).await).expect("index");
    assert_eq!(index.encryption.map(|e| e.key_fingerprint), Some(keyring.current().fingerprint().to_string()));
    assert_eq!(index.objects.len(), 3);
    for object in &index.objects {
        let sealed = bucket.get(&object.key).await;
        assert_eq!(object.sha256, hex::encode(Sha256::digest(&sealed)), "the index covers the sealed bytes");
        assert!(envelope::is_sealed(&sealed) && !sealed.starts_with(&[0x1f, 0x8b]), "no gzip stream in the clear");
        let text = gunzip(&envelope::open(&keyring, &sealed).expect("opens with the key"));
        assert!(text.lines().any(|l| l.ends_with(&marker)), "{text}");
    }
}

#[tokio::test]
async fn archive_logs_reports_what_rbac_refuses() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "logsrbac").await;
    let ns = ns.name.as_str();
    // An API pod as the operator labels them (no operator needed for this test).
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: minimal-api-0\n  labels: {app.kubernetes.io/name: securityguard, \
               app.kubernetes.io/instance: minimal, app.kubernetes.io/component: api}\nspec:\n  containers:\n  - name: api\n    \
               image: api:1\n    securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, \
               capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}\n";
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(pod));
    kubectl_ok(
        &["-n", ns, "wait", "--for=jsonpath={.status.phase}=Running", "pod/minimal-api-0", "--timeout=60s"],
        None,
    );
    let bucket = Bucket::create("logsrbac").await;
    let dir = run_dir(&format!("archive-{ns}"));

    // Without pods/log: the run fails naming the container; the index says what failed.
    let kubeconfig = service_account_with(ns, "no-log", &JOB_RULES[..1]);
    let output =
        run_operator(&["archive-logs"], &job_env(&bucket, PREFIX, ns, "minimal", &kubeconfig, &dir), &dir).await;
    assert!(!output.status.success());
    let error = termination(&dir)["error"].as_str().expect("error").to_owned();
    assert!(
        error.starts_with("1 of 1 container logs could not be archived: reading the log of minimal-api-0/api failed"),
        "{error}"
    );
    assert!(error.contains("forbidden"), "{error}");
    let keys = bucket.keys().await;
    assert_eq!(keys.len(), 1, "only the index: {keys:?}");
    let index: Index = serde_json::from_slice(&bucket.get(&keys[0]).await).expect("index");
    assert!(index.objects.is_empty());
    assert_eq!(index.failed.len(), 1);
    assert_eq!((index.failed[0].pod.as_str(), index.failed[0].container.as_str()), ("minimal-api-0", "api"));

    // Without list pods: nothing is read, nothing more stored.
    let kubeconfig = service_account_with(ns, "no-list", &JOB_RULES[1..]);
    let output =
        run_operator(&["archive-logs"], &job_env(&bucket, PREFIX, ns, "minimal", &kubeconfig, &dir), &dir).await;
    assert!(!output.status.success());
    let error = termination(&dir)["error"].as_str().expect("error").to_owned();
    assert!(error.starts_with(&format!("cannot list the pods (app.kubernetes.io/name=securityguard,app.kubernetes.io/instance=minimal,app.kubernetes.io/component=api) in namespace {ns}")), "{error}");
    assert_eq!(bucket.keys().await, keys);
}
