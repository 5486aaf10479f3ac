//! `just bench-api`: requests/s and latency percentiles at 100 concurrent connections for
//! `/v1/scan/transactions` (cache hit and cache miss) and `/health/live` (the ceiling of the HTTP
//! stack), against the PostgreSQL and Redis of scripts/services/start.sh.
//!
//!   cargo run --release -p securityguard-api --example bench
//!
//! Environment: SG_TEST_DATABASE_URL, SG_TEST_REDIS_URL (from the services env file),
//! BENCH_CONCURRENCY (100), BENCH_REQUESTS per scenario (20000), BENCH_MAX_SECONDS per
//! scenario (20). Traffic goes to 127.0.0.1 only; every loop is bounded in count and time.
//! The server and the load generator share this process and the machine's cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use securityguard_api::auth::siws::SiwsMessage;
use securityguard_api::config::{Config, Environment};
use securityguard_api::startup::Application;
use serde_json::{Value, json};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use sqlx::{Connection, PgConnection};

/// glibc malloc showed up at the top of the scan benchmark's profile (thread contention).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Scenario {
    name: &'static str,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    /// CPU time of this process (server and load generator) per request, in microseconds.
    cpu_us_per_request: f64,
    /// Redis commands, and socket reads (round trips; several clients' may share one), per
    /// request, from the server's counters.
    redis_commands_per_request: f64,
    redis_reads_per_request: f64,
}

/// User plus system CPU seconds of this process, from /proc (0 elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some(end) = stat.rfind(')') else { return 0.0 };
    let fields: Vec<&str> = stat[end + 2..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The Redis server's counts of commands processed and read events.
struct Counters {
    redis: redis::aio::MultiplexedConnection,
}

impl Counters {
    async fn sample(&mut self) -> (f64, f64) {
        let info: String = redis::cmd("INFO").arg("stats").query_async(&mut self.redis).await.unwrap_or_default();
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
        };
        (field("total_commands_processed:"), field("total_reads_processed:"))
    }
}

