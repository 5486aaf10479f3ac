//! The applier against a mocked API server: what it sends, in which order, and what it skips
//! because the caches already hold it.

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::*;
use crate::controller::build::test_support::{self, MINIMAL};
use crate::controller::build::{self, api};
use crate::controller::test_api::{Exchange, Received, Reply, api_server, cache, empty, empty_caches, expect};
use crate::controller::vocabulary::{Directives, JobRequest, MonitoringApis, Platform};
use crate::controller::write::credentials::tests::cached_credentials;
use crate::controller::write::ledger::{Ledger, desired_hash};

#[test]
fn holds_ignores_server_defaults_but_not_changed_values() {
    let current = json!({"spec": {"replicas": 3, "template": {"containers": [
        {"name": "api", "image": "a:1", "terminationMessagePath": "/dev/termination-log"}]}}});
    assert!(holds(&current, &json!({"spec": {"template": {"containers": [{"name": "api", "image": "a:1"}]}}})));
    assert!(!holds(&current, &json!({"spec": {"template": {"containers": [{"name": "api", "image": "a:2"}]}}})));
    assert!(!holds(&current, &json!({"spec": {"template": {"containers": [{"name": "api"}, {"name": "x"}]}}})));
    assert!(!holds(&current, &json!({"spec": {"paused": true}})));
}

/// Query of every server-side apply.
const SSA: &str = "fieldManager=securityguard-operator&force=true";

/// The children of a SecurityGuard, as `build` makes them with `directives`.
fn prepared(yaml: &str, directives: &Directives) -> (ValidatedGuard, ChildResources<Prepared>) {
    let guard = test_support::guard(yaml);
    let platform = Platform { job_image: "operator:test".into(), ..Platform::default() };
    let children = build::build(&guard, directives, &platform);
    (guard, children)
}

/// Caches that hold these children (as the watches would once they were applied).
fn caches_holding<S>(children: &ChildResources<S>) -> Stores {
    let (backup, monitoring) = (&children.backup, &children.monitoring);
    let datastores: Vec<&DatastoreObjects> = children.postgres.iter().chain(&children.redis).collect();
    let credentials = children.credentials.iter().map(|c| cached_credentials(c, &c.keys));
    Stores {
        service_accounts: cache([&children.service_account].into_iter().chain(&backup.service_accounts).cloned()),
        config_maps: cache([&children.config_map].into_iter().chain(&monitoring.dashboards).cloned()),
        secrets: cache(credentials),
        stateful_sets: cache(datastores.iter().map(|d| d.stateful_set.clone())),
        services: cache([&children.service].into_iter().chain(datastores.iter().map(|d| &d.service)).cloned()),
        network_policies: cache(children.network_policies.clone()),
        deployments: cache([children.deployment.clone()]),
        hpas: cache(children.hpa.clone()),
        pdbs: cache([children.pdb.clone()]),
        ingresses: cache(children.ingress.clone()),
        role_bindings: cache(backup.role_bindings.clone()),
        cron_jobs: cache(backup.cron_jobs.clone()),
        jobs: cache(backup.jobs.clone()),
        volume_claims: cache(backup.volume.clone()),
        service_monitors: cache(monitoring.service_monitor.clone()),
        prometheus_rules: cache(monitoring.prometheus_rule.clone()),
    }
}

/// A ledger that records every child of `children` as written by this process.
fn ledger_holding<S>(guard: &ValidatedGuard, children: &ChildResources<S>) -> Ledger {
    let ledger = Ledger::default();
    let uid = guard.owner.uid.as_str();
    let (backup, monitoring) = (&children.backup, &children.monitoring);
    for account in [&children.service_account].into_iter().chain(&backup.service_accounts) {
        ledger.record(uid, account, desired_hash(account));
    }
    for config_map in [&children.config_map].into_iter().chain(&monitoring.dashboards) {
        ledger.record(uid, config_map, desired_hash(config_map));
    }
    for datastore in children.postgres.iter().chain(&children.redis) {
        ledger.record(uid, &datastore.stateful_set, desired_hash(&datastore.stateful_set));
        ledger.record(uid, &datastore.service, desired_hash(&datastore.service));
    }
    ledger.record(uid, &children.service, desired_hash(&children.service));
    children.network_policies.iter().for_each(|p| ledger.record(uid, p, desired_hash(p)));
    ledger.record(uid, &children.deployment, desired_hash(&children.deployment));
    children.hpa.iter().for_each(|h| ledger.record(uid, h, desired_hash(h)));
    ledger.record(uid, &children.pdb, desired_hash(&children.pdb));
    children.ingress.iter().for_each(|i| ledger.record(uid, i, desired_hash(i)));
    backup.role_bindings.iter().for_each(|b| ledger.record(uid, b, desired_hash(b)));
    backup.cron_jobs.iter().for_each(|c| ledger.record(uid, c, desired_hash(c)));
    backup.volume.iter().for_each(|v| ledger.record(uid, v, desired_hash(v)));
    monitoring.service_monitor.iter().for_each(|m| ledger.record(uid, m, desired_hash(m)));
    monitoring.prometheus_rule.iter().for_each(|r| ledger.record(uid, r, desired_hash(r)));
    ledger
}

