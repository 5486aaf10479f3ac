//! `PUT /v1/feeds/{name}`: threat feeds written with a machine token read from a file.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app_with};

const TOKEN: &str = "feed-token-0123456789abcdef0123456789abcdef";
const NEXT: &str = "feed-token-next-0123456789abcdef0123456789";

/// The app and its token file (bind `_dir`: the folder goes when it is dropped).
struct FeedApp {
    app: TestApp,
    tokens: std::path::PathBuf,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn spawn_feed_app() -> FeedApp {
    let dir = std::env::temp_dir().join(format!("sg-feeds-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    let path = tokens.clone();
    let app = spawn_app_with(move |c| {
        c.feed_tokens_file = Some(path);
        c.feed_max_body_bytes = 256 * 1024;
        c.feed_max_entries = 1000;
    })
    .await;
    FeedApp { app, tokens, _dir: TempDir(dir) }
}

fn domains(values: &[&str]) -> Value {
    let entries: Vec<Value> =
        values.iter().enumerate().map(|(i, v)| json!({"kind": "blocked_domain", "value": v, "line": i + 1})).collect();
    json!({"entries": entries, "url": "http://feeds.test/list.txt"})
}

async fn put(app: &TestApp, name: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let req = app.client.put(app.url(&format!("/v1/feeds/{name}"))).json(body);
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    req.send().await.unwrap()
}

async fn scan(app: &TestApp, user: &str, domain: &str) -> String {
    let body: Value =
        app.post_auth("/v1/scan/domains", user, &json!({"domains": [domain]})).await.json().await.unwrap();
    body["action"].as_str().unwrap_or_default().to_owned()
}

/// The (value, source) pairs of the blocked domains, sorted.
async fn blocked(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT value, source FROM patterns WHERE kind = 'blocked_domain' ORDER BY value, source")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn version(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT version FROM pattern_set").fetch_one(&app.db).await.unwrap()
}

#[tokio::test]
async fn feed_sync_needs_a_machine_token_not_a_wallet() {
    let FeedApp { app, _dir, .. } = spawn_feed_app().await;
    let body = domains(&["drainer-one.xyz"]);
    assert_error(put(&app, "community", None, &body).await, 401, "missing_token").await;
    assert_error(put(&app, "community", Some("wrong-token-0123456789abcdef0123"), &body).await, 401, "invalid_token")
        .await;
    // An admin's wallet sign-in is not a machine credential.
    let admin = app.admin_token().await;
    assert_error(put(&app, "community", Some(&admin), &body).await, 401, "invalid_token").await;
    assert_eq!(version(&app).await, 1, "nothing changed");

    // Without a token file, the route is turned off.
    let plain = spawn_app_with(|_| {}).await;
    assert_error(put(&plain, "community", Some(TOKEN), &body).await, 503, "unavailable").await;
}

#[tokio::test]
async fn tokens_rotate_by_rewriting_the_file() {
    let FeedApp { app, tokens, _dir } = spawn_feed_app().await;
    let body = domains(&["drainer-one.xyz"]);
    assert_eq!(put(&app, "community", Some(TOKEN), &body).await.status(), 200);
    assert_error(put(&app, "community", Some(NEXT), &body).await, 401, "invalid_token").await;
    // Both during the rotation, then only the new one: no restart in between.
    std::fs::write(&tokens, format!("{TOKEN}\n{NEXT}\n")).unwrap();
    assert_eq!(put(&app, "community", Some(NEXT), &body).await.status(), 200);
    assert_eq!(put(&app, "community", Some(TOKEN), &body).await.status(), 200);
    std::fs::write(&tokens, format!("# rotated\n{NEXT}\n")).unwrap();
    assert_error(put(&app, "community", Some(TOKEN), &body).await, 401, "invalid_token").await;
    assert_eq!(put(&app, "community", Some(NEXT), &body).await.status(), 200);
}

#[tokio::test]
async fn a_sync_replaces_its_feed_atomically_in_one_version() {
    let FeedApp { app, _dir, .. } = spawn_feed_app().await;
    let user = app.user_token().await;
    let admin = app.admin_token().await;
    // An admin's entry, and another feed's.
    let resp =
        app.post_auth("/v1/patterns", &admin, &json!({"kind": "blocked_domain", "value": "shared-lure.xyz"})).await;
    assert_eq!(resp.status(), 201);
    let other = put(&app, "other", Some(TOKEN), &domains(&["other-feed.xyz", "drainer-two.xyz"])).await;
    assert_eq!(other.status(), 200);
    let before = version(&app).await;

    let resp =
        put(&app, "community", Some(TOKEN), &domains(&["Drainer-One.xyz", "drainer-two.xyz", "shared-lure.xyz"])).await;
    assert_eq!(resp.status(), 200);
    let synced: Value = resp.json().await.unwrap();
    assert_eq!(synced["version"], before + 1, "one version for the whole feed: {synced}");
    assert_eq!(
        (synced["entries"].as_u64(), synced["added"].as_u64(), synced["removed"].as_u64()),
        (Some(3), Some(3), Some(0))
    );
    assert_eq!(scan(&app, &user, "drainer-one.xyz").await, "BLOCK");
    assert_eq!(scan(&app, &user, "login.drainer-two.xyz").await, "BLOCK");

    // The same feed again: nothing changes, no new version.
    let again: Value =
        put(&app, "community", Some(TOKEN), &domains(&["drainer-one.xyz", "drainer-two.xyz", "shared-lure.xyz"]))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!((again["version"].as_i64(), again["changed"].as_bool()), (Some(before + 1), Some(false)));

    // The feed shrinks: what it dropped is gone; the admin's and the other feed's entries stay.
    let shrunk: Value = put(&app, "community", Some(TOKEN), &domains(&["drainer-two.xyz"])).await.json().await.unwrap();
    assert_eq!((shrunk["version"].as_i64(), shrunk["removed"].as_u64()), (Some(before + 2), Some(2)));
    assert_ne!(scan(&app, &user, "drainer-one.xyz").await, "BLOCK", "dropped by the feed");
    assert_eq!(scan(&app, &user, "shared-lure.xyz").await, "BLOCK", "still the admin's");
    assert_eq!(
        blocked(&app).await,
        [
            ("claim-airdrop.xyz", "admin"),
            ("drainer-two.xyz", "feed:community"),
            ("drainer-two.xyz", "feed:other"),
            ("drainer.xyz", "admin"),
            ("other-feed.xyz", "feed:other"),
            ("shared-lure.xyz", "admin"),
        ]
        .map(|(v, s)| (v.to_owned(), s.to_owned()))
    );

    let changes: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT version, action, actor FROM pattern_changes WHERE actor LIKE 'feed:%' ORDER BY version")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        changes,
        [
            (before, "feed-sync".to_owned(), "feed:other".to_owned()),
            (before + 1, "feed-sync".to_owned(), "feed:community".to_owned()),
            (before + 2, "feed-sync".to_owned(), "feed:community".to_owned()),
        ]
    );

    // The feeds held, by name, with their counts: what the sync compares with its list.
    let held = |app: &TestApp| {
        let req = app.client.get(app.url("/v1/feeds")).bearer_auth(TOKEN);
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let listed = held(&app).await;
    let names: Vec<&str> = listed["feeds"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["community", "other"], "{listed}");
    assert!(listed["feeds"][0]["entries"].as_i64().unwrap() > 0);
    let resp = app.client.get(app.url("/v1/feeds")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "only a machine token lists the feeds");

    // A feed removed from the spec: its entries go, in one version.
    let resp = app.client.delete(app.url("/v1/feeds/community")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let listed = held(&app).await;
    assert_eq!(listed["feeds"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["feeds"][0]["name"], "other");
    assert_eq!(scan(&app, &user, "drainer-two.xyz").await, "BLOCK", "the other feed still lists it");
    assert_eq!(version(&app).await, before + 3);
}

#[tokio::test]
async fn a_refused_feed_changes_nothing() {
    let FeedApp { app, _dir, .. } = spawn_feed_app().await;
    let user = app.user_token().await;
    assert_eq!(put(&app, "community", Some(TOKEN), &domains(&["drainer-one.xyz"])).await.status(), 200);
    let before = (version(&app).await, blocked(&app).await);

    // An official domain (and a parent of one) in the feed: the whole feed is refused.
    let body = domains(&["drainer-new.xyz", "phantom.app", "not a domain", "station.jup.ag"]);
    let refused = assert_error(put(&app, "community", Some(TOKEN), &body).await, 400, "invalid_feed").await;
    let listed: Vec<(u64, u64)> = refused["error"]["details"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, [(1, 2), (2, 3), (3, 4)], "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("line 2"), "{refused}");
    assert!(refused["error"]["details"]["entries"][0]["reason"].as_str().unwrap().contains("official domain"));
    assert_eq!((version(&app).await, blocked(&app).await), before);
    assert_ne!(scan(&app, &user, "drainer-new.xyz").await, "BLOCK");
    assert_eq!(scan(&app, &user, "drainer-one.xyz").await, "BLOCK");

    // Kinds a feed may not write, empty and malformed bodies, bad names: 4xx JSON.
    let allow = json!({"entries": [{"kind": "allowed_domain", "value": "drainer-one.xyz"}]});
    assert_error(put(&app, "community", Some(TOKEN), &allow).await, 400, "invalid_feed").await;
    assert_error(put(&app, "community", Some(TOKEN), &json!({"entries": []})).await, 400, "empty_feed").await;
    assert_error(put(&app, "community", Some(TOKEN), &json!({"entries": "x"})).await, 400, "invalid_body").await;
    assert_error(put(&app, "Bad_Name", Some(TOKEN), &domains(&["a-b.xyz"])).await, 400, "invalid_feed_name").await;
    let raw = app
        .client
        .put(app.url("/v1/feeds/community"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(raw, 400, "invalid_json").await;
    let many: Vec<String> = (0..1001).map(|i| format!("d{i}.xyz")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_error(put(&app, "community", Some(TOKEN), &domains(&many)).await, 400, "feed_too_large").await;
    assert_eq!((version(&app).await, blocked(&app).await), before);
}

#[tokio::test]
async fn feed_bodies_have_their_own_size_limit() {
    let FeedApp { app, _dir, .. } = spawn_feed_app().await;
    // Larger than MAX_BODY_BYTES (64 KiB in tests), within the feed limit (256 KiB).
    let long: Vec<String> = (0..1000).map(|i| format!("{}-{i}.xyz", "a".repeat(50))).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let body = domains(&long);
    assert!(serde_json::to_vec(&body).unwrap().len() > 64 * 1024);
    assert_eq!(put(&app, "community", Some(TOKEN), &body).await.status(), 200);
    // Over the feed limit: 413 JSON, nothing changed.
    let before = version(&app).await;
    let huge = json!({"entries": [{"kind": "blocked_domain", "value": "x".repeat(300 * 1024)}]});
    assert_error(put(&app, "community", Some(TOKEN), &huge).await, 413, "payload_too_large").await;
    assert_eq!(version(&app).await, before);
}
