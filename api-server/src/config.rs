//! Configuration from the environment (and the matching command-line flags).
//!
//! Every setting has an environment variable; a missing or invalid value stops start-up with an
//! error naming that variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Where the service runs (reported in logs and /health/detailed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Test,
    Staging,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

#[derive(Clone, Debug, Parser)]
#[command(name = "securityguard-api", version, about = "The SecurityGuard API service")]
pub struct Config {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Maximum number of pooled PostgreSQL connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Redis connection URL.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: String,

    /// Prefix of every Redis key this service writes (lets environments share one Redis).
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "sg:")]
    pub redis_key_prefix: String,

    /// Secret for signing access tokens (HS256); at least 32 bytes.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "JWT_TTL_SECONDS", default_value_t = 900)]
    pub jwt_ttl_seconds: u64,

    /// Lifetime of a refresh token, in seconds.
    #[arg(long, env = "REFRESH_TTL_SECONDS", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_seconds: u64,

    /// Anthropic API key for the optional plain-language explanations.
    #[arg(long, env = "CLAUDE_API_KEY", hide_env_values = true)]
    pub claude_api_key: Option<String>,

    /// Base URL of the Messages API.
    #[arg(long, env = "CLAUDE_API_URL", default_value = "https://api.anthropic.com")]
    pub claude_api_url: String,

    /// Model used for explanations.
    #[arg(long, env = "CLAUDE_MODEL", default_value = "claude-sonnet-4-5")]
    pub claude_model: String,

    /// Solana JSON-RPC endpoint (optional).
    #[arg(long, env = "SOLANA_RPC_URL")]
    pub solana_rpc_url: Option<String>,

    /// Deployment environment.
    #[arg(long, env = "ENVIRONMENT", value_enum, default_value = "production")]
    pub environment: Environment,

    /// Address the HTTP server (API, health and metrics) listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Comma-separated base58 wallet addresses that get the admin role.
    #[arg(long, env = "ADMIN_WALLETS", value_delimiter = ',', default_value = "")]
    pub admin_wallets: Vec<String>,

    /// Domain that Sign-In-With-Solana messages must name.
    #[arg(long, env = "SIWS_DOMAIN", default_value = "securityguard.local")]
    pub siws_domain: String,

    /// URI that Sign-In-With-Solana messages must name.
    #[arg(long, env = "SIWS_URI", default_value = "https://securityguard.local")]
    pub siws_uri: String,

    /// Chain id that Sign-In-With-Solana messages must name.
    #[arg(long, env = "SIWS_CHAIN_ID", default_value = "mainnet")]
    pub siws_chain_id: String,

    /// Lifetime of a sign-in nonce, in seconds.
    #[arg(long, env = "NONCE_TTL_SECONDS", default_value_t = 300)]
    pub nonce_ttl_seconds: u64,

    /// Requests per minute allowed per client IP.
    #[arg(long, env = "RATE_LIMIT_PER_IP", default_value_t = 600)]
    pub rate_limit_per_ip: u32,

    /// Requests per minute allowed per signed-in wallet.
    #[arg(long, env = "RATE_LIMIT_PER_WALLET", default_value_t = 300)]
    pub rate_limit_per_wallet: u32,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Longest time a request may take (including receiving its body) before it is answered
    /// with 503 `timeout`. Keep SHUTDOWN_DELAY_SECONDS plus this below the pod's termination
    /// grace period so draining completes.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 20)]
    pub request_timeout_seconds: u64,

    /// Seconds between turning unready on SIGTERM and closing the listener, so that load
    /// balancers stop sending new requests first.
    #[arg(long, env = "SHUTDOWN_DELAY_SECONDS", default_value_t = 5)]
    pub shutdown_delay_seconds: u64,

    /// Trust the first address of `X-Forwarded-For` as the client IP (behind an ingress).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// File of the machine tokens that may write threat feeds (`PUT /v1/feeds/{name}`), one a
    /// line, mounted from the Secret the operator generates. Read again when it changes, so
    /// tokens rotate without a restart. Unset: the feed routes refuse every request.
    #[arg(long, env = "FEED_TOKENS_FILE")]
    pub feed_tokens_file: Option<std::path::PathBuf>,

    /// Largest accepted body of a feed sync (`PUT /v1/feeds/{name}`), in bytes.
    #[arg(long, env = "FEED_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub feed_max_body_bytes: usize,

    /// Most entries one feed may hold.
    #[arg(long, env = "FEED_MAX_ENTRIES", default_value_t = 200_000)]
    pub feed_max_entries: usize,

    /// Seconds a cached scan result is kept in Redis.
    #[arg(long, env = "SCAN_CACHE_TTL_SECONDS", default_value_t = 3600)]
    pub scan_cache_ttl_seconds: u64,
}

