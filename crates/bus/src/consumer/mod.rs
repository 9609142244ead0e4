//! The consumer loop: prefetch, manual ack after the handler succeeds, bounded retries, then
//! dead-letter; reconnects after the broker goes away and stops cleanly on shutdown.
//!
//! Two modes:
//! - sequential (`concurrency == 1`): deliveries are handled in order, in batches of what is
//!   already buffered (up to `batch_max`), and a failing message is retried *in place* so
//!   nothing behind it overtakes it. Used for the per-customer shards.
//! - concurrent (`concurrency > 1`): up to `concurrency` deliveries at once; a failing message is
//!   parked in a TTL delay queue and comes back later, so it blocks nobody.
//! - keyed (concurrent with a lane function, [`ConsumerOptions::keyed`]): the same, except that
//!   deliveries sharing a key always go to the same one of `concurrency` lanes, so two of them are
//!   never handled at the same time by this consumer (`lanes.rs`).

mod lanes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use lapin::Acker;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::broker::Broker;
use crate::carrier::{ATTEMPT_HEADER, ROUTING_KEY_HEADER, headers_to_map};
use crate::publisher::{Outgoing, Publisher};
use crate::topology::{DELAY_HEADER, QueueSpec};

/// How a failing message is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Wait and retry while holding the queue (keeps order; for single-active-consumer queues).
    InPlace,
    /// Park the message in a TTL delay queue and take the next one.
    DelayQueue,
}

/// What a consumer reads and how.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The queue (declared with its bindings when the consumer connects).
    pub queue: QueueSpec,
    /// Deliveries handled at once; 1 keeps order.
    pub concurrency: usize,
    /// Most deliveries handed to the handler in one call.
    pub batch_max: usize,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// For a keyed consumer: the key of a delivery; deliveries with one key share a lane.
    pub lane: Option<fn(&Incoming) -> u64>,
}

impl ConsumerOptions {
    /// An ordered consumer: one at a time, batches of up to `batch_max`, in-place retries.
    pub fn ordered(queue: QueueSpec, batch_max: usize) -> Self {
        Self {
            queue,
            concurrency: 1,
            batch_max: batch_max.max(1),
            retry: RetryPolicy::InPlace,
            lane: None,
        }
    }

    /// A concurrent consumer with delay-queue retries.
    pub fn concurrent(queue: QueueSpec, concurrency: usize) -> Self {
        Self {
            queue,
            concurrency: concurrency.max(1),
            batch_max: 1,
            retry: RetryPolicy::DelayQueue,
            lane: None,
        }
    }

    /// A concurrent consumer whose deliveries with the same `key` are never handled at once:
    /// each goes to lane `key % lanes`, and a lane handles one batch at a time. For handlers
    /// whose concurrent batches would otherwise wait on each other's locks (the same row, the
    /// same advisory lock); across replicas they still may, so the handler stays correct alone.
    pub fn keyed(queue: QueueSpec, lanes: usize, key: fn(&Incoming) -> u64) -> Self {
        Self {
            lane: Some(key),
            ..Self::concurrent(queue, lanes.max(2))
        }
    }

    /// Hands the handler up to `batch_max` deliveries that are already waiting in one call (a
    /// concurrent consumer runs up to `concurrency` such batches at once). A batch that fails is
    /// handled again one message at a time.
    pub fn batched(mut self, batch_max: usize) -> Self {
        self.batch_max = batch_max.max(1);
        self
    }
}

/// One delivery, decoded from AMQP.
#[derive(Debug)]
pub struct Incoming {
    /// Routing key it was first published with (kept across retries and dead-lettering).
    pub routing_key: String,
    /// Body.
    pub payload: Vec<u8>,
    /// String headers (trace context and ours).
    pub headers: BTreeMap<String, String>,
    /// 1 on the first attempt.
    pub attempt: u32,
    /// Publisher's message id.
    pub message_id: Option<String>,
    /// The broker delivered it before (a consumer died holding it).
    pub redelivered: bool,
    /// Publish time, Unix seconds.
    pub published_at: Option<u64>,
    acker: Acker,
}

