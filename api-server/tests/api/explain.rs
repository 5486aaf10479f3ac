//! The optional explanation endpoint against a local stub of the Messages API.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Clone, Default)]
struct Stub {
    calls: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    status: u16,
}

async fn messages(State(stub): State<Stub>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    stub.calls.lock().unwrap().push((headers, body));
    let status = StatusCode::from_u16(stub.status).unwrap();
    if !status.is_success() {
        return (status, Json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})));
    }
    (
        status,
        Json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
            "content": [{"type": "text", "text": "This transaction hands your account to another program."}],
            "stop_reason": "end_turn",
        })),
    )
}

async fn start_stub(status: u16) -> (String, Stub) {
    let stub = Stub { calls: Arc::default(), status };
    let app = Router::new().route("/v1/messages", post(messages)).with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, stub)
}

async fn a_scan(app: &TestApp, token: &str) -> String {
    let body: Value =
        app.post_auth("/v1/scan/domains", token, &json!({"domains": ["phant0m.app"]})).await.json().await.unwrap();
    body["scan_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn explains_a_scan_through_the_messages_api() {
    let (url, stub) = start_stub(200).await;
    let app = spawn_app_with(|c| {
        c.claude_api_key = Some("sk-test-key".into());
        c.claude_api_url = url;
    })
    .await;
    let token = app.user_token().await;
    let id = a_scan(&app, &token).await;

    let resp = app.post_auth(&format!("/v1/scans/{id}/explain"), &token, &json!({})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["explanation"], "This transaction hands your account to another program.");
    assert_eq!(body["cached"], false);
    {
        let calls = stub.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let (headers, request) = &calls[0];
        assert_eq!(headers["x-api-key"], "sk-test-key");
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        assert_eq!(request["model"], "test-model");
        let content = request["messages"][0]["content"].as_str().unwrap();
        assert!(content.contains("homoglyph_domain"), "{content}");
        assert!(!content.contains(&id), "the scan id is not sent");
    }
    // Cached: the stub is not called again.
    let body: Value = app.post_auth(&format!("/v1/scans/{id}/explain"), &token, &json!({})).await.json().await.unwrap();
    assert_eq!(body["cached"], true);
    assert_eq!(stub.calls.lock().unwrap().len(), 1);

    // Someone else's scan.
    let other = app.user_token().await;
    let resp = app.post_auth(&format!("/v1/scans/{id}/explain"), &other, &json!({})).await;
    assert_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn upstream_failures_are_a_502() {
    let (url, _stub) = start_stub(529).await;
    let app = spawn_app_with(|c| {
        c.claude_api_key = Some("sk-test-key".into());
        c.claude_api_url = url;
    })
    .await;
    let token = app.user_token().await;
    let id = a_scan(&app, &token).await;
    let resp = app.post_auth(&format!("/v1/scans/{id}/explain"), &token, &json!({})).await;
    assert_error(resp, 502, "bad_gateway").await;

    // Unreachable service.
    let app = spawn_app_with(|c| {
        c.claude_api_key = Some("sk-test-key".into());
        c.claude_api_url = "http://127.0.0.1:9".into();
    })
    .await;
    let token = app.user_token().await;
    let id = a_scan(&app, &token).await;
    let resp = app.post_auth(&format!("/v1/scans/{id}/explain"), &token, &json!({})).await;
    assert_error(resp, 502, "bad_gateway").await;
}
