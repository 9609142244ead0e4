//! Inbound messages from the per-customer shards: a batch is handled in one transaction, in
//! order. A MessageSid seen before changes nothing (dedupe), so a redelivered or replayed
//! webhook is harmless.

use std::sync::Arc;

use sqlx::PgConnection;
use switchboard_bus::events::{ConversationOpenedV1, InboundReceivedV1};
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_domain::attachment::{InboundDecision, InboundFile, decide_inbound};
use switchboard_domain::automated::{RenderContext, Trigger};
use switchboard_domain::conversation::{ConversationStatus, StatusReason, Transition};
use switchboard_twilio::InboundMessage;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::conversations::{ConversationRow, TransitionInput};
use crate::error::SessionError;

/// Consumes `inbound.received.v1`.
pub struct InboundHandler {
    session: Arc<Session>,
}

impl InboundHandler {
    /// A handler writing through `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }
}

/// Maps a session failure to retry (transient) or dead-letter (this message can never work).
pub(crate) fn classify(error: SessionError) -> HandleError {
    match error {
        SessionError::Unavailable(_) | SessionError::Internal(_) => {
            HandleError::Retry(error.into())
        }
        other => HandleError::Reject(other.into()),
    }
}

impl Handler for InboundHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let mut parsed = Vec::with_capacity(batch.len());
        for incoming in batch {
            let envelope: Envelope<InboundReceivedV1> = incoming.json()?;
            let message = InboundMessage::from_params(&envelope.payload.params)
                .map_err(|e| HandleError::Reject(anyhow::anyhow!("unparseable webhook: {e}")))?;
            parsed.push((envelope.payload, message));
        }
        let mut tx = self
            .session
            .pool
            .begin()
            .await
            .map_err(|e| classify(e.into()))?;
        let mut events = Events::default();
        for (event, message) in &parsed {
            self.session
                .apply_inbound(&mut tx, event, message, &mut events)
                .await
                .map_err(classify)?;
        }
        self.session
            .emit(&mut tx, &events)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(|e| classify(e.into()))?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct NumberForInbound {
    id: Uuid,
    workstream_id: Option<Uuid>,
    default_language: String,
    customer_attachments: bool,
    agent_attachments: bool,
    max_attachment_bytes: i64,
    live: bool,
}

/// How the message relates to the customer's conversation.
enum Opening {
    /// It started a new conversation.
    New,
    /// It brought a Waiting conversation back to Open.
    Reopened { previous_agent: Option<Uuid> },
    /// It joined a live conversation.
    Continued,
}

fn summary(message: &InboundMessage) -> String {
    if !message.body.is_empty() {
        message.body.clone()
    } else if message.location.is_some() {
        "[location]".into()
    } else if !message.media.is_empty() {
        "[attachment]".into()
    } else {
        String::new()
    }
}

impl Session {
    /// Applies one inbound message inside the caller's transaction.
    pub(crate) async fn apply_inbound(
        &self,
        tx: &mut PgConnection,
        event: &InboundReceivedV1,
        message: &InboundMessage,
        events: &mut Events,
    ) -> Result<(), SessionError> {
        let channel_id = crate::error::parse_id(&event.channel_id, "channel_id")?;
        let number = sqlx::query_as::<_, NumberForInbound>(
            "SELECT n.id, n.workstream_id, n.default_language, n.customer_attachments, n.agent_attachments, n.max_attachment_bytes, \
             (n.active AND c.active) AS live FROM session.numbers n JOIN session.channels c ON c.id = n.channel_id \
             WHERE n.channel_id = $1 AND n.phone = $2 AND n.deleted_at IS NULL AND c.deleted_at IS NULL",
        )
        .bind(channel_id)
        .bind(message.to.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| SessionError::Precondition(format!("no WhatsApp number {} is configured on channel {channel_id}", message.to)))?;
        if !number.live {
            return Err(SessionError::Precondition(format!(
                "WhatsApp number {} is inactive",
                message.to
            )));
        }
        let duplicate: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM session.messages WHERE channel_id = $1 AND twilio_sid = $2)")
            .bind(channel_id)
            .bind(&message.message_sid)
            .fetch_one(&mut *tx)
            .await?;
        if duplicate {
            tracing::debug!(message_sid = %message.message_sid, "duplicate inbound message ignored");
            return Ok(());
        }
        let customer_id = self.upsert_customer(tx, channel_id, message).await?;
        let received_at = event.received_at;
        sqlx::query(
            "INSERT INTO session.windows (number_id, customer_id, last_inbound_at) VALUES ($1, $2, $3) \
             ON CONFLICT (number_id, customer_id) DO UPDATE SET last_inbound_at = GREATEST(session.windows.last_inbound_at, EXCLUDED.last_inbound_at)",
        )
        .bind(number.id)
        .bind(customer_id)
        .bind(received_at)
        .execute(&mut *tx)
        .await?;

