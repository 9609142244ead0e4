//! Event payloads exchanged between services: versioned, serde-tagged structs whose tag is
//! their routing key (sharded events add `.{shard}`). They carry plain data (strings, ids,
//! times), so the wire format only changes on purpose.

use serde::{Deserialize, Serialize};
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::ids::{
    AgentId, BotId, ChannelId, ConversationId, CustomerId, MessageId, NumberId, OfferId, QueueId, TurnId, WorkstreamId,
};
use switchboard_domain::message::{AuthorKind, Direction};
use switchboard_domain::routing::Presence;
use switchboard_domain::routing::offer::OfferState;
use time::OffsetDateTime;

use crate::envelope::Event;

/// A verified incoming-message webhook (ingress → session, per-customer shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "inbound.received.v1")]
pub struct InboundReceivedV1 {
    /// The Twilio account channel it came in on.
    pub channel_id: ChannelId,
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

    fn order_key(&self) -> String {
        self.ordering_key.clone()
    }
}

/// A verified status callback (ingress → session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "status.received.v1")]
pub struct StatusReceivedV1 {
    /// The Twilio account channel it came in on.
    pub channel_id: ChannelId,
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

    fn order_key(&self) -> String {
        self.message_sid.clone()
    }
}

/// Implements [`Event`] with a fixed routing key, ordered by the field `$order`.
macro_rules! fixed_key {
    ($ty:ty, $key:literal, $order:ident) => {
        impl Event for $ty {
            fn routing_key(&self) -> String {
                $key.into()
            }

            fn order_key(&self) -> String {
                self.$order.to_string()
            }
        }
    };
}

/// A conversation entered Open: new, or reopened from Waiting by a customer message
/// (session → routing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.opened.v1")]
pub struct ConversationOpenedV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Twilio account channel.
    pub channel_id: ChannelId,
    /// WhatsApp number.
    pub number_id: NumberId,
    /// The number's workstream, if set.
    pub workstream_id: Option<WorkstreamId>,
    /// Customer record.
    pub customer_id: CustomerId,
    /// Customer phone (E.164), when shared.
    pub customer_phone: Option<String>,
    /// The customer's WhatsApp BSUID (`CC.…`), when Twilio sent one (always, for customers known
    /// only by username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_bsuid: Option<String>,
    /// WhatsApp profile name.
    pub profile_name: Option<String>,
    /// The number's default language.
    pub language: String,
    /// The message that opened (or reopened) it.
    pub first_message: String,
    /// The payload of the button the customer tapped in that message (a quick reply or
    /// call to action), if any: classification rules see it as `button.payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_payload: Option<String>,
    /// Context variables and classification attributes so far.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Reopened from Waiting (the previous agent may get it back by affinity).
    pub reopened: bool,
    /// The agent it had, when reopened.
    pub previous_agent_id: Option<AgentId>,
    /// When the customer last wrote (FIFO age for async channels).
    #[serde(with = "time::serde::rfc3339")]
    pub last_customer_message_at: OffsetDateTime,
}
fixed_key!(ConversationOpenedV1, "conversation.opened.v1", conversation_id);

/// A conversation's status changed (session → routing, api).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.status_changed.v1")]
pub struct ConversationStatusChangedV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// WhatsApp number.
    pub number_id: NumberId,
    /// Workstream.
    pub workstream_id: Option<WorkstreamId>,
    /// Status before.
    pub from: ConversationStatus,
    /// Status after.
    pub to: ConversationStatus,
    /// What happened (accept, end, close_session, auto_close, …).
    pub transition: String,
    /// The status-change reason.
    pub reason: String,
    /// The agent (current, or last when closed).
    pub agent_id: Option<AgentId>,
    /// The queue.
    pub queue_id: Option<QueueId>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
fixed_key!(ConversationStatusChangedV1, "conversation.status_changed.v1", conversation_id);

