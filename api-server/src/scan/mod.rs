//! Scanning: the transaction decoder, the rules and the domain matcher. Pure code, no I/O.

pub mod patterns;
