//! The SQLite backend: the embedded default. WAL with `synchronous=FULL` (durable on commit),
//! one writer connection owned by the appender (`BEGIN IMMEDIATE`), a small pool for reads.
//! One server process per database file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, FromRow, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::watch;
use uuid::Uuid;

use crate::appender::{Appender, BatchTx, CommandRow, EventRow, Lookup, StreamRow, Writes, MAX_BATCH};
use crate::{
    AppendOutcome, AppendRequest, Backend, EventStore, Head, ReplayEvent, StoreError, StoredEvent, REPLAY_CHUNK,
};

/// Rows per multi-row INSERT: 14 parameters each, well under SQLite's limit of 32,766.
const ROWS_PER_STATEMENT: usize = 1_000;
/// Ids per `IN (…)` list.
const IDS_PER_STATEMENT: usize = 1_000;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

pub(crate) const EVENT_COLUMNS: &str = "position, event_id, stream_id, stream_type, stream_version, event_type, \
     schema_version, payload, metadata, command_id, occurred_at_us, recorded_at_us, prev_hash, hash";

/// An event row as both backends return it.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRecord {
    position: i64,
    event_id: Uuid,
    stream_id: Uuid,
    stream_type: String,
    stream_version: i64,
    event_type: String,
    schema_version: i32,
    payload: Vec<u8>,
    metadata: Vec<u8>,
    command_id: Option<Uuid>,
    occurred_at_us: i64,
    recorded_at_us: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl TryFrom<EventRecord> for StoredEvent {
    type Error = StoreError;
    fn try_from(r: EventRecord) -> Result<Self, StoreError> {
        Ok(StoredEvent {
            position: r.position,
            event_id: r.event_id,
            stream_id: r.stream_id,
            stream_type: r.stream_type,
            stream_version: r.stream_version,
            event_type: r.event_type,
            schema_version: r.schema_version,
            payload: r.payload,
            metadata: r.metadata,
            command_id: r.command_id,
            occurred_at: crate::from_micros(r.occurred_at_us)?,
            recorded_at: crate::from_micros(r.recorded_at_us)?,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

pub(crate) fn into_events(rows: Vec<EventRecord>) -> Result<Vec<StoredEvent>, StoreError> {
    rows.into_iter().map(StoredEvent::try_from).collect()
}

/// The outcome columns of the `commands` table.
#[derive(sqlx::FromRow)]
pub(crate) struct CommandRecord {
    stream_id: Uuid,
    stream_version: i64,
    first_position: Option<i64>,
    last_position: Option<i64>,
}

impl CommandRecord {
    pub(crate) fn into_outcome(self) -> (Uuid, AppendOutcome) {
        let outcome = AppendOutcome {
            stream_version: self.stream_version,
            first_position: self.first_position,
            last_position: self.last_position,
            replayed: true,
        };
        (self.stream_id, outcome)
    }
}

pub struct SqliteEventStore {
    path: PathBuf,
    pool: SqlitePool,
    appender: Appender,
    positions: watch::Receiver<i64>,
}

fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
}

impl SqliteEventStore {
    /// Opens (creating and migrating if needed) the store in a database file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_batch(path, MAX_BATCH).await
    }

    /// Opens the store with at most `max_batch` appends per transaction (1: each alone).
    pub async fn open_with_batch(path: impl AsRef<Path>, max_batch: usize) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = connect_options(&path);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await?;
        MIGRATOR.run(&pool).await?;
        let writer = SqliteWriter { conn: options.connect().await?, options };
        let head = read_head(&pool).await?;
        let (positions_tx, positions) = watch::channel(head.position);
        let (appender, _task) = Appender::spawn(writer, positions_tx, max_batch);
        Ok(Self { path, pool, appender, positions })
    }

    /// Opens a database given as a `sqlite://` URL or a plain path.
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        Self::open(options.get_filename()).await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The read pool, for read models kept in the same database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

async fn read_head(pool: &SqlitePool) -> Result<Head, StoreError> {
    let (position, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT position, last_hash FROM log_head WHERE id = 1").fetch_one(pool).await?;
    Ok(Head { position, hash })
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.appender.append(request).await
    }

    async fn read_stream(&self, stream_id: Uuid) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? ORDER BY stream_version");
        into_events(sqlx::query_as(&sql).bind(stream_id).fetch_all(&self.pool).await?)
    }

    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?");
        into_events(sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn head(&self) -> Result<Head, StoreError> {
        read_head(&self.pool).await
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        let record: Option<CommandRecord> = sqlx::query_as(
            "SELECT stream_id, stream_version, first_position, last_position FROM commands WHERE command_id = ?",
        )
        .bind(command_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(record.map(|r| r.into_outcome().1))
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.positions.clone()
    }

    fn stream_from(&self, after: i64) -> BoxStream<'_, Result<StoredEvent, StoreError>> {
        let from_row = |row: &rusqlite::Row<'_>, _: &mut BytesMut| event_from_row(row).map(|e| (e.position, e));
        crate::stream_of_chunks(read_with_rusqlite(self.path.clone(), after, EVENT_COLUMNS, STREAM_CHUNK, from_row))
    }

    fn replay_from(&self, after: i64) -> BoxStream<'_, Result<Vec<ReplayEvent>, StoreError>> {
        crate::chunks_of(read_with_rusqlite(self.path.clone(), after, REPLAY_COLUMNS, REPLAY_CHUNK, replay_from_row))
    }
}

/// Events per message from the reading thread.
const STREAM_CHUNK: usize = 1_024;
/// Events per read transaction of the reading thread.
const STREAM_PAGE: i64 = 20_000;
/// The columns of a [`ReplayEvent`], on both backends.
pub(crate) const REPLAY_COLUMNS: &str =
    "position, stream_id, stream_type, stream_version, event_type, schema_version, payload, recorded_at_us";

/// Reads one row into an item and its position; payloads it copies may go into the buffer given.
type RowReader<T> = fn(&rusqlite::Row<'_>, &mut BytesMut) -> Result<(i64, T), StoreError>;

/// Reads the log with rusqlite on a thread of its own and hands the events over in chunks of up
/// to `chunk_size` through a small channel, so the reader and its consumer run on both cores with
/// bounded memory. sqlx's SQLite driver sends each row through its worker thread, which caps a
/// replay near 150,000 events a second; rusqlite reads at the engine's own speed.
///
/// The log is read in pages of [`STREAM_PAGE`] events, each page a short read transaction: a
/// read transaction held for the whole replay would pin the WAL, and every commit of the replay's
/// own writes would then retry a checkpoint over an ever longer WAL (a rebuild of 100,000 events
/// took 47 s that way, 1.5 s by pages). Pages by position lose nothing: positions are gap-free
/// and committed in order. The thread stops as soon as the receiver is dropped.
fn read_with_rusqlite<T: Send + 'static>(
    path: PathBuf,
    after: i64,
    columns: &'static str,
    chunk_size: usize,
    from_row: RowReader<T>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<T>, StoreError>> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<T>, StoreError>>(4);
    tokio::task::spawn_blocking(move || {
        let read = || -> Result<(), StoreError> {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = rusqlite::Connection::open_with_flags(&path, flags).map_err(corrupt)?;
            conn.busy_timeout(Duration::from_secs(30)).map_err(corrupt)?;
            let mut statement = conn
                .prepare(&format!("SELECT {columns} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"))
                .map_err(corrupt)?;
            let mut after = after;
            let mut arena = BytesMut::new();
            let mut chunk = Vec::with_capacity(chunk_size);
            loop {
                let mut rows = statement.query([after, STREAM_PAGE]).map_err(corrupt)?;
                let mut read = 0;
                while let Some(row) = rows.next().map_err(corrupt)? {
                    let (position, event) = from_row(row, &mut arena)?;
                    after = position;
                    read += 1;
                    chunk.push(event);
                    if chunk.len() == chunk_size {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size));
                        if sender.blocking_send(Ok(full)).is_err() {
                            return Ok(());
                        }
                    }
                }
                if read < STREAM_PAGE {
                    break;
                }
            }
            if !chunk.is_empty() {
                let _ = sender.blocking_send(Ok(chunk));
            }
            Ok(())
        };
        if let Err(e) = read() {
            let _ = sender.blocking_send(Err(e));
        }
    });
    receiver
}