/// A message was added to a conversation (session → api live view, bots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.message.v1")]
pub struct ConversationMessageV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Message.
    pub message_id: MessageId,
    /// Global order.
    pub seq: i64,
    /// inbound, outbound, note.
    pub direction: Direction,
    /// customer, agent, bot, automated, system.
    pub author_kind: AuthorKind,
    /// Text.
    pub body: String,
    /// Delivery status.
    pub status: String,
    /// The conversation's agent, for routing the event to them.
    pub agent_id: Option<AgentId>,
    /// The conversation's bot, when a bot has it.
    pub bot_id: Option<BotId>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
fixed_key!(ConversationMessageV1, "conversation.message.v1", conversation_id);

/// An outbound message's delivery status moved forward (session → api live view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "message.status.v1")]
pub struct MessageStatusV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Message.
    pub message_id: MessageId,
    /// New status.
    pub status: String,
    /// Twilio error code (failures).
    pub error_code: Option<u32>,
    /// Human explanation (failures).
    pub error_message: Option<String>,
    /// The conversation's agent.
    pub agent_id: Option<AgentId>,
}
fixed_key!(MessageStatusV1, "message.status.v1", conversation_id);

/// A customer's 24-hour window is about to close on a conversation an agent holds (session →
/// api live view): after `closes_at` only an approved template reaches them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.window_closing.v1")]
pub struct ConversationWindowClosingV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The conversation's agent.
    pub agent_id: Option<AgentId>,
    /// Its queue.
    pub queue_id: Option<QueueId>,
    /// When the window closes.
    #[serde(with = "time::serde::rfc3339")]
    pub closes_at: OffsetDateTime,
    /// The number's approved templates in the customer's language, as `name (language)`.
    pub templates: Vec<String>,
}
fixed_key!(ConversationWindowClosingV1, "conversation.window_closing.v1", conversation_id);

/// The assigned agent is typing (session → api live view, and sender when the customer should
/// see it). Sent at most every 20 seconds per conversation while the agent types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.typing.v1")]
pub struct ConversationTypingV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The agent typing.
    pub agent_id: AgentId,
    /// Its queue.
    pub queue_id: Option<QueueId>,
    /// Twilio account channel.
    pub channel_id: ChannelId,
    /// The customer's message Twilio's typing indicator names (it also marks it read); none:
    /// the customer is not shown (policy `never`, or the window closed).
    pub indicator_message_sid: Option<String>,
}
fixed_key!(ConversationTypingV1, "conversation.typing.v1", conversation_id);

/// The business marked the customer's messages read (session → api live view, and sender, which
/// asks Twilio to show it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.read.v1")]
pub struct ConversationReadV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The agent who read them.
    pub agent_id: AgentId,
    /// Its queue.
    pub queue_id: Option<QueueId>,
    /// Twilio account channel.
    pub channel_id: ChannelId,
    /// The latest customer message read (those before it are read too).
    pub indicator_message_sid: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub read_at: OffsetDateTime,
}
fixed_key!(ConversationReadV1, "conversation.read.v1", conversation_id);

/// What the sender puts in the Twilio request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundContent {
    /// `Body`.
    Text {
        /// Text.
        body: String,
    },
    /// `MediaUrl` (+ `Body` caption).
    Media {
        /// URL Twilio fetches.
        url: String,
        /// MIME type.
        content_type: String,
        /// Text shown under the media; none: the media alone.
        caption: Option<String>,
    },
    /// `ContentSid` + `ContentVariables`.
    Template {
        /// HX… SID.
        content_sid: String,
        /// JSON string.
        variables_json: String,
    },
}

/// Send one message through Twilio (session → sender).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "outbound.send.v1")]
pub struct OutboundSendV1 {
    /// Our message id (the sender's idempotency key).
    pub message_id: MessageId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Twilio account channel (credentials).
    pub channel_id: ChannelId,
    /// Sending number.
    pub number_id: NumberId,
    /// `From` (`whatsapp:+…`).
    pub from: String,
    /// `To` (`whatsapp:…`).
    pub to: String,
    /// What to send.
    pub content: OutboundContent,
    /// `StatusCallback`.
    pub status_callback: String,
    /// Sends per second allowed from this number (0: default).
    pub rate_per_second: f64,
}
fixed_key!(OutboundSendV1, "outbound.send.v1", message_id);

