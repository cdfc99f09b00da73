//! What every event shares: who caused it, its type name and schema version, and its canonical
//! encoding (the exact bytes the store keeps and hashes).

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
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

    /// Decodes a payload whose type is already known from the store's `event_type` column.
    /// The derived decoding of an internally tagged enum buffers every field before it can see
    /// the tag; an event type can instead decode straight into its variant, with
    /// [`ByType`]. The default is the derived decoding.
    fn decode_by_type(event_type: &str, payload: &[u8]) -> Result<Self, serde_json::Error> {
        let _ = event_type;
        serde_json::from_slice(payload)
    }

    /// Decodes stored bytes, upcasting older schema versions first.
    fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<Self, DecodeError> {
        if schema_version != Self::SCHEMA_VERSION {
            // No event type has changed shape yet: the first upcaster goes here, as a function
            // from the old `serde_json::Value` to the new one.
            return Err(DecodeError::UnknownVersion { event_type: event_type.to_owned(), version: schema_version });
        }
        if canonical_tag_is(payload, event_type) {
            // The canonical encoding starts with the tag: the payload's type is the column's.
            return Self::decode_by_type(event_type, payload)
                .map_err(|source| DecodeError::Malformed { event_type: event_type.to_owned(), source });
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

/// True when `payload` starts as the canonical encoding of an event of type `event_type` does:
/// `{"type":"<event_type>"`.
fn canonical_tag_is(payload: &[u8], event_type: &str) -> bool {
    const OPEN: &[u8] = b"{\"type\":\"";
    payload
        .strip_prefix(OPEN)
        .and_then(|rest| rest.strip_prefix(event_type.as_bytes()))
        .is_some_and(|rest| rest.first() == Some(&b'"'))
}

/// A stored payload presented as an externally tagged enum whose variant is the event type read
/// from the store's column: a shadow of the event enum, derived with `#[serde(remote = …)]` and
/// no tag attribute, then decodes each variant's fields straight from the JSON object (the
/// `type` field is skipped as unknown). Used by [`DomainEvent::decode_by_type`].
pub struct ByType<'a, 'de> {
    event_type: &'a str,
    json: serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
}

impl<'a, 'de> ByType<'a, 'de> {
    /// Decodes `payload` as the variant `event_type` with `decode`, a remote derive's
    /// `deserialize`, and checks that nothing follows the object.
    pub fn decode<T>(
        event_type: &'a str,
        payload: &'de [u8],
        decode: impl FnOnce(&mut Self) -> Result<T, serde_json::Error>,
    ) -> Result<T, serde_json::Error> {
        let mut by_type = ByType { event_type, json: serde_json::Deserializer::from_slice(payload) };
        let value = decode(&mut by_type)?;
        by_type.json.end()?;
        Ok(value)
    }
}

impl<'de> Deserializer<'de> for &mut ByType<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("an event payload decodes only as an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for &mut ByType<'_, 'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Self::Error> {
        let variant = seed.deserialize(de::value::StrDeserializer::<serde_json::Error>::new(self.event_type))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut ByType<'_, 'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        // `{"type":"Transferred"}`: nothing but the tag.
        IgnoredAny::deserialize(&mut self.json).map(|_| ())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Self::Error> {
        seed.deserialize(&mut self.json)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        (&mut self.json).deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        (&mut self.json).deserialize_struct("", fields, visitor)
    }
}
