//! Installing with kustomize, the schema users see, and invalid SecurityGuards refused by the
//! API server with the path of the offending field.

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use securityguard_e2e::fixtures::{GuardFixture, s3};
use securityguard_e2e::{TempNamespace, admin, install, kubectl, kubectl_ok, repo_root};
use securityguard_operator::crd::SecurityGuard;
use securityguard_operator::crd::formats::{CRON_CASES, CRON_REFUSED_TYPOS};

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
        "redis max memory in a Kubernetes unit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {maxMemory: 1Gi}}\n",
        &["spec.redis.managed.maxMemory", "as redis-server reads it"],
    ),
    (
        "redis max memory of zero (no limit for Redis)",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {maxMemory: 0mb}}\n",
        &["spec.redis.managed.maxMemory", "positive size"],
    ),
    (
        "redis max memory above the default container limit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {maxMemory: 1gb}}\n",
        &["spec.redis.managed.maxMemory", "below the memory limit of the Redis container"],
    ),
    (
        "redis max memory equal to its container limit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {maxMemory: 2GB, resources: {limits: {memory: 2Gi}}}}\n",
        &["spec.redis.managed.maxMemory", "below the memory limit"],
    ),
    // Image references, as the kubelet parses them.
    (
        "image with an upper-case path",
        "  image: Ghcr.io/X:1\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        &["spec.image", "image reference"],
    ),
    (
        "image with an empty tag",
        "  image: 'api:'\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        &["spec.image", "image reference"],
    ),
    (
        "image with a space",
        "  image: 'api:1 2'\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        &["spec.image", "image reference"],
    ),
    (
        "image with an empty path component",
        "  image: a//b\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        &["spec.image", "image reference"],
    ),
    (
        "image starting with a separator",
        "  image: '-a'\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        &["spec.image", "image reference"],
    ),
    (
        "image with a short digest",
        "  image: app@sha256:short\n  secrets: {jwtSecret: {name: j, key: k}}\n",
        &["spec.image", "image reference"],
    ),
    ("image with a 129-character tag", LONG_TAG, &["spec.image", "tag of at most 128 characters"]),
    (
        "postgres image with upper case",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  postgres: {managed: {image: 'Postgres:15'}}\n",
        &["spec.postgres.managed.image", "image reference"],
    ),
    (
        "redis image with a trailing space",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {image: 'redis:7 '}}\n",
        &["spec.redis.managed.image", "image reference"],
    ),
    // Container resources, as Kubernetes checks them in a pod template.
    (
        "cpu request not a quantity",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  resources: {requests: {cpu: lots, memory: 1Gi}}\n",
        &["spec.resources.requests[cpu]", "non-negative quantity"],
    ),
    (
        "negative memory limit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  postgres: {managed: {resources: {limits: {memory: -1Gi}}}}\n",
        &["spec.postgres.managed.resources.limits[memory]", "non-negative quantity"],
    ),
    (
        "request above the limit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  resources: {requests: {cpu: 2, memory: 2Gi}, limits: {memory: 1Gi}}\n",
        &["spec.resources.requests", "must not exceed the limit"],
    ),
    (
        "unknown resource name",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {resources: {requests: {gpu: 1}}}}\n",
        &["spec.redis.managed.resources.requests", "resource names must be cpu, memory"],
    ),
    (
        "extended resource without an equal limit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  autoscaling: {enabled: false}\n  resources: {requests: {example.com/gpu: 1}}\n",
        &["spec.resources.limits", "limit equal to their request"],
    ),
    (
        "resource claims",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  autoscaling: {enabled: false}\n  resources: {claims: [{name: gpu}]}\n",
        &["spec.resources.claims", "not supported"],
    ),
    (
        "autoscaling without a cpu request",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  resources: {requests: {memory: 1Gi}}\n",
        &["spec.resources", "request (or limit) cpu and memory while autoscaling"],
    ),
    (
        "zero storage",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  redis: {managed: {storage: 0}}\n",
        &["spec.redis.managed.storage", "positive quantity"],
    ),
    (
        "local backup volume of no size",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, local: {size: 0Gi}}\n",
        &["spec.backup.local.size", "positive quantity"],
    ),
    // Recovery targets that are not durations.
    (
        "recovery time target without a unit",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, verify: {targets: {recoveryTime: '15'}}}\n",
        &["spec.backup.verify.targets.recoveryTime", "must be a duration of at least 1s such as 15m, 1h or 1h30m"],
    ),
    (
        "recovery point target with the units out of order",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, verify: {targets: {recoveryPoint: 30m1h}}}\n",
        &["spec.backup.verify.targets.recoveryPoint", "(d, h, m, s), in that order"],
    ),
    (
        "recovery point target of zero",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, verify: {targets: {recoveryPoint: 0h}}}\n",
        &["spec.backup.verify.targets.recoveryPoint", "at least 1s"],
    ),
    // Cron fields out of range (more in `cron_schedules_agree_with_the_cronjob_controller`).
    (
        "backup at minute 60",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {schedule: '60 * * * *', s3: {bucket: bkt, credentialsSecret: s3}}\n",
        &["spec.backup.schedule", "field 1 (minute) must be * or 0-59"],
    ),
    (
        "drill at hour 24",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, verify: {schedule: '0 24 * * *'}}\n",
        &["spec.backup.verify.schedule", "field 2 (hour) must be * or 0-23"],
    ),
    (
        "log archive on day 7 of the week",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, logArchive: {schedule: '0 4 * * 7'}}\n",
        &["spec.backup.logArchive.schedule", "field 5 (day of week) must be * or 0-6 or SUN-SAT"],
    ),
    (
        "backup in month 13",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {schedule: '0 0 1 13 *', s3: {bucket: bkt, credentialsSecret: s3}}\n",
        &["spec.backup.schedule", "field 4 (month) must be * or 1-12 or JAN-DEC"],
    ),
    (
        "backup range ending before it starts",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {schedule: '0 0 20-10 * *', s3: {bucket: bkt, credentialsSecret: s3}}\n",
        &["spec.backup.schedule", "field 3 (day of month)", "a range a-b with a <= b"],
    ),
    // Restore times that do not exist.
    (
        "restore before month 13",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}}\n  restore: {requestId: r1, source: 'before:2026-13-45T25:61:00Z'}\n",
        &["spec.restore.source", "RFC 3339 time that exists"],
    ),
    (
        "restore before 29 February of a common year",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}}\n  restore: {requestId: r1, source: 'before:2100-02-29T00:00:00Z'}\n",
        &["spec.restore.source", "RFC 3339 time that exists"],
    ),
    // Names Kubernetes checks when the operator creates the children.
    (
        "StorageClass not a DNS name",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  postgres: {managed: {storageClassName: Fast_SSD}}\n",
        &["spec.postgres.managed.storageClassName", "should match"],
    ),
    (
        "IngressClass not a DNS name",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  ingress: {className: Nginx_Class}\n",
        &["spec.ingress.className", "should match"],
    ),
    (
        "Ingress annotation key with a space",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  ingress: {annotations: {'my key': x}}\n",
        &["spec.ingress.annotations", "valid Kubernetes annotation keys"],
    ),
    (
        "environment variable name with =",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  env: [{name: 'A=B', value: x}]\n",
        &["spec.env", "printable ASCII characters other than '='"],
    ),
    // Server-side encryption: a KMS key with SSE-KMS, and only then.
    (
        "SSE-KMS without a KMS key",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3, serverSideEncryption: {type: SSE-KMS}}}\n",
        &["spec.backup.s3.serverSideEncryption.kmsKeyId", "kmsKeyId is required with type SSE-KMS"],
    ),
    (
        "SSE-S3 with a KMS key",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3, serverSideEncryption: {type: SSE-S3, kmsKeyId: alias/x}}}\n",
        &["spec.backup.s3.serverSideEncryption.kmsKeyId", "only allowed with it"],
    ),
    (
        "server-side encryption named as the header value",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3, serverSideEncryption: {type: AES256}}}\n",
        &["spec.backup.s3.serverSideEncryption.type", "Unsupported value"],
    ),
    (
        "client-side encryption without its key Secret",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: s3}, encryption: {}}\n",
        &["spec.backup.encryption.keySecret", "Required value"],
    ),
    (
        "S3 credentials Secret not a DNS name",
        "  image: a:1\n  secrets: {jwtSecret: {name: j, key: k}}\n  backup: {s3: {bucket: bkt, credentialsSecret: S3_Creds}}\n",
        &["spec.backup.s3.credentialsSecret", "should match"],
    ),
];