/// Do not send a message still waiting to be sent (its number was deleted) (session → sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "outbound.cancelled.v1")]
pub struct OutboundCancelledV1 {
    /// Our message id.
    pub message_id: MessageId,
}
fixed_key!(OutboundCancelledV1, "outbound.cancelled.v1", message_id);

/// Twilio accepted a message (sender → session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "outbound.accepted.v1")]
pub struct OutboundAcceptedV1 {
    /// Our message id.
    pub message_id: MessageId,
    /// Twilio account channel.
    pub channel_id: ChannelId,
    /// Twilio's SID.
    pub twilio_sid: String,
    /// Twilio's initial status (queued, accepted).
    pub status: String,
}
fixed_key!(OutboundAcceptedV1, "outbound.accepted.v1", message_id);

/// Twilio refused a message for good (sender → session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "outbound.failed.v1")]
pub struct OutboundFailedV1 {
    /// Our message id.
    pub message_id: MessageId,
    /// Twilio account channel.
    pub channel_id: ChannelId,
    /// Twilio error code.
    pub error_code: Option<u32>,
    /// Human explanation.
    pub error_message: String,
}
fixed_key!(OutboundFailedV1, "outbound.failed.v1", message_id);

/// A workstream's settings that session needs (routing → session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "workstream.updated.v1")]
pub struct WorkstreamUpdatedV1 {
    /// Workstream.
    pub workstream_id: WorkstreamId,
    /// "Auto-close after inactivity" for Waiting conversations, seconds.
    pub waiting_auto_close_secs: i64,
    /// The bot in front of its agents, if any.
    pub bot_id: Option<BotId>,
    /// Idle time after which a bot-only conversation closes, seconds.
    pub bot_inactivity_secs: i64,
    /// The workstream was deleted.
    pub deleted: bool,
    /// The workstream's default language (automated messages prefer it to the number's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,
    /// Auto-close of Open conversations, seconds (none: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_auto_close_secs: Option<i64>,
    /// Auto-close of Active conversations, seconds (none: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_auto_close_secs: Option<i64>,
    /// Auto-close of Wrap-up conversations, seconds (none: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_up_auto_close_secs: Option<i64>,
    /// The context variables it declares: name → `text` or `number`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub context_variables: std::collections::BTreeMap<String, String>,
    /// Read receipt and typing indicator policy: `on_open`, `on_typing` or `never` (none: the
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_receipts: Option<String>,
    /// The template sent when the window closes under an agent's message (63016): its name and
    /// variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_template: Option<WindowTemplateV1>,
}

/// A workstream's window template (in [`WorkstreamUpdatedV1`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTemplateV1 {
    /// Template name on the number.
    pub name: String,
    /// Placeholder values.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
}
fixed_key!(WorkstreamUpdatedV1, "workstream.updated.v1", workstream_id);

/// Fetch templates from Twilio's Content API now (api → sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "sender.command.sync_templates.v1")]
pub struct SyncTemplatesV1 {
    /// The channel to sync; every channel when absent.
    pub channel_id: Option<ChannelId>,
}
impl Event for SyncTemplatesV1 {
    fn routing_key(&self) -> String {
        "sender.command.sync_templates.v1".into()
    }

    fn order_key(&self) -> String {
        self.channel_id.map(|id| id.to_string()).unwrap_or_default()
    }
}

