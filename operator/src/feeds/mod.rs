//! The threat-feed sync Job's data path (`securityguard-operator feeds sync`): download each
//! feed of `spec.threatFeeds`, parse and check every entry, and submit the feed to the API
//! (`PUT /v1/feeds/{name}` with the machine token), which replaces the feed's entries in one
//! transaction and one pattern version. A feed that fails at any step changes nothing for that
//! feed; the others are still synced. Then the entries of feeds the library holds but the list
//! no longer names are removed (`GET /v1/feeds`, `DELETE /v1/feeds/{name}`). The outcome of
//! every feed goes to the termination message, where the controller reads it.

pub mod fetch;
pub mod formats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::crd::{FeedOutcome, RemovedFeed, ThreatFeed};

/// Largest termination message the kubelet keeps.
pub const MAX_SUMMARY_BYTES: usize = 4096;
/// Seconds the API may take to import one feed.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a feed's submission keeps being retried while the API cannot be reached or
/// answers that it is unavailable (it may be rolling, or its Service not ready yet).
const SUBMIT_PATIENCE: Duration = Duration::from_secs(90);
/// The first pause between submissions; it doubles up to [`MAX_SUBMIT_PAUSE`].
const FIRST_SUBMIT_PAUSE: Duration = Duration::from_secs(1);
const MAX_SUBMIT_PAUSE: Duration = Duration::from_secs(15);
/// Longest error kept per feed in the summary before it is shortened further to fit.
const MAX_ERROR_CHARS: usize = 600;

/// What `feeds sync` does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of the API, such as `http://sg-api.prod.svc:80`.
    pub api_url: String,
    /// The machine token file (its first token is used).
    pub token_file: PathBuf,
    /// The feeds.
    pub feeds: Vec<ThreatFeed>,
}

/// Why the sync as a whole failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The machine token cannot be read.
    #[error("reading the machine token from {path}: {reason}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why (never the token).
        reason: String,
    },
    /// The HTTP client cannot be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The entries of feeds no longer listed could not be removed.
    #[error("removing the entries of feeds no longer listed: {0}")]
    Prune(#[source] FeedError),
    /// Some feeds failed (each one's error is in the report).
    #[error("{failed} of {total} feeds failed: {names}")]
    Feeds {
        /// How many failed.
        failed: usize,
        /// How many there were.
        total: usize,
        /// Their names.
        names: String,
    },
}

