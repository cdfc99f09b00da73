//! Group commit: one appender task per process takes append requests from a channel and writes
//! every request waiting at that moment in one transaction, with one durable commit, then
//! answers each caller. Each request keeps its own expected-version check and idempotency; a
//! conflict fails that request only.
//!
//! The backends provide the SQL through [`BatchTx`]; the rules of an append are written once,
//! here.

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::hash::{event_hash, HashInput};
use crate::{micros, AppendOutcome, AppendRequest, ExpectedVersion, Head, StoreError};

/// The most requests committed together.
pub const MAX_BATCH: usize = 512;

/// A row ready to insert, hash computed.
pub(crate) struct EventRow<'a> {
    pub position: i64,
    pub stream_version: i64,
    pub request: &'a AppendRequest,
    pub index: usize,
    pub recorded_at_us: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The SQL one backend needs to append, on a connection owned by the appender.
#[async_trait]
pub(crate) trait BatchTx: Send {
    /// Begins a write transaction and locks the head of the log: its position and hash, and the
    /// last recorded time (microseconds).
    async fn begin(&mut self) -> Result<(Head, i64), StoreError>;
    async fn savepoint(&mut self) -> Result<(), StoreError>;
    async fn release_savepoint(&mut self) -> Result<(), StoreError>;
    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError>;
    /// The stream and outcome of a command id already applied.
    async fn find_command(&mut self, command_id: Uuid) -> Result<Option<(Uuid, AppendOutcome)>, StoreError>;
    async fn stream_version(&mut self, stream_id: Uuid) -> Result<i64, StoreError>;
    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<(), StoreError>;
    async fn set_stream_version(&mut self, request: &AppendRequest, version: i64) -> Result<(), StoreError>;
    async fn insert_command(
        &mut self,
        request: &AppendRequest,
        outcome: &AppendOutcome,
        recorded_at_us: i64,
    ) -> Result<(), StoreError>;
    /// Moves the head (and its last recorded time), tells other processes, and commits durably.
    async fn commit(&mut self, head: &Head, recorded_at_us: i64) -> Result<(), StoreError>;
    async fn rollback(&mut self) -> Result<(), StoreError>;
    /// Replaces a connection that failed.
    async fn reconnect(&mut self) -> Result<(), StoreError>;
}

fn to_array(hash: &[u8]) -> Result<[u8; 32], StoreError> {
    hash.try_into().map_err(|_| StoreError::Corrupt { detail: "log head hash is not 32 bytes".to_owned() })
}

/// Whether a database error concerns the request alone (a constraint it broke), so that rolling
/// back to its savepoint leaves the transaction usable. Any other error may have undone the whole
/// transaction (SQLite rolls back on disk full, I/O errors or `RAISE(ROLLBACK)`): it is fatal
/// for the batch.
fn is_request_error(error: &StoreError) -> bool {
    use sqlx::error::ErrorKind;
    match error {
        StoreError::Database(e) => e.as_database_error().is_some_and(|d| {
            matches!(
                d.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            )
        }),
        _ => false,
    }
}

/// Checks one request and writes its rows, or explains why not. The inner result is the
/// request's own outcome (a conflict, a reused command id or a broken constraint, with nothing
/// written); the outer error is fatal for the whole batch.
async fn append_one<T: BatchTx + ?Sized>(
    tx: &mut T,
    head: &mut Head,
    request: &AppendRequest,
    recorded_at_us: i64,
) -> Result<Result<AppendOutcome, StoreError>, StoreError> {
    if let Some((stream_id, outcome)) = tx.find_command(request.command_id).await? {
        if stream_id != request.stream_id {
            return Ok(Err(StoreError::CommandIdReused { command_id: request.command_id, stream_id }));
        }
        return Ok(Ok(AppendOutcome { replayed: true, ..outcome }));
    }
    let current = tx.stream_version(request.stream_id).await?;
    if let ExpectedVersion::Exact(expected) = request.expected {
        if expected != current {
            return Ok(Err(StoreError::Conflict {
                stream_id: request.stream_id,
                expected: request.expected,
                actual: current,
            }));
        }
    }
    let mut prev = to_array(&head.hash)?;
    let mut rows = Vec::with_capacity(request.events.len());
    for (index, event) in request.events.iter().enumerate() {
        let position = head.position + 1 + index as i64;
        let stream_version = current + 1 + index as i64;
        let hash = event_hash(
            &prev,
            &HashInput {
                position,
                event_id: event.event_id,
                stream_id: request.stream_id,
                stream_type: &request.stream_type,
                stream_version,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: &event.metadata,
                command_id: Some(request.command_id),
                occurred_at_us: micros(event.occurred_at),
                recorded_at_us,
            },
        );
        rows.push(EventRow { position, stream_version, request, index, recorded_at_us, prev_hash: prev, hash });
        prev = hash;
    }
    let count = rows.len() as i64;
    let outcome = AppendOutcome {
        stream_version: current + count,
        first_position: (count > 0).then_some(head.position + 1),
        last_position: (count > 0).then_some(head.position + count),
        replayed: false,
    };
    tx.savepoint().await?;
    let written = async {
        tx.insert_events(&rows).await?;
        if count > 0 {
            tx.set_stream_version(request, outcome.stream_version).await?;
        }
        tx.insert_command(request, &outcome, recorded_at_us).await
    }
    .await;
    match written {
        Ok(()) => {
            tx.release_savepoint().await?;
            head.position += count;
            head.hash = prev.to_vec();
            Ok(Ok(outcome))
        }
        Err(e) if is_request_error(&e) => {
            tx.rollback_to_savepoint().await?;
            tx.release_savepoint().await?;
            Ok(Err(e))
        }
        Err(fatal) => Err(fatal),
    }
}

