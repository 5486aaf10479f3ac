//! The real node: a cluster whose pods run in containers (`e2e/controlplane/node-up.sh` after
//! `up.sh`, state directory in `SG_NODE_CLUSTER_DIR`), the operator installed from
//! `config/default` as its Deployment, an S3-compatible server the pods reach, and a client of
//! the API the operator runs.
//!
//! A test binary of the real node calls [`select`] before anything else: every helper of this
//! crate (kubectl, clients, namespaces) then talks to the node's cluster instead of the kwok
//! control plane of `SG_CONTROLPLANE_DIR`. Its tests take [`exclusive`] so that one
//! SecurityGuard at a time runs on the node's two cores.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Service};
use kube::Client;
use kube::api::{Api, ListParams};
use securityguard_api::auth::siws::SiwsMessage;
use securityguard_operator::crd::SecurityGuard;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use crate::fixtures::GuardFixture;
use crate::local::Process;
use crate::{OPERATOR_NAMESPACE, admin, eventually, install, kubectl, kubectl_ok, wait_for};

/// The node cluster's state directory.
pub fn cluster_dir() -> PathBuf {
    PathBuf::from(std::env::var("SG_NODE_CLUSTER_DIR").unwrap_or_else(|_| {
        panic!(
            "SG_NODE_CLUSTER_DIR is not set: start a control plane with a real node (`just test` does: \
             e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR)"
        )
    }))
}

pub(crate) static SELECTED: OnceLock<PathBuf> = OnceLock::new();

/// Points every helper of this crate at the node's cluster, for the whole test process.
pub fn select() {
    SELECTED.get_or_init(cluster_dir);
}

static EXCLUSIVE: Mutex<()> = Mutex::const_new(());

/// One real-node test at a time: selects the node's cluster and holds the lock until dropped.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    select();
    EXCLUSIVE.lock().await
}

/// A variable of the node's environment file (`node-env`, written by `node-up.sh`).
pub fn node_env(name: &str) -> String {
    let file = cluster_dir().join("node-env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} missing from {}", file.display()))
}

/// The address of the node as its pods see it (the bridge's gateway), where host processes
/// that pods must reach listen.
pub fn host_address() -> String {
    node_env("SG_NODE_IP")
}

static OPERATOR: OnceCell<()> = OnceCell::const_new();

/// Installs `config/default` as a user does and waits until the operator's Deployment has both
/// replicas available and one of them holds the Lease.
pub async fn operator() {
    select();
    OPERATOR
        .get_or_init(|| async {
            install().await;
            let client = admin().await;
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
            let available = |d: &Deployment| {
                d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) >= 2
                    && d.status.as_ref().and_then(|s| s.updated_replicas).unwrap_or(0) >= 2
            };
            // The watch's own timeout is longer: on time-out, the diagnostics are printed.
            let watch = wait_for(deployments.clone(), "securityguard-operator", Duration::from_secs(240), available);
            if tokio::time::timeout(Duration::from_secs(180), watch).await.is_err() {
                panic!("the operator's Deployment is not available:\n{}", diagnostics(OPERATOR_NAMESPACE));
            }
            leader(&client).await;
        })
        .await;
}

/// The name of the operator pod holding the Lease.
pub async fn leader(client: &Client) -> String {
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    eventually("an operator pod holding the Lease", Duration::from_secs(60), || async {
        let lease = leases.get_opt("securityguard-operator").await.ok().flatten()?;
        let holder = lease.spec?.holder_identity?;
        pods.get_opt(&holder).await.ok().flatten().map(|_| holder)
    })
    .await
}

