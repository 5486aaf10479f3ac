//! Integration tests against real PostgreSQL and Redis (see helpers.rs). One binary, so the
//! workspace links one test executable.

mod auth;
mod errors;
mod explain;
mod feeds;
mod fixtures;
mod health;
mod helpers;
mod migrations;
mod process;
mod readiness;
mod scanning;
