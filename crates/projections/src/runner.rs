//! The projection runner: each read model follows the global order from its own checkpoint,
//! writing its rows and its checkpoint in the same transaction. It catches up at start, then
//! follows live, woken by the store (an in-process signal on SQLite, LISTEN/NOTIFY on
//! PostgreSQL) with a polling fallback. A failing projection retries with backoff and shows in
//! [`RunnerHandle::statuses`]; it never blocks or undoes an append.
//!
//! With several processes on one PostgreSQL, every batch locks the projection's checkpoint row
//! and re-reads it, so each event is applied by exactly one process, exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cachet_store::{EventStore, StoredEvent};
use futures::TryStreamExt;
use sqlx::AnyConnection;
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

/// Applies a batch read after `checkpoint`, in one transaction with the checkpoint. Returns
/// the checkpoint now stored (possibly moved further by another process).
pub async fn apply_batch(
    db: &ReadDb,
    projection: &dyn Projection,
    target: Target,
    batch: &[StoredEvent],
) -> Result<i64, ProjectionError> {
    let name = checkpoint_name(projection, target);
    let mut tx = db.begin_write().await?;
    let stored: i64 =
        sqlx::query_scalar(&format!("SELECT position FROM checkpoints WHERE name = $1{}", db.for_update()))
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
    let fresh: Vec<StoredEvent> = batch.iter().filter(|e| e.position > stored).cloned().collect();
    let Some(last) = fresh.last().map(|e| e.position) else {
        tx.rollback().await?;
        return Ok(stored);
    };
    if fresh[0].position != stored + 1 {
        return Err(ProjectionError::OutOfOrder { expected: stored + 1, found: fresh[0].position });
    }
    projection.apply(&mut tx, target, &fresh).await?;
    sqlx::query("UPDATE checkpoints SET position = $1 WHERE name = $2")
        .bind(last)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(last)
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
    loop {
        let next = events.try_next().await?.filter(|e| e.position <= until);
        let end = next.is_none();
        batch.extend(next);
        if batch.len() == CATCH_UP_BATCH || (end && !batch.is_empty()) {
            checkpoint = apply_batch(db, projection, target, &batch).await?;
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

    async fn step(&self, checkpoint: i64) -> Result<Option<i64>, ProjectionError> {
        let batch = self.store.read_all(checkpoint, BATCH).await?;
        if batch.is_empty() {
            return Ok(None);
        }
        apply_batch(&self.db, self.projection.as_ref(), Target::Live, &batch).await.map(Some)
    }

    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.projection.name();
        let mut wake = self.store.subscribe();
        let mut backoff = Duration::from_millis(100);
        let mut checkpoint = read_checkpoint(&self.db, self.projection.as_ref(), Target::Live).await.unwrap_or(0);
        while !*shutdown.borrow() {
            match self.step(checkpoint).await {
                Ok(Some(reached)) => {
                    checkpoint = reached;
                    backoff = Duration::from_millis(100);
                    self.record(Some(checkpoint), None);
                }
                Ok(None) => {
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
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
