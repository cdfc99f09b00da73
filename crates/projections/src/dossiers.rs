//! The `dossiers` projection: the candidate status view (`dossier_status`), the pieces of each
//! dossier with their state (`dossier_pieces`) and the exam sessions (`exam_sessions`). The staff
//! work queues and session statistics are queries over `dossier_status` (see [`crate::queries`]).
//!
//! Each status row keeps the folded `DossierState` as JSON, so the next event evolves it without
//! reading the stream again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use cachet_domain::dossier::{DossierEvent, DossierState, PieceReview, PieceState};
use cachet_domain::event::DomainEvent;
use cachet_domain::session::{PieceKind, SessionConfig, SessionEvent};
use cachet_store::typed::decode;
use cachet_store::StoredEvent;
use sqlx::{AnyConnection, Row as _};
use uuid::Uuid;

use crate::notifications;
use crate::rows::{insert, json, AnyQuery, Placeholders, Record, MAX_BINDS};
use crate::runner::{Projection, Target};
use crate::status::StatusView;
use crate::ProjectionError;

/// The live runner applies it with the states of the dossiers it last wrote kept in memory
/// ([`StateCache`]), so that a batch reads from `dossier_status` only the states it does not
/// hold. A rebuild has no use for them: it reads each dossier's state once.
#[derive(Default)]
pub struct DossiersProjection {
    cache: StateCache,
}

/// The most dossiers whose states [`StateCache`] keeps: a large session's active dossiers, about
/// 1 KiB each.
const CACHE_CAPACITY: usize = 20_000;

/// The states of the dossiers the live runner wrote last, as the status table holds them at a
/// checkpoint.
///
/// A state is folded from the events up to that checkpoint, so it is what the table holds
/// whenever the checkpoint is there, whichever process wrote it. A batch uses the kept states
/// only if it starts at that checkpoint; it is committed only if the checkpoint is still there
/// ([`crate::runner`]'s `UPDATE … WHERE position = …`, under the lock taken before any read), and
/// otherwise rolled back, whatever it read. A committed batch's states are kept; anything else
/// (a rollback, a failure, a batch from another checkpoint) empties the cache.
#[derive(Default)]
pub struct StateCache(std::sync::Mutex<Kept>);

#[derive(Default)]
struct Kept {
    /// The checkpoint the states are folded to, when they are known to match the table.
    at: Option<i64>,
    /// Each state with the number of the batch that last wrote it, to forget the oldest.
    states: HashMap<Uuid, (DossierState, u64)>,
    batches: u64,
    staged: Option<Staged>,
}

/// The states the batch being applied writes, and the checkpoints it moves from and to.
type Staged = (i64, i64, Vec<(Uuid, DossierState)>);

impl StateCache {
    /// The kept states of `ids` for a batch that starts after checkpoint `from`; the ids found are
    /// taken out of `ids`.
    fn take(&self, from: i64, ids: &mut BTreeSet<Uuid>) -> HashMap<Uuid, DossierState> {
        let mut found = HashMap::new();
        let Ok(kept) = self.0.lock() else { return found };
        if kept.at == Some(from) {
            ids.retain(|id| match kept.states.get(id) {
                Some((state, _)) => {
                    found.insert(*id, state.clone());
                    false
                }
                None => true,
            });
        }
        found
    }

    fn stage(&self, from: i64, to: i64, states: Vec<(Uuid, DossierState)>) {
        if let Ok(mut kept) = self.0.lock() {
            kept.staged = Some((from, to, states));
        }
    }

