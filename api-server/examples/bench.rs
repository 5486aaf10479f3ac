//! `just bench-api`: requests/s and latency percentiles at 100 concurrent connections for
//! `/v1/scan/transactions` (cache hit and cache miss), `/v1/scan/domains` (three domains, scored
//! by the rules and the domain model; not cached) and `/health/live` (the ceiling of the HTTP
//! stack), against the PostgreSQL and Redis of scripts/services/start.sh.
//!
//!   cargo build --release -p securityguard-api --bin securityguard-api
//!   cargo run --release -p securityguard-api --example bench
//!
//! The API runs as its release binary (`BENCH_API_BIN`, default
//! `$CARGO_TARGET_DIR/release/securityguard-api`) in its own process, with its production
//! defaults (JSON access log at info, read from a pipe as a container runtime would) except
//! for the rate limits, which are lifted. The load comes from wrk (Debian package) in another
//! process, with the requests of `examples/bench-wrk.lua`. This process signs in, starts and
//! measures; it is idle while wrk runs.
//!
//! Environment: SG_TEST_DATABASE_URL, SG_TEST_REDIS_URL (from the services env file),
//! BENCH_CONCURRENCY (100), BENCH_SECONDS per scenario (10), BENCH_WRK_THREADS (1),
//! BENCH_SCENARIOS (live,hit,miss,domains: the scenarios in order; repeats allowed), BENCH_API_LOG (the API's RUST_LOG, default info: one access-log line per request).
//! Traffic goes to 127.0.0.1 only.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use securityguard_api::auth::siws::SiwsMessage;
use serde_json::{Value, json};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncReadExt;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Clock ticks per second of /proc's CPU counters (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// User plus system CPU seconds of one process, from /proc (0 once it is gone).
fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some(end) = stat.rfind(')') else { return 0.0 };
    let fields: Vec<&str> = stat[end + 2..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS
}

/// CPU seconds of every process whose command name is `comm`.
fn command_cpu_seconds(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .map(process_cpu_seconds)
        .sum()
}

/// Busy CPU seconds of the whole machine (all cores), from /proc/stat.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    busy / TICKS
}

/// Everything sampled before and after a scenario.
#[derive(Clone, Copy, Default)]
struct Sample {
    api_cpu: f64,
    postgres_cpu: f64,
    redis_cpu: f64,
    machine_cpu: f64,
    redis_commands: f64,
    redis_reads: f64,
    cache_hits: f64,
    cache_misses: f64,
}

struct Probe {
    http: reqwest::Client,
    url: String,
    api_pid: u32,
    redis: redis::aio::MultiplexedConnection,
    redis_pid: u32,
}

impl Probe {
    async fn redis_info(&mut self, section: &str) -> String {
        redis::cmd("INFO").arg(section).query_async(&mut self.redis).await.expect("Redis INFO")
    }

