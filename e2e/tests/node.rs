//! On the real node: the operator installed from `config/default` runs as its Deployment (two
//! replicas, its own ServiceAccount, Pod Security `restricted`), and the SecurityGuards it
//! reconciles run in real containers of the images `just images` builds: the API pods pass
//! their real probes, PostgreSQL and Redis run on volumes of the storage provisioner, and a
//! wallet signs in and scans through the API's Service.
//!
//! Needs `SG_NODE_CLUSTER_DIR` (`e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use securityguard_e2e::node::{self, ApiClient, Site, new_wallet, owner_reassignment_transaction, wallet_address};
use securityguard_e2e::{JWT, OPERATOR_NAMESPACE, kubectl_ok, repo_root, secret};
use serde_json::json;

#[tokio::test]
async fn minimal_example_runs_in_containers_and_serves_a_wallet() {
    let _node = node::exclusive().await;
    let site = Site::new("node-minimal", "minimal").await;
    let (client, ns) = (site.client.clone(), &site.ns);
    secret(&ns.name, "securityguard-jwt", "secret", JWT);
    let example = repo_root().join("examples/minimal.yaml");
    kubectl_ok(&["-n", &ns.name, "apply", "-f", example.to_str().expect("utf-8 path")], None);

    site.ready(Duration::from_secs(300)).await;

    // The operator runs as users install it: config/default's Deployment, two pods on the real
    // node under its own ServiceAccount in a namespace that enforces Pod Security `restricted`,
    // one of them holding the Lease.
    let system: Api<Namespace> = Api::all(client.clone());
    let labels = system.get(OPERATOR_NAMESPACE).await.expect("operator namespace").metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("pod-security.kubernetes.io/enforce").map(String::as_str), Some("restricted"));
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let operators = operator_pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=securityguard-operator"))
        .await
        .expect("operator pods")
        .items;
    assert_eq!(operators.len(), 2, "two operator replicas");
    for pod in &operators {
        let spec = pod.spec.as_ref().expect("pod spec");
        assert_eq!(spec.service_account_name.as_deref(), Some("securityguard-operator"));
        assert_eq!(spec.node_name.as_deref(), Some(node::node_env("SG_NODE").as_str()));
        assert_eq!(spec.containers[0].image.as_deref(), Some("ghcr.io/securityguard/operator:0.1.0"));
    }
    let leader = node::leader(&client).await;
    assert!(operators.iter().any(|p| p.metadata.name.as_deref() == Some(leader.as_str())), "{leader} leads");

    // Every pod runs on the real node, started, ready, never restarted: the API pods passed
    // their startup, readiness and liveness probes, PostgreSQL and Redis their exec probes.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let list = pods.list(&ListParams::default().labels("app.kubernetes.io/instance=minimal")).await.expect("pods");
    let mut components: Vec<String> = Vec::new();
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref().expect("pod spec");
        assert_eq!(spec.node_name.as_deref(), Some(node::node_env("SG_NODE").as_str()), "{name} not on the real node");
        let status = pod.status.as_ref().expect("pod status");
        if status.phase.as_deref() == Some("Succeeded") {
            continue;
        }
        assert_eq!(status.phase.as_deref(), Some("Running"), "{name}: {status:?}");
        for c in status.container_statuses.iter().flatten() {
            assert!(c.ready && c.started == Some(true), "{name}/{}: {c:?}", c.name);
            assert_eq!(c.restart_count, 0, "{name}/{} restarted:\n{}", c.name, node::diagnostics(&ns.name));
            assert!(c.image_id.contains("sha256:"), "{name}/{}: no image digest {:?}", c.name, c.image_id);
        }
        components.extend(pod.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/component")).cloned());
    }
    components.sort();
    assert_eq!(components, ["api", "api", "api", "postgres", "redis"], "{}", node::diagnostics(&ns.name));

    // The datastores' volumes come from the storage provisioner.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for claim in ["data-minimal-postgres-0", "data-minimal-redis-0"] {
        let pvc = claims.get(claim).await.expect("claim");
        let spec = pvc.spec.expect("claim spec");
        assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"), "{claim}");
        assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Bound"), "{claim}");
        let pv = volumes.get(spec.volume_name.as_deref().expect("bound volume")).await.expect("volume");
        let by = pv.metadata.annotations.unwrap_or_default().get("pv.kubernetes.io/provisioned-by").cloned();
        assert_eq!(by.as_deref(), Some("rancher.io/local-path"), "{claim}: volume not provisioned");
    }

    // A wallet signs in and scans through the Service (kube-proxy routes the host to the pods).
    let api = ApiClient::for_guard(&client, &ns.name, "minimal").await;
    api.wait_ready(Duration::from_secs(30)).await;
    let wallet = new_wallet();
    let token = api.sign_in(&wallet).await;

    let mut payer = [0u8; 32];
    payer.copy_from_slice(wallet.verifying_key().as_bytes());
    let tx = owner_reassignment_transaction(&payer, &[9u8; 32]);
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&tx);
    let (status, body) =
        api.post("/v1/scan/transactions", Some(&token), &json!({"transactions": [encoded]})).await.expect("scan");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "BLOCK", "{body}");
    assert_eq!(body["transactions"][0]["warnings"][0]["kind"], "owner_reassignment", "{body}");

    let (status, body) = api
        .post("/v1/scan/domains", Some(&token), &json!({"domains": ["https://phant0m.app/login", "solana.com"]}))
        .await
        .expect("scan");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "BLOCK", "{body}");
    assert_eq!(body["domains"][0]["domain"], "phant0m.app", "{body}");

    let (status, body) = api
        .post("/v1/scan/addresses", Some(&token), &json!({"addresses": [wallet_address(&new_wallet())]}))
        .await
        .expect("scan");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["addresses"][0]["reputation"], "unknown", "{body}");

    // The history, read back: three scans, newest first.
    let (status, body) = api.get("/v1/scans", Some(&token)).await.expect("history");
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["scans"].as_array().expect("scans").iter().filter_map(|s| s["kind"].as_str()).collect();
    assert_eq!(kinds, ["address", "domain", "transaction"], "{body}");

    // The API image's contract, now that it really runs: the pod sets only variables the API
    // reads (its own --help, run in the container, lists them), /metrics and
    // /health/detailed answer on the Service's port, and the JWT secret is never logged.
    let pod = node::api_pods(&client, &ns.name, "minimal").await.into_iter().next().expect("an API pod");
    let pod_name = pod.metadata.name.clone().expect("pod name");
    let container = pod.spec.as_ref().and_then(|s| s.containers.first()).expect("the API container").clone();
    let mut names: Vec<String> = container.env.iter().flatten().map(|e| e.name.clone()).collect();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    for source in container.env_from.iter().flatten() {
        let cm = source.config_map_ref.as_ref().expect("envFrom a ConfigMap");
        names.extend(config_maps.get(&cm.name).await.expect("ConfigMap").data.unwrap_or_default().into_keys());
    }
    let help = kubectl_ok(
        &["-n", &ns.name, "exec", &pod_name, "-c", &container.name, "--", "/usr/local/bin/securityguard-api", "--help"],
        None,
    );
    let mut known: Vec<&str> = help.split("[env: ").skip(1).filter_map(|rest| rest.split([']', '=']).next()).collect();
    assert!(known.contains(&"DATABASE_URL"), "no variables in --help: {help}");
    known.push("RUST_LOG");
    // Variables that only feed others through `$(NAME)` (the datastores' passwords in the
    // connection URLs) are the kubelet's business, not the API's.
    let values: Vec<&str> = container.env.iter().flatten().filter_map(|e| e.value.as_deref()).collect();
    let referenced = |name: &str| values.iter().any(|v| v.contains(&format!("$({name})")));
    let unknown: Vec<&String> =
        names.iter().filter(|n| !known.contains(&n.as_str()) && !referenced(n.as_str())).collect();
    assert!(unknown.is_empty(), "the pod sets variables the API does not read: {unknown:?} (reads {known:?})");
    let (status, metrics) = api.get_text("/metrics").await.expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("securityguard_http_requests_total{"), "{metrics}");
    let (status, detailed) = api.get("/health/detailed", None).await.expect("GET /health/detailed");
    assert_eq!(status, 200, "{detailed}");
    assert_eq!(detailed["environment"], "production", "{detailed}");
    for pod in node::api_pods(&client, &ns.name, "minimal").await {
        let name = pod.metadata.name.expect("pod name");
        let logs = kubectl_ok(&["-n", &ns.name, "logs", &name], None);
        assert!(logs.contains("securityguard_api::access"), "{name}: no access lines in its log: {logs}");
        assert!(!logs.contains(JWT), "{name} logged the JWT secret");
    }
}
