//! Sign-In-With-Solana, tokens and their failure cases.

use ed25519_dalek::Signer;
use securityguard_api::auth::Role;
use securityguard_api::auth::jwt::{self, Claims};
use serde_json::{Value, json};

use crate::helpers::*;

async fn signin_failures(app: &TestApp, reason: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let needle = format!("securityguard_signin_failures_total{{reason=\"{reason}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&needle)).map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn nonce_is_stored_with_a_ttl() {
    let app = spawn_app().await;
    let body: Value = app.get("/v1/auth/nonce").await.json().await.unwrap();
    let nonce = body["nonce"].as_str().unwrap();
    assert_eq!(nonce.len(), 24);
    assert_eq!(body["domain"], DOMAIN);
    assert_eq!(body["uri"], URI);
    assert_eq!(body["chain_id"], CHAIN);
    let mut conn = app.state.redis.clone();
    let ttl: i64 = redis::cmd("TTL").arg(app.state.key(&["nonce", nonce])).query_async(&mut conn).await.unwrap();
    assert!((1..=300).contains(&ttl), "ttl {ttl}");
    let other: Value = app.get("/v1/auth/nonce").await.json().await.unwrap();
    assert_ne!(other["nonce"], body["nonce"]);
}

#[tokio::test]
async fn sign_in_refresh_and_logout() {
    let app = spawn_app().await;
    let key = random_key();
    let tokens = app.sign_in(&key).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["role"], "user");
    assert_eq!(tokens["wallet"], address(&key));
    let access = tokens["access_token"].as_str().unwrap();

    let me: Value = app.get_auth("/v1/auth/me", access).await.json().await.unwrap();
    assert_eq!(me["wallet"], address(&key));
    assert_eq!(me["role"], "user");

    let row: (String,) = sqlx::query_as("SELECT role FROM users WHERE wallet = $1")
        .bind(address(&key))
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(row.0, "user");

    // The refresh token is stored hashed, never in clear.
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let stored: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT token_hash FROM refresh_tokens").fetch_all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.len(), 32);
    assert_ne!(stored[0].0, refresh.as_bytes());

    // Rotation: a new refresh token; the old one is spent.
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh})).await;
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);
    let access2 = rotated["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get_auth("/v1/auth/me", &access2).await.status(), 200);

    // Logout revokes the refresh family and the presented access token.
    let resp = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(&access2)
        .json(&json!({"refresh_token": refresh2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_error(app.get_auth("/v1/auth/me", &access2).await, 401, "token_revoked").await;
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh2})).await;
    assert_error(resp, 401, "refresh_token_reused").await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family() {
    let app = spawn_app().await;
    let tokens = app.sign_in(&random_key()).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let rotated: Value =
        app.post_json("/v1/auth/refresh", &json!({"refresh_token": first})).await.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    // The stolen first token comes back: refused, and the legitimate second one dies with it.
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": first})).await;
    assert_error(resp, 401, "refresh_token_reused").await;
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": second})).await;
    assert_error(resp, 401, "refresh_token_reused").await;
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(live, 0);
    assert_eq!(signin_failures(&app, "refresh_token_reused").await, 2);
}

#[tokio::test]
async fn refresh_failures() {
    let app = spawn_app().await;
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": "garbage"})).await;
    assert_error(resp, 401, "invalid_refresh_token").await;
    let unknown = format!("sgr_{}", "A".repeat(43));
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": unknown})).await;
    assert_error(resp, 401, "invalid_refresh_token").await;

    let tokens = app.sign_in(&random_key()).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'").execute(&app.db).await.unwrap();
    let resp = app.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh})).await;
    assert_error(resp, 401, "refresh_token_expired").await;
}

