//! Cachet's benchmark suite: one command runs every benchmark and prints one table.
//!
//! ```text
//! cargo bench -p cachet-bench --bench suite [-- --quick] [-- --only store,peer,http,replay,micro,dashboard]
//! ```
//!
//! PostgreSQL comes from `CACHET_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`):
//! the suite creates a fresh database per part and drops it afterwards. SQLite files go in a
//! temporary folder. The results, the machine and the commands are in BENCHMARKS.md.

mod commands;
mod http;
mod micro;
mod peer;
mod replay;
mod workload;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet_api::Database;
use cachet_bench::measure::Load;
use cachet_domain::ids::SessionId;
use cachet_projections::db::ReadDb;
use cachet_store::postgres::PgEventStore;
use cachet_store::sqlite::SqliteEventStore;
use cachet_store::EventStore;
use sqlx::Connection;
use uuid::Uuid;

/// The allocator of the `cachet` binary, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    quick: bool,
    only: Option<Vec<String>>,
    admin_url: String,
}

impl Options {
    fn wants(&self, part: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|p| p == part))
    }
    fn duration(&self) -> Duration {
        Duration::from_secs(if self.quick { 1 } else { 4 })
    }
    fn dossiers(&self) -> usize {
        if self.quick {
            2_000
        } else {
            20_000
        }
    }
}