/// An image whose tag is one character too long.
const LONG_TAG: &str = concat!(
    "  image: 'api:",
    "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt",
    "'\n  secrets: {jwtSecret: {name: j, key: k}}\n"
);

/// Valid values next to the refused ones: each is accepted. YAML under `spec:`, after the
/// image and the JWT secret.
const VALID: &[(&str, &str)] = &[
    (
        "recovery targets in days, hours, minutes and seconds",
        "  backup: {s3: {bucket: bkt, credentialsSecret: s3}, verify: {targets: {recoveryTime: 1h30m, recoveryPoint: 1d2h3m4s}}}\n",
    ),
    ("official image with a tag", "  postgres: {managed: {image: 'postgres:15'}}\n"),
    (
        "image on a registry with a port and a digest",
        "  redis: {managed: {image: 'localhost:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'}}\n",
    ),
    (
        "image without a tag on a registry with a path",
        "  postgres: {managed: {image: registry.example.com/team/app}}\n",
    ),
    ("upper-case registry host", "  postgres: {managed: {image: 'Registry.Example.com/team/app:V1'}}\n"),
    (
        "integer quantities",
        "  resources: {requests: {cpu: 1, memory: 1073741824}, limits: {cpu: 2}}\n  postgres: {managed: {storage: 10737418240}}\n",
    ),
    (
        "request equal to the limit",
        "  resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: '0.5', memory: 1024Mi}}\n",
    ),
    ("limits only (requests default to them)", "  resources: {limits: {cpu: 1, memory: 1Gi}}\n"),
    (
        "extended resource with an equal limit",
        "  autoscaling: {enabled: false}\n  resources: {requests: {example.com/gpu: 1}, limits: {example.com/gpu: 1}}\n",
    ),
    (
        "no resources needed without autoscaling",
        "  autoscaling: {enabled: false}\n  resources: {requests: {ephemeral-storage: 1Gi}}\n",
    ),
    (
        "redis max memory in Redis' own units",
        "  redis: {managed: {maxMemory: 1GB, resources: {limits: {memory: 2Gi}}}}\n",
    ),
    (
        "redis max memory without a container limit",
        "  redis: {managed: {maxMemory: 8gb, resources: {requests: {memory: 1Gi}}}}\n",
    ),
    (
        "restore before a leap day with an offset",
        "  backup: {s3: {bucket: bkt, credentialsSecret: s3}}\n  restore: {requestId: r1, source: 'before:2024-02-29T23:59:59.123456789+05:30'}\n",
    ),
    (
        "restore of a key",
        "  backup: {s3: {bucket: bkt, credentialsSecret: s3}}\n  restore: {requestId: r1, source: 'securityguard/ns/sg/2026/11/25/090000.pgdump'}\n",
    ),
    (
        "SSE-KMS with a key alias, and client-side encryption",
        "  backup: {s3: {bucket: bkt, credentialsSecret: s3, serverSideEncryption: {type: SSE-KMS, kmsKeyId: alias/backups}}, encryption: {keySecret: {name: backup-key, key: keys}}}\n",
    ),
    ("SSE-S3", "  backup: {s3: {bucket: bkt, credentialsSecret: s3, serverSideEncryption: {type: SSE-S3}}}\n"),
    (
        "annotation keys with a prefix",
        "  ingress: {className: nginx, annotations: {cert-manager.io/cluster-issuer: letsencrypt, custom: x}}\n",
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

    // What resembles the refused values but is valid goes through.
    for (i, (what, spec)) in VALID.iter().enumerate() {
        let yaml = format!(
            "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata:\n  name: valid-{i}\nspec:\n  image: a:1\n  secrets: {{jwtSecret: {{name: j, key: k}}}}\n{spec}"
        );
        let obj: DynamicObject = serde_saphyr::from_str(&yaml).expect("case parses as YAML");
        if let Err(e) = api.create(&PostParams::default(), &obj).await {
            failures.push(format!("{what}: {e}"));
        }
    }
    // And so do the examples.
    for example in ["examples/minimal.yaml", "examples/full.yaml"] {
        let path = repo_root().join(example);
        let (ok, _, err) =
            kubectl(&["-n", &ns.name, "apply", "--dry-run=server", "-f", path.to_str().expect("utf-8")], None);
        if !ok {
            failures.push(format!("{example}: {err}"));
        }
    }
    assert!(failures.is_empty(), "{} valid case(s) refused:\n{}", failures.len(), failures.join("\n"));

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

/// Every schedule of the shared table, as a backup schedule of a SecurityGuard and as the
/// schedule of a CronJob (server-side dry run): the CRD accepts exactly the valid ones, the
/// CronJob controller's parser accepts them too, and each refused one is refused by the
/// CronJob controller or by the operator's own parser, but for a few typos refused on purpose.
#[tokio::test]
async fn cron_schedules_agree_with_the_cronjob_controller() {
    install().await;
    let client = admin().await;
    let ns = TempNamespace::create(&client, "cron").await;
    let gvk = GroupVersionKind::gvk("securityguard.io", "v1alpha1", "SecurityGuard");
    let guards: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ApiResource::from_gvk(&gvk));
    let cron_jobs: Api<k8s_openapi::api::batch::v1::CronJob> = Api::namespaced(client.clone(), &ns.name);
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    let mut failures = Vec::new();
    let typos = CRON_REFUSED_TYPOS.iter().map(|s| (*s, false));
    for (i, (schedule, valid)) in CRON_CASES.iter().copied().chain(typos).enumerate() {
        let guard = SecurityGuard::test(&format!("cron-{i}"))
            .image("a:1")
            .jwt_secret("j", "k")
            .backup(s3("bkt", "s3"))
            .backup_schedule(schedule);
        let guard: DynamicObject =
            serde_json::from_value(serde_json::to_value(guard).expect("serialises")).expect("a SecurityGuard");
        match (guards.create(&dry_run, &guard).await, valid) {
            (Ok(_), true) => {}
            (Err(kube::Error::Api(status)), false)
                if status.code == 422 && status.message.contains("spec.backup.schedule") => {}
            (outcome, _) => failures.push(format!("SecurityGuard with {schedule:?} (valid: {valid}): {outcome:?}")),
        }
        let cron_job: k8s_openapi::api::batch::v1::CronJob = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("cron-{i}")},
            "spec": {
                "schedule": schedule,
                "timeZone": "Etc/UTC",
                "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "a:1"}],
                }}}},
            },
        }))
        .expect("a CronJob");
        let kubernetes_accepts = cron_jobs.create(&dry_run, &cron_job).await.is_ok();
        let operator_accepts = securityguard_operator::crd::schedule::parse(schedule).is_ok();
        if valid && !kubernetes_accepts {
            failures.push(format!("CronJob refuses {schedule:?}, which the CRD accepts"));
        }
        if !valid && kubernetes_accepts && operator_accepts && !CRON_REFUSED_TYPOS.contains(&schedule) {
            failures.push(format!("{schedule:?} is refused by the CRD but both parsers accept it"));
        }
    }
    assert!(failures.is_empty(), "{} schedule(s) disagree:\n{}", failures.len(), failures.join("\n"));
}
