//! PostgreSQL and Redis access.

pub mod db;
pub mod patterns;
pub mod redis;
pub mod revoked;
pub mod scans;
pub mod users;
