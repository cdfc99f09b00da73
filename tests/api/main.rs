//! The HTTP API, end to end: the real server on a free port over a fresh database, driven by a
//! typed client through every rule of the domain; each scenario runs on SQLite and PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod audit_scale;
mod bad_input;
mod deadlines;
mod exports;
mod harness;
mod imports;
mod online_deposit;
mod operations;
mod protocol;
mod replay;
mod roles;
