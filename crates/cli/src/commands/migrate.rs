//! `cachet migrate`: creates or updates the database schema (also done by every command that
//! opens the store; this one does only that).

use std::process::ExitCode;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let store = opts.database.open().await?;
    let head = store.head().await?;
    println!("Base à jour : {} ({} événements).", opts.database.describe(), head.position);
    Ok(ExitCode::SUCCESS)
}
