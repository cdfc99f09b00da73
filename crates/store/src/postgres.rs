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
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;
use uuid::Uuid;

use crate::appender::{stage_batch, Appender, BatchTx, EventRow, Staged};
use crate::sqlite::{into_events, CommandRecord, EVENT_COLUMNS};
use crate::{AppendOutcome, AppendRequest, Backend, EventStore, Head, StoreError, StoredEvent};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The channel `pg_notify` announces new positions on.
pub const NOTIFY_CHANNEL: &str = "cachet_events";

pub struct PgEventStore {
    pool: PgPool,
    options: PgConnectOptions,
    appender: Appender,
    positions: watch::Receiver<i64>,
}

impl PgEventStore {
    /// Connects, migrates (sqlx takes an advisory lock, so several processes may start at once),
    /// starts the appender and the LISTEN task.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
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
        let writer = PgWriter { conn: writer_options.connect().await?, options: writer_options };
        let (appender, _task) = Appender::spawn(writer, positions_tx);
        Ok(Self { pool, options, appender, positions })
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
        self.writer.commit(&self.staged.head, self.staged.recorded_at_us).await?;
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

    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("SAVEPOINT append_one").await
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("RELEASE SAVEPOINT append_one").await
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("ROLLBACK TO SAVEPOINT append_one").await
    }

    async fn find_command(&mut self, command_id: Uuid) -> Result<Option<(Uuid, AppendOutcome)>, StoreError> {
        let record: Option<CommandRecord> = sqlx::query_as(
            "SELECT stream_id, stream_version, first_position, last_position FROM commands WHERE command_id = $1",
        )
        .bind(command_id)
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(record.map(CommandRecord::into_outcome))
    }

    async fn stream_version(&mut self, stream_id: Uuid) -> Result<i64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        for row in rows {
            let event = &row.request.events[row.index];
            sqlx::query(
                "INSERT INTO events (position, event_id, stream_id, stream_type, stream_version, event_type, \
                 schema_version, payload, metadata, command_id, occurred_at_us, recorded_at_us, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(row.position)
            .bind(event.event_id)
            .bind(row.request.stream_id)
            .bind(&row.request.stream_type)
            .bind(row.stream_version)
            .bind(&event.event_type)
            .bind(event.schema_version)
            .bind(&event.payload)
            .bind(&event.metadata)
            .bind(row.request.command_id)
            .bind(crate::micros(event.occurred_at))
            .bind(row.recorded_at_us)
            .bind(&row.prev_hash[..])
            .bind(&row.hash[..])
            .execute(&mut self.conn)
            .await?;
        }
        Ok(())
    }

    async fn set_stream_version(&mut self, request: &AppendRequest, version: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO streams (stream_id, stream_type, version) VALUES ($1, $2, $3) \
             ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
        )
        .bind(request.stream_id)
        .bind(&request.stream_type)
        .bind(version)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn insert_command(
        &mut self,
        request: &AppendRequest,
        outcome: &AppendOutcome,
        recorded_at_us: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, recorded_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(request.command_id)
        .bind(request.stream_id)
        .bind(outcome.stream_version)
        .bind(outcome.first_position)
        .bind(outcome.last_position)
        .bind(recorded_at_us)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn commit(&mut self, head: &Head, recorded_at_us: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE log_head SET position = $1, last_hash = $2, recorded_at_us = $3 WHERE id = 1")
            .bind(head.position)
            .bind(&head.hash)
            .bind(recorded_at_us)
            .execute(&mut self.conn)
            .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(head.position.to_string())
            .execute(&mut self.conn)
            .await?;
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
