//! What every handler shares.

use std::sync::Arc;

use sqlx::PgPool;
use switchboard_bus::Publisher;
use switchboard_proto::ingress::v1::webhook_journal_client::WebhookJournalClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_telemetry::propagation::TracedChannel;

use crate::auth::Keys;
use crate::config::ApiSettings;
use crate::stream::Hub;

/// The session client, carrying trace context.
pub type SessionClient = SessionServiceClient<TracedChannel>;
/// The ingress webhook-journal client, carrying trace context.
pub type JournalClient = WebhookJournalClient<TracedChannel>;
/// The routing client, carrying trace context.
pub type RoutingClient = RoutingServiceClient<TracedChannel>;

/// Shared state of the API's handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The parts of [`AppState`].
pub struct Inner {
    /// API keys.
    pub keys: Keys,
    /// Users of the web desk and their sessions.
    pub users: crate::users::Users,
    /// Session service.
    pub session: SessionClient,
    /// Routing service.
    pub routing: RoutingClient,
    /// Ingress's webhook journal.
    pub journal: JournalClient,
    /// Commands to other services (template sync).
    pub publisher: Publisher,
    /// The `api` schema.
    pub pool: PgPool,
    /// Live events for WebSocket clients.
    pub hub: Hub,
    /// Agents' open streams, reported to routing (presence follows them).
    pub connections: crate::stream::presence::Connections,
    /// Settings.
    pub settings: ApiSettings,
    /// Request limits per key and per client address.
    pub limits: crate::limits::Limits,
    /// Cancelled when the service stops (closes WebSocket streams).
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// A session client (cheap clone of one shared channel).
    pub fn session(&self) -> SessionClient {
        self.inner.session.clone()
    }

    /// A journal client (cheap clone of one shared channel).
    pub fn journal(&self) -> JournalClient {
        self.inner.journal.clone()
    }

    /// A routing client (cheap clone of one shared channel).
    pub fn routing(&self) -> RoutingClient {
        self.inner.routing.clone()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}