/// What a failing test prints: the namespace's pods, their containers' states, Events and the
/// last log lines of every container.
pub fn diagnostics(ns: &str) -> String {
    let mut out = String::new();
    for args in [
        vec!["-n", ns, "get", "pods,pvc,jobs,deployments,statefulsets", "-o", "wide"],
        vec!["-n", ns, "get", "events", "--sort-by=.lastTimestamp"],
        vec!["-n", ns, "get", "securityguards", "-o", "yaml"],
    ] {
        let (_, stdout, stderr) = kubectl(&args, None);
        out.push_str(&format!("$ kubectl {}\n{stdout}{stderr}\n", args.join(" ")));
    }
    let (_, pods, _) = kubectl(&["-n", ns, "get", "pods", "-o", "name"], None);
    for pod in pods.lines() {
        let (_, logs, err) = kubectl(&["-n", ns, "logs", pod, "--all-containers", "--tail=30", "--prefix"], None);
        out.push_str(&format!("$ kubectl logs {pod}\n{logs}{err}\n"));
    }
    out
}

/// An S3-compatible server for one test: moto (installed by `scripts/services/s3.sh`)
/// listening on the node's address, where the backup and restore pods reach it. Stopped on drop
/// (and with the test's thread: one server per test).
pub struct S3 {
    _process: Process,
    /// `http://<node address>:<port>`.
    pub endpoint: String,
}

