//! Harness of the end-to-end tests: a local control plane (started by `just e2e` through
//! `e2e/controlplane/up.sh`), temporary namespaces, operator processes, and waiting on watches.
//!
//! The tests need `SG_CONTROLPLANE_DIR` (the state directory of `up.sh`) and the operator
//! binary built (`cargo build -p securityguard-operator`); `just e2e` does both.

pub mod checks;
pub mod fixtures;
pub mod kubelet;
pub mod local;
pub mod node;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

pub mod backups;

/// Namespace of the operator's ServiceAccount, Role and Lease (from `config/`).
pub const OPERATOR_NAMESPACE: &str = "securityguard-system";
/// The operator's ServiceAccount (from `config/rbac`).
pub const OPERATOR_SERVICE_ACCOUNT: &str = "securityguard-operator";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The control plane's state directory.
pub fn controlplane_dir() -> PathBuf {
    if let Some(dir) = node::SELECTED.get() {
        return dir.clone();
    }
    PathBuf::from(std::env::var("SG_CONTROLPLANE_DIR").unwrap_or_else(|_| {
        panic!(
            "SG_CONTROLPLANE_DIR is not set: start the control plane with `just e2e` (or e2e/controlplane/up.sh DIR)"
        )
    }))
}

/// The administrator kubeconfig.
pub fn admin_kubeconfig() -> PathBuf {
    controlplane_dir().join("kubeconfig")
}

/// Runs kubectl as administrator; returns (success, stdout, stderr).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", admin_kubeconfig())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).expect("write kubectl stdin");
    }
    let out = child.wait_with_output().expect("kubectl finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl as administrator and panics with its output when it fails.
pub fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = kubectl(args, stdin);
    assert!(ok, "kubectl {} failed:\n{out}\n{err}", args.join(" "));
    out
}

async fn client_from(kubeconfig: &Path) -> Client {
    let options = kube::config::KubeConfigOptions::default();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig readable");
    let config = Config::from_custom_kubeconfig(kc, &options).await.expect("kubeconfig valid");
    Client::try_from(config).expect("client builds")
}

/// An administrator client.
pub async fn admin() -> Client {
    client_from(&admin_kubeconfig()).await
}

static INSTALLED: OnceCell<()> = OnceCell::const_new();

/// Installs `config/default` (CRD, RBAC, manager) once per test process, as a user would.
pub async fn install() {
    INSTALLED
        .get_or_init(|| async {
            let dir = repo_root().join("config/default");
            kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-k", dir.to_str().expect("utf-8 path")], None);
            kubectl_ok(
                &["wait", "--for=condition=Established", "crd/securityguards.securityguard.io", "--timeout=60s"],
                None,
            );
        })
        .await;
}

/// Annotations that send a namespace's pods to the kwok nodes: the `PodNodeSelector` and
/// `PodTolerationRestriction` admission plugins add the node selector and the toleration of
/// kwok's taint to every pod created in it.
pub const KWOK_NAMESPACE_ANNOTATIONS: [(&str, &str); 2] = [
    ("scheduler.alpha.kubernetes.io/node-selector", "type=kwok"),
    (
        "scheduler.alpha.kubernetes.io/defaultTolerations",
        r#"[{"key":"kwok.x-k8s.io/node","operator":"Exists","effect":"NoSchedule"}]"#,
    ),
];

/// [`KWOK_NAMESPACE_ANNOTATIONS`] as object metadata.
pub fn kwok_namespace_annotations() -> BTreeMap<String, String> {
    KWOK_NAMESPACE_ANNOTATIONS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace for one test, labelled for Pod Security `restricted`. Deleted on drop unless
/// `KEEP` is set. On the kwok control plane its pods go to the kwok nodes (the namespace
/// tolerates their taint and selects them: [`KWOK_NAMESPACE_ANNOTATIONS`]); in a test of the
/// real node ([`node::select`]) they run on the real node.
pub struct TempNamespace {
    /// Its name.
    pub name: String,
}

impl TempNamespace {
    /// Creates `sg-<prefix>-<pid>-<n>` and waits for its default ServiceAccount.
    pub async fn create(client: &Client, prefix: &str) -> Self {
        let name = format!("sg-{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([
                    ("pod-security.kubernetes.io/enforce".to_owned(), "restricted".to_owned()),
                    ("pod-security.kubernetes.io/enforce-version".to_owned(), "latest".to_owned()),
                ])),
                annotations: node::SELECTED.get().is_none().then(kwok_namespace_annotations),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace created");
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(sa, "default", Duration::from_secs(60), |s: &ServiceAccount| s.metadata.name.is_some()).await;
        Self { name }
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        if std::env::var_os("KEEP").is_some() {
            eprintln!("KEEP is set: namespace {} kept", self.name);
            return;
        }
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

/// Waits on a watch until the named object satisfies `condition`; on timeout, panics showing the
/// object as it last was.
pub async fn wait_for<K>(api: Api<K>, name: &str, timeout: Duration, condition: impl Fn(&K) -> bool) -> K
where
    K: Clone + std::fmt::Debug + Send + DeserializeOwned + Resource<DynamicType = ()> + serde::Serialize + 'static,
{
    let cond = move |obj: Option<&K>| obj.is_some_and(&condition);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => unreachable!("the condition requires the object"),
        Ok(Err(e)) => panic!("watching {name}: {e}"),
        Err(_) => {
            let current = api.get_opt(name).await.ok().flatten();
            panic!(
                "timed out after {timeout:?} waiting for {} {name}; it is now:\n{}",
                K::kind(&()),
                current
                    .map(|c| serde_json::to_string_pretty(&c).unwrap_or_default())
                    .unwrap_or_else(|| "absent".into())
            )
        }
    }
}

