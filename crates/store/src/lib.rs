//! The event store of Cachet: an append-only, hash-chained log with one global order, on SQLite
//! (embedded default) and PostgreSQL (production, several server processes).
//!
//! Guarantees (see `shared/event-store.md`): the database refuses UPDATE and DELETE of events;
//! every append states the stream version it expects; a command id is applied at most once,
//! forever; positions are gap-free and become visible in order, so a reader following
//! `position > checkpoint` never skips an event; each event's hash chains the exact stored bytes;
//! an append is acknowledged only after its transaction is durably committed.
//!
//! Appends go through one [`appender`] task per process that commits concurrent requests together
//! (group commit); reads use a connection pool.

pub mod appender;
pub mod bundle;
pub mod error;
pub mod hash;
pub mod merkle;
mod pgcopy;
pub mod postgres;
pub mod reader;
pub mod sqlite;
pub mod typed;
pub mod verify;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use compact_str::CompactString;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio::sync::watch;
use uuid::Uuid;

pub use error::StoreError;

/// The stream version an append expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever the version is (only for streams with a single writer by construction).
    Any,
    /// Exactly this version; `Exact(0)` means the stream must not exist yet.
    Exact(i64),
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// An event to append, already encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    /// Canonical bytes, stored and hashed as they are.
    pub payload: Vec<u8>,
    /// Canonical JSON bytes of [`typed::Metadata`].
    pub metadata: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
}

/// One command's events for one stream, appended atomically or not at all.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    pub stream_id: Uuid,
    pub stream_type: String,
    pub expected: ExpectedVersion,
    /// The idempotency key: a second append with the same id appends nothing and returns the
    /// first outcome.
    pub command_id: Uuid,
    pub events: Vec<NewEvent>,
    /// Other streams the decision read, at the versions it read them: the append happens only if
    /// each is still there, checked under the same lock as `expected`.
    pub read_guards: Vec<ReadGuard>,
}

/// A stream a command read without writing to it, and the version it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadGuard {
    pub stream_id: Uuid,
    pub version: i64,
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the command.
    pub stream_version: i64,
    /// The global positions of the command's events, when it had any.
    pub first_position: Option<i64>,
    pub last_position: Option<i64>,
    /// True when the command id had been applied before and nothing was appended now.
    pub replayed: bool,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Vec<u8>,
    pub metadata: Vec<u8>,
    pub command_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// What a fold needs of an event: no metadata, ids or hashes. Replays that only rebuild states
/// read these ([`EventStore::replay_from`]): a third of the bytes of a [`StoredEvent`], and
/// fewer allocations: the type names, all short, are kept inline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayEvent {
    pub position: i64,
    pub stream_id: Uuid,
    pub stream_type: CompactString,
    pub stream_version: i64,
    pub event_type: CompactString,
    pub schema_version: i32,
    /// Shared with the other events of its read where it can be: a slice of the message or
    /// the buffer it came in.
    pub payload: Bytes,
    pub recorded_at: DateTime<Utc>,
}

impl From<StoredEvent> for ReplayEvent {
    fn from(e: StoredEvent) -> Self {
        ReplayEvent {
            position: e.position,
            stream_id: e.stream_id,
            stream_type: e.stream_type.into(),
            stream_version: e.stream_version,
            event_type: e.event_type.into(),
            schema_version: e.schema_version,
            payload: e.payload.into(),
            recorded_at: e.recorded_at,
        }
    }
}

/// The end of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub position: i64,
    pub hash: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store, as every other crate sees it.
#[async_trait]
pub trait EventStore: Send + Sync {
    fn backend(&self) -> Backend;

    /// Appends one command's events, durably, or fails with a conflict and appends nothing.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// The events of one stream in version order.
    async fn read_stream(&self, stream_id: Uuid) -> Result<Vec<StoredEvent>, StoreError>;

    /// The events of one stream in version order, with only what a fold needs: what the command
    /// path reads before deciding ([`typed::load`]).
    async fn read_stream_to_fold(&self, stream_id: Uuid) -> Result<Vec<ReplayEvent>, StoreError> {
        Ok(self.read_stream(stream_id).await?.into_iter().map(ReplayEvent::from).collect())
    }

    /// Up to `limit` events with a position greater than `after`, in order.
    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError>;

    /// The last committed position and hash.
    async fn head(&self) -> Result<Head, StoreError>;

    /// The outcome of a command id already applied, if it was.
    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError>;

    /// A receiver that changes whenever events are committed, holding the latest known position
    /// (from this process, and on PostgreSQL from every process through LISTEN/NOTIFY).
    fn subscribe(&self) -> watch::Receiver<i64>;

    /// Every event after `after`, in order, streamed with bounded memory: replays, rebuilds,
    /// verification and audits go through it. It sees at least every event committed when it
    /// starts, and never skips one (positions are gap-free and committed in order). The default
    /// reads [`read_all`](EventStore::read_all) batches; the backends stream faster.
    fn stream_from(&self, after: i64) -> BoxStream<'_, Result<StoredEvent, StoreError>> {
        stream_batched(self, after)
    }

    /// Every event after `after`, in order, reduced to what a fold needs, in chunks of up to
    /// [`REPLAY_CHUNK`]: the same guarantees as [`stream_from`](EventStore::stream_from). The
    /// default reduces `stream_from`'s events; the backends read only those columns.
    fn replay_from(&self, after: i64) -> BoxStream<'_, Result<Vec<ReplayEvent>, StoreError>> {
        self.stream_from(after).map_ok(ReplayEvent::from).try_chunks(REPLAY_CHUNK).map_err(|e| e.1).boxed()
    }
}

/// The most events in one chunk of [`EventStore::replay_from`].
pub const REPLAY_CHUNK: usize = 4_096;

/// The size of the batches [`stream_batched`] reads.
pub const READ_BATCH: i64 = 1_000;

/// Every event after `after`, in order: [`EventStore::stream_from`].
pub fn stream_all(store: &dyn EventStore, after: i64) -> BoxStream<'_, Result<StoredEvent, StoreError>> {
    store.stream_from(after)
}

/// Every event after `after`, in order, read in batches of [`READ_BATCH`] through
/// [`EventStore::read_all`].
pub fn stream_batched<S: EventStore + ?Sized>(store: &S, after: i64) -> BoxStream<'_, Result<StoredEvent, StoreError>> {
    stream::try_unfold((after, false), move |(after, done)| async move {
        if done {
            return Ok::<_, StoreError>(None);
        }
        let batch = store.read_all(after, READ_BATCH).await?;
        let next = batch.last().map_or(after, |e| e.position);
        let done = (batch.len() as i64) < READ_BATCH;
        Ok(Some((stream::iter(batch.into_iter().map(Ok::<_, StoreError>)), (next, done))))
    })
    .try_flatten()
    .boxed()
}

/// The items of a channel of chunks, one by one: the backends read on a thread or task of their
/// own and hand events over in chunks.
pub(crate) fn stream_of_chunks<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<Result<Vec<T>, StoreError>>,
) -> BoxStream<'static, Result<T, StoreError>> {
    chunks_of(receiver)
        .map(|chunk| match chunk {
            Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
            Err(e) => stream::once(async move { Err(e) }).right_stream(),
        })
        .flatten()
        .boxed()
}

/// The chunks of a channel, as a stream.
pub(crate) fn chunks_of<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<Result<Vec<T>, StoreError>>,
) -> BoxStream<'static, Result<Vec<T>, StoreError>> {
    stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) }).boxed()
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt { detail: format!("timestamp {us} out of range") })
}