/// Applies `children` over `stores` with what `ledger` says was written, against a server
/// expecting `script`.
async fn apply(
    guard: &ValidatedGuard,
    stores: &Stores,
    ledger: &Ledger,
    children: ChildResources<Prepared>,
    script: Vec<Exchange>,
) -> (Result<ChildResources<Applied>, Error>, Vec<(Change, String)>, Vec<Received>) {
    let (client, server) = api_server(script);
    let applier = Applier::new(&client, stores, ledger, &guard.owner.uid);
    // Boxed where it is made: moved by value through the test's frames, the apply's future
    // (about 60 KB) outgrows a test thread's 2 MiB stack in a debug build.
    let (applied, received) = server.run(Box::pin(applier.apply(guard, children))).await;
    (applied, applier.changes(), received)
}

fn changes(list: &[(Change, &str)]) -> Vec<(Change, String)> {
    list.iter().map(|(c, o)| (*c, (*o).to_owned())).collect()
}

fn ssa(path: &str) -> Exchange {
    expect(&format!("PATCH {path}?{SSA}"), Reply::Echo)
}

/// A first apply of the minimal SecurityGuard: every child, in the stated order (identity,
/// configuration and passwords; fences; datastores, Service first; the API), each with the
/// path it is written to and the change it is reported as.
const FIRST_APPLY_OF_MINIMAL: [(&str, &str); 13] = [
    ("/api/v1/namespaces/prod/serviceaccounts/sg-api", "ServiceAccount sg-api"),
    ("/api/v1/namespaces/prod/configmaps/sg-api", "ConfigMap sg-api"),
    ("/api/v1/namespaces/prod/secrets", "Secret sg-credentials (generated passwords)"),
    ("/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies/sg-postgres", "NetworkPolicy sg-postgres"),
    ("/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies/sg-redis", "NetworkPolicy sg-redis"),
    ("/api/v1/namespaces/prod/services/sg-postgres", "Service sg-postgres"),
    ("/apis/apps/v1/namespaces/prod/statefulsets/sg-postgres", "StatefulSet sg-postgres"),
    ("/api/v1/namespaces/prod/services/sg-redis", "Service sg-redis"),
    ("/apis/apps/v1/namespaces/prod/statefulsets/sg-redis", "StatefulSet sg-redis"),
    ("/apis/apps/v1/namespaces/prod/deployments/sg-api", "Deployment sg-api"),
    ("/api/v1/namespaces/prod/services/sg-api", "Service sg-api"),
    ("/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/sg-api", "HorizontalPodAutoscaler sg-api"),
    ("/apis/policy/v1/namespaces/prod/poddisruptionbudgets/sg-api", "PodDisruptionBudget sg-api"),
];

