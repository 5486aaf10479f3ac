//! The Redis connection (one multiplexed, self-reconnecting connection per replica).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A lazily connecting manager: the service starts (unready) even while Redis is unreachable,
/// and reconnects by itself when Redis comes back.
pub fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, config)
}

pub async fn ping(conn: &ConnectionManager) -> redis::RedisResult<()> {
    let mut conn = conn.clone();
    redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ())
}

/// This deployment's Redis keys: every one starts with REDIS_KEY_PREFIX, so the replicas of one
/// deployment share them and other deployments on the same Redis do not.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// The prefix and `parts` joined by `:`.
    pub fn key(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(part);
        }
        key
    }
}
