//! The JSON shapes of conversations, messages and routing's work, converted from the services'
//! gRPC messages; ids are typed, and a malformed one from a service is answered 500.

use serde::Serialize;
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::ids::{
    AgentId, BotId, ChannelId, ConversationId, CustomerId, FileId, MessageId, NumberId, OfferId, QueueId, WorkstreamId,
};
use switchboard_domain::message::{AuthorKind, Direction};
use switchboard_domain::routing::Presence;
use switchboard_domain::routing::offer::{ItemState, OfferState};
use switchboard_proto::routing::v1 as rpb;
use switchboard_proto::session::v1 as spb;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{closed, non_empty, timestamp, wire, wire_opt};
use crate::error::ApiError;

/// The customer of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: CustomerId,
    pub phone: Option<String>,
    /// WhatsApp business-scoped user id, for customers known by username.
    pub bsuid: Option<String>,
    pub profile_name: Option<String>,
}

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    pub id: ConversationId,
    pub channel_id: ChannelId,
    pub number_id: NumberId,
    pub workstream_id: Option<WorkstreamId>,
    pub customer: Option<Customer>,
    /// open, active, waiting, wrap_up, closed.
    #[schema(value_type = String)]
    pub status: ConversationStatus,
    pub status_reason: Option<String>,
    pub agent_id: Option<AgentId>,
    /// The bot handling it, while a bot does.
    pub bot_id: Option<BotId>,
    pub queue_id: Option<QueueId>,
    pub opened_at: Option<String>,
    pub last_customer_message_at: Option<String>,
    /// Free-form messages are allowed until then; templates only afterwards.
    pub window_expires_at: Option<String>,
    pub window_open: bool,
    pub closed_at: Option<String>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub first_message: String,
    /// Transfers so far (to a queue or an agent).
    pub transfer_count: u32,
}

impl TryFrom<spb::Conversation> for Conversation {
    type Error = ApiError;

    fn try_from(c: spb::Conversation) -> Result<Self, ApiError> {
        Ok(Self {
            opened_at: timestamp(c.opened_at.as_ref()),
            last_customer_message_at: timestamp(c.last_customer_message_at.as_ref()),
            window_expires_at: timestamp(c.window_expires_at.as_ref()),
            closed_at: timestamp(c.closed_at.as_ref()),
            id: wire(&c.id, "conversation id")?,
            channel_id: wire(&c.channel_id, "channel id")?,
            number_id: wire(&c.number_id, "number id")?,
            workstream_id: wire_opt(&c.workstream_id, "workstream id")?,
            customer: c
                .customer
                .map(|u| -> Result<Customer, ApiError> {
                    Ok(Customer {
                        id: wire(&u.id, "customer id")?,
                        phone: non_empty(u.phone),
                        bsuid: non_empty(u.bsuid),
                        profile_name: non_empty(u.profile_name),
                    })
                })
                .transpose()?,
            status: closed(c.status_code, &c.status, "conversation status")?,
            status_reason: non_empty(c.status_reason),
            agent_id: wire_opt(&c.agent_id, "agent id")?,
            bot_id: wire_opt(&c.bot_id, "bot id")?,
            queue_id: wire_opt(&c.queue_id, "queue id")?,
            window_open: c.window_open,
            attributes: c.attributes.into_iter().map(|a| (a.key, a.value)).collect(),
            first_message: c.first_message,
            transfer_count: c.transfer_count,
        })
    }
}

/// A file of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Media {
    /// For a customer's file and an uploaded one: the API path that streams it (through
    /// session); for a file sent by URL: that URL.
    pub url: String,
    pub content_type: String,
    /// An uploaded file: its id, name and size.
    pub file_id: Option<FileId>,
    pub file_name: Option<String>,
    pub size_bytes: Option<u64>,
}