    async fn sample(&mut self) -> Sample {
        let stats = self.redis_info("stats").await;
        let field = |text: &str, name: &str| -> f64 {
            text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
        };
        let metrics = self.http.get(format!("{}/metrics", self.url)).send().await.expect("GET /metrics");
        let metrics = metrics.text().await.expect("/metrics body");
        let cache = |result: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| l.starts_with("securityguard_scan_cache_total{") && l.contains(&format!("\"{result}\"")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Sample {
            api_cpu: process_cpu_seconds(self.api_pid),
            postgres_cpu: command_cpu_seconds("postgres"),
            redis_cpu: process_cpu_seconds(self.redis_pid),
            machine_cpu: machine_busy_seconds(),
            redis_commands: field(&stats, "total_commands_processed:"),
            redis_reads: field(&stats, "total_reads_processed:"),
            cache_hits: cache("hit"),
            cache_misses: cache("miss"),
        }
    }
}

/// What wrk's `done()` in bench-wrk.lua prints.
#[derive(serde::Deserialize)]
struct WrkSummary {
    requests: u64,
    duration_us: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    status_errors: u64,
    timeouts: u64,
    p50_us: u64,
    p95_us: u64,
    p99_us: u64,
    max_us: u64,
}

/// The requests of one scenario, as bench-wrk.lua reads them.
#[derive(Clone, Default)]
struct Load {
    path: &'static str,
    method: &'static str,
    token: Option<String>,
    body: Option<String>,
    vary_at: usize,
}

struct Wrk {
    script: PathBuf,
    url: String,
    threads: usize,
    connections: usize,
    /// wrk runs so far (they vary the cache-miss transactions differently).
    runs: std::cell::Cell<usize>,
}

impl Wrk {
    async fn run(&self, load: &Load, seconds: u64) -> WrkSummary {
        let output = tokio::process::Command::new("wrk")
            .arg(format!("--threads={}", self.threads))
            .arg(format!("--connections={}", self.connections))
            .arg(format!("--duration={seconds}s"))
            .arg("--timeout=10s")
            .arg(format!("--script={}", self.script.display()))
            .arg(format!("{}{}", self.url, load.path))
            .env("BENCH_METHOD", load.method)
            .env("BENCH_TOKEN", load.token.as_deref().unwrap_or(""))
            .env("BENCH_BODY", load.body.as_deref().unwrap_or(""))
            .env("BENCH_VARY_AT", load.vary_at.to_string())
            .env("BENCH_RUN", self.runs.replace(self.runs.get() + 1).to_string())
            .env("BENCH_WRK_THREADS", self.threads.to_string())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run wrk (Debian package wrk; `just bench-api` installs it)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "wrk failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no summary: {stdout}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("wrk summary {line}: {e}"))
    }
}

struct Scenario {
    name: &'static str,
    wrk: WrkSummary,
    before: Sample,
    after: Sample,
}

impl Scenario {
    fn errors(&self) -> u64 {
        let w = &self.wrk;
        w.connect_errors + w.read_errors + w.write_errors + w.status_errors + w.timeouts
    }