/// An agent was offered a work item (routing → api).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "offer.created.v1")]
pub struct OfferCreatedV1 {
    /// Offer.
    pub offer_id: OfferId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Agent.
    pub agent_id: AgentId,
    /// Queue.
    pub queue_id: Option<QueueId>,
    /// Workstream.
    pub workstream_id: Option<WorkstreamId>,
    /// When it expires (counts as a decline).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}
fixed_key!(OfferCreatedV1, "offer.created.v1", conversation_id);

/// An offer ended (routing → api).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "offer.closed.v1")]
pub struct OfferClosedV1 {
    /// Offer.
    pub offer_id: OfferId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Agent.
    pub agent_id: AgentId,
    /// accepted, declined, cancelled (an expiry is `offer.expired.v1`).
    pub state: OfferState,
}
fixed_key!(OfferClosedV1, "offer.closed.v1", conversation_id);

/// An offer timed out before the agent answered (routing → api); the item goes to the next agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "offer.expired.v1")]
pub struct OfferExpiredV1 {
    /// Offer.
    pub offer_id: OfferId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Agent the offer was made to.
    pub agent_id: AgentId,
}
fixed_key!(OfferExpiredV1, "offer.expired.v1", conversation_id);

/// A conversation got its agent (routing → api).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "conversation.assigned.v1")]
pub struct ConversationAssignedV1 {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Agent.
    pub agent_id: AgentId,
    /// Queue.
    pub queue_id: Option<QueueId>,
    /// accept, pick or supervisor_assign.
    pub how: String,
}
fixed_key!(ConversationAssignedV1, "conversation.assigned.v1", conversation_id);

/// An agent's presence changed (routing → api).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "agent.presence.v1")]
pub struct AgentPresenceV1 {
    /// Agent.
    pub agent_id: AgentId,
    /// What they show now.
    pub presence: Presence,
    /// What they last chose.
    pub chosen: Presence,
}
fixed_key!(AgentPresenceV1, "agent.presence.v1", agent_id);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn envelopes_carry_the_tag_and_round_trip() {
        let event = InboundReceivedV1 {
            channel_id: ChannelId::generate(),
            message_sid: "SM1".into(),
            ordering_key: "c|+1".into(),
            shard: 3,
            received_at: time::macros::datetime!(2026-11-26 10:00 UTC),
            idempotency_token: None,
            params: vec![("Body".into(), "hi".into())],
        };
        let envelope = Envelope::new(event.clone());
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_bytes()).unwrap_or_default();
        assert_eq!(json["event"]["type"], "inbound.received.v1");
        assert_eq!(json["schema_version"], 1);
        assert_eq!(envelope.payload.routing_key(), "inbound.received.v1.3");
        let back = Envelope::<InboundReceivedV1>::from_bytes(&envelope.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.payload, event);
    }
}

/// One customer message (or the messages waiting when a bot takes a conversation) for a bot
/// to answer (session → bots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "bot.turn.v1")]
pub struct BotTurnV1 {
    /// Unique per turn; bots may use it to recognise a repeated call.
    pub turn_id: TurnId,
    /// The bot.
    pub bot_id: BotId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Business number (E.164).
    pub number: String,
    /// Workstream.
    pub workstream_id: Option<WorkstreamId>,
    /// Who the bot is talking to (phone and BSUID as WhatsApp shows them).
    pub customer: BotCustomer,
    /// The conversation's language.
    pub language: String,
    /// Context variables so far (conversation attributes).
    pub context: std::collections::BTreeMap<String, String>,
    /// The messages to answer, oldest first.
    pub messages: Vec<BotMessage>,
    /// Until when free-form replies are allowed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub window_expires_at: Option<OffsetDateTime>,
}
fixed_key!(BotTurnV1, "bot.turn.v1", conversation_id);

/// The customer, as a bot sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotCustomer {
    /// Customer id.
    pub id: CustomerId,
    /// E.164, when known.
    pub phone: Option<String>,
    /// WhatsApp business-scoped user id (`CC.…`), when known: the only id of a customer who
    /// uses a username and hides their number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsuid: Option<String>,
    /// WhatsApp profile name.
    pub name: Option<String>,
}

/// A customer message, as a bot sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotMessage {
    /// Message id.
    pub id: MessageId,
    /// Text (may be empty for media or location).
    pub body: String,
    /// Content types of attached files (the files stay with Switchboard).
    pub media_types: Vec<String>,
    /// Location shared, when any.
    pub location: Option<serde_json::Value>,
    /// Quick-reply button payload, when the customer pressed one.
    pub button_payload: Option<String>,
    /// A WhatsApp Flow's answers, when the message carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_data: Option<serde_json::Value>,
    /// When it arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