impl Incoming {
    fn from_delivery(delivery: Delivery) -> Self {
        let headers = headers_to_map(delivery.properties.headers().as_ref());
        let ours = headers.get(ATTEMPT_HEADER).and_then(|v| v.parse::<u32>().ok()).unwrap_or(1);
        // Quorum queues count redeliveries (crashed consumers): a message that keeps killing its
        // consumer is dead-lettered like one that keeps failing.
        let broker = headers
            .get("x-delivery-count")
            .and_then(|v| v.parse::<u32>().ok())
            .map_or(1, |n| n + 1);
        // A parked retry arrives under its queue's name; the header names the original key.
        let routing_key = headers
            .get(ROUTING_KEY_HEADER)
            .cloned()
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned());
        Self {
            routing_key,
            payload: delivery.data,
            attempt: ours.max(broker),
            message_id: delivery.properties.message_id().as_ref().map(|s| s.as_str().to_owned()),
            redelivered: delivery.redelivered,
            published_at: *delivery.properties.timestamp(),
            headers,
            acker: delivery.acker,
        }
    }

    /// Decodes the JSON body; a body that does not parse is a permanent failure.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HandleError> {
        serde_json::from_slice(&self.payload).map_err(|e| HandleError::Reject(anyhow::anyhow!("undecodable {}: {e}", self.routing_key)))
    }
}

/// A handler failure.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Transient: try again later (database down, deadlock, dependency unavailable).
    #[error("transient failure: {0:#}")]
    Retry(anyhow::Error),
    /// Unexplained (an unexpected database error, a bug): it may be this message itself. A
    /// concurrent consumer treats it as [`HandleError::Retry`]. An ordered consumer, which holds
    /// its whole shard while it retries in place, tries it only [`SUSPECT_IN_PLACE_ATTEMPTS`]
    /// times, a short wait apart, then dead-letters it so the customers behind it go on.
    #[error("unexplained failure: {0:#}")]
    Suspect(anyhow::Error),
    /// Permanent: this message can never succeed; dead-letter it now.
    #[error("permanent failure: {0:#}")]
    Reject(anyhow::Error),
    /// Not now, and not a failure (e.g. a rate limit): try again after about this long,
    /// without counting an attempt.
    #[error("deferred for {0:?}")]
    Defer(Duration),
}

impl HandleError {
    /// A transient failure (a dependency is down): the message is tried again.
    pub fn retry(error: impl Into<anyhow::Error>) -> Self {
        Self::Retry(error.into())
    }
}

/// Handles deliveries. Must be idempotent: a message can arrive more than once.
pub trait Handler: Send + Sync + 'static {
    /// Handles `batch` all-or-nothing; on error each message is retried on its own.
    fn handle(&self, batch: &[Incoming]) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// A consumer of one queue. Run it with [`Consumer::run`].
pub struct Consumer<H> {
    inner: Arc<Inner<H>>,
}

struct Inner<H> {
    broker: Broker,
    publisher: Publisher,
    options: ConsumerOptions,
    queue: String,
    handler: Arc<H>,
    metrics: Metrics,
}

struct Metrics {
    consumed: Counter<u64>,
    duration: Histogram<f64>,
    lag: Histogram<f64>,
    dead_lettered: Counter<u64>,
    attrs: [KeyValue; 2],
}

impl Metrics {
    fn new(queue: &str) -> Self {
        use switchboard_telemetry::semconv as sc;
        let meter = switchboard_telemetry::metrics::meter();
        Self {
            consumed: meter.u64_counter(sc::MESSAGING_CLIENT_CONSUMED_MESSAGES).build(),
            duration: meter.f64_histogram(sc::MESSAGING_PROCESS_DURATION).with_unit("s").build(),
            lag: meter.f64_histogram(sc::SWITCHBOARD_CONSUMER_LAG).with_unit("s").build(),
            dead_lettered: meter.u64_counter(sc::SWITCHBOARD_DEAD_LETTERED).build(),
            attrs: [
                KeyValue::new("messaging.system", sc::MESSAGING_SYSTEM_RABBITMQ),
                KeyValue::new("messaging.destination.name", queue.to_owned()),
            ],
        }
    }
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// Attempts an ordered consumer gives a message failing with [`HandleError::Suspect`] before
/// dead-lettering it: the shard waits at most two of the shortest delay tier behind it.
pub const SUSPECT_IN_PLACE_ATTEMPTS: u32 = 3;

impl<H: Handler> Consumer<H> {
    /// Creates a consumer of `options.queue`; `publisher` parks retries and dead letters.
    pub fn new(broker: Broker, publisher: Publisher, options: ConsumerOptions, handler: Arc<H>) -> Self {
        let queue = broker.topology().queue(&options.queue.name);
        let metrics = Metrics::new(&queue);
        Self {
            inner: Arc::new(Inner {
                broker,
                publisher,
                options,
                queue,
                handler,
                metrics,
            }),
        }
    }

