//! `just bench-operator N`: N SecurityGuards on the local control plane.
//!
//! `bench-operator operator N OUT.json`: two operator replicas (leader election) bring N
//! SecurityGuards to Ready; measures the time, the API requests per SecurityGuard during
//! convergence and per idle resync, and each replica's peak and steady RSS and CPU time.
//! `bench-operator direct N OUT.json`: the ceiling, the same child objects server-side-applied
//! by one client, and the time until the cluster has them ready. `bench-operator report N
//! OPERATOR.json DIRECT.json` prints the Markdown section for BENCHMARKS.md. Each side needs
//! SG_CONTROLPLANE_DIR; the recipe gives each a fresh control plane of its own.

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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

/// The operator's API requests by `verb resource` (Leases left out).
fn by_request(metrics: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let label = |labels: &str, name: &str| -> Option<String> {
        let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
        Some(labels[start..].split('"').next()?.to_owned())
    };
    let mut out = BTreeMap::new();
    for (key, value) in metrics {
        let Some(labels) = key.strip_prefix("securityguard_operator_kube_api_requests_total{") else { continue };
        let (Some(verb), Some(resource)) = (label(labels, "verb"), label(labels, "resource")) else { continue };
        if resource != "leases" {
            *out.entry(format!("{verb} {resource}")).or_insert(0.0) += value;
        }
    }
    out
}

/// Memory and CPU of a process, from /proc.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Usage {
    /// Peak resident set (VmHWM), MiB.
    peak_mib: f64,
    /// Resident set now (VmRSS), MiB.
    now_mib: f64,
    /// User and system CPU time, seconds.
    cpu_seconds: f64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields, after the command in parentheses.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_command = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after_command.split_whitespace().skip(11).take(2).filter_map(|v| v.parse::<f64>().ok()).sum();
    Usage { peak_mib: kib("VmHWM:") / 1024.0, now_mib: kib("VmRSS:") / 1024.0, cpu_seconds: ticks / CLOCK_TICKS }
}

/// Kernel clock ticks per second (USER_HZ, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

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

/// What the operator side measured.
#[derive(Debug, Serialize, Deserialize)]
struct OperatorSide {
    converged_seconds: f64,
    requests: f64,
    writes: f64,
    events: f64,
    idle_requests: f64,
    idle_writes: f64,
    leader: Usage,
    follower: Usage,
    /// Requests per SecurityGuard until Ready, by `verb resource`.
    by_request: BTreeMap<String, f64>,
}

/// What the direct side measured.
#[derive(Debug, Serialize, Deserialize)]
struct DirectSide {
    sent_seconds: f64,
    ready_seconds: f64,
}

fn log(msg: String) {
    eprintln!("[bench-operator {}] {msg}", jiff_now());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage_text =
        "usage: bench-operator operator|direct N OUT.json | bench-operator report N OPERATOR.json DIRECT.json";
    let n = |i: usize| -> usize { args.get(i).and_then(|a| a.parse().ok()).expect(usage_text) };
    let path = |i: usize| -> &str { args.get(i).map(String::as_str).expect(usage_text) };
    match args.first().map(String::as_str) {
        Some("operator") => write(path(2), &operator_side(n(1)).await),
        Some("direct") => write(path(2), &direct_side(n(1)).await),
        Some("report") => report(n(1), &read(path(2)), &read(path(3))),
        _ => panic!("{usage_text}"),
    }
}

fn write<T: Serialize>(path: &str, value: &T) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("serializes")).expect("result written");
}

fn read<T: DeserializeOwned>(path: &str) -> T {
    serde_json::from_slice(&std::fs::read(path).expect("result read")).expect("result parses")
}

/// N SecurityGuards in a namespace with their JWT Secret and volumes.
async fn setup(client: &Client, ns: &str, n: usize) {
    namespace(client, ns).await;
    secret(ns, "securityguard-jwt", "secret", JWT);
    log(format!("creating {} volumes for the datastores", 2 * n));
    volumes(client, ns, n).await;
}

/// Two operator replicas (leader election) bring N SecurityGuards to Ready; then two idle resync
/// periods.
async fn operator_side(n: usize) -> OperatorSide {
    install().await;
    let client = admin().await;
    let ns = format!("bench-{}", std::process::id());
    setup(&client, &ns, n).await;
    let options = OperatorOptions { resync_seconds: RESYNC_SECONDS, ..OperatorOptions::for_namespace(&ns) };
    let first = Operator::start(&OperatorOptions { identity: format!("{ns}-a"), ..options.clone() }).await;
    let second = Operator::start(&OperatorOptions { identity: format!("{ns}-b"), ..options }).await;
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
    let converged = all_ready(&guards, n, start).await;
    let (leader, follower) = if first.is_leader().await { (&first, &second) } else { (&second, &first) };
    let at_ready = leader.metrics().await;
    log(format!("measuring {IDLE_PERIODS} idle resync periods of {RESYNC_SECONDS} s"));
    tokio::time::sleep(Duration::from_secs(RESYNC_SECONDS * IDLE_PERIODS)).await;
    let after_idle = leader.metrics().await;
    let per_cr = |v: f64| v / n as f64;
    let periods = IDLE_PERIODS as f64;
    let events = |m: &BTreeMap<String, f64>| {
        m.iter().filter(|(k, _)| k.contains("resource=\"events\"")).map(|(_, v)| v).sum::<f64>()
    };
    let result = OperatorSide {
        converged_seconds: converged.as_secs_f64(),
        requests: per_cr(requests(&at_ready, false)),
        writes: per_cr(requests(&at_ready, true)),
        events: per_cr(events(&at_ready)),
        idle_requests: per_cr(requests(&after_idle, false) - requests(&at_ready, false)) / periods,
        idle_writes: per_cr(requests(&after_idle, true) - requests(&at_ready, true)) / periods,
        leader: usage(leader.pid()),
        follower: usage(follower.pid()),
        by_request: by_request(&at_ready).into_iter().map(|(k, v)| (k, per_cr(v))).collect(),
    };
    drop((first, second));
    result
}