/// Waits on a watch until the named object is gone.
pub async fn wait_deleted<K>(api: Api<K>, name: &str, timeout: Duration)
where
    K: Clone + std::fmt::Debug + Send + DeserializeOwned + Resource<DynamicType = ()> + 'static,
{
    let cond = |obj: Option<&K>| obj.is_none();
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("watching {name}: {e}"),
        Err(_) => panic!("timed out after {timeout:?} waiting for {} {name} to be deleted", K::kind(&())),
    }
}

/// Polls `check` until it returns `Some`, for conditions no single watch expresses (a metric,
/// several objects). Panics with `what` on timeout.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A kubeconfig authenticating as the operator's ServiceAccount (a TokenRequest token), so the
/// operator runs with exactly the permissions `config/rbac` grants.
pub fn service_account_kubeconfig() -> PathBuf {
    token_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)
}

/// A kubeconfig authenticating as the ServiceAccount `ns/name` (a TokenRequest token).
pub fn token_kubeconfig(ns: &str, name: &str) -> PathBuf {
    let token = kubectl_ok(&["create", "token", name, "-n", ns, "--duration=2h"], None);
    let dir = controlplane_dir();
    let server = std::fs::read_to_string(dir.join("env"))
        .expect("control plane env file")
        .lines()
        .find_map(|l| l.strip_prefix("SG_APISERVER=").map(str::to_owned))
        .expect("SG_APISERVER in env file");
    let file = if (ns, name) == (OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT) {
        format!("operator-sa-{}.kubeconfig", std::process::id())
    } else {
        format!("sa-{ns}-{name}.kubeconfig")
    };
    let path = dir.join(file);
    let body = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority: {}\n\
         users:\n- name: {name}\n  user:\n    token: {}\ncontexts:\n- name: local\n  context: {{cluster: local, user: {name}}}\ncurrent-context: local\n",
        dir.join("pki/ca.crt").display(),
        token.trim()
    );
    std::fs::write(&path, body).expect("write kubeconfig");
    path
}

/// The operator binary built by `cargo build -p securityguard-operator`.
pub fn operator_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SG_OPERATOR_BIN") {
        return PathBuf::from(path);
    }
    // Tests run from target/<profile>/deps/, binaries from target/<profile>/.
    let exe = std::env::current_exe().expect("test executable path");
    let candidates: Vec<PathBuf> =
        exe.ancestors().skip(1).take(2).map(|dir| dir.join("securityguard-operator")).collect();
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "{} not found: run `cargo build -p securityguard-operator` first (just e2e does)",
            candidates[0].display()
        )
    })
}

/// How to start an operator process.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// Watch only this namespace (None: cluster-wide).
    pub namespace: Option<String>,
    /// Lease name (tests use their own so that they do not compete).
    pub lease_name: String,
    /// Lease duration in seconds.
    pub lease_seconds: u64,
    /// Resync period in seconds.
    pub resync_seconds: u64,
    /// Identity in the Lease.
    pub identity: String,
}

impl OperatorOptions {
    /// An operator for one test namespace with its own Lease.
    pub fn for_namespace(ns: &str) -> Self {
        Self {
            namespace: Some(ns.to_owned()),
            lease_name: format!("e2e-{ns}"),
            lease_seconds: 15,
            resync_seconds: 300,
            identity: format!("{ns}-operator"),
        }
    }
}

/// An operator process running with the ServiceAccount's token. Killed on drop.
pub struct Operator {
    child: Child,
    /// Base URL of its /metrics, /healthz, /readyz.
    pub http: String,
    /// Its identity.
    pub identity: String,
    log: PathBuf,
}

