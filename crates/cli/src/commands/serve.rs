//! `cachet serve`: runs the service. With no option, on the embedded SQLite database of the data
//! folder (created and migrated on first start); `--database-url postgres://…` for PostgreSQL;
//! `--demo` loads the source document's session and its candidates. SIGTERM or Ctrl-C drains
//! the requests in flight before stopping.

use std::process::ExitCode;

use anyhow::Context;
use cachet_api::{demo, App, Settings};
use tokio::net::TcpListener;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// Adresse d'écoute.
    #[arg(long, env = "CACHET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Charge la session de démonstration (et accepte l'en-tête d'identité de développement).
    #[arg(long, env = "CACHET_DEMO")]
    pub demo: bool,

    /// Accepte l'en-tête X-Cachet-Actor comme identité (développement uniquement).
    #[arg(long, env = "CACHET_DEV_IDENTITY")]
    pub dev_identity: bool,

    /// Taille maximale d'une pièce déposée, en Mio.
    #[arg(long, env = "CACHET_MAX_UPLOAD_MIB", default_value_t = 10)]
    pub max_upload_mib: u64,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    eprintln!("Arrêt demandé : fin des requêtes en cours…");
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let database = opts.database.database()?;
    let mut settings = Settings::new(database, opts.database.data_dir.join("files"));
    settings.dev_identity = opts.dev_identity || opts.demo;
    settings.max_upload_bytes = opts.max_upload_mib.saturating_mul(1024 * 1024);
    let app = App::build(settings).await.context("failed to start the service")?;

    if opts.demo {
        let state = app.state();
        let summary = demo::load(&*state.store, &state.files).await.context("failed to load the demo data")?;
        println!(
            "Démonstration {} : session {} (examen professionnel d'adjoint technique territorial principal de 2e classe, date limite le 06/07/2023).",
            if summary.loaded_now { "chargée" } else { "déjà présente" },
            summary.session_id
        );
        let head = state.store.head().await?.position;
        if !state.runner.wait_for(head, std::time::Duration::from_secs(60)).await {
            eprintln!("Attention : les vues n'ont pas encore intégré toute la démonstration.");
        }
        let mut last = "";
        for (n, id, label) in &summary.dossiers {
            if *label != last {
                println!("  dossier {n:>2} {id}  {label}  (candidat : candidate:{})", demo::candidate_id(*n));
                last = label;
            }
        }
        println!("  identités de démonstration : en-tête X-Cachet-Actor: staff:agent, admin:admin, auditor:audit ou candidate:<uuid>");
    }

    let listener =
        TcpListener::bind(&opts.listen).await.with_context(|| format!("failed to listen on {}", opts.listen))?;
    let address = listener.local_addr().context("failed to read the listening address")?;
    println!("Cachet écoute sur http://{address} ({})", opts.database.describe());
    println!("  documentation de l'API : http://{address}/api/openapi.json");
    app.serve(listener, shutdown_signal()).await.context("the server failed")?;
    println!("Cachet arrêté.");
    Ok(ExitCode::SUCCESS)
}
