//! `cachet replay`: rebuilds a read model from position 0 beside the live one and swaps it in;
//! with `--check`, compares the two instead and reports every difference (exit code 1). A server
//! may run meanwhile: the swap and the comparison first bring the rebuild up to the live
//! checkpoint, under its lock.

use std::process::ExitCode;

use anyhow::Context;
use cachet_api::app::projections;
use cachet_projections::replay::{compare_at_live, drop_rebuild, rebuild_beside, swap, DifferenceKind};
use cachet_projections::runner::{prepare, read_checkpoint, Target};
use indicatif::{ProgressBar, ProgressStyle};

use crate::database::DatabaseOpts;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(flatten)]
    pub database: DatabaseOpts,

    /// La vue à reconstruire (toutes par défaut).
    #[arg(long)]
    pub projection: Option<String>,

    /// Compare la vue reconstruite à la vue en service sans rien remplacer.
    #[arg(long)]
    pub check: bool,

    /// Sans barre de progression.
    #[arg(long)]
    pub quiet: bool,
}

fn bar(quiet: bool, len: i64) -> ProgressBar {
    if quiet || len < 10_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or_default());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} événements ({per_sec}, reste {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let store = opts.database.open().await?;
    let db = opts.database.open_read_db().await?;
    let selected: Vec<_> =
        projections().into_iter().filter(|p| opts.projection.as_deref().is_none_or(|name| name == p.name())).collect();
    if selected.is_empty() {
        let known: Vec<&str> = projections().iter().map(|p| p.name()).collect();
        anyhow::bail!("vue inconnue ; vues existantes : {}", known.join(", "));
    }
    let mut differences_found = false;
    for projection in selected {
        let name = projection.name();
        prepare(&db, projection.as_ref(), Target::Live).await.context("failed to prepare the live read model")?;
        let until = if opts.check {
            read_checkpoint(&db, projection.as_ref(), Target::Live).await?
        } else {
            store.head().await?.position
        };
        let progress = bar(opts.quiet, until);
        rebuild_beside(&*store, &db, projection.as_ref(), until, |p| progress.set_position(p.max(0) as u64))
            .await
            .context("failed to rebuild the read model")?;
        progress.finish_and_clear();
        if opts.check {
            let (reached, differences) = compare_at_live(&*store, &db, projection.as_ref())
                .await
                .context("failed to compare the rebuilt read model")?;
            drop_rebuild(&db, projection.as_ref()).await?;
            if differences.is_empty() {
                println!("Vue « {name} » : identique à sa reconstruction ({reached} événements).");
            } else {
                differences_found = true;
                println!(
                    "Vue « {name} » : {} différence(s) avec sa reconstruction ({reached} événements) :",
                    differences.len()
                );
                for d in differences {
                    let what = match d.kind {
                        DifferenceKind::Changed => "valeurs différentes",
                        DifferenceKind::OnlyLive => "ligne absente de la reconstruction",
                        DifferenceKind::OnlyRebuilt => "ligne absente de la vue en service",
                    };
                    println!("  {} {} : {what}", d.table, d.key);
                }
            }
        } else {
            let position =
                swap(&*store, &db, projection.as_ref()).await.context("failed to swap the rebuilt read model in")?;
            println!("Vue « {name} » reconstruite jusqu'à la position {position} et mise en service.");
        }
    }
    Ok(if differences_found { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