    /// The batch staged last is committed, the checkpoint moved to `position`.
    fn committed(&self, position: i64) {
        let Ok(mut kept) = self.0.lock() else { return };
        let Some((from, to, states)) = kept.staged.take() else {
            return Self::clear(&mut kept);
        };
        if to != position {
            return Self::clear(&mut kept);
        }
        if kept.at != Some(from) {
            // What was kept is of another checkpoint; only this batch's states are known.
            kept.states.clear();
        }
        kept.batches += 1;
        let batch = kept.batches;
        kept.states.extend(states.into_iter().map(|(id, state)| (id, (state, batch))));
        kept.at = Some(position);
        if kept.states.len() > CACHE_CAPACITY {
            // Forget the oldest quarter, by the batch that wrote them.
            let mut ages: Vec<u64> = kept.states.values().map(|(_, batch)| *batch).collect();
            let cut = ages.len() - CACHE_CAPACITY * 3 / 4;
            let (_, &mut oldest_kept, _) = ages.select_nth_unstable(cut);
            kept.states.retain(|_, (_, batch)| *batch >= oldest_kept);
        }
    }

    fn abandoned(&self) {
        if let Ok(mut kept) = self.0.lock() {
            Self::clear(&mut kept);
        }
    }

    fn clear(kept: &mut Kept) {
        kept.at = None;
        kept.states.clear();
        kept.staged = None;
    }
}

pub const STATUS: &str = "dossier_status";
pub const PIECES: &str = "dossier_pieces";
pub const SESSIONS: &str = "exam_sessions";
/// The number of each session's dossiers in each status, deposit channel and kind of rejection,
/// kept as they change, so the office's dashboard and statistics never count a large session.
pub const COUNTS: &str = "dossier_counts";

/// What [`COUNTS`] counts a dossier under: `(dimension, code)` pairs.
pub mod dimension {
    /// By status code (`deposited`, `complete`…).
    pub const STATUS: &str = "status";
    /// By deposit channel code (dossiers with a deposit).
    pub const CHANNEL: &str = "channel";
    /// By kind of rejection reason (rejected dossiers).
    pub const REJECTION: &str = "rejection";
}

/// The `(dimension, code)` pairs a dossier counts under, from the columns of its status row.
fn tally(view: &StatusView, state: &DossierState) -> Vec<(&'static str, &'static str)> {
    let mut keys = vec![(dimension::STATUS, view.status.code())];
    keys.extend(view.deposit.as_ref().map(|d| (dimension::CHANNEL, d.channel.code())));
    keys.extend(state.rejection.as_ref().map(|r| (dimension::REJECTION, r.code())));
    keys
}

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

struct Entry {
    /// What it counted under before this batch ([`tally`]), nothing for a dossier new to the
    /// read model.
    before: Vec<(&'static str, &'static str)>,
    /// The state the read model held before this batch, `None` for a dossier new to it: its
    /// piece rows are this state's, and only those the batch changes are written.
    initial: Option<DossierState>,
    state: DossierState,
    version: i64,
    position: i64,
    updated_at_us: i64,
}

impl Entry {
    /// A dossier as the read model held it before this batch, `None` if it had no row.
    fn saved(initial: Option<DossierState>) -> Self {
        let before = initial
            .as_ref()
            .and_then(|state| StatusView::from_state(state, 0, 0).map(|view| tally(&view, state)))
            .unwrap_or_default();
        let state = initial.clone().unwrap_or_default();
        Self { before, initial, state, version: 0, position: 0, updated_at_us: 0 }
    }
}

/// A dossier of the batch that has a status row, as the batch leaves it.
struct Row {
    id: Uuid,
    view: StatusView,
    entry: Entry,
}

/// The batch's dossiers of one session, whose pieces are that session's catalogue: each with the
/// state its rows were written from (`None` if it has none yet) and the state the batch leaves.
struct Catalogued<'a> {
    config: &'a SessionConfig,
    dossiers: Vec<(Uuid, Option<&'a DossierState>, &'a DossierState)>,
}

