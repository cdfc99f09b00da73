//! `cachet export`: writes the proof bundle of a session (or of the whole log) — events as JSON
//! Lines with their hashes and inclusion proofs, the seals and their public key — for
//! `cachet verify --file` to check offline.

use std::process::ExitCode;

use anyhow::Context;
use cachet_api::seal::export;
use cachet_domain::ids::SessionId;
use uuid::Uuid;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// La session à exporter (tout le journal sinon).
    #[arg(long)]
    pub session: Option<Uuid>,

    /// Le fichier du paquet.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let store = opts.database.open().await?;
    let db = opts.database.open_read_db().await?;
    let file = std::fs::File::create(&opts.out).with_context(|| format!("failed to create {}", opts.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let exported = export(&*store, &db, opts.session.map(SessionId::from_uuid), &mut out).await?;
    println!("Paquet écrit dans {} : {} événements, {} sceau(x).", opts.out.display(), exported.events, exported.seals);
    Ok(ExitCode::SUCCESS)
}
