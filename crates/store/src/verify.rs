//! Verifies the hash chain over the whole store, streaming, and names the first position where
//! it breaks: an altered field, a deleted, swapped or forged event, or a truncated tail.

use futures::TryStreamExt;
use uuid::Uuid;

use crate::hash::{event_hash, HashInput, GENESIS};
use crate::{stream_all, EventStore, Head, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// The position expected next is absent: an event was deleted or renumbered.
    Gap { found: i64 },
    /// The stored `prev_hash` is not the hash of the event before.
    PrevHashMismatch,
    /// The stored bytes do not hash to the stored `hash`: the event was altered.
    HashMismatch,
    /// The log head names a position or hash the events do not end with (tail truncated, or
    /// the head itself altered).
    HeadMismatch { head_position: i64, last_position: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    pub position: i64,
    pub stream_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub kind: BreakKind,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.kind {
            BreakKind::Gap { found } => format!("missing event (the next stored position is {found})"),
            BreakKind::PrevHashMismatch => "prev_hash does not match the previous event".to_owned(),
            BreakKind::HashMismatch => "stored bytes do not match the stored hash".to_owned(),
            BreakKind::HeadMismatch { head_position, last_position } => {
                format!("log head at {head_position} but the chain ends at {last_position}")
            }
        };
        write!(f, "chain broken at position {}: {what}", self.position)?;
        if let Some(stream) = self.stream_id {
            write!(f, " (stream {stream}")?;
            if let Some(event) = self.event_id {
                write!(f, ", event {event}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked.
    pub checked: u64,
    /// The head the check ran up to.
    pub head: Head,
    pub first_break: Option<ChainBreak>,
}

/// Recomputes the chain up to the head read at the start; `progress` gets each checked position.
pub async fn verify_chain(store: &dyn EventStore, mut progress: impl FnMut(i64)) -> Result<ChainReport, StoreError> {
    let head = store.head().await?;
    let mut expected = 1_i64;
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let mut checked = 0_u64;
    let mut events = stream_all(store, 0);
    while let Some(event) = events.try_next().await? {
        if event.position > head.position {
            break;
        }
        let at = |kind| ChainBreak {
            position: event.position,
            stream_id: Some(event.stream_id),
            event_id: Some(event.event_id),
            kind,
        };
        if event.position != expected {
            let found = event.position;
            return Ok(ChainReport {
                checked,
                head,
                first_break: Some(ChainBreak {
                    position: expected,
                    kind: BreakKind::Gap { found },
                    ..at(BreakKind::HashMismatch)
                }),
            });
        }
        let first_break = if event.prev_hash != prev {
            Some(at(BreakKind::PrevHashMismatch))
        } else if event_hash(&prev, &HashInput::from(&event))[..] != event.hash[..] {
            Some(at(BreakKind::HashMismatch))
        } else {
            None
        };
        if first_break.is_some() {
            return Ok(ChainReport { checked, head, first_break });
        }
        prev = event.hash.clone();
        expected += 1;
        checked += 1;
        progress(event.position);
    }
    let last_position = expected - 1;
    let first_break = (last_position != head.position || prev != head.hash).then(|| ChainBreak {
        position: last_position + 1,
        stream_id: None,
        event_id: None,
        kind: BreakKind::HeadMismatch { head_position: head.position, last_position },
    });
    Ok(ChainReport { checked, head, first_break })
}
