//! Inbound messages that no number takes: sent to a number not configured on their channel, or
//! to an inactive one. Ingress cannot tell (it knows channels, not numbers) and answers 200, so
//! Twilio does not retry a message that can never be routed; session records each one where an
//! admin sees it (`GET /api/v1/unroutable-messages`), counts it
//! (`switchboard.session.inbound.unroutable`) and logs the channel and number, instead of
//! dead-lettering it unseen. The verified parameters are kept, so it can be replayed once the
//! number is set up.

use sqlx::{FromRow, PgConnection};
use switchboard_bus::events::InboundReceivedV1;
use switchboard_twilio::InboundMessage;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

/// Why no number takes a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The channel has no such number (or it was deleted).
    UnknownNumber,
    /// The number or its channel is inactive.
    InactiveNumber,
}

impl Reason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownNumber => "unknown_number",
            Self::InactiveNumber => "inactive_number",
        }
    }
}

/// A recorded message.
#[derive(Debug, Clone, FromRow)]
pub struct Unroutable {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub message_sid: String,
    pub to_number: String,
    pub from_address: String,
    pub reason: String,
    pub body: String,
    pub received_at: OffsetDateTime,
}

impl Session {
    /// Records `message` as unroutable inside the caller's transaction (once per MessageSid).
    pub(crate) async fn record_unroutable(
        &self,
        tx: &mut PgConnection,
        event: &InboundReceivedV1,
        message: &InboundMessage,
        reason: Reason,
    ) -> Result<(), SessionError> {
        let channel_id = event.channel_id.uuid();
        let params: serde_json::Map<String, serde_json::Value> = event
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let inserted = sqlx::query(
            "INSERT INTO session.unroutable_messages (id, channel_id, message_sid, to_number, from_address, reason, body, params, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (channel_id, message_sid) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(channel_id)
        .bind(&message.message_sid)
        .bind(message.to.as_str())
        .bind(message.customer.key())
        .bind(reason.as_str())
        .bind(&message.body)
        .bind(serde_json::Value::Object(params))
        .bind(event.received_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            crate::metrics::unroutable(reason.as_str());
            tracing::warn!(
                channel_id = %channel_id,
                number = message.to.as_str(),
                message_sid = %message.message_sid,
                reason = reason.as_str(),
                "inbound message to a number that cannot take it; recorded as unroutable"
            );
        }
        Ok(())
    }

    /// Lists recorded messages, newest first, of one channel or all.
    pub async fn list_unroutable(&self, channel_id: Option<Uuid>, limit: i64) -> Result<Vec<Unroutable>, SessionError> {
        Ok(sqlx::query_as::<_, Unroutable>(
            "SELECT id, channel_id, message_sid, to_number, from_address, reason, body, received_at FROM session.unroutable_messages \
             WHERE $1::uuid IS NULL OR channel_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(channel_id)
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?)
    }
}
