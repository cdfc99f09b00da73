//! `cachet serve`: runs the service. With no option, on the embedded SQLite database of the data
//! folder (created and migrated on first start); `--database-url postgres://…` for PostgreSQL;
//! `--demo` loads the source document's session and its candidates. SIGTERM or Ctrl-C drains
//! the requests in flight before stopping.

use std::process::ExitCode;

use anyhow::Context;
use cachet_api::mail::MailSettings;
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

    /// Stockage des pièces : file:///chemin ou s3://seau/préfixe (identifiants AWS_* de l'environnement) ; par défaut le dossier files/ du dossier de données.
    #[arg(long, env = "CACHET_FILES_URL")]
    pub files_url: Option<String>,

    /// Adresse publique du service, pour les liens des courriels (p. ex. https://concours.cdg61.fr) ;
    /// en https, les cookies de session sont marqués Secure. Par défaut : http://<adresse d'écoute>.
    #[arg(long, env = "CACHET_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serveur SMTP d'envoi des courriels ; sans lui, chaque courriel est écrit dans le dossier
    /// outbox/ du dossier de données.
    #[arg(long, env = "CACHET_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// Port du serveur SMTP.
    #[arg(long, env = "CACHET_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,

    /// Identifiant SMTP (le mot de passe se donne par CACHET_SMTP_PASSWORD).
    #[arg(long, env = "CACHET_SMTP_USER")]
    pub smtp_user: Option<String>,

    /// Mot de passe SMTP (de préférence par la variable d'environnement).
    #[arg(long, env = "CACHET_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// SMTP en clair, sans STARTTLS (relais local ou réseau de confiance uniquement).
    #[arg(long, env = "CACHET_SMTP_PLAIN")]
    pub smtp_plain: bool,

    /// Expéditeur des courriels.
    #[arg(long, env = "CACHET_MAIL_FROM", default_value = "Cachet – service concours <concours@cachet.invalid>")]
    pub mail_from: String,

    /// Adresse d'un mandataire inverse de confiance (répétable) : pour lui seul, l'en-tête
    /// X-Forwarded-For désigne le client, dont les échecs de connexion sont comptés.
    #[arg(long = "trusted-proxy", env = "CACHET_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
    settings.files_url = opts.files_url.clone();
    settings.public_url = opts.public_url.clone().unwrap_or_else(|| format!("http://{}", opts.listen));
    settings.secure_cookies = settings.public_url.starts_with("https://");
    settings.mail_from = opts.mail_from.clone();
    settings.trusted_proxies = opts.trusted_proxies.iter().map(|ip| ip.to_canonical()).collect();
    if let Some(host) = &opts.smtp_host {
        settings.mail = MailSettings::Smtp {
            host: host.clone(),
            port: opts.smtp_port,
            username: opts.smtp_user.clone(),
            password: opts.smtp_password.clone(),
            tls: !opts.smtp_plain,
        };
    } else {
        settings.mail = MailSettings::Outbox(opts.database.data_dir.join("outbox"));
    }
    let app = App::build(settings).await.context("failed to start the service")?;
    let mailer_description = app.state().mailer.describe();

    if opts.demo {
        let state = app.state();
        let summary = demo::load(&*state.store, &state.files).await.context("failed to load the demo data")?;
        demo::load_accounts(&state.db, &summary).await.context("failed to load the demo accounts")?;
        let open_session = demo::load_open_session(&*state.store).await.context("failed to load the demo data")?;
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
                println!(
                    "  dossier {n:>2} {id}  code {}  {label}  (candidat : candidate:{})",
                    cachet_api::service::user_code_for(*id),
                    demo::candidate_id(*n)
                );
                last = label;
            }
        }
        println!("  identités de démonstration : en-tête X-Cachet-Actor: staff:agent, admin:admin, auditor:audit ou candidate:<uuid>");
        println!(
            "  espace sécurisé candidat : un code ci-dessus et le mot de passe « {} » ; session ouverte aux préinscriptions : {open_session}",
            demo::DEMO_PASSWORD
        );
    }

    let listener =
        TcpListener::bind(&opts.listen).await.with_context(|| format!("failed to listen on {}", opts.listen))?;
    let address = listener.local_addr().context("failed to read the listening address")?;
    println!("Cachet écoute sur http://{address} ({})", opts.database.describe());
    println!("  documentation de l'API : http://{address}/api/openapi.json");
    println!("  pages : http://{address}/ (candidats) et http://{address}/bureau (service concours)");
    println!("  courriels : {}", mailer_description);
    app.serve(listener, shutdown_signal()).await.context("the server failed")?;
    println!("Cachet arrêté.");
    Ok(ExitCode::SUCCESS)
}
