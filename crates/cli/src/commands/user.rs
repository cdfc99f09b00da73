//! `cachet user add`: creates (or updates) an exam-office account — `staff`, `auditor` or
//! `admin` — with a password typed at the prompt, read from standard input, or generated and
//! printed once.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use cachet_api::accounts::{self, StaffAccount};
use cachet_domain::event::StaffRole;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Crée un compte du service concours, ou met à jour son rôle, son nom et son mot de passe.
    Add(AddOpts),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Role {
    /// Agent du service concours : réceptions, transferts, instruction, rejets.
    Staff,
    /// Auditeur : lecture seule partout.
    Auditor,
    /// Administrateur : sessions, prolongations de délai, et tout ce que fait un agent.
    Admin,
}

#[derive(Debug, clap::Args)]
pub struct AddOpts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// Nom du compte (identifiant de connexion), p. ex. « m.dupont ».
    pub account: String,

    #[arg(long, value_enum)]
    pub role: Role,

    /// Nom affiché (par défaut, le nom du compte).
    #[arg(long)]
    pub name: Option<String>,

    /// Lit le mot de passe sur l'entrée standard (une ligne) au lieu de le demander.
    #[arg(long, conflicts_with = "generate_password")]
    pub password_stdin: bool,

    /// Génère un mot de passe aléatoire, affiché une seule fois.
    #[arg(long)]
    pub generate_password: bool,
}

fn generated_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0_u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("failed to draw a password: {e}"))?;
    Ok(bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect())
}

fn read_password(opts: &AddOpts) -> anyhow::Result<(String, bool)> {
    if opts.generate_password {
        return Ok((generated_password()?, true));
    }
    if opts.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("failed to read the password")?;
        return Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false));
    }
    let first = rpassword::prompt_password("Mot de passe : ").context("failed to read the password")?;
    let second = rpassword::prompt_password("Confirmation : ").context("failed to read the password")?;
    if first != second {
        bail!("les deux mots de passe saisis ne sont pas identiques.");
    }
    Ok((first, false))
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    match opts.action {
        Action::Add(opts) => add(opts).await,
    }
}

async fn add(opts: AddOpts) -> anyhow::Result<ExitCode> {
    if let Err(message) = accounts::check_account_name(&opts.account) {
        bail!("{message}");
    }
    let (password, generated) = read_password(&opts)?;
    if let Err(message) = accounts::check_new_password(&password, &password) {
        bail!("{message}");
    }
    let role = match opts.role {
        Role::Staff => StaffRole::Staff,
        Role::Auditor => StaffRole::Auditor,
        Role::Admin => StaffRole::Admin,
    };
    // Opening the store creates and migrates the schema.
    opts.database.open().await?;
    let db = opts.database.open_read_db().await?;
    let hash = accounts::hash_password(password.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let account = StaffAccount {
        account: opts.account.clone(),
        role,
        display_name: opts.name.clone().unwrap_or_else(|| opts.account.clone()),
        password_hash: hash,
    };
    accounts::upsert_staff(&db, &account, chrono::Utc::now()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("Compte « {} » enregistré avec le rôle {}.", opts.account, accounts::role_code(role));
    if generated {
        println!("Mot de passe généré (affiché une seule fois) : {password}");
    }
    Ok(ExitCode::SUCCESS)
}
