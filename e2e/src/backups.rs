//! What the backup tests add to the control plane: the local PostgreSQL and S3-compatible server
//! (`scripts/services/start.sh`, `scripts/services/s3.sh start`, their env files sourced), a
//! fresh database and bucket per test, and the environment a backup Job's pod would get.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use securityguard_operator::backup::pg::{self, DbUrl};
use securityguard_operator::backup::store::{self, S3Store, Store};
use securityguard_operator::crd::S3Spec;

use crate::{kubectl_ok, operator_binary};

/// Longest a run of the operator binary may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn need(name: &str, how: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set. Start the servers and load their environment:\n  {how}\n  \
             source \"${{SG_CACHE:-$HOME/.cache/securityguard}}/services/env\"\n  \
             source \"${{SG_CACHE:-$HOME/.cache/securityguard}}/services/s3.env\""
        )
    })
}

/// A fresh bucket on the local S3-compatible server.
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// A client for it.
    pub s3: S3Store,
    /// The server's endpoint.
    pub endpoint: String,
    /// Access key of the server.
    pub access_key: String,
    /// Secret key of the server.
    pub secret_key: String,
}

impl Bucket {
    /// Creates `sg-e2e-<prefix>-<random>` on the local S3 server of `scripts/services/s3.sh`.
    pub async fn create(prefix: &str) -> Self {
        Self::create_at(prefix, need("SG_TEST_S3_ENDPOINT", "scripts/services/s3.sh start")).await
    }

    /// Creates `sg-e2e-<prefix>-<random>` on the S3 server at `endpoint`.
    pub async fn create_at(prefix: &str, endpoint: String) -> Self {
        let access_key = std::env::var("SG_TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".into());
        let secret_key = std::env::var("SG_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".into());
        let name = format!("sg-e2e-{prefix}-{}-{:08x}", std::process::id(), rand_u32());
        let credentials = aws_sdk_s3::config::Credentials::new(&access_key, &secret_key, None, None, "e2e");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            .http_client(store::https_client())
            .build();
        let s3 = S3Store {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: name.clone(),
            server_side_encryption: None,
        };
        s3.client.create_bucket().bucket(&name).send().await.expect("create bucket");
        Bucket { name, s3, endpoint, access_key, secret_key }
    }

    /// The S3 part of a Job's environment.
    pub fn env(&self, prefix: &str) -> Vec<(String, String)> {
        [
            ("SG_BACKUP_BUCKET", self.name.as_str()),
            ("SG_BACKUP_PREFIX", prefix),
            ("SG_BACKUP_ENDPOINT", self.endpoint.as_str()),
            ("SG_BACKUP_REGION", "us-east-1"),
            ("SG_BACKUP_PATH_STYLE", "true"),
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Backups into this bucket, as `spec.backup.s3` names it (path-style, at the server's
    /// endpoint, the credentials in the Secret `credentials_secret`).
    pub fn s3_spec(&self, credentials_secret: &str) -> S3Spec {
        S3Spec {
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_owned(),
            path_style: true,
            ..crate::fixtures::s3(&self.name, credentials_secret)
        }
    }

    /// Every key, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            Store::S3(self.s3.clone()).list("").await.expect("list").into_iter().map(|o| o.key).collect();
        keys.sort();
        keys
    }

    /// The content of an object.
    pub async fn get(&self, key: &str) -> Vec<u8> {
        let body = self.s3.get(key).await.expect("get");
        body.collect().await.expect("body").into_bytes().to_vec()
    }

    /// Stores an object.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) {
        Store::S3(self.s3.clone()).put_small(key, bytes, "application/octet-stream").await.expect("put");
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish() as u32
}

/// A fresh database on the local PostgreSQL, dropped on drop.
pub struct Database {
    admin: DbUrl,
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: DbUrl,
}

impl Database {
    /// Creates `sg_e2e_<random>` with one small table.
    pub async fn create() -> Self {
        let admin = DbUrl::parse(&need("SG_TEST_DATABASE_URL", "scripts/services/start.sh")).expect("URL");
        let name = format!("sg_e2e_{:08x}", rand_u32());
        pg::create_database(&admin, &name).await.expect("create database");
        let url = admin.with_database(&name);
        Database { admin, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(pg::drop_database(&admin, &name))
        })
        .join();
    }
}

/// A ServiceAccount in `ns` with a Role of exactly `rules` (YAML flow sequences, e.g.
/// `{apiGroups: [""], resources: [configmaps], verbs: [list]}`), and a kubeconfig authenticating
/// as it: what a Job's pod would run with.
pub fn service_account_with(ns: &str, name: &str, rules: &[&str]) -> PathBuf {
    let rules: String = rules.iter().map(|r| format!("  - {r}\n")).collect();
    let objects = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: {ns}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: {ns}}}\nrules:\n{rules}---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}\n\
         subjects: [{{kind: ServiceAccount, name: {name}, namespace: {ns}}}]\n"
    );
    kubectl_ok(&["apply", "-f", "-"], Some(&objects));
    crate::token_kubeconfig(ns, name)
}

/// A directory for the files of local runs (`HOME`, the termination log) under the control
/// plane's state directory.
pub fn run_dir(name: &str) -> PathBuf {
    let dir = crate::controlplane_dir().join(name);
    std::fs::create_dir_all(&dir).expect("run directory");
    dir
}

/// The environment a backup or log archive Job's pod of the guard `ns/guard` gets, for a run
/// as a local process: the bucket's variables with the key prefix `prefix`, the guard, the
/// termination log in `dir`, and `kubeconfig` in place of the pod's ServiceAccount token.
pub fn job_env(
    bucket: &Bucket,
    prefix: &str,
    ns: &str,
    guard: &str,
    kubeconfig: &Path,
    dir: &Path,
) -> Vec<(String, String)> {
    let mut env = bucket.env(prefix);
    env.extend(
        [
            ("SG_GUARD", format!("{ns}/{guard}")),
            ("SG_GUARD_NAMESPACE", ns.to_owned()),
            ("SG_GUARD_NAME", guard.to_owned()),
            ("SG_TERMINATION_LOG", dir.join("termination-log").display().to_string()),
            ("KUBECONFIG", kubeconfig.display().to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

/// What a run wrote to the termination log in `dir` (a Job's summary), as JSON.
pub fn termination(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("termination-log")).expect("termination log")).expect("JSON")
}

/// Runs the operator binary with `args` and only the environment given (plus PATH).
pub async fn run_operator(args: &[&str], env: &[(String, String)], home: &Path) -> Output {
    let mut command = tokio::process::Command::new(operator_binary());
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("RUST_LOG", "info")
        .env("SG_LOG_TEXT", "true")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Ok(bin) = std::env::var("SG_PG_BIN") {
        command.env("SG_PG_BIN", bin);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("securityguard-operator {args:?} ran longer than {RUN_TIMEOUT:?}"))
        .expect("run securityguard-operator");
    eprintln!(
        "--- securityguard-operator {args:?}: {}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Appends lines to the log every container shows through `pods/log` on the local control plane
/// (kwok serves `STATE_DIR/pod-logs.log`, in the CRI log format), each at its own time.
pub fn append_pod_log(lines: &[(std::time::SystemTime, &str)]) {
    use std::io::Write;
    let path = crate::controlplane_dir().join("pod-logs.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap_or_else(|e| {
        panic!("{} cannot be opened ({e}): start the control plane with the current up.sh", path.display())
    });
    for (time, text) in lines {
        let time = jiff::Timestamp::try_from(*time).expect("time");
        writeln!(file, "{time} stdout F {text}").expect("append pod log");
    }
}