/// A message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// Order within the conversation.
    pub seq: i64,
    /// inbound, outbound, note.
    #[schema(value_type = String)]
    pub direction: Direction,
    /// customer, agent, bot, automated, system.
    #[schema(value_type = String)]
    pub author_kind: AuthorKind,
    /// The agent or the bot, by `author_kind`.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub author_id: Option<Uuid>,
    pub body: String,
    pub media: Vec<Media>,
    /// received, pending, queued, sent, delivered, read, failed, undelivered.
    pub status: String,
    pub error_code: Option<u32>,
    pub error_message: Option<String>,
    pub twilio_sid: Option<String>,
    pub created_at: Option<String>,
    /// Location, button reply, template used, … as JSON.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The W3C `traceparent` the message was handled in. Send it as the `traceparent` header of
    /// the reply to this message, and the reply continues this message's trace.
    pub traceparent: Option<String>,
    /// Inbound: when the customer was shown it read (the workstream's `read_receipts`).
    pub read_at: Option<String>,
}

impl TryFrom<spb::Message> for Message {
    type Error = ApiError;

    fn try_from(m: spb::Message) -> Result<Self, ApiError> {
        let direction: Direction = closed(m.direction_code, &m.direction, "message direction")?;
        let inbound = direction == Direction::Inbound;
        let (id, conversation_id): (MessageId, ConversationId) = (wire(&m.id, "message id")?, wire(&m.conversation_id, "conversation id")?);
        let media = m
            .media
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Ok(Media {
                    url: if inbound || !item.file_id.is_empty() {
                        format!("/api/v1/conversations/{conversation_id}/messages/{id}/media/{i}")
                    } else {
                        item.url
                    },
                    content_type: item.content_type,
                    size_bytes: (item.size_bytes > 0).then_some(item.size_bytes),
                    file_id: wire_opt(&item.file_id, "file id")?,
                    file_name: non_empty(item.file_name),
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Self {
            created_at: timestamp(m.created_at.as_ref()),
            details: serde_json::from_str(&m.details_json).unwrap_or_else(|_| serde_json::json!({})),
            id,
            conversation_id,
            seq: m.seq,
            direction,
            author_kind: closed(m.author_kind_code, &m.author_kind, "author kind")?,
            author_id: wire_opt(&m.author_id, "author id")?,
            body: m.body,
            media,
            status: m.status,
            error_code: (m.error_code != 0).then_some(m.error_code),
            error_message: non_empty(m.error_message),
            twilio_sid: non_empty(m.twilio_sid),
            traceparent: non_empty(m.traceparent),
            read_at: timestamp(m.read_at.as_ref()),
        })
    }
}

/// An offer of a conversation to an agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Offer {
    pub id: OfferId,
    pub conversation_id: ConversationId,
    pub agent_id: AgentId,
    pub queue_id: Option<QueueId>,
    pub workstream_id: Option<WorkstreamId>,
    pub created_at: Option<String>,
    /// Accept before this, or it goes to the next agent.
    pub expires_at: Option<String>,
    /// pending, accepted, declined, expired, cancelled.
    #[schema(value_type = String)]
    pub state: OfferState,
}

impl TryFrom<rpb::Offer> for Offer {
    type Error = ApiError;

    fn try_from(o: rpb::Offer) -> Result<Self, ApiError> {
        Ok(Self {
            created_at: timestamp(o.created_at.as_ref()),
            expires_at: timestamp(o.expires_at.as_ref()),
            id: wire(&o.id, "offer id")?,
            conversation_id: wire(&o.conversation_id, "conversation id")?,
            agent_id: wire(&o.agent_id, "agent id")?,
            queue_id: wire_opt(&o.queue_id, "queue id")?,
            workstream_id: wire_opt(&o.workstream_id, "workstream id")?,
            state: closed(o.state_code, &o.state, "offer state")?,
        })
    }
}

/// A conversation's place in routing.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkItem {
    pub conversation_id: ConversationId,
    pub workstream_id: Option<WorkstreamId>,
    pub queue_id: Option<QueueId>,
    /// unrouted, queued, offered, assigned, wrap_up, waiting, bot, pick_only.
    #[schema(value_type = String)]
    pub state: ItemState,
    pub priority: i32,
    pub agent_id: Option<AgentId>,
    pub offer_id: Option<OfferId>,
    pub enqueued_at: Option<String>,
    pub last_customer_message_at: Option<String>,
    pub total_declines: i32,
    /// Attributes classification set.
    pub facts: std::collections::BTreeMap<String, String>,
    /// Skills the item needs, as JSON.
    #[schema(value_type = Object)]
    pub skills: serde_json::Value,
}

