//! What every handler shares.

use std::sync::Arc;

use sqlx::PgPool;
use switchboard_bus::Publisher;

use crate::auth::Keys;
pub use crate::clients::{JournalClient, RoutingClient, SessionClient};
use crate::config::ApiSettings;
use crate::stream::Hub;

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
    /// The `[api]` configuration it was started with.
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
