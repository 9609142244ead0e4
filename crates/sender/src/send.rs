//! Sending one message: skip it if Twilio already accepted it (its SID is recorded) or it was
//! cancelled; wait for its number's slot; call Twilio with quick retries (exponential backoff
//! with jitter, `Retry-After` honoured); record the SID and `outbound.accepted.v1` in one
//! transaction, or `outbound.failed.v1` for a permanent error. Transient failures beyond the
//! quick retries are parked on the bus's delay queues.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use sqlx::PgPool;
use switchboard_bus::events::{OutboundAcceptedV1, OutboundCancelledV1, OutboundContent, OutboundFailedV1, OutboundSendV1};
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_storage::outbox::{Outbox, OutboxRecord};
use switchboard_twilio::messages::CreateMessage;
use switchboard_twilio::{Credentials, TwilioClient, TwilioError};
use uuid::Uuid;

use crate::config::SenderSettings;
use crate::credentials::{CredentialStore, CredentialsError};
use crate::limiter::RateLimiter;

/// The sender's shared state.
pub struct App {
    pub pool: PgPool,
    pub outbox: Outbox,
    pub twilio: TwilioClient,
    pub credentials: CredentialStore,
    pub limiter: RateLimiter,
    pub settings: SenderSettings,
    /// The bus's attempt limit: on the last attempt a transient error becomes final.
    pub max_attempts: u32,
    sends: Counter<u64>,
}

impl App {
    /// Builds the state.
    pub fn new(pool: PgPool, twilio: TwilioClient, credentials: CredentialStore, settings: SenderSettings, max_attempts: u32) -> Self {
        let sends = switchboard_telemetry::metrics::meter()
            .u64_counter("switchboard.sender.sends")
            .with_description("Twilio send outcomes")
            .build();
        Self {
            pool,
            outbox: Outbox::new("sender"),
            twilio,
            credentials,
            limiter: RateLimiter::new(settings.rate_safety),
            settings,
            max_attempts,
            sends,
        }
    }

    fn count(&self, outcome: &'static str, code: Option<u32>) {
        self.sends.add(
            1,
            &[
                KeyValue::new("outcome", outcome),
                KeyValue::new("twilio.error_code", code.map_or_else(String::new, |c| c.to_string())),
            ],
        );
    }
}

/// Consumes `outbound.send.v1` and `outbound.cancelled.v1`.
pub struct SendHandler {
    app: Arc<App>,
}

impl SendHandler {
    /// A handler on `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

fn transient(error: impl Into<anyhow::Error>) -> HandleError {
    HandleError::Retry(error.into())
}

impl Handler for SendHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            match incoming.routing_key.as_str() {
                "outbound.send.v1" => {
                    let envelope: Envelope<OutboundSendV1> = incoming.json()?;
                    self.app.send(&envelope.payload, incoming.attempt).await?;
                }
                "outbound.cancelled.v1" => {
                    let envelope: Envelope<OutboundCancelledV1> = incoming.json()?;
                    self.app.cancel(&envelope.payload).await?;
                }
                other => return Err(HandleError::Reject(anyhow::anyhow!("unexpected routing key {other}"))),
            }
        }
        Ok(())
    }
}

fn request(event: &OutboundSendV1) -> CreateMessage {
    let mut message = CreateMessage {
        to: event.to.clone(),
        from: event.from.clone(),
        status_callback: Some(event.status_callback.clone()),
        ..Default::default()
    };
    match &event.content {
        OutboundContent::Text { body } => message.body = Some(body.clone()),
        OutboundContent::Media { url, caption, .. } => {
            message.media_urls = vec![url.clone()];
            message.body = caption.clone();
        }
        OutboundContent::Template {
            content_sid,
            variables_json,
        } => {
            message.content_sid = Some(content_sid.clone());
            message.content_variables = Some(variables_json.clone());
        }
    }
    message
}

