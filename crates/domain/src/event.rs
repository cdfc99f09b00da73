//! What every event shares: who caused it, its type name and schema version, and its canonical
//! encoding (the exact bytes the store keeps and hashes).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::CandidateId;

/// The role of a staff account. Auditors may read everything and change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Staff,
    Admin,
    Auditor,
}

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    Candidate { candidate_id: CandidateId },
    Staff { account: String, role: StaffRole },
    System { component: String },
}

impl Actor {
    /// A short French description for timelines, without personal data.
    pub fn describe(&self) -> String {
        match self {
            Actor::Candidate { .. } => "le candidat".to_owned(),
            Actor::Staff { account, role: StaffRole::Auditor } => format!("l'auditeur {account}"),
            Actor::Staff { account, role: StaffRole::Admin } => format!("l'administrateur {account}"),
            Actor::Staff { account, role: StaffRole::Staff } => format!("le service concours ({account})"),
            Actor::System { component } => format!("le système ({component})"),
        }
    }
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("unknown schema version {version} of event type {event_type}")]
    UnknownVersion { event_type: String, version: u16 },
    #[error("event type column {column} does not match payload type {payload}")]
    TypeMismatch { column: String, payload: String },
    #[error("malformed payload of event type {event_type}: {source}")]
    Malformed { event_type: String, source: serde_json::Error },
}

/// An event of one stream type, with its canonical encoding.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone {
    /// The kind of stream these events belong to (`dossier`, `session`).
    const STREAM_TYPE: &'static str;
    /// The schema version written for new events of every type of this stream.
    const SCHEMA_VERSION: u16 = 1;

    /// The stable type name, also the `type` field of the payload.
    fn event_type(&self) -> &'static str;

    /// The canonical bytes: compact JSON with fields in declaration order. The store keeps and
    /// hashes exactly these bytes.
    fn encode(&self) -> Vec<u8> {
        // Serialising these plain data types cannot fail: no map has non-string keys.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes stored bytes, upcasting older schema versions first.
    fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<Self, DecodeError> {
        if schema_version != Self::SCHEMA_VERSION {
            // No event type has changed shape yet: the first upcaster goes here, as a function
            // from the old `serde_json::Value` to the new one.
            return Err(DecodeError::UnknownVersion { event_type: event_type.to_owned(), version: schema_version });
        }
        let event: Self = serde_json::from_slice(payload)
            .map_err(|source| DecodeError::Malformed { event_type: event_type.to_owned(), source })?;
        if event.event_type() != event_type {
            return Err(DecodeError::TypeMismatch {
                column: event_type.to_owned(),
                payload: event.event_type().to_owned(),
            });
        }
        Ok(event)
    }
}