/// What a first apply of [`FULL`] sends after [`FIRST_APPLY_OF_MINIMAL`]: the Ingress, then the
/// backups (identities, the volume, the schedules, the one-off Job), monitoring last.
const FIRST_APPLY_OF_FULL_AFTER_MINIMAL: [(&str, &str); 16] = [
    ("/apis/networking.k8s.io/v1/namespaces/prod/ingresses/sg-api", "Ingress sg-api"),
    ("/api/v1/namespaces/prod/serviceaccounts/sg-backup", "ServiceAccount sg-backup"),
    ("/api/v1/namespaces/prod/serviceaccounts/sg-log-archive", "ServiceAccount sg-log-archive"),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/prod/rolebindings/sg-backup", "RoleBinding sg-backup"),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/prod/rolebindings/sg-log-archive", "RoleBinding sg-log-archive"),
    ("/api/v1/namespaces/prod/persistentvolumeclaims/sg-backups", "PersistentVolumeClaim sg-backups"),
    ("/apis/batch/v1/namespaces/prod/cronjobs/sg-backup", "CronJob sg-backup"),
    ("/apis/batch/v1/namespaces/prod/cronjobs/sg-verify", "CronJob sg-verify"),
    ("/apis/batch/v1/namespaces/prod/cronjobs/sg-log-archive", "CronJob sg-log-archive"),
    ("/apis/batch/v1/namespaces/prod/jobs", "Job sg-backup-c75de8c1"),
    ("/apis/monitoring.coreos.com/v1/namespaces/prod/servicemonitors/sg-monitoring", "ServiceMonitor sg-monitoring"),
    ("/apis/monitoring.coreos.com/v1/namespaces/prod/prometheusrules/sg-monitoring", "PrometheusRule sg-monitoring"),
    ("/api/v1/namespaces/prod/configmaps/sg-dashboard-system-overview", "ConfigMap sg-dashboard-system-overview"),
    ("/api/v1/namespaces/prod/configmaps/sg-dashboard-security-metrics", "ConfigMap sg-dashboard-security-metrics"),
    ("/api/v1/namespaces/prod/configmaps/sg-dashboard-performance", "ConfigMap sg-dashboard-performance"),
    ("/api/v1/namespaces/prod/configmaps/sg-dashboard-business-kpis", "ConfigMap sg-dashboard-business-kpis"),
];

/// The requests of a first apply: a create (POST to the collection) for the Secret and the
/// Jobs, a server-side apply for the others.
fn first_apply(table: &[(&str, &str)]) -> Vec<Exchange> {
    table
        .iter()
        .map(|(path, _)| {
            if path.ends_with("/secrets") || path.ends_with("/jobs") {
                expect(&format!("POST {path}?fieldManager=securityguard-operator"), Reply::Echo)
            } else {
                ssa(path)
            }
        })
        .collect()
}

/// The changes a first apply reports: every object created.
fn created(table: &[(&str, &str)]) -> Vec<(Change, String)> {
    table.iter().map(|(_, object)| (Change::Created, (*object).to_owned())).collect()
}

#[tokio::test]
async fn a_first_apply_creates_every_child_in_order() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let ledger = Ledger::default();
    let (applied, changed, received) =
        apply(&guard, &empty_caches(), &ledger, children, first_apply(&FIRST_APPLY_OF_MINIMAL)).await;
    let applied = applied.expect("applies");
    assert_eq!(applied.deployment.metadata.name.as_deref(), Some("sg-api"));
    for request in received.iter().filter(|r| r.request.starts_with("PATCH")) {
        assert_eq!(request.content_type.as_deref(), Some("application/apply-patch+yaml"), "{}", request.request);
    }
    let secret = &received[2].body;
    assert_eq!(
        secret["metadata"]["annotations"]["securityguard.io/credential-keys"],
        "postgres-password,redis-password"
    );
    assert_eq!(secret["data"].as_object().map(|d| d.len()), Some(2));
    assert_eq!(changed, created(&FIRST_APPLY_OF_MINIMAL));
}

/// Every kind of child: ingress, backups with their local tier and an on-demand Job, monitoring
/// with dashboards on a cluster serving prometheus-operator's kinds.
const FULL: &str = "  ingress: {enabled: true, host: api.example.com}
  backup:
    s3: {bucket: b, credentialsSecret: s3}
    local: {size: 20Gi}
  monitoring: {enabled: true, dashboards: true}
";

#[tokio::test]
async fn every_kind_of_child_is_applied_in_the_stated_order_and_once() {
    let directives = Directives { jobs: vec![JobRequest::Backup { request_id: "q1".into() }], ..Directives::default() };
    let guard = test_support::guard(&format!("{MINIMAL}{FULL}"));
    let platform = Platform { job_image: "operator:test".into(), monitoring_apis: MonitoringApis::ALL };
    let children = build::build(&guard, &directives, &platform);
    let script = [first_apply(&FIRST_APPLY_OF_MINIMAL), first_apply(&FIRST_APPLY_OF_FULL_AFTER_MINIMAL)].concat();
    let ledger = Ledger::default();
    let (applied, changed, _) = apply(&guard, &empty_caches(), &ledger, children, script).await;
    let stores = caches_holding(&applied.expect("applies"));
    assert_eq!(changed, [created(&FIRST_APPLY_OF_MINIMAL), created(&FIRST_APPLY_OF_FULL_AFTER_MINIMAL)].concat());

    // Once the caches hold them all, nothing is sent again.
    let children = build::build(&guard, &directives, &platform);
    let (applied, changed, _) = apply(&guard, &stores, &ledger, children, vec![]).await;
    assert_eq!(applied.expect("applies").monitoring.dashboards.len(), 4);
    assert!(changed.is_empty(), "{changed:?}");
}

