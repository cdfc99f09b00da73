//! `cachet as-of`: a dossier as it stood at a past instant (by recorded time), with the message
//! the candidate read then; or, with `--session`, a session's statistics at that instant.

use std::process::ExitCode;

use cachet_api::audit::{dossier_as_of, statistics_as_of};
use cachet_api::routes::audit::parse_at;
use cachet_domain::ids::SessionId;
use cachet_domain::time::format_instant;
use uuid::Uuid;

use crate::commands::history::resolve;
use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Le numéro de dossier ou le code utilisateur (sauf avec --session).
    #[arg(required_unless_present = "session")]
    pub dossier: Option<String>,

    /// Les statistiques d'une session plutôt qu'un dossier.
    #[arg(long, conflicts_with = "dossier")]
    pub session: Option<Uuid>,

    /// L'instant (2023-07-07T09:00:00+02:00) ou la date (2023-07-07 : fin de journée, heure de Paris).
    #[arg(long)]
    pub at: String,

    #[command(flatten)]
    pub database: DatabaseOpts,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let at = parse_at(&opts.at).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = opts.database.open().await?;
    if let Some(session) = opts.session {
        let stats =
            statistics_as_of(&*store, SessionId::from_uuid(session), at).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("Session {session} au {} : {} dossier(s).", format_instant(at), stats.total);
        for (title, counts) in [
            ("Par état", &stats.by_status),
            ("Par canal", &stats.by_channel),
            ("Par motif de rejet", &stats.by_rejection),
        ] {
            println!("{title} :");
            for (key, count) in counts {
                println!("  {key} : {count}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dossier = resolve(&opts.database, opts.dossier.as_deref().unwrap_or_default()).await?;
    match dossier_as_of(&*store, dossier, at).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        None => {
            println!("Le dossier {dossier} n'existait pas au {}.", format_instant(at));
            Ok(ExitCode::from(1))
        }
        Some(status) => {
            println!(
                "Dossier {dossier} au {} (version {}) : {}.",
                format_instant(at),
                status.version,
                status.status_label
            );
            println!("Vu par le candidat : {}", status.message);
            for piece in &status.missing {
                println!("  - {piece}");
            }
            if let Some(deposit) = &status.deposit {
                println!("Dépôt {} : {}.", deposit.channel_label, deposit.explanation);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
