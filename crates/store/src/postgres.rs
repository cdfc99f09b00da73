//! The PostgreSQL backend: for production and for several server processes on one database.
//!
//! Every append transaction starts by locking the single row of `log_head`
//! (`SELECT … FOR UPDATE`), so positions are assigned under the lock and committed in order:
//! a transaction that commits late cannot hold a position lower than one already visible, and
//! a reader following `position > checkpoint` never skips an event. Writer sessions set
//! `READ COMMITTED`, `synchronous_commit = on` (durable before the answer) and an
//! idle-in-transaction timeout themselves, whatever the server's defaults. `pg_notify` in the
//! same transaction wakes every process's readers at commit; a lost LISTEN connection is
//! re-established and followed by a read of the head, so no wake-up is lost.

use std::str::FromStr;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::Postgres;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;
use uuid::Uuid;

use crate::appender::{stage_batch, Appender, BatchTx, EventRow, Lookup, Staged, Writes, MAX_BATCH};
use crate::reader::{GroupedReads, IN_FLIGHT};
use crate::sqlite::{into_events, CommandRecord, EventRecord, EVENT_COLUMNS, REPLAY_COLUMNS};
use crate::{
    AppendOutcome, AppendRequest, Backend, EventStore, Head, NewEvent, ReplayEvent, StoreError, StoredEvent,
    REPLAY_CHUNK,
};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The channel `pg_notify` announces new positions on.
pub const NOTIFY_CHANNEL: &str = "cachet_events";

pub struct PgEventStore {
    pool: PgPool,
    options: PgConnectOptions,
    appender: Appender,
    reads: GroupedReads,
    positions: watch::Receiver<i64>,
}

impl PgEventStore {
    /// Connects, migrates (sqlx takes an advisory lock, so several processes may start at once),
    /// starts the appender and the LISTEN task.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_batch(url, MAX_BATCH).await
    }

    /// Connects with at most `max_batch` appends per transaction (1: each alone).
    pub async fn connect_with_batch(url: &str, max_batch: usize) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options.clone()).await?;
        MIGRATOR.run(&pool).await?;
        let head = read_head(&pool).await?;
        let (positions_tx, positions) = watch::channel(head.position);

        let listener = listen(&pool).await?;
        let listen_pool = pool.clone();
        let listen_positions = positions_tx.clone();
        tokio::spawn(async move { follow_notifications(listener, listen_pool, listen_positions).await });

        let writer_options = writer_options(&options);
        let connect = move || async move {
            let conn = writer_options.connect().await?;
            Ok::<_, StoreError>(PgWriter { conn, options: writer_options })
        };
        let appender = Appender::spawn_on_own_thread(connect, positions_tx, max_batch).await?;
        // The grouped reads have connections of their own, one per query in flight. Their one
        // statement takes a list of a different length each time: with the default plan cache
        // mode, PostgreSQL planned it again at every bind (0.2 ms, more than the query).
        let read_pool = PgPoolOptions::new()
            .max_connections(IN_FLIGHT as u32)
            .connect_with(options.clone().options([("plan_cache_mode", "force_generic_plan")]))
            .await?;
        let reads = GroupedReads::spawn(move |ids| read_streams(read_pool.clone(), ids));
        Ok(Self { pool, options, appender, reads, positions })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stages appends in a transaction of its own and holds it open until [`HeldAppend::commit`].
    /// Other appends wait for it. Useful to commit several commands atomically, and to show
    /// that readers never skip a transaction that commits late.
    pub async fn begin_held_append(&self, requests: Vec<AppendRequest>) -> Result<HeldAppend, StoreError> {
        let options = writer_options(&self.options);
        let mut writer = PgWriter { conn: options.connect().await?, options };
        let refs: Vec<&AppendRequest> = requests.iter().collect();
        match stage_batch(&mut writer, &refs).await {
            Ok(staged) => Ok(HeldAppend { writer, staged }),
            Err(e) => {
                let _ = writer.rollback().await;
                Err(e)
            }
        }
    }
}

/// Appends staged in an open transaction.
pub struct HeldAppend {
    writer: PgWriter,
    staged: Staged,
}

impl HeldAppend {
    pub async fn commit(mut self) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
        self.writer.commit().await?;
        Ok(self.staged.results)
    }
}

