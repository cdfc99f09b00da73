//! `cachet session close-deposits`: after the deadline, declares every pre-registered dossier of
//! a session with no deposit *non parvenu*, in the name of an exam-office account. Safe to run
//! twice (the second run lapses nothing), and beside running servers.

use std::process::ExitCode;

use anyhow::{bail, Context};
use cachet_api::auth::Caller;
use cachet_api::{accounts, App, Settings};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::SessionId;
use uuid::Uuid;

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Déclare non parvenus les dossiers préinscrits sans dépôt, une fois la date limite passée.
    CloseDeposits(CloseOpts),
}

#[derive(Debug, clap::Args)]
pub struct CloseOpts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// La session d'examen.
    #[arg(long)]
    pub session: Uuid,

    /// Le compte du service concours au nom duquel agir (créé par `cachet user add`).
    #[arg(long = "as", value_name = "COMPTE")]
    pub account: String,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    match opts.action {
        Action::CloseDeposits(opts) => close_deposits(opts).await,
    }
}

async fn close_deposits(opts: CloseOpts) -> anyhow::Result<ExitCode> {
    let database = opts.database.database()?;
    // The mails this command causes are queued with its events; the server sends them.
    let settings = Settings { send_mail: false, ..Settings::new(database, opts.database.data_dir.join("files")) };
    let app = App::build(settings).await.context("failed to open the service")?;
    let state = app.state();
    let Some(account) =
        accounts::staff_by_account(&state.db, &opts.account).await.map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        bail!("le compte « {} » n'existe pas (voir cachet user add).", opts.account);
    };
    if account.role == StaffRole::Auditor {
        bail!("les auditeurs ont un accès en lecture seule : cette action leur est interdite.");
    }
    let head = state.store.head().await?.position;
    state.runner.wait_for(head, std::time::Duration::from_secs(120)).await;
    let caller = Caller::Staff { account: account.account.clone(), role: account.role };
    match cachet_api::service::close_deposits(state, &caller, SessionId::from_uuid(opts.session)).await {
        Ok(report) => {
            println!("{} dossier(s) déclaré(s) non parvenu(s).", report.lapsed);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => bail!("{error}"),
    }
}