    fn per_request(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        (f(&self.after) - f(&self.before)) / self.wrk.requests.max(1) as f64
    }
}

fn transaction(payer: &Keypair) -> Vec<u8> {
    let to = Address::new_from_array([9u8; 32]);
    let ixs = [
        solana_system_interface::instruction::transfer(&payer.pubkey(), &to, 1),
        solana_system_interface::instruction::assign(&payer.pubkey(), &Address::new_from_array([5u8; 32])),
    ];
    let tx = solana_transaction::Transaction::new_signed_with_payer(
        &ixs,
        Some(&payer.pubkey()),
        &[payer],
        Hash::new_from_array(BLOCKHASH),
    );
    bincode::serialize(&tx).expect("serialize a transaction")
}

const BLOCKHASH: [u8; 32] = [7u8; 32];

/// The domains of the domain-scan scenario: a look-alike, a lure on a hosting platform and a
/// plain name.
const DOMAINS: [&str; 3] = ["https://phant0m.app/login", "claim-rewards.vercel.app", "app.example-wallet.io"];

/// A scan request body, and the 1-based offset of four of its base64 characters that encode
/// three bytes of the recent blockhash (what bench-wrk.lua rewrites for cache misses).
fn scan_body(payer: &Keypair) -> (String, usize) {
    let tx = transaction(payer);
    let hash_at = tx.windows(32).position(|w| w == BLOCKHASH).expect("the blockhash is in the transaction");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
    let body = json!({"transactions": [b64]}).to_string();
    let b64_at = body.find(&b64).expect("the transaction is in the body");
    // The first whole base64 group (three bytes, four characters) inside the blockhash.
    let group = hash_at.div_ceil(3);
    assert!(group * 3 + 3 <= hash_at + 32);
    (body, b64_at + group * 4 + 1)
}

async fn sign_in(http: &reqwest::Client, url: &str) -> String {
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let nonce: Value = http.get(format!("{url}/v1/auth/nonce")).send().await.unwrap().json().await.unwrap();
    let msg = SiwsMessage {
        domain: "bench.local".into(),
        address: bs58::encode(key.verifying_key().as_bytes()).into_string(),
        statement: None,
        uri: "https://bench.local".into(),
        version: "1".into(),
        chain_id: "mainnet".into(),
        nonce: nonce["nonce"].as_str().expect("a nonce").into(),
        issued_at: jiff::Timestamp::now(),
        expiration_time: None,
        not_before: None,
        request_id: None,
        resources: vec![],
    };
    let text = msg.to_text();
    let sig = bs58::encode(key.sign(text.as_bytes()).to_bytes()).into_string();
    let tokens: Value = http
        .post(format!("{url}/v1/auth/verify"))
        .json(&json!({"message": text, "signature": sig}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap_or_else(|| panic!("sign-in refused: {tokens}")).to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let connections = env_or("BENCH_CONCURRENCY", 100usize);
    let seconds = env_or("BENCH_SECONDS", 10u64);
    let threads = env_or("BENCH_WRK_THREADS", 1usize);
    let admin_url = std::env::var("SG_TEST_DATABASE_URL")
        .expect("SG_TEST_DATABASE_URL: run scripts/services/start.sh and source its env file");
    let redis_url = std::env::var("SG_TEST_REDIS_URL").expect("SG_TEST_REDIS_URL");
    let api_bin = std::env::var_os("BENCH_API_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into());
        target.join("release/securityguard-api")
    });
    assert!(api_bin.exists(), "{} is missing: cargo build --release -p securityguard-api", api_bin.display());

    let db_name = format!("sg_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {db_name}")).execute(&mut admin).await.expect("create the database");
    let base = admin_url.rsplit_once('/').expect("a database URL").0;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let url = format!("http://127.0.0.1:{port}");

    let mut api = tokio::process::Command::new(&api_bin)
        .env("DATABASE_URL", format!("{base}/{db_name}"))
        .env("DATABASE_MAX_CONNECTIONS", "20")
        .env("REDIS_URL", &redis_url)
        .env("REDIS_KEY_PREFIX", format!("bench:{db_name}:"))
        .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret!")
        .env("JWT_TTL_SECONDS", "3600")
        .env("ENVIRONMENT", "production")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SIWS_DOMAIN", "bench.local")
        .env("SIWS_URI", "https://bench.local")
        .env("RATE_LIMIT_PER_IP", u32::MAX.to_string())
        .env("RATE_LIMIT_PER_WALLET", u32::MAX.to_string())
        .env("SHUTDOWN_DELAY_SECONDS", "0")
        .env("RUST_LOG", std::env::var("BENCH_API_LOG").unwrap_or_else(|_| "info".into()))
        .env_remove("CLAUDE_API_KEY")
        .env_remove("SOLANA_RPC_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the API");
    let api_pid = api.id().expect("the API's pid");
    // The access log, drained as a container runtime drains a container's stdout (its lines
    // only counted).
    let mut log = api.stdout.take().expect("the API's stdout");
    let log_lines = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut lines = 0u64;
        while let Ok(n @ 1..) = log.read(&mut buf).await {
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
        lines
    });