#[tokio::test]
async fn a_second_apply_over_caches_holding_what_was_applied_sends_nothing() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let ledger = Ledger::default();
    let (applied, _, _) = apply(&guard, &empty_caches(), &ledger, children, first_apply(&FIRST_APPLY_OF_MINIMAL)).await;
    let stores = caches_holding(&applied.expect("applies"));
    let (_, children) = prepared(MINIMAL, &Directives::default());
    let (applied, changed, _) = apply(&guard, &stores, &ledger, children, vec![]).await;
    assert_eq!(applied.expect("applies").deployment.metadata.name.as_deref(), Some("sg-api"));
    assert!(changed.is_empty(), "{changed:?}");
}

#[tokio::test]
async fn a_hand_edited_deployment_is_the_only_object_patched() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let ledger = ledger_holding(&guard, &children);
    let desired = serde_json::to_value(&children.deployment).expect("serializes");
    // Edited by hand: the API server bumped its generation past the one last written.
    let mut edited = children.deployment.clone();
    edited.metadata.generation = Some(2);
    let pod = edited.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("a pod template");
    pod.containers[0].image = Some("securityguard/api:edited".into());
    let whole = serde_json::to_value(&edited).expect("serializes");
    let stores = Stores { deployments: cache([edited.clone()]), ..caches_holding(&children) };
    let path = "/apis/apps/v1/namespaces/prod/deployments/sg-api";
    let script = vec![expect(&format!("GET {path}"), Reply::Json(whole)), ssa(path)];
    let (applied, changed, received) = apply(&guard, &stores, &ledger, children, script).await;
    let applied = applied.expect("applies");
    assert_eq!(received[1].body, desired, "the whole desired Deployment is applied");
    let image = applied.deployment.spec.and_then(|s| s.template.spec).map(|s| s.containers[0].image.clone());
    assert_eq!(image, Some(Some("securityguard/api:1.0.0".into())), "the applied set is the server's answer");
    assert_eq!(changed, changes(&[(Change::Updated, "Deployment sg-api")]));
}

/// The Ingress of the SecurityGuard with ingress on, controlled by it.
fn old_ingress() -> Ingress {
    let guard = test_support::guard(&format!("{MINIMAL}  ingress: {{enabled: true, host: api.example.com}}\n"));
    api::ingress::build(&guard).expect("ingress on")
}

#[tokio::test]
async fn an_ingress_turned_off_is_deleted() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let mut foreign = old_ingress();
    foreign.metadata.name = Some("not-ours".into());
    foreign.metadata.owner_references.iter_mut().flatten().for_each(|r| r.uid = "uid-2".into());
    let mut leaving = old_ingress();
    leaving.metadata.name = Some("leaving".into());
    leaving.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-03-01T12:00:00Z".parse().expect("a timestamp"),
    ));
    let stores = Stores { ingresses: cache([old_ingress(), foreign, leaving]), ..caches_holding(&children) };
    let ledger = ledger_holding(&guard, &children);
    let deleted = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    let (applied, changed, received) = apply(
        &guard,
        &stores,
        &ledger,
        children,
        vec![expect("DELETE /apis/networking.k8s.io/v1/namespaces/prod/ingresses/sg-api", Reply::Json(deleted))],
    )
    .await;
    assert!(applied.expect("applies").ingress.is_none());
    assert_eq!(received[0].body["propagationPolicy"], "Background");
    assert_eq!(changed, changes(&[(Change::Deleted, "Ingress sg-api")]));
}

#[tokio::test]
async fn an_orphan_already_gone_is_no_error_and_no_change() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let stores = Stores { ingresses: cache([old_ingress()]), ..caches_holding(&children) };
    let ledger = ledger_holding(&guard, &children);
    let (applied, changed, _) = apply(
        &guard,
        &stores,
        &ledger,
        children,
        vec![expect("DELETE /apis/networking.k8s.io/v1/namespaces/prod/ingresses/sg-api", Reply::Status(404))],
    )
    .await;
    applied.expect("a 404 on delete is success");
    assert!(changed.is_empty(), "{changed:?}");
}

