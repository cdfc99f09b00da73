//! The projection runner: each read model follows the global order from its own checkpoint,
//! writing its rows and its checkpoint in the same transaction. It catches up at start, then
//! follows live, woken by the store (an in-process signal on SQLite, LISTEN/NOTIFY on
//! PostgreSQL) with a polling fallback. A failing projection retries with backoff and shows in
//! [`RunnerHandle::statuses`]; it never blocks or undoes an append.
//!
//! With several processes on one PostgreSQL, every batch locks the projection's checkpoint row
//! and moves it only from where its runner saw it, so each event is applied by exactly one
//! process, exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cachet_store::{Backend, EventStore, StoredEvent};
use futures::TryStreamExt;
use sqlx::{Any, AnyConnection, Connection, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::ReadDb;
use crate::ProjectionError;

/// Events read per transaction by the live runner.
pub const BATCH: i64 = 500;
/// Events applied per transaction when catching up from far behind (a rebuild): fewer, larger
/// transactions, each still bounded in memory.
pub const CATCH_UP_BATCH: usize = 5_000;
/// How often a runner looks for new events when nothing woke it.
pub const POLL: Duration = Duration::from_millis(500);

/// Where a projection writes: its live tables, or a copy being rebuilt beside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Live,
    Rebuild,
}

impl Target {
    /// The table name for this target.
    pub fn table(self, base: &str) -> String {
        match self {
            Target::Live => base.to_owned(),
            Target::Rebuild => format!("{base}__rebuild"),
        }
    }
}

/// A read model.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint's key.
    fn name(&self) -> &'static str;
    /// Bumped when the tables' shape or content changes; a new version is rebuilt.
    fn version(&self) -> i64;
    /// The base names of the tables the projection owns.
    fn tables(&self) -> &'static [&'static str];
    /// Portable `CREATE TABLE IF NOT EXISTS` / `CREATE INDEX IF NOT EXISTS` statements.
    fn schema(&self, target: Target) -> Vec<String>;
    /// Folds a batch of events (contiguous, in order) into the tables, in the caller's
    /// transaction.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        target: Target,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError>;
    /// The batch applied last is committed, and the checkpoint moved to `position`: what the
    /// projection keeps in memory of it holds.
    fn committed(&self, _position: i64) {}
    /// The batch applied last was not committed (rolled back, failed, or not applied): what the
    /// projection keeps in memory may not match its tables.
    fn abandoned(&self) {}
}

fn checkpoint_name(projection: &dyn Projection, target: Target) -> String {
    target.table(projection.name())
}

/// Creates the projection's tables and checkpoint if missing; drops and recreates them when the
/// stored version differs from the projection's.
pub async fn prepare(db: &ReadDb, projection: &dyn Projection, target: Target) -> Result<(), ProjectionError> {
    prepare_with(db, projection, target, true).await
}

/// Whether a schema statement creates a secondary index.
fn is_index(statement: &str) -> bool {
    let start = statement.trim_start();
    start.starts_with("CREATE INDEX") || start.starts_with("CREATE UNIQUE INDEX")
}

/// Creates the rebuild's tables without their secondary indexes: a rebuild from position 0 writes
/// every row, and building each index once afterwards ([`create_indexes`]) costs less than
/// maintaining it row by row.
pub async fn prepare_rebuild_tables(db: &ReadDb, projection: &dyn Projection) -> Result<(), ProjectionError> {
    prepare_with(db, projection, Target::Rebuild, false).await
}

