//! Malformed requests get 4xx JSON errors, never a 500 or a plain-text body.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_route_and_wrong_method_are_json() {
    let app = spawn_app().await;
    assert_error(app.get("/does/not/exist").await, 404, "not_found").await;
    let resp = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
    let resp = app.client.get(app.url("/v1/auth/verify")).send().await.unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn bad_json_wrong_content_type_and_shapes() {
    let app = spawn_app().await;
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = app.client.post(app.url("/v1/auth/verify")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    assert_error(post("{not json", Some("application/json")).await.unwrap(), 400, "invalid_json").await;
    assert_error(post("", Some("application/json")).await.unwrap(), 400, "invalid_json").await;
    assert_error(post(r#"{"message": 1}"#, Some("application/json")).await.unwrap(), 400, "invalid_body").await;
    assert_error(
        post(r#"{"message": "m", "signature": "s", "extra": true}"#, Some("application/json")).await.unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert_error(post(r#"{"message": "m"}"#, Some("text/plain")).await.unwrap(), 415, "unsupported_media_type").await;
    assert_error(post(r#"{"message": "m"}"#, None).await.unwrap(), 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app_with(|c| c.max_body_bytes = 4096).await;
    let big = json!({"message": "x".repeat(10_000), "signature": "s"});
    assert_error(app.post_json("/v1/auth/verify", &big).await, 413, "payload_too_large").await;
    // Without Content-Length (chunked) too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..10).map(|_| Ok(vec![b' '; 1000])).collect();
    let resp = app
        .client
        .post(app.url("/v1/auth/verify"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_error(resp, 413, "payload_too_large").await;
}

#[tokio::test]
async fn stalled_requests_time_out_with_json() {
    let app = spawn_app_with(|c| c.request_timeout_seconds = 1).await;
    // A body that never finishes arriving.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tx.send(Ok(b"{\"refresh_token\":".to_vec())).await.unwrap();
    let body = reqwest::Body::wrap_stream(futures::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    }));
    let started = std::time::Instant::now();
    let resp = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_error(resp, 503, "timeout").await;
    drop(tx);
}

#[test]
fn missing_or_invalid_configuration_names_the_variable() {
    let bin = env!("CARGO_BIN_EXE_securityguard-api");
    let run = |vars: &[(&str, &str)]| {
        let out = std::process::Command::new(bin).env_clear().envs(vars.iter().copied()).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let secret = "0123456789abcdef0123456789abcdef";
    let err = run(&[("REDIS_URL", "redis://127.0.0.1:1"), ("JWT_SECRET", secret)]);
    assert!(err.contains("DATABASE_URL"), "{err}");
    let err = run(&[("DATABASE_URL", "postgres://x@127.0.0.1:1/db"), ("JWT_SECRET", secret)]);
    assert!(err.contains("REDIS_URL"), "{err}");
    let base = [("DATABASE_URL", "postgres://x@127.0.0.1:1/db"), ("REDIS_URL", "redis://127.0.0.1:1")];
    let err = run(&base);
    assert!(err.contains("JWT_SECRET"), "{err}");
    let err = run(&[base[0], base[1], ("JWT_SECRET", "short")]);
    assert!(err.contains("invalid JWT_SECRET"), "{err}");
    let err = run(&[base[0], base[1], ("JWT_SECRET", secret), ("LISTEN_ADDR", "nope")]);
    assert!(err.contains("LISTEN_ADDR"), "{err}");
    let err = run(&[base[0], base[1], ("JWT_SECRET", secret), ("ENVIRONMENT", "moon")]);
    assert!(err.contains("ENVIRONMENT"), "{err}");
    let err = run(&[base[0], base[1], ("JWT_SECRET", secret), ("ADMIN_WALLETS", "abc")]);
    assert!(err.contains("ADMIN_WALLETS"), "{err}");
    let err = run(&[("DATABASE_URL", "mysql://x"), base[1], ("JWT_SECRET", secret)]);
    assert!(err.contains("invalid DATABASE_URL"), "{err}");
}