    /// Consumes until `shutdown` is cancelled, reconnecting whenever the channel is lost.
    /// Returns after in-flight deliveries are finished.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = INITIAL_BACKOFF;
        let max = Duration::from_millis(self.inner.broker.config().reconnect_max_backoff_ms);
        while !shutdown.is_cancelled() {
            match self.inner.clone().session(&shutdown, &mut backoff).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(queue = %self.inner.queue, error = %format!("{error:#}"), retry_in_ms = backoff.as_millis(), "consumer lost the broker, reconnecting");
                    tokio::select! {
                        () = tokio::time::sleep(jitter(backoff)) => {}
                        () = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(max);
                }
            }
        }
        tracing::info!(queue = %self.inner.queue, "consumer stopped");
    }
}

/// How long an ack or nack may take. On a connection that died under it, lapin may never
/// complete one; without a bound the consumer hung there and never reconnected (found by the
/// RabbitMQ-restart drill, `scripts/faults/rabbitmq-restart.sh`).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a channel, declaring and subscribing may take before starting over.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

async fn settle<T, E: std::error::Error + Send + Sync + 'static>(
    done: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(SETTLE_TIMEOUT, done).await {
        Ok(result) => result.map(|_| ()).map_err(Into::into),
        Err(_) => anyhow::bail!("the broker did not take an ack in {SETTLE_TIMEOUT:?}; the connection is presumed lost"),
    }
}

/// The next delivery of a concurrent subscription; `None` once `shutdown` is cancelled, after
/// cancelling the subscription so the broker sends no more.
async fn next_delivery(
    channel: &Channel,
    consumer: &mut lapin::Consumer,
    tag: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Delivery>> {
    let next = tokio::select! {
        biased;
        () = shutdown.cancelled() => {
            let _ = channel.basic_cancel(tag.into(), BasicCancelOptions::default()).await;
            return Ok(None);
        }
        next = consumer.next() => next,
    };
    match next {
        Some(Ok(delivery)) => Ok(Some(delivery)),
        Some(Err(error)) => Err(error.into()),
        None => Err(anyhow::anyhow!("the broker ended the consumer")),
    }
}

fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(0.8 + fastrand::f64() * 0.4)
}

impl<H: Handler> Inner<H> {
    async fn session(self: Arc<Self>, shutdown: &CancellationToken, backoff: &mut Duration) -> anyhow::Result<()> {
        let (channel, consumer, tag) = tokio::time::timeout(SUBSCRIBE_TIMEOUT, self.subscribe())
            .await
            .map_err(|_| anyhow::anyhow!("subscribing took longer than {SUBSCRIBE_TIMEOUT:?}"))??;
        *backoff = INITIAL_BACKOFF;
        tracing::info!(queue = %self.queue, "consuming");
        let result = match (self.options.concurrency, self.options.lane) {
            (0 | 1, _) => self.sequential(consumer, shutdown).await,
            (_, Some(key)) => self.keyed(&channel, consumer, &tag, key, shutdown).await,
            (_, None) => self.concurrent(&channel, consumer, &tag, shutdown).await,
        };
        if result.is_ok() {
            let _ = channel.close(200, "consumer stopped".into()).await;
        }
        result
    }

