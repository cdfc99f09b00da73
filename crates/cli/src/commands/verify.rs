//! `cachet verify`: recomputes the hash chain over the whole store, streaming, and names the
//! first broken position with its stream and event. Exit code 1 when the chain is broken.

use std::process::ExitCode;

use cachet_store::verify::{verify_chain, BreakKind};
use indicatif::{ProgressBar, ProgressStyle};

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// Vérifie hors ligne un paquet exporté par « cachet export », sans base de données.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,

    /// Avec --file : prouve que les événements de ce dossier figurent sous un sceau.
    #[arg(long, requires = "file")]
    pub dossier: Option<uuid::Uuid>,

    /// Vérifie aussi que chaque vue est identique à sa reconstruction depuis le journal.
    #[arg(long)]
    pub projections: bool,

    /// Sans barre de progression.
    #[arg(long)]
    pub quiet: bool,
}

fn verify_file(path: &std::path::Path, dossier: Option<uuid::Uuid>) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("impossible de lire {} : {e}", path.display()))?;
    let report = cachet_store::bundle::verify(std::io::BufReader::new(file), dossier);
    match report.problem {
        None => {
            println!(
                "Paquet intègre : {} événements vérifiés, {} sceau(x) de signature valide.",
                report.events, report.seals
            );
            if let Some(dossier) = dossier {
                println!("{} événement(s) du dossier {dossier} prouvé(s) sous un sceau.", report.dossier_events_proven);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(problem) => {
            println!("Paquet REFUSÉ : {problem}");
            println!("{} événements vérifiés avant le problème.", report.events);
            Ok(ExitCode::from(1))
        }
    }
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    if let Some(path) = &opts.file {
        return verify_file(path, opts.dossier);
    }
    let store = opts.database.open().await?;
    let head = store.head().await?;
    let bar = if opts.quiet || head.position < 10_000 {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::try_from(head.position).unwrap_or_default())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} événements ({per_sec}, reste {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = verify_chain(&*store, |position| {
        if position % 1_000 == 0 {
            bar.set_position(u64::try_from(position).unwrap_or_default());
        }
    })
    .await?;
    bar.finish_and_clear();
    match report.first_break {
        None => {
            println!(
                "Chaîne intègre : {} événements vérifiés, dernière position {}, empreinte {}.",
                report.checked,
                report.head.position,
                hex::encode(&report.head.hash)
            );
            let db = opts.database.open_read_db().await?;
            let seals = cachet_api::seal::seals(&db).await?.len();
            if let Some(problem) = cachet_api::seal::check_seals(&*store, &db).await? {
                println!("Sceaux ROMPUS : {problem}.");
                return Ok(ExitCode::from(1));
            }
            if seals > 0 {
                println!("{seals} sceau(x) conforme(s) aux événements.");
            }
            if opts.projections && !check_projections(&opts.database, &*store).await? {
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(broken) => {
            let what = match broken.kind {
                BreakKind::Gap { found } => {
                    format!("événement manquant (la position suivante enregistrée est {found})")
                }
                BreakKind::PrevHashMismatch => {
                    "l'empreinte précédente ne correspond pas à l'événement d'avant".to_owned()
                }
                BreakKind::HashMismatch => "le contenu enregistré ne correspond pas à son empreinte".to_owned(),
                BreakKind::HeadMismatch { head_position, last_position } => format!(
                    "la tête du journal indique la position {head_position} mais la chaîne s'arrête à {last_position}"
                ),
            };
            println!("Chaîne ROMPUE à la position {} : {what}.", broken.position);
            if let (Some(stream), Some(event)) = (broken.stream_id, broken.event_id) {
                println!("Flux {stream}, événement {event}.");
            }
            println!("{} événements vérifiés avant la rupture.", report.checked);
            Ok(ExitCode::from(1))
        }
    }
}

/// Rebuilds each read model beside the live one up to its checkpoint and compares them.
async fn check_projections(database: &DatabaseOpts, store: &dyn cachet_store::EventStore) -> anyhow::Result<bool> {
    use cachet_projections::replay::{compare_at_live, drop_rebuild, rebuild_beside};
    use cachet_projections::runner::{prepare, read_checkpoint, Target};

    let db = database.open_read_db().await?;
    let mut identical = true;
    for projection in cachet_api::app::projections() {
        prepare(&db, projection.as_ref(), Target::Live).await?;
        let until = read_checkpoint(&db, projection.as_ref(), Target::Live).await?;
        rebuild_beside(store, &db, projection.as_ref(), until, |_| {}).await?;
        // The live view may move on meanwhile: compare both at the same, locked, position.
        let (until, differences) = compare_at_live(store, &db, projection.as_ref()).await?;
        drop_rebuild(&db, projection.as_ref()).await?;
        if differences.is_empty() {
            println!("Vue « {} » : identique à sa reconstruction ({until} événements).", projection.name());
        } else {
            identical = false;
            println!("Vue « {} » : {} différence(s) avec sa reconstruction.", projection.name(), differences.len());
            for d in differences {
                println!("  {} {}", d.table, d.key);
            }
        }
    }
    Ok(identical)
}