/// Why one feed failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Downloading it.
    #[error(transparent)]
    Download(#[from] fetch::Error),
    /// Parsing it.
    #[error(transparent)]
    Parse(#[from] formats::Error),
    /// The API could not be reached.
    #[error("submitting to the API: {0}")]
    Submit(#[source] reqwest::Error),
    /// The API refused the feed.
    #[error("the API refused the feed: HTTP {status}: {message}")]
    Refused {
        /// The status.
        status: reqwest::StatusCode,
        /// The API's error message.
        message: String,
    },
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Every listed feed's outcome.
    pub feeds: Vec<FeedOutcome>,
    /// The feeds no longer listed whose entries were removed.
    pub removed: Vec<RemovedFeed>,
}

/// Runs the sync; the report lists every feed's outcome, also when some failed.
pub async fn run(options: &Options) -> (Report, Result<(), Error>) {
    let token = match read_token(&options.token_file) {
        Ok(token) => token,
        Err(e) => return (Report::default(), Err(e)),
    };
    let client = match fetch::client() {
        Ok(client) => client,
        Err(e) => return (Report::default(), Err(Error::Client(e))),
    };
    let mut outcomes = Vec::with_capacity(options.feeds.len());
    for feed in &options.feeds {
        let started = Instant::now();
        let outcome = match sync_one(&client, options, &token, feed).await {
            Ok(accepted) => {
                tracing::info!(
                    feed = %feed.name,
                    entries = accepted.entries,
                    added = accepted.added,
                    removed = accepted.removed,
                    version = accepted.version,
                    seconds = started.elapsed().as_secs_f64(),
                    "feed synced"
                );
                FeedOutcome {
                    name: feed.name.clone(),
                    entries: Some(accepted.entries),
                    version: Some(accepted.version),
                    added: Some(accepted.added),
                    removed: Some(accepted.removed),
                    skipped: accepted.skipped,
                    error: None,
                }
            }
            Err(error) => {
                tracing::error!(feed = %feed.name, url = %feed.url, %error, "feed not synced; nothing changed for it");
                FeedOutcome { name: feed.name.clone(), error: Some(error.to_string()), ..FeedOutcome::default() }
            }
        };
        outcomes.push(outcome);
    }
    let base = options.api_url.trim_end_matches('/');
    let listed: Vec<&str> = options.feeds.iter().map(|f| f.name.as_str()).collect();
    let pruned = prune(&client, base, &token, &listed).await;
    let (removed, prune_error) = match pruned {
        Ok(removed) => (removed, None),
        Err((removed, error)) => {
            tracing::error!(%error, "the entries of feeds no longer listed were not all removed");
            (removed, Some(error))
        }
    };
    let failed: Vec<&str> = outcomes.iter().filter(|o| o.error.is_some()).map(|o| o.name.as_str()).collect();
    let result = match prune_error {
        _ if !failed.is_empty() => {
            Err(Error::Feeds { failed: failed.len(), total: outcomes.len(), names: failed.join(", ") })
        }
        Some(error) => Err(Error::Prune(error)),
        None => Ok(()),
    };
    (Report { feeds: outcomes, removed }, result)
}

/// The feeds the library holds entries of (`GET /v1/feeds`).
#[derive(Debug, Deserialize)]
struct Held {
    feeds: Vec<RemovedFeed>,
}

/// Removes the entries of every feed the library holds that `listed` does not name, one
/// `DELETE` each; returns those removed (and, on a failure, those removed before it).
async fn prune(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    listed: &[&str],
) -> Result<Vec<RemovedFeed>, (Vec<RemovedFeed>, FeedError)> {
    let url = format!("{base}/v1/feeds");
    let response = retried(|| client.get(&url).bearer_auth(token).timeout(SUBMIT_TIMEOUT)).await;
    let held: Held = match answered(response).await {
        Ok(response) => response.json().await.map_err(|e| (Vec::new(), FeedError::Submit(e)))?,
        Err(error) => return Err((Vec::new(), error)),
    };
    let mut removed = Vec::new();
    for feed in held.feeds.into_iter().filter(|f| !listed.contains(&f.name.as_str())) {
        let url = format!("{base}/v1/feeds/{}", feed.name);
        let response = retried(|| client.delete(&url).bearer_auth(token).timeout(SUBMIT_TIMEOUT)).await;
        if let Err(error) = answered(response).await {
            return Err((removed, error));
        }
        tracing::info!(feed = %feed.name, entries = feed.entries, "feed no longer listed: its entries were removed");
        removed.push(feed);
    }
    Ok(removed)
}

/// A response that says the request was done, or the API's refusal as an error.
async fn answered(response: Result<reqwest::Response, FeedError>) -> Result<reqwest::Response, FeedError> {
    let response = response?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or("no message").to_owned();
    Err(FeedError::Refused { status, message })
}

/// The first token of the token file (one a line, `#` comments): during a rotation the file
/// holds the new token first and the old one after it.
pub fn read_token(path: &Path) -> Result<String, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Token { path: path.to_owned(), reason: e.to_string() })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .ok_or_else(|| Error::Token { path: path.to_owned(), reason: "the file holds no token".to_owned() })
}

/// What the API answered to an accepted feed.
#[derive(Debug, Clone, Deserialize)]
struct Accepted {
    version: i64,
    entries: u64,
    added: u64,
    removed: u64,
    /// Filled in by the sync (not the API): the malformed entries left out.
    #[serde(skip)]
    skipped: Option<String>,
}

#[derive(Serialize)]
struct Submission<'a> {
    entries: &'a [formats::Entry],
    url: &'a str,
}

