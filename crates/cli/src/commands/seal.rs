//! `cachet seal`: signs, with the Ed25519 key of the configuration, the Merkle root of the event
//! hashes up to a position (the head by default) and stores the seal. `--generate-key FILE`
//! writes a new key first.

use std::process::ExitCode;

use anyhow::Context;
use cachet_api::seal::{parse_key, seal};

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// Fichier contenant la clé de scellement (32 octets en hexadécimal).
    #[arg(long, env = "CACHET_SEAL_KEY_FILE")]
    pub key_file: Option<std::path::PathBuf>,

    /// Crée une nouvelle clé dans ce fichier (droits 600) et l'utilise.
    #[arg(long, conflicts_with = "key_file")]
    pub generate_key: Option<std::path::PathBuf>,

    /// Scelle jusqu'à cette position (la dernière par défaut).
    #[arg(long)]
    pub upto: Option<i64>,
}

fn new_key_file(path: &std::path::Path) -> anyhow::Result<String> {
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let text = hex::encode(seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("failed to create the key file {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes())?;
    Ok(text)
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let seed = match (&opts.generate_key, &opts.key_file) {
        (Some(path), _) => new_key_file(path)?,
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("failed to read the key file {}", path.display()))?
        }
        (None, None) => anyhow::bail!(
            "indiquez la clé de scellement : --key-file FICHIER (ou CACHET_SEAL_KEY_FILE), ou --generate-key FICHIER"
        ),
    };
    let key = parse_key(&seed)?;
    let store = opts.database.open().await?;
    let db = opts.database.open_read_db().await?;
    let stored = seal(&*store, &db, &key, opts.upto).await?;
    println!(
        "Sceau de la position {} : racine {}, clé publique {}.",
        stored.record.position,
        stored.record.root,
        hex::encode(&stored.public_key)
    );
    Ok(ExitCode::SUCCESS)
}
