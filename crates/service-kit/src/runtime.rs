//! The frame every service runs in: its background tasks, its servers, its health (the HTTP
//! probes and gRPC's standard health service), and the stop: on shutdown gRPC health turns to
//! NOT_SERVING, no new task starts, and tasks and servers get the drain time to finish.
//!
//! A service builds its parts, hands them to a [`Runtime`], and awaits [`Runtime::run`]; what
//! it owns besides (the pool, the broker) it closes after `run` returns. Before, session,
//! routing, sender, bots, ingress and the API each wrote this sequence out, with drifting details
//! (which waited for what, which stopped on a failed server).

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::Health;

/// A server stopped with an error before shutdown: the service stops and reports it.
#[derive(Debug, thiserror::Error)]
#[error("{service}'s {server} server failed: {reason}")]
pub struct ServerFailed {
    /// The service that stopped (its name in logs and metrics).
    pub service: &'static str,
    /// Which of its servers.
    pub server: &'static str,
    /// What the server said.
    pub reason: String,
}

/// One service's tasks, servers and health, and its orderly stop.
pub struct Runtime {
    name: &'static str,
    stop: CancellationToken,
    tasks: TaskTracker,
    servers: Vec<JoinHandle<()>>,
    health: Health,
    grpc_health: HealthReporter,
    grpc_services: Vec<&'static str>,
    failure: Arc<Mutex<Option<ServerFailed>>>,
}

impl Runtime {
    /// A runtime for service `name` that stops when `shutdown` is cancelled (or when one of its
    /// servers fails; that stops this service only, not the others sharing `shutdown`).
    pub fn new(name: &'static str, shutdown: &CancellationToken) -> Self {
        let stop = shutdown.child_token();
        Self {
            name,
            health: Health::new(stop.clone()),
            stop,
            tasks: TaskTracker::new(),
            servers: Vec::new(),
            grpc_health: HealthReporter::new(),
            grpc_services: Vec::new(),
            failure: Arc::default(),
        }
    }

    /// The token every task and server of this service watches.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Resolves when the service begins to stop: the shutdown signal a server is given.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.stop.clone().cancelled_owned()
    }

    /// The readiness the HTTP probes report.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Runs `task` in the background; the stop waits for it (within the drain time).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Runs `step` every `interval` (the first time one interval after start) until the stop.
    pub fn every<F, Fut>(&self, interval: Duration, step: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(every(interval, self.token(), step));
    }

    /// gRPC's standard health service, reporting `S` as SERVING now and NOT_SERVING once the
    /// stop begins. Every call returns a handle on the same statuses.
    pub async fn grpc_health<S: NamedService>(&mut self) -> HealthServer<HealthService> {
        self.grpc_health.set_serving::<S>().await;
        if !self.grpc_services.contains(&S::NAME) {
            self.grpc_services.push(S::NAME);
        }
        HealthServer::new(HealthService::from_health_reporter(self.grpc_health.clone()))
    }

    /// Runs `server` (built to stop on [`Self::stopping`]). If it fails before the stop, the
    /// service stops and [`Self::run`] returns the failure.
    pub fn serve<E: Display>(&mut self, server_name: &'static str, server: impl Future<Output = Result<(), E>> + Send + 'static) {
        let (service, stop, failure) = (self.name, self.stop.clone(), self.failure.clone());
        self.servers.push(tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(error = %error, server = server_name, "{service} server failed");
                if let Ok(mut slot) = failure.lock() {
                    slot.get_or_insert(ServerFailed {
                        service,
                        server: server_name,
                        reason: error.to_string(),
                    });
                }
                stop.cancel();
            }
        }));
    }

    /// Serves `/healthz` and `/readyz` alone on `listener` (services whose traffic is gRPC or
    /// the bus).
    pub fn serve_probes(&mut self, listener: TcpListener) {
        let server = axum::serve(listener, self.health.router::<()>()).with_graceful_shutdown(self.stopping());
        self.serve("probes", server.into_future());
    }

    /// Marks the service ready, waits for the stop, then stops in order: gRPC health NOT_SERVING,
    /// no new tasks, and `drain` for the tasks and servers to finish.
    pub async fn run(self, drain: Duration) -> Result<(), ServerFailed> {
        self.health.set_ready(true);
        self.until_stopped(drain).await
    }

    /// As [`Self::run`], leaving readiness to the service (it sets it once its dependencies
    /// answer).
    pub async fn until_stopped(self, drain: Duration) -> Result<(), ServerFailed> {
        tracing::info!("{} running", self.name);
        self.stop.cancelled().await;
        for service in self.grpc_services.iter().chain([&""]) {
            self.grpc_health.set_service_status(service, ServingStatus::NotServing).await;
        }
        self.tasks.close();
        let (tasks, servers) = (self.tasks, self.servers);
        crate::shutdown::drain_within(self.name, drain, async move {
            tasks.wait().await;
            for server in servers {
                let _ = server.await;
            }
        })
        .await;
        tracing::info!("{} stopped", self.name);
        match self.failure.lock().ok().and_then(|mut slot| slot.take()) {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// Runs `step` every `interval` until `stop` is cancelled; the first run comes one interval
/// after the call. A step in progress finishes before the stop is noticed.
pub async fn every<F, Fut>(interval: Duration, stop: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        step().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tonic_health::pb::health_check_response::ServingStatus as GrpcStatus;

    use super::*;

    #[tokio::test]
    async fn a_failed_server_stops_the_service_but_not_its_siblings() {
        let shutdown = CancellationToken::new();
        let mut runtime = Runtime::new("test", &shutdown);
        let stopped_task = Arc::new(AtomicU32::new(0));
        let seen = stopped_task.clone();
        let token = runtime.token();
        runtime.spawn(async move {
            token.cancelled().await;
            seen.fetch_add(1, Ordering::SeqCst);
        });
        runtime.serve("broken", async { Err::<(), _>("address in use") });
        let failure = runtime.run(Duration::from_secs(5)).await.expect_err("the failure is reported");
        assert_eq!(failure.server, "broken");
        assert_eq!(failure.to_string(), "test's broken server failed: address in use");
        assert_eq!(stopped_task.load(Ordering::SeqCst), 1, "the task saw the stop and was waited for");
        assert!(!shutdown.is_cancelled(), "the shared shutdown token is untouched");
    }

    #[tokio::test]
    async fn shutdown_drains_tasks_and_turns_grpc_health_off() {
        let shutdown = CancellationToken::new();
        let mut runtime = Runtime::new("test", &shutdown);
        let health = runtime.grpc_health::<HealthServer<HealthService>>().await;
        let reporter = runtime.grpc_health.clone();
        let ticks = Arc::new(AtomicU32::new(0));
        let counted = ticks.clone();
        runtime.every(Duration::from_millis(1), move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        let probe = runtime.health().clone();
        let run = tokio::spawn(runtime.run(Duration::from_secs(5)));
        while ticks.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        assert!(probe.is_ready());
        shutdown.cancel();
        run.await.expect("joined").expect("a clean stop");
        assert!(!probe.is_ready());
        drop(health);
        assert_eq!(grpc_status(&reporter).await, GrpcStatus::NotServing as i32);
    }

    async fn grpc_status(reporter: &HealthReporter) -> i32 {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_server::Health as _;
        let service = HealthService::from_health_reporter(reporter.clone());
        let request = tonic::Request::new(HealthCheckRequest {
            service: <HealthServer<HealthService> as NamedService>::NAME.into(),
        });
        service.check(request).await.expect("a known service").into_inner().status
    }
}