impl S3 {
    /// Starts the server and waits until it answers.
    pub async fn start() -> Self {
        let cache = std::env::var("SG_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/securityguard"));
        let moto = cache.join("venv-moto/bin/moto_server");
        assert!(moto.is_file(), "{} missing: run scripts/services/s3.sh start", moto.display());
        let host = host_address();
        let port = std::net::TcpListener::bind((host.as_str(), 0))
            .expect("free port on the node address")
            .local_addr()
            .expect("address")
            .port();
        let mut cmd = Command::new(moto);
        cmd.args(["-H", &host, "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let process = Process::spawn(cmd);
        let endpoint = format!("http://{host}:{port}");
        let url = format!("{endpoint}/");
        eventually("moto on the node address", Duration::from_secs(60), || async {
            reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
        S3 { _process: process, endpoint }
    }
}

/// A client of a SecurityGuard's API through its Service's ClusterIP (kube-proxy routes the
/// host's connections to the pods).
#[derive(Clone)]
pub struct ApiClient {
    /// `http://<cluster IP>:<port>`.
    pub base: String,
    http: reqwest::Client,
}

/// The domain and URI the API accepts in sign-in messages when no Ingress is configured (the
/// API's defaults).
const SIWS_DOMAIN: &str = "securityguard.local";
const SIWS_URI: &str = "https://securityguard.local";

impl ApiClient {
    /// The scans a wallet's history lists, newest first.
    pub async fn history(&self, token: &str) -> Vec<String> {
        let (status, body) = self.get("/v1/scans", Some(token)).await.expect("history");
        assert_eq!(status, 200, "{body}");
        body["scans"]
            .as_array()
            .expect("scans")
            .iter()
            .filter_map(|s| s["scan_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Scans a domain and reads the scan back (it is stored once readable); its id.
    pub async fn scan_stored(&self, token: &str, domain: &str) -> String {
        let (status, body) =
            self.post("/v1/scan/domains", Some(token), &serde_json::json!({"domains": [domain]})).await.expect("scan");
        assert_eq!(status, 200, "{body}");
        let id = body["scan_id"].as_str().expect("scan id").to_owned();
        let (status, body) = self.get(&format!("/v1/scans/{id}"), Some(token)).await.expect("read back");
        assert_eq!(status, 200, "{body}");
        id
    }

    /// The client of the API at `base` (`http://host:port`).
    pub fn new(base: String) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client");
        Self { base, http }
    }

    /// The client of `<guard>-api` in `ns`.
    pub async fn for_guard(client: &Client, ns: &str, guard: &str) -> Self {
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let svc = services.get(&format!("{guard}-api")).await.expect("the API Service exists");
        let spec = svc.spec.expect("Service spec");
        let ip = spec.cluster_ip.expect("a cluster IP");
        let port = spec.ports.and_then(|p| p.first().map(|p| p.port)).expect("a Service port");
        Self::new(format!("http://{ip}:{port}"))
    }

    /// GET `path`; returns the status and the body as JSON (Null when not JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// GET `path`; returns the status and the body as text.
    pub async fn get_text(&self, path: &str) -> Result<(u16, String), reqwest::Error> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// POST a JSON body to `path`; returns the status and the JSON answer.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Waits until `/health/ready` answers 200 through the Service.
    pub async fn wait_ready(&self, timeout: Duration) {
        eventually(&format!("{}/health/ready", self.base), timeout, || async {
            matches!(self.get("/health/ready", None).await, Ok((200, _))).then_some(())
        })
        .await;
    }

    /// Signs in with a Solana wallet (Sign-In-With-Solana): a nonce, the message signed with
    /// the wallet's ed25519 key, the access token back.
    pub async fn sign_in(&self, wallet: &SigningKey) -> String {
        let (status, nonce) = self.get("/v1/auth/nonce", None).await.expect("nonce request");
        assert_eq!(status, 200, "nonce: {nonce}");
        let now = jiff::Timestamp::now();
        let message = SiwsMessage {
            domain: SIWS_DOMAIN.to_owned(),
            address: wallet_address(wallet),
            statement: Some("Sign in to SecurityGuard".to_owned()),
            uri: SIWS_URI.to_owned(),
            version: "1".to_owned(),
            chain_id: "mainnet".to_owned(),
            nonce: nonce["nonce"].as_str().expect("a nonce").to_owned(),
            issued_at: now,
            expiration_time: Some(now + jiff::SignedDuration::from_secs(120)),
            not_before: None,
            request_id: None,
            resources: vec![],
        }
        .to_text();
        let signature = bs58::encode(wallet.sign(message.as_bytes()).to_bytes()).into_string();
        let (status, body) = self
            .post("/v1/auth/verify", None, &json!({"message": message, "signature": signature}))
            .await
            .expect("verify request");
        assert_eq!(status, 200, "sign-in refused: {body}");
        body["access_token"].as_str().expect("an access token").to_owned()
    }
}

/// A new random wallet.
pub fn new_wallet() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("random seed");
    SigningKey::from_bytes(&seed)
}

/// A wallet's address (its public key in base58).
pub fn wallet_address(wallet: &SigningKey) -> String {
    bs58::encode(wallet.verifying_key().as_bytes()).into_string()
}

/// A legacy Solana transaction signed by nobody in particular that hands the payer's account
/// over to another program (System program `Assign`): the scanner must block it.
pub fn owner_reassignment_transaction(payer: &[u8; 32], new_owner: &[u8; 32]) -> Vec<u8> {
    let mut tx = vec![1u8]; // one signature
    tx.extend([0u8; 64]);
    tx.extend([1u8, 0, 1]); // header: 1 signer, 0 read-only signed, 1 read-only unsigned
    tx.push(2); // accounts: payer, System program
    tx.extend(payer);
    tx.extend([0u8; 32]);
    tx.extend([7u8; 32]); // recent blockhash
    tx.push(1); // one instruction
    tx.push(1); // program: System
    tx.extend([1u8, 0]); // accounts: [payer]
    let mut data = 1u32.to_le_bytes().to_vec(); // Assign
    data.extend(new_owner);
    tx.push(data.len() as u8);
    tx.extend(data);
    tx
}

/// The API pods of a guard.
pub async fn api_pods(client: &Client, ns: &str, guard: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.list(
        &ListParams::default().labels(&format!("app.kubernetes.io/instance={guard},app.kubernetes.io/component=api")),
    )
    .await
    .expect("list API pods")
    .items
}

/// One SecurityGuard on the real node: its namespace (with the JWT Secret `jwt`) and name.
pub struct Site {
    /// Administrator client of the node's cluster.
    pub client: Client,
    /// Its namespace, deleted at the end unless `KEEP` is set.
    pub ns: crate::TempNamespace,
    /// The SecurityGuard's name.
    pub name: String,
}

impl Site {
    /// A namespace with the JWT Secret, the operator installed.
    pub async fn new(prefix: &str, name: &str) -> Self {
        operator().await;
        let client = admin().await;
        let ns = crate::TempNamespace::create(&client, prefix).await;
        crate::secret(&ns.name, "jwt", "secret", crate::JWT);
        Self { client, ns, name: name.to_owned() }
    }

    /// The site's SecurityGuard, sized for the node's two cores: the JWT key of the Secret `jwt`
    /// made by [`Site::new`], autoscaling off, `replicas` API pods each requesting 50m CPU and
    /// 64Mi with a 512Mi memory limit.
    pub fn guard(&self, replicas: i32) -> SecurityGuard {
        SecurityGuard::test(&self.name)
            .in_namespace(&self.ns.name)
            .jwt_secret("jwt", "secret")
            .fixed_replicas(replicas)
            .resources(&[("cpu", "50m"), ("memory", "64Mi")], &[("memory", "512Mi")])
    }

    /// Applies the site's SecurityGuard (server-side, field manager `e2e`).
    pub fn apply(&self, guard: &SecurityGuard) {
        let (name, ns) = (guard.metadata.name.as_deref(), guard.metadata.namespace.as_deref());
        assert_eq!((name, ns), (Some(self.name.as_str()), Some(self.ns.name.as_str())), "not the site's guard");
        crate::fixtures::apply(guard);
    }

    /// The SecurityGuards of the namespace.
    pub fn guards(&self) -> Api<SecurityGuard> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// Waits on a watch until the guard satisfies `condition`; on timeout, panics with `what`
    /// and the namespace's pods, Events and logs.
    pub async fn wait(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&SecurityGuard) -> bool,
    ) -> SecurityGuard {
        let watch = wait_for(self.guards(), &self.name, timeout + Duration::from_secs(60), condition);
        match tokio::time::timeout(timeout, watch).await {
            Ok(guard) => guard,
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}:\n{}", diagnostics(&self.ns.name)),
        }
    }

    /// Waits until the guard is `Ready=True` for its current generation.
    pub async fn ready(&self, timeout: Duration) -> SecurityGuard {
        self.wait("Ready=True", timeout, crate::checks::is_ready).await
    }

    /// A client of its API Service.
    pub async fn api(&self) -> ApiClient {
        ApiClient::for_guard(&self.client, &self.ns.name, &self.name).await
    }

    /// Runs a command in a container (`kubectl exec`) and returns its standard output.
    pub fn exec(&self, pod: &str, command: &[&str]) -> String {
        let mut args = vec!["-n", self.ns.name.as_str(), "exec", pod, "--"];
        args.extend(command);
        kubectl_ok(&args, None)
    }
}

/// Where the storage provisioner put the volume bound to a claim, on this machine.
pub async fn volume_path(client: &Client, ns: &str, claim: &str) -> PathBuf {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc = claims.get(claim).await.unwrap_or_else(|e| panic!("claim {ns}/{claim}: {e}"));
    let volume = pvc.spec.and_then(|s| s.volume_name).unwrap_or_else(|| panic!("claim {ns}/{claim} is not bound"));
    let pv = Api::<PersistentVolume>::all(client.clone()).get(&volume).await.expect("the bound volume");
    let spec = pv.spec.expect("volume spec");
    let path = spec.local.map(|l| l.path).or_else(|| spec.host_path.map(|h| h.path));
    PathBuf::from(path.unwrap_or_else(|| panic!("volume {volume} has no local or hostPath source")))
}

/// The `/metrics` samples of the operator pod that leads (pods are reachable from the host on
/// the node's bridge).
pub async fn leader_metrics(client: &Client) -> std::collections::BTreeMap<String, f64> {
    let name = leader(client).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let pod = pods.get(&name).await.expect("leader pod");
    let ip = pod.status.and_then(|s| s.pod_ip).expect("leader pod IP");
    let text = reqwest::get(format!("http://{ip}:8080/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("the leader's /metrics")
        .text()
        .await
        .expect("metrics body");
    crate::parse_metrics(&text)
}