/// A fresh PostgreSQL database, dropped with [`drop_database`].
async fn create_database(admin_url: &str, name: &str) -> String {
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("PostgreSQL (CACHET_BENCH_PG)");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.expect("drop");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a database");
    let (base, _) = admin_url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

async fn drop_database(admin_url: &str, name: &str) {
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("PostgreSQL");
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn load_cells(load: &Load) -> String {
    let errors = if load.errors > 0 { format!(" ({} erreurs)", load.errors) } else { String::new() };
    format!("{:.0}/s | {} | {}{errors}", load.per_second(), ms(load.p50), ms(load.p99))
}

#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    fn section(&mut self, title: &str, header: &str) {
        let columns = header.matches('|').count() - 1;
        let _ = write!(self.text, "\n### {title}\n\n{header}\n|{}\n", "---|".repeat(columns));
    }
    fn row(&mut self, row: String) {
        let _ = writeln!(self.text, "{row}");
    }
    fn note(&mut self, note: String) {
        let _ = writeln!(self.text, "\n{note}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    if args.first().map(String::as_str) == Some("replay-child") {
        runtime.block_on(replay_child(&args[1..]));
        return;
    }
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
    let options = Options {
        quick: args.iter().any(|a| a == "--quick"),
        only: only.map(|o| o.split(',').map(str::to_owned).collect()),
        admin_url: std::env::var("CACHET_BENCH_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    };
    let mut report = Report::default();
    let started = Instant::now();
    if options.wants("micro") {
        let dir = tempfile::tempdir().expect("a temporary folder");
        report.section("Domaine pur (criterion, moyenne par appel)", "| opération | temps |");
        for (name, time) in micro::run(dir.path(), options.quick) {
            report.row(format!("| {name} | {} ns |", time.as_nanos()));
        }
    }
    runtime.block_on(async {
        if options.wants("store") || options.wants("peer") {
            store_and_peer(&options, &mut report).await;
        }
        if options.wants("http") {
            http(&options, &mut report).await;
        }
        if options.wants("replay") {
            replay(&options, &mut report).await;
        }
        if options.wants("dashboard") {
            dashboard(&options, &mut report).await;
        }
    });
    println!("\n## Résultats ({:.0} s en tout)\n{}", started.elapsed().as_secs_f64(), report.text);
}

const CLIENTS: [usize; 3] = [1, 16, 64];
const PEER: &str = "cqrs-es 0.5 + postgres-es 0.5 (pair)";

async fn store_and_peer(options: &Options, report: &mut Report) {
    let dossiers = options.dossiers();
    let duration = options.duration();
    let session = SessionId::from_uuid(Uuid::new_v4());
    let mut rows: Vec<(&str, Vec<Load>)> = Vec::new();

    if options.wants("store") {
        for (label, batch) in [("Cachet, SQLite, commit groupé", 512), ("Cachet, SQLite, chaque commande seule", 1)] {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let store =
                SqliteEventStore::open_with_batch(dir.path().join("bench.sqlite"), batch).await.expect("SQLite");
            let ids = commands::ids(commands::seed(&store, session, dossiers).await);
            eprintln!("{label}: {dossiers} dossiers");
            let store: Arc<dyn EventStore> = Arc::new(store);
            rows.push((label, commands::run(store, session, ids, &CLIENTS, duration).await));
        }
        for (label, batch) in
            [("Cachet, PostgreSQL, commit groupé", 512), ("Cachet, PostgreSQL, chaque commande seule", 1)]
        {
            let name = format!("cachet_bench_store_{}", std::process::id());
            let url = create_database(&options.admin_url, &name).await;
            {
                let store = PgEventStore::connect_with_batch(&url, batch).await.expect("PostgreSQL");
                let ids = commands::ids(commands::seed(&store, session, dossiers).await);
                sqlx::query("ANALYZE").execute(store.pool()).await.expect("analyze");
                eprintln!("{label}: {dossiers} dossiers");
                let store: Arc<dyn EventStore> = Arc::new(store);
                rows.push((label, commands::run(store, session, ids, &CLIENTS, duration).await));
            }
            drop_database(&options.admin_url, &name).await;
        }
    }
    if options.wants("peer") {
        let name = format!("cachet_bench_peer_{}", std::process::id());
        let url = create_database(&options.admin_url, &name).await;
        {
            let (pool, ids) = peer::seed(&url, session, dossiers).await;
            eprintln!("cqrs-es + postgres-es: {dossiers} dossiers");
            rows.push((
                "cqrs-es 0.5 + postgres-es 0.5 (pair)",
                peer::run(pool.clone(), session, Arc::new(ids), &CLIENTS, duration).await,
            ));
            pool.close().await;
        }
        drop_database(&options.admin_url, &name).await;
    }
    report.section(
        &format!(
            "Commandes durables au niveau du magasin ({dossiers} dossiers de 5 événements, {} s par mesure)",
            duration.as_secs()
        ),
        "| système | clients | commandes | p50 | p99 |",
    );
    for (label, loads) in &rows {
        for load in loads {
            report.row(format!("| {label} | {} | {} |", load.clients, load_cells(load)));
        }
    }
    let find = |label: &str| rows.iter().find(|(l, _)| *l == label).map(|(_, loads)| loads.clone());
    let ratio = |a: &[Load], b: &[Load], i: usize| a[i].per_second() / b[i].per_second();
    let mut ratios = Vec::new();
    let pairs = [
        (
            "SQLite, commit groupé / chaque commande seule",
            "Cachet, SQLite, commit groupé",
            "Cachet, SQLite, chaque commande seule",
        ),
        (
            "PostgreSQL, commit groupé / chaque commande seule",
            "Cachet, PostgreSQL, commit groupé",
            "Cachet, PostgreSQL, chaque commande seule",
        ),
        ("PostgreSQL, Cachet / cqrs-es + postgres-es", "Cachet, PostgreSQL, commit groupé", PEER),
    ];
    for (what, a, b) in pairs {
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            for (i, n) in CLIENTS.iter().enumerate() {
                ratios.push(format!("| {what} | {n} | {:.2} × |", ratio(&a, &b, i)));
            }
        }
    }
    if let Some(peer) = find(PEER) {
        PEER_64.with(|p| p.set(peer[2].per_second()));
    }
    if !ratios.is_empty() {
        report.section("Rapports, paire par paire", "| comparaison | clients | rapport |");
        for r in ratios {
            report.row(r);
        }
    }
}

thread_local! {
    /// The peer's store-level figure at 64 clients, for the HTTP ratio.
    static PEER_64: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

const QUERY_CLIENTS: [usize; 4] = [1, 2, 4, 16];

async fn http(options: &Options, report: &mut Report) {
    let dossiers = options.dossiers();
    let duration = options.duration();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let name = format!("cachet_bench_http_{}", std::process::id());
    let url = create_database(&options.admin_url, &name).await;
    let mut results = Vec::new();
    for (backend, database) in
        [("SQLite", Database::Sqlite(dir.path().join("http.sqlite"))), ("PostgreSQL", Database::Postgres(url.clone()))]
    {
        eprintln!("HTTP, {backend}: {dossiers} dossiers");
        results.push((backend, http::run(database, dossiers, &CLIENTS, &QUERY_CLIENTS, duration).await));
    }
    drop_database(&options.admin_url, &name).await;
    report.section(
        "Commandes de bout en bout par HTTP (revue d'une pièce, réponse après mise à jour des vues)",
        "| base | clients | commandes | p50 | p99 |",
    );
    for (backend, result) in &results {
        for load in &result.commands {
            report.row(format!("| {backend} | {} | {} |", load.clients, load_cells(load)));
        }
    }
    let peer = PEER_64.with(|p| p.get());
    if peer > 0.0 {
        if let Some((_, pg)) = results.iter().find(|(b, _)| *b == "PostgreSQL") {
            report.note(format!(
                "HTTP PostgreSQL à 64 clients / cqrs-es + postgres-es au niveau du magasin à 64 clients : {:.2} ×",
                pg.commands[2].per_second() / peer
            ));
        }
    }
    report.section("Lectures à saturation", "| base | lecture | clients | lectures | p50 | p99 |");
    for (backend, result) in &results {
        for (what, load) in &result.queries {
            report.row(format!("| {backend} | {what} | {} | {} |", load.clients, load_cells(load)));
        }
    }
}

async fn replay(options: &Options, report: &mut Report) {
    let dossiers = if options.quick { 10_000 } else { 100_000 };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let name = format!("cachet_bench_replay_{}", std::process::id());
    let url = create_database(&options.admin_url, &name).await;
    report.section(
        &format!("Rejeu ({dossiers} dossiers de 10 événements)"),
        "| base | événements | génération | repli avant (lectures par lots, un fil) | lecture en flux seule | repli (flux, décodage parallèle) | reconstruction des vues | bascule | mémoire de pointe (reconstruction) |",
    );
    for backend in ["SQLite", "PostgreSQL"] {
        let path = dir.path().join("replay.sqlite");
        let store: Arc<dyn EventStore> = match backend {
            "SQLite" => Arc::new(SqliteEventStore::open(&path).await.expect("SQLite")),
            _ => Arc::new(PgEventStore::connect(&url).await.expect("PostgreSQL")),
        };
        eprintln!("replay, {backend}: generating {dossiers} dossiers");
        let generated = replay::generate(&*store, dossiers).await;
        if let Some(pg) = (backend == "PostgreSQL").then(|| url.clone()) {
            let mut conn = sqlx::PgConnection::connect(&pg).await.expect("PostgreSQL");
            sqlx::query("VACUUM ANALYZE events").execute(&mut conn).await.expect("vacuum");
        }
        eprintln!("replay, {backend}: folding");
        let folds = replay::folds(&*store).await;
        let events = folds.events;
        drop(store);
        eprintln!("replay, {backend}: rebuilding");
        let location = if backend == "SQLite" { path.to_string_lossy().into_owned() } else { url.clone() };
        let (rebuild, swap, peak) = replay::rebuild_in_child(&[backend, &location]);
        let rate =
            |d: Duration| format!("{:.0} ms ({:.0} év./s)", d.as_secs_f64() * 1000.0, events as f64 / d.as_secs_f64());
        report.row(format!(
            "| {backend} | {events} | {:.1} s | {} | {} | {} | {} | {:.1} s | {:.0} Mio |",
            generated.as_secs_f64(),
            rate(folds.before),
            rate(folds.read_only),
            rate(folds.fold),
            rate(rebuild),
            swap.as_secs_f64(),
            peak as f64 / 1048576.0
        ));
    }
    drop_database(&options.admin_url, &name).await;
}

async fn replay_child(args: &[String]) {
    let (backend, location) = (args[0].as_str(), args[1].as_str());
    let (store, db): (Arc<dyn EventStore>, ReadDb) = match backend {
        "SQLite" => (
            Arc::new(SqliteEventStore::open(location).await.expect("SQLite")),
            ReadDb::connect_sqlite(std::path::Path::new(location)).await.expect("read models"),
        ),
        _ => (
            Arc::new(PgEventStore::connect(location).await.expect("PostgreSQL")),
            ReadDb::connect(location).await.expect("read models"),
        ),
    };
    replay::child(store, db).await;
}

async fn dashboard(options: &Options, report: &mut Report) {
    let dossiers = if options.quick { 5_000 } else { 50_000 };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let name = format!("cachet_bench_dashboard_{}", std::process::id());
    let url = create_database(&options.admin_url, &name).await;
    let sqlite = cachet_bench::dashboard::run(dossiers, Database::Sqlite(dir.path().join("dashboard.sqlite"))).await;
    let pg = cachet_bench::dashboard::run(dossiers, Database::Postgres(url)).await;
    drop_database(&options.admin_url, &name).await;
    report.section(
        &format!("Tableau de bord et recherche du bureau ({dossiers} dossiers)"),
        "| requête | SQLite p50 | SQLite p99 | PostgreSQL p50 | PostgreSQL p99 |",
    );
    for (s, p) in sqlite.iter().zip(&pg) {
        report.row(format!("| {} | {} | {} | {} | {} |", s.label, ms(s.p50), ms(s.p99), ms(p.p50), ms(p.p99)));
    }
}