        let now = self.now();
        let existing = sqlx::query_as::<_, ConversationRow>("SELECT * FROM session.conversations WHERE number_id = $1 AND customer_id = $2 AND status <> 'closed' FOR UPDATE")
            .bind(number.id)
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?;
        let (conversation, opened) = match existing {
            None => {
                let row = sqlx::query_as::<_, ConversationRow>(
                    "INSERT INTO session.conversations (id, channel_id, number_id, customer_id, workstream_id, status, status_reason, first_message, \
                     opened_at, status_changed_at, last_customer_message_at, last_activity_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $8, $9, $8) RETURNING *",
                )
                .bind(Uuid::now_v7())
                .bind(channel_id)
                .bind(number.id)
                .bind(customer_id)
                .bind(number.workstream_id)
                .bind(StatusReason::AwaitingAgentAssignment.code())
                .bind(summary(message))
                .bind(now)
                .bind(received_at)
                .fetch_one(&mut *tx)
                .await?;
                (row, Opening::New)
            }
            Some(row) if row.status() == ConversationStatus::Waiting => {
                let previous_agent = row.agent_id;
                let row = self
                    .transition_locked(
                        tx,
                        &row,
                        &TransitionInput::new(Transition::CustomerMessage),
                        events,
                    )
                    .await?;
                (row, Opening::Reopened { previous_agent })
            }
            Some(row) => (row, Opening::Continued),
        };
        sqlx::query(
            "UPDATE session.conversations SET last_customer_message_at = GREATEST(last_customer_message_at, $2), last_activity_at = $3, \
             first_message = CASE WHEN $4 THEN $5 ELSE first_message END WHERE id = $1",
        )
        .bind(conversation.id)
        .bind(received_at)
        .bind(now)
        .bind(matches!(opened, Opening::New | Opening::Reopened { .. }))
        .bind(summary(message))
        .execute(&mut *tx)
        .await?;

