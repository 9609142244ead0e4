//! The webhook application service: content type, size, channel, signature, parse, account
//! check, confirmed publish, in that order. Nothing is published unless every check passes.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use secrecy::ExposeSecret;
use switchboard_bus::events::{InboundReceivedV1, StatusReceivedV1};
use switchboard_bus::{Envelope, PublishError, Publisher, Topology};
use switchboard_domain::Clock;
use switchboard_domain::ids::ChannelId;
use switchboard_twilio::webhook::SignatureError;
use switchboard_twilio::{Unverified, Verified, Webhook};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::channels::{ChannelDirectory, ResolveError, ResolvedChannel};
use crate::config::Config;
use crate::journal::Journal;

/// Which webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An incoming message.
    Inbound,
    /// A status callback.
    Status,
}

impl Kind {
    /// The name used in logs, metrics and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Status => "status",
        }
    }

    /// Parses [`Kind::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "inbound" => Some(Self::Inbound),
            "status" => Some(Self::Status),
            _ => None,
        }
    }

    /// The status an accepted webhook of this kind is answered with (TwiML, or no content).
    pub fn accepted_status(self) -> StatusCode {
        match self {
            Self::Inbound => StatusCode::OK,
            Self::Status => StatusCode::NO_CONTENT,
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
    /// `X-Twilio-Webhooks-Signature-Settings` (a SharedKey signed it).
    pub signature_settings: Option<&'a str>,
    /// `I-Twilio-Idempotency-Token`.
    pub idempotency_token: Option<&'a str>,
    /// `User-Agent` (journaled).
    pub user_agent: Option<&'a str>,
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
    /// 403: the signature settings name an algorithm this version does not support, or no key.
    #[error("unsupported X-Twilio-Webhooks-Signature-Settings")]
    UnsupportedSignature,
    /// 500: signed with a shared key this channel does not hold (yet: Twilio retries a 5xx
    /// where the URL's overrides say so, so a key added moments later loses nothing).
    #[error("signed with a shared key this channel does not hold")]
    UnknownSigningKey,
    /// 400.
    #[error("{0}")]
    Malformed(String),
    /// 503.
    #[error("temporarily unavailable")]
    Unavailable,
}

impl Refusal {
    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnknownChannel => StatusCode::NOT_FOUND,
            Self::BadSignature | Self::AccountMismatch | Self::UnsupportedSignature => StatusCode::FORBIDDEN,
            Self::UnknownSigningKey => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Returns the outcome label used in logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UnknownChannel => "unknown_channel",
            Self::BadSignature => "bad_signature",
            Self::AccountMismatch => "account_mismatch",
            Self::UnsupportedSignature => "unsupported_signature",
            Self::UnknownSigningKey => "unknown_signing_key",
            Self::Malformed(_) => "malformed",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Verifies and publishes webhooks.
pub struct Webhooks {
    resolver: ChannelDirectory,
    publisher: Publisher,
    topology: Topology,
    public_base_url: String,
    clock: Arc<dyn Clock>,
    journal: Option<Journal>,
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl Webhooks {
    /// Builds the service.
    pub fn new(resolver: ChannelDirectory, publisher: Publisher, config: &Config, clock: Arc<dyn Clock>, journal: Option<Journal>) -> Self {
        let meter = switchboard_telemetry::metrics::meter();
        Self {
            resolver,
            topology: publisher.broker().topology().clone(),
            publisher,
            public_base_url: config.public_base_url.clone(),
            clock,
            journal,
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
        let mut verified = None;
        let result = self.process(&received, &mut verified).await;
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
        if let (Some(journal), Some((webhook, received_at))) = (&self.journal, verified) {
            let answer = result.as_ref().map_or_else(Refusal::status, |()| received.kind.accepted_status());
            journal.record(journal_entry(&received, webhook, received_at, answer, outcome));
        }
        result
    }

    /// Checks and publishes; once the signature verifies, `verified` holds the webhook.
    async fn process(&self, r: &Received<'_>, verified: &mut Option<(Webhook<Verified>, OffsetDateTime)>) -> Result<(), Refusal> {
        let form = r.content_type.and_then(|ct| ct.split(';').next()).map(str::trim);
        if !form.is_some_and(|ct| ct.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let mut channel = self.channel(r.channel_id).await?;
        // The URL Twilio signed: our public base plus the path and query as received.
        let url = format!("{}{}", self.public_base_url, r.path_and_query);
        let verify = |channel: &ResolvedChannel| {
            Webhook::<Unverified>::from_form(r.body).verify_with(
                channel.auth_token.expose_secret(),
                |key| channel.webhook_key(key),
                &url,
                r.signature,
                r.signature_settings,
            )
        };
        let mut checked = verify(&channel);
        if checked.as_ref().is_err_and(|e| *e == SignatureError::UnknownKey) && self.resolver.forget(channel.channel_id).await {
            // A key added since the channel was cached: ask session once more.
            channel = self.channel(r.channel_id).await?;
            checked = verify(&channel);
        }
        let webhook = checked.map_err(|e: SignatureError| {
            tracing::debug!(error = %e, settings = r.signature_settings, "signature check failed");
            match e {
                SignatureError::UnknownKey => Refusal::UnknownSigningKey,
                SignatureError::UnsupportedSettings => Refusal::UnsupportedSignature,
                SignatureError::Missing | SignatureError::Mismatch => Refusal::BadSignature,
            }
        })?;
        let received_at = self.clock.now();
        let webhook = &verified.insert((webhook, received_at)).0;
        let event = Outgoing::build(
            r.kind,
            channel.channel_id,
            webhook,
            received_at,
            r.idempotency_token.map(str::to_owned),
            self.topology.shards(),
        )?;
        if event.account_sid() != channel.account_sid {
            return Err(Refusal::AccountMismatch);
        }
        self.publish(event).await
    }

    async fn channel(&self, id: &str) -> Result<Arc<ResolvedChannel>, Refusal> {
        // A path that names no id names no channel: refused without asking session.
        let id: ChannelId = id.parse().map_err(|_| Refusal::UnknownChannel)?;
        match self.resolver.resolve(id).await {
            Ok(channel) if channel.active => Ok(channel),
            Ok(_) | Err(ResolveError::NotFound) => Err(Refusal::UnknownChannel),
            Err(ResolveError::Unavailable(error)) => {
                tracing::warn!(error, "cannot resolve channel");
                Err(Refusal::Unavailable)
            }
        }
    }

    /// Publishes a journaled webhook's event again, stamped with its original arrival.
    pub async fn replay(&self, entry: &crate::journal::Entry) -> Result<(), Refusal> {
        let kind = Kind::parse(&entry.kind).ok_or_else(|| Refusal::Malformed(format!("unknown kind {}", entry.kind)))?;
        let webhook = Webhook::trusted(entry.params.0.clone());
        let token = entry
            .headers
            .0
            .iter()
            .find(|(name, _)| name == "i-twilio-idempotency-token")
            .map(|(_, v)| v.clone());
        let channel_id: ChannelId = entry
            .channel_id
            .parse()
            .map_err(|_| Refusal::Malformed(format!("channel id {:?} is not a UUID", entry.channel_id)))?;
        let event = Outgoing::build(kind, channel_id, &webhook, entry.received_at, token, self.topology.shards())?;
        self.publish(event).await
    }

    async fn publish(&self, event: Outgoing) -> Result<(), Refusal> {
        let published = match event {
            Outgoing::Inbound(e, _) => {
                let at = e.received_at;
                self.publisher.publish_event(&Envelope::at(e, at), true).await
            }
            Outgoing::Status(e, _) => {
                let at = e.received_at;
                self.publisher.publish_event(&Envelope::at(e, at), true).await
            }
        };
        published.map_err(|error: PublishError| {
            tracing::warn!(error = %error, "publish failed, answering 503 so Twilio uses the fallback URL");
            Refusal::Unavailable
        })
    }
}

/// The event a verified webhook becomes, with the AccountSid it carried.
enum Outgoing {
    Inbound(InboundReceivedV1, String),
    Status(StatusReceivedV1, String),
}

impl Outgoing {
    fn build(
        kind: Kind,
        channel_id: ChannelId,
        webhook: &Webhook<Verified>,
        received_at: OffsetDateTime,
        idempotency_token: Option<String>,
        shards: u16,
    ) -> Result<Self, Refusal> {
        Ok(match kind {
            Kind::Inbound => {
                let message = webhook.inbound().map_err(|e| Refusal::Malformed(e.to_string()))?;
                tracing::Span::current().record("message_sid", message.message_sid.as_str());
                let ordering_key = format!("{channel_id}|{}", message.customer.key());
                let shard = switchboard_bus::shard_for(&ordering_key, shards);
                let event = InboundReceivedV1 {
                    channel_id,
                    message_sid: message.message_sid,
                    ordering_key,
                    shard,
                    received_at,
                    idempotency_token,
                    params: webhook.params().to_vec(),
                };
                Self::Inbound(event, message.account_sid)
            }
            Kind::Status => {
                let status = webhook.status().map_err(|e| Refusal::Malformed(e.to_string()))?;
                tracing::Span::current().record("message_sid", status.message_sid.as_str());
                let event = StatusReceivedV1 {
                    channel_id,
                    message_sid: status.message_sid,
                    status: status.status,
                    error_code: status.error_code,
                    error_message: status.error_message.or(status.channel_status_message),
                    received_at,
                };
                Self::Status(event, status.account_sid)
            }
        })
    }

    fn account_sid(&self) -> &str {
        match self {
            Self::Inbound(_, a) | Self::Status(_, a) => a,
        }
    }
}

fn journal_entry(
    r: &Received<'_>,
    webhook: Webhook<Verified>,
    received_at: OffsetDateTime,
    answer: StatusCode,
    outcome: &str,
) -> crate::journal::Entry {
    let param = |name: &str| {
        webhook
            .params()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let headers = [
        ("content-type", r.content_type),
        ("x-twilio-signature", r.signature),
        ("x-twilio-webhooks-signature-settings", r.signature_settings),
        ("i-twilio-idempotency-token", r.idempotency_token),
        ("user-agent", r.user_agent),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v.to_owned())))
    .collect();
    crate::journal::Entry {
        id: Uuid::now_v7(),
        channel_id: r.channel_id.to_owned(),
        kind: r.kind.as_str().to_owned(),
        message_sid: param("MessageSid"),
        from_address: param("From"),
        to_address: param("To"),
        answer: i16::try_from(answer.as_u16()).unwrap_or(i16::MAX),
        outcome: outcome.to_owned(),
        headers: sqlx::types::Json(headers),
        params: sqlx::types::Json(webhook.into_params()),
        received_at,
        replays: 0,
        last_replayed_at: None,
    }
}
