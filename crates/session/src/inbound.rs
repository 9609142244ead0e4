//! Inbound messages from the per-customer shards: a batch is handled in one transaction, in
//! order. A MessageSid seen before changes nothing (dedupe), so a redelivered or replayed
//! webhook is harmless. The hot path is kept to a few statements per message: one dedupe query
//! and one number lookup per batch, then customer, window, conversation and message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::PgConnection;
use switchboard_bus::events::{ConversationOpenedV1, InboundReceivedV1};
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_domain::attachment::{AttachmentSettings, InboundDecision, InboundFile, decide_inbound};
use switchboard_domain::automated::{RenderContext, Trigger};
use switchboard_domain::conversation::{ConversationStatus, StatusReason, Transition};
use switchboard_domain::ids::ChannelId;
use switchboard_twilio::InboundMessage;
use switchboard_twilio::webhook::make_storable;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::config_cache::NumberForInbound;
use crate::conversations::{ConversationRow, TransitionInput};
use crate::error::SessionError;
use crate::store::{conversations, customers, messages};
use crate::unroutable::Reason;

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

/// Maps a session failure to retry (a dependency is down: everything behind waits for it), suspect
/// (unexplained: tried briefly, then dead-lettered so an ordered shard is not held) or dead-letter
/// (this message can never work).
pub(crate) fn classify(error: SessionError) -> HandleError {
    match error {
        SessionError::Unavailable(_) => HandleError::Retry(error.into()),
        SessionError::Internal(_) => HandleError::Suspect(error.into()),
        other => HandleError::Reject(other.into()),
    }
}

impl Handler for InboundHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let mut parsed = Vec::with_capacity(batch.len());
        let mut spans = Vec::with_capacity(batch.len());
        for incoming in batch {
            let mut envelope: Envelope<InboundReceivedV1> = incoming.json()?;
            // Cleaned in place as ingress cleans them (a message published before that rule
            // too), so the parsed message and the parameters kept with it are storable.
            make_storable(&mut envelope.payload.params);
            let message = InboundMessage::from_params(&envelope.payload.params)
                .map_err(|e| HandleError::Reject(anyhow::anyhow!("unparseable webhook: {e}")))?;
            spans.push(store_span(incoming, &message.message_sid));
            parsed.push((envelope.payload, message));
        }
        let session = &self.session;
        let mut tx = session.pool.begin().await.map_err(|e| classify(e.into()))?;
        let mut events = Events::default();
        let mut seen = session.known_sids(&mut tx, &parsed).await.map_err(classify)?;
        let mut numbers: HashMap<(ChannelId, String), Result<Arc<NumberForInbound>, Reason>> = HashMap::new();
        for ((event, message), span) in parsed.iter().zip(&spans) {
            if !seen.insert((event.channel_id, message.message_sid.clone())) {
                tracing::debug!(message_sid = %message.message_sid, "duplicate inbound message ignored");
                continue;
            }
            let key = (event.channel_id, message.to.as_str().to_owned());
            let number = match numbers.get(&key) {
                Some(n) => n.clone(),
                None => {
                    let n = session
                        .number_for_inbound(&mut tx, event.channel_id, message)
                        .await
                        .map_err(classify)?;
                    numbers.insert(key, n.clone());
                    n
                }
            };
            let number = match number {
                Ok(number) => number,
                Err(reason) => {
                    session.record_unroutable(&mut tx, event, message, reason).await.map_err(classify)?;
                    continue;
                }
            };
            // Each message in its own trace (a batch holds many customers'): the events it causes
            // and the trace it is stored with are its webhook's.
            session
                .apply_inbound(&mut tx, event, message, &number, &mut events)
                .instrument(span.clone())
                .await
                .map_err(classify)?;
        }
        session.emit(&mut tx, &events).await.map_err(classify)?;
        tx.commit().await.map_err(|e| classify(e.into()))?;
        Ok(())
    }
}

