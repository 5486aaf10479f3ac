//! Readiness follows PostgreSQL and Redis. Each test runs its own private server on a free port,
//! so stopping it disturbs no other test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (install it with scripts/services/start.sh)");
        Self { port, child: Some(child) }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn ready_status(app: &TestApp) -> u16 {
    app.get("/health/ready").await.status().as_u16()
}

#[tokio::test]
async fn readiness_follows_redis() {
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    let (db_name, db_url) = create_database().await;
    let config = test_config(db_url, redis.url(), "ready:".into());
    let app = spawn_with_config(config, db_name).await;
    let t = Duration::from_secs(20);
    wait_until(t, "ready with redis up", || async { ready_status(&app).await == 200 }).await;

    redis.stop();
    wait_until(t, "unready with redis down", || async { ready_status(&app).await == 503 }).await;
    let body: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(body["checks"]["redis"]["status"], "down");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
    // Liveness does not depend on Redis.
    assert_eq!(app.get("/health/live").await.status(), 200);

    let _redis = PrivateRedis::start(port);
    wait_until(t, "ready again with redis back", || async { ready_status(&app).await == 200 }).await;
}

struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false)
}

impl PrivatePostgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn init() -> Self {
        let bin = PathBuf::from(std::env::var("SG_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()));
        let dir = std::env::temp_dir().join(format!("sg-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown").arg("postgres:").arg(&dir).status().unwrap();
            assert!(ok.success());
        }
        let pg = Self { dir, port: free_port(), bin };
        let out = pg
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-D"])
            .arg(pg.dir.join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let opts = format!("-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off", self.port, self.dir.display());
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "30", "-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn readiness_follows_postgres() {
    let pg = PrivatePostgres::init();
    pg.start();
    let config = test_config(pg.url(), redis_url(), format!("ready-pg-{}:", pg.port));
    // The private cluster is dropped as a whole; no test database to remove.
    let app = spawn_with_config(config, String::from("sg_never_created")).await;
    let t = Duration::from_secs(30);
    wait_until(t, "ready with postgres up", || async { ready_status(&app).await == 200 }).await;
    let token = app.user_token().await;
    let scan = |app: &TestApp, token: String| {
        let req = app.client.post(app.url("/v1/scan/domains")).bearer_auth(token);
        async move { req.json(&serde_json::json!({"domains": ["phant0m.app"]})).send().await.unwrap() }
    };
    assert_eq!(scan(&app, token.clone()).await.status(), 200);

    pg.stop();
    wait_until(t, "unready with postgres down", || async { ready_status(&app).await == 503 }).await;
    let body: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"]["status"], "down");
    assert_eq!(body["checks"]["redis"]["status"], "up");
    // Scanning keeps working from the last pattern snapshot (the record is written later).
    let resp = scan(&app, token.clone()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["domains"][0]["warnings"][0]["kind"], "homoglyph_domain");

    pg.start();
    wait_until(t, "ready again with postgres back", || async { ready_status(&app).await == 200 }).await;
}

#[tokio::test]
async fn serves_liveness_while_postgres_is_unreachable_and_migrates_when_it_comes() {
    let pg = PrivatePostgres::init();
    // Not started yet: the service must come up anyway, alive but unready.
    let mut config = test_config(pg.url(), redis_url(), format!("late-pg-{}:", pg.port));
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    let app = securityguard_api::startup::Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move { client.get(format!("{base}{path}")).send().await.unwrap() }
    };
    assert_eq!(get("/health/live").await.status(), 200);
    let resp = get("/health/ready").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["schema"], "pending");
    assert_eq!(body["checks"]["postgres"]["status"], "down");
    assert!(!state.is_migrated());

    pg.start();
    let t = Duration::from_secs(30);
    wait_until(t, "ready once postgres is up and migrated", || async { get("/health/ready").await.status() == 200 })
        .await;
    assert!(state.is_migrated());
    let body: Value = get("/health/ready").await.json().await.unwrap();
    assert_eq!(body["checks"]["schema"], "migrated");
    server.abort();
}
