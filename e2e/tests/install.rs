//! Installing with kustomize, the schema users see, and invalid SecurityGuards refused by the
//! API server with the path of the offending field.

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use securityguard_e2e::{TempNamespace, admin, install, kubectl, kubectl_ok, repo_root};

#[tokio::test]
async fn config_default_installs_and_explain_shows_our_descriptions() {
    let dir = repo_root().join("config/default");
    // As a user would, twice: the second apply must be a clean no-op.
    for _ in 0..2 {
        kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-k", dir.to_str().expect("utf-8")], None);
    }
    install().await;
    let explain = kubectl_ok(&["explain", "securityguard.spec"], None);
    for expected in [
        "Desired state of one SecurityGuard API installation",
        "Secrets the API needs",
        "Horizontal autoscaling of the API on CPU and memory",
        "The PostgreSQL database: run by the operator",
    ] {
        assert!(explain.contains(expected), "kubectl explain lacks {expected:?}:\n{explain}");
    }
    let explain = kubectl_ok(&["explain", "securityguard.spec.autoscaling.minReplicas"], None);
    assert!(explain.contains("Fewest replicas (default 3"), "{explain}");
    let explain = kubectl_ok(&["explain", "securityguard.spec.monitoring.labels"], None);
    assert!(explain.contains("serviceMonitorSelector"), "{explain}");
    // Short name and printer columns.
    let (ok, out, err) = kubectl(&["get", "sg", "-A"], None);
    assert!(ok, "{err}");
    assert!(out.is_empty() || out.contains("READY"), "{out}");
    let crd = kubectl_ok(
        &[
            "get",
            "crd",
            "securityguards.securityguard.io",
            "-o",
            "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}",
        ],
        None,
    );
    assert_eq!(crd, "Ready Replicas Endpoint Age");
    // Everything in config/rbac and config/manager exists.
    for (kind, name) in [
        ("clusterrole", "securityguard-operator"),
        ("clusterrolebinding", "securityguard-operator"),
        ("-n securityguard-system role", "securityguard-operator-leader-election"),
        ("-n securityguard-system serviceaccount", "securityguard-operator"),
        ("-n securityguard-system deployment", "securityguard-operator"),
    ] {
        let mut args: Vec<&str> = vec!["get"];
        args.extend(kind.split(' '));
        args.push(name);
        kubectl_ok(&args, None);
    }
}

/// Each case: a description, YAML under `spec:` (indented by two), and what the error must say.
const INVALID: &[(&str, &str, &[&str])] = &[
    ("no image", "  secrets: {jwtSecret: {name: j, key: k}}\n", &["spec.image", "Required value"]),
    ("empty image", "  image: \"\"\n  secrets: {jwtSecret: {name: j, key: k}}\n", &["spec.image", "at least 1 chars"]),
    ("no JWT secret", "  image: a:1\n  secrets: {}\n", &["spec.secrets.jwtSecret", "Required value"]),
    (
        "Secret name not a DNS name",
        "  image: a:1\n  secrets: {jwtSecret: {name: Bad_Name, key: k}}\n",
        &["spec.secrets.jwtSecret.name", "should match"],
    ),
    (
        "min above max replicas",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  autoscaling: {minReplicas: 10, maxReplicas: 5}\n",
        &["spec.autoscaling.minReplicas", "minReplicas must not be greater than maxReplicas"],
    ),
    (
        "CPU target above 100 %",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  autoscaling: {targetCpuUtilizationPercentage: 150}\n",
        &["spec.autoscaling.targetCpuUtilizationPercentage", "less than or equal to 100"],
    ),
    (
        "replicas while autoscaling",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  replicas: 4\n",
        &["spec.replicas", "only used when autoscaling is disabled"],
    ),
    (
        "ingress without host",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  ingress: {enabled: true}\n",
        &["spec.ingress.host", "required when ingress is enabled"],
    ),
    (
        "ingress host not a host name",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  ingress: {enabled: true, host: \"Not A Host\"}\n",
        &["spec.ingress.host", "should match"],
    ),
    (
        "zero requests per second",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  ingress: {rateLimit: {requestsPerSecond: 0}}\n",
        &["spec.ingress.rateLimit.requestsPerSecond", "greater than or equal to 1"],
    ),
    (
        "postgres both managed and external",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  postgres: {managed: {}, external: {connectionSecret: {name: db, key: url}}}\n",
        &["spec.postgres", "exactly one of postgres.managed or postgres.external"],
    ),
    (
        "redis neither managed nor external",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {}\n",
        &["spec.redis", "exactly one of redis.managed or redis.external"],
    ),
    (
        "unknown environment",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  config: {environment: prod}\n",
        &["spec.config.environment", "Unsupported value"],
    ),
    (
        "Solana RPC URL not http(s)",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  config: {solanaRpcUrl: \"ftp://rpc.example.com\"}\n",
        &["spec.config.solanaRpcUrl", "absolute http or https URL"],
    ),
    (
        "env overriding a managed variable",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  env: [{name: DATABASE_URL, value: \"postgres://evil\"}]\n",
        &["spec.env", "must not set a variable the operator manages"],
    ),
    (
        "storage not a quantity",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  postgres: {managed: {storage: lots}}\n",
        &["spec.postgres.managed.storage"],
    ),
    (
        "backup schedule with four fields",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {schedule: '0 * * *', s3: {bucket: bkt, credentialsSecret: s3}}\n",
        &["spec.backup.schedule", "five fields"],
    ),
    (
        "backup without bucket",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {credentialsSecret: s3}}\n",
        &["spec.backup.s3.bucket", "Required value"],
    ),
    (
        "restore without backup",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  restore: {requestId: r1}\n",
        &["spec.restore", "restore needs backup"],
    ),
    (
        "restore from a time that is not RFC 3339",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}}\n  restore: {requestId: r1, source: 'before:yesterday'}\n",
        &["spec.restore.source", "RFC 3339"],
    ),
    (
        "restore request id with spaces",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}}\n  restore: {requestId: 'on call'}\n",
        &["spec.restore.requestId", "should match"],
    ),
    (
        "unknown pull policy",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  imagePullPolicy: Sometimes\n",
        &["spec.imagePullPolicy", "Unsupported value"],
    ),
    (
        "redis max memory in the wrong unit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {maxMemory: 1GB}}\n",
        &["spec.redis.managed.maxMemory", "should match"],
    ),
];