#[async_trait]
impl Projection for DossiersProjection {
    fn name(&self) -> &'static str {
        "dossiers"
    }

    fn version(&self) -> i64 {
        // 2: an extended deadline shows in the session's configuration too.
        // 3: the per-session counts by status (`dossier_counts`).
        // 4: those counts by deposit channel and kind of rejection too, instead of two indexes.
        4
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
                    dimension TEXT NOT NULL,
                    code TEXT NOT NULL,
                    n BIGINT NOT NULL,
                    PRIMARY KEY (session_id, dimension, code)
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

    /// Folds the batch in memory, then writes it with a few statements whatever its size: the
    /// saved states of its dossiers and the configurations of their sessions are read with one
    /// `IN (…)` each, and each table is written with multi-row statements (chunked under
    /// [`MAX_BINDS`]). A statement per row made a rebuild from position 0 cost a dozen round trips
    /// per dossier.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        target: Target,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let cache = (target == Target::Live).then_some(&self.cache);
        apply_dossiers(conn, target, events, cache).await
    }

    fn committed(&self, position: i64) {
        self.cache.committed(position);
    }

    fn abandoned(&self) {
        self.cache.abandoned();
    }
}

/// [`Projection::apply`]: with a cache (the live tables), the states it holds are not read, and the
/// batch's are staged in it.
async fn apply_dossiers(
    conn: &mut AnyConnection,
    target: Target,
    events: &[StoredEvent],
    cache: Option<&StateCache>,
) -> Result<(), ProjectionError> {
    let (status, pieces, sessions) = (target.table(STATUS), target.table(PIECES), target.table(SESSIONS));
    let counts = target.table(COUNTS);
    let placeholders = Placeholders::of(conn);
    // Mails are queued by the live read models only, for events newer than the outbox.
    let mail_start = start(conn, placeholders, target).await?;
    // No row of the status table changes before the batch is folded, so the states it starts
    // from can all be read first.
    let mut ids: BTreeSet<Uuid> = events
        .iter()
        .filter(|stored| stored.stream_type == DossierEvent::STREAM_TYPE)
        .map(|stored| stored.stream_id)
        .collect();
    let from = events.first().map_or(0, |e| e.position - 1);
    let mut saved = cache.map(|cache| cache.take(from, &mut ids)).unwrap_or_default();
    saved.extend(load_states(conn, placeholders, &status, &ids).await?);
    let mut dossiers: BTreeMap<Uuid, Entry> = BTreeMap::new();
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
        let entry = dossiers.entry(stored.stream_id).or_insert_with(|| Entry::saved(saved.remove(&stored.stream_id)));
        entry.state.apply(&event);
        if mail_start.is_some_and(|start| stored.position > start) {
            mails.extend(notifications::for_event(stored, &event, &entry.state));
        }
        entry.version = stored.stream_version;
        entry.position = stored.position;
        entry.updated_at_us = stored.recorded_at.timestamp_micros();
    }
    let rows: Vec<Row> = dossiers
        .into_iter()
        .filter_map(|(id, entry)| {
            let view = StatusView::from_state(&entry.state, entry.version, entry.position)?;
            Some(Row { id, view, entry })
        })
        .collect();
    if let Some(cache) = cache {
        let to = events.last().map_or(from, |e| e.position);
        cache.stage(from, to, rows.iter().map(|row| (row.id, row.entry.state.clone())).collect());
    }
    let mut moves: BTreeMap<(Uuid, &'static str, &'static str), i64> = BTreeMap::new();
    for Row { view, entry, .. } in &rows {
        let session_id = view.session_id.as_uuid();
        for &(dimension, code) in &entry.before {
            *moves.entry((session_id, dimension, code)).or_default() -= 1;
        }
        for (dimension, code) in tally(view, &entry.state) {
            *moves.entry((session_id, dimension, code)).or_default() += 1;
        }
    }
    // Read after the batch's session events are applied: a session opened in this batch
    // gives its dossiers their pieces.
    let session_ids: BTreeSet<Uuid> = rows.iter().map(|row| row.view.session_id.as_uuid()).collect();
    let configs = load_configs(conn, placeholders, &sessions, &session_ids).await?;
    write_statuses(conn, placeholders, &status, &rows).await?;
    // A dossier whose session is unknown keeps the pieces it had.
    let mut by_session: BTreeMap<Uuid, Catalogued> = BTreeMap::new();
    for row in &rows {
        let session_id = row.view.session_id.as_uuid();
        let Some(config) = configs.get(&session_id) else { continue };
        let catalogued = by_session.entry(session_id).or_insert_with(|| Catalogued { config, dossiers: Vec::new() });
        catalogued.dossiers.push((row.id, row.entry.initial.as_ref(), &row.entry.state));
    }
    write_pieces(conn, placeholders, &pieces, &by_session).await?;
    notifications::queue_all(conn, placeholders, &mails).await?;
    for ((session_id, dimension, code), delta) in moves.into_iter().filter(|(_, delta)| *delta != 0) {
        sqlx::query(&format!(
            "INSERT INTO {counts} (session_id, dimension, code, n) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_id, dimension, code) DO UPDATE SET n = {counts}.n + excluded.n"
        ))
        .bind(session_id.to_string())
        .bind(dimension)
        .bind(code)
        .bind(delta)
        .execute(&mut *conn)
        .await?;
        // A row exists only for a code some dossier counts under, however the events were
        // batched, so the live table equals its rebuild.
        sqlx::query(&format!("DELETE FROM {counts} WHERE session_id = $1 AND dimension = $2 AND code = $3 AND n = 0"))
            .bind(session_id.to_string())
            .bind(dimension)
            .bind(code)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Starts the projection's transaction, in one round trip: on PostgreSQL it turns sequential
/// scans off for this transaction, and for the live tables it reads where the mail outbox starts.
///
/// Every statement of a batch reads or writes rows by their primary key, in lists of up to
/// thousands of keys. PostgreSQL's planner, weighing such a list against a table without
/// statistics (a rebuild's tables are new; autovacuum has not seen them), chose sequential scans
/// that grew with the table: 19-21 s to rebuild 1M events, 12.6-13.3 s with index scans only
/// (BENCHMARKS.md).
async fn start(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    target: Target,
) -> Result<Option<i64>, ProjectionError> {
    let planner = "set_config('enable_seqscan', 'off', true)";
    let outbox = "COALESCE((SELECT position FROM mail_outbox_start), 0)";
    let (query, column) = match (placeholders, target) {
        (Placeholders::Numbered, Target::Live) => (format!("SELECT {planner}, {outbox}"), 1),
        (Placeholders::Numbered, Target::Rebuild) => (format!("SELECT {planner}"), 0),
        (Placeholders::Anonymous, Target::Live) => (format!("SELECT {outbox}"), 0),
        (Placeholders::Anonymous, Target::Rebuild) => return Ok(None),
    };
    let row = sqlx::query(&query).fetch_one(&mut *conn).await?;
    Ok(match target {
        Target::Live => Some(row.try_get(column)?),
        Target::Rebuild => None,
    })
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

/// The saved states of these dossiers, by id. A dossier without a row is left out; a state that
/// does not read is an error (the read model is corrupt).
async fn load_states(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    table: &str,
    ids: &BTreeSet<Uuid>,
) -> Result<HashMap<Uuid, DossierState>, ProjectionError> {
    let mut states = HashMap::with_capacity(ids.len());
    for (id, text) in load_by_id(conn, placeholders, table, "dossier_id", "state", ids).await? {
        let id = Uuid::parse_str(&id).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        let state = serde_json::from_str(&text).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        states.insert(id, state);
    }
    Ok(states)
}

/// The configurations of these sessions, as `exam_sessions` holds them now. A session without a
/// row, or whose configuration does not read, is left out.
async fn load_configs(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    table: &str,
    ids: &BTreeSet<Uuid>,
) -> Result<HashMap<Uuid, SessionConfig>, ProjectionError> {
    let rows = load_by_id(conn, placeholders, table, "session_id", "config", ids).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, text)| Some((Uuid::parse_str(&id).ok()?, serde_json::from_str(&text).ok()?)))
        .collect())
}

