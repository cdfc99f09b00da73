//! Replay at scale: a log of about 1,000,000 events (100,000 dossiers of ten events), then
//! - the fold alone: stream every event in order, decode it and evolve the dossier's state in
//!   memory, through the old batched reads and through the store's streamed read;
//! - the full rebuild of every read model beside the live one, then the swap, as `cachet replay`
//!   does, in a child process whose peak memory is read from `/proc/self/status`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet_domain::dossier::{DossierEvent, DossierState, PieceReview};
use cachet_domain::event::DomainEvent;
use cachet_domain::ids::{PieceCode, SessionId};
use cachet_projections::db::ReadDb;
use cachet_projections::fold::fold_dossiers;
use cachet_projections::replay::{rebuild_beside, swap};
use cachet_projections::runner::{prepare, Target};
use cachet_store::typed::decode;
use cachet_store::{stream_batched, EventStore, StoreError, StoredEvent};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

use crate::workload;

const PIECES: [&str; 5] =
    ["etat-services", "dossier-preinscription", "arrete-situation", "etat-services", "arrete-situation"];

/// Appends `dossiers` dossiers of ten events each, many commands at a time.
pub async fn generate(store: &dyn EventStore, dossiers: usize) -> Duration {
    let started = Instant::now();
    let session = SessionId::from_uuid(Uuid::new_v4());
    crate::commands::seed(store, session, 0).await;
    futures::stream::iter(0..dossiers)
        .map(|n| async move {
            let (dossier, _, mut events) = workload::dossier(n, session);
            for code in PIECES {
                let piece = PieceCode::parse(code).expect("a piece");
                events.push(DossierEvent::PieceReviewed { piece, review: PieceReview::Accepted });
            }
            crate::commands::create(store, dossier.as_uuid(), workload::staff(), &events).await;
        })
        .buffer_unordered(1_024)
        .collect::<()>()
        .await;
    started.elapsed()
}

/// Decodes and folds every dossier event of a stream; returns the number of events.
async fn fold(mut events: BoxStream<'_, Result<StoredEvent, StoreError>>) -> (i64, usize) {
    let mut states: HashMap<Uuid, DossierState> = HashMap::new();
    let mut count = 0;
    while let Some(stored) = events.try_next().await.expect("an event") {
        count += 1;
        if stored.stream_type != DossierEvent::STREAM_TYPE {
            continue;
        }
        let event: DossierEvent = decode(&stored).expect("a dossier event");
        let state = states.entry(stored.stream_id).or_default();
        *state = std::mem::take(state).evolve(&event);
    }
    (count, states.len())
}

/// The fold three ways: as before (batched reads, decoded on one task), the streamed read alone,
/// and the fold as Cachet runs it now ([`fold_dossiers`]: streamed, decoded in parallel).
pub struct Folds {
    pub events: i64,
    pub before: Duration,
    pub read_only: Duration,
    pub fold: Duration,
}

pub async fn folds(store: &dyn EventStore) -> Folds {
    let started = Instant::now();
    let (events, _) = fold(stream_batched(store, 0)).await;
    let before = started.elapsed();
    let started = Instant::now();
    let read = store.stream_from(0).try_fold(0_i64, |n, _| async move { Ok(n + 1) }).await.expect("a read");
    let read_only = started.elapsed();
    let started = Instant::now();
    let folded = fold_dossiers(store, None).await.expect("a fold");
    let fold = started.elapsed();
    assert_eq!((read, folded.events as i64), (events, events), "every read sees every event");
    Folds { events, before, read_only, fold }
}

/// In the child process: rebuilds every read model beside the live one and swaps it in, then
/// prints `rebuild_ms swap_ms peak_bytes`.
pub async fn child(store: Arc<dyn EventStore>, db: ReadDb) {
    let until = store.head().await.expect("the head").position;
    let started = Instant::now();
    let mut swapped = Duration::ZERO;
    let mut rebuilt = Duration::ZERO;
    for projection in cachet_api::app::projections() {
        prepare(&db, projection.as_ref(), Target::Live).await.expect("the live tables");
        let began = Instant::now();
        rebuild_beside(&*store, &db, projection.as_ref(), until, |_| {}).await.expect("a rebuild");
        rebuilt += began.elapsed();
        let began = Instant::now();
        swap(&*store, &db, projection.as_ref()).await.expect("a swap");
        swapped += began.elapsed();
    }
    let _ = started;
    let peak = cachet_bench::measure::peak_memory().unwrap_or(0);
    println!("{} {} {}", rebuilt.as_millis(), swapped.as_millis(), peak);
}

/// Runs the child on a database and reads its figures.
pub fn rebuild_in_child(args: &[&str]) -> (Duration, Duration, u64) {
    let exe = std::env::current_exe().expect("this program");
    let output = std::process::Command::new(exe).arg("replay-child").args(args).output().expect("the child runs");
    assert!(output.status.success(), "the rebuild failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let figures: Vec<u64> =
        text.lines().last().unwrap_or_default().split_whitespace().filter_map(|n| n.parse().ok()).collect();
    assert_eq!(figures.len(), 3, "the child's figures: {text}");
    (Duration::from_millis(figures[0]), Duration::from_millis(figures[1]), figures[2])
}
