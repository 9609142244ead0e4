//! Persistent publishing with publisher confirms.
//!
//! All callers share one confirm-mode channel, so confirms are pipelined: many publishes are in
//! flight at once and each caller awaits only its own confirm. While the broker is unreachable
//! the publisher fails fast (`Unavailable`) and retries the connection with backoff, one caller
//! at a time, so a webhook can answer 503 at once instead of hanging.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use tokio::sync::{Mutex, RwLock};

use crate::broker::Broker;
use crate::carrier::map_to_table;
use crate::envelope::{Envelope, Event};

/// Why a message was not accepted by the broker. Nothing was stored when this is returned,
/// except possibly for `Timeout` (the caller must treat it as "maybe").
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No connection to the broker, or it broke while publishing.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (`basic.nack`).
    #[error("broker refused the message")]
    Nacked,
    /// No queue is bound for the routing key (the message was returned).
    #[error("no queue is bound for routing key {0}")]
    Unroutable(String),
    /// No confirm arrived within the deadline.
    #[error("no publisher confirm within {0:?}")]
    Timeout(Duration),
}

impl PublishError {
    /// A short, stable name for the `error.type` attribute.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Nacked => "nacked",
            Self::Unroutable(_) => "unroutable",
            Self::Timeout(_) => "timeout",
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Target exchange; `None` is the events exchange.
    pub exchange: Option<&'a str>,
    /// Routing key: the event type and version (`conversation.opened.v1`), and the shard where one applies.
    pub routing_key: &'a str,
    /// Body (JSON).
    pub payload: &'a [u8],
    /// The event's unique id.
    pub message_id: &'a str,
    /// Headers (trace context, attempt counters).
    pub headers: BTreeMap<String, String>,
    /// Return the message (and fail) when no queue is bound for it.
    pub mandatory: bool,
}

/// A cheap-to-clone confirmed publisher.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    broker: Broker,
    channel: RwLock<Option<Channel>>,
    reconnect: Mutex<Backoff>,
    confirm_latency: Histogram<f64>,
}

struct Backoff {
    next_attempt: Instant,
    delay: Duration,
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

impl Publisher {
    /// Creates a publisher on `broker`; it connects on first use.
    pub fn new(broker: Broker) -> Self {
        let confirm_latency = switchboard_telemetry::metrics::meter()
            .f64_histogram(switchboard_telemetry::semconv::SWITCHBOARD_PUBLISH_CONFIRM_DURATION)
            .with_unit("s")
            .with_description("time from publish to broker confirm")
            .build();
        Self {
            inner: Arc::new(Inner {
                broker,
                channel: RwLock::new(None),
                reconnect: Mutex::new(Backoff {
                    next_attempt: Instant::now(),
                    delay: INITIAL_BACKOFF,
                }),
                confirm_latency,
            }),
        }
    }

    /// Returns the broker this publisher uses.
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// Returns whether a live confirm channel is open now.
    pub async fn is_connected(&self) -> bool {
        self.inner.channel.read().await.as_ref().is_some_and(|c| c.status().connected())
    }

    /// Opens the confirm channel now (at start-up, so readiness reflects the broker).
    pub async fn connect(&self) -> Result<(), PublishError> {
        self.channel().await.map(|_| ())
    }

    /// Publishes an event envelope to the events exchange with the current trace context.
    pub async fn publish_event<T: Event>(&self, envelope: &Envelope<T>, mandatory: bool) -> Result<(), PublishError> {
        let payload = envelope.to_bytes();
        let routing_key = envelope.payload.routing_key();
        let message_id = envelope.message_id.to_string();
        self.publish(Outgoing {
            exchange: None,
            routing_key: &routing_key,
            payload: &payload,
            message_id: &message_id,
            headers: switchboard_telemetry::propagation::current_context_map(),
            mandatory,
        })
        .await
    }

    /// Publishes one message and waits for the broker's confirm.
    pub async fn publish(&self, message: Outgoing<'_>) -> Result<(), PublishError> {
        self.publish_batch(std::slice::from_ref(&message)).await
    }

