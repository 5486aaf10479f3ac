//! The managed PostgreSQL and Redis: their StatefulSets and Services (PostgreSQL's with its WAL
//! archiver), the generated passwords, and the NetworkPolicies fencing them.

pub mod credentials;
pub mod network_policy;
pub mod postgres;
pub mod redis;
pub mod stateful_set;
pub mod wal_archiver;
