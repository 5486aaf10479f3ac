//! `spec.monitoring` against the control plane: the operator starts while prometheus-operator's
//! CustomResourceDefinitions are absent (a condition says so, nothing loops), they are installed
//! (from prometheus-operator's Go module, `e2e/controlplane/prometheus-operator-crds.sh`) and the
//! ServiceMonitor and PrometheusRule appear without a restart; edits reach them, turning
//! monitoring off deletes them, uninstalling and reinstalling prometheus-operator is followed,
//! deleting the SecurityGuard collects them; an operator started while they are installed
//! does the same.
//!
//! The definitions are cluster-wide: this binary's single test owns them. It removes them first
//! (cargo runs test binaries one after another, so no other test is running) and leaves them
//! installed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use securityguard_e2e::checks::{condition, owned_by};
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, eventually, kubectl_ok, repo_root, secret, volumes_for_guard,
    wait_deleted, wait_for,
};
use securityguard_operator::crd::SecurityGuard;
use securityguard_operator::monitoring::alerts::guard_rule_groups;
use securityguard_operator::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

const TIMEOUT: Duration = Duration::from_secs(90);
const GUARD: &str = "minimal";
const OBJECTS: &str = "minimal-monitoring";
const CRDS: [&str; 2] = ["servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"];

/// The directory with the two definitions (fetched once, cached in $SG_CACHE).
fn crd_dir() -> PathBuf {
    let script = repo_root().join("e2e/controlplane/prometheus-operator-crds.sh");
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("{} runs: {e}", script.display()));
    assert!(out.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().expect("a directory").trim())
}

/// Sum of a metric's series whose labels contain `matching`.
async fn metric_sum(operator: &Operator, name: &str, matching: &str) -> f64 {
    operator.metrics().await.iter().filter(|(k, _)| k.starts_with(name) && k.contains(matching)).map(|(_, v)| v).sum()
}

async fn failed_reconciles(operator: &Operator) -> f64 {
    let all = metric_sum(operator, "securityguard_operator_reconciles_total", "").await;
    all - metric_sum(operator, "securityguard_operator_reconciles_total", "result=\"success\"").await
}

/// Waits until the operator has completed `n` more reconciles.
async fn more_reconciles(operator: &Operator, n: f64) {
    let start = operator.reconciles().await;
    eventually(&format!("{n} more reconciles"), Duration::from_secs(60), || async {
        (operator.reconciles().await >= start + n).then_some(())
    })
    .await;
}

/// Waits until the SecurityGuard is Ready: before that, its pods starting still change its
/// status, however many resyncs wrote nothing meanwhile.
async fn wait_ready(guards: &Api<SecurityGuard>) {
    wait_for(guards.clone(), GUARD, TIMEOUT, |g| condition(g, "Ready").is_some_and(|c| c.status == "True")).await;
}

/// Once the writes stop, four more resyncs write nothing (the ServiceMonitor and
/// PrometheusRule were written at first).
async fn assert_converged(operator: &Operator) {
    let settled = eventually("writes to stop", TIMEOUT, || async {
        let before = operator.writes().await;
        more_reconciles(operator, 2.0).await;
        (operator.writes().await == before).then_some(before)
    })
    .await;
    assert!(
        settled.contains_key("patch servicemonitors") && settled.contains_key("patch prometheusrules"),
        "{settled:?}"
    );
    more_reconciles(operator, 4.0).await;
    assert_eq!(operator.writes().await, settled, "no write over four resyncs once converged");
}

