//! Plain-language explanations of past scans, cached in Redis for a day by scan id.

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::redis::Keys;

const TTL_SECS: u64 = 24 * 3600;

fn key(keys: &Keys, scan_id: Uuid) -> String {
    keys.key(&["explain", &scan_id.to_string()])
}

/// The cached explanation of a scan; `None` as well when Redis does not answer.
pub async fn get(redis: &ConnectionManager, keys: &Keys, scan_id: Uuid) -> Option<String> {
    let mut conn = redis.clone();
    redis::cmd("GET").arg(key(keys, scan_id)).query_async::<Option<String>>(&mut conn).await.ok().flatten()
}

/// Caches an explanation; a failure only means it is asked for again next time.
pub async fn put(redis: &ConnectionManager, keys: &Keys, scan_id: Uuid, text: &str) {
    let mut conn = redis.clone();
    let _: Result<(), _> =
        redis::cmd("SET").arg(key(keys, scan_id)).arg(text).arg("EX").arg(TTL_SECS).query_async(&mut conn).await;
}
