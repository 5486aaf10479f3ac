//! Scanning: the transaction decoder, the rules and the domain matcher. Pure code, no I/O.

pub mod domain;
pub mod patterns;
pub mod rules;
pub mod tx;