/// `(key, value)` of the rows of `table` whose `key` column is one of `ids`, read with `IN` lists.
async fn load_by_id(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    table: &str,
    key: &str,
    value: &str,
    ids: &BTreeSet<Uuid>,
) -> Result<Vec<(String, String)>, ProjectionError> {
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BINDS) {
        let sql = format!("SELECT {key}, {value} FROM {table} WHERE {key} IN {}", placeholders.list(0, chunk.len()));
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).persistent(false);
        for id in chunk {
            query = query.bind(id.to_string());
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// A status row, its fields named and ordered as the table's columns.
#[derive(serde::Serialize)]
struct StatusRecord<'a> {
    dossier_id: String,
    session_id: String,
    candidate_id: String,
    user_code: &'a str,
    status: &'static str,
    message: &'a str,
    missing: String,
    deposit_channel: Option<&'static str>,
    deposit_on_time: Option<i64>,
    deposit_explanation: Option<&'a str>,
    rejection: Option<&'a str>,
    rejection_kind: Option<&'static str>,
    version: i64,
    position: i64,
    registered_at_us: i64,
    updated_at_us: i64,
    state: String,
}

const STATUS_COLUMNS: &str = "dossier_id, session_id, candidate_id, user_code, status, message, missing, \
    deposit_channel, deposit_on_time, deposit_explanation, rejection, rejection_kind, version, position, \
    registered_at_us, updated_at_us, state";

