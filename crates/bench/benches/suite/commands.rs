//! Durable commands through Cachet's store: read the dossier's events, fold, decide, append with
//! the version read, acknowledged once committed durably. With group commit (the store as it
//! runs) and, for comparison, with each command committed alone.

use std::sync::Arc;
use std::time::Duration;

use cachet_domain::dossier::{decide, Context, DossierEvent, DossierState};
use cachet_domain::ids::{CandidateId, DossierId, SessionId};
use cachet_store::typed::{append_request, load, Metadata};
use cachet_store::{EventStore, ExpectedVersion};
use chrono::Utc;
use futures::StreamExt;
use uuid::Uuid;

use crate::workload;
use cachet_bench::measure::{closed_loop, Load};

pub fn metadata(actor: cachet_domain::Actor) -> Metadata {
    let command_id = Uuid::new_v4();
    Metadata { actor, command_id, correlation_id: command_id, causation_id: None }
}

/// Appends a new stream's first events, in the name of `actor`.
pub async fn create<E: cachet_domain::event::DomainEvent>(
    store: &dyn EventStore,
    stream: Uuid,
    actor: cachet_domain::Actor,
    events: &[E],
) {
    let request = append_request(stream, ExpectedVersion::Exact(0), &metadata(actor), workload::opened_at(), events);
    store.append(request).await.expect("a new stream");
}

/// Opens a session and `dossiers` dossiers of five events in the store; returns their ids and
/// candidates.
pub async fn seed(store: &dyn EventStore, session: SessionId, dossiers: usize) -> Vec<(DossierId, CandidateId)> {
    create(store, session.as_uuid(), workload::admin(), &[workload::session_opened(session)]).await;
    futures::stream::iter(0..dossiers)
        .map(|n| async move {
            let (dossier, candidate, events) = workload::dossier(n, session);
            create(store, dossier.as_uuid(), workload::staff(), &events).await;
            (dossier, candidate)
        })
        .buffer_unordered(512)
        .collect()
        .await
}

/// One command, as the service runs it (without the HTTP layer and the read-your-writes wait).
pub async fn review(
    store: &dyn EventStore,
    session: &cachet_domain::session::SessionState,
    dossier: DossierId,
) -> Result<(), String> {
    let (events, version) = load::<DossierEvent>(store, dossier.as_uuid()).await.map_err(|e| e.to_string())?;
    let state = DossierState::fold(&events);
    let now = Utc::now();
    let actor = workload::staff();
    let decided =
        decide(&state, &workload::command(), &Context { now, actor: &actor, session }).map_err(|e| e.to_string())?;
    let request = append_request(dossier.as_uuid(), ExpectedVersion::Exact(version), &metadata(actor), now, &decided);
    store.append(request).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The load at each number of clients.
pub async fn run(
    store: Arc<dyn EventStore>,
    session: SessionId,
    dossiers: Arc<Vec<DossierId>>,
    clients: &[usize],
    duration: Duration,
) -> Vec<Load> {
    let state = Arc::new(workload::session_state(session));
    let mut loads = Vec::new();
    for &n in clients {
        let (store, state, dossiers) = (store.clone(), state.clone(), dossiers.clone());
        let load = closed_loop(n, Duration::from_millis(500), duration, move |client, i| {
            let (store, state, dossiers) = (store.clone(), state.clone(), dossiers.clone());
            async move { review(&*store, &state, workload::mine(&dossiers, client, n, i)).await }
        })
        .await;
        loads.push(load);
    }
    loads
}

/// The dossier ids of [`seed`]'s answer.
pub fn ids(seeded: Vec<(DossierId, CandidateId)>) -> Arc<Vec<DossierId>> {
    Arc::new(seeded.into_iter().map(|(d, _)| d).collect())
}
