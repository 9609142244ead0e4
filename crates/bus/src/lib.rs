//! RabbitMQ for Switchboard, over lapin.
//!
//! - [`topology`]: every exchange and queue, declared idempotently under a namespace prefix
//!   (tests use their own prefix so parallel runs never meet).
//! - [`Publisher`]: persistent messages with publisher confirms, pipelined across concurrent
//!   callers, failing fast with [`PublishError::Unavailable`] while the broker is unreachable.
//! - [`Consumer`]: prefetch, manual ack after the handler succeeds, bounded retries (in place
//!   for ordered queues, through TTL delay queues otherwise), then dead-letter; reconnects after
//!   a broker restart and stops cleanly on shutdown.
//! - [`Envelope`]: the versioned JSON wrapper every event travels in; trace context rides in
//!   AMQP headers.

mod broker;
mod carrier;
pub mod config;
mod consumer;
mod envelope;
pub mod events;
mod publisher;
pub mod topology;

pub use broker::Broker;
pub use carrier::{ATTEMPT_HEADER, ROUTING_KEY_HEADER, headers_to_map};
pub use config::BusConfig;
pub use consumer::{Consumer, ConsumerOptions, HandleError, Handler, Incoming, RetryPolicy, SUSPECT_IN_PLACE_ATTEMPTS};
pub use envelope::{Envelope, Event};
pub use publisher::{Outgoing, PublishError, Publisher};
pub use topology::{Permissions, QueueSpec, Topology, UnknownQueue, key_hash, shard_for};