#[tokio::test]
async fn admin_wallets_get_the_admin_role() {
    let app = spawn_app().await;
    let tokens = app.sign_in(&admin_key()).await;
    assert_eq!(tokens["role"], "admin");
    let claims = jwt::verify(&app.state.config, tokens["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.role, Role::Admin);
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let app = spawn_app().await;
    let key = random_key();
    let msg = app.signin_message(&key).await;
    let text = msg.to_text();
    // Signed by another key.
    let sig = random_key().sign(text.as_bytes());
    let resp = app
        .post_json(
            "/v1/auth/verify",
            &json!({"message": text, "signature": bs58::encode(sig.to_bytes()).into_string()}),
        )
        .await;
    assert_error(resp, 401, "bad_signature").await;
    // Signature over a different text.
    let sig = key.sign(b"something else");
    let resp = app
        .post_json(
            "/v1/auth/verify",
            &json!({"message": text, "signature": bs58::encode(sig.to_bytes()).into_string()}),
        )
        .await;
    assert_error(resp, 401, "bad_signature").await;
    // Base64 signatures are accepted too, and the nonce was not spent by the failures.
    let sig = key.sign(text.as_bytes());
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
    let resp = app.post_json("/v1/auth/verify", &json!({"message": text, "signature": b64})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(signin_failures(&app, "bad_signature").await, 2);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.db).await.unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn malformed_signature_is_a_400() {
    let app = spawn_app().await;
    let key = random_key();
    let msg = app.signin_message(&key).await;
    for sig in ["", "!!!notbase", "abc", &bs58::encode([1u8; 63]).into_string()] {
        let resp = app.post_json("/v1/auth/verify", &json!({"message": msg.to_text(), "signature": sig})).await;
        assert_error(resp, 400, "malformed_signature").await;
    }
}

type Tweak = fn(&mut securityguard_api::auth::siws::SiwsMessage);

#[tokio::test]
async fn wrong_domain_uri_chain_are_refused() {
    let app = spawn_app().await;
    let key = random_key();
    let cases: [(&str, Tweak); 4] = [
        ("wrong_domain", |m| m.domain = "evil.example".into()),
        ("wrong_uri", |m| m.uri = "https://evil.example".into()),
        ("wrong_chain", |m| m.chain_id = "devnet".into()),
        ("unsupported_version", |m| m.version = "2".into()),
    ];
    for (code, tweak) in cases {
        let mut msg = app.signin_message(&key).await;
        tweak(&mut msg);
        assert_error(app.verify(&key, &msg).await, 401, code).await;
        assert_eq!(signin_failures(&app, code).await, 1, "{code}");
    }
}

#[tokio::test]
async fn expired_and_future_messages_are_refused() {
    let app = spawn_app().await;
    let key = random_key();
    let now = jiff::Timestamp::now();

    let mut msg = app.signin_message(&key).await;
    msg.issued_at = now - jiff::SignedDuration::from_secs(120);
    msg.expiration_time = Some(now - jiff::SignedDuration::from_secs(1));
    assert_error(app.verify(&key, &msg).await, 401, "expired_message").await;

    let mut msg = app.signin_message(&key).await;
    msg.issued_at = now - jiff::SignedDuration::from_secs(3600);
    msg.expiration_time = None;
    assert_error(app.verify(&key, &msg).await, 401, "message_too_old").await;

    let mut msg = app.signin_message(&key).await;
    msg.issued_at = now + jiff::SignedDuration::from_secs(600);
    msg.expiration_time = Some(now + jiff::SignedDuration::from_secs(900));
    assert_error(app.verify(&key, &msg).await, 401, "not_yet_valid").await;
}

#[tokio::test]
async fn replayed_or_unknown_nonce_is_refused() {
    let app = spawn_app().await;
    let key = random_key();
    let msg = app.signin_message(&key).await;
    assert_eq!(app.verify(&key, &msg).await.status(), 200);
    // The same signed message again.
    assert_error(app.verify(&key, &msg).await, 401, "invalid_nonce").await;
    // A nonce the server never issued.
    let mut msg = app.signin_message(&key).await;
    msg.nonce = "NeverIssued12345".into();
    assert_error(app.verify(&key, &msg).await, 401, "invalid_nonce").await;
    assert_eq!(signin_failures(&app, "invalid_nonce").await, 2);
}

#[tokio::test]
async fn signer_must_be_the_address_in_the_message() {
    let app = spawn_app().await;
    let key = random_key();
    let msg = app.signin_message(&key).await;
    let text = msg.to_text();
    let sig = key.sign(text.as_bytes());
    let resp = app
        .post_json(
            "/v1/auth/verify",
            &json!({
                "message": text,
                "signature": bs58::encode(sig.to_bytes()).into_string(),
                "public_key": address(&random_key()),
            }),
        )
        .await;
    assert_error(resp, 401, "address_mismatch").await;
    // An address that is not a public key.
    let mut msg = app.signin_message(&key).await;
    msg.address = "NotAKey".into();
    assert_error(app.verify(&key, &msg).await, 401, "invalid_address").await;
}

#[tokio::test]
async fn malformed_messages_are_a_400() {
    let app = spawn_app().await;
    let sig = bs58::encode([0u8; 64]).into_string();
    for message in ["", "hello", &"x".repeat(5000)] {
        let resp = app.post_json("/v1/auth/verify", &json!({"message": message, "signature": sig})).await;
        assert_error(resp, 400, "malformed_message").await;
    }
}

fn claims(wallet: &str, exp_offset: i64) -> Claims {
    let now = jiff::Timestamp::now().as_second();
    Claims {
        sub: wallet.into(),
        role: Role::Admin,
        iat: now,
        exp: now + exp_offset,
        jti: uuid::Uuid::new_v4().to_string(),
        iss: jwt::ISSUER.into(),
        aud: jwt::AUDIENCE.into(),
    }
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let wallet = address(&random_key());

    assert_error(app.get("/v1/auth/me").await, 401, "missing_token").await;
    assert_error(app.get_auth("/v1/auth/me", "not.a.jwt").await, 401, "invalid_token").await;
    let resp =
        app.client.get(app.url("/v1/auth/me")).header("authorization", "Basic dXNlcjpwYXNz").send().await.unwrap();
    assert_error(resp, 401, "invalid_token").await;

    // Signed with another secret.
    let mut forged_config = (*app.state.config).clone();
    forged_config.jwt_secret = "another-secret-another-secret-another-secret".into();
    let forged = jwt::encode(&forged_config, &claims(&wallet, 600)).unwrap();
    assert_error(app.get_auth("/v1/auth/me", &forged).await, 401, "invalid_token").await;

    // alg=none with our claims.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(&claims(&wallet, 600)).unwrap())
    );
    assert_error(app.get_auth("/v1/auth/me", &none).await, 401, "invalid_token").await;

    // Tampered payload (role escalation) with the original signature.
    let user = app.user_token().await;
    let parts: Vec<&str> = user.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
    assert_error(app.get_auth("/v1/auth/me", &tampered).await, 401, "invalid_token").await;

    // Expired (beyond the leeway).
    let expired = jwt::encode(&app.state.config, &claims(&wallet, -60)).unwrap();
    assert_error(app.get_auth("/v1/auth/me", &expired).await, 401, "token_expired").await;

    // Valid.
    let valid = jwt::encode(&app.state.config, &claims(&wallet, 600)).unwrap();
    assert_eq!(app.get_auth("/v1/auth/me", &valid).await.status(), 200);
}

#[tokio::test]
async fn per_wallet_and_per_ip_rate_limits() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_wallet = 3;
        c.rate_limit_per_ip = 1000;
    })
    .await;
    let token = app.user_token().await;
    for _ in 0..3 {
        assert_eq!(app.get_auth("/v1/auth/me", &token).await.status(), 200);
    }
    let resp = app.get_auth("/v1/auth/me", &token).await;
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_error(resp, 429, "rate_limited").await;
    // Another wallet is not affected.
    let other = app.user_token().await;
    assert_eq!(app.get_auth("/v1/auth/me", &other).await.status(), 200);

    let app = spawn_app_with(|c| c.rate_limit_per_ip = 5).await;
    for _ in 0..5 {
        assert_eq!(app.get("/v1/auth/nonce").await.status(), 200);
    }
    let resp = app.get("/v1/auth/nonce").await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(resp, 429, "rate_limited").await;
    // Health and metrics are never rate limited.
    assert_eq!(app.get("/health/ready").await.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"securityguard_rate_limited_total{reason="ip"} 1"#), "{metrics}");
}

