//! The operator as deployed: watching every namespace, with the ServiceAccount and ClusterRole
//! of `config/rbac`. (Its own test binary: cargo runs test binaries one after another, so this
//! cluster-wide operator never meets the namespace-scoped ones of the other tests.)

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, kubectl, kubectl_ok, repo_root, secret, volumes_for_guard,
    wait_for,
};
use securityguard_operator::crd::SecurityGuard;

#[tokio::test]
async fn cluster_wide_operator_with_its_own_service_account() {
    let client = admin().await;
    let first = TempNamespace::create(&client, "wide-a").await;
    let second = TempNamespace::create(&client, "wide-b").await;
    let options = OperatorOptions {
        namespace: None,
        lease_name: "securityguard-operator".to_owned(),
        ..OperatorOptions::for_namespace("wide")
    };
    let operator = Operator::start(&options).await;

    // The ServiceAccount has no more than it needs: it may list and watch Pods (a finished Job's
    // outcome, the API pods during a restore, why pods fail) and list ReplicaSets (which pods a
    // rollout replaces) but not read the pods' logs, delete Secrets, or bind any role but the
    // backup pods' two.
    let sa = "system:serviceaccount:securityguard-system:securityguard-operator";
    for (verb, resource, expected) in [
        ("list", "securityguards.securityguard.io", "yes"),
        ("patch", "securityguards.securityguard.io/status", "yes"),
        ("update", "securityguards.securityguard.io", "no"),
        ("patch", "deployments.apps", "yes"),
        ("list", "pods", "yes"),
        ("watch", "pods", "yes"),
        ("get", "pods", "no"),
        ("delete", "pods", "no"),
        ("get", "pods/log", "no"),
        ("list", "replicasets.apps", "yes"),
        ("watch", "replicasets.apps", "no"),
        ("patch", "replicasets.apps", "no"),
        ("create", "jobs.batch", "yes"),
        ("patch", "jobs.batch", "no"),
        ("bind", "clusterroles.rbac.authorization.k8s.io#securityguard-backup", "yes"),
        ("bind", "clusterroles.rbac.authorization.k8s.io#cluster-admin", "no"),
        ("delete", "secrets", "no"),
        ("update", "secrets", "no"),
        ("create", "clusterroles.rbac.authorization.k8s.io", "no"),
        // spec.monitoring: its two definitions watched by name, no other definition read, none
        // written (prometheus-operator's kinds themselves: below, as they may not be installed).
        ("watch", "customresourcedefinitions.apiextensions.k8s.io#servicemonitors.monitoring.coreos.com", "yes"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io#prometheusrules.monitoring.coreos.com", "yes"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io#securityguards.securityguard.io", "no"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", "no"),
        ("patch", "customresourcedefinitions.apiextensions.k8s.io#servicemonitors.monitoring.coreos.com", "no"),
    ] {
        let mut args = vec!["auth", "can-i", verb, "--as", sa, "-A"];
        // `kind/sub` is a subresource, `kind#name` one object.
        let named = resource.replace('#', "/");
        match resource.split_once('/') {
            Some((resource, sub)) => args.extend([resource, "--subresource", sub]),
            None => args.push(&named),
        }
        let (_, out, _) = kubectl(&args, None);
        assert_eq!(out.trim(), expected, "can the operator {verb} {resource}?");
    }

    // prometheus-operator's kinds like any child. Asked with a SubjectAccessReview naming the
    // group: `kubectl auth can-i` needs the kinds installed, and another test installs and
    // removes them.
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    for (verb, resource, expected) in
        [("patch", "servicemonitors", true), ("delete", "prometheusrules", true), ("update", "prometheusrules", false)]
    {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(sa.to_owned()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some("monitoring.coreos.com".to_owned()),
                    resource: Some(resource.to_owned()),
                    verb: Some(verb.to_owned()),
                    namespace: Some(first.name.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = reviews.create(&PostParams::default(), &review).await.expect("access review");
        let allowed = answer.status.is_some_and(|s| s.allowed);
        assert_eq!(allowed, expected, "can the operator {verb} {resource}.monitoring.coreos.com?");
    }

    for ns in [&first.name, &second.name] {
        secret(ns, "securityguard-jwt", "secret", JWT);
        volumes_for_guard(ns, "minimal");
        kubectl_ok(
            &["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")],
            None,
        );
    }
    for ns in [&first.name, &second.name] {
        let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
        wait_for(guards, "minimal", Duration::from_secs(120), |g| {
            g.status.as_ref().and_then(|s| s.condition("Ready")).is_some_and(|c| c.status == "True")
        })
        .await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        assert!(deployments.get_opt("minimal-api").await.expect("get").is_some());
    }
    assert!(operator.is_leader().await);
    let printed = kubectl_ok(&["-n", &first.name, "get", "sg", "minimal"], None);
    assert!(
        printed.contains("True") && printed.contains(&format!("http://minimal-api.{}.svc:80", first.name)),
        "{printed}"
    );
}