impl<'a> StatusRecord<'a> {
    fn of(Row { view, entry, .. }: &'a Row) -> Result<Self, ProjectionError> {
        let state = &entry.state;
        Ok(StatusRecord {
            dossier_id: view.dossier_id.to_string(),
            session_id: view.session_id.to_string(),
            candidate_id: state.candidate_id.map(|c| c.to_string()).unwrap_or_default(),
            user_code: view.user_code.as_str(),
            status: view.status.code(),
            message: &view.message,
            missing: json(&view.missing)?,
            deposit_channel: view.deposit.as_ref().map(|d| d.channel.code()),
            deposit_on_time: view.deposit.as_ref().map(|d| i64::from(d.on_time)),
            deposit_explanation: view.deposit.as_ref().map(|d| d.explanation.as_str()),
            rejection: view.rejection.as_deref(),
            rejection_kind: state.rejection.as_ref().map(|r| r.code()),
            version: view.version,
            position: view.position,
            registered_at_us: state.registered_at.map_or(0, |t| t.timestamp_micros()),
            updated_at_us: entry.updated_at_us,
            state: json(state)?,
        })
    }
}

impl Record for StatusRecord<'_> {
    const COLUMNS: &'static str = STATUS_COLUMNS;
    const WIDTH: usize = 17;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.dossier_id)
            .bind(&self.session_id)
            .bind(&self.candidate_id)
            .bind(self.user_code)
            .bind(self.status)
            .bind(self.message)
            .bind(&self.missing)
            .bind(self.deposit_channel)
            .bind(self.deposit_on_time)
            .bind(self.deposit_explanation)
            .bind(self.rejection)
            .bind(self.rejection_kind)
            .bind(self.version)
            .bind(self.position)
            .bind(self.registered_at_us)
            .bind(self.updated_at_us)
            .bind(&self.state)
    }
}

/// Inserts the status rows of dossiers new to the read model, and updates the others (a dossier
/// keeps its session, candidate, code and registration instant).
///
/// A dossier is new when the batch found no row of it ([`Entry::initial`]), and its rows are
/// then plainly inserted: an `ON CONFLICT` clause makes PostgreSQL look each key up before
/// inserting it (perf of a rebuild: `ExecCheckIndexConstraints`, 17 % of the server's time), and
/// nearly every dossier of a rebuild is new. Were a row there after all, the insert would fail
/// the batch rather than overwrite it.
async fn write_statuses(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    table: &str,
    rows: &[Row],
) -> Result<(), ProjectionError> {
    let (mut new, mut known) = (Vec::new(), Vec::new());
    for row in rows {
        let records = if row.entry.initial.is_none() { &mut new } else { &mut known };
        records.push(StatusRecord::of(row)?);
    }
    insert(conn, placeholders, table, &new, "").await?;
    insert(
        conn,
        placeholders,
        table,
        &known,
        "ON CONFLICT (dossier_id) DO UPDATE SET status = excluded.status, message = excluded.message, \
         missing = excluded.missing, deposit_channel = excluded.deposit_channel, \
         deposit_on_time = excluded.deposit_on_time, deposit_explanation = excluded.deposit_explanation, \
         rejection = excluded.rejection, rejection_kind = excluded.rejection_kind, version = excluded.version, \
         position = excluded.position, updated_at_us = excluded.updated_at_us, state = excluded.state",
    )
    .await
}