#[tokio::test]
async fn forwarded_for_is_used_only_when_trusted() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_ip = 2;
        c.trust_forwarded_for = true;
    })
    .await;
    let nonce = |ip: &'static str| app.client.get(app.url("/v1/auth/nonce")).header("x-forwarded-for", ip).send();
    for _ in 0..2 {
        assert_eq!(nonce("203.0.113.7, 10.0.0.1").await.unwrap().status(), 200);
    }
    assert_error(nonce("203.0.113.7").await.unwrap(), 429, "rate_limited").await;
    // Another client behind the same proxy has its own budget.
    assert_eq!(nonce("203.0.113.8").await.unwrap().status(), 200);

    // Not trusted: the header is ignored and the peer address counts.
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 2).await;
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let resp = app.client.get(app.url("/v1/auth/nonce")).header("x-forwarded-for", ip).send();
        assert_eq!(resp.await.unwrap().status(), 200);
    }
    let resp = app.client.get(app.url("/v1/auth/nonce")).header("x-forwarded-for", "198.51.100.3");
    assert_error(resp.send().await.unwrap(), 429, "rate_limited").await;
}

#[tokio::test]
async fn expired_refresh_tokens_are_cleaned_up() {
    let app = spawn_app().await;
    let a = app.sign_in(&random_key()).await;
    let b = app.sign_in(&random_key()).await;
    // a's token expired two days ago; b's is current.
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '2 days' WHERE token_hash = $1")
        .bind(securityguard_api::auth::refresh::hash(a["refresh_token"].as_str().unwrap()))
        .execute(&app.db)
        .await
        .unwrap();
    let deleted = securityguard_api::auth::refresh::delete_expired(&app.db).await.unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT token_hash FROM refresh_tokens").fetch_all(&app.db).await.unwrap();
    assert_eq!(left, vec![(securityguard_api::auth::refresh::hash(b["refresh_token"].as_str().unwrap()),)]);
}
