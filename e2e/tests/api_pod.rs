//! The API Deployment's pod run as its image runs it. The image cannot be built here (no
//! container engine), so its contract is read from `api-server/Dockerfile`'s final stage: its
//! user, port, environment and entrypoint must agree with the pod template the operator
//! builds, and the API binary, started as that user with the pod's environment resolved as the
//! kubelet resolves it (image ENV, then the ConfigMap of `envFrom`, then the container's own
//! variables with their Secret references and `$(VAR)` expansion), must pass the pod's startup,
//! liveness and readiness probes and serve `/metrics` on the probed port, against the real
//! PostgreSQL and Redis, without writing the JWT secret to its logs.
//!
//! Needs the control plane (`SG_CONTROLPLANE_DIR`), the operator and API binaries
//! (`cargo build -p securityguard-operator -p securityguard-api`) and PostgreSQL and Redis
//! (`scripts/services/start.sh`: `SG_TEST_DATABASE_URL`, `SG_TEST_REDIS_URL`, `SG_PG_BIN`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use securityguard_e2e::kubelet::{resolve_env, temp_path};
use securityguard_e2e::local::{Database, Process, api_binary, env, free_port};
use securityguard_e2e::{JWT, Operator, OperatorOptions, TempNamespace, admin, eventually, kubectl_ok, repo_root};

const GUARD: &str = "pod";

/// What the final stage of a Dockerfile says about the container it makes.
#[derive(Debug, Default)]
struct Image {
    user: Option<String>,
    env: Vec<(String, String)>,
    expose: Vec<u16>,
    entrypoint: Vec<String>,
}

/// The instructions of the last stage (after the last FROM), continuation lines joined.
fn final_stage(dockerfile: &str) -> Image {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = logical.iter().rposition(|l| l.to_ascii_uppercase().starts_with("FROM ")).expect("a FROM line");
    let mut image = Image::default();
    for line in &logical[last_from + 1..] {
        let (instruction, args) = line.split_once(' ').unwrap_or((line, ""));
        let args = args.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "USER" => image.user = Some(args.to_owned()),
            "ENV" => {
                for pair in args.split_whitespace() {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("ENV {pair}: only K=V is read"));
                    image.env.push((k.to_owned(), v.trim_matches('"').to_owned()));
                }
            }
            "EXPOSE" => image.expose.extend(
                args.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap_or_else(|_| panic!("EXPOSE {p}"))),
            ),
            "ENTRYPOINT" => {
                image.entrypoint = serde_json::from_str(args).unwrap_or_else(|e| panic!("ENTRYPOINT {args}: {e}"))
            }
            _ => {}
        }
    }
    image
}

/// The environment variables the API binary reads: every `[env: NAME]` of its `--help`, and
/// RUST_LOG (the log filter).
fn api_variables() -> Vec<String> {
    let help = Command::new(api_binary()).arg("--help").output().expect("securityguard-api --help");
    let text = String::from_utf8_lossy(&help.stdout);
    let mut names: Vec<String> =
        text.split("[env: ").skip(1).filter_map(|rest| rest.split([']', '=']).next().map(str::to_owned)).collect();
    assert!(names.iter().any(|n| n == "DATABASE_URL"), "no variables in --help: {text}");
    names.push("RUST_LOG".to_owned());
    names
}

/// The port a probe targets, by name or number, as a number of the container.
fn probe_port(container: &Container, probe: &Probe) -> i32 {
    let port = &probe.http_get.as_ref().expect("an HTTP probe").port;
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("probe port {name} is not a container port"))
                .container_port
        }
    }
}

