//! Threat feeds on the real node: the sync CronJob runs `securityguard-operator feeds sync` in
//! the operator's image every minute, downloads feeds from an HTTP server on the node's bridge
//! address (where pods reach the host), and imports them into the API's pattern library with
//! the machine token the operator generated. A good feed is imported (a listed domain scans as
//! BLOCK); a broken feed and a feed listing an official domain change nothing and are reported
//! (ThreatFeedsSynced=False with the reason, a Warning Event, the metrics); a feed that shrinks
//! unblocks what it dropped; a feed taken off the list has its entries removed.
//!
//! Needs `SG_NODE_CLUSTER_DIR` (`e2e/controlplane/up.sh DIR && e2e/controlplane/node-up.sh DIR`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use securityguard_e2e::fixtures::GuardFixture;
use securityguard_e2e::node::{self, ApiClient, Site, new_wallet};
use securityguard_e2e::{kubectl, kubectl_ok};
use securityguard_operator::crd::{SecurityGuard, ThreatFeedStatus, ThreatFeedsSpec};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: &str = "shop";
/// A sync every minute, plus the Job's start and the kubelet: generous.
const SYNC_TIMEOUT: Duration = Duration::from_secs(240);

/// Feeds served over HTTP from the host, on the node's bridge address; their bodies change
/// while the test runs.
struct FeedServer {
    /// `http://<node address>:<port>`.
    base: String,
    bodies: Arc<Mutex<HashMap<String, String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FeedServer {
    async fn start() -> Self {
        let listener =
            tokio::net::TcpListener::bind((node::host_address().as_str(), 0)).await.expect("bind on the node address");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let bodies: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = bodies.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let bodies = served.clone();
                tokio::spawn(async move {
                    let mut request = vec![0u8; 8192];
                    let n = socket.read(&mut request).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&request[..n]);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let body = bodies.lock().expect("bodies").get(&path).cloned();
                    let response = match body {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { base, bodies, task }
    }

    fn serve(&self, path: &str, body: &str) {
        self.bodies.lock().expect("bodies").insert(path.to_owned(), body.to_owned());
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The site's guard with two feeds synced every minute: `community` (a plain list) and
/// `phantom` (phantom/blocklist's YAML).
fn with_feeds(site: &Site, server: &FeedServer) -> SecurityGuard {
    let feeds: ThreatFeedsSpec = serde_json::from_value(json!({
        "schedule": "* * * * *",
        "feeds": [
            {"name": "community", "url": server.url("/community.txt"), "format": "Plain", "timeoutSeconds": 20},
            {"name": "phantom", "url": server.url("/blocklist.yaml"), "format": "PhantomBlocklist"},
        ],
    }))
    .expect("feeds spec");
    site.guard(1).with(|g| g.spec.threat_feeds = Some(feeds))
}

fn feed<'a>(guard: &'a SecurityGuard, name: &str) -> Option<&'a ThreatFeedStatus> {
    guard.status.as_ref()?.threat_feeds.as_ref()?.feeds.iter().find(|f| f.name == name)
}

fn synced(guard: &SecurityGuard) -> Option<(String, String, String)> {
    let c = guard.status.as_ref()?.condition("ThreatFeedsSynced")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The messages of the namespace's Events of one reason, and whether kubectl answered.
fn event_messages(ns: &str, reason: &str) -> (bool, String) {
    let selector = format!("reason={reason}");
    let (ok, messages, _) = kubectl(
        &["-n", ns, "get", "events", "--field-selector", &selector, "-o", "jsonpath={.items[*].message}"],
        None,
    );
    (ok, messages)
}

/// The verdict of a domain scan.
async fn verdict(api: &ApiClient, token: &str, domain: &str) -> String {
    let (status, body) = api.post("/v1/scan/domains", Some(token), &json!({"domains": [domain]})).await.expect("scan");
    assert_eq!(status, 200, "{body}");
    body["action"].as_str().expect("action").to_owned()
}

/// Waits (the pattern cache re-checks the version every second) until `domain` scans as
/// `blocked` or not.
async fn wait_verdict(api: &ApiClient, token: &str, domain: &str, blocked: bool) {
    securityguard_e2e::eventually(
        &format!("{domain} {}", if blocked { "blocked" } else { "no longer blocked" }),
        Duration::from_secs(30),
        || async { ((verdict(api, token, domain).await == "BLOCK") == blocked).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn feeds_sync_on_schedule_broken_feeds_change_nothing_and_shrinking_feeds_unblock() {
    let _node = node::exclusive().await;
    let site = Site::new("node-feeds", GUARD).await;
    let ns = site.ns.name.clone();
    let server = FeedServer::start().await;
    server.serve("/community.txt", "# community list\ndrainer-alpha.xyz\nhttps://lure-beta.xyz/claim\n");
    // A name the domain model does not block on its own: only the feed blocks it.
    server.serve("/blocklist.yaml", "---\n  - url: orchard-lantern.net\n    versionTag: \"1\"\n");
    site.apply(&with_feeds(&site, &server));
    site.ready(Duration::from_secs(300)).await;

    // The generated token: in the credentials Secret, never in the spec or the status.
    let token = kubectl_ok(
        &["-n", &ns, "get", "secret", &format!("{GUARD}-credentials"), "-o", "jsonpath={.data.feed-tokens}"],
        None,
    );
    let token = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token.trim()).expect("base64");
    let token = String::from_utf8(token).expect("a text token");
    assert!(token.trim().len() >= 24, "the operator generated a feed token");

    // A good feed: imported, and a listed domain is blocked.
    let guard =
        site.wait("ThreatFeedsSynced=True", SYNC_TIMEOUT, |g| synced(g).is_some_and(|(s, _, _)| s == "True")).await;
    let community = feed(&guard, "community").expect("community status");
    assert_eq!(community.entries, Some(2), "{community:?}");
    assert!(community.error.is_none() && community.last_success_time.is_some());
    assert_eq!(feed(&guard, "phantom").and_then(|f| f.entries), Some(1));
    let status = serde_json::to_string(&guard.status).expect("json");
    assert!(!status.contains(token.trim()), "no token in the status");
    let api = site.api().await;
    let user = api.sign_in(&new_wallet()).await;
    wait_verdict(&api, &user, "drainer-alpha.xyz", true).await;
    wait_verdict(&api, &user, "login.lure-beta.xyz", true).await;
    wait_verdict(&api, &user, "orchard-lantern.net", true).await;

    // The leader's metrics: entries per feed, the last success, no failure.
    let metrics = node::leader_metrics(&site.client).await;
    let series = |name: &str, feed: &str| {
        format!("securityguard_operator_{name}{{namespace=\"{ns}\",securityguard=\"{GUARD}\",feed=\"{feed}\"}}")
    };
    assert_eq!(metrics.get(&series("threat_feed_entries", "community")), Some(&2.0), "{metrics:?}");
    assert!(
        metrics.get(&series("threat_feed_last_success_timestamp_seconds", "community")).is_some_and(|t| *t > 1.7e9)
    );
    assert_eq!(metrics.get(&series("threat_feed_last_sync_failed", "community")), Some(&0.0));

    // A broken feed (a malformed line) with a new domain: refused whole, reported by line,
    // nothing changed; the other feed still syncs.
    server.serve("/community.txt", "drainer-alpha.xyz\nnew-gamma.xyz\nnot a domain\n");
    let guard = site
        .wait("ThreatFeedsSynced=False SyncFailed naming line 3", SYNC_TIMEOUT, |g| {
            synced(g).is_some_and(|(s, r, m)| s == "False" && r == "SyncFailed" && m.contains("line 3"))
        })
        .await;
    let community = feed(&guard, "community").expect("community status");
    assert_eq!(community.entries, Some(2), "the last good import stays: {community:?}");
    assert!(community.error.as_deref().is_some_and(|e| e.contains("line 3")), "{community:?}");
    assert!(feed(&guard, "phantom").is_some_and(|f| f.error.is_none()), "the other feed synced");
    let (ok, events) = event_messages(&ns, "ThreatFeedSyncFailed");
    assert!(ok && events.contains("line 3"), "a Warning Event names the line: {events}");
    assert_ne!(verdict(&api, &user, "new-gamma.xyz").await, "BLOCK", "nothing of the broken feed imported");
    assert_eq!(verdict(&api, &user, "drainer-alpha.xyz").await, "BLOCK", "the previous entries stay");
    let metrics = node::leader_metrics(&site.client).await;
    assert_eq!(metrics.get(&series("threat_feed_last_sync_failed", "community")), Some(&1.0));
    assert!(metrics.get(&series("threat_feed_sync_failures_total", "community")).is_some_and(|n| *n >= 1.0));

    // A feed listing an official domain: the API refuses it whole, nothing changes.
    server.serve("/community.txt", "drainer-alpha.xyz\nnew-gamma.xyz\nphantom.app\n");
    let guard = site
        .wait("the official domain refused", SYNC_TIMEOUT, |g| {
            feed(g, "community").and_then(|f| f.error.as_deref()).is_some_and(|e| e.contains("official domain"))
        })
        .await;
    assert_eq!(feed(&guard, "community").and_then(|f| f.entries), Some(2));
    assert_ne!(verdict(&api, &user, "new-gamma.xyz").await, "BLOCK");
    assert_eq!(verdict(&api, &user, "phantom.app").await, "NONE", "an official domain is never warned");

    // The feed shrinks: what it dropped is no longer blocked; the condition recovers.
    server.serve("/community.txt", "lure-beta.xyz\n");
    let guard = site
        .wait("the shrunk feed imported", SYNC_TIMEOUT, |g| {
            feed(g, "community").is_some_and(|f| f.entries == Some(1) && f.error.is_none())
                && synced(g).is_some_and(|(s, _, _)| s == "True")
        })
        .await;
    assert!(feed(&guard, "community").and_then(|f| f.version).is_some());
    wait_verdict(&api, &user, "drainer-alpha.xyz", false).await;
    wait_verdict(&api, &user, "lure-beta.xyz", true).await;
    wait_verdict(&api, &user, "orchard-lantern.net", true).await;

    // A feed taken off the list: the next sync removes its entries, and says so.
    let one_feed = with_feeds(&site, &server).with(|g| {
        if let Some(feeds) = g.spec.threat_feeds.as_mut() {
            feeds.feeds.retain(|f| f.name == "community");
        }
    });
    site.apply(&one_feed);
    securityguard_e2e::eventually("an Event naming the removed feed", SYNC_TIMEOUT, || async {
        let (ok, events) = event_messages(&ns, "ThreatFeedsSynced");
        (ok && events.contains("no longer listed removed: phantom (1 entries)")).then_some(())
    })
    .await;
    wait_verdict(&api, &user, "orchard-lantern.net", false).await;
    wait_verdict(&api, &user, "lure-beta.xyz", true).await;
    let guard = site
        .wait("only the listed feed in the status", SYNC_TIMEOUT, |g| {
            g.status.as_ref().and_then(|s| s.threat_feeds.as_ref()).is_some_and(|t| t.feeds.len() == 1)
        })
        .await;
    assert!(feed(&guard, "phantom").is_none());

    // Turning the feeds off deletes the CronJob (its entries stay in the library).
    site.apply(&site.guard(1));
    securityguard_e2e::eventually("the feed CronJob deleted", Duration::from_secs(60), || async {
        let (ok, _, err) = kubectl(&["-n", &ns, "get", "cronjob", &format!("{GUARD}-feed-sync")], None);
        (!ok && err.contains("NotFound")).then_some(())
    })
    .await;
}
