//! A rolling update of the API image on the real node under a steady stream of requests loses
//! none (the infrastructure guide's "Rolling Update: zero downtime"): new pods must pass their
//! readiness probe before an old one goes, and an old pod fails its readiness and keeps serving
//! for `SHUTDOWN_DELAY_SECONDS` after SIGTERM, while kube-proxy stops routing to it.
//!
//! Needs `SG_NODE_CLUSTER_DIR` (`e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use securityguard_e2e::fixtures::{GuardFixture, IMAGE};
use securityguard_e2e::node::{self, Site, new_wallet};
use securityguard_e2e::{eventually, wait_for};
use securityguard_operator::crd::SecurityGuard;
use serde_json::json;

const GUARD: &str = "shop";
/// The same image under a second tag: what a release looks like to the kubelet.
const NEXT: &str = "ghcr.io/securityguard/api:0.1.0-next";

fn guard(site: &Site, image: &str) -> SecurityGuard {
    site.guard(2)
        .image(image)
        // One client sends every request: the per-IP and per-wallet limits must not refuse it.
        .env("RATE_LIMIT_PER_IP", "1000000")
        .env("RATE_LIMIT_PER_WALLET", "1000000")
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failures: Vec<String>,
}

#[tokio::test]
async fn rolling_update_of_the_api_image_loses_no_request() {
    let _node = node::exclusive().await;
    let site = Site::new("node-rollout", GUARD).await;
    let socket = node::node_env("SG_CONTAINERD_SOCKET");
    let out = std::process::Command::new("ctr")
        .args(["--address", &socket, "-n", "k8s.io", "images", "tag", "--force", IMAGE, NEXT])
        .output()
        .expect("ctr runs");
    assert!(out.status.success(), "ctr images tag: {}", String::from_utf8_lossy(&out.stderr));

    site.apply(&guard(&site, IMAGE));
    site.ready(Duration::from_secs(240)).await;
    let api = site.api().await;
    api.wait_ready(Duration::from_secs(60)).await;
    let token = api.sign_in(&new_wallet()).await;

    // Two clients, each sending one scan after another, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for client in 0..2 {
        let (api, token, stop, answered) = (api.clone(), token.clone(), stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let domain = format!("rollout-{client}-{n}.example.org");
                match api.post("/v1/scan/domains", Some(&token), &json!({"domains": [domain]})).await {
                    Ok((200, _)) => {
                        tally.ok += 1;
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, body)) => tally.failures.push(format!("{domain}: {status} {body}")),
                    Err(e) => tally.failures.push(format!("{domain}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            tally
        }));
    }

    // The release: a new image for the API.
    let deployments: Api<Deployment> = Api::namespaced(site.client.clone(), &site.ns.name);
    let before = deployments.get(&format!("{GUARD}-api")).await.expect("Deployment");
    let strategy = before.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    assert_eq!(
        strategy.and_then(|r| r.max_unavailable.clone()),
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );
    traffic_flowing(&answered).await;
    site.apply(&guard(&site, NEXT));
    wait_for(deployments, &format!("{GUARD}-api"), Duration::from_secs(240), |d: &Deployment| {
        let (Some(spec), Some(status)) = (d.spec.as_ref(), d.status.as_ref()) else { return false };
        let image = spec.template.spec.as_ref().and_then(|p| p.containers.first()).and_then(|c| c.image.as_deref());
        image == Some(NEXT)
            && status.observed_generation == d.metadata.generation
            && status.updated_replicas == Some(2)
            && status.available_replicas == Some(2)
            && status.replicas == Some(2)
    })
    .await;
    // Until the old pods are gone, not only replaced in the Deployment's count.
    let pods: Api<Pod> = Api::namespaced(site.client.clone(), &site.ns.name);
    let selector = format!("app.kubernetes.io/instance={GUARD},app.kubernetes.io/component=api");
    eventually("only pods of the new image", Duration::from_secs(120), || async {
        let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
        list.items
            .iter()
            .all(|p| p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref()) == Some(NEXT))
            .then_some(())
    })
    .await;
    traffic_flowing(&answered).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = Tally::default();
    for client in clients {
        let tally = client.await.expect("client task");
        total.ok += tally.ok;
        total.failures.extend(tally.failures);
    }
    assert!(total.ok > 100, "too few requests to judge: {}", total.ok);
    assert!(
        total.failures.is_empty(),
        "{} of {} requests failed during the rolling update:\n{}\n{}",
        total.failures.len(),
        total.ok + total.failures.len() as u64,
        total.failures.join("\n"),
        node::diagnostics(&site.ns.name)
    );
}

/// Waits until the clients have had 50 more answers.
async fn traffic_flowing(answered: &AtomicU64) {
    let from = answered.load(Ordering::Relaxed);
    eventually("50 more answers", Duration::from_secs(60), || async {
        (answered.load(Ordering::Relaxed) >= from + 50).then_some(())
    })
    .await;
}