/// Creates the secondary indexes of a target's tables (after [`prepare_rebuild_tables`]).
pub async fn create_indexes(db: &ReadDb, projection: &dyn Projection, target: Target) -> Result<(), ProjectionError> {
    let mut tx = db.begin_write().await?;
    for statement in projection.schema(target).into_iter().filter(|s| is_index(s)) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn prepare_with(
    db: &ReadDb,
    projection: &dyn Projection,
    target: Target,
    indexes: bool,
) -> Result<(), ProjectionError> {
    let name = checkpoint_name(projection, target);
    let mut tx = db.begin_write().await?;
    let stored: Option<i64> =
        sqlx::query_scalar(&format!("SELECT version FROM checkpoints WHERE name = $1{}", db.for_update()))
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
    let fresh = target == Target::Rebuild || stored != Some(projection.version());
    if fresh {
        if stored.is_some() || target == Target::Rebuild {
            for table in projection.tables() {
                sqlx::query(&format!("DROP TABLE IF EXISTS {}", target.table(table))).execute(&mut *tx).await?;
            }
        }
        sqlx::query(
            "INSERT INTO checkpoints (name, position, version) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO UPDATE SET position = 0, version = excluded.version",
        )
        .bind(&name)
        .bind(projection.version())
        .execute(&mut *tx)
        .await?;
    }
    for statement in projection.schema(target).into_iter().filter(|s| indexes || !is_index(s)) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn read_checkpoint(db: &ReadDb, projection: &dyn Projection, target: Target) -> Result<i64, ProjectionError> {
    let position: Option<i64> = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
        .bind(checkpoint_name(projection, target))
        .fetch_optional(&db.pool)
        .await?;
    Ok(position.unwrap_or(0))
}

/// Applies the events of `batch` after `checkpoint` (the caller's last known checkpoint) in one
/// transaction that moves the checkpoint from there, on the caller's connection. Returns the
/// checkpoint now stored.
async fn apply_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    projection: &dyn Projection,
    target: Target,
    checkpoint: i64,
    batch: &[StoredEvent],
) -> Result<i64, ProjectionError> {
    let applied = apply_uncommitted(conn, backend, projection, target, checkpoint, batch).await;
    let stored = match applied {
        Ok(Applied::Moved(tx, last)) => tx.commit().await.map(|()| last).map_err(ProjectionError::from),
        Ok(Applied::Stored(stored)) => {
            projection.abandoned();
            return Ok(stored);
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(last) => projection.committed(last),
        Err(_) => projection.abandoned(),
    }
    stored
}

/// The read models' transactions commit without waiting for the disk.
///
/// A batch's rows and its checkpoint commit together, and the events they fold are already
/// durable. A crash can lose only the last batches committed this way, whole, and their
/// checkpoint with them: the runner applies those events again when it starts. The mails a lost
/// batch queued are queued again, and none of them was sent, since marking a mail sent commits
/// durably, which writes every earlier commit to the disk first (PostgreSQL's WAL, like SQLite's,
/// is written in order). Waiting for the disk made each batch a flush longer, and with it the
/// answer of every command waiting for its read models.
///
/// On PostgreSQL every transaction of the runner sets `synchronous_commit = off` for itself
/// alone (`SET LOCAL`), whatever connection it runs on. On SQLite, where the setting belongs to
/// a connection, only the live runner's own connection uses `synchronous = NORMAL`; the pooled
/// connections other writers share stay `FULL`. This function relaxes that own connection.
async fn relaxed(mut conn: AnyConnection, backend: Backend) -> Result<AnyConnection, ProjectionError> {
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut conn).await?;
    }
    Ok(conn)
}

/// What [`apply_uncommitted`] did.
enum Applied<'c> {
    /// The batch is applied and the checkpoint moved to this position, to be committed.
    Moved(Transaction<'c, Any>, i64),
    /// Nothing to do: the checkpoint stored is here, at or after the batch's end.
    Stored(i64),
}