/// A configuration value that parsed but makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl Config {
    /// Checks that go beyond parsing. Called once at start-up.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |variable, reason: &str| ConfigError { variable, reason: reason.to_string() };
        if !(self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://")) {
            return Err(err("DATABASE_URL", "must start with postgres:// or postgresql://"));
        }
        if !(self.redis_url.starts_with("redis://") || self.redis_url.starts_with("rediss://")) {
            return Err(err("REDIS_URL", "must start with redis:// or rediss://"));
        }
        if self.jwt_secret.len() < 32 {
            return Err(err("JWT_SECRET", "must be at least 32 bytes long"));
        }
        if self.jwt_ttl_seconds == 0 {
            return Err(err("JWT_TTL_SECONDS", "must be positive"));
        }
        if self.refresh_ttl_seconds == 0 {
            return Err(err("REFRESH_TTL_SECONDS", "must be positive"));
        }
        if self.nonce_ttl_seconds == 0 {
            return Err(err("NONCE_TTL_SECONDS", "must be positive"));
        }
        if self.request_timeout_seconds == 0 {
            return Err(err("REQUEST_TIMEOUT_SECONDS", "must be positive"));
        }
        if self.max_body_bytes < 1024 {
            return Err(err("MAX_BODY_BYTES", "must be at least 1024"));
        }
        if self.feed_max_body_bytes < 1024 {
            return Err(err("FEED_MAX_BODY_BYTES", "must be at least 1024"));
        }
        if self.feed_max_entries == 0 {
            return Err(err("FEED_MAX_ENTRIES", "must be positive"));
        }
        if self.rate_limit_per_ip == 0 || self.rate_limit_per_wallet == 0 {
            return Err(err("RATE_LIMIT_PER_IP/RATE_LIMIT_PER_WALLET", "must be positive"));
        }
        if let Some(key) = &self.claude_api_key
            && key.trim().is_empty()
        {
            return Err(err("CLAUDE_API_KEY", "is set but empty"));
        }
        if let Some(url) = &self.solana_rpc_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(err("SOLANA_RPC_URL", "must be an http(s) URL"));
        }
        for wallet in self.admin_wallets() {
            if crate::wallet::decode_pubkey(wallet).is_none() {
                return Err(ConfigError {
                    variable: "ADMIN_WALLETS",
                    reason: format!("{wallet:?} is not a base58 ed25519 public key"),
                });
            }
        }
        if self.siws_domain.trim().is_empty() {
            return Err(err("SIWS_DOMAIN", "must not be empty"));
        }
        if self.siws_uri.trim().is_empty() {
            return Err(err("SIWS_URI", "must not be empty"));
        }
        Ok(())
    }

    /// Admin wallets, without empty entries.
    pub fn admin_wallets(&self) -> impl Iterator<Item = &str> {
        self.admin_wallets.iter().map(|w| w.trim()).filter(|w| !w.is_empty())
    }

    pub fn is_admin(&self, wallet: &str) -> bool {
        self.admin_wallets().any(|w| w == wallet)
    }

    pub fn jwt_ttl(&self) -> Duration {
        Duration::from_secs(self.jwt_ttl_seconds)
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_ttl_seconds)
    }
}
