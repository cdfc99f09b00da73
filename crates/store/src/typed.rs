//! Typed access: encode domain events with their metadata for an append, and decode a stream
//! back into domain events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cachet_domain::event::DomainEvent;
use cachet_domain::Actor;

use crate::{AppendRequest, EventStore, ExpectedVersion, NewEvent, ReplayEvent, StoreError, StoredEvent};

/// Who caused an event and in answer to what: stored beside the payload and hashed with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Actor,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

impl Metadata {
    pub fn encode(&self) -> Vec<u8> {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { detail: format!("metadata: {e}") })
    }
}

/// Builds the append of one command's domain events.
pub fn append_request<E: DomainEvent>(
    stream_id: Uuid,
    expected: ExpectedVersion,
    metadata: &Metadata,
    occurred_at: DateTime<Utc>,
    events: &[E],
) -> AppendRequest {
    let metadata_bytes = metadata.encode();
    AppendRequest {
        stream_id,
        stream_type: E::STREAM_TYPE.to_owned(),
        expected,
        command_id: metadata.command_id,
        events: events
            .iter()
            .map(|e| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: e.event_type().to_owned(),
                schema_version: i32::from(E::SCHEMA_VERSION),
                payload: e.encode(),
                metadata: metadata_bytes.clone(),
                occurred_at,
            })
            .collect(),
        read_guards: Vec::new(),
    }
}

/// Decodes one stored event.
pub fn decode<E: DomainEvent>(stored: &StoredEvent) -> Result<E, StoreError> {
    decode_at(stored.position, &stored.event_type, stored.schema_version, &stored.payload)
}

/// Decodes one event read by a replay.
pub fn decode_replayed<E: DomainEvent>(replayed: &ReplayEvent) -> Result<E, StoreError> {
    decode_at(replayed.position, &replayed.event_type, replayed.schema_version, &replayed.payload)
}

fn decode_at<E: DomainEvent>(
    position: i64,
    event_type: &str,
    schema_version: i32,
    payload: &[u8],
) -> Result<E, StoreError> {
    let version = u16::try_from(schema_version).map_err(|_| StoreError::Corrupt {
        detail: format!("schema version {schema_version} at position {position}"),
    })?;
    E::decode(event_type, version, payload)
        .map_err(|e| StoreError::Corrupt { detail: format!("position {position}: {e}") })
}

/// Reads and decodes a whole stream: its events and its current version (0 if it does not exist).
pub async fn load<E: DomainEvent>(store: &dyn EventStore, stream_id: Uuid) -> Result<(Vec<E>, i64), StoreError> {
    let stored = store.read_stream_to_fold(stream_id).await?;
    let version = stored.last().map_or(0, |e| e.stream_version);
    let events = stored.iter().map(decode_replayed).collect::<Result<Vec<E>, _>>()?;
    Ok((events, version))
}
