//! Channel health and webhook set-up (#21 item 4).
//! - A periodic check (one replica at a time) asks Twilio whether each active channel's
//!   credentials still work and its numbers are online WhatsApp senders of the account (Senders
//!   API; not for the sandbox), and looks at whether status callbacks still arrive for what Twilio
//!   accepted; [`switchboard_domain::health::assess`] judges, the channel row keeps the verdict,
//!   and `switchboard.session.channels.unhealthy` counts the unhealthy ones (every replica reads
//!   the count after each round, so none reports a stale one).
//! - The webhook report and set-up are `channel_webhooks`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_domain::ids::ChannelId;

use switchboard_domain::health::{CallbackFacts, CredentialCheck, Health, assess};
use switchboard_twilio::{Credentials, TwilioError};
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

/// Unhealthy channels at the last check (the gauge reads it).
static UNHEALTHY: AtomicU64 = AtomicU64::new(0);

/// Registers `switchboard.session.channels.unhealthy` (once; the handle is kept for the
/// process's life so the callback stays registered).
pub fn register_metrics() {
    static GAUGE: std::sync::OnceLock<opentelemetry::metrics::ObservableGauge<u64>> = std::sync::OnceLock::new();
    GAUGE.get_or_init(|| {
        switchboard_telemetry::metrics::meter()
            .u64_observable_gauge("switchboard.session.channels.unhealthy")
            .with_description("channels whose last health check failed (credentials refused, or status callbacks stopped)")
            .with_callback(|observer| observer.observe(UNHEALTHY.load(Ordering::Relaxed), &[]))
            .build()
    });
}

pub(crate) fn twilio_failure(e: &TwilioError) -> SessionError {
    match e {
        TwilioError::Api { status: 401 | 403, .. } => {
            SessionError::Precondition("Twilio refuses the channel's credentials (20003): update its auth token".into())
        }
        other => SessionError::Unavailable(format!("Twilio: {other}")),
    }
}

impl Session {
    /// What Twilio says of `credentials`.
    pub(crate) async fn twilio_verdict(&self, credentials: &Credentials) -> CredentialCheck {
        match self.twilio.check_credentials(credentials).await {
            Ok(()) => CredentialCheck::Accepted,
            Err(TwilioError::Api {
                status: 401 | 403, code, ..
            }) => CredentialCheck::Refused { code },
            Err(e) => CredentialCheck::Unreachable(e.to_string()),
        }
    }

    pub(crate) async fn credentials(&self, channel: Uuid) -> Result<Credentials, SessionError> {
        let resolved = self.resolve_channel(channel.into()).await?;
        Ok(Credentials::account(&resolved.channel.account_sid, resolved.auth_token))
    }

    /// Refuses `phone` as a new number of `channel` when Twilio answers with the account's
    /// WhatsApp senders and it is not one of them. When Twilio cannot be asked (unreachable,
    /// or it refuses the credentials, which the channel's own health reports), the number is
    /// saved unchecked and the periodic health check looks again.
    pub(crate) async fn check_sender(&self, channel: Uuid, credentials: &Credentials, phone: &str) -> Result<(), SessionError> {
        let senders = match self.twilio.whatsapp_senders(credentials).await {
            Ok(senders) => senders,
            Err(error) => {
                tracing::warn!(channel_id = %channel, error = %error, "cannot read the account's WhatsApp senders; the number is saved unchecked");
                return Ok(());
            }
        };
        if senders.iter().any(|s| s.phone() == Some(phone)) {
            return Ok(());
        }
        let known: Vec<&str> = senders.iter().filter_map(|s| s.phone()).collect();
        Err(SessionError::Precondition(format!(
            "{phone} is not a WhatsApp sender of this Twilio account (its senders: {}); register it at Twilio first. \
             Nothing was saved (skip_sender_check saves it anyway)",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        )))
    }

    /// Checks one channel and stores the verdict; finishes a shared-key rotation Twilio has
    /// made live by then (`webhook_signing`).
    pub async fn check_channel_health(&self, channel: ChannelId) -> Result<Health, SessionError> {
        if let Err(e) = Box::pin(self.settle_webhook_signing(channel)).await {
            tracing::warn!(channel_id = %channel, error = %e, "could not follow the channel's webhook signing change at Twilio");
        }
        let resolved = self.resolve_channel(channel).await?;
        let credentials = Credentials::account(&resolved.channel.account_sid, resolved.auth_token);
        let check = self.twilio_verdict(&credentials).await;
        self.judge_channel(channel.uuid(), &credentials, resolved.channel.sandbox, check)
            .await
    }