fn corrupt(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt { detail: format!("reading the log: {e}") }
}

fn uuid_of(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|e| StoreError::Corrupt { detail: format!("a stored id: {e}") })
}

/// Payloads are copied into buffers of this size, each shared by the events it holds, rather
/// than into an allocation each.
const ARENA: usize = 256 * 1024;

/// A row of [`REPLAY_COLUMNS`], read by rusqlite; its payload is copied into `arena`.
fn replay_from_row(row: &rusqlite::Row<'_>, arena: &mut BytesMut) -> Result<(i64, ReplayEvent), StoreError> {
    let text = |i: usize| row.get_ref(i).and_then(|v| v.as_str().map_err(Into::into)).map_err(corrupt);
    let position = row.get(0).map_err(corrupt)?;
    let event = ReplayEvent {
        position,
        stream_id: uuid_of(row.get_ref(1).and_then(|v| v.as_blob().map_err(Into::into)).map_err(corrupt)?)?,
        stream_type: text(2)?.into(),
        stream_version: row.get(3).map_err(corrupt)?,
        event_type: text(4)?.into(),
        schema_version: row.get(5).map_err(corrupt)?,
        payload: {
            let blob = row.get_ref(6).and_then(|v| v.as_blob().map_err(Into::into)).map_err(corrupt)?;
            if arena.capacity() - arena.len() < blob.len() {
                *arena = BytesMut::with_capacity(ARENA.max(blob.len()));
            }
            arena.extend_from_slice(blob);
            arena.split().freeze()
        },
        recorded_at: crate::from_micros(row.get(7).map_err(corrupt)?)?,
    };
    Ok((position, event))
}

