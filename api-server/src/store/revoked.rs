//! Access tokens revoked before their expiry (by logout): one Redis key per token id, kept
//! until the token would have expired. The limits middleware checks it on every request.

use redis::aio::ConnectionManager;

use super::redis::Keys;

pub fn key(keys: &Keys, jti: &str) -> String {
    keys.key(&["revoked-jti", jti])
}

pub async fn revoke(redis: &ConnectionManager, keys: &Keys, jti: &str, ttl_secs: i64) -> redis::RedisResult<()> {
    let mut conn = redis.clone();
    redis::cmd("SET").arg(key(keys, jti)).arg(1).arg("EX").arg(ttl_secs).query_async::<()>(&mut conn).await
}
