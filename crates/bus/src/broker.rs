//! One AMQP connection per process, replaced when it dies.

use std::sync::Arc;

use lapin::{Channel, Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::BusConfig;
use crate::topology::Topology;

/// A handle to the broker: hands out channels on a shared connection, reconnecting when the
/// connection is gone. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    url: SecretString,
    name: String,
    config: BusConfig,
    topology: Topology,
    connection: Mutex<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("name", &self.inner.name)
            .field("namespace", &self.inner.config.namespace)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Creates a handle; nothing connects until a channel is asked for.
    pub fn new(url: SecretString, connection_name: impl Into<String>, config: BusConfig) -> Self {
        let topology = Topology::new(&config);
        Self {
            inner: Arc::new(Inner {
                url,
                name: connection_name.into(),
                config,
                topology,
                connection: Mutex::new(None),
            }),
        }
    }

    /// The connection name: the service this handle belongs to.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Returns the bus settings.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// The exchanges and queues this broker declared, and how names and shards are made.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// Opens a channel, connecting first if there is no live connection.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let connection = self.connection().await?;
        // A connection that died without lapin noticing may never answer: bound the wait and
        // start over with a new connection.
        match tokio::time::timeout(self.inner.config.connect_timeout(), connection.create_channel()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(error)) => {
                self.forget(&connection).await;
                Err(error.into())
            }
            Err(_) => {
                self.forget(&connection).await;
                Err(anyhow::anyhow!("opening a channel timed out; reconnecting"))
            }
        }
    }

    /// Declares the system topology on a fresh channel; with `bus.declare` off, checks that it
    /// was declared (by `switchboard migrate`) instead.
    pub async fn declare_topology(&self) -> anyhow::Result<()> {
        let channel = self.channel().await?;
        if self.inner.config.declare {
            self.inner.topology.declare_all(&channel).await?;
        } else {
            self.inner
                .topology
                .verify_all(&channel)
                .await
                .map_err(|e| anyhow::anyhow!("the bus topology is not declared ({e}); run `switchboard migrate --amqp-url …`"))?;
        }
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }

    /// Closes the connection (at shutdown, after consumers and publishers are done).
    pub async fn close(&self) {
        if let Some(connection) = self.inner.connection.lock().await.take() {
            let _ = connection.close(200, "shutdown".into()).await;
        }
    }

    async fn connection(&self) -> anyhow::Result<Arc<Connection>> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && connection.status().connected()
        {
            return Ok(connection.clone());
        }
        let props = ConnectionProperties::default().with_connection_name(self.inner.name.as_str().into());
        let connect = Connection::connect(self.inner.url.expose_secret(), props);
        let connection = match tokio::time::timeout(self.inner.config.connect_timeout(), connect).await {
            Ok(Ok(connection)) => Arc::new(connection),
            // lapin's error text never includes the URL's password.
            Ok(Err(error)) => return Err(anyhow::anyhow!("cannot connect to the broker: {error}")),
            Err(_) => return Err(anyhow::anyhow!("cannot connect to the broker: timed out")),
        };
        tracing::info!(connection = %self.inner.name, "connected to the broker");
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn forget(&self, dead: &Arc<Connection>) {
        let mut slot = self.inner.connection.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
            *slot = None;
        }
    }
}