/// The writer's session does not depend on server or role defaults: commits are durable before
/// the answer, and a frozen process cannot hold the lock on `log_head` for ever.
fn writer_options(options: &PgConnectOptions) -> PgConnectOptions {
    options.clone().options([("synchronous_commit", "on"), ("idle_in_transaction_session_timeout", "60s")])
}

async fn follow_notifications(mut listener: PgListener, pool: PgPool, positions: watch::Sender<i64>) {
    let advance = |position: i64| {
        positions.send_if_modified(|p| {
            let moved = position > *p;
            *p = (*p).max(position);
            moved
        });
    };
    let catch_up = || async {
        match read_head(&pool).await {
            Ok(head) => advance(head.position),
            Err(error) => tracing::warn!(error = %error, "could not read the head after losing LISTEN"),
        }
    };
    loop {
        let received = tokio::select! {
            // Every receiver is gone: the store was dropped.
            _ = positions.closed() => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(note)) => {
                if let Ok(position) = note.payload().parse::<i64>() {
                    advance(position);
                }
            }
            Ok(None) => {
                // The connection was lost and `try_recv` has already connected and listened
                // again (eager reconnect): notifications sent in between are lost, but the head,
                // read now, covers them all.
                tracing::warn!("LISTEN connection lost and re-established, catching up from the head");
                catch_up().await;
            }
            Err(error) => {
                // Not a lost connection that `try_recv` re-established (the reconnection itself
                // failed, or the pool is closing): listen again on a fresh connection before
                // catching up, so that no notification falls in between.
                tracing::warn!(error = %error, "LISTEN failed, listening again");
                loop {
                    tokio::select! {
                        _ = positions.closed() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                    }
                    match listen(&pool).await {
                        Ok(fresh) => {
                            listener = fresh;
                            break;
                        }
                        Err(error) => tracing::warn!(error = %error, "LISTEN failed again"),
                    }
                }
                catch_up().await;
            }
        }
    }
}

/// A listener on [`NOTIFY_CHANNEL`], on a connection of the pool.
async fn listen(pool: &PgPool) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

async fn read_head(pool: &PgPool) -> Result<Head, StoreError> {
    let (position, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT position, last_hash FROM log_head WHERE id = 1").fetch_one(pool).await?;
    Ok(Head { position, hash })
}

#[async_trait]
impl EventStore for PgEventStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.appender.append(request).await
    }

    async fn read_stream(&self, stream_id: Uuid) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
        into_events(sqlx::query_as(&sql).bind(stream_id).fetch_all(&self.pool).await?)
    }

    async fn read_stream_to_fold(&self, stream_id: Uuid) -> Result<Vec<ReplayEvent>, StoreError> {
        self.reads.read_stream(stream_id).await
    }

    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        into_events(sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn head(&self) -> Result<Head, StoreError> {
        read_head(&self.pool).await
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        let record: Option<CommandRecord> = sqlx::query_as(
            "SELECT stream_id, stream_version, first_position, last_position FROM commands WHERE command_id = $1",
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
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position");
        crate::stream_of_chunks(read_streamed::<EventRecord, StoredEvent>(self.pool.clone(), sql, after, 1_024))
    }

    fn replay_from(&self, after: i64) -> BoxStream<'_, Result<Vec<ReplayEvent>, StoreError>> {
        crate::chunks_of(crate::pgcopy::replay_by_copy(self.pool.clone(), after, REPLAY_CHUNK))
    }
}

/// A row of [`REPLAY_COLUMNS`], read by position, the type names copied inline from the row.
fn replay_event_of(row: &sqlx::postgres::PgRow) -> Result<ReplayEvent, StoreError> {
    use sqlx::Row;
    Ok(ReplayEvent {
        position: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        stream_type: row.try_get::<&str, _>(2)?.into(),
        stream_version: row.try_get(3)?,
        event_type: row.try_get::<&str, _>(4)?.into(),
        schema_version: row.try_get(5)?,
        payload: row.try_get::<Vec<u8>, _>(6)?.into(),
        recorded_at: crate::from_micros(row.try_get(7)?)?,
    })
}

/// Every event of these streams, in stream order within each, with the columns a fold needs:
/// one query for a group of reads.
async fn read_streams(pool: PgPool, stream_ids: Vec<Uuid>) -> Result<Vec<ReplayEvent>, StoreError> {
    let sql =
        format!("SELECT {REPLAY_COLUMNS} FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, stream_version");
    sqlx::query(&sql).bind(stream_ids).fetch_all(&pool).await?.iter().map(replay_event_of).collect()
}