/// The span one inbound message is stored in, a child of its webhook's trace (its AMQP headers).
fn store_span(incoming: &Incoming, message_sid: &str) -> tracing::Span {
    use switchboard_telemetry::propagation::{extract_map, set_parent};
    let span = tracing::info_span!(
        "session.store_inbound",
        otel.name = "store inbound message",
        message_sid,
        conversation_id = tracing::field::Empty,
    );
    set_parent(&span, extract_map(&incoming.headers));
    span
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
    /// Returns stored (channel, MessageSid) pairs: every pair of `batch` already stored, maybe others.
    pub(crate) async fn known_sids(
        &self,
        tx: &mut PgConnection,
        batch: &[(InboundReceivedV1, InboundMessage)],
    ) -> Result<HashSet<(ChannelId, String)>, SessionError> {
        let mut channels = Vec::with_capacity(batch.len());
        let mut sids = Vec::with_capacity(batch.len());
        for (event, message) in batch {
            channels.push(event.channel_id);
            sids.push(message.message_sid.clone());
        }
        channels.sort_unstable();
        channels.dedup();
        // Both lists as index conditions (a join on UNNEST was planned as a scan of every
        // message); the result may hold pairs not in the batch, which callers never ask about.
        let rows = messages::stored_sids(&mut *tx, &channels, &sids).await?;
        Ok(rows.into_iter().collect())
    }

    /// Returns the live number a message was sent to, or why it cannot be taken.
    pub(crate) async fn number_for_inbound(
        &self,
        tx: &mut PgConnection,
        channel_id: ChannelId,
        message: &InboundMessage,
    ) -> Result<Result<Arc<NumberForInbound>, Reason>, SessionError> {
        let number = self.config.inbound_number(tx, channel_id.uuid(), message.to.as_str()).await?;
        Ok(match number {
            None => Err(Reason::UnknownNumber),
            Some(number) if !number.live => Err(Reason::InactiveNumber),
            Some(number) => Ok(number),
        })
    }

    /// Applies one new (not duplicate) inbound message inside the caller's transaction.
    pub(crate) async fn apply_inbound(
        &self,
        tx: &mut PgConnection,
        event: &InboundReceivedV1,
        message: &InboundMessage,
        number: &NumberForInbound,
        events: &mut Events,
    ) -> Result<(), SessionError> {
        let channel_id = event.channel_id.uuid();
        let received_at = event.received_at;
        let now = self.now();
        let customer_id = self.upsert_customer(tx, channel_id, message).await?;
        let (conversation, opened) = self
            .touch_or_open(tx, channel_id, number, customer_id, message, received_at, events)
            .await?;

        let settings = AttachmentSettings {
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
                InboundDecision::Accept => {
                    media.push(serde_json::json!({ "index": index, "content_type": item.content_type, "twilio_url": item.url }))
                }
                InboundDecision::Note(note) => notes.push(note),
            }
        }
        let replied_to = match &message.replied_to {
            Some(r) => {
                let ours = messages::id_by_sid(&mut *tx, channel_id, &r.message_sid).await?;
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
            // A WhatsApp Flow's answers, as data when they parse (they are JSON text).
            "flow_data": message.flow_data.as_deref().map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap_or_else(|_| serde_json::Value::String(f.to_owned()))),
            "forwarded": message.forwarded,
            "idempotency_token": event.idempotency_token,
        });
        let inbound = messages::Inbound {
            conversation_id: conversation.id.into(),
            channel_id,
            twilio_sid: &message.message_sid,
            body: &message.body,
            media: serde_json::Value::Array(media),
            details,
            received_at,
            traceparent: switchboard_telemetry::propagation::traceparent(&tracing::Span::current()),
        };
        let stored = messages::insert_inbound(&mut *tx, inbound).await?;
        tracing::Span::current().record("conversation_id", tracing::field::display(conversation.id));
        events.push(self.message_event(&stored, conversation.agent_id, conversation.bot_id), now);
        if let (Some(bot), "active") = (conversation.bot_id, conversation.status.as_str()) {
            self.push_bot_turn(tx, &conversation, bot.into(), Some(stored.id), events).await?;
        }
        for note in notes {
            self.insert_note(tx, &conversation, &note, events).await?;
        }
        let previous_agent = match opened {
            Opening::Continued => return Ok(()),
            Opening::New => None,
            Opening::Reopened { previous_agent } => previous_agent,
        };
        crate::metrics::opened(matches!(opened, Opening::Reopened { .. }));
        events.push(
            ConversationOpenedV1 {
                conversation_id: conversation.id,
                channel_id: channel_id.into(),
                number_id: number.id.into(),
                workstream_id: conversation.workstream_id.or(number.workstream_id.map(Into::into)),
                customer_id: customer_id.into(),
                customer_phone: message.customer.phone().map(|p| p.as_str().to_owned()),
                customer_bsuid: message.customer.bsuid().map(|b| b.as_str().to_owned()),
                profile_name: message.profile_name.clone(),
                language: number.default_language.clone(),
                first_message: summary(message),
                button_payload: message.button.as_ref().and_then(|b| b.payload.clone()),
                attributes: conversation.attributes(),
                reopened: matches!(opened, Opening::Reopened { .. }),
                previous_agent_id: previous_agent.map(Into::into),
                last_customer_message_at: received_at,
            },
            now,
        );
        if matches!(opened, Opening::New) {
            self.send_automated_locked(tx, &conversation, Trigger::Greeting, &RenderContext::default(), events)
                .await?;
        }
        Ok(())
    }

    /// Touches the customer's live conversation on the number (which also locks it), reopening
    /// it from Waiting, or opens a new one.
    #[allow(clippy::too_many_arguments)] // one transaction's worth of context
    async fn touch_or_open(
        &self,
        tx: &mut PgConnection,
        channel_id: Uuid,
        number: &NumberForInbound,
        customer_id: Uuid,
        message: &InboundMessage,
        received_at: time::OffsetDateTime,
        events: &mut Events,
    ) -> Result<(ConversationRow, Opening), SessionError> {
        let now = self.now();
        // The customer's 24-hour window on the number moves, and their open conversation (if
        // any) is touched and locked, in one statement.
        let existing = conversations::customer_wrote(&mut *tx, number.id, customer_id, received_at, now).await?;
        Ok(match existing {
            None => {
                let first = summary(message);
                let opened = conversations::Opened {
                    channel_id,
                    number_id: number.id,
                    customer_id,
                    workstream_id: number.workstream_id,
                    reason_code: StatusReason::AwaitingAgentAssignment.code(),
                    first_message: &first,
                    last_customer_message_at: received_at,
                };
                let row = conversations::open(&mut *tx, &opened, now).await?;
                (row, Opening::New)
            }
            Some(row) if row.status() == ConversationStatus::Waiting => {
                let previous_agent = row.agent_id.map(Into::into);
                let row = self
                    .transition_locked(tx, &row, &TransitionInput::new(Transition::CustomerMessage), events)
                    .await?;
                let row = conversations::set_first_message(&mut *tx, row.id, &summary(message)).await?;
                (row, Opening::Reopened { previous_agent })
            }
            Some(row) => (row, Opening::Continued),
        })
    }

    async fn upsert_customer(&self, tx: &mut PgConnection, channel_id: Uuid, message: &InboundMessage) -> Result<Uuid, SessionError> {
        let phone = message.customer.phone().map(|p| p.as_str().to_owned());
        let bsuid = message.customer.bsuid().map(|b| b.as_str().to_owned());
        // One round trip: find by key, phone or BSUID (refreshing what changed), or insert.
        let key = message.customer.key();
        let found = customers::Found {
            key: &key,
            phone: phone.as_deref(),
            bsuid: bsuid.as_deref(),
            wa_id: message.wa_id.as_deref(),
            profile_name: message.profile_name.as_deref(),
        };
        let id = customers::find_or_create(&mut *tx, channel_id, &found).await?;
        Ok(id)
    }
}
