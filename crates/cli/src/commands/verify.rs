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

    /// Sans barre de progression.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
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
