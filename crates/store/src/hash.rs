//! The hash chain: `hash = SHA-256(prev_hash ‖ canonical bytes of the stored event)`.
//!
//! The canonical bytes are a length-prefixed concatenation of every stored field, so that no
//! two different events can encode alike, and the same event hashes alike on both backends.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev_hash` of the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// The fields of an event that the chain covers.
pub struct HashInput<'a> {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    pub stream_version: i64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub payload: &'a [u8],
    pub metadata: &'a [u8],
    pub command_id: Option<Uuid>,
    pub occurred_at_us: i64,
    pub recorded_at_us: i64,
}

fn put_bytes(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

pub fn event_hash(prev_hash: &[u8], e: &HashInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cachet-event-v1");
    put_bytes(&mut h, prev_hash);
    h.update(e.position.to_be_bytes());
    h.update(e.event_id.as_bytes());
    h.update(e.stream_id.as_bytes());
    put_bytes(&mut h, e.stream_type.as_bytes());
    h.update(e.stream_version.to_be_bytes());
    put_bytes(&mut h, e.event_type.as_bytes());
    h.update(e.schema_version.to_be_bytes());
    put_bytes(&mut h, e.payload);
    put_bytes(&mut h, e.metadata);
    match e.command_id {
        Some(id) => {
            h.update([1]);
            h.update(id.as_bytes());
        }
        None => h.update([0]),
    }
    h.update(e.occurred_at_us.to_be_bytes());
    h.update(e.recorded_at_us.to_be_bytes());
    h.finalize().into()
}

impl<'a> From<&'a crate::StoredEvent> for HashInput<'a> {
    fn from(e: &'a crate::StoredEvent) -> Self {
        HashInput {
            position: e.position,
            event_id: e.event_id,
            stream_id: e.stream_id,
            stream_type: &e.stream_type,
            stream_version: e.stream_version,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            payload: &e.payload,
            metadata: &e.metadata,
            command_id: e.command_id,
            occurred_at_us: crate::micros(e.occurred_at),
            recorded_at_us: crate::micros(e.recorded_at),
        }
    }
}