/// Polls until N SecurityGuards are Ready; returns the time since `start`.
async fn all_ready(guards: &Api<SecurityGuard>, n: usize, start: Instant) -> Duration {
    let mut last_report = Instant::now();
    loop {
        let list = guards.list(&ListParams::default()).await.expect("list");
        let count = list.items.iter().filter(|g| is_ready(g)).count();
        if count == n {
            log(format!("all {n} Ready after {:.1?}", start.elapsed()));
            return start.elapsed();
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            log(format!("{count}/{n} Ready after {:.0?}", start.elapsed()));
            last_report = Instant::now();
        }
        assert!(start.elapsed() < Duration::from_secs(3600), "not all Ready within an hour");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The same children, server-side-applied by one client with 8 in flight; then the time until
/// their Deployments and StatefulSets are ready (the cluster work the operator's Ready waits for).
async fn direct_side(n: usize) -> DirectSide {
    install().await;
    let client = admin().await;
    let ns = format!("bench-direct-{}", std::process::id());
    setup(&client, &ns, n).await;
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), &ns);
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        created.push(guards.create(&PostParams::default(), &guard(&ns, i)).await.expect("created"));
    }
    let jwt = Api::<Secret>::namespaced(client.clone(), &ns).get("securityguard-jwt").await.expect("jwt");
    log("applying the children directly with one client".to_owned());
    let start = Instant::now();
    stream::iter(created.iter())
        .map(|g| apply_children(&client, g, &jwt))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let sent = start.elapsed();
    log(format!("all children sent in {sent:.1?}; waiting for their Deployments and StatefulSets"));
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &ns);
    let stateful_sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), &ns);
    loop {
        let d = deployments.list(&ListParams::default()).await.expect("list");
        let s = stateful_sets.list(&ListParams::default()).await.expect("list");
        let available =
            d.items.iter().filter(|d| d.status.as_ref().and_then(|s| s.available_replicas) >= Some(1)).count();
        let ready = s.items.iter().filter(|s| s.status.as_ref().and_then(|s| s.ready_replicas) >= Some(1)).count();
        if available == n && ready == 2 * n {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(3600), "direct objects not ready within an hour");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    DirectSide { sent_seconds: sent.as_secs_f64(), ready_seconds: start.elapsed().as_secs_f64() }
}

/// The Markdown section for BENCHMARKS.md.
fn report(n: usize, op: &OperatorSide, direct: &DirectSide) {
    let mib = |u: &Usage| format!("{:.1} MiB peak, {:.1} MiB after the idle periods", u.peak_mib, u.now_mib);
    println!("### `just bench-operator {n}` ({})\n", jiff_now());
    println!("| measure | value |\n|---|---|");
    println!("| SecurityGuards | {n} (managed PostgreSQL and Redis, autoscaling 1-3) |");
    println!("| time until all Ready (operator, fresh control plane) | {:.1} s |", op.converged_seconds);
    println!(
        "| the same children applied directly (server-side apply, one client, {CONCURRENCY} in flight, its own fresh control plane): all sent | {:.1} s |",
        direct.sent_seconds
    );
    println!("| ... and their Deployments and StatefulSets ready | {:.1} s |", direct.ready_seconds);
    println!("| ratio, operator / direct, until ready | {:.2} |", op.converged_seconds / direct.ready_seconds);
    println!("| operator RSS, leader | {} |", mib(&op.leader));
    println!("| operator RSS, follower | {} |", mib(&op.follower));
    println!(
        "| operator CPU per SecurityGuard converged | {:.3} s leader, {:.3} s follower |",
        op.leader.cpu_seconds / n as f64,
        op.follower.cpu_seconds / n as f64
    );
    println!(
        "| API requests per SecurityGuard until Ready | {:.1} ({:.1} writes, of which {:.1} Events) |",
        op.requests, op.writes, op.events
    );
    println!(
        "| API requests per SecurityGuard per idle resync | {:.2} ({:.2} writes) |",
        op.idle_requests, op.idle_writes
    );
    let shares: Vec<String> =
        op.by_request.iter().filter(|(_, v)| **v >= 0.05).map(|(k, v)| format!("{k} {v:.1}")).collect();
    println!("| ... until Ready, by request | {} |", shares.join(", "));
}

fn jiff_now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}