        let settings = switchboard_domain::attachment::AttachmentSettings {
            customer_attachments: number.customer_attachments,
            agent_attachments: number.agent_attachments,
            max_bytes: u64::try_from(number.max_attachment_bytes).unwrap_or(0),
        };
        let mut media = Vec::new();
        let mut notes = Vec::new();
        for (index, item) in message.media.iter().enumerate() {
            let file = InboundFile {
                content_type: item.content_type.clone(),
                file_name: None,
                size_bytes: None,
            };
            match decide_inbound(&settings, &file) {
                InboundDecision::Accept => media.push(serde_json::json!({ "index": index, "content_type": item.content_type, "twilio_url": item.url })),
                InboundDecision::Note(note) => notes.push(note),
            }
        }
        let replied_to = match &message.replied_to {
            Some(r) => {
                let ours: Option<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM session.messages WHERE channel_id = $1 AND twilio_sid = $2",
                )
                .bind(channel_id)
                .bind(&r.message_sid)
                .fetch_optional(&mut *tx)
                .await?;
                serde_json::json!({ "twilio_sid": r.message_sid, "message_id": ours })
            }
            None => serde_json::Value::Null,
        };
        let details = serde_json::json!({
            "profile_name": message.profile_name,
            "message_type": message.message_type,
            "location": message.location,
            "button": message.button,
            "replied_to": replied_to,
            "referral": message.referral,
            "interactive_data": message.interactive_data,
            "forwarded": message.forwarded,
            "idempotency_token": event.idempotency_token,
        });
        let stored = sqlx::query_as::<_, crate::messages::MessageRow>(
            "INSERT INTO session.messages (id, conversation_id, channel_id, direction, author_kind, twilio_sid, body, media, details, status, created_at) \
             VALUES ($1, $2, $3, 'inbound', 'customer', $4, $5, $6, $7, 'received', $8) RETURNING *",
        )
        .bind(Uuid::now_v7())
        .bind(conversation.id)
        .bind(channel_id)
        .bind(&message.message_sid)
        .bind(&message.body)
        .bind(serde_json::Value::Array(media))
        .bind(details)
        .bind(received_at)
        .fetch_one(&mut *tx)
        .await?;
        events.push(
            self.message_event(&stored, conversation.agent_id, conversation.bot_id),
            now,
        );
        for note in notes {
            self.insert_note(tx, &conversation, &note, events).await?;
        }
        let previous_agent = match opened {
            Opening::Continued => return Ok(()),
            Opening::New => None,
            Opening::Reopened { previous_agent } => previous_agent,
        };
        events.push(
            ConversationOpenedV1 {
                conversation_id: conversation.id.to_string(),
                channel_id: channel_id.to_string(),
                number_id: number.id.to_string(),
                workstream_id: conversation
                    .workstream_id
                    .or(number.workstream_id)
                    .map(|w| w.to_string()),
                customer_id: customer_id.to_string(),
                customer_phone: message.customer.phone().map(|p| p.as_str().to_owned()),
                profile_name: message.profile_name.clone(),
                language: number.default_language.clone(),
                first_message: summary(message),
                attributes: conversation.attributes(),
                reopened: matches!(opened, Opening::Reopened { .. }),
                previous_agent_id: previous_agent.map(|a| a.to_string()),
                last_customer_message_at: received_at,
            },
            now,
        );
        if matches!(opened, Opening::New) {
            self.send_automated_locked(
                tx,
                &conversation,
                Trigger::Greeting,
                &RenderContext::default(),
                events,
            )
            .await?;
        }
        Ok(())
    }

    async fn upsert_customer(
        &self,
        tx: &mut PgConnection,
        channel_id: Uuid,
        message: &InboundMessage,
    ) -> Result<Uuid, SessionError> {
        let key = message.customer.key();
        let phone = message.customer.phone().map(|p| p.as_str().to_owned());
        let bsuid = message.customer.bsuid().map(|b| b.as_str().to_owned());
        let known: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM session.customers WHERE channel_id = $1 AND (key = $2 OR ($3::text IS NOT NULL AND phone = $3) \
             OR ($4::text IS NOT NULL AND bsuid = $4)) ORDER BY (key = $2) DESC LIMIT 1",
        )
        .bind(channel_id)
        .bind(&key)
        .bind(&phone)
        .bind(&bsuid)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match known {
            Some(id) => {
                sqlx::query(
                    "UPDATE session.customers SET phone = COALESCE($2, phone), bsuid = COALESCE($3, bsuid), wa_id = COALESCE($4, wa_id), \
                     profile_name = COALESCE($5, profile_name), updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(&phone)
                .bind(&bsuid)
                .bind(&message.wa_id)
                .bind(&message.profile_name)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                sqlx::query_scalar(
                    "INSERT INTO session.customers (id, channel_id, key, phone, bsuid, wa_id, profile_name) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (channel_id, key) DO UPDATE SET profile_name = COALESCE(EXCLUDED.profile_name, session.customers.profile_name) RETURNING id",
                )
                .bind(Uuid::now_v7())
                .bind(channel_id)
                .bind(&key)
                .bind(&phone)
                .bind(&bsuid)
                .bind(&message.wa_id)
                .bind(&message.profile_name)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        Ok(id)
    }
}
