//! Every exchange and queue of the system, named under one namespace and declared idempotently.
//!
//! - `{ns}.events` (topic): all events, routing key `<stream>.<event>.v<N>[.<shard>]`.
//! - `{ns}.dlx` (direct): dead letters, routed by the failing queue's name to `{queue}.dlq`.
//! - `{ns}.delay` (headers) → `{ns}.delay.{ms}` classic queues whose TTL expires into
//!   `{ns}.retry` (direct), which routes back to the original queue by name. No broker plugin.

use lapin::options::{ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::config::BusConfig;

/// Header naming the delay tier (milliseconds) a retried message waits in.
// Not `x-` prefixed: the headers exchange ignores such keys when matching.
pub(crate) const DELAY_HEADER: &str = "sb-delay";

/// A consumer queue: its name (without namespace), the event routing keys bound to it, and
/// whether only one consumer at a time may take from it (ordering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Name under the namespace, e.g. `session.inbound.3`.
    pub name: String,
    /// Routing-key patterns on the events exchange.
    pub bindings: Vec<String>,
    /// `x-single-active-consumer`: one consumer at a time, so deliveries stay in order.
    pub single_active: bool,
}

impl QueueSpec {
    /// A queue any number of consumers share.
    pub fn shared(name: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            name: name.into(),
            bindings: bindings.iter().map(|s| (*s).to_owned()).collect(),
            single_active: false,
        }
    }

    /// A queue consumed by one consumer at a time, in order.
    pub fn ordered(name: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            single_active: true,
            ..Self::shared(name, bindings)
        }
    }
}

/// Returns the shard of an ordering key: its [`key_hash`] modulo `shards`.
pub fn shard_for(key: &str, shards: u16) -> u16 {
    // The modulo of a u16 always fits in a u16.
    u16::try_from(key_hash(key) % u64::from(shards.max(1))).unwrap_or(0)
}

/// A stable hash of `key` (FNV-1a), identical on every replica and every build: for shards,
/// and for the lanes of a keyed consumer.
pub fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Names and declarations of the bus under one namespace.
/// A RabbitMQ user's permissions in a vhost, as `rabbitmqctl set_permissions` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

fn regex_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
pub struct Topology {
    ns: String,
    shards: u16,
    delays_ms: Vec<u64>,
}

/// A queue name that is not among the system's queues.
#[derive(Debug, thiserror::Error)]
#[error("no {0} queue in the topology")]
pub struct UnknownQueue(pub String);

impl Topology {
    /// Builds the topology described by `config`.
    pub fn new(config: &BusConfig) -> Self {
        let mut delays_ms = config.retry_delays_ms.clone();
        delays_ms.sort_unstable();
        delays_ms.dedup();
        Self {
            ns: config.namespace.clone(),
            shards: config.shards.max(1),
            delays_ms,
        }
    }