#[tokio::test]
async fn invalid_securityguards_are_rejected_with_the_field_path() {
    install().await;
    let client = admin().await;
    let ns = TempNamespace::create(&client, "invalid").await;
    let gvk = GroupVersionKind::gvk("securityguard.io", "v1alpha1", "SecurityGuard");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ApiResource::from_gvk(&gvk));
    assert!(INVALID.len() >= 12);
    let mut failures = Vec::new();
    for (i, (what, spec, expected)) in INVALID.iter().enumerate() {
        let yaml = format!(
            "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata:\n  name: invalid-{i}\nspec:\n{spec}"
        );
        let obj: DynamicObject = serde_saphyr::from_str(&yaml).expect("case parses as YAML");
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(kube::Error::Api(status)) => {
                let message = status.message.clone();
                if status.code != 422 || !expected.iter().all(|e| message.contains(e)) {
                    failures.push(format!("{what}: {} {message:?} lacks {expected:?}", status.code));
                }
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} case(s) not rejected as expected:\n{}", failures.len(), failures.join("\n"));

    // And a valid one is accepted, with the guide's defaults filled in by the API server.
    let obj: DynamicObject = serde_saphyr::from_str(
        "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata: {name: valid}\nspec:\n  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n",
    )
    .expect("parses");
    let created = api.create(&PostParams::default(), &obj).await.expect("valid SecurityGuard accepted");
    let spec = &created.data["spec"];
    assert_eq!(spec["autoscaling"]["minReplicas"], 3);
    assert_eq!(spec["autoscaling"]["maxReplicas"], 20);
    assert_eq!(spec["autoscaling"]["scaleDown"]["stabilizationWindowSeconds"], 300);
    assert_eq!(spec["postgres"]["managed"]["storage"], "10Gi");
    assert_eq!(spec["config"]["environment"], "production");

    // Once created, the data volume's size is fixed: an update changing it is refused.
    let grow = serde_json::json!({"spec": {"postgres": {"managed": {"storage": "20Gi"}}}});
    match api.patch("valid", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&grow)).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("spec.postgres.managed.storage")
                    && status.message.contains("storage cannot change"),
                "{}",
                status.message
            );
        }
        other => panic!("changing the storage of an existing SecurityGuard was not refused: {other:?}"),
    }
    // Other edits still go through.
    let edit = serde_json::json!({"spec": {"image": "a:2"}});
    api.patch("valid", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&edit))
        .await
        .expect("edit accepted");
}