impl Operator {
    /// Starts the operator and waits until /readyz answers.
    pub async fn start(options: &OperatorOptions) -> Self {
        install().await;
        let kubeconfig = service_account_kubeconfig();
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let log = controlplane_dir().join(format!("operator-{}.log", options.identity));
        let log_file = std::fs::File::create(&log).expect("operator log file");
        let mut cmd = Command::new(operator_binary());
        cmd.arg("run")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .env("SG_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("SG_LEASE_NAME", &options.lease_name)
            .env("SG_LEASE_SECONDS", options.lease_seconds.to_string())
            .env("SG_RESYNC_SECONDS", options.resync_seconds.to_string())
            .env("POD_NAMESPACE", OPERATOR_NAMESPACE)
            .env("POD_NAME", &options.identity)
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(ns) = &options.namespace {
            cmd.env("WATCH_NAMESPACE", ns);
        }
        // The operator dies with the test even if the test process is killed.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("operator starts");
        let op = Self { child, http: format!("http://127.0.0.1:{port}"), identity: options.identity.clone(), log };
        let url = format!("{}/readyz", op.http);
        eventually("the operator's /readyz", Duration::from_secs(30), || async {
            reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
        op
    }

    /// The text of its /metrics.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.http))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics body")
    }

    /// Parsed samples of its /metrics: (name with labels) -> value.
    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        parse_metrics(&self.metrics_text().await)
    }

    /// Writes (create, update, patch, delete) to child kinds and status, by `verb resource`;
    /// Leases (leader election) and Events are left out.
    pub async fn writes(&self) -> BTreeMap<String, f64> {
        self.metrics()
            .await
            .into_iter()
            .filter_map(|(k, v)| {
                let labels = k.strip_prefix("securityguard_operator_kube_api_requests_total{")?;
                let verb = label(labels, "verb")?;
                let resource = label(labels, "resource")?;
                let write = matches!(verb.as_str(), "create" | "update" | "patch" | "delete");
                (write && resource != "leases" && resource != "events").then(|| (format!("{verb} {resource}"), v))
            })
            .collect()
    }

    /// Whether it holds the Lease (its `leader` gauge).
    pub async fn is_leader(&self) -> bool {
        self.metrics().await.get("securityguard_operator_leader").copied() == Some(1.0)
    }

    /// Reconciles it has completed, whatever their result.
    pub async fn reconciles(&self) -> f64 {
        self.metrics()
            .await
            .iter()
            .filter(|(k, _)| k.starts_with("securityguard_operator_reconciles_total"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("operator exits")
    }

    /// Kills the process at once (SIGKILL): it cannot release its Lease.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
    }
}

fn label(labels: &str, name: &str) -> Option<String> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(labels[start..end].to_owned())
}

/// Parses Prometheus text samples into (series -> value).
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Creates a PersistentVolume pre-bound to a claim, standing in for a storage provisioner.
pub fn volume_for_claim(ns: &str, claim: &str) {
    let pv = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {ns}-{claim}\n  labels: {{securityguard-e2e: \"{ns}\"}}\nspec:\n  capacity: {{storage: 100Gi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Delete\n  hostPath: {{path: /tmp/{ns}/{claim}}}\n  claimRef: {{namespace: {ns}, name: {claim}}}\n"
    );
    kubectl_ok(&["apply", "-f", "-"], Some(&pv));
}

/// Volumes for the managed PostgreSQL and Redis of a SecurityGuard.
pub fn volumes_for_guard(ns: &str, guard: &str) {
    volume_for_claim(ns, &format!("data-{guard}-postgres-0"));
    volume_for_claim(ns, &format!("data-{guard}-redis-0"));
}

/// Creates a generic Secret with one key.
pub fn secret(ns: &str, name: &str, key: &str, value: &str) {
    secret_with(ns, name, &[(key, value)]);
}

/// Creates a generic Secret with these keys.
pub fn secret_with(ns: &str, name: &str, data: &[(&str, &str)]) {
    let mut args =
        vec!["-n".to_owned(), ns.to_owned(), "create".into(), "secret".into(), "generic".into(), name.into()];
    args.extend(data.iter().map(|(key, value)| format!("--from-literal={key}={value}")));
    kubectl_ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
}

/// Creates a Secret of S3 credentials, as `spec.backup.s3.credentialsSecret` names it.
pub fn s3_credentials(ns: &str, name: &str, access_key_id: &str, secret_access_key: &str) {
    secret_with(ns, name, &[("AWS_ACCESS_KEY_ID", access_key_id), ("AWS_SECRET_ACCESS_KEY", secret_access_key)]);
}

/// A JWT signing key long enough for the operator's validation.
pub const JWT: &str = "e2e-0123456789abcdef0123456789abcdef";

/// An image no node can pull (the domain `.invalid` never resolves). On the control plane's
/// kwok nodes a container of this image waits in `ImagePullBackOff`, as on a real node
/// (`e2e/controlplane/up.sh`, stage pod-image-pull-backoff).
pub const UNPULLABLE_IMAGE: &str = "securityguard.invalid/api:unpullable";
