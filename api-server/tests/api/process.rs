//! The real binary: configuration from the environment, JSON logs, SIGTERM handling.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn binary_serves_logs_json_and_stops_on_sigterm() {
    let (db_name, db_url) = create_database().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_securityguard-api"))
        .env_clear()
        .env("DATABASE_URL", &db_url)
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", format!("proc:{db_name}:"))
        .env("JWT_SECRET", JWT_SECRET)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SHUTDOWN_DELAY_SECONDS", "1")
        .env("ENVIRONMENT", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines =
        std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<String>>());

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_until(Duration::from_secs(20), "the binary to become ready", || async {
        client.get(format!("{base}/health/ready")).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let resp = client.get(format!("{base}/health")).header("x-request-id", "proc-test-1").send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // Unready during the shutdown delay.
    wait_until(Duration::from_secs(5), "readiness 503 after SIGTERM", || async {
        client.get(format!("{base}/health/ready")).send().await.is_ok_and(|r| r.status() == 503)
    })
    .await;
    let started = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "binary did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");

    let lines = lines.join().unwrap();
    let logs: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let messages: Vec<&str> = logs.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"database migrations applied"), "{messages:?}");
    assert!(messages.contains(&"shutting down: now unready"), "{messages:?}");
    assert!(messages.contains(&"stopped"), "{messages:?}");
    // The access line of the request, with its id.
    let request_log = logs
        .iter()
        .find(|l| l["span"]["request_id"] == "proc-test-1" && l["target"] == "securityguard_api::access")
        .unwrap_or_else(|| panic!("no access line with the request id: {lines:#?}"));
    assert_eq!(request_log["span"]["path"], "/health");
    assert_eq!(request_log["span"]["method"], "GET");
    assert_eq!(request_log["fields"]["status"], 200);
    assert!(request_log["fields"]["latency_ms"].as_f64().is_some(), "{request_log}");
    assert_eq!(request_log["level"], "INFO");
    drop_database(&db_name);
}
