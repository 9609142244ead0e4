//! Event payloads exchanged between services: versioned, serde-tagged structs whose tag is
//! their routing key (sharded events add `.{shard}`). They carry plain data (strings, ids,
//! times), so the wire format only changes on purpose.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::envelope::Event;

/// A verified incoming-message webhook (ingress → session, per-customer shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "inbound.received.v1")]
pub struct InboundReceivedV1 {
    /// The Twilio account channel it came in on.
    pub channel_id: String,
    /// Twilio's MessageSid.
    pub message_sid: String,
    /// The ordering key (channel and customer); its hash picked the shard.
    pub ordering_key: String,
    /// The shard queue it was routed to.
    pub shard: u16,
    /// When ingress accepted it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// `I-Twilio-Idempotency-Token`, for correlating Twilio's retries.
    pub idempotency_token: Option<String>,
    /// The verified webhook form, unchanged.
    pub params: Vec<(String, String)>,
}

impl Event for InboundReceivedV1 {
    fn routing_key(&self) -> String {
        format!("inbound.received.v1.{}", self.shard)
    }
}

/// A verified status callback (ingress → session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "status.received.v1")]
pub struct StatusReceivedV1 {
    /// The Twilio account channel it came in on.
    pub channel_id: String,
    /// Our outbound message's Twilio SID.
    pub message_sid: String,
    /// `MessageStatus`.
    pub status: String,
    /// `ErrorCode`.
    pub error_code: Option<u32>,
    /// `ErrorMessage` or `ChannelStatusMessage`.
    pub error_message: Option<String>,
    /// When ingress accepted it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

impl Event for StatusReceivedV1 {
    fn routing_key(&self) -> String {
        "status.received.v1".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn envelopes_carry_the_tag_and_round_trip() {
        let event = InboundReceivedV1 {
            channel_id: "c".into(),
            message_sid: "SM1".into(),
            ordering_key: "c|+1".into(),
            shard: 3,
            received_at: time::macros::datetime!(2026-11-26 10:00 UTC),
            idempotency_token: None,
            params: vec![("Body".into(), "hi".into())],
        };
        let envelope = Envelope::new(event.clone());
        let json: serde_json::Value =
            serde_json::from_slice(&envelope.to_bytes()).unwrap_or_default();
        assert_eq!(json["type"], "inbound.received.v1");
        assert_eq!(json["schema_version"], 1);
        assert_eq!(envelope.payload.routing_key(), "inbound.received.v1.3");
        let back = Envelope::<InboundReceivedV1>::from_bytes(&envelope.to_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.payload, event);
    }
}