#[tokio::test]
async fn a_job_is_created_once_and_one_that_exists_is_read_back() {
    let yaml = format!("{MINIMAL}  backup:\n    s3: {{bucket: b, credentialsSecret: s3}}\n");
    let directives = Directives { jobs: vec![JobRequest::Backup { request_id: "q1".into() }], ..Directives::default() };
    let (guard, children) = prepared(&yaml, &directives);
    let job = children.backup.jobs[0].clone();
    let name = job.metadata.name.clone().expect("named");
    let mut stores = caches_holding(&children);
    stores.jobs = empty();
    let ledger = ledger_holding(&guard, &children);
    let create = "POST /apis/batch/v1/namespaces/prod/jobs?fieldManager=securityguard-operator";

    let (applied, changed, _) = apply(&guard, &stores, &ledger, children, vec![expect(create, Reply::Echo)]).await;
    assert_eq!(applied.expect("applies").backup.jobs.len(), 1);
    assert_eq!(changed, changes(&[(Change::Created, &format!("Job {name}"))]));

    let (_, children) = prepared(&yaml, &directives);
    let existing = serde_json::to_value(&job).expect("serializes");
    let (applied, changed, _) = apply(
        &guard,
        &stores,
        &ledger,
        children,
        vec![
            expect(create, Reply::Status(409)),
            expect(&format!("GET /apis/batch/v1/namespaces/prod/jobs/{name}"), Reply::Json(existing)),
        ],
    )
    .await;
    assert_eq!(applied.expect("applies").backup.jobs[0].metadata.name.as_deref(), Some(name.as_str()));
    assert!(changed.is_empty(), "{changed:?}");

    let (_, children) = prepared(&yaml, &directives);
    let (applied, changed, _) =
        apply(&guard, &Stores { jobs: cache([job]), ..stores }, &ledger, children, vec![]).await;
    applied.expect("a Job in the cache is not created again");
    assert!(changed.is_empty(), "{changed:?}");
}

#[tokio::test]
async fn lost_passwords_stop_the_apply_before_the_datastores() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let stores = Stores { secrets: empty(), ..caches_holding(&children) };
    let ledger = ledger_holding(&guard, &children);
    let (applied, changed, _) = apply(
        &guard,
        &stores,
        &ledger,
        children,
        vec![expect("GET /api/v1/namespaces/prod/secrets/sg-credentials", Reply::Status(404))],
    )
    .await;
    assert!(matches!(applied, Err(Error::CredentialsLost { .. })), "{applied:?}");
    assert!(changed.is_empty(), "{changed:?}");
}

/// A child as `Kind name` and its JSON.
fn entry<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> (String, serde_json::Value) {
    (format!("{} {}", K::kind(&()), object.name_any()), serde_json::to_value(object).expect("serializes"))
}

#[tokio::test]
async fn children_not_written_by_this_process_are_read_whole_once_and_left_alone_when_they_hold() {
    let (guard, children) = prepared(MINIMAL, &Directives::default());
    let stores = caches_holding(&children);
    let datastores = children.postgres.iter().chain(&children.redis);
    let mut whole: std::collections::BTreeMap<String, serde_json::Value> = [
        entry(&children.service_account),
        entry(&children.config_map),
        entry(&children.deployment),
        entry(&children.service),
        entry(&children.pdb),
    ]
    .into_iter()
    .chain(datastores.flat_map(|d| [entry(&d.stateful_set), entry(&d.service)]))
    .chain(children.network_policies.iter().map(entry))
    .chain(children.hpa.iter().map(entry))
    .collect();
    let reads: Vec<Exchange> = FIRST_APPLY_OF_MINIMAL
        .iter()
        .filter(|(path, _)| !path.ends_with("/secrets"))
        .map(|(path, object)| expect(&format!("GET {path}"), Reply::Json(whole.remove(*object).expect("a child"))))
        .collect();
    let ledger = Ledger::default();
    let (applied, changed, _) = apply(&guard, &stores, &ledger, children, reads).await;
    applied.expect("applies");
    assert!(changed.is_empty(), "nothing written: {changed:?}");
    assert_eq!(ledger.len(), 12, "every child recorded");

    // Recorded: the next reconcile reads nothing.
    let (_, children) = prepared(MINIMAL, &Directives::default());
    let (applied, changed, _) = apply(&guard, &stores, &ledger, children, vec![]).await;
    applied.expect("applies");
    assert!(changed.is_empty(), "{changed:?}");
}