impl App {
    async fn send(&self, event: &OutboundSendV1, attempt: u32) -> Result<(), HandleError> {
        let message_id =
            Uuid::parse_str(&event.message_id).map_err(|_| HandleError::Reject(anyhow::anyhow!("message_id is not a UUID")))?;
        let known: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, twilio_sid FROM sender.deliveries WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(transient)?;
        match known.as_ref() {
            Some((_, Some(sid))) => {
                tracing::info!(%message_id, twilio_sid = %sid, "already accepted by Twilio; not sending again");
                return Ok(());
            }
            Some((status, None)) if status == "cancelled" || status == "failed" => return Ok(()),
            _ => {}
        }
        let credentials = match self.credentials.get(&event.channel_id).await {
            Ok(c) => c,
            Err(CredentialsError::Gone) => {
                return self
                    .fail(message_id, event, None, "the channel no longer exists or is inactive")
                    .await;
            }
            Err(error @ CredentialsError::Unavailable(_)) => return Err(transient(error)),
        };
        let rate = if event.rate_per_second > 0.0 {
            event.rate_per_second
        } else {
            self.settings.default_rate_per_second
        };
        match self.limiter.reserve(
            &event.number_id,
            &credentials.account_sid,
            rate,
            Duration::from_millis(self.settings.max_rate_wait_ms),
        ) {
            Ok(at) => tokio::time::sleep_until(at).await,
            Err(wait) => return Err(HandleError::Defer(wait)),
        }
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO sender.deliveries (message_id, channel_id, number_id, status, attempts) VALUES ($1, $2, $3, 'sending', 1) \
             ON CONFLICT (message_id) DO UPDATE SET attempts = sender.deliveries.attempts + 1, updated_at = now() \
             WHERE sender.deliveries.twilio_sid IS NULL RETURNING status",
        )
        .bind(message_id)
        .bind(Uuid::parse_str(&event.channel_id).ok())
        .bind(Uuid::parse_str(&event.number_id).ok())
        .fetch_optional(&self.pool)
        .await
        .map_err(transient)?;
        if claimed.as_deref() != Some("sending") {
            return Ok(()); // cancelled, or accepted by a concurrent delivery of the same event
        }
        let message = request(event);
        let mut quick = 0;
        loop {
            match self.twilio.create_message(&credentials, &message).await {
                Ok(resource) => {
                    let sid = resource.sid.unwrap_or_default();
                    return self
                        .accepted(message_id, event, &sid, resource.status.as_deref().unwrap_or("queued"))
                        .await;
                }
                Err(error) if error.is_retryable() => {
                    if let Some(after) = error.retry_after() {
                        self.limiter.pause(&credentials.account_sid, tokio::time::Instant::now() + after);
                    }
                    if quick < self.settings.http_retries {
                        tokio::time::sleep(self.backoff(quick, &error)).await;
                        quick += 1;
                        continue;
                    }
                    self.count("retry", error.code());
                    if attempt >= self.max_attempts {
                        let text = format!("gave up after {attempt} attempts: {error}");
                        return self.fail(message_id, event, error.code(), &text).await;
                    }
                    return Err(transient(error));
                }
                Err(error) => {
                    let text = match &error {
                        TwilioError::Api { message, .. } => message.clone(),
                        other => other.to_string(),
                    };
                    return self.fail(message_id, event, error.code(), &text).await;
                }
            }
        }
    }

    fn backoff(&self, attempt: u32, error: &TwilioError) -> Duration {
        let max = Duration::from_millis(self.settings.max_retry_after_ms);
        if let Some(after) = error.retry_after() {
            return after.min(max);
        }
        let base = Duration::from_millis(self.settings.retry_base_ms) * 2u32.saturating_pow(attempt);
        base.mul_f64(0.8 + fastrand::f64() * 0.4).min(max)
    }

    async fn accepted(&self, message_id: Uuid, event: &OutboundSendV1, sid: &str, status: &str) -> Result<(), HandleError> {
        let mut tx = self.pool.begin().await.map_err(transient)?;
        sqlx::query("UPDATE sender.deliveries SET status = 'accepted', twilio_sid = $2, updated_at = now() WHERE message_id = $1")
            .bind(message_id)
            .bind(sid)
            .execute(&mut *tx)
            .await
            .map_err(transient)?;
        let accepted = OutboundAcceptedV1 {
            message_id: event.message_id.clone(),
            channel_id: event.channel_id.clone(),
            twilio_sid: sid.into(),
            status: status.into(),
        };
        self.outbox
            .enqueue(&mut tx, &[OutboxRecord::from_envelope(&Envelope::new(accepted))])
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        self.count("accepted", None);
        Ok(())
    }

    async fn fail(&self, message_id: Uuid, event: &OutboundSendV1, code: Option<u32>, text: &str) -> Result<(), HandleError> {
        tracing::warn!(%message_id, error_code = ?code, reason = text, "send failed permanently");
        let mut tx = self.pool.begin().await.map_err(transient)?;
        sqlx::query(
            "INSERT INTO sender.deliveries (message_id, channel_id, number_id, status, error_code, error_message) VALUES ($1, $2, $3, 'failed', $4, $5) \
             ON CONFLICT (message_id) DO UPDATE SET status = 'failed', error_code = $4, error_message = $5, updated_at = now() \
             WHERE sender.deliveries.twilio_sid IS NULL",
        )
        .bind(message_id)
        .bind(Uuid::parse_str(&event.channel_id).ok())
        .bind(Uuid::parse_str(&event.number_id).ok())
        .bind(code.and_then(|c| i32::try_from(c).ok()))
        .bind(text)
        .execute(&mut *tx)
        .await
        .map_err(transient)?;
        let failed = OutboundFailedV1 {
            message_id: event.message_id.clone(),
            channel_id: event.channel_id.clone(),
            error_code: code,
            error_message: text.into(),
        };
        self.outbox
            .enqueue(&mut tx, &[OutboxRecord::from_envelope(&Envelope::new(failed))])
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        self.count("failed", code);
        Ok(())
    }

    async fn cancel(&self, event: &OutboundCancelledV1) -> Result<(), HandleError> {
        let message_id =
            Uuid::parse_str(&event.message_id).map_err(|_| HandleError::Reject(anyhow::anyhow!("message_id is not a UUID")))?;
        sqlx::query(
            "INSERT INTO sender.deliveries (message_id, status) VALUES ($1, 'cancelled') \
             ON CONFLICT (message_id) DO UPDATE SET status = 'cancelled', updated_at = now() WHERE sender.deliveries.twilio_sid IS NULL",
        )
        .bind(message_id)
        .execute(&self.pool)
        .await
        .map_err(transient)?;
        Ok(())
    }

    /// Returns the credentials of a channel (template sync).
    pub async fn credentials_for(&self, channel_id: &str) -> Result<Credentials, CredentialsError> {
        self.credentials.get(channel_id).await
    }
}
