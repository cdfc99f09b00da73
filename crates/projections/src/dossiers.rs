//! The `dossiers` projection: the candidate status view (`dossier_status`), the pieces of each
//! dossier with their state (`dossier_pieces`) and the exam sessions (`exam_sessions`). The staff
//! work queues and session statistics are queries over `dossier_status` (see [`crate::queries`]).
//!
//! Each status row keeps the folded `DossierState` as JSON, so the next event evolves it without
//! reading the stream again.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use cachet_domain::dossier::{DossierEvent, DossierState, PieceReview, PieceState};
use cachet_domain::event::DomainEvent;
use cachet_domain::session::{PieceKind, SessionConfig, SessionEvent};
use cachet_store::typed::decode;
use cachet_store::StoredEvent;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::notifications;
use crate::runner::{Projection, Target};
use crate::status::StatusView;
use crate::ProjectionError;

pub struct DossiersProjection;

pub const STATUS: &str = "dossier_status";
pub const PIECES: &str = "dossier_pieces";
pub const SESSIONS: &str = "exam_sessions";
/// The number of each session's dossiers in each status, kept as they change, so the office's
/// dashboard never counts a large session.
pub const COUNTS: &str = "dossier_counts";

/// The state of one piece as the pieces page shows it.
pub fn piece_state_code(piece: Option<&PieceState>) -> (&'static str, Option<String>) {
    let Some(piece) = piece else { return ("missing", None) };
    match &piece.review {
        Some(PieceReview::Accepted) => ("accepted", None),
        Some(PieceReview::Refused { reason }) => ("refused", Some(reason.clone())),
        _ if piece.awaiting_review => ("awaiting_review", None),
        Some(PieceReview::Missing) => ("missing", None),
        None if piece.file.is_some() => ("deposited", None),
        None if piece.on_paper => ("received_on_paper", None),
        None => ("missing", None),
    }
}

