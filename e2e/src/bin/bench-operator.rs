//! `just bench-operator N`: N SecurityGuards on the local control plane.
//!
//! Measures the time until all are Ready, the operator's peak RSS, its Kubernetes API requests
//! per SecurityGuard during convergence and per idle resync, and, as the ceiling, the time one
//! client takes to server-side-apply the same child objects directly. Prints a Markdown section
//! for BENCHMARKS.md. Needs SG_CONTROLPLANE_DIR (the recipe starts a fresh control plane).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Secret};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use securityguard_e2e::checks::is_ready;
use securityguard_e2e::fixtures::GuardFixture;
use securityguard_e2e::{JWT, Operator, OperatorOptions, admin, install, secret};
use securityguard_operator::controller::build;
use securityguard_operator::controller::decide::validate;
use securityguard_operator::controller::read::dereference::References;
use securityguard_operator::controller::vocabulary::FIELD_MANAGER;
use securityguard_operator::crd::SecurityGuard;
use serde::Serialize;
use serde::de::DeserializeOwned;

const CONCURRENCY: usize = 8;
const RESYNC_SECONDS: u64 = 30;
/// Idle resync periods measured after convergence.
const IDLE_PERIODS: u64 = 2;

fn guard(ns: &str, i: usize) -> SecurityGuard {
    SecurityGuard::test(&format!("guard-{i:04}")).in_namespace(ns).autoscaling(1, 3)
}

async fn namespace(client: &Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([("pod-security.kubernetes.io/enforce".to_owned(), "restricted".to_owned())])),
            // The pods go to the kwok nodes.
            annotations: Some(securityguard_e2e::kwok_namespace_annotations()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace created");
}

async fn volumes(client: &Client, ns: &str, n: usize) {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let claims: Vec<String> =
        (0..n).flat_map(|i| [format!("data-guard-{i:04}-postgres-0"), format!("data-guard-{i:04}-redis-0")]).collect();
    stream::iter(claims)
        .map(|claim| {
            let api = api.clone();
            let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("{ns}-{claim}")},
                "spec": {
                    "capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": format!("/tmp/{ns}/{claim}")},
                    "claimRef": {"namespace": ns, "name": claim},
                },
            }))
            .expect("valid PersistentVolume");
            async move { api.create(&PostParams::default(), &pv).await.map(|_| ()) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("volumes created");
}

