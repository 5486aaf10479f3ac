//! A SecurityGuard's whole life against the real control plane, with the operator running under
//! its own ServiceAccount in a namespace that enforces Pod Security `restricted`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use securityguard_e2e::checks::{condition, is_ready, owned_by};
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, UNPULLABLE_IMAGE, admin, eventually, kubectl_ok, repo_root,
    s3_credentials, secret, volumes_for_guard, wait_deleted, wait_for,
};
use securityguard_operator::crd::SecurityGuard;

const TIMEOUT: Duration = Duration::from_secs(90);

async fn wait_ready(api: &Api<SecurityGuard>, name: &str) -> SecurityGuard {
    wait_for(api.clone(), name, TIMEOUT, is_ready).await
}

async fn get_owned<K>(client: &Client, ns: &str, name: &str, guard: &SecurityGuard) -> K
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let obj = Api::<K>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("{} {name} exists: {e}", K::kind(&())));
    assert!(owned_by(&obj, guard), "{} {name} has the SecurityGuard as controller owner", K::kind(&()));
    obj
}

fn deployment_image(d: &Deployment) -> Option<String> {
    d.spec.as_ref()?.template.spec.as_ref()?.containers.first()?.image.clone()
}

#[tokio::test]
async fn example_securityguard_lifecycle() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "life").await;
    let ns = ns.name.as_str();
    let operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;

    // The full example, with the Secrets it names and volumes for its datastores.
    secret(ns, "securityguard-jwt", "secret", JWT);
    secret(ns, "securityguard-claude", "api-key", "sk-ant-e2e");
    s3_credentials(ns, "securityguard-backup-s3", "e2e", "e2e-secret");
    secret(ns, "securityguard-backup-key", "keys", "ZTJlLWJhY2t1cC1rZXktMDEyMzQ1Njc4OWFiY2RlZmc=");
    volumes_for_guard(ns, "full");
    securityguard_e2e::volume_for_claim(ns, "full-backups");
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/full.yaml").to_str().expect("utf-8")], None);

    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    let guard = wait_ready(&guards, "full").await;
    let status = guard.status.clone().expect("status");
    assert_eq!(status.endpoint.as_deref(), Some("https://api.securityguard.example.com"));
    assert!(status.ready_replicas >= Some(3), "{status:?}");

    // (c) Every child exists, controlled by the SecurityGuard.
    let _: ServiceAccount = get_owned(&client, ns, "full-api", &guard).await;
    let _: ConfigMap = get_owned(&client, ns, "full-api", &guard).await;
    let deployment: Deployment = get_owned(&client, ns, "full-api", &guard).await;
    let _: Service = get_owned(&client, ns, "full-api", &guard).await;
    let _: HorizontalPodAutoscaler = get_owned(&client, ns, "full-api", &guard).await;
    let _: PodDisruptionBudget = get_owned(&client, ns, "full-api", &guard).await;
    let _: Ingress = get_owned(&client, ns, "full-api", &guard).await;
    for datastore in ["full-postgres", "full-redis"] {
        let _: StatefulSet = get_owned(&client, ns, datastore, &guard).await;
        let _: Service = get_owned(&client, ns, datastore, &guard).await;
        let _: NetworkPolicy = get_owned(&client, ns, datastore, &guard).await;
    }
    for schedule in ["full-backup", "full-verify", "full-log-archive"] {
        let _: CronJob = get_owned(&client, ns, schedule, &guard).await;
    }
    for account in ["full-backup", "full-log-archive"] {
        let _: ServiceAccount = get_owned(&client, ns, account, &guard).await;
        let _: RoleBinding = get_owned(&client, ns, account, &guard).await;
    }
    let credentials = Api::<Secret>::namespaced(client.clone(), ns).get("full-credentials").await.expect("credentials");
    let keys: Vec<_> = credentials.data.clone().unwrap_or_default().into_keys().collect();
    assert_eq!(keys, ["postgres-password", "redis-password"]);
    assert_eq!(deployment_image(&deployment).as_deref(), Some("ghcr.io/securityguard/api:0.1.0"));

    // (j) The pods were admitted under `restricted` and are Ready on kwok nodes.
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app.kubernetes.io/instance=full"))
        .await
        .expect("pods");
    let ready: Vec<_> = pods
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect();
    assert!(ready.len() >= 5, "3 API pods, PostgreSQL and Redis ready; got {}", ready.len());
    assert!(
        ready.iter().all(|p| p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| n.starts_with("kwok-node-")))
    );

    // (d) Edits reach the children.
    let edit = serde_json::json!({"spec": {
        "image": "ghcr.io/securityguard/api:0.2.0",
        "autoscaling": {"minReplicas": 4, "maxReplicas": 8},
        "ingress": {"host": "scan.example.org"},
    }});
    guards.patch("full", &PatchParams::default(), &Patch::Merge(&edit)).await.expect("edit applied");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    wait_for(deployments.clone(), "full-api", TIMEOUT, |d| {
        deployment_image(d).as_deref() == Some("ghcr.io/securityguard/api:0.2.0")
    })
    .await;
    wait_for(Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns), "full-api", TIMEOUT, |h| {
        h.spec.as_ref().is_some_and(|s| s.min_replicas == Some(4) && s.max_replicas == 8)
    })
    .await;
    wait_for(Api::<Ingress>::namespaced(client.clone(), ns), "full-api", TIMEOUT, |i| {
        i.spec.as_ref().and_then(|s| s.rules.as_ref()).and_then(|r| r.first()).and_then(|r| r.host.as_deref())
            == Some("scan.example.org")
    })
    .await;
    let guard = wait_ready(&guards, "full").await;
    assert_eq!(guard.status.as_ref().and_then(|s| s.endpoint.as_deref()), Some("https://scan.example.org"));

    // Turning ingress and autoscaling off deletes their objects; replicas become fixed.
    let off =
        serde_json::json!({"spec": {"ingress": {"enabled": false}, "autoscaling": {"enabled": false}, "replicas": 2}});
    guards.patch("full", &PatchParams::default(), &Patch::Merge(&off)).await.expect("edit applied");
    wait_deleted(Api::<Ingress>::namespaced(client.clone(), ns), "full-api", TIMEOUT).await;
    wait_deleted(Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns), "full-api", TIMEOUT).await;
    wait_for(deployments.clone(), "full-api", TIMEOUT, |d| d.spec.as_ref().and_then(|s| s.replicas) == Some(2)).await;
    let guard = wait_ready(&guards, "full").await;
    assert_eq!(
        guard.status.as_ref().and_then(|s| s.endpoint.as_deref()),
        Some(format!("http://full-api.{ns}.svc:80").as_str())
    );

    // (e) A hand edit of a field the operator manages is reverted.
    let tamper = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "attacker/api:evil"}]}}}});
    deployments.patch("full-api", &PatchParams::default(), &Patch::Strategic(&tamper)).await.expect("hand edit");
    wait_for(deployments.clone(), "full-api", TIMEOUT, |d| {
        deployment_image(d).as_deref() == Some("ghcr.io/securityguard/api:0.2.0")
    })
    .await;

    // The generated passwords deleted by hand: the operator refuses to make new ones that
    // would lock the API out of its data, says why, and recovers when the Secret is restored.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut saved = secrets.get("full-credentials").await.expect("credentials");
    secrets.delete("full-credentials", &DeleteParams::default()).await.expect("deleted by hand");
    let degraded = wait_for(guards.clone(), "full", TIMEOUT, |g| {
        g.status.as_ref().and_then(|s| s.condition("Degraded")).is_some_and(|c| c.status == "True")
    })
    .await;
    let message = degraded.status.as_ref().and_then(|s| s.condition("Degraded")).map(|c| c.message.clone());
    let message = message.unwrap_or_default();
    assert!(message.contains("full-credentials") && message.contains("full-postgres"), "{message}");
    assert!(secrets.get_opt("full-credentials").await.expect("get").is_none(), "no new passwords were made");
    saved.metadata = kube::api::ObjectMeta {
        name: saved.metadata.name.clone(),
        labels: saved.metadata.labels.clone(),
        annotations: saved.metadata.annotations.clone(),
        ..Default::default()
    };
    secrets.create(&Default::default(), &saved).await.expect("restored");
    wait_ready(&guards, "full").await;

    // (f) Deleting the SecurityGuard removes every child through the garbage collector; the
    // data volumes and their password stay.
    guards.delete("full", &DeleteParams::foreground()).await.expect("deleted");
    wait_deleted(guards.clone(), "full", TIMEOUT).await;
    wait_deleted(deployments, "full-api", TIMEOUT).await;
    for name in ["full-api", "full-postgres", "full-redis"] {
        wait_deleted(Api::<Service>::namespaced(client.clone(), ns), name, TIMEOUT).await;
    }
    for name in ["full-postgres", "full-redis"] {
        wait_deleted(Api::<StatefulSet>::namespaced(client.clone(), ns), name, TIMEOUT).await;
        wait_deleted(Api::<NetworkPolicy>::namespaced(client.clone(), ns), name, TIMEOUT).await;
    }
    wait_deleted(Api::<ConfigMap>::namespaced(client.clone(), ns), "full-api", TIMEOUT).await;
    wait_deleted(Api::<ServiceAccount>::namespaced(client.clone(), ns), "full-api", TIMEOUT).await;
    wait_deleted(Api::<PodDisruptionBudget>::namespaced(client.clone(), ns), "full-api", TIMEOUT).await;
    Api::<Secret>::namespaced(client.clone(), ns).get("full-credentials").await.expect("credentials kept");
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).get("data-full-postgres-0").await.expect("data kept");

    assert!(!operator.log().contains(JWT), "a secret value reached the operator's log");
}