fn kind_code(kind: PieceKind) -> &'static str {
    match kind {
        PieceKind::RegistrationForm => "registration_form",
        PieceKind::Required => "required",
        PieceKind::Conditional => "conditional",
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, ProjectionError> {
    serde_json::to_string(value).map_err(|e| ProjectionError::Corrupt(e.to_string()))
}

struct Entry {
    /// The status before this batch, `None` for a dossier new to the read model.
    before: Option<&'static str>,
    state: DossierState,
    version: i64,
    position: i64,
    updated_at_us: i64,
}

#[async_trait]
impl Projection for DossiersProjection {
    fn name(&self) -> &'static str {
        "dossiers"
    }

    fn version(&self) -> i64 {
        // 2: an extended deadline shows in the session's configuration too.
        // 3: the per-session counts by status (`dossier_counts`).
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &[STATUS, PIECES, SESSIONS, COUNTS]
    }

    fn schema(&self, target: Target) -> Vec<String> {
        let (status, pieces, sessions) = (target.table(STATUS), target.table(PIECES), target.table(SESSIONS));
        let counts = target.table(COUNTS);
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {counts} (
                    session_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    n BIGINT NOT NULL,
                    PRIMARY KEY (session_id, status)
                )"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {status} (
                    dossier_id TEXT PRIMARY KEY,
                    session_id TEXT NOT NULL,
                    candidate_id TEXT NOT NULL,
                    user_code TEXT NOT NULL,
                    status TEXT NOT NULL,
                    message TEXT NOT NULL,
                    missing TEXT NOT NULL,
                    deposit_channel TEXT,
                    deposit_on_time BIGINT,
                    deposit_explanation TEXT,
                    rejection TEXT,
                    rejection_kind TEXT,
                    version BIGINT NOT NULL,
                    position BIGINT NOT NULL,
                    registered_at_us BIGINT NOT NULL,
                    updated_at_us BIGINT NOT NULL,
                    state TEXT NOT NULL
                )"
            ),
            format!("CREATE INDEX IF NOT EXISTS {status}_queue ON {status} (session_id, status, registered_at_us, dossier_id)"),
            format!("CREATE INDEX IF NOT EXISTS {status}_user_code ON {status} (user_code)"),
            // A search that matches much of a session reads it in this order until a page is full.
            format!("CREATE INDEX IF NOT EXISTS {status}_registered ON {status} (session_id, registered_at_us, dossier_id)"),
            // The session statistics count by channel and by kind of rejection from these alone.
            format!("CREATE INDEX IF NOT EXISTS {status}_channel ON {status} (session_id, deposit_channel)"),
            format!("CREATE INDEX IF NOT EXISTS {status}_rejection ON {status} (session_id, rejection_kind)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {pieces} (
                    dossier_id TEXT NOT NULL,
                    piece_code TEXT NOT NULL,
                    ord BIGINT NOT NULL,
                    label TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    state TEXT NOT NULL,
                    reason TEXT,
                    filename TEXT,
                    sha256 TEXT,
                    media_type TEXT,
                    size BIGINT,
                    PRIMARY KEY (dossier_id, piece_code)
                )"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {sessions} (
                    session_id TEXT PRIMARY KEY,
                    title TEXT NOT NULL,
                    organiser TEXT NOT NULL,
                    deadline TEXT NOT NULL,
                    config TEXT NOT NULL,
                    position BIGINT NOT NULL
                )"
            ),
        ]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        target: Target,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let (status, pieces, sessions) = (target.table(STATUS), target.table(PIECES), target.table(SESSIONS));
        let counts = target.table(COUNTS);
        let mut dossiers: BTreeMap<Uuid, Entry> = BTreeMap::new();
        // Mails are queued by the live read models only, for events newer than the outbox.
        let mail_start = match target {
            Target::Live => Some(notifications::start(conn).await?),
            Target::Rebuild => None,
        };
        let mut mails = Vec::new();
        for stored in events {
            if stored.stream_type == SessionEvent::STREAM_TYPE {
                apply_session(conn, &sessions, stored).await?;
                continue;
            }
            if stored.stream_type != DossierEvent::STREAM_TYPE {
                continue;
            }
            let event: DossierEvent = decode(stored)?;
            if let std::collections::btree_map::Entry::Vacant(vacant) = dossiers.entry(stored.stream_id) {
                let saved: Option<String> =
                    sqlx::query_scalar(&format!("SELECT state FROM {status} WHERE dossier_id = $1"))
                        .bind(stored.stream_id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let state: DossierState = match saved {
                    Some(text) => serde_json::from_str(&text).map_err(|e| ProjectionError::Corrupt(e.to_string()))?,
                    None => DossierState::default(),
                };
                let before = StatusView::from_state(&state, 0, 0).map(|view| view.status.code());
                vacant.insert(Entry { before, state, version: 0, position: 0, updated_at_us: 0 });
            }
            if let Some(entry) = dossiers.get_mut(&stored.stream_id) {
                entry.state = std::mem::take(&mut entry.state).evolve(&event);
                if mail_start.is_some_and(|start| stored.position > start) {
                    mails.extend(notifications::for_event(stored, &event, &entry.state));
                }
                entry.version = stored.stream_version;
                entry.position = stored.position;
                entry.updated_at_us = stored.recorded_at.timestamp_micros();
            }
        }
        let mut configs: HashMap<Uuid, Option<SessionConfig>> = HashMap::new();
        let mut moves: BTreeMap<(Uuid, &'static str), i64> = BTreeMap::new();
        for (id, entry) in dossiers {
            let Some(view) = StatusView::from_state(&entry.state, entry.version, entry.position) else { continue };
            write_status(conn, &status, &view, &entry).await?;
            let session_id = view.session_id.as_uuid();
            if entry.before != Some(view.status.code()) {
                if let Some(before) = entry.before {
                    *moves.entry((session_id, before)).or_default() -= 1;
                }
                *moves.entry((session_id, view.status.code())).or_default() += 1;
            }
            if let std::collections::hash_map::Entry::Vacant(vacant) = configs.entry(session_id) {
                let text: Option<String> =
                    sqlx::query_scalar(&format!("SELECT config FROM {sessions} WHERE session_id = $1"))
                        .bind(session_id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                vacant.insert(text.and_then(|t| serde_json::from_str(&t).ok()));
            }
            if let Some(Some(config)) = configs.get(&session_id) {
                write_pieces(conn, &pieces, id, config, &entry.state).await?;
            }
        }
        for mail in &mails {
            notifications::queue(conn, mail).await?;
        }
        for ((session_id, code), delta) in moves.into_iter().filter(|(_, delta)| *delta != 0) {
            sqlx::query(&format!(
                "INSERT INTO {counts} (session_id, status, n) VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id, status) DO UPDATE SET n = {counts}.n + excluded.n"
            ))
            .bind(session_id.to_string())
            .bind(code)
            .bind(delta)
            .execute(&mut *conn)
            .await?;
            // A row exists only for a status some dossier is in, however the events were batched,
            // so the live table equals its rebuild.
            sqlx::query(&format!("DELETE FROM {counts} WHERE session_id = $1 AND status = $2 AND n = 0"))
                .bind(session_id.to_string())
                .bind(code)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

async fn apply_session(conn: &mut AnyConnection, sessions: &str, stored: &StoredEvent) -> Result<(), ProjectionError> {
    match decode::<SessionEvent>(stored)? {
        SessionEvent::SessionOpened { session_id, config } => {
            sqlx::query(&format!(
                "INSERT INTO {sessions} (session_id, title, organiser, deadline, config, position) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING"
            ))
            .bind(session_id.to_string())
            .bind(&config.title)
            .bind(&config.organiser)
            .bind(config.deposit_deadline.to_string())
            .bind(json(&config)?)
            .bind(stored.position)
            .execute(&mut *conn)
            .await?;
        }
        SessionEvent::DeadlineExtended { new_deadline, .. } => {
            // The configuration shows the deadline in force too, like the `deadline` column.
            let text: Option<String> =
                sqlx::query_scalar(&format!("SELECT config FROM {sessions} WHERE session_id = $1"))
                    .bind(stored.stream_id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(text) = text else { return Ok(()) };
            let mut config: SessionConfig =
                serde_json::from_str(&text).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            config.deposit_deadline = new_deadline;
            sqlx::query(&format!(
                "UPDATE {sessions} SET deadline = $1, config = $2, position = $3 WHERE session_id = $4"
            ))
            .bind(new_deadline.to_string())
            .bind(json(&config)?)
            .bind(stored.position)
            .bind(stored.stream_id.to_string())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn write_status(
    conn: &mut AnyConnection,
    table: &str,
    view: &StatusView,
    entry: &Entry,
) -> Result<(), ProjectionError> {
    let state = &entry.state;
    sqlx::query(&format!(
        "INSERT INTO {table} (dossier_id, session_id, candidate_id, user_code, status, message, missing, \
         deposit_channel, deposit_on_time, deposit_explanation, rejection, rejection_kind, version, position, \
         registered_at_us, updated_at_us, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (dossier_id) DO UPDATE SET status = excluded.status, message = excluded.message, \
         missing = excluded.missing, deposit_channel = excluded.deposit_channel, \
         deposit_on_time = excluded.deposit_on_time, deposit_explanation = excluded.deposit_explanation, \
         rejection = excluded.rejection, rejection_kind = excluded.rejection_kind, version = excluded.version, \
         position = excluded.position, updated_at_us = excluded.updated_at_us, state = excluded.state"
    ))
    .bind(view.dossier_id.to_string())
    .bind(view.session_id.to_string())
    .bind(state.candidate_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(view.user_code.as_str().to_owned())
    .bind(view.status.code())
    .bind(&view.message)
    .bind(json(&view.missing)?)
    .bind(view.deposit.as_ref().map(|d| d.channel.code()))
    .bind(view.deposit.as_ref().map(|d| i64::from(d.on_time)))
    .bind(view.deposit.as_ref().map(|d| d.explanation.clone()))
    .bind(view.rejection.clone())
    .bind(state.rejection.as_ref().map(|r| r.code()))
    .bind(view.version)
    .bind(view.position)
    .bind(state.registered_at.map_or(0, |t| t.timestamp_micros()))
    .bind(entry.updated_at_us)
    .bind(json(state)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_pieces(
    conn: &mut AnyConnection,
    table: &str,
    dossier: Uuid,
    config: &SessionConfig,
    state: &DossierState,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!("DELETE FROM {table} WHERE dossier_id = $1"))
        .bind(dossier.to_string())
        .execute(&mut *conn)
        .await?;
    for (ord, spec) in config.pieces.iter().enumerate() {
        let piece = state.pieces.get(&spec.code);
        let (code, reason) = piece_state_code(piece);
        let file = piece.and_then(|p| p.file.as_ref());
        sqlx::query(&format!(
            "INSERT INTO {table} (dossier_id, piece_code, ord, label, kind, state, reason, filename, sha256, media_type, size) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(dossier.to_string())
        .bind(spec.code.as_str().to_owned())
        .bind(ord as i64)
        .bind(&spec.label)
        .bind(kind_code(spec.kind))
        .bind(code)
        .bind(reason)
        .bind(file.map(|f| f.filename.clone()))
        .bind(file.map(|f| f.sha256.as_str().to_owned()))
        .bind(file.map(|f| format!("{:?}", f.media_type).to_lowercase()))
        .bind(file.map(|f| f.size as i64))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