/// One query (`$1` is the position to read after) streamed by a task of its own, where sqlx
/// decodes the rows, handed over in chunks of up to `chunk_size`: decoding rows and consuming
/// them run on both cores.
fn read_streamed<R, T>(
    pool: PgPool,
    sql: String,
    after: i64,
    chunk_size: usize,
) -> tokio::sync::mpsc::Receiver<Result<Vec<T>, StoreError>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + 'static,
    T: TryFrom<R, Error = StoreError> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<T>, StoreError>>(4);
    tokio::spawn(async move {
        let mut conn = match in_position_order(&pool).await {
            Ok(conn) => conn,
            Err(e) => {
                let _ = sender.send(Err(e)).await;
                return;
            }
        };
        let whole = async {
            let mut rows = sqlx::query_as::<_, R>(&sql).bind(after).fetch(&mut *conn);
            let mut chunk = Vec::with_capacity(chunk_size);
            loop {
                match rows.try_next().await {
                    Ok(Some(record)) => match T::try_from(record) {
                        Ok(event) => chunk.push(event),
                        Err(e) => {
                            let _ = sender.send(Err(e)).await;
                            return false;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        let _ = sender.send(Err(e.into())).await;
                        return false;
                    }
                }
                if chunk.len() == chunk_size {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size));
                    if sender.send(Ok(full)).await.is_err() {
                        return false;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = sender.send(Ok(chunk)).await;
            }
            true
        }
        .await;
        give_back(conn, whole).await;
    });
    receiver
}

/// A connection of its own for a read of the log in position order, set to read by the
/// primary key. Without statistics (after a bulk load autovacuum has not seen yet) the planner
/// scanned the table and sorted every row on disk before sending the first: more than half of
/// a replay's time, all of it in PostgreSQL. Give it back with [`give_back`].
pub(crate) async fn in_position_order(pool: &PgPool) -> Result<PoolConnection<Postgres>, StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET enable_sort = off").execute(&mut *conn).await?;
    Ok(conn)
}

/// Returns a connection of [`in_position_order`] to the pool with the planner's default, or
/// closes it when its read stopped before the end (it may still be sending rows).
pub(crate) async fn give_back(mut conn: PoolConnection<Postgres>, whole: bool) {
    if !whole || sqlx::query("RESET enable_sort").execute(&mut *conn).await.is_err() {
        drop(conn.detach());
    }
}

struct PgWriter {
    conn: PgConnection,
    options: PgConnectOptions,
}

impl PgWriter {
    async fn exec(&mut self, sql: &str) -> Result<(), StoreError> {
        sqlx::query(sql).execute(&mut self.conn).await?;
        Ok(())
    }
}