    /// Opens a channel, declares the queue and subscribes.
    async fn subscribe(&self) -> anyhow::Result<(Channel, lapin::Consumer, String)> {
        let channel = self.broker.channel().await?;
        let topology = self.broker.topology();
        if self.broker.config().declare {
            topology.declare_base(&channel).await?;
            topology.declare_queue(&channel, &self.options.queue).await?;
        } else {
            // Declared by the migrate step; this user may not configure.
            topology.verify_queue(&channel, &self.options.queue).await?;
        }
        let prefetch = self
            .broker
            .config()
            .prefetch
            .max(u16::try_from(self.options.concurrency).unwrap_or(u16::MAX));
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let tag = format!("{}.{}", self.queue, uuid::Uuid::new_v4().simple());
        let consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer, tag))
    }

    async fn sequential(self: Arc<Self>, mut consumer: lapin::Consumer, shutdown: &CancellationToken) -> anyhow::Result<()> {
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    // No basic.cancel here: it would promote a standby consumer of a
                    // single-active queue while our prefetched, unprocessed deliveries are still
                    // held, letting it overtake them. Closing the channel returns them first.
                    return Ok(());
                }
                next = consumer.next() => next,
            };
            let first = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => return Err(error.into()),
                None => anyhow::bail!("the broker ended the consumer"),
            };
            let mut batch = vec![Incoming::from_delivery(first)];
            while batch.len() < self.options.batch_max {
                match consumer.next().now_or_never() {
                    Some(Some(Ok(delivery))) => batch.push(Incoming::from_delivery(delivery)),
                    Some(Some(Err(error))) => return Err(error.into()),
                    _ => break,
                }
            }
            self.process_batch(batch, shutdown).await?;
        }
    }

    async fn concurrent(
        self: Arc<Self>,
        channel: &Channel,
        mut consumer: lapin::Consumer,
        tag: &str,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.options.concurrency));
        let outcome = 'deliveries: loop {
            let delivery = match next_delivery(channel, &mut consumer, tag, shutdown).await {
                Ok(Some(delivery)) => delivery,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let permit = permits.clone().acquire_owned().await?;
            let mut batch = vec![Incoming::from_delivery(delivery)];
            while batch.len() < self.options.batch_max {
                match consumer.next().now_or_never() {
                    Some(Some(Ok(delivery))) => batch.push(Incoming::from_delivery(delivery)),
                    Some(Some(Err(error))) => break 'deliveries Err(error.into()),
                    _ => break,
                }
            }
            let this = self.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let _permit = permit;
                if let Err(error) = this.process_batch(batch, &shutdown).await {
                    tracing::warn!(queue = %this.queue, error = %format!("{error:#}"), "delivery left unacknowledged; the broker will redeliver it");
                }
            });
        };
        tracker.close();
        tracker.wait().await;
        outcome
    }

    fn span_for(&self, message: &Incoming, batch: usize) -> tracing::Span {
        let span = tracing::info_span!(
            "bus.consume",
            otel.name = %format_args!("process {}", self.queue),
            otel.kind = "consumer",
            messaging.operation.type = "process",
            messaging.system = "rabbitmq",
            messaging.destination.name = %self.queue,
            messaging.batch.message_count = batch,
            messaging.message.id = message.message_id.as_deref().unwrap_or(""),
            attempt = message.attempt,
            switchboard.service = self.broker.name(),
        );
        switchboard_telemetry::propagation::set_parent(&span, switchboard_telemetry::propagation::extract_map(&message.headers));
        span
    }

    async fn process_batch(&self, batch: Vec<Incoming>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        if batch.len() > 1 {
            let started = Instant::now();
            let span = self.span_for(&batch[0], batch.len());
            match self.handler.handle(&batch).instrument(span).await {
                Ok(()) => {
                    self.record(&batch, started, "ok");
                    if self.options.concurrency == 1 {
                        if let Some(last) = batch.last() {
                            settle(last.acker.ack(BasicAckOptions { multiple: true })).await?;
                        }
                    } else {
                        // Other batches of this channel are in flight: ack only these.
                        for message in &batch {
                            settle(message.acker.ack(BasicAckOptions::default())).await?;
                        }
                    }
                    return Ok(());
                }
                Err(error) => {
                    tracing::debug!(queue = %self.queue, error = %error, "batch failed, handling its messages one by one")
                }
            }
        }
        for message in batch {
            self.process_one(message, shutdown).await?;
        }
        Ok(())
    }

    async fn process_one(&self, mut message: Incoming, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let max_attempts = self.broker.config().max_attempts;
        loop {
            let started = Instant::now();
            let span = self.span_for(&message, 1);
            let result = self.handler.handle(std::slice::from_ref(&message)).instrument(span).await;
            let (error, holds_shard) = match result {
                Ok(()) => {
                    self.record(std::slice::from_ref(&message), started, "ok");
                    settle(message.acker.ack(BasicAckOptions::default())).await?;
                    return Ok(());
                }
                Err(HandleError::Reject(error)) => {
                    tracing::error!(queue = %self.queue, error = %format!("{error:#}"), "message rejected, dead-lettering");
                    self.record(std::slice::from_ref(&message), started, "rejected");
                    return self.dead_letter(&message, &error.to_string()).await;
                }
                Err(HandleError::Defer(wait)) => match self.options.retry {
                    RetryPolicy::InPlace => {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => continue,
                            () = shutdown.cancelled() => {
                                settle(message.acker.nack(BasicNackOptions { requeue: true, ..Default::default() })).await?;
                                return Ok(());
                            }
                        }
                    }
                    RetryPolicy::DelayQueue => {
                        let tier = self.broker.topology().delay_at_least(wait);
                        return self.park(&message, Duration::from_millis(tier), message.attempt).await;
                    }
                },
                Err(HandleError::Retry(error)) => (error, false),
                Err(HandleError::Suspect(error)) => (error, self.options.retry == RetryPolicy::InPlace),
            };
            self.record(std::slice::from_ref(&message), started, "retry");
            if message.attempt >= max_attempts {
                tracing::error!(queue = %self.queue, attempt = message.attempt, error = %format!("{error:#}"), "message failed on every attempt, dead-lettering");
                return self.dead_letter(&message, &error.to_string()).await;
            }
            if holds_shard && message.attempt >= SUSPECT_IN_PLACE_ATTEMPTS {
                tracing::error!(queue = %self.queue, attempt = message.attempt, message_id = message.message_id.as_deref().unwrap_or(""), error = %format!("{error:#}"),
                    "message keeps failing for no known reason; dead-lettering it so the rest of the shard goes on");
                return self.dead_letter(&message, &error.to_string()).await;
            }
            // A suspect holding its shard always waits the shortest tier.
            let next = if holds_shard { 2 } else { message.attempt + 1 };
            let delay = Duration::from_millis(self.broker.topology().delay_for_attempt(next));
            tracing::warn!(queue = %self.queue, attempt = message.attempt, retry_in_ms = delay.as_millis(), error = %format!("{error:#}"), "message failed, will retry");
            match self.options.retry {
                RetryPolicy::InPlace => {
                    tokio::select! {
                        () = tokio::time::sleep(jitter(delay)) => {}
                        () = shutdown.cancelled() => {
                            settle(message.acker.nack(BasicNackOptions { requeue: true, ..Default::default() })).await?;
                            return Ok(());
                        }
                    }
                    message.attempt += 1;
                }
                RetryPolicy::DelayQueue => return self.park(&message, delay, message.attempt + 1).await,
            }
        }
    }

    /// Parks `message` in the delay tier for `delay` (as attempt `attempt` when it comes back),
    /// then acks the original.
    async fn park(&self, message: &Incoming, delay: Duration, attempt: u32) -> anyhow::Result<()> {
        let mut headers = message.headers.clone();
        headers.insert(ATTEMPT_HEADER.into(), attempt.to_string());
        headers.insert(DELAY_HEADER.into(), delay.as_millis().to_string());
        headers.insert(ROUTING_KEY_HEADER.into(), message.routing_key.clone());
        headers.remove("x-delivery-count");
        headers.remove("x-death");
        let exchange = format!("{}.delay", self.broker.topology().namespace());
        if self.republish(message, &exchange, headers).await {
            return settle(message.acker.ack(BasicAckOptions::default())).await;
        }
        tracing::warn!(queue = %self.queue, "cannot park message for retry, requeueing");
        settle(message.acker.nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        }))
        .await
    }

    /// Sends `message` to the queue's dead-letter queue with the reason, then acks it.
    async fn dead_letter(&self, message: &Incoming, reason: &str) -> anyhow::Result<()> {
        self.metrics.dead_lettered.add(1, &self.metrics.attrs);
        let mut headers = message.headers.clone();
        headers.insert(ROUTING_KEY_HEADER.into(), message.routing_key.clone());
        headers.insert("x-sb-error".into(), reason.chars().take(1_000).collect());
        headers.insert(
            "x-sb-failed-at".into(),
            time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
        );
        let dlx = self.broker.topology().dead_letter_exchange();
        if self.republish(message, &dlx, headers).await {
            return settle(message.acker.ack(BasicAckOptions::default())).await;
        }
        // The queue's own dead-letter exchange catches it (without the reason header).
        settle(message.acker.nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        }))
        .await
    }

    /// Publishes a copy of `message` to `exchange` under the queue's name, with `headers`;
    /// whether the broker confirmed it.
    async fn republish(&self, message: &Incoming, exchange: &str, headers: BTreeMap<String, String>) -> bool {
        self.publisher
            .publish(Outgoing {
                exchange: Some(exchange),
                routing_key: &self.queue,
                payload: &message.payload,
                message_id: message.message_id.as_deref().unwrap_or(""),
                headers,
                mandatory: true,
            })
            .await
            .is_ok()
    }

    fn record(&self, batch: &[Incoming], started: Instant, outcome: &'static str) {
        let m = &self.metrics;
        let attrs = [m.attrs[0].clone(), m.attrs[1].clone(), KeyValue::new("outcome", outcome)];
        m.consumed.add(batch.len() as u64, &attrs);
        m.duration.record(started.elapsed().as_secs_f64(), &attrs);
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        if let Some(published) = batch.first().and_then(|m| m.published_at) {
            m.lag.record(now.saturating_sub(published) as f64, &m.attrs);
        }
    }
}