#[tokio::test]
async fn monitoring_objects_follow_prometheus_operator_and_the_spec() {
    let client = admin().await;
    let dir = crd_dir();
    // Absent at the start, whatever ran before on this control plane.
    for crd in CRDS {
        kubectl_ok(&["delete", "crd", crd, "--ignore-not-found", "--wait=true", "--timeout=60s"], None);
    }

    let ns = TempNamespace::create(&client, "promop").await;
    let ns = ns.name.as_str();
    let operator = Operator::start(&OperatorOptions { resync_seconds: 2, ..OperatorOptions::for_namespace(ns) }).await;
    secret(ns, "securityguard-jwt", "secret", JWT);
    volumes_for_guard(ns, GUARD);
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    let monitoring = serde_json::json!({"spec": {"monitoring": {
        "enabled": true, "labels": {"release": "prometheus"}, "dashboards": true,
    }}});
    guards.patch(GUARD, &PatchParams::default(), &Patch::Merge(&monitoring)).await.expect("monitoring on");

    // Absent: the condition names both definitions; the API is served all the same.
    let guard = wait_for(guards.clone(), GUARD, TIMEOUT, |g| {
        condition(g, "MonitoringReady").is_some_and(|c| c.status == "False" && c.reason == "PrometheusOperatorMissing")
            && condition(g, "Ready").is_some_and(|c| c.status == "True")
    })
    .await;
    let message = condition(&guard, "MonitoringReady").expect("condition").message;
    assert!(CRDS.iter().all(|crd| message.contains(crd)), "{message}");
    // The dashboards need no prometheus-operator.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let dashboards = |config_maps: Api<ConfigMap>| async move {
        let list = config_maps.list(&ListParams::default().labels("grafana_dashboard=1")).await.expect("list");
        list.items.into_iter().filter_map(|c| c.metadata.name).collect::<Vec<_>>()
    };
    assert_eq!(dashboards(config_maps.clone()).await.len(), 4);

    // No error loop and no hot requeue: resyncs succeed, the missing kinds are never asked for.
    let before = operator.reconciles().await;
    more_reconciles(&operator, 3.0).await;
    assert_eq!(failed_reconciles(&operator).await, 0.0, "no reconcile failed");
    for resource in ["servicemonitors", "prometheusrules"] {
        let requests = metric_sum(
            &operator,
            "securityguard_operator_kube_api_requests_total",
            &format!("resource=\"{resource}\""),
        )
        .await;
        assert_eq!(requests, 0.0, "no request for {resource} while its definition is absent");
    }
    let rate = operator.reconciles().await - before;
    assert!(rate < 20.0, "{rate} reconciles in three resyncs of 2 s: a hot loop");

    // Installed: the objects appear, no restart.
    kubectl_ok(&["apply", "--server-side", "-f", dir.to_str().expect("utf-8")], None);
    for crd in CRDS {
        kubectl_ok(&["wait", "--for=condition=Established", &format!("crd/{crd}"), "--timeout=60s"], None);
    }
    let monitors: Api<ServiceMonitor> = Api::namespaced(client.clone(), ns);
    let rules: Api<PrometheusRule> = Api::namespaced(client.clone(), ns);
    let monitor = wait_for(monitors.clone(), OBJECTS, TIMEOUT, |_| true).await;
    let rule = wait_for(rules.clone(), OBJECTS, TIMEOUT, |_| true).await;
    let guard = wait_for(guards.clone(), GUARD, TIMEOUT, |g| {
        condition(g, "MonitoringReady").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(owned_by(&monitor, &guard) && owned_by(&rule, &guard), "owned by the SecurityGuard");
    for labels in [&monitor.metadata.labels, &rule.metadata.labels] {
        assert_eq!(labels.as_ref().and_then(|l| l.get("release")).map(String::as_str), Some("prometheus"));
    }
    assert_eq!(
        serde_json::to_value(&monitor.spec).expect("json"),
        serde_json::json!({
            "selector": {"matchLabels": {
                "app.kubernetes.io/name": "securityguard",
                "app.kubernetes.io/instance": GUARD,
                "app.kubernetes.io/component": "api",
            }},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        })
    );
    assert_eq!(rule.spec.groups, guard_rule_groups(ns, GUARD), "the guard's alerts");
    let message = condition(&guard, "MonitoringReady").expect("condition").message;
    assert_eq!(
        message,
        format!("ServiceMonitor {OBJECTS}, PrometheusRule {OBJECTS}, 4 Grafana dashboard ConfigMaps applied")
    );

    // Converged: resyncs write nothing, the ServiceMonitor and PrometheusRule included.
    wait_ready(&guards).await;
    assert_converged(&operator).await;

    // Edited: another label instead of `release`, another interval, no dashboards.
    let edit = serde_json::json!({"spec": {"monitoring": {
        "labels": {"release": null, "team": "security"}, "interval": "15s", "dashboards": false,
    }}});
    guards.patch(GUARD, &PatchParams::default(), &Patch::Merge(&edit)).await.expect("edited");
    let relabelled = |labels: Option<&std::collections::BTreeMap<String, String>>| {
        labels.is_some_and(|l| l.get("team").map(String::as_str) == Some("security") && !l.contains_key("release"))
    };
    wait_for(monitors.clone(), OBJECTS, TIMEOUT, |m| {
        relabelled(m.metadata.labels.as_ref())
            && m.spec.endpoints.first().and_then(|e| e.interval.as_deref()) == Some("15s")
    })
    .await;
    wait_for(rules.clone(), OBJECTS, TIMEOUT, |r| relabelled(r.metadata.labels.as_ref())).await;
    eventually("the dashboards to go", TIMEOUT, || async {
        dashboards(config_maps.clone()).await.is_empty().then_some(())
    })
    .await;

    // Off: both deleted, the condition gone.
    let off = serde_json::json!({"spec": {"monitoring": {"enabled": false}}});
    guards.patch(GUARD, &PatchParams::default(), &Patch::Merge(&off)).await.expect("off");
    wait_deleted(monitors.clone(), OBJECTS, TIMEOUT).await;
    wait_deleted(rules.clone(), OBJECTS, TIMEOUT).await;
    wait_for(guards.clone(), GUARD, TIMEOUT, |g| {
        g.status.as_ref().is_some_and(|s| s.observed_generation == g.metadata.generation)
            && condition(g, "MonitoringReady").is_none()
    })
    .await;

    // On again.
    let on = serde_json::json!({"spec": {"monitoring": {"enabled": true}}});
    guards.patch(GUARD, &PatchParams::default(), &Patch::Merge(&on)).await.expect("on");
    wait_for(monitors.clone(), OBJECTS, TIMEOUT, |_| true).await;
    wait_for(rules.clone(), OBJECTS, TIMEOUT, |_| true).await;

    // prometheus-operator uninstalled (its objects go with it) and installed again: the
    // condition follows, and the objects are made anew (the operator's caches of them were
    // emptied, not left believing they exist).
    for crd in CRDS {
        kubectl_ok(&["delete", "crd", crd, "--wait=true", "--timeout=60s"], None);
    }
    wait_for(guards.clone(), GUARD, TIMEOUT, |g| {
        condition(g, "MonitoringReady").is_some_and(|c| c.status == "False" && c.reason == "PrometheusOperatorMissing")
    })
    .await;
    kubectl_ok(&["apply", "--server-side", "-f", dir.to_str().expect("utf-8")], None);
    for crd in CRDS {
        kubectl_ok(&["wait", "--for=condition=Established", &format!("crd/{crd}"), "--timeout=60s"], None);
    }
    wait_for(monitors.clone(), OBJECTS, TIMEOUT, |_| true).await;
    wait_for(rules.clone(), OBJECTS, TIMEOUT, |r| r.spec.groups == guard_rule_groups(ns, GUARD)).await;
    wait_for(guards.clone(), GUARD, TIMEOUT, |g| condition(g, "MonitoringReady").is_some_and(|c| c.status == "True"))
        .await;

    // The SecurityGuard deleted: the garbage collector takes both.
    guards.delete(GUARD, &DeleteParams::foreground()).await.expect("deleted");
    wait_deleted(guards.clone(), GUARD, TIMEOUT).await;
    wait_deleted(monitors, OBJECTS, TIMEOUT).await;
    wait_deleted(rules, OBJECTS, TIMEOUT).await;

    assert_eq!(failed_reconciles(&operator).await, 0.0, "no reconcile failed:\n{}", operator.log());
    // Still the first process: nothing above needed a restart.
    assert!(operator.is_leader().await);

    // An operator started while prometheus-operator is installed: its watches of the two kinds
    // start with it, so it converges too, and deletes what is no longer asked for.
    let second = TempNamespace::create(&client, "promop-installed").await;
    let ns = second.name.as_str();
    let operator = Operator::start(&OperatorOptions { resync_seconds: 2, ..OperatorOptions::for_namespace(ns) }).await;
    secret(ns, "securityguard-jwt", "secret", JWT);
    volumes_for_guard(ns, GUARD);
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    guards.patch(GUARD, &PatchParams::default(), &Patch::Merge(&on)).await.expect("monitoring on");
    let monitors: Api<ServiceMonitor> = Api::namespaced(client.clone(), ns);
    let rules: Api<PrometheusRule> = Api::namespaced(client.clone(), ns);
    wait_for(monitors.clone(), OBJECTS, TIMEOUT, |_| true).await;
    wait_for(rules.clone(), OBJECTS, TIMEOUT, |_| true).await;
    wait_ready(&guards).await;
    assert_converged(&operator).await;
    guards.patch(GUARD, &PatchParams::default(), &Patch::Merge(&off)).await.expect("off");
    wait_deleted(monitors, OBJECTS, TIMEOUT).await;
    wait_deleted(rules, OBJECTS, TIMEOUT).await;
    assert_eq!(failed_reconciles(&operator).await, 0.0, "no reconcile failed:\n{}", operator.log());
}
