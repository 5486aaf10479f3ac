//! Pods that cannot start or keep running, on the real node: where kwok made every pod look
//! healthy, the kubelet now fails to pull an image or restarts a crashing container, and the
//! SecurityGuard says so (`Degraded=True`, reason `PodFailing`, the pod's own reason in the
//! message), then recovers by itself once the spec is fixed.
//!
//! Needs `SG_NODE_CLUSTER_DIR` (`e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR`).

use std::time::Duration;

use securityguard_e2e::UNPULLABLE_IMAGE;
use securityguard_e2e::checks::condition;
use securityguard_e2e::fixtures::GuardFixture;
use securityguard_e2e::node::{self, Site};

const GUARD: &str = "shop";
const TIMEOUT: Duration = Duration::from_secs(240);

/// The guard is Degraded for a failing API pod whose message says `what`.
async fn wait_pod_failing(site: &Site, what: &[&str]) -> String {
    let guard = site
        .wait(&format!("Degraded=True PodFailing naming {what:?}"), TIMEOUT, |g| {
            condition(g, "Degraded").is_some_and(|c| {
                c.status == "True" && c.reason == "PodFailing" && what.iter().all(|w| c.message.contains(w))
            })
        })
        .await;
    let message = condition(&guard, "Degraded").expect("Degraded").message;
    let ready = guard.status.as_ref().and_then(|s| s.condition("Ready")).map(|c| c.status.clone());
    assert_eq!(ready.as_deref(), Some("False"), "not Ready while the API pod fails: {message}");
    message
}

#[tokio::test]
async fn a_pod_that_cannot_start_degrades_the_guard_until_the_spec_is_fixed() {
    let _node = node::exclusive().await;
    let site = Site::new("node-failing", GUARD).await;

    // An image no registry serves: the kubelet cannot pull it.
    site.apply(&site.guard(1).image(UNPULLABLE_IMAGE));
    let message = wait_pod_failing(&site, &["container api", UNPULLABLE_IMAGE]).await;
    assert!(message.contains("ErrImagePull") || message.contains("ImagePullBackOff"), "{message}");
    assert!(message.contains(&format!("pod {GUARD}-api-")), "the pod is named: {message}");

    // The image is fixed: the guard recovers without anyone touching it again.
    site.apply(&site.guard(1));
    let guard = site.ready(TIMEOUT).await;
    let degraded = condition(&guard, "Degraded");
    assert_eq!(degraded.as_ref().map(|c| c.status.as_str()), Some("False"), "{degraded:?}");

    // A configuration the API refuses at start-up: the container exits, the kubelet restarts
    // it with a back-off, and the guard reports the crash loop with the exit code.
    site.apply(&site.guard(1).env("SHUTDOWN_DELAY_SECONDS", "soon"));
    let message = wait_pod_failing(&site, &["container api", "exit"]).await;
    assert!(message.contains("CrashLoopBackOff") || message.contains("Error"), "{message}");
    assert!(!message.contains(securityguard_e2e::JWT), "no secret in the message");

    site.apply(&site.guard(1));
    let guard = site.ready(TIMEOUT).await;
    let degraded = condition(&guard, "Degraded");
    assert_eq!(degraded.as_ref().map(|c| c.status.as_str()), Some("False"), "{degraded:?}");
}