#[tokio::test]
async fn converged_securityguard_causes_no_writes_over_resyncs() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "idle").await;
    let ns = ns.name.as_str();
    let options = OperatorOptions { resync_seconds: 2, ..OperatorOptions::for_namespace(ns) };
    let operator = Operator::start(&options).await;
    secret(ns, "securityguard-jwt", "secret", JWT);
    volumes_for_guard(ns, "minimal");
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    // With backups (CronJobs, their identities, status and conditions) and monitoring too.
    s3_credentials(ns, "s3", "e2e", "e2e-secret");
    let extras = serde_json::json!({"spec": {
        "backup": {"s3": {"bucket": "idle-backups", "credentialsSecret": "s3"}},
        "monitoring": {"enabled": true},
    }});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&extras)).await.expect("backups on");
    wait_ready(&guards, "minimal").await;

    // Converged: let the status settle (the last write is the one that made it Ready).
    let settled = eventually("writes to stop", TIMEOUT, || async {
        let before = operator.writes().await;
        let reconciles = operator.reconciles().await;
        // Wait for two more reconciles, then compare.
        eventually("two resyncs", Duration::from_secs(30), || async {
            (operator.reconciles().await >= reconciles + 2.0).then_some(())
        })
        .await;
        (operator.writes().await == before).then_some(before)
    })
    .await;
    assert!(!settled.is_empty(), "the operator wrote the children at first");

    let reconciles = operator.reconciles().await;
    eventually("five more resyncs", Duration::from_secs(60), || async {
        (operator.reconciles().await >= reconciles + 5.0).then_some(())
    })
    .await;
    assert_eq!(operator.writes().await, settled, "no write over five resync periods once converged");
    let metrics = operator.metrics().await;
    let successes = metrics.get("securityguard_operator_reconciles_total{result=\"success\"}").copied().unwrap_or(0.0);
    assert!(successes >= reconciles + 5.0, "the resyncs succeeded: {successes}");

    // Paused: the status says so and a hand edit stays, though the edit triggers reconciles.
    let pause = serde_json::json!({"spec": {"paused": true}});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&pause)).await.expect("paused");
    wait_for(guards.clone(), "minimal", TIMEOUT, |g| {
        g.status.as_ref().and_then(|s| s.condition("ReconciliationPaused")).is_some_and(|c| c.status == "True")
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let before = operator.reconciles().await;
    let tamper =
        serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "hand/edit:1"}]}}}});
    deployments.patch("minimal-api", &PatchParams::default(), &Patch::Strategic(&tamper)).await.expect("hand edit");
    eventually("a reconcile of the paused SecurityGuard", TIMEOUT, || async {
        (operator.reconciles().await > before).then_some(())
    })
    .await;
    let deployment = deployments.get("minimal-api").await.expect("deployment");
    assert_eq!(
        deployment_image(&deployment).as_deref(),
        Some("hand/edit:1"),
        "a paused SecurityGuard's objects are left alone"
    );
    // Unpaused: reconciled again, the edit reverted.
    let resume = serde_json::json!({"spec": {"paused": false}});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&resume)).await.expect("resumed");
    wait_for(deployments, "minimal-api", TIMEOUT, |d| {
        deployment_image(d).as_deref() == Some("ghcr.io/securityguard/api:0.1.0")
    })
    .await;
    let guard = wait_ready(&guards, "minimal").await;
    assert!(
        guard.status.as_ref().and_then(|s| s.condition("ReconciliationPaused")).is_some_and(|c| c.status == "False")
    );
}

