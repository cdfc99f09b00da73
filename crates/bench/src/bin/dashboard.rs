//! The back office's dashboard and search on a generated session (50,000 dossiers by default).
//!
//! `cargo run --release -p cachet-bench --bin dashboard [-- DOSSIERS]`, on SQLite, or on
//! PostgreSQL with `CACHET_BENCH_DATABASE_URL=postgres://…` (a fresh database).

use cachet_api::Database;

/// The allocator of the `cachet` binary, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let dossiers: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(50_000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let database = match std::env::var("CACHET_BENCH_DATABASE_URL") {
        Ok(url) => Database::Postgres(url),
        Err(_) => Database::Sqlite(dir.path().join("bench.sqlite")),
    };
    cachet_bench::dashboard::run(dossiers, database).await;
}