/// A batch written into an open transaction: the head and last recorded time to commit, and
/// each request's outcome.
pub(crate) struct Staged {
    pub head: Head,
    pub recorded_at_us: i64,
    pub results: Vec<Result<AppendOutcome, StoreError>>,
}

/// Begins a transaction and writes a batch into it, without committing. On error the caller
/// rolls the transaction back.
pub(crate) async fn stage_batch<T: BatchTx + ?Sized>(
    tx: &mut T,
    requests: &[&AppendRequest],
) -> Result<Staged, StoreError> {
    let (mut head, last_recorded_at_us) = tx.begin().await?;
    // One recorded time per transaction, never earlier than the last one: recorded times never
    // decrease along the log, whatever the clocks of the processes do.
    let recorded_at_us = micros(Utc::now()).max(last_recorded_at_us);
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        results.push(append_one(tx, &mut head, request, recorded_at_us).await?);
    }
    Ok(Staged { head, recorded_at_us, results })
}

/// Writes a batch in one transaction. The outer error means the whole batch failed.
pub(crate) async fn write_batch<T: BatchTx + ?Sized>(
    tx: &mut T,
    requests: &[&AppendRequest],
) -> Result<(Head, Vec<Result<AppendOutcome, StoreError>>), StoreError> {
    let staged = stage_batch(tx, requests).await?;
    tx.commit(&staged.head, staged.recorded_at_us).await?;
    Ok((staged.head, staged.results))
}

/// Rolls back a failed transaction, replacing the connection if even that fails.
async fn recover<T: BatchTx + ?Sized>(tx: &mut T) {
    if tx.rollback().await.is_err() {
        if let Err(e) = tx.reconnect().await {
            tracing::error!(error = %e, "appender could not reconnect");
        }
    }
}

struct Job {
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

fn advance(positions: &watch::Sender<i64>, position: i64) {
    positions.send_if_modified(|p| {
        let moved = position > *p;
        *p = (*p).max(position);
        moved
    });
}

/// The handle callers append through.
#[derive(Clone)]
pub(crate) struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl Appender {
    pub(crate) fn spawn<T: BatchTx + 'static>(mut tx: T, positions: watch::Sender<i64>) -> (Self, JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let task = tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(MAX_BATCH);
            while receiver.recv_many(&mut jobs, MAX_BATCH).await > 0 {
                let requests: Vec<&AppendRequest> = jobs.iter().map(|j| &j.request).collect();
                match write_batch(&mut tx, &requests).await {
                    Ok((head, results)) => {
                        advance(&positions, head.position);
                        for (job, result) in jobs.drain(..).zip(results) {
                            let _ = job.reply.send(result);
                        }
                    }
                    Err(error) => {
                        tracing::error!(error = %error, batch.size = jobs.len(), "append batch failed");
                        recover(&mut tx).await;
                        if jobs.len() == 1 {
                            for job in jobs.drain(..) {
                                let _ = job.reply.send(Err(error.clone()));
                            }
                            continue;
                        }
                        // One request may have broken the whole transaction: retry each alone,
                        // so only the culprit fails.
                        for job in jobs.drain(..) {
                            let result = match write_batch(&mut tx, &[&job.request]).await {
                                Ok((head, mut results)) => {
                                    advance(&positions, head.position);
                                    results.pop().unwrap_or(Err(StoreError::Closed))
                                }
                                Err(error) => {
                                    recover(&mut tx).await;
                                    Err(error)
                                }
                            };
                            let _ = job.reply.send(result);
                        }
                    }
                }
            }
        });
        (Self { jobs: sender }, task)
    }

    pub(crate) async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { request, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
