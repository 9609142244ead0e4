//! Delivery results: Twilio's status callbacks and the sender's accepted/failed reports. The
//! status only moves forward (`domain::delivery`), whatever order they arrive in. A callback that
//! arrives before the sender reported the SID waits in `pending_statuses`; both paths take the
//! same advisory lock per SID, so neither can miss the other.

use std::sync::Arc;

use sqlx::{FromRow, PgConnection};
use switchboard_bus::events::{MessageStatusV1, OutboundAcceptedV1, OutboundFailedV1, StatusReceivedV1, WorkstreamUpdatedV1};
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_domain::delivery::{Delivery, DeliveryStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::error::{SessionError, parse_id};
use crate::inbound::classify;

/// Consumes `status.received.v1`, `outbound.accepted.v1`, `outbound.failed.v1`.
pub struct DeliveryHandler {
    session: Arc<Session>,
}

impl DeliveryHandler {
    /// A handler writing through `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }
}

impl Handler for DeliveryHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            let result = match incoming.routing_key.as_str() {
                "status.received.v1" => {
                    let e: Envelope<StatusReceivedV1> = incoming.json()?;
                    self.session.apply_status_callback(&e.payload).await
                }
                "outbound.accepted.v1" => {
                    let e: Envelope<OutboundAcceptedV1> = incoming.json()?;
                    self.session.apply_accepted(&e.payload).await
                }
                "outbound.failed.v1" => {
                    let e: Envelope<OutboundFailedV1> = incoming.json()?;
                    self.session.apply_failed(&e.payload).await
                }
                other => {
                    return Err(HandleError::Reject(anyhow::anyhow!("unexpected routing key {other}")));
                }
            };
            result.map_err(classify)?;
        }
        Ok(())
    }
}

/// Consumes commands for session: workstream settings published by routing.
pub struct CommandHandler {
    session: Arc<Session>,
}

impl CommandHandler {
    /// A handler writing through `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }
}

impl Handler for CommandHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            match incoming.routing_key.as_str() {
                "workstream.updated.v1" => {
                    let e: Envelope<WorkstreamUpdatedV1> = incoming.json()?;
                    self.session.apply_workstream(&e.payload).await.map_err(classify)?;
                }
                other => tracing::warn!(routing_key = other, "ignoring unknown session command"),
            }
        }
        Ok(())
    }
}

#[derive(FromRow)]
struct Tracked {
    id: Uuid,
    conversation_id: Uuid,
    status: String,
    error_code: Option<i32>,
    agent_id: Option<Uuid>,
}

const TRACKED: &str = "SELECT m.id, m.conversation_id, m.status, m.error_code, c.agent_id FROM session.messages m \
     JOIN session.conversations c ON c.id = m.conversation_id";

