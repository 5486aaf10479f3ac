//! `/v1/feeds`: threat feeds, written by the operator's sync Job with a machine token
//! (`MachineClient`), never by a wallet. `GET /v1/feeds` lists the feeds the library holds
//! entries of (the sync removes those no longer configured with `DELETE /v1/feeds/{name}`). A `PUT` makes the feed's entries exactly those sent, in
//! one transaction and at most one pattern version; entries of admins and of other feeds are not
//! touched. The whole feed is refused (and nothing changes) when any entry is malformed, is of a
//! kind a feed may not write, or would block an official domain (one it is, is under, or is a
//! parent of).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, MachineClient};
use crate::scan::domain;
use crate::scan::official::OfficialDomains;
use crate::scan::tx::Pubkey;
use crate::state::AppState;
use crate::store::patterns::{self as store, FeedEntry};

/// Most problems listed in a refusal (the count says how many there were).
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// The kinds a feed may write: it can block, never allow or protect.
pub const FEED_KINDS: &[&str] = &["blocked_domain", "malicious_address"];

/// The feed routes, with their own body limit (a feed is larger than any other request).
pub fn router(max_body_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/feeds", get(held))
        .route("/feeds/{name}", put(sync).delete(remove))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedSync {
    entries: Vec<EntryInput>,
    /// Where the feed was downloaded from (logged).
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryInput {
    kind: String,
    value: String,
    /// The entry's line in the downloaded feed, reported back when it is refused.
    #[serde(default)]
    line: Option<u64>,
}

/// One refused entry.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub value: String,
    pub reason: String,
}

/// A feed's name: a DNS label (it names the source of its entries).
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_feed_name",
            "a feed name is 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
        ))
    }
}

/// Checks one entry: its kind, its form, and that blocking it leaves every official domain
/// alone. Returns the entry as stored (domains normalized).
fn check_entry(kind: &str, value: &str, official: &OfficialDomains) -> Result<FeedEntry, String> {
    match kind {
        "blocked_domain" => {
            let normalized = domain::normalize(value).map_err(|why| format!("not a domain: {why}"))?;
            // Public suffixes are not refused: real feeds block single sites that the Public
            // Suffix List's wildcard rules make suffixes (`<site>.eth.limo`, `<id>.raw.icp0.io`)
            // and whole abused zones (polkadot-js lists `org.in`). An official domain is never
            // under a blocked one, which is what matters.
            if let Some((official, project)) = official.blocked_by(&normalized) {
                return Err(format!("blocking {normalized} would block {official}, an official domain of {project}"));
            }
            Ok(FeedEntry { kind: kind.to_owned(), value: normalized })
        }
        "malicious_address" => {
            let trimmed = value.trim();
            Pubkey::from_base58(trimmed).ok_or_else(|| "not a base58 Solana address".to_owned())?;
            Ok(FeedEntry { kind: kind.to_owned(), value: trimmed.to_owned() })
        }
        other => Err(format!("a feed may not write entries of kind {other:?}; one of {}", FEED_KINDS.join(", "))),
    }
}