/// Applies the batch and moves the checkpoint, in a transaction left for the caller to commit.
///
/// The transaction first locks the checkpoint (on PostgreSQL its row, with `FOR UPDATE` sent
/// with the `BEGIN`, in one round trip; on SQLite the write lock), so that every writer of the
/// read models, the runners of other processes, a swap or a check, takes the checkpoint before
/// the tables. The checkpoint is then moved only if it still is where the caller saw it
/// (`UPDATE … WHERE position = checkpoint`): when another process applied these events first,
/// the transaction is rolled back and the stored checkpoint returned.
async fn apply_uncommitted<'c>(
    conn: &'c mut AnyConnection,
    backend: Backend,
    projection: &dyn Projection,
    target: Target,
    checkpoint: i64,
    batch: &[StoredEvent],
) -> Result<Applied<'c>, ProjectionError> {
    let fresh: Vec<StoredEvent> = batch.iter().filter(|e| e.position > checkpoint).cloned().collect();
    let Some(last) = fresh.last().map(|e| e.position) else { return Ok(Applied::Stored(checkpoint)) };
    if fresh[0].position != checkpoint + 1 {
        return Err(ProjectionError::OutOfOrder { expected: checkpoint + 1, found: fresh[0].position });
    }
    let name = checkpoint_name(projection, target);
    let mut tx = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => {
            // A simple query, without parameters: the name is written in, and is the code's own.
            if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(ProjectionError::Corrupt(format!("unexpected projection name {name}")));
            }
            // The commit does not wait for the disk: see [`relaxed`].
            conn.begin_with(format!(
                "BEGIN; SET LOCAL synchronous_commit = off; SELECT position FROM checkpoints WHERE name = '{name}' FOR UPDATE"
            ))
            .await?
        }
    };
    projection.apply(&mut tx, target, &fresh).await?;
    let moved = sqlx::query("UPDATE checkpoints SET position = $1 WHERE name = $2 AND position = $3")
        .bind(last)
        .bind(&name)
        .bind(checkpoint)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if moved == 1 {
        return Ok(Applied::Moved(tx, last));
    }
    let stored: Option<i64> = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?;
    tx.rollback().await?;
    stored.map(Applied::Stored).ok_or_else(|| ProjectionError::Corrupt(format!("no checkpoint for {name}")))
}

/// Brings a projection up to `until` (a position the store has reached); `progress` gets each
/// checkpoint. The events come in one streamed read ([`EventStore::stream_from`]) and are
/// applied [`CATCH_UP_BATCH`] at a time, each batch in one transaction with the checkpoint.
pub async fn catch_up(
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &dyn Projection,
    target: Target,
    until: i64,
    mut progress: impl FnMut(i64),
) -> Result<i64, ProjectionError> {
    let mut checkpoint = read_checkpoint(db, projection, target).await?;
    if checkpoint >= until {
        return Ok(checkpoint);
    }
    let mut events = store.stream_from(checkpoint);
    let mut batch = Vec::with_capacity(CATCH_UP_BATCH);
    let mut conn = db.pool.acquire().await?;
    loop {
        let next = events.try_next().await?.filter(|e| e.position <= until);
        let end = next.is_none();
        batch.extend(next);
        if batch.len() == CATCH_UP_BATCH || (end && !batch.is_empty()) {
            checkpoint = apply_batch(&mut conn, db.backend, projection, target, checkpoint, &batch).await?;
            progress(checkpoint);
            batch.clear();
        }
        if end {
            return Ok(checkpoint);
        }
    }
}

/// What health checks and metrics show of one projection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub checkpoint: i64,
    /// The last failure, until the next success.
    pub error: Option<String>,
}

/// The running projections.
#[derive(Clone)]
pub struct RunnerHandle {
    statuses: Arc<Mutex<BTreeMap<&'static str, ProjectionStatus>>>,
    /// The lowest checkpoint of all projections.
    caught_up: watch::Receiver<i64>,
}

impl RunnerHandle {
    pub fn statuses(&self) -> BTreeMap<&'static str, ProjectionStatus> {
        self.statuses.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The position every projection has reached.
    pub fn position(&self) -> i64 {
        *self.caught_up.borrow()
    }

    /// Waits until every projection has applied `position` (read-your-writes), or the timeout.
    /// Returns whether it was reached.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let mut caught_up = self.caught_up.clone();
        tokio::time::timeout(timeout, caught_up.wait_for(|p| *p >= position)).await.is_ok_and(|r| r.is_ok())
    }
}

