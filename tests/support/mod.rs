//! Test harness shared by the integration tests: a fresh database per test, on SQLite (a temp
//! file) or PostgreSQL (a UUID-named database created on the server named by
//! `CACHET_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! Without a reachable PostgreSQL the PostgreSQL tests are skipped with a message, except with
//! `CI=true`, where it is a failure.

pub mod pg;
