//! What auditors ask of the log: the history of a dossier (every event with both times, who
//! caused it, what it meant and what the candidate read right after it), and the state of a
//! dossier or the statistics of a session as they were at a past instant (by recorded time).
//! Everything here is folded from the events themselves, not from the read models.

use cachet_domain::dossier::{DossierEvent, DossierState};
use cachet_domain::ids::{DossierId, SessionId};
use cachet_domain::session::{SessionEvent, SessionState};
use cachet_projections::queries::{DossierStatus, Statistics};
use cachet_store::typed::{decode, load, Metadata};
use cachet_store::{EventStore, StoredEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// One event of a dossier's history.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Global position in the log.
    pub position: i64,
    /// Version of the dossier after this event.
    pub version: i64,
    pub event_type: String,
    /// When it happened in the world (the postmark date, the moment of a counter receipt…).
    pub occurred_at: DateTime<Utc>,
    /// When the system recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it, in French.
    pub actor: String,
    /// What it means, in French.
    pub description: String,
    /// The state and message the candidate would have read right after it.
    pub status: String,
    pub message: String,
    pub missing: Vec<String>,
}

fn corrupt(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal("history", e)
}

async fn session_config(store: &dyn EventStore, session: SessionId) -> Result<SessionState, ApiError> {
    let (events, _) = load::<SessionEvent>(store, session.as_uuid()).await?;
    Ok(SessionState::fold(&events))
}

/// Every event of a dossier, in order, with the message the candidate read after each.
pub async fn dossier_history(
    store: &dyn EventStore,
    dossier: DossierId,
) -> Result<Option<Vec<HistoryEntry>>, ApiError> {
    let stored = store.read_stream(dossier.as_uuid()).await?;
    let Some(first) = stored.first() else { return Ok(None) };
    let first: DossierEvent = decode(first)?;
    let DossierEvent::PreRegistered { session_id, .. } = first else {
        return Err(corrupt("a dossier stream that does not start with its pre-registration"));
    };
    let session = session_config(store, session_id).await?;
    let mut state = DossierState::default();
    let mut entries = Vec::with_capacity(stored.len());
    for event in &stored {
        let decoded: DossierEvent = decode(event)?;
        state = state.evolve(&decoded);
        let actor =
            Metadata::decode(&event.metadata).map(|m| m.actor.describe()).unwrap_or_else(|_| "inconnu".to_owned());
        let message = state.candidate_message();
        entries.push(HistoryEntry {
            position: event.position,
            version: event.stream_version,
            event_type: event.event_type.clone(),
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            actor,
            description: cachet_domain::describe::describe(&decoded, session.config.as_ref()),
            status: state.status.label().to_owned(),
            message: message.as_ref().map(|m| m.text.clone()).unwrap_or_default(),
            missing: message.map(|m| m.missing).unwrap_or_default(),
        });
    }
    Ok(Some(entries))
}

fn fold_until(stored: &[StoredEvent], at: DateTime<Utc>) -> Result<Option<(DossierState, &StoredEvent)>, ApiError> {
    let mut state = DossierState::default();
    let mut last = None;
    for event in stored.iter().take_while(|e| e.recorded_at <= at) {
        state = state.evolve(&decode::<DossierEvent>(event)?);
        last = Some(event);
    }
    Ok(last.map(|l| (state, l)))
}

/// A dossier as it stood at an instant (every event recorded at or before it). `Ok(None)` when
/// the dossier did not exist yet, or does not exist.
pub async fn dossier_as_of(
    store: &dyn EventStore,
    dossier: DossierId,
    at: DateTime<Utc>,
) -> Result<Option<DossierStatus>, ApiError> {
    let stored = store.read_stream(dossier.as_uuid()).await?;
    let Some((state, last)) = fold_until(&stored, at)? else { return Ok(None) };
    Ok(DossierStatus::from_state(&state, last.stream_version, last.position, last.recorded_at))
}

/// A session's statistics as they stood at an instant, folded from the whole log.
pub async fn statistics_as_of(
    store: &dyn EventStore,
    session: SessionId,
    at: DateTime<Utc>,
) -> Result<Statistics, ApiError> {
    // Recorded times never decrease along the log, so the fold stops at the first later one.
    let folded = cachet_projections::fold::fold_dossiers(store, Some(at)).await?;
    let mut stats = Statistics::default();
    for state in folded.dossiers.values().map(|d| &d.state).filter(|s| s.session_id == Some(session)) {
        stats.total += 1;
        *stats.by_status.entry(state.status.code().to_owned()).or_default() += 1;
        if let Some(deposit) = &state.deposit {
            *stats.by_channel.entry(deposit.channel.code().to_owned()).or_default() += 1;
        }
        if let Some(rejection) = &state.rejection {
            *stats.by_rejection.entry(rejection.code().to_owned()).or_default() += 1;
        }
    }
    Ok(stats)
}