/// Prepares every projection and spawns one follower task each; they stop when `shutdown`
/// becomes true.
pub async fn spawn(
    store: Arc<dyn EventStore>,
    db: ReadDb,
    projections: Vec<Arc<dyn Projection>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(RunnerHandle, Vec<JoinHandle<()>>), ProjectionError> {
    let mut statuses = BTreeMap::new();
    for projection in &projections {
        prepare(&db, projection.as_ref(), Target::Live).await?;
        let checkpoint = read_checkpoint(&db, projection.as_ref(), Target::Live).await?;
        statuses.insert(projection.name(), ProjectionStatus { checkpoint, error: None });
    }
    let lowest = statuses.values().map(|s| s.checkpoint).min().unwrap_or(0);
    let statuses = Arc::new(Mutex::new(statuses));
    let (caught_up_tx, caught_up) = watch::channel(lowest);
    let caught_up_tx = Arc::new(caught_up_tx);
    let tasks = projections
        .into_iter()
        .map(|projection| {
            let follower = Follower {
                store: store.clone(),
                db: db.clone(),
                conn: None,
                projection,
                statuses: statuses.clone(),
                caught_up: caught_up_tx.clone(),
            };
            tokio::spawn(follower.run(shutdown.clone()))
        })
        .collect();
    Ok((RunnerHandle { statuses, caught_up }, tasks))
}

struct Follower {
    store: Arc<dyn EventStore>,
    db: ReadDb,
    /// The follower's own connection, kept from batch to batch: a pooled one costs a round trip
    /// to test it at every batch.
    conn: Option<AnyConnection>,
    projection: Arc<dyn Projection>,
    statuses: Arc<Mutex<BTreeMap<&'static str, ProjectionStatus>>>,
    caught_up: Arc<watch::Sender<i64>>,
}

impl Follower {
    fn record(&self, checkpoint: Option<i64>, error: Option<String>) {
        let Ok(mut statuses) = self.statuses.lock() else { return };
        let status = statuses.entry(self.projection.name()).or_default();
        if let Some(checkpoint) = checkpoint {
            status.checkpoint = checkpoint;
        }
        status.error = error;
        let lowest = statuses.values().map(|s| s.checkpoint).min().unwrap_or(0);
        self.caught_up.send_if_modified(|p| {
            let moved = *p != lowest;
            *p = lowest;
            moved
        });
    }

    /// Applies `batch` (read after `checkpoint`) and commits it; meanwhile reads the events after
    /// it, which the next step applies. Returns the checkpoint stored and the events read.
    async fn step(
        &mut self,
        checkpoint: i64,
        batch: &[StoredEvent],
    ) -> Result<(i64, Vec<StoredEvent>), ProjectionError> {
        let stepped = {
            let conn = match &mut self.conn {
                Some(conn) => conn,
                None => self.conn.insert(relaxed(self.db.own_connection().await?, self.db.backend).await?),
            };
            let applied =
                apply_uncommitted(conn, self.db.backend, self.projection.as_ref(), Target::Live, checkpoint, batch)
                    .await;
            match applied {
                // The commit waits for the disk; the next read need not wait for the commit.
                Ok(Applied::Moved(tx, last)) => {
                    let (committed, next) = tokio::join!(tx.commit(), self.store.read_all(last, BATCH));
                    match committed {
                        // A failed read is read again by the next step.
                        Ok(()) => {
                            self.projection.committed(last);
                            Ok((last, next.unwrap_or_default()))
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                Ok(Applied::Stored(stored)) => {
                    self.projection.abandoned();
                    Ok((stored, Vec::new()))
                }
                Err(e) => Err(e),
            }
        };
        if stepped.is_err() {
            // Whatever state the connection is in, the next attempt starts on a new one.
            self.conn = None;
            self.projection.abandoned();
        }
        stepped
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let name = self.projection.name();
        let mut wake = self.store.subscribe();
        let mut backoff = Duration::from_millis(100);
        let mut checkpoint = read_checkpoint(&self.db, self.projection.as_ref(), Target::Live).await.unwrap_or(0);
        // Events read after the checkpoint and not applied yet.
        let mut pending: Vec<StoredEvent> = Vec::new();
        while !*shutdown.borrow() {
            let stepped = if pending.is_empty() {
                self.store.read_all(checkpoint, BATCH).await.map(|read| (checkpoint, read)).map_err(Into::into)
            } else {
                self.step(checkpoint, &pending).await
            };
            match stepped {
                Ok((reached, read)) => {
                    if reached != checkpoint {
                        checkpoint = reached;
                        backoff = Duration::from_millis(100);
                        self.record(Some(checkpoint), None);
                    }
                    pending = read;
                    if pending.is_empty() {
                        tokio::select! {
                            _ = wake.changed() => {}
                            _ = tokio::time::sleep(POLL) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
                Err(error) => {
                    pending.clear();
                    tracing::error!(projection = name, projection.checkpoint = checkpoint, error = %error, "projection failed, retrying");
                    self.record(None, Some(error.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    if let Ok(stored) = read_checkpoint(&self.db, self.projection.as_ref(), Target::Live).await {
                        checkpoint = stored;
                    }
                }
            }
        }
    }
}
