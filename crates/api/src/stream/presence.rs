//! Agents' open streams, reported to routing so their presence follows them (Dynamics: an agent
//! whose last connection drops shows Offline, and is restored if back within 2.5 min).
//!
//! Each open stream of an agent is reported when it opens and when the agent closes it, and every
//! open one again every [`CONFIRM_EVERY`], so a lost report heals itself and the streams of a
//! replica that died expire in routing. A stream closed because this replica is stopping is not
//! reported: its agent reconnects to another replica and never looks disconnected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_proto::routing::v1::{AgentConnection, AgentConnectionsRequest};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::clients::RoutingClient;

/// How often every open stream is confirmed (routing drops one unconfirmed for 90 s).
pub const CONFIRM_EVERY: Duration = Duration::from_secs(30);

/// The agents' streams open on this replica.
#[derive(Clone)]
pub struct Connections {
    open: Arc<Mutex<HashMap<Uuid, Uuid>>>,
    routing: RoutingClient,
}

fn pair(agent: Uuid, connection: Uuid) -> AgentConnection {
    AgentConnection {
        agent_id: agent.to_string(),
        connection_id: connection.to_string(),
    }
}

impl Connections {
    /// Reports to `routing`.
    pub fn new(routing: RoutingClient) -> Self {
        Self {
            open: Arc::default(),
            routing,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Uuid>> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A stream of `agent` opened; returns its id.
    pub async fn opened(&self, agent: Uuid) -> Uuid {
        let connection = Uuid::now_v7();
        self.lock().insert(connection, agent);
        self.report(vec![pair(agent, connection)], Vec::new()).await;
        connection
    }

    /// The agent closed the stream (or it broke).
    pub async fn closed(&self, agent: Uuid, connection: Uuid) {
        self.lock().remove(&connection);
        self.report(Vec::new(), vec![pair(agent, connection)]).await;
    }

    /// The stream ends because this replica stops: forgotten, not reported.
    pub fn forget(&self, connection: Uuid) {
        self.lock().remove(&connection);
    }

    async fn report(&self, alive: Vec<AgentConnection>, closed: Vec<AgentConnection>) {
        if alive.is_empty() && closed.is_empty() {
            return;
        }
        let request = AgentConnectionsRequest { alive, closed };
        if let Err(status) = self.routing.clone().agent_connections(request).await {
            // The next confirmation, or routing's expiry, puts it right.
            tracing::warn!(error = %status.message(), "cannot report agents' streams to routing");
        }
    }

    /// Confirms every open stream each [`CONFIRM_EVERY`] until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(CONFIRM_EVERY) => {}
            }
            let alive: Vec<AgentConnection> = self.lock().iter().map(|(c, a)| pair(*a, *c)).collect();
            self.report(alive, Vec::new()).await;
        }
    }
}
