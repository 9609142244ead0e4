//! Sending one message: claim it (a message Twilio already accepted, or one cancelled or failed
//! for good, is never sent again); wait for its number's slot; call Twilio with quick retries
//! (exponential backoff with jitter, `Retry-After` honoured); record the SID and
//! `outbound.accepted.v1` atomically, or `outbound.failed.v1` for a permanent error. Transient
//! failures beyond the quick retries are parked on the bus's delay queues. Two database round
//! trips per send on the normal path.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use sqlx::PgPool;
use switchboard_bus::events::{OutboundAcceptedV1, OutboundCancelledV1, OutboundContent, OutboundFailedV1, OutboundSendV1};
use switchboard_bus::{Envelope, Event, HandleError, Handler, Incoming};
use switchboard_domain::ids::ChannelId;
use switchboard_storage::outbox::{Outbox, OutboxRecord};
use switchboard_twilio::messages::CreateMessage;
use switchboard_twilio::{Credentials, TwilioClient, TwilioError};
use uuid::Uuid;

use crate::claim::{Claim, Claims, Sent};
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
    claims: Claims,
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
            claims: Claims::new(pool.clone(), twilio.clone(), &settings),
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

    pub(crate) fn count(&self, outcome: &'static str, code: Option<u32>) {
        let code = code.map_or_else(String::new, |c| c.to_string());
        self.sends
            .add(1, &[KeyValue::new("outcome", outcome), KeyValue::new("twilio.error_code", code)]);
    }

    /// Returns the credentials of a channel (template sync).
    pub async fn credentials_for(&self, channel_id: ChannelId) -> Result<Credentials, CredentialsError> {
        self.credentials.get(channel_id).await
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
        let id = event.message_id.uuid();
        // One round trip claims the send under a lease (crate::claim). A send Twilio already
        // accepted, or one cancelled or failed for good, is never sent again; one another copy
        // holds waits.
        let (fence, reconcile, since) = match self.claims.claim(id, event).await? {
            Claim::Done => {
                tracing::info!(message_id = %id, "already accepted by Twilio, cancelled or failed; not sending again");
                return Ok(());
            }
            Claim::Held(wait) => return Err(HandleError::Defer(wait)),
            Claim::Go { fence, reconcile, since } => (fence, reconcile, since),
        };
        let credentials = match self.credentials.get(event.channel_id).await {
            Ok(c) => c,
            Err(CredentialsError::Gone) => {
                return self
                    .fail(id, fence, event, None, "the channel no longer exists or is inactive")
                    .await;
            }
            // On the last attempt the send is failed where the agent sees it, not dead-lettered
            // and left pending.
            Err(error @ CredentialsError::Unavailable(_)) if attempt >= self.max_attempts && !reconcile => {
                return self
                    .fail(id, fence, event, None, &format!("gave up after {attempt} attempts: {error}"))
                    .await;
            }
            Err(error @ CredentialsError::Unavailable(_)) => {
                let sent = if reconcile { Sent::Maybe } else { Sent::No };
                self.claims.release(id, fence, sent).await?;
                return Err(HandleError::retry(error));
            }
        };
        if reconcile {
            // An earlier attempt may have reached Twilio: look before sending again.
            match self.claims.find_sent(&credentials, event, since).await {
                Ok(Some((sid, status))) => {
                    tracing::info!(message_id = %id, twilio_sid = %sid, "found in Twilio's Messages list; recorded, not sent again");
                    self.count("reconciled", None);
                    return self.accepted(id, event, &sid, &status).await;
                }
                Ok(None) => tracing::info!(message_id = %id, "not in Twilio's Messages list; sending"),
                Err(error) => {
                    self.claims.release(id, fence, Sent::Maybe).await?;
                    return Err(HandleError::retry(anyhow::anyhow!(
                        "cannot look the send up in Twilio's Messages list: {error}"
                    )));
                }
            }
        }
        let rate = if event.rate_per_second > 0.0 {
            event.rate_per_second
        } else {
            self.settings.default_rate_per_second
        };
        let max_wait = Duration::from_millis(self.settings.max_rate_wait_ms);
        match self
            .limiter
            .reserve(&event.number_id.to_string(), &credentials.account_sid, rate, max_wait)
        {
            Ok(at) => tokio::time::sleep_until(at).await,
            Err(wait) => {
                self.claims.release(id, fence, Sent::No).await?;
                return Err(HandleError::Defer(wait));
            }
        }
        let message = request(event);
        let mut quick = 0;
        loop {
            match self.twilio.create_message(&credentials, &message).await {
                Ok(resource) => {
                    let sid = resource.sid.unwrap_or_default();
                    return self.accepted(id, event, &sid, resource.status.as_deref().unwrap_or("queued")).await;
                }
                Err(error @ TwilioError::Lost(_)) => {
                    // Twilio may have it: the next attempt looks it up before any resend.
                    tracing::warn!(message_id = %id, error = %error, "the outcome of a send is unknown; it will be looked up before any resend");
                    self.count("unknown", None);
                    if attempt >= self.max_attempts {
                        // No next attempt: look now, and fail it only if Twilio does not have it.
                        if let Ok(Some((sid, status))) = self.claims.find_sent(&credentials, event, since).await {
                            return self.accepted(id, event, &sid, &status).await;
                        }
                        let reason = format!(
                            "gave up after {attempt} attempts; the last answer was lost and Twilio's Messages list does not have it"
                        );
                        return self.fail(id, fence, event, None, &reason).await;
                    }
                    self.claims.release(id, fence, Sent::Maybe).await?;
                    return Err(HandleError::retry(error));
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
                        return self
                            .fail(
                                id,
                                fence,
                                event,
                                error.code(),
                                &format!("gave up after {attempt} attempts: {error}"),
                            )
                            .await;
                    }
                    self.claims.release(id, fence, Sent::No).await?;
                    return Err(HandleError::retry(error));
                }
                Err(error) => {
                    let text = match &error {
                        TwilioError::Api { message, .. } => message.clone(),
                        other => other.to_string(),
                    };
                    return self.fail(id, fence, event, error.code(), &text).await;
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

    /// Records the outcome and its event in one statement (atomic, one round trip).
    async fn record<T: Event>(
        &self,
        sql: &'static str,
        id: Uuid,
        event: T,
        bind: impl FnOnce(
            sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), HandleError> {
        let record = OutboxRecord::from_envelope(&Envelope::new(event));
        let query = sqlx::query(sql)
            .bind(id)
            .bind(record.message_id)
            .bind(record.routing_key.clone())
            .bind(record.payload.clone())
            .bind(serde_json::json!(record.headers));
        bind(query).execute(&self.pool).await.map_err(HandleError::retry)?;
        self.outbox.wake();
        Ok(())
    }

    async fn accepted(&self, id: Uuid, event: &OutboundSendV1, sid: &str, status: &str) -> Result<(), HandleError> {
        let accepted = OutboundAcceptedV1 {
            message_id: event.message_id,
            channel_id: event.channel_id,
            twilio_sid: sid.into(),
            status: status.into(),
        };
        let sid = sid.to_owned();
        self.record(
            "WITH recorded AS (UPDATE sender.deliveries SET status = 'accepted', twilio_sid = $6, lease_until = NULL, updated_at = now() \
             WHERE message_id = $1 AND twilio_sid IS NULL RETURNING 1), \
             queued AS (INSERT INTO sender.outbox (message_id, routing_key, payload, headers) SELECT $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM recorded)) \
             SELECT 1",
            id,
            accepted,
            move |q| q.bind(sid),
        )
        .await?;
        self.count("accepted", None);
        Ok(())
    }

    /// Fails the send for good, as claim `fence`: a stale claim changes nothing.
    async fn fail(&self, id: Uuid, fence: i32, event: &OutboundSendV1, code: Option<u32>, text: &str) -> Result<(), HandleError> {
        tracing::warn!(message_id = %id, error_code = ?code, reason = text, "send failed permanently");
        let failed = OutboundFailedV1 {
            message_id: event.message_id,
            channel_id: event.channel_id,
            error_code: code,
            error_message: text.into(),
        };
        let (code_i32, text) = (code.and_then(|c| i32::try_from(c).ok()), text.to_owned());
        self.record(
            "WITH recorded AS (UPDATE sender.deliveries SET status = 'failed', error_code = $6, error_message = $7, lease_until = NULL, \
             updated_at = now() WHERE message_id = $1 AND twilio_sid IS NULL AND attempts = $8 RETURNING 1), \
             queued AS (INSERT INTO sender.outbox (message_id, routing_key, payload, headers) SELECT $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM recorded)) \
             SELECT 1",
            id,
            failed,
            move |q| q.bind(code_i32).bind(text).bind(fence),
        )
        .await?;
        self.count("failed", code);
        Ok(())
    }

    async fn cancel(&self, event: &OutboundCancelledV1) -> Result<(), HandleError> {
        let id = event.message_id.uuid();
        sqlx::query(
            "INSERT INTO sender.deliveries (message_id, status) VALUES ($1, 'cancelled') \
             ON CONFLICT (message_id) DO UPDATE SET status = 'cancelled', updated_at = now() WHERE sender.deliveries.twilio_sid IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(HandleError::retry)?;
        Ok(())
    }
}
