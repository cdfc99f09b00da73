//! `cachet history <dossier or code utilisateur>`: every event of a dossier in order, with its
//! two times, who caused it, what it meant and the message the candidate read right after it.

use std::process::ExitCode;

use anyhow::Context;
use cachet_api::audit::dossier_history;
use cachet_domain::ids::{DossierId, UserCode};
use cachet_domain::time::format_instant;
use cachet_projections::queries;
use uuid::Uuid;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Le numéro de dossier ou le code utilisateur du candidat.
    pub dossier: String,

    #[command(flatten)]
    pub database: DatabaseOpts,

    /// Sortie JSON (une ligne par événement).
    #[arg(long)]
    pub json: bool,
}

/// A dossier named by its number or by its candidate's code utilisateur.
pub async fn resolve(database: &DatabaseOpts, text: &str) -> anyhow::Result<DossierId> {
    if let Ok(id) = Uuid::parse_str(text.trim()) {
        return Ok(DossierId::from_uuid(id));
    }
    let code = UserCode::parse(text)
        .map_err(|_| anyhow::anyhow!("« {text} » n'est ni un numéro de dossier ni un code utilisateur"))?;
    let db = database.open_read_db().await?;
    let status = queries::dossier_by_user_code(&db, code.as_str()).await.context("failed to read the dossiers")?;
    status
        .map(|s| DossierId::from_uuid(s.dossier_id))
        .ok_or_else(|| anyhow::anyhow!("aucun dossier n'a le code utilisateur {code}"))
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let store = opts.database.open().await?;
    let dossier = resolve(&opts.database, &opts.dossier).await?;
    let Some(entries) = dossier_history(&*store, dossier).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
        anyhow::bail!("le dossier {dossier} n'existe pas");
    };
    for entry in entries {
        if opts.json {
            println!("{}", serde_json::to_string(&entry)?);
            continue;
        }
        println!(
            "#{} (v{}) {} — survenu le {}, enregistré le {}, par {}",
            entry.position,
            entry.version,
            entry.event_type,
            format_instant(entry.occurred_at),
            format_instant(entry.recorded_at),
            entry.actor
        );
        println!("    {}", entry.description);
        println!("    Vu par le candidat : {}", entry.message);
        for piece in entry.missing {
            println!("      - {piece}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
