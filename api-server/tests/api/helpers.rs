//! Test harness: the real server on a free port against the PostgreSQL and Redis started by
//! `scripts/services/start.sh` (SG_TEST_DATABASE_URL, SG_TEST_REDIS_URL). Each app gets a fresh
//! database and its own Redis key prefix, so tests run in parallel and re-runs start clean.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use securityguard_api::auth::siws::SiwsMessage;
use securityguard_api::config::{Config, Environment};
use securityguard_api::startup::Application;
use securityguard_api::state::AppState;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const DOMAIN: &str = "app.securityguard.test";
pub const URI: &str = "https://app.securityguard.test";
pub const CHAIN: &str = "mainnet";

pub fn database_url() -> String {
    std::env::var("SG_TEST_DATABASE_URL")
        .expect("SG_TEST_DATABASE_URL is not set: run scripts/services/start.sh and source its env file")
}

pub fn redis_url() -> String {
    std::env::var("SG_TEST_REDIS_URL")
        .expect("SG_TEST_REDIS_URL is not set: run scripts/services/start.sh and source its env file")
}

pub fn admin_key() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32])
}

pub fn random_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    SigningKey::from_bytes(&seed)
}

pub fn address(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().as_bytes()).into_string()
}

/// A configuration for tests: everything local, short delays.
pub fn test_config(database_url: String, redis_url: String, prefix: String) -> Config {
    Config {
        database_url,
        database_max_connections: 5,
        redis_url,
        redis_key_prefix: prefix,
        jwt_secret: JWT_SECRET.into(),
        jwt_ttl_seconds: 900,
        refresh_ttl_seconds: 3600,
        claude_api_key: None,
        claude_api_url: "http://127.0.0.1:9".into(),
        claude_model: "test-model".into(),
        solana_rpc_url: None,
        environment: Environment::Test,
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        admin_wallets: vec![address(&admin_key())],
        siws_domain: DOMAIN.into(),
        siws_uri: URI.into(),
        siws_chain_id: CHAIN.into(),
        nonce_ttl_seconds: 300,
        rate_limit_per_ip: 10_000,
        rate_limit_per_wallet: 10_000,
        max_body_bytes: 64 * 1024,
        shutdown_delay_seconds: 0,
        request_timeout_seconds: 20,
        trust_forwarded_for: false,
        scan_cache_ttl_seconds: 600,
        feed_tokens_file: None,
        feed_max_body_bytes: 1024 * 1024,
        feed_max_entries: 1000,
    }
}

/// Creates an empty database with a unique name; returns (name, url).
pub async fn create_database() -> (String, String) {
    let admin_url = database_url();
    let name = format!("sg_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin_url).await.expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    (name.clone(), format!("{base}/{name}"))
}

pub fn drop_database(name: &str) {
    let name = name.to_string();
    // Drop runs outside any runtime guarantee: use a thread with its own runtime.
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&database_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
            }
        });
    })
    .join();
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub db_name: String,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.unwrap()
    }

    /// Signals shutdown (like SIGTERM) without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Fetches a nonce and builds a valid message for `key`.
    pub async fn signin_message(&self, key: &SigningKey) -> SiwsMessage {
        let resp = self.get("/v1/auth/nonce").await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let now = jiff::Timestamp::now();
        SiwsMessage {
            domain: DOMAIN.into(),
            address: address(key),
            statement: Some("Sign in to SecurityGuard".into()),
            uri: URI.into(),
            version: "1".into(),
            chain_id: CHAIN.into(),
            nonce: body["nonce"].as_str().unwrap().to_string(),
            issued_at: now,
            expiration_time: Some(now + jiff::SignedDuration::from_secs(120)),
            not_before: None,
            request_id: None,
            resources: vec![],
        }
    }

    pub async fn verify(&self, key: &SigningKey, msg: &SiwsMessage) -> reqwest::Response {
        let text = msg.to_text();
        let sig = key.sign(text.as_bytes());
        self.post_json(
            "/v1/auth/verify",
            &json!({"message": text, "signature": bs58::encode(sig.to_bytes()).into_string()}),
        )
        .await
    }

    /// Signs in `key`; returns the token response body.
    pub async fn sign_in(&self, key: &SigningKey) -> Value {
        let msg = self.signin_message(key).await;
        let resp = self.verify(key, &msg).await;
        assert_eq!(resp.status(), 200, "sign-in failed");
        resp.json().await.unwrap()
    }

    /// Signs in a fresh random wallet; returns its access token.
    pub async fn user_token(&self) -> String {
        let body = self.sign_in(&random_key()).await;
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self) -> String {
        let body = self.sign_in(&admin_key()).await;
        body["access_token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.trigger_shutdown();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        drop_database(&self.db_name);
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app with a fresh database and key prefix; `tweak` adjusts the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (db_name, db_url) = create_database().await;
    let prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
    let mut config = test_config(db_url.clone(), redis_url(), prefix);
    tweak(&mut config);
    spawn_with_config(config, db_name).await
}

pub async fn spawn_with_config(config: Config, db_name: String) -> TestApp {
    let db_url = config.database_url.clone();
    let app = Application::build(config).await.expect("build app");
    app.migrate(Some(Duration::from_secs(20))).await.expect("migrate");
    let addr = app.local_addr();
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let db = PgPool::connect(&db_url).await.unwrap();
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        db,
        db_name,
        state,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts an error response: status, JSON `{"error": {"code", "message"}}` and the code.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some("application/json"), "content type");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}