/// A row of [`EVENT_COLUMNS`], read by rusqlite.
fn event_from_row(row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
    let blob = |i: usize| row.get_ref(i).and_then(|v| v.as_blob().map_err(Into::into)).map_err(corrupt);
    let text =
        |i: usize| row.get_ref(i).and_then(|v| v.as_str().map(str::to_owned).map_err(Into::into)).map_err(corrupt);
    let command_id = match row.get_ref(9).map_err(corrupt)? {
        rusqlite::types::ValueRef::Null => None,
        value => Some(uuid_of(value.as_blob().map_err(|e| corrupt(e.into()))?)?),
    };
    Ok(StoredEvent {
        position: row.get(0).map_err(corrupt)?,
        event_id: uuid_of(blob(1)?)?,
        stream_id: uuid_of(blob(2)?)?,
        stream_type: text(3)?,
        stream_version: row.get(4).map_err(corrupt)?,
        event_type: text(5)?,
        schema_version: row.get(6).map_err(corrupt)?,
        payload: blob(7)?.to_vec(),
        metadata: blob(8)?.to_vec(),
        command_id,
        occurred_at: crate::from_micros(row.get(10).map_err(corrupt)?)?,
        recorded_at: crate::from_micros(row.get(11).map_err(corrupt)?)?,
        prev_hash: blob(12)?.to_vec(),
        hash: blob(13)?.to_vec(),
    })
}

struct SqliteWriter {
    conn: SqliteConnection,
    options: SqliteConnectOptions,
}

impl SqliteWriter {
    async fn exec(&mut self, sql: &str) -> Result<(), StoreError> {
        sqlx::query(sql).execute(&mut self.conn).await?;
        Ok(())
    }