async fn sync_one(
    client: &reqwest::Client,
    options: &Options,
    token: &str,
    feed: &ThreatFeed,
) -> Result<Accepted, FeedError> {
    let timeout = Duration::from_secs(u64::from(feed.timeout_seconds));
    let text = fetch::download(client, &feed.url, feed.max_bytes, timeout).await?;
    let formats::Parsed { entries, skipped } = formats::parse_tolerant(
        &text,
        feed.format,
        feed.entries.unwrap_or_default(),
        feed.max_entries,
        feed.max_invalid_entries,
    )?;
    let skipped = (!skipped.is_empty()).then(|| formats::describe_skipped(&skipped));
    if let Some(skipped) = &skipped {
        tracing::warn!(feed = %feed.name, %skipped, "malformed entries left out (maxInvalidEntries)");
    }
    let url = format!("{}/v1/feeds/{}", options.api_url.trim_end_matches('/'), feed.name);
    let submission = Submission { entries: &entries, url: &feed.url };
    let request = || client.put(&url).bearer_auth(token).timeout(SUBMIT_TIMEOUT).json(&submission);
    let response = answered(retried(request).await).await?;
    let accepted = response.json::<Accepted>().await.map_err(FeedError::Submit)?;
    Ok(Accepted { skipped, ..accepted })
}