    /// Judges a channel whose credentials Twilio answered `check` to (its senders, its status
    /// callbacks) and stores the verdict.
    pub(crate) async fn judge_channel(
        &self,
        channel: Uuid,
        credentials: &Credentials,
        sandbox: bool,
        check: CredentialCheck,
    ) -> Result<Health, SessionError> {
        let not_senders = if check == CredentialCheck::Accepted && !sandbox {
            self.numbers_not_senders(channel, credentials).await?
        } else {
            Vec::new()
        };
        let now = self.now();
        let (stuck, advanced): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status IN ('accepted', 'queued')), \
                    count(*) FILTER (WHERE status IN ('sending', 'sent', 'delivered', 'read', 'undelivered', 'failed')) \
             FROM session.messages WHERE channel_id = $1 AND direction = 'outbound' AND twilio_sid IS NOT NULL \
             AND created_at BETWEEN $2 - interval '24 hours' AND $2 - interval '15 minutes'",
        )
        .bind(channel)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let (health, reason) = assess(&check, &not_senders, CallbackFacts { stuck, advanced });
        let previous: Option<String> = sqlx::query_scalar(
            "UPDATE session.channels c SET health = $2, health_reason = $3, health_checked_at = $4 \
             FROM (SELECT health FROM session.channels WHERE id = $1) prev WHERE c.id = $1 RETURNING prev.health",
        )
        .bind(channel)
        .bind(health.as_str())
        .bind(&reason)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if previous.as_deref() != Some(health.as_str()) {
            match health {
                Health::Unhealthy => tracing::warn!(channel_id = %channel, reason = reason.as_deref(), "channel unhealthy"),
                _ => tracing::info!(channel_id = %channel, health = health.as_str(), "channel health changed"),
            }
        }
        Ok(health)
    }

    /// The channel's active numbers that cannot take messages, as `+E.164 (why)`: not online
    /// WhatsApp senders of its account, or held by a Messaging Service that drops inbound
    /// messages; none when Twilio cannot be read (that is not the number's fault).
    async fn numbers_not_senders(&self, channel: Uuid, credentials: &Credentials) -> Result<Vec<String>, SessionError> {
        let at_twilio = match self.read_webhooks_at_twilio(credentials).await {
            Ok(at_twilio) => at_twilio,
            Err(error) => {
                tracing::debug!(channel_id = %channel, error = %error, "cannot read the WhatsApp senders or Messaging Services");
                return Ok(Vec::new());
            }
        };
        let report = self.report_from(channel, &at_twilio).await?;
        Ok(report.iter().filter(|n| n.active).filter_map(|n| n.unable_to_receive()).collect())
    }

    /// Checks every active channel.
    async fn check_all_channels(&self) -> Result<(), SessionError> {
        let channels: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM session.channels WHERE deleted_at IS NULL AND active ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        for id in channels {
            if let Err(error) = self.check_channel_health(id.into()).await {
                tracing::warn!(channel_id = %id, error = %error, "channel health check failed");
            }
        }
        Ok(())
    }

    /// Reads how many channels are unhealthy into the gauge (every replica does, so none
    /// reports a stale count after another replica's check).
    async fn refresh_unhealthy_gauge(&self) -> Result<(), SessionError> {
        let unhealthy: i64 =
            sqlx::query_scalar("SELECT count(*) FROM session.channels WHERE deleted_at IS NULL AND active AND health = 'unhealthy'")
                .fetch_one(&self.pool)
                .await?;
        UNHEALTHY.store(u64::try_from(unhealthy).unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }
}

/// One round of the periodic checks: every channel, by one replica at a time; then every
/// replica refreshes its unhealthy-channel gauge.
pub async fn check_round(session: Arc<Session>) {
    let checked = switchboard_storage::singleton::run_if_first(&session.pool, "session.channel_health", session.check_all_channels()).await;
    if let Some(Err(error)) = checked {
        tracing::warn!(error = %error, "channel health checks failed");
    }
    if let Err(error) = session.refresh_unhealthy_gauge().await {
        tracing::warn!(error = %error, "cannot count unhealthy channels");
    }
}