async fn lock_sid(conn: &mut PgConnection, channel_id: Uuid, sid: &str) -> Result<(), SessionError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("{channel_id}|{sid}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Session {
    /// Moves `message` forward to `status` if that is forward; returns whether it changed.
    async fn advance(
        &self,
        conn: &mut PgConnection,
        message: &Tracked,
        status: &str,
        code: Option<u32>,
        text: Option<&str>,
        events: &mut Events,
    ) -> Result<bool, SessionError> {
        let Some(incoming) = DeliveryStatus::from_twilio(status) else {
            tracing::debug!(status, "ignoring a status that is not an outbound delivery state");
            return Ok(false);
        };
        let current = DeliveryStatus::parse(&message.status).unwrap_or(DeliveryStatus::Pending);
        let mut delivery = Delivery {
            status: current,
            error_code: message.error_code.and_then(|c| u32::try_from(c).ok()),
        };
        if !delivery.apply(incoming, code) {
            return Ok(false);
        }
        let error_message = delivery.status.is_failure().then(|| match delivery.error_code {
            Some(c) => switchboard_twilio::errors::explain(c, text),
            None => text.unwrap_or("failed").to_owned(),
        });
        crate::metrics::delivery(delivery.status.as_str(), delivery.error_code);
        sqlx::query("UPDATE session.messages SET status = $2, error_code = $3, error_message = $4 WHERE id = $1")
            .bind(message.id)
            .bind(delivery.status.as_str())
            .bind(delivery.error_code.and_then(|c| i32::try_from(c).ok()))
            .bind(&error_message)
            .execute(&mut *conn)
            .await?;
        events.push(
            MessageStatusV1 {
                conversation_id: message.conversation_id.to_string(),
                message_id: message.id.to_string(),
                status: delivery.status.as_str().into(),
                error_code: delivery.error_code,
                error_message,
                agent_id: message.agent_id.map(|a| a.to_string()),
            },
            self.now(),
        );
        Ok(true)
    }

    /// Applies a Twilio status callback.
    pub async fn apply_status_callback(&self, event: &StatusReceivedV1) -> Result<(), SessionError> {
        let channel_id = parse_id(&event.channel_id, "channel_id")?;
        let mut tx = self.pool.begin().await?;
        lock_sid(&mut tx, channel_id, &event.message_sid).await?;
        let tracked = sqlx::query_as::<_, Tracked>(sqlx::AssertSqlSafe(format!(
            "{TRACKED} WHERE m.channel_id = $1 AND m.twilio_sid = $2 FOR UPDATE OF m"
        )))
        .bind(channel_id)
        .bind(&event.message_sid)
        .fetch_optional(&mut *tx)
        .await?;
        let mut events = Events::default();
        match tracked {
            Some(message) => {
                self.advance(
                    &mut tx,
                    &message,
                    &event.status,
                    event.error_code,
                    event.error_message.as_deref(),
                    &mut events,
                )
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO session.pending_statuses (channel_id, twilio_sid, status, error_code, error_message, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(channel_id)
                .bind(&event.message_sid)
                .bind(&event.status)
                .bind(event.error_code.and_then(|c| i32::try_from(c).ok()))
                .bind(&event.error_message)
                .bind(event.received_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the SID Twilio gave a message, then any callbacks that were waiting for it.
    pub async fn apply_accepted(&self, event: &OutboundAcceptedV1) -> Result<(), SessionError> {
        let channel_id = parse_id(&event.channel_id, "channel_id")?;
        let message_id = parse_id(&event.message_id, "message_id")?;
        let mut tx = self.pool.begin().await?;
        lock_sid(&mut tx, channel_id, &event.twilio_sid).await?;
        let updated = sqlx::query("UPDATE session.messages SET twilio_sid = $2 WHERE id = $1 AND (twilio_sid IS NULL OR twilio_sid = $2)")
            .bind(message_id)
            .bind(&event.twilio_sid)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            tracing::warn!(%message_id, "accepted report for an unknown message or a different SID, ignored");
            return Ok(());
        }
        let message = sqlx::query_as::<_, Tracked>(sqlx::AssertSqlSafe(format!("{TRACKED} WHERE m.id = $1 FOR UPDATE OF m")))
            .bind(message_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut events = Events::default();
        let mut current = message;
        let mut updates: Vec<(String, Option<i32>, Option<String>)> = vec![(event.status.clone(), None, None)];
        let waiting: Vec<(String, Option<i32>, Option<String>)> = sqlx::query_as(
            "DELETE FROM session.pending_statuses WHERE channel_id = $1 AND twilio_sid = $2 RETURNING status, error_code, error_message",
        )
        .bind(channel_id)
        .bind(&event.twilio_sid)
        .fetch_all(&mut *tx)
        .await?;
        updates.extend(waiting);
        for (status, code, text) in updates {
            if self
                .advance(
                    &mut tx,
                    &current,
                    &status,
                    code.and_then(|c| u32::try_from(c).ok()),
                    text.as_deref(),
                    &mut events,
                )
                .await?
            {
                current = sqlx::query_as::<_, Tracked>(sqlx::AssertSqlSafe(format!("{TRACKED} WHERE m.id = $1")))
                    .bind(message_id)
                    .fetch_one(&mut *tx)
                    .await?;
            }
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a message failed for good.
    pub async fn apply_failed(&self, event: &OutboundFailedV1) -> Result<(), SessionError> {
        let message_id = parse_id(&event.message_id, "message_id")?;
        let mut tx = self.pool.begin().await?;
        let Some(message) = sqlx::query_as::<_, Tracked>(sqlx::AssertSqlSafe(format!("{TRACKED} WHERE m.id = $1 FOR UPDATE OF m")))
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tracing::warn!(%message_id, "failure report for an unknown message, ignored");
            return Ok(());
        };
        let mut events = Events::default();
        self.advance(
            &mut tx,
            &message,
            "failed",
            event.error_code,
            Some(&event.error_message),
            &mut events,
        )
        .await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the workstream settings routing published.
    pub async fn apply_workstream(&self, event: &WorkstreamUpdatedV1) -> Result<(), SessionError> {
        let id = parse_id(&event.workstream_id, "workstream_id")?;
        if event.deleted {
            sqlx::query("DELETE FROM session.workstreams WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            return Ok(());
        }
        let bot = event.bot_id.as_deref().map(|b| parse_id(b, "bot_id")).transpose()?;
        sqlx::query(
            "INSERT INTO session.workstreams (id, waiting_auto_close_secs, bot_id, bot_inactivity_secs, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET waiting_auto_close_secs = EXCLUDED.waiting_auto_close_secs, bot_id = EXCLUDED.bot_id, \
             bot_inactivity_secs = EXCLUDED.bot_inactivity_secs, updated_at = EXCLUDED.updated_at",
        )
        .bind(id)
        .bind(event.waiting_auto_close_secs)
        .bind(bot)
        .bind(event.bot_inactivity_secs)
        .bind(OffsetDateTime::now_utc())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
