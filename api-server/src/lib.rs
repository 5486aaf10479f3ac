//! The SecurityGuard API service: transaction, domain and address scanning behind
//! Sign-In-With-Solana, on PostgreSQL and Redis.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod routes;
pub mod scan;
pub mod startup;
pub mod state;
pub mod store;
pub mod wallet;
