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

    /// Où le service garde les fichiers déposés, s'il ne les garde pas dans le dossier des données
    /// (comme `serve --files-url`) : `file:///chemin` est copié ; `s3://…` se sauvegarde avec les
    /// outils du stockage.
    #[arg(long, env = "CACHET_FILES_URL")]
    pub files_url: Option<String>,
}

/// Copies `from` into `to`, recursively; returns the number of files copied. Uploads in
/// progress are left out: the `tmp/` folder, and the store's temporary `…#n` files, which may be
/// renamed or removed while the copy runs.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    if !from.exists() {
        return Ok(0);
    }
    std::fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "tmp" || name.contains('#') {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copied += copy_tree(&entry.path(), &target)?;
        } else {
            match std::fs::copy(entry.path(), &target) {
                Ok(_) => copied += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error).with_context(|| format!("failed to copy {}", entry.path().display())),
            }
        }
    }
    Ok(copied)
}

/// The URL for libpq without its password (given to pg_dump through `PGPASSWORD`, which other
/// users cannot read in the process list) nor the parameters only sqlx knows.
fn pg_dump_target(url: &str) -> (String, Option<String>) {
    let url = libpq_url(url);
    match url::Url::parse(&url) {
        Ok(mut parsed) => {
            let password =
                parsed.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
            let _ = parsed.set_password(None);
            (parsed.to_string(), password)
        }
        Err(_) => (url, None),
    }
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
            let (target_url, password) = pg_dump_target(&url);
            let mut command = std::process::Command::new("pg_dump");
            command.args(["--format=custom", "--no-owner", "--file"]).arg(&file).arg(target_url);
            if let Some(password) = password {
                command.env("PGPASSWORD", password);
            }
            let status = command
                .status()
                .context("pg_dump est introuvable : installez le client PostgreSQL (paquet postgresql-client)")?;
            if !status.success() {
                bail!("pg_dump a échoué ({status})");
            }
            println!("Base PostgreSQL sauvegardée (pg_dump, format custom) : {}", file.display());
        }
    }
    let files_dir = match opts.files_url.as_deref() {
        None => opts.database.data_dir.join("files"),
        Some(url) if url.starts_with("file://") => PathBuf::from(url.trim_start_matches("file://")),
        Some(url) => {
            println!(
                "Fichiers déposés non copiés : ils sont dans {url} ; sauvegardez-les avec les outils de ce stockage \
                 (après la base, pour que chaque fichier nommé par la sauvegarde y soit)."
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let files = copy_tree(&files_dir, &target.join("files"))?;
    println!("Fichiers déposés copiés : {files}.");
    Ok(ExitCode::SUCCESS)
}