#[tokio::test]
async fn the_api_pod_runs_as_its_image_and_passes_its_probes() {
    let image = final_stage(
        &std::fs::read_to_string(repo_root().join("api-server/Dockerfile")).expect("read api-server/Dockerfile"),
    );

    let client = admin().await;
    let ns = TempNamespace::create(&client, "apipod").await;
    let ns = ns.name.as_str();
    let _operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;
    let db = Database::create("sg_api_pod");
    securityguard_e2e::secret(ns, "jwt", "secret", JWT);
    securityguard_e2e::secret(ns, "db", "url", &db.url());
    securityguard_e2e::secret(ns, "cache", "url", &env("SG_TEST_REDIS_URL"));
    let yaml = format!(
        "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata: {{name: {GUARD}, namespace: {ns}}}\n\
         spec:\n  image: securityguard/api:e2e\n  secrets: {{jwtSecret: {{name: jwt, key: secret}}}}\n\
         \x20 autoscaling: {{enabled: false}}\n  replicas: 1\n\
         \x20 config: {{environment: staging, logLevel: info}}\n\
         \x20 env: [{{name: REDIS_KEY_PREFIX, value: 'apipod:{ns}:'}}]\n\
         \x20 postgres: {{external: {{connectionSecret: {{name: db, key: url}}}}}}\n\
         \x20 redis: {{external: {{connectionSecret: {{name: cache, key: url}}}}}}\n"
    );
    kubectl_ok(&["apply", "-f", "-"], Some(&yaml));

    let name = format!("{GUARD}-api");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = eventually("the API Deployment", Duration::from_secs(60), || {
        let (deployments, name) = (deployments.clone(), name.clone());
        async move { deployments.get_opt(&name).await.ok().flatten() }
    })
    .await;
    let pod = deployment.spec.expect("spec").template.spec.expect("pod spec");
    let container = pod.containers.first().expect("a container").clone();

    // The image's user is the pod's.
    let user = image.user.as_deref().expect("the image sets USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let (uid, gid): (u32, u32) = (uid.parse().expect("numeric uid"), gid.parse().expect("numeric gid"));
    let security = pod.security_context.expect("pod security context");
    assert_eq!(security.run_as_user, Some(i64::from(uid)), "runAsUser is the image's USER");
    assert_eq!(security.run_as_group, Some(i64::from(gid)), "runAsGroup is the image's USER group");
    assert_eq!(security.run_as_non_root, Some(true));

    // The container port named http is the one the image exposes.
    let http = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some("http")).expect("port http");
    assert_eq!(image.expose, vec![u16::try_from(http.container_port).expect("port")], "EXPOSE");
    assert!(container.command.is_none() && container.args.is_none(), "the image's ENTRYPOINT runs unchanged");
    assert_eq!(
        image.entrypoint.first().and_then(|e| e.rsplit('/').next()),
        Some("securityguard-api"),
        "the image runs the API binary"
    );

    // The environment, in the kubelet's order: image, envFrom ConfigMap, env.
    let mut vars: BTreeMap<String, String> = image.env.iter().cloned().collect();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for source in container.env_from.iter().flatten() {
        let cm = source.config_map_ref.as_ref().expect("envFrom a ConfigMap");
        let found = config_maps.get(&cm.name).await.unwrap_or_else(|e| panic!("ConfigMap {}: {e}", cm.name));
        vars.extend(found.data.unwrap_or_default());
    }
    vars.extend(resolve_env(&client, ns, &container).await);
    let known = api_variables();
    let unknown: Vec<&String> = vars.keys().filter(|k| !known.contains(k)).collect();
    assert!(unknown.is_empty(), "the pod sets variables the API does not read: {unknown:?} (reads {known:?})");
    assert_eq!(vars.get("ENVIRONMENT").map(String::as_str), Some("staging"));
    assert_eq!(vars.get("DATABASE_URL"), Some(&db.url()));

    // The pod's own network namespace: the API listens on its container port there; here that
    // port is mapped to a free one on loopback.
    let listen = vars.get("LISTEN_ADDR").expect("LISTEN_ADDR is set").clone();
    assert_eq!(listen, format!("0.0.0.0:{}", http.container_port), "the API listens on the container port");
    let port = free_port();
    vars.insert("LISTEN_ADDR".to_owned(), format!("127.0.0.1:{port}"));

    // The binary as the image's user (it must not need root or a writable home), from a
    // directory that user can read.
    let dir = temp_path("api-pod");
    std::fs::create_dir_all(&dir).expect("create dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let binary = dir.join("securityguard-api");
    std::fs::copy(api_binary(), &binary).expect("copy the API binary");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let log_path = dir.join("stdout.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    std::fs::set_permissions(&log_path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut cmd = Command::new(&binary);
    cmd.env_clear().envs(&vars).current_dir("/").stdout(log).stderr(Stdio::inherit());
    // SAFETY: geteuid has no preconditions. As root the test can switch to the image's user;
    // otherwise it already runs as a non-root user.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(uid).gid(gid);
    }
    let mut api = Process::spawn(cmd);

    let http_client = reqwest::Client::new();
    for (what, probe) in [
        ("startup", &container.startup_probe),
        ("liveness", &container.liveness_probe),
        ("readiness", &container.readiness_probe),
    ] {
        let probe = probe.as_ref().unwrap_or_else(|| panic!("a {what} probe"));
        assert_eq!(probe_port(&container, probe), http.container_port, "the {what} probe targets port http");
        let path = probe.http_get.as_ref().and_then(|g| g.path.clone()).expect("probe path");
        let url = format!("http://127.0.0.1:{port}{path}");
        eventually(&format!("the {what} probe {path} answers 200"), Duration::from_secs(60), || {
            let (http_client, url) = (http_client.clone(), url.clone());
            async move { http_client.get(&url).send().await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        })
        .await;
    }
    let metrics = http_client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("GET /metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("metrics text");
    assert!(text.contains("securityguard_http_requests_total{"), "{text}");
    let detailed = http_client
        .get(format!("http://127.0.0.1:{port}/health/detailed"))
        .send()
        .await
        .expect("GET /health/detailed")
        .text()
        .await
        .expect("body");
    let detailed: serde_json::Value = serde_json::from_str(&detailed).expect("JSON");
    assert_eq!(detailed["environment"], "staging", "{detailed}");

    api.stop();
    let logs = std::fs::read_to_string(&log_path).expect("read the API's log");
    assert!(logs.contains("securityguard_api::access"), "access lines in the log: {logs}");
    assert!(!logs.contains(JWT), "the JWT secret is not logged");
    let _ = std::fs::remove_dir_all(&dir);
}