    let http = reqwest::Client::new();
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http.get(format!("{url}/health/ready")).send().await.is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(Instant::now() < ready_by, "the API did not become ready within 30 s");
        if let Ok(Some(status)) = api.try_wait() {
            panic!("the API exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = sign_in(&http, &url).await;

    let mut redis = redis::Client::open(redis_url.as_str())
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let server: String = redis::cmd("INFO").arg("server").query_async(&mut redis).await.expect("Redis INFO");
    let redis_pid = server
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Redis process_id");
    let mut probe = Probe { http: http.clone(), url: url.clone(), api_pid, redis, redis_pid };

    let wrk = Wrk {
        script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/bench-wrk.lua"),
        url: url.clone(),
        threads,
        connections,
        runs: Default::default(),
    };
    let payer = Keypair::new_from_array([3u8; 32]);
    let (body, vary_at) = scan_body(&payer);
    let live = Load { path: "/health/live", method: "GET", ..Load::default() };
    let hit = Load {
        path: "/v1/scan/transactions",
        method: "POST",
        token: Some(token.clone()),
        body: Some(body.clone()),
        vary_at: 0,
    };
    let miss = Load { vary_at, ..hit.clone() };
    // Three domains the rules and the domain model both look at (none official or allowlisted).
    let domains = Load {
        path: "/v1/scan/domains",
        body: Some(json!({"domains": DOMAINS}).to_string()),
        vary_at: 0,
        ..hit.clone()
    };

    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before = loadavg();
    // Steady state, as a running server is: connections, pools and the background scan writer
    // warmed up, the hit's result cached.
    eprintln!("[bench-api] warming up (5 s)");
    wrk.run(&live, 2).await;
    wrk.run(&hit, 3).await;

    let mut results = Vec::new();
    let only = std::env::var("BENCH_SCENARIOS").unwrap_or_else(|_| "live,hit,miss,domains".into());
    for key in only.split(',').map(str::trim) {
        let (name, load) = match key {
            "live" => ("GET /health/live", &live),
            "hit" => ("POST /v1/scan/transactions (cache hit)", &hit),
            "miss" => ("POST /v1/scan/transactions (cache miss)", &miss),
            "domains" => ("POST /v1/scan/domains (3 domains)", &domains),
            other => panic!("BENCH_SCENARIOS: unknown scenario {other:?} (live, hit, miss, domains)"),
        };
        // Scans answered before are written to PostgreSQL in the background: let them finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = probe.sample().await;
        eprintln!("[bench-api] {name}: {connections} connections for {seconds} s");
        let summary = wrk.run(load, seconds).await;
        let after = probe.sample().await;
        results.push(Scenario { name, wrk: summary, before, after });
    }
    let load_after = loadavg();

    println!(
        "\n{connections} connections from wrk ({threads} thread(s)), {seconds} s per scenario, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("load average before: {}, after: {}", load_before.trim(), load_after.trim());
    println!(
        "\n| scenario | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms | CPU µs/req: API | PostgreSQL | Redis | wrk and rest | cache hits / misses | Redis cmds / reads per req |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for s in &results {
        let w = &s.wrk;
        let ms = |us: u64| us as f64 / 1000.0;
        let api = s.per_request(|x| x.api_cpu) * 1e6;
        let pg = s.per_request(|x| x.postgres_cpu) * 1e6;
        let redis = s.per_request(|x| x.redis_cpu) * 1e6;
        let machine = s.per_request(|x| x.machine_cpu) * 1e6;
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} | {:.2} / {:.2} |",
            s.name,
            w.requests,
            s.errors(),
            w.requests as f64 / (w.duration_us as f64 / 1e6),
            ms(w.p50_us),
            ms(w.p95_us),
            ms(w.p99_us),
            ms(w.max_us),
            api,
            pg,
            redis,
            (machine - api - pg - redis).max(0.0),
            s.after.cache_hits - s.before.cache_hits,
            s.after.cache_misses - s.before.cache_misses,
            // Less the probe's own INFO command.
            s.per_request(|x| x.redis_commands) - 1.0 / w.requests.max(1) as f64,
            s.per_request(|x| x.redis_reads) - 1.0 / w.requests.max(1) as f64,
        );
    }

    // The scenarios measured what they say: no errors, every scan a hit, or every scan a miss.
    for s in &results {
        assert_eq!(s.errors(), 0, "errors in {}", s.name);
        let (hits, misses) = (s.after.cache_hits - s.before.cache_hits, s.after.cache_misses - s.before.cache_misses);
        if s.name.ends_with("(cache hit)") {
            assert_eq!(misses, 0.0, "the cache-hit scenario missed");
        }
        if s.name.ends_with("(cache miss)") {
            assert_eq!(hits, 0.0, "the cache-miss scenario hit");
        }
    }

    let _ = api.start_kill();
    let _ = api.wait().await;
    println!("\nAPI access log: {} lines", log_lines.await.unwrap_or(0));
    let mut admin = PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).execute(&mut admin).await;
    // The cached results (hundreds of thousands of keys) would otherwise stay in Redis for the
    // cache TTL and slow the next run down.
    let removed = remove_keys(&mut probe.redis, &format!("bench:{db_name}:*")).await;
    println!("removed {removed} Redis keys of this run");
}

/// UNLINKs every key matching `pattern`, a SCAN page at a time.
async fn remove_keys(redis: &mut redis::aio::MultiplexedConnection, pattern: &str) -> u64 {
    let mut cursor = 0u64;
    let mut removed = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(redis)
            .await
            .expect("Redis SCAN");
        if !keys.is_empty() {
            removed += redis::cmd("UNLINK").arg(&keys).query_async::<u64>(redis).await.expect("Redis UNLINK");
        }
        if next == 0 {
            return removed;
        }
        cursor = next;
    }
}
