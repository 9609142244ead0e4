//! A bus namespace per test: every exchange and queue is prefixed, and deleted on drop.

use std::sync::Mutex;

use secrecy::SecretString;
use switchboard_bus::{Broker, BusConfig, Publisher, QueueSpec, Topology};

/// A private namespace on the shared local broker.
pub struct TestBus {
    /// Settings with the private namespace and short retry delays.
    pub config: BusConfig,
    url: String,
    extra: Mutex<Vec<QueueSpec>>,
}

impl TestBus {
    /// A namespace with 2 shards and retry delays of 50 and 100 ms (3 attempts).
    pub fn new() -> Self {
        Self::with_url(crate::amqp_url())
    }

    /// Like [`TestBus::new`], reaching the broker at `url` (a [`crate::TcpProxy`], say).
    pub fn with_url(url: String) -> Self {
        let config = BusConfig {
            namespace: format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            shards: 2,
            prefetch: 32,
            confirm_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            retry_delays_ms: vec![50, 100],
            max_attempts: 3,
            reconnect_max_backoff_ms: 500,
            declare: true,
        };
        Self {
            config,
            url,
            extra: Mutex::new(Vec::new()),
        }
    }

    /// Returns the AMQP URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns a broker handle on this namespace, reaching the broker at `url`.
    pub fn broker_at(&self, url: &str, name: &str) -> Broker {
        Broker::new(SecretString::from(url.to_owned()), name, self.config.clone())
    }

    /// Returns a broker handle on this namespace.
    pub fn broker(&self, name: &str) -> Broker {
        self.broker_at(&self.url, name)
    }

    /// Returns a publisher on this namespace.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.broker("test-publisher"))
    }

    /// Remembers a test-made queue so it is deleted too.
    pub fn track(&self, spec: QueueSpec) -> QueueSpec {
        self.extra.lock().expect("lock").push(spec.clone());
        spec
    }

    /// Returns the topology of this namespace.
    pub fn topology(&self) -> Topology {
        Topology::new(&self.config)
    }

    /// Returns how many messages are ready in queue `full_name` (namespaced), or `None` when it
    /// does not exist (yet).
    pub async fn ready_count(&self, full_name: &str) -> Option<u32> {
        self.queue_counts(full_name).await.map(|(ready, _)| ready)
    }

    /// Returns (messages ready, consumers) of queue `full_name` (namespaced), or `None` when it
    /// does not exist (yet).
    pub async fn queue_counts(&self, full_name: &str) -> Option<(u32, u32)> {
        let broker = self.broker("test-probe");
        let channel = broker.channel().await.ok()?;
        let declared = channel
            .queue_declare(
                full_name.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        let _ = channel.close(200, "probe done".into()).await;
        broker.close().await;
        declared.ok().map(|q| (q.message_count(), q.consumer_count()))
    }

    /// Declares the system topology of this namespace.
    pub async fn declare(&self) {
        self.broker("test-declare")
            .declare_topology()
            .await
            .unwrap_or_else(|e| panic!("cannot reach RabbitMQ at AMQP_URL ({e:#})"));
    }
}

impl Default for TestBus {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let broker = Broker::new(SecretString::from(crate::amqp_url()), "test-cleanup", self.config.clone());
        let extra = self.extra.lock().map(|v| v.clone()).unwrap_or_default();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(channel) = broker.channel().await {
                    let _ = broker.topology().delete_all(&channel, &extra).await;
                }
                broker.close().await;
            });
        })
        .join();
    }
}
