//! The whole log folded in memory into every dossier's state: for the statistics "as of" an
//! instant, the status views rebuilt without a database, and the replay benchmark.
//!
//! Decoding the JSON payloads costs several times more than evolving a state (see
//! BENCHMARKS.md), and events decode independently: the log is read in chunks of what a fold
//! needs ([`EventStore::replay_from`]: no metadata, ids or hashes), each chunk decoded on the
//! blocking pool (as many chunks at once as there are cores), and the decoded events are folded
//! in order on the caller's task. The store's read runs on its own thread meanwhile.

use cachet_domain::dossier::{DossierEvent, DossierState};
use cachet_domain::event::DomainEvent;
use cachet_store::typed::decode_replayed;
use cachet_store::{EventStore, ReplayEvent};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use uuid::Uuid;

use crate::ProjectionError;

/// One dossier as folded.
#[derive(Clone, Debug, Default)]
pub struct FoldedDossier {
    pub state: DossierState,
    /// The stream version and global position of its last event.
    pub version: i64,
    pub position: i64,
}

/// Every dossier's state at the end of the fold.
#[derive(Debug, Default)]
pub struct Folded {
    pub dossiers: foldhash::HashMap<Uuid, FoldedDossier>,
    /// The last position folded.
    pub position: i64,
    /// The events read (of every stream type).
    pub events: u64,
}

/// A stored event reduced to what the fold needs, payload decoded.
struct Decoded {
    stream_id: Uuid,
    version: i64,
    position: i64,
    recorded_at: DateTime<Utc>,
    event: Option<DossierEvent>,
}

fn decode_chunk(chunk: Vec<ReplayEvent>) -> Result<Vec<Decoded>, ProjectionError> {
    chunk
        .into_iter()
        .map(|replayed| {
            let event = if replayed.stream_type == DossierEvent::STREAM_TYPE {
                Some(decode_replayed(&replayed)?)
            } else {
                None
            };
            Ok(Decoded {
                stream_id: replayed.stream_id,
                version: replayed.stream_version,
                position: replayed.position,
                recorded_at: replayed.recorded_at,
                event,
            })
        })
        .collect()
}

/// Folds the log from position 0: every event, or those recorded at or before `until` (recorded
/// times never decrease along the log, so the fold stops at the first later one).
pub async fn fold_dossiers(store: &dyn EventStore, until: Option<DateTime<Utc>>) -> Result<Folded, ProjectionError> {
    let decoders = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut chunks = store
        .replay_from(0)
        .map_err(ProjectionError::from)
        .map_ok(|chunk| async move {
            tokio::task::spawn_blocking(move || decode_chunk(chunk))
                .await
                .map_err(|e| ProjectionError::Corrupt(format!("a decoder stopped: {e}")))?
        })
        .try_buffered(decoders);
    let mut folded = Folded::default();
    while let Some(chunk) = chunks.try_next().await? {
        for decoded in chunk {
            if until.is_some_and(|until| decoded.recorded_at > until) {
                return Ok(folded);
            }
            folded.events += 1;
            folded.position = decoded.position;
            let Some(event) = decoded.event else { continue };
            let dossier = folded.dossiers.entry(decoded.stream_id).or_default();
            dossier.state.apply(&event);
            dossier.version = decoded.version;
            dossier.position = decoded.position;
        }
    }
    Ok(folded)
}
