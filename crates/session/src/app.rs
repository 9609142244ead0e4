//! The session application state shared by the gRPC service and the consumers.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use switchboard_domain::Clock;
use switchboard_domain::ids::ChannelId;
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
    /// Where agents' uploaded files are kept.
    pub files: crate::files::store::FileStore,
    /// The `[session]` configuration it was started with.
    pub settings: SessionSettings,
    /// Configuration read on the message path, kept in process ([`crate::config_cache`]).
    pub config: Arc<crate::config_cache::ConfigCache>,
}

impl Session {
    /// Returns now, from the session's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Returns the inbound webhook URL of a channel, with the connection overrides.
    pub fn inbound_url(&self, channel_id: impl Into<ChannelId>) -> String {
        self.webhook_url(&self.public_base_url, channel_id.into(), "inbound")
    }

    /// Returns the fallback inbound URL of a channel (a second ingress), if one is configured.
    pub fn fallback_url(&self, channel_id: impl Into<ChannelId>) -> Option<String> {
        let base = self.settings.webhooks.fallback_base_url.trim_end_matches('/');
        let channel_id = channel_id.into();
        (!base.is_empty()).then(|| self.webhook_url(base, channel_id, "inbound"))
    }

    /// Returns the status-callback URL of a channel, with the connection overrides.
    pub fn status_url(&self, channel_id: impl Into<ChannelId>) -> String {
        self.webhook_url(&self.public_base_url, channel_id.into(), "status")
    }

    fn webhook_url(&self, base: &str, channel_id: ChannelId, kind: &str) -> String {
        let overrides = self.settings.webhooks.overrides.trim();
        if overrides.is_empty() {
            format!("{base}/v1/twilio/{channel_id}/{kind}")
        } else {
            format!("{base}/v1/twilio/{channel_id}/{kind}#{overrides}")
        }
    }

    /// Writes `events` to the outbox inside the caller's transaction.
    pub async fn emit(&self, conn: &mut PgConnection, events: &Events) -> Result<(), SessionError> {
        self.outbox.enqueue(conn, events.records()).await?;
        Ok(())
    }
}

pub use switchboard_storage::outbox::EventBatch as Events;
