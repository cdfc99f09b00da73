//! The event store contract: one suite, run unchanged against SQLite and PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod contract;
mod domain_roundtrip;
mod postgres;
mod sqlite;
