//! Executes commands: load the stream, decide, append with the expected version, then wait until
//! the read models show the change (read-your-writes). Retried commands (same idempotency key)
//! append nothing and answer the first outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState};
use cachet_domain::ids::{DossierId, SessionId, UserCode};
use cachet_domain::session::{decide_session, SessionCommand, SessionEvent, SessionState};
use cachet_domain::DomainError;
use cachet_store::typed::{append_request, load, Metadata};
use cachet_store::{ExpectedVersion, ReadGuard, StoreError};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// How many times a command without `If-Match` is decided again after losing a race.
const RETRIES: usize = 3;

/// What a command did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CommandOutcome {
    /// The stream the command acted on (the dossier or the session).
    pub id: Uuid,
    /// The stream's version after the command: the new `ETag`.
    pub version: i64,
    /// The global position of the command's last event, when it appended any.
    pub position: Option<i64>,
    /// True when this is a retry of a command already applied: nothing was appended now.
    pub replayed: bool,
}

/// A stable command id for an idempotency key: the same key from the same caller on the same
/// route is the same command.
pub fn command_id(key: Option<&str>, scope: &str) -> Uuid {
    match key {
        Some(key) => Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("cachet:{scope}:{key}").as_bytes()),
        None => Uuid::new_v4(),
    }
}

async fn load_session(state: &AppState, session_id: SessionId) -> Result<(SessionState, i64), ApiError> {
    let (events, version) = load::<SessionEvent>(&*state.store, session_id.as_uuid()).await?;
    Ok((SessionState::fold(&events), version))
}

/// The sessions' states as this process last read them, with their versions. Every dossier
/// command decides with its session (the deadline, the catalogue of pieces); instead of reading
/// the session's stream each time, it takes the state kept here and appends with a read guard on
/// the version it was read at. Should the session have moved since (a deadline extended, by this
/// server or another one), the append is refused and the command decided again on a fresh read.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<SessionId, Kept>>>);

/// A session's state and the version it was read at.
type Kept = (Arc<SessionState>, i64);

impl Sessions {
    fn get(&self, id: SessionId) -> Option<Kept> {
        self.0.lock().ok()?.get(&id).cloned()
    }

    fn keep(&self, id: SessionId, session: Arc<SessionState>, version: i64) {
        if let Ok(mut sessions) = self.0.lock() {
            sessions.insert(id, (session, version));
        }
    }

    fn forget(&self, id: SessionId) {
        if let Ok(mut sessions) = self.0.lock() {
            sessions.remove(&id);
        }
    }
}

/// A session's state and version, as kept or read now, and whether it was kept. Only a session
/// that exists is kept: ids sent by anyone must not grow the map.
async fn session_for_decision(
    state: &AppState,
    session_id: SessionId,
) -> Result<(Arc<SessionState>, i64, bool), ApiError> {
    if let Some((session, version)) = state.sessions.get(session_id) {
        return Ok((session, version, true));
    }
    let (session, version) = load_session(state, session_id).await?;
    let session = Arc::new(session);
    if version > 0 {
        state.sessions.keep(session_id, session.clone(), version);
    }
    Ok((session, version, false))
}

/// The first outcome of a retried command, once the read models show it: the first attempt may
/// have appended and then lost its answer before they caught up.
/// Whether a command id may have been applied before: an id derived from an `Idempotency-Key`
/// (version 5) may; a random one (version 4), drawn for this request alone, cannot, so the
/// lookup is skipped. The store refuses a second application of any id anyway.
fn may_have_been_applied(command_id: Uuid) -> bool {
    command_id.get_version() != Some(uuid::Version::Random)
}

async fn replayed(state: &AppState, id: Uuid, command_id: Uuid) -> Result<Option<CommandOutcome>, ApiError> {
    let Some(o) = state.store.command_outcome(command_id).await? else { return Ok(None) };
    let outcome = CommandOutcome { id, version: o.stream_version, position: o.last_position, replayed: true };
    Ok(Some(settle(state, outcome).await))
}

async fn settle(state: &AppState, outcome: CommandOutcome) -> CommandOutcome {
    if let Some(position) = outcome.position {
        if !state.runner.wait_for(position, state.settings.read_your_writes_timeout).await {
            tracing::warn!(stream.position = position, "read models did not catch up in time");
        }
    }
    outcome
}

