//! PostgreSQL and Redis access.

pub mod db;
pub mod patterns;
pub mod redis;
pub mod scans;
pub mod users;