/// A piece row, its fields named and ordered as the table's columns.
#[derive(serde::Serialize, PartialEq)]
struct PieceRecord<'a> {
    dossier_id: &'a str,
    piece_code: &'a str,
    ord: i64,
    label: &'a str,
    kind: &'static str,
    state: &'static str,
    reason: Option<String>,
    filename: Option<&'a str>,
    sha256: Option<&'a str>,
    media_type: Option<String>,
    size: Option<i64>,
}

impl Record for PieceRecord<'_> {
    const COLUMNS: &'static str =
        "dossier_id, piece_code, ord, label, kind, state, reason, filename, sha256, media_type, size";
    const WIDTH: usize = 11;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.dossier_id)
            .bind(self.piece_code)
            .bind(self.ord)
            .bind(self.label)
            .bind(self.kind)
            .bind(self.state)
            .bind(&self.reason)
            .bind(self.filename)
            .bind(self.sha256)
            .bind(&self.media_type)
            .bind(self.size)
    }
}

/// The rows of a dossier's pieces: one per piece of its session's catalogue, in order.
fn piece_records<'a>(
    dossier_id: &'a str,
    config: &'a SessionConfig,
    state: &'a DossierState,
) -> impl Iterator<Item = PieceRecord<'a>> + 'a {
    config.pieces.iter().enumerate().map(move |(ord, spec)| {
        let piece = state.pieces.get(&spec.code);
        let (code, reason) = piece_state_code(piece);
        let file = piece.and_then(|p| p.file.as_ref());
        PieceRecord {
            dossier_id,
            piece_code: spec.code.as_str(),
            ord: ord as i64,
            label: &spec.label,
            kind: kind_code(spec.kind),
            state: code,
            reason,
            filename: file.map(|f| f.filename.as_str()),
            sha256: file.map(|f| f.sha256.as_str()),
            media_type: file.map(|f| format!("{:?}", f.media_type).to_lowercase()),
            size: file.map(|f| f.size as i64),
        }
    })
}

/// Writes the piece rows the batch changes: every row of a dossier new to the read model, and of
/// the others the rows whose content differs from the state they were written from.
///
/// A dossier's rows are always its session's whole catalogue, which never changes (a session's
/// configuration is written once; an extension moves only its deadline), and a dossier's
/// session is opened before it (pre-registration checks it), so its rows were written with its
/// first row. Rewriting every row of every dossier of the batch (a `DELETE` and an `INSERT` of
/// the whole catalogue) cost most of the projection's writes: a piece review changes one row.
async fn write_pieces(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    table: &str,
    by_session: &BTreeMap<Uuid, Catalogued<'_>>,
) -> Result<(), ProjectionError> {
    let ids: BTreeMap<Uuid, String> = by_session
        .values()
        .flat_map(|catalogued| catalogued.dossiers.iter().map(|(id, _, _)| (*id, id.to_string())))
        .collect();
    // The rows of a dossier new to the read model are inserted plainly, as its status row is.
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    for Catalogued { config, dossiers } in by_session.values() {
        for &(id, initial, state) in dossiers {
            let dossier_id = ids[&id].as_str();
            match initial {
                None => new.extend(piece_records(dossier_id, config, state)),
                Some(initial) => changed.extend(
                    piece_records(dossier_id, config, state)
                        .zip(piece_records(dossier_id, config, initial))
                        .filter(|(after, before)| after != before)
                        .map(|(after, _)| after),
                ),
            }
        }
    }
    insert(conn, placeholders, table, &new, "").await?;
    insert(
        conn,
        placeholders,
        table,
        &changed,
        "ON CONFLICT (dossier_id, piece_code) DO UPDATE SET ord = excluded.ord, label = excluded.label, \
         kind = excluded.kind, state = excluded.state, reason = excluded.reason, filename = excluded.filename, \
         sha256 = excluded.sha256, media_type = excluded.media_type, size = excluded.size",
    )
    .await
}