impl TryFrom<rpb::WorkItem> for WorkItem {
    type Error = ApiError;

    fn try_from(w: rpb::WorkItem) -> Result<Self, ApiError> {
        Ok(Self {
            enqueued_at: timestamp(w.enqueued_at.as_ref()),
            last_customer_message_at: timestamp(w.last_customer_message_at.as_ref()),
            skills: serde_json::from_str(&w.skills_json).unwrap_or(serde_json::Value::Null),
            conversation_id: wire(&w.conversation_id, "conversation id")?,
            workstream_id: wire_opt(&w.workstream_id, "workstream id")?,
            queue_id: wire_opt(&w.queue_id, "queue id")?,
            state: closed(w.state_code, &w.state, "work item state")?,
            priority: w.priority,
            agent_id: wire_opt(&w.agent_id, "agent id")?,
            offer_id: wire_opt(&w.offer_id, "offer id")?,
            total_declines: w.total_declines,
            facts: w.facts.into_iter().map(|a| (a.key, a.value)).collect(),
        })
    }
}

/// An agent's presence and load.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentStatus {
    pub agent_id: AgentId,
    pub name: String,
    /// What the agent shows now: available, busy, busy_dnd, away, offline.
    #[schema(value_type = String)]
    pub presence: Presence,
    /// What the agent last chose.
    #[schema(value_type = String)]
    pub chosen_presence: Presence,
    pub capacity_units: i32,
    pub used_units: i32,
    pub active_items: i32,
    pub queue_ids: Vec<QueueId>,
}

impl TryFrom<rpb::AgentStatus> for AgentStatus {
    type Error = ApiError;

    fn try_from(a: rpb::AgentStatus) -> Result<Self, ApiError> {
        Ok(Self {
            agent_id: wire(&a.agent_id, "agent id")?,
            name: a.name,
            presence: closed(a.presence_code, &a.presence, "presence")?,
            chosen_presence: closed(a.chosen_presence_code, &a.chosen_presence, "presence")?,
            capacity_units: a.capacity_units,
            used_units: a.used_units,
            active_items: a.active_items,
            queue_ids: a.queue_ids.iter().map(|q| wire(q, "queue id")).collect::<Result<_, _>>()?,
        })
    }
}

/// Live figures of a queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStat {
    pub queue_id: QueueId,
    pub name: String,
    pub priority: i32,
    pub waiting: u32,
    pub offered: u32,
    pub assigned: u32,
    pub longest_wait_seconds: u64,
    pub members: u32,
    pub agents_available: u32,
    /// Inside its operating hours.
    pub open: bool,
}

impl TryFrom<rpb::QueueStat> for QueueStat {
    type Error = ApiError;

    fn try_from(q: rpb::QueueStat) -> Result<Self, ApiError> {
        Ok(Self {
            queue_id: wire(&q.queue_id, "queue id")?,
            name: q.name,
            priority: q.priority,
            waiting: q.waiting,
            offered: q.offered,
            assigned: q.assigned,
            longest_wait_seconds: q.longest_wait_seconds,
            members: q.members,
            agents_available: q.agents_available,
            open: q.open,
        })
    }
}

/// A routing configuration object (workstream, queue, operating hours, skill, capacity profile
/// or agent).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigObject {
    pub id: String,
    pub name: String,
    /// The kind's definition, validated by routing (an error names the field at fault).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<rpb::ConfigObject> for ConfigObject {
    fn from(c: rpb::ConfigObject) -> Self {
        Self {
            created_at: timestamp(c.created_at.as_ref()),
            updated_at: timestamp(c.updated_at.as_ref()),
            definition: serde_json::from_str(&c.definition_json).unwrap_or(serde_json::Value::Null),
            id: c.id,
            name: c.name,
        }
    }
}
