//! The webhook application service: content type, size, channel, signature, parse, account
//! check, confirmed publish, in that order. Nothing is published unless every check passes.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use secrecy::ExposeSecret;
use switchboard_bus::events::{InboundReceivedV1, StatusReceivedV1};
use switchboard_bus::{Envelope, Event, PublishError, Publisher, Topology};
use switchboard_domain::Clock;
use switchboard_twilio::webhook::SignatureError;
use switchboard_twilio::{Unverified, Webhook};

use crate::channels::{ChannelResolver, ResolveError};
use crate::config::Config;

/// Which webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An incoming message.
    Inbound,
    /// A status callback.
    Status,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Status => "status",
        }
    }
}

/// A webhook as received.
#[derive(Debug)]
pub struct Received<'a> {
    /// Which route.
    pub kind: Kind,
    /// `{channel_id}` from the path.
    pub channel_id: &'a str,
    /// The path and query exactly as received (`/v1/twilio/…?…`).
    pub path_and_query: &'a str,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `X-Twilio-Signature`.
    pub signature: Option<&'a str>,
    /// `I-Twilio-Idempotency-Token`.
    pub idempotency_token: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

/// Why a webhook was refused (each maps to one HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 415.
    #[error("expected application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    /// 404.
    #[error("unknown or inactive channel")]
    UnknownChannel,
    /// 403.
    #[error("signature does not match")]
    BadSignature,
    /// 403.
    #[error("AccountSid does not belong to this channel")]
    AccountMismatch,
    /// 400.
    #[error("{0}")]
    Malformed(String),
    /// 503.
    #[error("temporarily unavailable")]
    Unavailable,
}

impl Refusal {
    /// Returns the outcome label used in logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UnknownChannel => "unknown_channel",
            Self::BadSignature => "bad_signature",
            Self::AccountMismatch => "account_mismatch",
            Self::Malformed(_) => "malformed",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Verifies and publishes webhooks.
pub struct Webhooks {
    resolver: ChannelResolver,
    publisher: Publisher,
    topology: Topology,
    public_base_url: String,
    clock: Arc<dyn Clock>,
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl Webhooks {
    /// Builds the service.
    pub fn new(resolver: ChannelResolver, publisher: Publisher, config: &Config, clock: Arc<dyn Clock>) -> Self {
        let meter = switchboard_telemetry::metrics::meter();
        Self {
            resolver,
            topology: publisher.broker().topology().clone(),
            publisher,
            public_base_url: config.public_base_url.clone(),
            clock,
            requests: meter
                .u64_counter("switchboard.ingress.webhooks")
                .with_description("webhooks by kind and outcome")
                .build(),
            duration: meter
                .f64_histogram("switchboard.ingress.ack.duration")
                .with_unit("s")
                .with_description("time to answer Twilio")
                .build(),
        }
    }

    /// Handles one webhook; `Ok` means it was published and confirmed.
    pub async fn handle(&self, received: Received<'_>) -> Result<(), Refusal> {
        let started = Instant::now();
        let result = self.process(&received).await;
        let outcome = result.as_ref().map_or_else(Refusal::outcome, |()| "accepted");
        let attrs = [KeyValue::new("kind", received.kind.as_str()), KeyValue::new("outcome", outcome)];
        self.requests.add(1, &attrs);
        self.duration.record(started.elapsed().as_secs_f64(), &attrs);
        tracing::Span::current().record("outcome", outcome);
        match &result {
            Ok(()) => tracing::debug!(kind = received.kind.as_str(), "webhook accepted"),
            Err(refusal) => {
                tracing::info!(kind = received.kind.as_str(), outcome, reason = %refusal, "webhook refused")
            }
        }
        result
    }

    async fn process(&self, r: &Received<'_>) -> Result<(), Refusal> {
        let form = r.content_type.and_then(|ct| ct.split(';').next()).map(str::trim);
        if !form.is_some_and(|ct| ct.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let channel = match self.resolver.resolve(r.channel_id).await {
            Ok(channel) if channel.active => channel,
            Ok(_) | Err(ResolveError::NotFound) => return Err(Refusal::UnknownChannel),
            Err(ResolveError::Unavailable(error)) => {
                tracing::warn!(error, "cannot resolve channel");
                return Err(Refusal::Unavailable);
            }
        };
        // The URL Twilio signed: our public base plus the path and query as received.
        let url = format!("{}{}", self.public_base_url, r.path_and_query);
        let verified = Webhook::<Unverified>::from_form(r.body)
            .verify(channel.auth_token.expose_secret(), &url, r.signature)
            .map_err(|e: SignatureError| {
                tracing::debug!(error = %e, "signature check failed");
                Refusal::BadSignature
            })?;
        let received_at = self.clock.now();
        let idempotency_token = r.idempotency_token.map(str::to_owned);
        match r.kind {
            Kind::Inbound => {
                let message = verified.inbound().map_err(|e| Refusal::Malformed(e.to_string()))?;
                tracing::Span::current().record("message_sid", message.message_sid.as_str());
                if message.account_sid != channel.account_sid {
                    return Err(Refusal::AccountMismatch);
                }
                let ordering_key = format!("{}|{}", channel.channel_id, message.customer.key());
                let shard = switchboard_bus::shard_for(&ordering_key, self.topology.shards());
                let event = InboundReceivedV1 {
                    channel_id: channel.channel_id.clone(),
                    message_sid: message.message_sid,
                    ordering_key,
                    shard,
                    received_at,
                    idempotency_token,
                    params: verified.params().to_vec(),
                };
                self.publish(&Envelope::at(event, received_at)).await
            }
            Kind::Status => {
                let status = verified.status().map_err(|e| Refusal::Malformed(e.to_string()))?;
                tracing::Span::current().record("message_sid", status.message_sid.as_str());
                if status.account_sid != channel.account_sid {
                    return Err(Refusal::AccountMismatch);
                }
                let event = StatusReceivedV1 {
                    channel_id: channel.channel_id.clone(),
                    message_sid: status.message_sid,
                    status: status.status,
                    error_code: status.error_code,
                    error_message: status.error_message.or(status.channel_status_message),
                    received_at,
                };
                self.publish(&Envelope::at(event, received_at)).await
            }
        }
    }

    async fn publish<T: Event>(&self, envelope: &Envelope<T>) -> Result<(), Refusal> {
        self.publisher.publish_event(envelope, true).await.map_err(|error: PublishError| {
            tracing::warn!(error = %error, "publish failed, answering 503 so Twilio uses the fallback URL");
            Refusal::Unavailable
        })
    }
}