/// Runs a dossier command for a caller.
pub async fn execute_dossier(
    state: &AppState,
    caller: &Caller,
    dossier_id: DossierId,
    command: DossierCommand,
    if_match: Option<i64>,
    command_id: Uuid,
) -> Result<CommandOutcome, ApiError> {
    let id = dossier_id.as_uuid();
    let actor = caller.actor();
    for _ in 0..RETRIES {
        let (events, version) = load::<DossierEvent>(&*state.store, id).await?;
        let dossier = DossierState::fold(&events);
        let session_id = match (&command, dossier.session_id) {
            (DossierCommand::PreRegister { session_id, .. }, _) => *session_id,
            (_, Some(session_id)) => session_id,
            (_, None) => return Err(DomainError::DossierNotFound.into()),
        };
        // A candidate sees no dossier but their own: another's answers like a missing one, even
        // when replaying an idempotency key the owner used.
        if let (Caller::Candidate(candidate), Some(owner)) = (caller, dossier.candidate_id) {
            if *candidate != owner {
                return Err(DomainError::DossierNotFound.into());
            }
        }
        // A retry answers the first outcome, whatever `If-Match` it carries.
        if may_have_been_applied(command_id) {
            if let Some(outcome) = replayed(state, id, command_id).await? {
                return Ok(outcome);
            }
        }
        if let Some(expected) = if_match {
            if expected != version {
                return Err(ApiError::StaleVersion { expected, actual: version });
            }
        }
        let (session, session_version, kept) = session_for_decision(state, session_id).await?;
        let now = Utc::now();
        let decided = match decide(&dossier, &command, &Context { now, actor: &actor, session: &session }) {
            Ok(decided) => decided,
            // A refusal appends nothing, so no guard checks the session it was decided with: one
            // decided with a kept session stands only if the session has not moved since.
            Err(refusal) if kept => {
                let (current, version) = load_session(state, session_id).await?;
                if version == session_version {
                    return Err(refusal.into());
                }
                state.sessions.keep(session_id, Arc::new(current), version);
                continue;
            }
            Err(refusal) => return Err(refusal.into()),
        };
        let metadata = Metadata { actor: actor.clone(), command_id, correlation_id: command_id, causation_id: None };
        let mut request =
            append_request(id, ExpectedVersion::Exact(version), &metadata, command.occurred_at(now), &decided);
        request.read_guards.push(ReadGuard { stream_id: session_id.as_uuid(), version: session_version });
        match state.store.append(request).await {
            Ok(o) => {
                let outcome =
                    CommandOutcome { id, version: o.stream_version, position: o.last_position, replayed: o.replayed };
                return Ok(settle(state, outcome).await);
            }
            // The session moved since it was read: decided again with it as it is now.
            Err(StoreError::Conflict { stream_id, .. }) if stream_id == session_id.as_uuid() => {
                state.sessions.forget(session_id);
                continue;
            }
            Err(StoreError::Conflict { actual, .. }) if if_match.is_some() => {
                return Err(ApiError::StaleVersion { expected: version, actual });
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Concurrent)
}

/// Runs a session command for a caller.
pub async fn execute_session(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    command: SessionCommand,
    command_id: Uuid,
) -> Result<CommandOutcome, ApiError> {
    let id = session_id.as_uuid();
    if let Some(outcome) = replayed(state, id, command_id).await? {
        return Ok(outcome);
    }
    let actor = caller.actor();
    for _ in 0..RETRIES {
        let (session, version) = load_session(state, session_id).await?;
        let decided = decide_session(&session, &command, &actor)?;
        let metadata = Metadata { actor: actor.clone(), command_id, correlation_id: command_id, causation_id: None };
        let request = append_request(id, ExpectedVersion::Exact(version), &metadata, Utc::now(), &decided);
        let appended = state.store.append(request).await;
        state.sessions.forget(session_id);
        match appended {
            Ok(o) => {
                let outcome =
                    CommandOutcome { id, version: o.stream_version, position: o.last_position, replayed: o.replayed };
                return Ok(settle(state, outcome).await);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Concurrent)
}

/// The *code utilisateur* of a dossier, derived from its random identifier.
pub fn user_code_for(dossier: DossierId) -> UserCode {
    let bytes = dossier.as_uuid().into_bytes();
    let mut code = [0_u8; UserCode::LEN];
    code.copy_from_slice(&bytes[8..8 + UserCode::LEN]);
    UserCode::from_random_bytes(code)
}

/// How long a command waits for the read models by default.
pub const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

/// A new dossier and its code utilisateur.
#[derive(Clone, Debug)]
pub struct Registered {
    pub dossier_id: DossierId,
    pub user_code: UserCode,
    pub outcome: CommandOutcome,
}

/// Pre-registers a candidate in a session. The dossier and its code derive from the command id,
/// so a retry finds the same ones; a code already taken by another dossier is drawn again.
pub async fn pre_register(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    candidate_id: cachet_domain::ids::CandidateId,
    command_id: Uuid,
) -> Result<Registered, ApiError> {
    let mut dossier_id = DossierId::from_uuid(Uuid::new_v5(&command_id, b"dossier"));
    let mut user_code = user_code_for(dossier_id);
    while let Some(existing) = cachet_projections::queries::dossier_by_user_code(&state.db, user_code.as_str()).await? {
        if existing.dossier_id == dossier_id.as_uuid() {
            break;
        }
        dossier_id = DossierId::from_uuid(Uuid::new_v4());
        user_code = user_code_for(dossier_id);
    }
    let command = DossierCommand::PreRegister { dossier_id, session_id, candidate_id, user_code: user_code.clone() };
    let outcome = execute_dossier(state, caller, dossier_id, command, None, command_id).await?;
    Ok(Registered { dossier_id: DossierId::from_uuid(outcome.id), user_code, outcome })
}

/// What closing a session's deposits did.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct ClosedDeposits {
    /// Dossiers declared *non parvenus* now.
    pub lapsed: u64,
}

/// After the deadline, declares every pre-registered dossier of a session with no deposit
/// *non parvenu* (lapsed). Safe to run twice, or in two processes at once: each dossier's lapse
/// has a command id derived from the dossier, and a lapsed dossier is no longer in the queue.
pub async fn close_deposits(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
) -> Result<ClosedDeposits, ApiError> {
    use cachet_projections::queries::{queue, session, Queue};
    let summary = session(&state.db, session_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()))?;
    let deadline = chrono::NaiveDate::parse_from_str(&summary.deadline, "%Y-%m-%d")
        .map_err(|e| ApiError::internal("read a session's deadline", e))?;
    if Utc::now() < cachet_domain::time::end_of_paris_day(deadline) {
        return Err(ApiError::Conflict(format!(
            "Les dossiers sans dépôt ne peuvent être déclarés non parvenus qu'après la date limite du {} \
             (minuit, heure de Paris).",
            cachet_domain::time::format_date(deadline)
        )));
    }
    let mut report = ClosedDeposits::default();
    let mut page = 1;
    loop {
        let awaiting = queue(&state.db, session_id.as_uuid(), Queue::AwaitingDeposit, page, 200).await?;
        if awaiting.items.is_empty() {
            return Ok(report);
        }
        let mut moved = 0;
        for dossier in awaiting.items {
            let command_id = Uuid::new_v5(&dossier.dossier_id, b"close-deposits");
            let id = DossierId::from_uuid(dossier.dossier_id);
            match execute_dossier(state, caller, id, DossierCommand::Lapse, None, command_id).await {
                Ok(outcome) => {
                    moved += 1;
                    if !outcome.replayed {
                        report.lapsed += 1;
                    }
                }
                // Deposited meanwhile (a postal receipt recorded while this ran): not lapsed.
                Err(ApiError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
        }
        // Lapsed dossiers leave the queue; only skipped ones keep their place.
        if moved == 0 {
            page += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{command_id, may_have_been_applied};

    #[test]
    fn only_an_id_from_an_idempotency_key_is_looked_up_before_deciding() {
        assert!(may_have_been_applied(command_id(Some("clé-1"), "scope")));
        assert!(!may_have_been_applied(command_id(None, "scope")));
    }
}
