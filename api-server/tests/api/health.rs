use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_endpoints_report_up() {
    let app = spawn_app().await;

    let resp = app.get("/health").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "securityguard-api");

    let resp = app.get("/health/live").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "alive");

    let resp = app.get("/health/ready").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
    assert_eq!(body["checks"]["redis"]["status"], "up");

    let resp = app.get("/health/detailed").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["environment"], "test");
    let c = &body["components"];
    assert_eq!(c["postgres"]["status"], "up");
    assert!(c["postgres"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(c["redis"]["status"], "up");
    assert_eq!(c["patterns"]["version"], 1);
    assert_eq!(c["schema"]["version"], c["schema"]["expected"]);
    assert_eq!(c["schema"]["version"], 20261130000001i64);
    assert_eq!(c["claude"]["configured"], false);
    assert_eq!(c["solana_rpc"]["configured"], false);
}

#[tokio::test]
async fn detailed_health_reports_configured_integrations() {
    let app = spawn_app_with(|c| {
        c.claude_api_key = Some("key".into());
        c.solana_rpc_url = Some("http://127.0.0.1:8899".into());
    })
    .await;
    let body: Value = app.get("/health/detailed").await.json().await.unwrap();
    assert_eq!(body["components"]["claude"]["configured"], true);
    assert_eq!(body["components"]["solana_rpc"]["configured"], true);
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_text_format() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live").await.status(), 200);
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(r#"securityguard_http_requests_total{route="/health/live",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("securityguard_http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("securityguard_process_resident_memory_bytes "), "{text}");
    assert!(text.contains("securityguard_process_cpu_seconds "), "{text}");
    assert!(text.contains("securityguard_log_lines_dropped_total 0\n"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = spawn_app().await;
    let resp = app.get("/health").await;
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(uuid::Uuid::parse_str(&generated).unwrap().get_version_num(), 4);

    let resp = app.client.get(app.url("/health")).header("x-request-id", "my-trace-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "my-trace-123");

    // Error responses carry it too.
    let resp = app.get("/nope").await;
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn shutdown_turns_unready_before_closing() {
    let mut app = spawn_app_with(|c| c.shutdown_delay_seconds = 2).await;
    let resp = app.get("/health/ready").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("connection").is_none(), "connections are kept alive while serving");
    app.trigger_shutdown();
    wait_until(std::time::Duration::from_secs(5), "readiness to turn 503", || async {
        app.get("/health/ready").await.status() == 503
    })
    .await;
    let resp = app.get("/health/ready").await;
    // Every answer while draining closes its connection, so that clients do not reuse it.
    assert_eq!(resp.headers().get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "shutting_down");
    // Liveness is unaffected while draining.
    assert_eq!(app.get("/health/live").await.status(), 200);
    // After the delay the server stops by itself.
    let server = app.server.take().unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "server did not stop cleanly: {result:?}");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let mut app = spawn_app_with(|c| c.shutdown_delay_seconds = 0).await;
    // A request whose body is still being sent when shutdown starts.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let req = app.client.post(app.url("/v1/auth/refresh")).header("content-type", "application/json").body(body).send();
    let pending = tokio::spawn(req);
    tx.send(Ok(b"{\"refresh_token\":".to_vec())).await.unwrap();
    // The server is serving it (the /metrics request itself is the other one in flight).
    wait_until(std::time::Duration::from_secs(10), "the request to be in flight", || async {
        let text = app.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("securityguard_http_requests_in_flight "))
            .is_some_and(|v| v.trim() == "2")
    })
    .await;
    app.trigger_shutdown();
    tx.send(Ok(b"\"sgr_nope\"}".to_vec())).await.unwrap();
    drop(tx);
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), pending)
        .await
        .expect("in-flight request finished")
        .unwrap()
        .expect("in-flight request got a response");
    assert_error(resp, 401, "invalid_refresh_token").await;
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Managed PostgreSQL services require TLS: with `?sslmode=require` the API migrates, turns ready
/// and its pool's connections are encrypted (the test server has a self-signed certificate,
/// scripts/services/start.sh).
#[tokio::test]
async fn postgres_over_tls_with_sslmode_require() {
    let app = spawn_app_with(|c| c.database_url.push_str("?sslmode=require")).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(ssl, "the API's connection is encrypted");
}