fn requests(metrics: &BTreeMap<String, f64>, writes_only: bool) -> f64 {
    metrics
        .iter()
        .filter(|(k, _)| k.starts_with("securityguard_operator_kube_api_requests_total{"))
        .filter(|(k, _)| !k.contains("resource=\"leases\""))
        .filter(|(k, _)| {
            !writes_only || ["create", "update", "patch", "delete"].iter().any(|v| k.contains(&format!("verb=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

async fn apply<K>(client: &Client, obj: K)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    api.patch(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&obj))
        .await
        .unwrap_or_else(|e| panic!("applying {} {}: {e}", K::kind(&()), obj.name_any()));
}

/// Server-side applies every child of one SecurityGuard, in the operator's order.
async fn apply_children(client: &Client, guard: &SecurityGuard, jwt: &Secret) {
    let refs = References::from_secrets([jwt.clone()]);
    let validated = validate::validate(guard, &refs).expect("valid");
    let c = build::build(&validated, &Default::default(), &Default::default());
    apply(client, c.service_account).await;
    apply(client, c.config_map).await;
    if let Some(credentials) = c.credentials {
        let secret = credentials.with_passwords(|| "benchmark-password-0123456789abc".to_owned());
        Api::<Secret>::namespaced(client.clone(), &credentials.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .expect("credentials created");
    }
    for policy in c.network_policies {
        apply(client, policy).await;
    }
    for datastore in [c.postgres, c.redis].into_iter().flatten() {
        apply(client, datastore.service).await;
        apply(client, datastore.stateful_set).await;
    }
    apply(client, c.deployment).await;
    apply(client, c.service).await;
    if let Some(hpa) = c.hpa {
        apply(client, hpa).await;
    }
    apply(client, c.pdb).await;
    if let Some(ingress) = c.ingress {
        apply(client, ingress).await;
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).map(|a| a.parse().expect("N is a number")).unwrap_or(100);
    let log = |msg: String| eprintln!("[bench-operator {}] {msg}", jiff_now());
    install().await;
    let client = admin().await;
    let run = std::process::id();
    let ns = format!("bench-{run}");
    let direct_ns = format!("bench-direct-{run}");
    namespace(&client, &ns).await;
    namespace(&client, &direct_ns).await;
    secret(&ns, "securityguard-jwt", "secret", JWT);
    secret(&direct_ns, "securityguard-jwt", "secret", JWT);
    log(format!("creating {} volumes for the datastores", 4 * n));
    volumes(&client, &ns, n).await;
    volumes(&client, &direct_ns, n).await;

    let options = OperatorOptions { resync_seconds: RESYNC_SECONDS, ..OperatorOptions::for_namespace(&ns) };
    let operator = Operator::start(&options).await;
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), &ns);

    log(format!("creating {n} SecurityGuards"));
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let guards = guards.clone();
            let g = guard(&ns, i);
            async move { guards.create(&PostParams::default(), &g).await.map(|_| ()) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("SecurityGuards created");
    let mut last_report = Instant::now();
    let converged = loop {
        let list = guards.list(&ListParams::default()).await.expect("list");
        let count = list.items.iter().filter(|g| is_ready(g)).count();
        if count == n {
            break start.elapsed();
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            log(format!("{count}/{n} Ready after {:.0?}", start.elapsed()));
            last_report = Instant::now();
        }
        assert!(start.elapsed() < Duration::from_secs(3600), "not all Ready within an hour");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    log(format!("all {n} Ready after {converged:.1?}"));
    let at_ready = operator.metrics().await;

    // Idle: a fixed window of resync periods after convergence.
    log(format!("measuring {IDLE_PERIODS} idle resync periods of {RESYNC_SECONDS} s"));
    tokio::time::sleep(Duration::from_secs(RESYNC_SECONDS * IDLE_PERIODS)).await;
    let after_idle = operator.metrics().await;
    let rss = peak_rss_mib(operator.pid());

    log("applying the same children directly with one client".to_owned());
    let direct_guards: Api<SecurityGuard> = Api::namespaced(client.clone(), &direct_ns);
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        created.push(direct_guards.create(&PostParams::default(), &guard(&direct_ns, i)).await.expect("created"));
    }
    let jwt = Api::<Secret>::namespaced(client.clone(), &direct_ns).get("securityguard-jwt").await.expect("jwt");
    let direct_start = Instant::now();
    stream::iter(created.iter())
        .map(|g| apply_children(&client, g, &jwt))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let direct = direct_start.elapsed();
    log(format!("all children sent in {direct:.1?}; waiting for their Deployments and StatefulSets"));
    // The same objects then need the same cluster work (scheduling, pods Ready on kwok).
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &direct_ns);
    let stateful_sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), &direct_ns);
    loop {
        let d = deployments.list(&ListParams::default()).await.expect("list");
        let s = stateful_sets.list(&ListParams::default()).await.expect("list");
        let available =
            d.items.iter().filter(|d| d.status.as_ref().and_then(|s| s.available_replicas) >= Some(1)).count();
        let ready = s.items.iter().filter(|s| s.status.as_ref().and_then(|s| s.ready_replicas) >= Some(1)).count();
        if available == n && ready == 2 * n {
            break;
        }
        assert!(direct_start.elapsed() < Duration::from_secs(3600), "direct objects not ready within an hour");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let direct_ready = direct_start.elapsed();
    let per_cr = |v: f64| v / n as f64;
    let converge_requests = per_cr(requests(&at_ready, false));
    let converge_writes = per_cr(requests(&at_ready, true));
    let periods = IDLE_PERIODS as f64;
    let idle_requests = per_cr(requests(&after_idle, false) - requests(&at_ready, false)) / periods;
    let idle_writes = per_cr(requests(&after_idle, true) - requests(&at_ready, true)) / periods;
    let events = |m: &BTreeMap<String, f64>| {
        m.iter().filter(|(k, _)| k.contains("resource=\"events\"")).map(|(_, v)| v).sum::<f64>()
    };
    let converge_events = per_cr(events(&at_ready));
    println!("### `just bench-operator {n}` ({})\n", jiff_now());
    println!("| measure | value |\n|---|---|");
    println!("| SecurityGuards | {n} (managed PostgreSQL and Redis, autoscaling 1-3) |");
    println!("| time until all Ready (operator) | {:.1} s |", converged.as_secs_f64());
    println!(
        "| the same children applied directly (server-side apply, one client, {CONCURRENCY} in flight): all sent | {:.1} s |",
        direct.as_secs_f64()
    );
    println!("| ... and their Deployments and StatefulSets ready | {:.1} s |", direct_ready.as_secs_f64());
    println!("| ratio, operator / direct, until ready | {:.2} |", converged.as_secs_f64() / direct_ready.as_secs_f64());
    println!("| operator peak RSS | {rss:.1} MiB |");
    println!(
        "| API requests per SecurityGuard until Ready | {converge_requests:.1} ({converge_writes:.1} writes, of which {converge_events:.1} Events) |"
    );
    println!("| API requests per SecurityGuard per idle resync | {idle_requests:.2} ({idle_writes:.2} writes) |");
    drop(operator);
    let _ = securityguard_e2e::kubectl(&["delete", "namespace", &ns, &direct_ns, "--wait=false"], None);
}

fn jiff_now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}