/// Sends a request to the API (every one the sync makes is idempotent: `PUT` replaces a feed
/// whole, `GET` reads, `DELETE` empties a feed). A transport error or a 502/503/504 is retried
/// with a doubling pause for [`SUBMIT_PATIENCE`] (the API may be rolling, or its Service not
/// ready yet); any other answer is returned as it is.
async fn retried(request: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, FeedError> {
    let give_up = Instant::now() + SUBMIT_PATIENCE;
    let mut pause = FIRST_SUBMIT_PAUSE;
    loop {
        let sent = request().send().await;
        let retry = match &sent {
            Ok(response) => unavailable(response.status()).then(|| format!("HTTP {}", response.status())),
            Err(error) => Some(error.to_string()),
        };
        match retry {
            Some(why) if Instant::now() + pause < give_up => {
                tracing::warn!(error = %why, pause_seconds = pause.as_secs(), "the API is not reachable yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_SUBMIT_PAUSE);
            }
            _ => return sent.map_err(FeedError::Submit),
        }
    }
}

/// Answers that say the API is not there right now, rather than anything about the feed.
fn unavailable(status: reqwest::StatusCode) -> bool {
    matches!(
        status,
        reqwest::StatusCode::BAD_GATEWAY
            | reqwest::StatusCode::SERVICE_UNAVAILABLE
            | reqwest::StatusCode::GATEWAY_TIMEOUT
    )
}

/// The summary written to the termination message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Always `feeds-sync`.
    pub command: &'static str,
    /// `succeeded` or `failed`.
    pub result: &'static str,
    /// Seconds the sync ran.
    pub seconds: f64,
    /// Every feed's outcome.
    pub feeds: Vec<FeedOutcome>,
    /// The feeds no longer listed whose entries were removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_feeds: Vec<RemovedFeed>,
    /// The error, when some feed (or the whole sync) failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    /// The summary of a sync.
    pub fn new(report: Report, result: &Result<(), Error>, seconds: f64) -> Self {
        Self {
            command: "feeds-sync",
            result: if result.is_ok() { "succeeded" } else { "failed" },
            seconds: (seconds * 1000.0).round() / 1000.0,
            feeds: report.feeds,
            removed_feeds: report.removed,
            error: result.as_ref().err().map(ToString::to_string),
        }
    }

    /// The JSON text, at most [`MAX_SUMMARY_BYTES`]: errors are shortened until it fits.
    pub fn to_json(&self) -> String {
        let mut limit = MAX_ERROR_CHARS;
        loop {
            let mut shorter = self.clone();
            let feed_texts = shorter.feeds.iter_mut().flat_map(|f| [f.error.as_mut(), f.skipped.as_mut()]).flatten();
            for error in feed_texts.chain(shorter.error.as_mut()) {
                shorten(error, limit);
            }
            let text = serde_json::to_string(&shorter).unwrap_or_default();
            if text.len() <= MAX_SUMMARY_BYTES || limit == 0 {
                return text;
            }
            limit /= 2;
        }
    }

    /// Writes the summary to `path`; a failure is logged, never fatal.
    pub fn write(&self, path: &Path) {
        if let Err(error) = std::fs::write(path, self.to_json()) {
            tracing::warn!(path = %path.display(), %error, "cannot write the termination message");
        }
    }
}

fn shorten(text: &mut String, chars: usize) {
    if text.chars().count() > chars {
        *text = text.chars().take(chars).chain(std::iter::once('…')).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_fits_the_termination_message_with_ten_long_errors() {
        let feeds = (0..10)
            .map(|i| FeedOutcome {
                name: format!("feed-{i}"),
                error: Some(format!("line {i}: {}", "x".repeat(2000))),
                ..FeedOutcome::default()
            })
            .collect();
        let result = Err(Error::Feeds { failed: 10, total: 10, names: "all".into() });
        let removed = vec![RemovedFeed { name: "retired".into(), entries: 12 }];
        let text = Summary::new(Report { feeds, removed }, &result, 1.23456).to_json();
        assert!(text.len() <= MAX_SUMMARY_BYTES, "{}", text.len());
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back["feeds"].as_array().map(Vec::len), Some(10));
        assert!(back["feeds"][9]["error"].as_str().is_some_and(|e| e.starts_with("line 9: xx")));
        assert_eq!(back["result"], "failed");
        assert_eq!(back["seconds"], 1.235);
        assert_eq!(back["removedFeeds"][0]["name"], "retired");
    }

    /// Answers each connection with the next of `replies` (the last one repeated) and counts
    /// the requests.
    async fn api(
        replies: Vec<(&'static str, &'static str)>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let (status, body) = replies[n.min(replies.len() - 1)];
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
            }
        });
        (format!("http://{addr}/v1/feeds/community"), count)
    }

    const ACCEPTED: &str = r#"{"version":7,"entries":2,"added":2,"removed":0}"#;

    #[tokio::test]
    async fn an_unavailable_api_is_retried_and_a_refusal_is_not() {
        use std::sync::atomic::Ordering;
        let client = reqwest::Client::new();
        let entries = Vec::new();
        let submission = Submission { entries: &entries, url: "https://feeds.example/list.txt" };

        let (url, count) = api(vec![("503 Service Unavailable", "{}"), ("200 OK", ACCEPTED)]).await;
        let request = || client.put(&url).bearer_auth("t").json(&submission);
        let response = retried(request).await.expect("answered");
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Accepted>().await.expect("accepted").version, 7);
        assert_eq!(count.load(Ordering::SeqCst), 2, "retried once after the 503");

        let (url, count) = api(vec![("400 Bad Request", r#"{"error":{"message":"line 3"}}"#)]).await;
        let request = || client.put(&url).bearer_auth("t").json(&submission);
        let response = retried(request).await.expect("answered");
        assert_eq!(response.status(), 400);
        assert_eq!(count.load(Ordering::SeqCst), 1, "a refusal is the answer, not a reason to retry");
    }

    #[tokio::test]
    async fn feeds_no_longer_listed_are_emptied_and_the_listed_kept() {
        use std::sync::atomic::Ordering;
        let client = reqwest::Client::new();
        let held = r#"{"feeds":[{"name":"community","entries":2},{"name":"retired","entries":12}]}"#;
        let (url, count) = api(vec![("200 OK", held), ("200 OK", r#"{"feed":"retired","removed":12}"#)]).await;
        let base = url.trim_end_matches("/v1/feeds/community");
        let removed = prune(&client, base, "t", &["community", "phantom"]).await.expect("pruned");
        assert_eq!(removed, [RemovedFeed { name: "retired".into(), entries: 12 }]);
        assert_eq!(count.load(Ordering::SeqCst), 2, "one GET, one DELETE");

        let (url, _) = api(vec![("200 OK", held), ("401 Unauthorized", r#"{"error":{"message":"bad token"}}"#)]).await;
        let base = url.trim_end_matches("/v1/feeds/community");
        let (removed, error) = prune(&client, base, "t", &["community"]).await.expect_err("refused");
        assert!(removed.is_empty());
        assert!(error.to_string().contains("HTTP 401 Unauthorized: bad token"), "{error}");
    }

    #[test]
    fn the_first_token_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# rotation in progress\n\nnew-token\nold-token\n").expect("write");
        assert_eq!(read_token(&file).expect("token"), "new-token");
        std::fs::write(&file, "# none\n").expect("write");
        let err = read_token(&file).unwrap_err().to_string();
        assert!(err.ends_with("the file holds no token"), "{err}");
    }
}