    async fn find_commands(
        &mut self,
        command_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (Uuid, AppendOutcome)>, StoreError> {
        let mut found = HashMap::new();
        for chunk in command_ids.chunks(IDS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT command_id, stream_id, stream_version, first_position, last_position FROM commands \
                 WHERE command_id IN (",
            );
            let mut ids = query.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            query.push(")");
            let records: Vec<(Uuid, CommandRecord)> = query
                .build()
                .try_map(|row: SqliteRow| Ok((row.try_get("command_id")?, CommandRecord::from_row(&row)?)))
                .fetch_all(&mut self.conn)
                .await?;
            found.extend(records.into_iter().map(|(id, record)| (id, record.into_outcome())));
        }
        Ok(found)
    }

    async fn stream_versions(&mut self, stream_ids: &[Uuid]) -> Result<HashMap<Uuid, i64>, StoreError> {
        let mut found = HashMap::new();
        for chunk in stream_ids.chunks(IDS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new("SELECT stream_id, version FROM streams WHERE stream_id IN (");
            let mut ids = query.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            query.push(")");
            let rows: Vec<(Uuid, i64)> = query.build_query_as().fetch_all(&mut self.conn).await?;
            found.extend(rows);
        }
        Ok(found)
    }

    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(format!("INSERT INTO events ({EVENT_COLUMNS}) "));
            query.push_values(chunk, |mut values, row| {
                let event = &row.request.events[row.index];
                values
                    .push_bind(row.position)
                    .push_bind(event.event_id)
                    .push_bind(row.request.stream_id)
                    .push_bind(row.request.stream_type.as_str())
                    .push_bind(row.stream_version)
                    .push_bind(event.event_type.as_str())
                    .push_bind(event.schema_version)
                    .push_bind(event.payload.as_slice())
                    .push_bind(event.metadata.as_slice())
                    .push_bind(row.request.command_id)
                    .push_bind(crate::micros(event.occurred_at))
                    .push_bind(row.recorded_at_us)
                    .push_bind(&row.prev_hash[..])
                    .push_bind(&row.hash[..]);
            });
            query.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }

    async fn set_stream_versions(&mut self, streams: &[StreamRow<'_>]) -> Result<(), StoreError> {
        for chunk in streams.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO streams (stream_id, stream_type, version) ");
            query.push_values(chunk, |mut values, stream| {
                values.push_bind(stream.stream_id).push_bind(stream.stream_type).push_bind(stream.version);
            });
            query.push(" ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version");
            query.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }

    async fn insert_commands(&mut self, commands: &[CommandRow], recorded_at_us: i64) -> Result<(), StoreError> {
        for chunk in commands.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, \
                 recorded_at_us) ",
            );
            query.push_values(chunk, |mut values, command| {
                values
                    .push_bind(command.command_id)
                    .push_bind(command.stream_id)
                    .push_bind(command.outcome.stream_version)
                    .push_bind(command.outcome.first_position)
                    .push_bind(command.outcome.last_position)
                    .push_bind(recorded_at_us);
            });
            query.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl BatchTx for SqliteWriter {
    async fn begin(&mut self) -> Result<(Head, i64), StoreError> {
        // IMMEDIATE takes the write lock now: a deferred transaction that reads then writes would
        // fail with SQLITE_BUSY at once, ignoring busy_timeout.
        self.exec("BEGIN IMMEDIATE").await?;
        let (position, hash, recorded_at_us): (i64, Vec<u8>, i64) =
            sqlx::query_as("SELECT position, last_hash, recorded_at_us FROM log_head WHERE id = 1")
                .fetch_one(&mut self.conn)
                .await?;
        Ok((Head { position, hash }, recorded_at_us))
    }

    async fn lookup(&mut self, command_ids: &[Uuid], stream_ids: &[Uuid]) -> Result<Lookup, StoreError> {
        Ok(Lookup {
            commands: self.find_commands(command_ids).await?,
            versions: self.stream_versions(stream_ids).await?,
        })
    }

    async fn write(&mut self, writes: &Writes<'_>) -> Result<(), StoreError> {
        if !writes.rows.is_empty() {
            self.insert_events(&writes.rows).await?;
        }
        if !writes.streams.is_empty() {
            self.set_stream_versions(&writes.streams).await?;
        }
        if !writes.commands.is_empty() {
            self.insert_commands(&writes.commands, writes.recorded_at_us).await?;
        }
        sqlx::query("UPDATE log_head SET position = ?, last_hash = ?, recorded_at_us = ? WHERE id = 1")
            .bind(writes.head.position)
            .bind(&writes.head.hash)
            .bind(writes.recorded_at_us)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        self.exec("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), StoreError> {
        self.exec("ROLLBACK").await
    }

    async fn reconnect(&mut self) -> Result<(), StoreError> {
        let fresh = self.options.connect().await?;
        let old = std::mem::replace(&mut self.conn, fresh);
        let _ = old.close().await;
        Ok(())
    }
}
