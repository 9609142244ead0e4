//! The versioned wrapper every event travels in.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// An event payload: a serde-tagged type with its routing key.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    /// Returns the routing key on the events exchange (`<stream>.<event>.v<N>[.<shard>]`).
    fn routing_key(&self) -> String;

    /// Returns the aggregate whose events must stay in order (a conversation, a message, an
    /// agent). The outbox relays publish the events of one key in order and different keys in
    /// parallel.
    fn order_key(&self) -> String;
}

/// The JSON envelope: a unique id (consumers dedupe on it), when it happened, the schema
/// version, and the event under `event` (with its `type` tag). The event is nested, not
/// flattened, so its own fields can never collide with the envelope's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope<T> {
    /// Unique per event; a republished event keeps it.
    pub message_id: Uuid,
    /// When the event happened (not when it was published).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Envelope schema version.
    pub schema_version: u16,
    /// The event itself.
    #[serde(rename = "event")]
    pub payload: T,
}

impl<T: Event> Envelope<T> {
    /// Wraps `payload` with a fresh id and the current time.
    pub fn new(payload: T) -> Self {
        Self::at(payload, OffsetDateTime::now_utc())
    }

    /// Wraps `payload` as having happened at `occurred_at`.
    pub fn at(payload: T, occurred_at: OffsetDateTime) -> Self {
        Self {
            message_id: Uuid::now_v7(),
            occurred_at,
            schema_version: 1,
            payload,
        }
    }

    /// Serializes to JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
