//! The session application state shared by the gRPC service and the consumers.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use switchboard_domain::Clock;
use switchboard_storage::outbox::Outbox;
use switchboard_twilio::TwilioClient;
use time::OffsetDateTime;

use crate::config::SessionSettings;
use crate::crypto::TokenCipher;
use crate::error::SessionError;

/// Everything a session operation needs.
pub struct Session {
    /// Postgres pool.
    pub pool: PgPool,
    /// Auth-token cipher.
    pub cipher: TokenCipher,
    /// Time (injectable, so the 24-hour rule can be tested).
    pub clock: Arc<dyn Clock>,
    /// The `session.outbox`.
    pub outbox: Outbox,
    /// Public base URL Twilio calls.
    pub public_base_url: String,
    /// Twilio REST client (media proxy).
    pub twilio: TwilioClient,
    /// Settings.
    pub settings: SessionSettings,
}

impl Session {
    /// Returns now, from the session's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Returns the inbound webhook URL of a channel.
    pub fn inbound_url(&self, channel_id: uuid::Uuid) -> String {
        format!("{}/v1/twilio/{channel_id}/inbound", self.public_base_url)
    }

    /// Returns the status-callback URL of a channel.
    pub fn status_url(&self, channel_id: uuid::Uuid) -> String {
        format!("{}/v1/twilio/{channel_id}/status", self.public_base_url)
    }

    /// Writes `events` to the outbox inside the caller's transaction.
    pub async fn emit(&self, conn: &mut PgConnection, events: &Events) -> Result<(), SessionError> {
        self.outbox.enqueue(conn, events.records()).await?;
        Ok(())
    }
}

pub use switchboard_storage::outbox::EventBatch as Events;
