//! `cachet`: the one binary of Cachet. Each subcommand lives in its own module with its options
//! and a `run`.

mod commands;
mod database;

use clap::{Parser, Subcommand};

/// See the workspace's Cargo.toml: replays free on one thread what another allocated.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cachet",
    version,
    about = "Cachet : dossiers d'inscription aux examens, le cachet de la poste faisant foi."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lance le service (base SQLite embarquée par défaut).
    Serve(commands::serve::Opts),
    /// Reconstruit les vues depuis le début du journal, ou les compare (--check).
    Replay(commands::replay::Opts),
    /// Historique d'un dossier : chaque événement, ses deux dates, son auteur et ce qu'a vu le candidat.
    History(commands::history::Opts),
    /// État d'un dossier (ou statistiques d'une session) à une date passée.
    AsOf(commands::as_of::Opts),
    /// Scelle le journal : signe la racine de Merkle des empreintes jusqu'à une position.
    Seal(commands::seal::Opts),
    /// Exporte un paquet de preuves (événements, sceaux, clé publique) vérifiable hors ligne.
    Export(commands::export::Opts),
    /// Crée ou met à jour le schéma de la base de données.
    Migrate(commands::migrate::Opts),
    /// Vérifie la chaîne d'empreintes de tous les événements enregistrés.
    Verify(commands::verify::Opts),
    /// Comptes du service concours (agents, auditeurs, administrateurs).
    User(commands::user::Opts),
    /// Opérations sur une session d'examen (clôture des dépôts).
    Session(commands::session::Opts),
    /// Sauvegarde la base et les fichiers déposés, service en marche.
    Backup(commands::backup::Opts),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CACHET_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(opts) => commands::serve::run(opts).await,
        Command::Replay(opts) => commands::replay::run(opts).await,
        Command::History(opts) => commands::history::run(opts).await,
        Command::AsOf(opts) => commands::as_of::run(opts).await,
        Command::Seal(opts) => commands::seal::run(opts).await,
        Command::Export(opts) => commands::export::run(opts).await,
        Command::Migrate(opts) => commands::migrate::run(opts).await,
        Command::Verify(opts) => commands::verify::run(opts).await,
        Command::User(opts) => commands::user::run(opts).await,
        Command::Session(opts) => commands::session::run(opts).await,
        Command::Backup(opts) => commands::backup::run(opts).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Erreur : {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