#[cfg(test)]
mod cache_tests {
    use cachet_domain::ids::DossierId;

    use super::*;

    fn state(id: Uuid) -> DossierState {
        DossierState { id: Some(DossierId::from_uuid(id)), ..Default::default() }
    }

    /// Stages and commits a batch from `from` to `to` writing these dossiers.
    fn write(cache: &StateCache, from: i64, to: i64, ids: &[Uuid]) {
        cache.stage(from, to, ids.iter().map(|id| (*id, state(*id))).collect());
        cache.committed(to);
    }

    fn kept(cache: &StateCache, from: i64, ids: &[Uuid]) -> Vec<Uuid> {
        let mut wanted: BTreeSet<Uuid> = ids.iter().copied().collect();
        let found = cache.take(from, &mut wanted);
        assert!(found.iter().all(|(id, s)| *s == state(*id)));
        let mut found: Vec<Uuid> = found.into_keys().collect();
        found.sort();
        found
    }

    #[test]
    fn kept_states_serve_only_the_batch_that_starts_where_they_were_committed() {
        let cache = StateCache::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        write(&cache, 0, 3, &[a]);
        assert_eq!(kept(&cache, 3, &[a, b]), vec![a]);
        assert_eq!(kept(&cache, 2, &[a]), Vec::<Uuid>::new(), "another checkpoint");
        assert_eq!(kept(&cache, 4, &[a]), Vec::<Uuid>::new(), "another process applied event 4");
        // The next batch keeps the first one's states, and adds its own.
        write(&cache, 3, 5, &[b]);
        let mut both = vec![a, b];
        both.sort();
        assert_eq!(kept(&cache, 5, &[a, b]), both);
        // A batch committed from another checkpoint than the kept one leaves only its own.
        write(&cache, 7, 9, &[b]);
        assert_eq!(kept(&cache, 9, &[a, b]), vec![b]);
    }

    #[test]
    fn a_batch_not_committed_empties_the_cache() {
        let cache = StateCache::default();
        let a = Uuid::new_v4();
        write(&cache, 0, 3, &[a]);
        cache.stage(3, 4, vec![(a, state(a))]);
        cache.abandoned();
        assert_eq!(kept(&cache, 3, &[a]), Vec::<Uuid>::new());
        assert_eq!(kept(&cache, 4, &[a]), Vec::<Uuid>::new());
        // A commit to another position than the staged batch's keeps nothing either.
        write(&cache, 0, 3, &[a]);
        cache.stage(3, 4, vec![(a, state(a))]);
        cache.committed(6);
        assert_eq!(kept(&cache, 6, &[a]), Vec::<Uuid>::new());
    }

    #[test]
    fn the_cache_forgets_the_oldest_states_beyond_its_capacity() {
        let cache = StateCache::default();
        let ids: Vec<Uuid> = (0..CACHE_CAPACITY + 10).map(|_| Uuid::new_v4()).collect();
        for (n, chunk) in ids.chunks(1_000).enumerate() {
            write(&cache, n as i64, n as i64 + 1, chunk);
        }
        let at = ids.len().div_ceil(1_000) as i64;
        let found = kept(&cache, at, &ids);
        assert!(found.len() <= CACHE_CAPACITY && found.len() >= CACHE_CAPACITY / 2, "{}", found.len());
        assert!(found.contains(ids.last().expect("an id")), "the newest is kept");
        assert!(!found.contains(&ids[0]), "the oldest is forgotten");
    }
}
