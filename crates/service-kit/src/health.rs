//! `/healthz` (the process is alive) and `/readyz` (it should get traffic) for Kubernetes probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::StatusCode;
use tokio_util::sync::CancellationToken;

/// Readiness state shared between a service and its probe endpoints.
///
/// A service starts not ready, flips to ready once its dependencies answer, and is never
/// ready again after shutdown begins.
#[derive(Clone, Debug)]
pub struct Health {
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Health {
    /// Creates a not-yet-ready state tied to the service's shutdown token.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            shutdown,
        }
    }

    /// Marks the service ready (or not) to receive traffic.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Returns whether traffic should be sent here now.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.shutdown.is_cancelled()
    }

    /// Returns a router serving `GET /healthz` and `GET /readyz`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }
}

async fn readyz(State(health): State<Health>) -> (StatusCode, &'static str) {
    if health.is_ready() {
        (StatusCode::OK, "ready")
    } else if health.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn status(router: &Router, path: &str) -> StatusCode {
        let req = Request::get(path).body(Body::empty()).expect("request");
        router.clone().oneshot(req).await.expect("response").status()
    }

    #[tokio::test]
    async fn readiness_follows_start_and_shutdown() {
        let token = CancellationToken::new();
        let health = Health::new(token.clone());
        let router: Router = health.router();
        assert_eq!(status(&router, "/healthz").await, StatusCode::OK);
        assert_eq!(status(&router, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        health.set_ready(true);
        assert_eq!(status(&router, "/readyz").await, StatusCode::OK);
        token.cancel();
        assert_eq!(status(&router, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(&router, "/healthz").await, StatusCode::OK);
    }
}