#[tokio::test]
async fn missing_secret_degrades_then_recovers_when_it_appears() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "missing").await;
    let ns = ns.name.as_str();
    let operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;
    volumes_for_guard(ns, "minimal");
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    let degraded = wait_for(guards.clone(), "minimal", TIMEOUT, |g| {
        g.status.as_ref().and_then(|s| s.condition("Degraded")).is_some_and(|c| c.status == "True")
    })
    .await;
    let condition = degraded.status.as_ref().and_then(|s| s.condition("Degraded")).cloned().expect("Degraded");
    assert_eq!(condition.reason, "InvalidReference");
    assert_eq!(condition.message, "spec.secrets.jwtSecret: Secret \"securityguard-jwt\" does not exist");
    // Nothing was created for it.
    assert!(Api::<Deployment>::namespaced(client.clone(), ns).get_opt("minimal-api").await.expect("get").is_none());
    // A Warning Event names the Secret.
    let events = kubectl_ok(
        &[
            "-n",
            ns,
            "get",
            "events.events.k8s.io",
            "-o",
            "jsonpath={range .items[*]}{.type} {.reason} {.note}{\"\\n\"}{end}",
        ],
        None,
    );
    assert!(
        events.contains("Warning InvalidReference spec.secrets.jwtSecret: Secret \"securityguard-jwt\" does not exist"),
        "{events}"
    );

    // No hot loop while waiting: a handful of reconciles at most.
    let reconciles = operator.reconciles().await;
    assert!(reconciles <= 3.0, "{reconciles} reconciles for one invalid SecurityGuard");

    // The Secret appears: reconciled at once through the Secret watch.
    secret(ns, "securityguard-jwt", "secret", JWT);
    let guard = wait_ready(&guards, "minimal").await;
    assert!(guard.status.as_ref().and_then(|s| s.condition("Degraded")).is_some_and(|c| c.status == "False"));

    // A malformed URL in an external Secret: Degraded, with the field and Secret, not the value.
    secret(ns, "db", "url", "mysql://user:hunter2@db:3306/x");
    let external = serde_json::json!({"spec": {"postgres": {"managed": null, "external": {"connectionSecret": {"name": "db", "key": "url"}}}}});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&external)).await.expect("edit");
    let degraded = wait_for(guards.clone(), "minimal", TIMEOUT, |g| {
        g.status.as_ref().and_then(|s| s.condition("Degraded")).is_some_and(|c| c.status == "True")
    })
    .await;
    let message =
        degraded.status.as_ref().and_then(|s| s.condition("Degraded")).map(|c| c.message.clone()).expect("message");
    assert!(message.contains("spec.postgres.external.connectionSecret") && message.contains("\"db\""), "{message}");
    assert!(!message.contains("hunter2"), "secret value in status: {message}");
    assert!(!operator.log().contains("hunter2"), "secret value in the operator's log");
}