impl Scenario {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Runs `total` requests from `concurrency` workers; `make(i)` builds request i.
async fn run<F>(
    name: &'static str,
    counters: &mut Counters,
    concurrency: usize,
    total: usize,
    max: Duration,
    make: F,
) -> Scenario
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    // Scans answered before are written in the background: let those writes finish first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (commands_before, reads_before) = counters.sample().await;
    let cpu_before = process_cpu_seconds();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + max;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (make, next) = (make.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                match make(i).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_seconds() - cpu_before;
    let (commands_after, reads_after) = counters.sample().await;
    latencies.sort_unstable();
    let n = latencies.len().max(1) as f64;
    Scenario {
        name,
        requests: latencies.len(),
        elapsed,
        latencies,
        errors,
        cpu_us_per_request: cpu * 1e6 / n,
        // Less this function's own INFO command.
        redis_commands_per_request: (commands_after - commands_before - 1.0) / n,
        redis_reads_per_request: (reads_after - reads_before - 1.0) / n,
    }
}

fn transaction(n: u64, payer: &Keypair) -> Vec<u8> {
    let mut hash = [7u8; 32];
    hash[..8].copy_from_slice(&n.to_le_bytes());
    let to = Address::new_from_array([9u8; 32]);
    let ixs = [
        solana_system_interface::instruction::transfer(&payer.pubkey(), &to, 1 + n),
        solana_system_interface::instruction::assign(&payer.pubkey(), &Address::new_from_array([5u8; 32])),
    ];
    let tx = solana_transaction::Transaction::new_signed_with_payer(
        &ixs,
        Some(&payer.pubkey()),
        &[payer],
        Hash::new_from_array(hash),
    );
    bincode::serialize(&tx).unwrap()
}

#[tokio::main]
async fn main() {
    let concurrency = env_or("BENCH_CONCURRENCY", 100usize);
    let total = env_or("BENCH_REQUESTS", 20_000usize);
    let max = Duration::from_secs(env_or("BENCH_MAX_SECONDS", 20u64));
    let admin_url = std::env::var("SG_TEST_DATABASE_URL")
        .expect("SG_TEST_DATABASE_URL: run scripts/services/start.sh and source its env file");
    let redis_url = std::env::var("SG_TEST_REDIS_URL").expect("SG_TEST_REDIS_URL");

    let db_name = format!("sg_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db_name}")).execute(&mut admin).await.unwrap();
    let base = admin_url.rsplit_once('/').unwrap().0;
    let mut counters = Counters {
        redis: redis::Client::open(redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap(),
    };
    let config = Config {
        database_url: format!("{base}/{db_name}"),
        database_max_connections: 20,
        redis_url,
        redis_key_prefix: format!("bench:{db_name}:"),
        jwt_secret: "bench-secret-bench-secret-bench-secret!".into(),
        jwt_ttl_seconds: 3600,
        refresh_ttl_seconds: 3600,
        claude_api_key: None,
        claude_api_url: "http://127.0.0.1:9".into(),
        claude_model: "none".into(),
        solana_rpc_url: None,
        environment: Environment::Test,
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        admin_wallets: vec![],
        siws_domain: "bench.local".into(),
        siws_uri: "https://bench.local".into(),
        siws_chain_id: "mainnet".into(),
        nonce_ttl_seconds: 300,
        rate_limit_per_ip: u32::MAX,
        rate_limit_per_wallet: u32::MAX,
        max_body_bytes: 256 * 1024,
        shutdown_delay_seconds: 0,
        request_timeout_seconds: 20,
        trust_forwarded_for: false,
        scan_cache_ttl_seconds: 3600,
    };
    let app = Application::build(config).await.expect("start the API");
    app.migrate(Some(Duration::from_secs(10))).await.expect("migrate");
    let url = format!("http://{}", app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    // Sign in once.
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let nonce: Value = client.get(format!("{url}/v1/auth/nonce")).send().await.unwrap().json().await.unwrap();
    let now = jiff::Timestamp::now();
    let msg = SiwsMessage {
        domain: "bench.local".into(),
        address: bs58::encode(key.verifying_key().as_bytes()).into_string(),
        statement: None,
        uri: "https://bench.local".into(),
        version: "1".into(),
        chain_id: "mainnet".into(),
        nonce: nonce["nonce"].as_str().unwrap().into(),
        issued_at: now,
        expiration_time: None,
        not_before: None,
        request_id: None,
        resources: vec![],
    };
    let text = msg.to_text();
    let sig = bs58::encode(key.sign(text.as_bytes()).to_bytes()).into_string();
    let tokens: Value = client
        .post(format!("{url}/v1/auth/verify"))
        .json(&json!({"message": text, "signature": sig}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();

    let payer = Keypair::new_from_array([3u8; 32]);
    let b64 = base64::engine::general_purpose::STANDARD;
    // Request bodies, URLs and the Authorization header are built before the clock starts, so
    // that the load generator (which shares the cores with the server) does no JSON work.
    let body =
        |n: u64| axum::body::Bytes::from(json!({"transactions": [b64.encode(transaction(n, &payer))]}).to_string());
    let hit_body = body(0);
    // Distinct transactions (different blockhashes) so that every request misses the cache.
    let miss_bodies: Arc<Vec<axum::body::Bytes>> = Arc::new((1..=total as u64).map(body).collect());
    let scan_url = reqwest::Url::parse(&format!("{url}/v1/scan/transactions")).unwrap();
    let live_url = reqwest::Url::parse(&format!("{url}/health/live")).unwrap();
    let bearer = reqwest::header::HeaderValue::try_from(format!("Bearer {token}")).unwrap();
    let scan = move |c: &reqwest::Client, body: axum::body::Bytes| {
        c.post(scan_url.clone())
            .header(reqwest::header::AUTHORIZATION, bearer.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    };

    let mut results = Vec::new();
    {
        let (c, u) = (client.clone(), live_url.clone());
        let _ = run("warm-up", &mut counters, concurrency, 1000, max, move |_| c.get(u.clone())).await;
    }
    {
        let (c, u) = (client.clone(), live_url.clone());
        results.push(run("GET /health/live", &mut counters, concurrency, total, max, move |_| c.get(u.clone())).await);
    }
    {
        let (c, b, scan) = (client.clone(), hit_body.clone(), scan.clone());
        let first = scan(&c, b.clone()).send().await.unwrap();
        assert!(first.status().is_success());
        // Steady state, as a running server is: the scan path's pools (PostgreSQL connections
        // of the background scan writer, Redis) are opened before the clock starts.
        let (wc, wb, wscan) = (c.clone(), b.clone(), scan.clone());
        let _ = run("scan warm-up", &mut counters, concurrency, 2000, max, move |_| wscan(&wc, wb.clone())).await;
        results.push(
            run("POST /v1/scan/transactions (cache hit)", &mut counters, concurrency, total, max, move |_| {
                scan(&c, b.clone())
            })
            .await,
        );
    }
    {
        let (c, b, scan) = (client.clone(), miss_bodies.clone(), scan.clone());
        results.push(
            run("POST /v1/scan/transactions (cache miss)", &mut counters, concurrency, total, max, move |i| {
                scan(&c, b[i].clone())
            })
            .await,
        );
    }

    println!(
        "\n{} concurrent connections, up to {total} requests or {}s per scenario, {} cores\n",
        concurrency,
        max.as_secs(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "| scenario | requests | errors | req/s | p50 ms | p95 ms | p99 ms | CPU µs/req (this process) | Redis cmds/req | Redis reads/req |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &results {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
            s.name,
            s.requests,
            s.errors,
            s.requests as f64 / s.elapsed.as_secs_f64(),
            s.percentile(0.50),
            s.percentile(0.95),
            s.percentile(0.99),
            s.cpu_us_per_request,
            s.redis_commands_per_request,
            s.redis_reads_per_request,
        );
    }

    let _ = stop_tx.send(());
    let _ = server.await;
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).execute(&mut admin).await;
}
