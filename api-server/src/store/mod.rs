//! PostgreSQL and Redis access.

pub mod db;
pub mod explanations;
pub mod patterns;
pub mod redis;
pub mod revoked;
pub mod scan_cache;
pub mod scans;
pub mod users;
