//! A tap on the events exchange: a test-owned queue bound to some routing keys, to observe the
//! events services publish.

use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use switchboard_bus::{Envelope, QueueSpec};

use crate::TestBus;

/// Events published on the bindings of a tap, in arrival order.
pub struct Tap {
    _channel: lapin::Channel,
    consumer: lapin::Consumer,
    seen: Vec<serde_json::Value>,
}

impl TestBus {
    /// Binds a fresh queue to `bindings` (deleted with the namespace) and consumes it.
    pub async fn tap(&self, bindings: &[&str]) -> Tap {
        let spec = self.track(QueueSpec::shared(format!("tap.{}", uuid::Uuid::new_v4().simple()), bindings));
        let broker = self.broker("tap");
        let channel = broker.channel().await.expect("tap channel");
        let topology = self.topology();
        topology.declare_base(&channel).await.expect("declare base");
        topology.declare_queue(&channel, &spec).await.expect("declare tap queue");
        let consumer = channel
            .basic_consume(
                topology.queue(&spec.name).as_str().into(),
                "tap".into(),
                lapin::options::BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .expect("consume tap");
        Tap {
            _channel: channel,
            consumer,
            seen: Vec::new(),
        }
    }
}

impl Tap {
    /// Waits up to `within` for an event of type `T` matching `pred` (earlier events are kept, so
    /// the order in which a test looks does not matter). Panics with `what` on timeout.
    pub async fn expect<T: DeserializeOwned>(&mut self, within: Duration, what: &str, pred: impl Fn(&T) -> bool) -> Envelope<T> {
        let matches = |v: &serde_json::Value| serde_json::from_value::<Envelope<T>>(v.clone()).ok().filter(|e| pred(&e.payload));
        if let Some(found) = self.seen.iter().find_map(matches) {
            return found;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.consumer.next()).await;
            let Ok(Some(Ok(delivery))) = next else {
                panic!(
                    "timed out after {within:?} waiting for {what}; saw {} other events",
                    self.seen.len()
                );
            };
            let value: serde_json::Value = serde_json::from_slice(&delivery.data).expect("event is JSON");
            let found = matches(&value);
            self.seen.push(value);
            if let Some(found) = found {
                return found;
            }
        }
    }
}