/// Every entry checked; the sorted, de-duplicated entries or every problem.
pub fn check_entries<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str, Option<u64>)>,
    official: &OfficialDomains,
) -> Result<Vec<FeedEntry>, Vec<Problem>> {
    let mut good = Vec::new();
    let mut problems = Vec::new();
    for (index, (kind, value, line)) in entries.into_iter().enumerate() {
        match check_entry(kind, value, official) {
            Ok(entry) => good.push(entry),
            Err(reason) => problems.push(Problem { index, line, value: value.chars().take(300).collect(), reason }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    good.sort_unstable();
    good.dedup();
    Ok(good)
}

fn refusal(problems: Vec<Problem>) -> ApiError {
    let total = problems.len();
    let first = &problems[0];
    let at = first.line.map_or_else(|| format!("entries[{}]", first.index), |l| format!("line {l}"));
    let listed: Vec<Problem> = problems.into_iter().take(MAX_LISTED_PROBLEMS).collect();
    ApiError::BadRequestWithDetails {
        code: "invalid_feed",
        message: format!("{total} entries refused; the first at {at}: {}; nothing was changed", listed[0].reason),
        details: json!({"refused": total, "entries": listed}),
    }
}

async fn sync(
    State(state): State<AppState>,
    _client: MachineClient,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<FeedSync>,
) -> Result<Json<Value>, ApiError> {
    check_name(&name)?;
    let max = state.config.feed_max_entries;
    if body.entries.is_empty() {
        return Err(ApiError::bad_request(
            "empty_feed",
            "the feed lists no entry; DELETE /v1/feeds/{name} removes a feed's entries",
        ));
    }
    if body.entries.len() > max {
        return Err(ApiError::bad_request(
            "feed_too_large",
            format!("the feed lists {} entries; at most {max} are accepted", body.entries.len()),
        ));
    }
    let entries = check_entries(
        body.entries.iter().map(|e| (e.kind.as_str(), e.value.as_str(), e.line)),
        &state.detection.official,
    )
    .map_err(refusal)?;
    let synced = store::sync_feed(&state.db, &name, &entries).await?;
    state.patterns.invalidate();
    tracing::info!(
        feed = %name,
        url = body.url.as_deref().unwrap_or(""),
        entries = synced.entries,
        added = synced.added,
        removed = synced.removed,
        version = synced.version,
        "threat feed synced"
    );
    Ok(Json(json!({
        "feed": name,
        "version": synced.version,
        "entries": synced.entries,
        "added": synced.added,
        "removed": synced.removed,
        "changed": synced.added + synced.removed > 0,
    })))
}

/// The feeds the library holds entries of, with their counts.
async fn held(State(state): State<AppState>, _client: MachineClient) -> Result<Json<Value>, ApiError> {
    let feeds = store::held_feeds(&state.db).await?;
    Ok(Json(json!({ "feeds": feeds })))
}

/// Removes every entry of a feed (a feed no longer synced), in one version.
async fn remove(
    State(state): State<AppState>,
    _client: MachineClient,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_name(&name)?;
    let synced = store::sync_feed(&state.db, &name, &[]).await?;
    state.patterns.invalidate();
    Ok((StatusCode::OK, Json(json!({"feed": name, "version": synced.version, "removed": synced.removed}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn official() -> OfficialDomains {
        OfficialDomains::parse("phantom.app | Phantom | x\nexplorer.solana.com | Solana | x\n").unwrap()
    }

    #[test]
    fn entries_are_normalized_sorted_and_deduplicated() {
        let entries = [
            ("blocked_domain", "Evil-Phantom.xyz", Some(1)),
            ("blocked_domain", "https://evil-phantom.xyz/login", Some(2)),
            ("malicious_address", " 11111111111111111111111111111111 ", Some(3)),
        ];
        let good = check_entries(entries, &official()).unwrap();
        let values: Vec<&str> = good.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(values, ["evil-phantom.xyz", "11111111111111111111111111111111"]);
    }

    #[test]
    fn refuses_official_domains_their_subdomains_and_parents() {
        let entries = [
            ("blocked_domain", "ok-drainer.xyz", Some(1)),
            ("blocked_domain", "phantom.app", Some(2)),
            ("blocked_domain", "login.phantom.app", Some(3)),
            ("blocked_domain", "solana.com", Some(4)),
            ("blocked_domain", "phishing-site.eth.limo", Some(5)),
            ("blocked_domain", "not a domain", Some(6)),
            ("allowed_domain", "evil.xyz", Some(7)),
            ("malicious_address", "0OIl", None),
        ];
        let problems = check_entries(entries, &official()).unwrap_err();
        let lines: Vec<Option<u64>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(4), Some(6), Some(7), None]);
        assert!(problems[0].reason.contains("official domain of Phantom"), "{:?}", problems[0]);
        assert!(problems[2].reason.contains("would block explorer.solana.com"), "{:?}", problems[2]);
        assert!(problems[3].reason.contains("not a domain"), "{:?}", problems[3]);
        assert!(problems[4].reason.contains("may not write"), "{:?}", problems[4]);
        assert_eq!(problems[5].index, 7);
        let error = refusal(problems);
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert!(error.to_string().starts_with("6 entries refused; the first at line 2"), "{error}");
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(check_name("polkadot-js").is_ok());
        for bad in ["", "-a", "a-", "Upper", "a_b", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