    /// The prefix of every exchange and queue name (tests each get their own).
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Returns the number of ordering shards.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// Returns the topic exchange all events are published to.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.ns)
    }

    /// Returns the dead-letter exchange.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.ns)
    }

    pub(crate) fn delay_exchange(&self) -> String {
        format!("{}.delay", self.ns)
    }

    pub(crate) fn retry_exchange(&self) -> String {
        format!("{}.retry", self.ns)
    }

    /// Returns the full name of queue `name`.
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.ns)
    }

    /// Returns the full name of the dead-letter queue of queue `name`.
    pub fn dead_letter_queue(&self, name: &str) -> String {
        format!("{}.{name}.dlq", self.ns)
    }

    fn delay_queue(&self, ms: u64) -> String {
        format!("{}.delay.{ms}", self.ns)
    }

    /// Returns the delay tier (ms) to wait before attempt `next_attempt` (2 for the first retry):
    /// the configured delays in order, the last one repeating.
    pub fn delay_for_attempt(&self, next_attempt: u32) -> u64 {
        let index = usize::try_from(next_attempt.saturating_sub(2)).unwrap_or(usize::MAX);
        self.delays_ms.get(index).or(self.delays_ms.last()).copied().unwrap_or(1_000)
    }

    /// Returns the shortest delay tier (ms) of at least `wait` (the longest when none is).
    pub fn delay_at_least(&self, wait: std::time::Duration) -> u64 {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.delays_ms
            .iter()
            .copied()
            .find(|d| *d >= ms)
            .or(self.delays_ms.last().copied())
            .unwrap_or(1_000)
    }

    /// Returns the routing key of an inbound message for ordering key `key`.
    pub fn inbound_routing_key(&self, key: &str) -> String {
        format!("inbound.received.v1.{}", shard_for(key, self.shards))
    }

    /// The queue `name` among [`Self::system_queues`]; an error when there is no such queue (a
    /// service asking for it is misbuilt, and should not start).
    pub fn system_queue(&self, name: &str) -> Result<QueueSpec, UnknownQueue> {
        self.system_queues()
            .into_iter()
            .find(|q| q.name == name)
            .ok_or_else(|| UnknownQueue(name.to_owned()))
    }

    /// Returns the queues of every Switchboard service.
    pub fn system_queues(&self) -> Vec<QueueSpec> {
        let mut queues: Vec<QueueSpec> = (0..self.shards)
            .map(|i| QueueSpec::ordered(format!("session.inbound.{i}"), &[&format!("inbound.received.v1.{i}")]))
            .collect();
        queues.push(QueueSpec::shared(
            "session.delivery",
            &["status.received.v1", "outbound.accepted.v1", "outbound.failed.v1"],
        ));
        queues.push(QueueSpec::shared(
            "session.commands",
            &["workstream.updated.v1", "session.command.*.v1"],
        ));
        queues.push(QueueSpec::shared(
            "routing.work",
            &["conversation.opened.v1", "conversation.status_changed.v1", "routing.tick.v1"],
        ));
        queues.push(QueueSpec::shared("sender.outbound", &["outbound.send.v1", "outbound.cancelled.v1"]));
        queues.push(QueueSpec::shared("sender.commands", &["sender.command.*.v1"]));
        queues.push(QueueSpec::shared(
            "sender.indicators",
            &["conversation.typing.v1", "conversation.read.v1"],
        ));
        queues.push(QueueSpec::shared("bots.work", &["bot.turn.v1"]));
        queues.push(QueueSpec::ordered(
            "api.stream",
            &[
                "offer.*.v1",
                "conversation.opened.v1",
                "conversation.assigned.v1",
                "conversation.status_changed.v1",
                "conversation.message.v1",
                "message.status.v1",
                "conversation.window_closing.v1",
                "conversation.typing.v1",
                "conversation.read.v1",
                "agent.presence.v1",
            ],
        ));
        queues
    }

    /// Declares the exchanges and delay queues every queue depends on.
    pub async fn declare_base(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for (name, kind) in [
            (self.events_exchange(), ExchangeKind::Topic),
            (self.dead_letter_exchange(), ExchangeKind::Direct),
            (self.delay_exchange(), ExchangeKind::Headers),
            (self.retry_exchange(), ExchangeKind::Direct),
        ] {
            channel
                .exchange_declare(name.as_str().into(), kind, durable, FieldTable::default())
                .await?;
        }
        for ms in &self.delays_ms {
            let queue = self.delay_queue(*ms);
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(*ms).unwrap_or(i64::MAX)),
            );
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.retry_exchange().as_str().into()),
            );
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    args,
                )
                .await?;
            let mut bind = FieldTable::default();
            bind.insert("x-match".into(), AMQPValue::LongString("all".into()));
            bind.insert(DELAY_HEADER.into(), AMQPValue::LongString(ms.to_string().as_str().into()));
            channel
                .queue_bind(
                    queue.as_str().into(),
                    self.delay_exchange().as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    bind,
                )
                .await?;
        }
        Ok(())
    }

    /// Declares quorum queue `spec` with its dead-letter queue, its event bindings and its retry binding.
    pub async fn declare_queue(&self, channel: &Channel, spec: &QueueSpec) -> lapin::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let name = self.queue(&spec.name);
        let dlq = self.dead_letter_queue(&spec.name);

        let mut dlq_args = FieldTable::default();
        dlq_args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        channel.queue_declare(dlq.as_str().into(), durable, dlq_args).await?;
        channel
            .queue_bind(
                dlq.as_str().into(),
                self.dead_letter_exchange().as_str().into(),
                name.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange().as_str().into()),
        );
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(name.as_str().into()));
        args.insert("x-dead-letter-strategy".into(), AMQPValue::LongString("at-least-once".into()));
        args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        if spec.single_active {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        channel.queue_declare(name.as_str().into(), durable, args).await?;
        for key in &spec.bindings {
            channel
                .queue_bind(
                    name.as_str().into(),
                    self.events_exchange().as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        channel
            .queue_bind(
                name.as_str().into(),
                self.retry_exchange().as_str().into(),
                name.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// Declares the base and every system queue.
    pub async fn declare_all(&self, channel: &Channel) -> lapin::Result<()> {
        self.declare_base(channel).await?;
        for spec in self.system_queues() {
            self.declare_queue(channel, &spec).await?;
        }
        Ok(())
    }

    /// Checks that the base and every system queue exist (passive declarations: no configure
    /// permission needed); an error names the first one missing.
    pub async fn verify_all(&self, channel: &Channel) -> lapin::Result<()> {
        for exchange in [
            self.events_exchange(),
            self.dead_letter_exchange(),
            self.delay_exchange(),
            self.retry_exchange(),
        ] {
            self.verify_exchange(channel, &exchange).await?;
        }
        for spec in self.system_queues() {
            self.verify_queue(channel, &spec).await?;
        }
        Ok(())
    }

    /// Checks that the exchange `name` exists.
    pub async fn verify_exchange(&self, channel: &Channel, name: &str) -> lapin::Result<()> {
        let passive = ExchangeDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(name.into(), ExchangeKind::Topic, passive, FieldTable::default())
            .await
    }

    /// Checks that queue `spec` exists.
    pub async fn verify_queue(&self, channel: &Channel, spec: &QueueSpec) -> lapin::Result<()> {
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(self.queue(&spec.name).as_str().into(), passive, FieldTable::default())
            .await
            .map(|_| ())
    }

    /// The least RabbitMQ permissions (configure, write, read regular expressions) `service`
    /// needs when the topology is declared for it (`bus.declare = false`): publish events and
    /// park retries, consume its own queues, configure nothing.
    pub fn permissions(&self, service: &str) -> Permissions {
        let ns = regex_escape(&self.ns);
        let mut own: Vec<String> = Vec::new();
        for queue in self
            .system_queues()
            .into_iter()
            .filter(|q| q.name.split('.').next() == Some(service))
        {
            // Shards (`session.inbound.7`) as one pattern, whatever their number.
            let pattern = match queue.name.rsplit_once('.') {
                Some((stem, shard)) if shard.chars().all(|c| c.is_ascii_digit()) => format!("{}\\.[0-9]+", regex_escape(stem)),
                _ => regex_escape(&queue.name),
            };
            if !own.contains(&pattern) {
                own.push(pattern);
            }
        }
        let read = if own.is_empty() {
            "^$".to_owned()
        } else {
            format!("^{ns}\\.({})$", own.join("|"))
        };
        let write = if service == "migrate" {
            ".*".to_owned()
        } else {
            format!("^{ns}\\.(events|delay)$")
        };
        Permissions {
            configure: if service == "migrate" { ".*".into() } else { "^$".into() },
            write,
            read: if service == "migrate" { ".*".into() } else { read },
        }
    }

    /// Deletes every queue and exchange of this namespace (test cleanup), including `extra` queues.
    pub async fn delete_all(&self, channel: &Channel, extra: &[QueueSpec]) -> lapin::Result<()> {
        let mut specs = self.system_queues();
        specs.extend_from_slice(extra);
        for spec in &specs {
            for queue in [self.queue(&spec.name), self.dead_letter_queue(&spec.name)] {
                channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await?;
            }
        }
        for ms in &self.delays_ms {
            channel
                .queue_delete(self.delay_queue(*ms).as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [
            self.events_exchange(),
            self.dead_letter_exchange(),
            self.delay_exchange(),
            self.retry_exchange(),
        ] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        // Fixed expectations: a changed hash would reorder customers across a rolling upgrade.
        assert_eq!(shard_for("", 8), shard_for("", 8));
        let a = shard_for("ch1|whatsapp:+5511987654321", 8);
        assert_eq!(a, shard_for("ch1|whatsapp:+5511987654321", 8));
        assert!(a < 8);
        assert_eq!(shard_for("anything", 1), 0);
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(u64::from(shard_for("a", 1000)), 0xaf63_dc4c_8601_ec8c % 1000);
    }

    #[test]
    fn shards_spread_keys_evenly() {
        let mut counts = [0u32; 8];
        for i in 0..8_000 {
            counts[usize::from(shard_for(&format!("whatsapp:+55119{i:08}"), 8))] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

    #[test]
    fn delays_repeat_the_last_tier() {
        let t = Topology::new(&BusConfig {
            retry_delays_ms: vec![100, 50],
            ..BusConfig::default()
        });
        assert_eq!(t.delay_for_attempt(2), 50);
        assert_eq!(t.delay_for_attempt(3), 100);
        assert_eq!(t.delay_for_attempt(9), 100);
    }

    #[test]
    fn names_live_under_the_namespace() {
        let t = Topology::new(&BusConfig {
            namespace: "t1".into(),
            shards: 2,
            ..BusConfig::default()
        });
        assert_eq!(t.events_exchange(), "t1.events");
        assert_eq!(t.queue("sender.outbound"), "t1.sender.outbound");
        assert_eq!(t.dead_letter_queue("sender.outbound"), "t1.sender.outbound.dlq");
        let names: Vec<_> = t.system_queues().into_iter().map(|q| q.name).collect();
        assert!(names.contains(&"session.inbound.1".to_owned()) && !names.contains(&"session.inbound.2".to_owned()));
    }
}
