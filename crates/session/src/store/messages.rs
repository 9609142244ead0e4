//! The messages' SQL (`session.messages`): stored inbound, outbound, notes; read by id, by
//! conversation, by Twilio SID. Delivery reports' batch statements are in `store::delivery`.

use sqlx::{FromRow, PgExecutor};
use switchboard_domain::ids::{ChannelId, ClientMessageId, ConversationId, MessageId};
use switchboard_domain::message::{AuthorKind, Direction};
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored message.
#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: MessageId,
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
    pub direction: Direction,
    pub author_kind: AuthorKind,
    pub author_id: Option<Uuid>,
    pub twilio_sid: Option<String>,
    pub body: String,
    pub media: serde_json::Value,
    pub details: serde_json::Value,
    pub status: String,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub client_message_id: Option<ClientMessageId>,
    pub created_at: OffsetDateTime,
    /// The W3C `traceparent` the message was handled in, when it was traced.
    pub traceparent: Option<String>,
    /// When the business marked this customer message read (read receipts policy).
    pub read_at: Option<OffsetDateTime>,
}

/// One message.
pub async fn get<'c>(db: impl PgExecutor<'c>, id: MessageId) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM session.messages WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Up to `limit` of a conversation's messages after `after_seq`, oldest first.
pub async fn page<'c>(
    db: impl PgExecutor<'c>,
    conversation: ConversationId,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM session.messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(conversation)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// Stores a system note in a conversation's transcript.
pub async fn insert_note<'c>(
    db: impl PgExecutor<'c>,
    conversation: ConversationId,
    channel: ChannelId,
    text: &str,
    now: OffsetDateTime,
) -> Result<MessageRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO session.messages (id, conversation_id, channel_id, direction, author_kind, body, status, created_at) \
         VALUES ($1, $2, $3, 'note', 'system', $4, 'note', $5) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(conversation)
    .bind(channel)
    .bind(text)
    .bind(now)
    .fetch_one(db)
    .await
}

/// A message to send, as stored (`pending` until the sender's report).
pub struct Outbound<'a> {
    pub conversation_id: Uuid,
    pub channel_id: Uuid,
    pub author_kind: AuthorKind,
    pub author_id: Option<Uuid>,
    pub body: &'a str,
    pub media: serde_json::Value,
    pub details: serde_json::Value,
    pub client_message_id: Option<&'a str>,
    pub traceparent: Option<String>,
}

/// Stores a message to send, `pending`.
pub async fn insert_outbound<'c>(db: impl PgExecutor<'c>, m: Outbound<'_>, now: OffsetDateTime) -> Result<MessageRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO session.messages (id, conversation_id, channel_id, direction, author_kind, author_id, body, media, details, status, client_message_id, created_at, traceparent) \
         VALUES ($1, $2, $3, 'outbound', $4, $5, $6, $7, $8, 'pending', $9, $10, $11) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(m.conversation_id)
    .bind(m.channel_id)
    .bind(m.author_kind)
    .bind(m.author_id)
    .bind(m.body)
    .bind(m.media)
    .bind(m.details)
    .bind(m.client_message_id)
    .bind(now)
    .bind(m.traceparent)
    .fetch_one(db)
    .await
}

/// A customer's message, as stored.
pub struct Inbound<'a> {
    pub conversation_id: Uuid,
    pub channel_id: Uuid,
    pub twilio_sid: &'a str,
    pub body: &'a str,
    pub media: serde_json::Value,
    pub details: serde_json::Value,
    /// When ingress received it.
    pub received_at: OffsetDateTime,
    pub traceparent: Option<String>,
}

/// Stores a customer's message, `received`.
pub async fn insert_inbound<'c>(db: impl PgExecutor<'c>, m: Inbound<'_>) -> Result<MessageRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO session.messages (id, conversation_id, channel_id, direction, author_kind, twilio_sid, body, media, details, status, created_at, traceparent) \
         VALUES ($1, $2, $3, 'inbound', 'customer', $4, $5, $6, $7, 'received', $8, $9) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(m.conversation_id)
    .bind(m.channel_id)
    .bind(m.twilio_sid)
    .bind(m.body)
    .bind(m.media)
    .bind(m.details)
    .bind(m.received_at)
    .bind(m.traceparent)
    .fetch_one(db)
    .await
}

/// The (channel, SID) pairs among `channels` × `sids` already stored (both lists as index
/// conditions: a join on UNNEST was planned as a scan of every message; the answer may hold
/// pairs the caller did not ask about).
pub async fn stored_sids<'c>(
    db: impl PgExecutor<'c>,
    channels: &[ChannelId],
    sids: &[String],
) -> Result<Vec<(ChannelId, String)>, sqlx::Error> {
    sqlx::query_as("SELECT channel_id, twilio_sid FROM session.messages WHERE channel_id = ANY($1) AND twilio_sid = ANY($2)")
        .bind(channels)
        .bind(sids)
        .fetch_all(db)
        .await
}

/// The id of the channel's message with Twilio SID `sid`, if Switchboard has it.
pub async fn id_by_sid<'c>(db: impl PgExecutor<'c>, channel: Uuid, sid: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM session.messages WHERE channel_id = $1 AND twilio_sid = $2")
        .bind(channel)
        .bind(sid)
        .fetch_optional(db)
        .await
}