/// The operator's writes of Events (create and patch; a repeated Event is a patch of its series).
async fn event_writes(operator: &Operator) -> f64 {
    operator
        .metrics()
        .await
        .iter()
        .filter(|(k, _)| {
            k.starts_with("securityguard_operator_kube_api_requests_total{")
                && k.contains("resource=\"events\"")
                && (k.contains("verb=\"create\"") || k.contains("verb=\"patch\""))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn a_pod_that_cannot_pull_its_image_degrades_until_the_image_is_fixed() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "pull").await;
    let ns = ns.name.as_str();
    // The resync (5 minutes) is longer than every wait below: only the watches wake the operator.
    let operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;
    secret(ns, "securityguard-jwt", "secret", JWT);
    volumes_for_guard(ns, "minimal");
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    wait_ready(&guards, "minimal").await;

    // A new image that cannot be pulled: the rollout's new pod fails while the old ones serve.
    // The kubelet's verdict changes no Deployment status: the pod watch wakes the operator.
    let edit = serde_json::json!({"spec": {"image": UNPULLABLE_IMAGE}});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&edit)).await.expect("bad image");
    let guard =
        wait_for(guards.clone(), "minimal", TIMEOUT, |g| condition(g, "Degraded").is_some_and(|c| c.status == "True"))
            .await;
    let degraded = condition(&guard, "Degraded").expect("Degraded");
    assert_eq!(degraded.reason, "PodFailing", "{degraded:?}");
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app.kubernetes.io/instance=minimal,app.kubernetes.io/component=api"))
        .await
        .expect("pods");
    let mut failing: Vec<String> = pods
        .items
        .iter()
        .filter(|p| {
            p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|cs| {
                cs.iter().any(|c| {
                    let reason = c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref());
                    matches!(reason, Some("ErrImagePull" | "ImagePullBackOff"))
                })
            })
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    failing.sort();
    let first = failing.first().unwrap_or_else(|| panic!("a pod failing to pull; pods: {:#?}", pods.items));
    let message = &degraded.message;
    assert!(message.starts_with(&format!("pod {first}: container api: ")), "{message}");
    assert!(
        ["ErrImagePull", "ImagePullBackOff"].iter().any(|r| message.contains(&format!(": container api: {r}: "))),
        "{message}"
    );
    assert!(message.contains(UNPULLABLE_IMAGE), "{message}");
    assert!(condition(&guard, "Ready").is_some_and(|c| c.status == "False"), "{:?}", guard.status);

    // One Warning Event, however often the guard is reconciled while the pod fails: each change
    // of the pod (here an annotation) triggers a reconcile.
    let events = || {
        kubectl_ok(
            &[
                "-n",
                ns,
                "get",
                "events.events.k8s.io",
                "-o",
                "jsonpath={range .items[*]}{.type} {.reason} {.note}{\"\\n\"}{end}",
            ],
            None,
        )
        .lines()
        // The API's pods only: a datastore pod may have been Unschedulable for a moment while
        // its hand-made volume was being bound, before the guard was first Ready.
        .filter(|l| l.contains(" PodFailing ") && l.contains(": container api: "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
    };
    let announced =
        eventually("the PodFailing Event", TIMEOUT, || async { Some(events()).filter(|e| !e.is_empty()) }).await;
    assert!(announced.starts_with(&format!("Warning PodFailing pod {first}: container api: ")), "{announced}");
    let writes = event_writes(&operator).await;
    for poke in 0..3 {
        let reconciles = operator.reconciles().await;
        kubectl_ok(
            &["-n", ns, "annotate", "--overwrite", "pod", first, &format!("e2e.securityguard.io/poke={poke}")],
            None,
        );
        eventually("a reconcile triggered by the pod", TIMEOUT, || async {
            (operator.reconciles().await > reconciles).then_some(())
        })
        .await;
    }
    assert_eq!(event_writes(&operator).await, writes, "no Event for a failure already reported");
    assert_eq!(events().lines().count(), 1, "{}", events());

    // The image fixed: the failing pod goes, Degraded returns to False by itself.
    let fix = serde_json::json!({"spec": {"image": "ghcr.io/securityguard/api:0.1.0"}});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&fix)).await.expect("good image");
    let guard = wait_ready(&guards, "minimal").await;
    let degraded = condition(&guard, "Degraded").expect("Degraded");
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("False", "AsExpected"), "{degraded:?}");
}
