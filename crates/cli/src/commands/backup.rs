//! `cachet backup`: a consistent copy of the database, taken while the service runs, and of the
//! deposited files.
//!
//! SQLite: `VACUUM INTO`, a snapshot of the whole file at one transaction (events, read models,
//! accounts, outbox) that writers do not wait for. PostgreSQL: `pg_dump --format=custom`, itself
//! one snapshot. The files folder is copied after the database: a file is stored before the event
//! that names it, so every file the backup's events name is in the copy. Restoring is described
//! in the README (« Sauvegarde et restauration »).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use cachet_api::Database;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// Dossier où écrire la sauvegarde (créé s'il n'existe pas ; il doit être vide).
    #[arg(long)]
    pub to: PathBuf,
}

/// Copies `from` into `to`, recursively; returns the number of files copied.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    if !from.exists() {
        return Ok(0);
    }
    std::fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copied += copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("failed to copy {}", entry.path().display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// The URL without the parameters only sqlx knows (e.g. `statement-cache-capacity`), which libpq
/// tools refuse; libpq's own parameters have no `-`.
pub fn libpq_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let kept: Vec<&str> =
        query.split('&').filter(|pair| !pair.split('=').next().unwrap_or_default().contains('-')).collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    if opts.to.exists() && std::fs::read_dir(&opts.to)?.next().is_some() {
        bail!("le dossier de sauvegarde {} n'est pas vide : choisissez un dossier vide ou nouveau", opts.to.display());
    }
    std::fs::create_dir_all(&opts.to).with_context(|| format!("failed to create {}", opts.to.display()))?;
    let target = std::fs::canonicalize(&opts.to)?;
    match opts.database.database()? {
        Database::Sqlite(path) => {
            // Migrates first, so the copy has the current schema.
            opts.database.open().await?;
            let db = opts.database.open_read_db().await?;
            let file = target.join("cachet.sqlite");
            sqlx::query("VACUUM INTO $1")
                .bind(file.display().to_string())
                .execute(&db.pool)
                .await
                .with_context(|| format!("failed to back up {}", path.display()))?;
            println!("Base SQLite sauvegardée : {}", file.display());
        }
        Database::Postgres(url) => {
            let file = target.join("cachet.dump");
            let status = std::process::Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--file"])
                .arg(&file)
                .arg(libpq_url(&url))
                .status()
                .context("pg_dump est introuvable : installez le client PostgreSQL (paquet postgresql-client)")?;
            if !status.success() {
                bail!("pg_dump a échoué ({status})");
            }
            println!("Base PostgreSQL sauvegardée (pg_dump, format custom) : {}", file.display());
        }
    }
    let files = copy_tree(&opts.database.data_dir.join("files"), &target.join("files"))?;
    println!("Fichiers déposés copiés : {files}.");
    Ok(ExitCode::SUCCESS)
}