#[async_trait]
impl BatchTx for PgWriter {
    async fn begin(&mut self) -> Result<(Head, i64), StoreError> {
        // Explicit, whatever the database's default: under REPEATABLE READ a process waiting for
        // the lock would fail with a serialisation error instead of seeing the new head.
        self.exec("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
        let (position, hash, recorded_at_us): (i64, Vec<u8>, i64) =
            sqlx::query_as("SELECT position, last_hash, recorded_at_us FROM log_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut self.conn)
                .await?;
        Ok((Head { position, hash }, recorded_at_us))
    }

    async fn lookup(&mut self, command_ids: &[Uuid], stream_ids: &[Uuid]) -> Result<Lookup, StoreError> {
        // One query for both: a command row carries its id, a stream row only its version.
        let rows: Vec<(Option<Uuid>, Uuid, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT command_id, stream_id, stream_version, first_position, last_position FROM commands \
             WHERE command_id = ANY($1) \
             UNION ALL SELECT NULL, stream_id, version, NULL, NULL FROM streams WHERE stream_id = ANY($2)",
        )
        .bind(command_ids)
        .bind(stream_ids)
        .fetch_all(&mut self.conn)
        .await?;
        let mut lookup = Lookup::default();
        for (command_id, stream_id, version, first_position, last_position) in rows {
            match command_id {
                Some(command_id) => {
                    let outcome =
                        AppendOutcome { stream_version: version, first_position, last_position, replayed: true };
                    lookup.commands.insert(command_id, (stream_id, outcome));
                }
                None => {
                    lookup.versions.insert(stream_id, version);
                }
            }
        }
        Ok(lookup)
    }

    async fn write(&mut self, writes: &Writes<'_>) -> Result<(), StoreError> {
        // One statement for the whole batch, whatever its size: the columns travel as arrays, and
        // data-modifying CTEs insert the events, move the streams, record the commands, move the
        // head and queue the notification (delivered at commit).
        fn event<'a>(row: &EventRow<'a>) -> &'a NewEvent {
            &row.request.events[row.index]
        }
        let rows = &writes.rows;
        let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
        let event_ids: Vec<Uuid> = rows.iter().map(|r| event(r).event_id).collect();
        let stream_ids: Vec<Uuid> = rows.iter().map(|r| r.request.stream_id).collect();
        let stream_types: Vec<&str> = rows.iter().map(|r| r.request.stream_type.as_str()).collect();
        let versions: Vec<i64> = rows.iter().map(|r| r.stream_version).collect();
        let event_types: Vec<&str> = rows.iter().map(|r| event(r).event_type.as_str()).collect();
        let schema_versions: Vec<i32> = rows.iter().map(|r| event(r).schema_version).collect();
        let payloads: Vec<&[u8]> = rows.iter().map(|r| event(r).payload.as_slice()).collect();
        let metadata: Vec<&[u8]> = rows.iter().map(|r| event(r).metadata.as_slice()).collect();
        let command_ids: Vec<Uuid> = rows.iter().map(|r| r.request.command_id).collect();
        let occurred: Vec<i64> = rows.iter().map(|r| crate::micros(event(r).occurred_at)).collect();
        let recorded: Vec<i64> = rows.iter().map(|r| r.recorded_at_us).collect();
        let prev_hashes: Vec<&[u8]> = rows.iter().map(|r| &r.prev_hash[..]).collect();
        let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
        let streams = &writes.streams;
        let commands = &writes.commands;
        sqlx::query(&format!(
            "WITH new_events AS (INSERT INTO events ({EVENT_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], \
             $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[], $7::integer[], $8::bytea[], \
             $9::bytea[], $10::uuid[], $11::bigint[], $12::bigint[], $13::bytea[], $14::bytea[])), \
             moved_streams AS (INSERT INTO streams (stream_id, stream_type, version) \
             SELECT * FROM UNNEST($15::uuid[], $16::text[], $17::bigint[]) \
             ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version), \
             applied AS (INSERT INTO commands (command_id, stream_id, stream_version, first_position, \
             last_position, recorded_at_us) \
             SELECT *, $23::bigint FROM UNNEST($18::uuid[], $19::uuid[], $20::bigint[], $21::bigint[], $22::bigint[])), \
             head AS (UPDATE log_head SET position = $24, last_hash = $25, recorded_at_us = $23 WHERE id = 1) \
             SELECT pg_notify($26, $24::text)"
        ))
        .bind(positions)
        .bind(event_ids)
        .bind(stream_ids)
        .bind(stream_types)
        .bind(versions)
        .bind(event_types)
        .bind(schema_versions)
        .bind(payloads)
        .bind(metadata)
        .bind(command_ids)
        .bind(occurred)
        .bind(recorded)
        .bind(prev_hashes)
        .bind(hashes)
        .bind(streams.iter().map(|s| s.stream_id).collect::<Vec<Uuid>>())
        .bind(streams.iter().map(|s| s.stream_type).collect::<Vec<&str>>())
        .bind(streams.iter().map(|s| s.version).collect::<Vec<i64>>())
        .bind(commands.iter().map(|c| c.command_id).collect::<Vec<Uuid>>())
        .bind(commands.iter().map(|c| c.stream_id).collect::<Vec<Uuid>>())
        .bind(commands.iter().map(|c| c.outcome.stream_version).collect::<Vec<i64>>())
        .bind(commands.iter().map(|c| c.outcome.first_position).collect::<Vec<Option<i64>>>())
        .bind(commands.iter().map(|c| c.outcome.last_position).collect::<Vec<Option<i64>>>())
        .bind(writes.recorded_at_us)
        .bind(writes.head.position)
        .bind(&writes.head.hash)
        .bind(NOTIFY_CHANNEL)
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