    /// Publishes `messages` in order on one channel (so the broker keeps their order), then waits
    /// for all their confirms. Fails if any one is not confirmed.
    pub async fn publish_batch(&self, messages: &[Outgoing<'_>]) -> Result<(), PublishError> {
        let channel = self.channel().await?;
        let events = self.inner.broker.topology().events_exchange();
        let timestamp = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        let started = Instant::now();
        let mut confirms = Vec::with_capacity(messages.len());
        let mut spans = Vec::with_capacity(messages.len());
        for message in messages {
            let exchange = message.exchange.unwrap_or(&events);
            // The consumer continues the producer span's trace: its context replaces the caller's.
            let span = self.producer_span(exchange, message);
            let mut headers = message.headers.clone();
            if !span.is_none() {
                switchboard_telemetry::propagation::inject_map(&span, &mut headers);
            }
            spans.push(span);
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(message.message_id.into())
                .with_timestamp(timestamp)
                .with_headers(map_to_table(&headers));
            let options = BasicPublishOptions {
                mandatory: message.mandatory,
                ..Default::default()
            };
            match channel
                .basic_publish(exchange.into(), message.routing_key.into(), options, message.payload, properties)
                .await
            {
                Ok(confirm) => confirms.push((confirm, message.routing_key)),
                Err(error) => {
                    self.invalidate(&channel).await;
                    return Err(PublishError::Unavailable(error.to_string()));
                }
            }
        }
        let timeout = self.inner.broker.config().confirm_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcome = Ok(());
        for (index, (confirm, routing_key)) in confirms.into_iter().enumerate() {
            let confirmation = match tokio::time::timeout_at(deadline, confirm).await {
                Err(_) => return Err(PublishError::Timeout(timeout)),
                Ok(Err(error)) => {
                    self.invalidate(&channel).await;
                    return Err(PublishError::Unavailable(error.to_string()));
                }
                Ok(Ok(confirmation)) => confirmation,
            };
            let this = match confirmation {
                Confirmation::Ack(None) => Ok(()),
                Confirmation::Ack(Some(_returned)) => Err(PublishError::Unroutable(routing_key.to_owned())),
                Confirmation::Nack(_) => Err(PublishError::Nacked),
                Confirmation::NotRequested => Err(PublishError::Unavailable("channel is not in confirm mode".into())),
            };
            if let (Err(error), Some(span)) = (&this, spans.get(index)) {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error.kind());
            }
            if outcome.is_ok() {
                outcome = this;
            }
        }
        let result = if outcome.is_ok() { "ack" } else { "refused" };
        self.inner
            .confirm_latency
            .record(started.elapsed().as_secs_f64(), &[KeyValue::new("outcome", result)]);
        outcome
    }

    /// The producer span of one publish (OpenTelemetry's messaging conventions), open until its
    /// confirm arrives. Its parent is the trace the message carries (an outbox row's), else the
    /// caller's span; with neither there is no trace to extend and no span.
    fn producer_span(&self, exchange: &str, message: &Outgoing<'_>) -> tracing::Span {
        use opentelemetry::trace::TraceContextExt as _;
        let carried = switchboard_telemetry::propagation::extract_map(&message.headers);
        let carried = carried.span().span_context().is_valid().then_some(carried);
        if carried.is_none() && tracing::Span::current().is_none() {
            return tracing::Span::none();
        }
        let span = tracing::info_span!(
            "bus.publish",
            otel.name = %format_args!("publish {exchange}"),
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            messaging.system = "rabbitmq",
            messaging.operation.type = "send",
            messaging.operation.name = "publish",
            messaging.destination.name = exchange,
            messaging.rabbitmq.destination.routing_key = message.routing_key,
            messaging.message.id = message.message_id,
            messaging.message.body.size = message.payload.len(),
            switchboard.service = self.inner.broker.name(),
        );
        if let Some(cx) = carried {
            switchboard_telemetry::propagation::set_parent(&span, cx);
        }
        span
    }

    async fn channel(&self) -> Result<Channel, PublishError> {
        if let Some(channel) = self.inner.channel.read().await.as_ref()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        // One caller reconnects; the others fail fast instead of queueing behind it.
        let Ok(mut backoff) = self.inner.reconnect.try_lock() else {
            return Err(PublishError::Unavailable("reconnecting to the broker".into()));
        };
        if let Some(channel) = self.inner.channel.read().await.as_ref()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        if Instant::now() < backoff.next_attempt {
            return Err(PublishError::Unavailable("broker unreachable, waiting to retry".into()));
        }
        match self.open_confirm_channel().await {
            Ok(channel) => {
                *self.inner.channel.write().await = Some(channel.clone());
                backoff.delay = INITIAL_BACKOFF;
                Ok(channel)
            }
            Err(error) => {
                let max = Duration::from_millis(self.inner.broker.config().reconnect_max_backoff_ms);
                backoff.next_attempt = Instant::now() + backoff.delay;
                backoff.delay = (backoff.delay * 2).min(max);
                tracing::warn!(error = %error, "publisher cannot reach the broker");
                Err(PublishError::Unavailable(error.to_string()))
            }
        }
    }

    async fn open_confirm_channel(&self) -> anyhow::Result<Channel> {
        let channel = self.inner.broker.channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(channel)
    }

    async fn invalidate(&self, failed: &Channel) {
        let mut slot = self.inner.channel.write().await;
        if slot.as_ref().is_some_and(|c| c.id() == failed.id()) {
            *slot = None;
        }
    }
}
