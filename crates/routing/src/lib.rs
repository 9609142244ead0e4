//! The routing service: decides which human agent gets each conversation, with Dynamics 365
//! unified-routing semantics (classification, route-to-queue, overflow, operating hours,
//! skills, capacity, presence, offers with timeouts and declines, pick, transfers) and
//! TaskRouter's strong points (first-match rules, reservations that expire). The rules live in
//! `domain::routing`; this crate persists state in schema `routing` and talks to session.

pub mod app;
pub mod assigner;
pub mod bots;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod converge;
pub mod cycle;
pub mod error;
pub mod grpc;
pub mod handler;
pub mod intake;
pub mod lifecycle;
pub mod metrics;
pub mod report;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher, QueueSpec};
use switchboard_domain::Clock;
use switchboard_proto::routing::v1::routing_service_server::RoutingServiceServer;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_service_kit::Health;
use switchboard_service_kit::grpc::{self as grpc_setup, Timeouts};
use switchboard_storage::outbox::{Outbox, OutboxRelay};
use switchboard_telemetry::propagation::TracedChannel;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use app::Routing;
pub use config::Config;

/// Runs routing until `shutdown`, then drains.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = config.routing.clone();
    let pool = switchboard_storage::connect(config.database_url.expose_secret(), settings.db_max_connections)
        .await
        .context("cannot connect to Postgres")?;
    let broker = Broker::new(config.amqp_url.clone(), "routing", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let grpc_server = grpc_setup::server(&config.grpc_tls).context("cannot set up gRPC TLS")?;
    let channel = grpc_setup::channel(&settings.session_url, &config.grpc_tls, Timeouts::call(Duration::from_secs(10)))?;
    let routing = Arc::new(Routing {
        pool: pool.clone(),
        clock,
        outbox: Outbox::new("routing"),
        session: SessionServiceClient::new(TracedChannel::new(channel)),
        settings: settings.clone(),
        cycles: Arc::default(),
    });

    let tasks = TaskTracker::new();
    let topology = broker.topology().clone();
    let queue = topology
        .system_queues()
        .into_iter()
        .find(|q| q.name == "routing.work")
        .unwrap_or_else(|| QueueSpec::shared("routing.work", &[]));
    let options = ConsumerOptions::concurrent(queue, settings.event_concurrency);
    tasks.spawn(
        Consumer::new(
            broker.clone(),
            publisher.clone(),
            options,
            Arc::new(handler::WorkHandler::new(routing.clone())),
        )
        .run(shutdown.clone()),
    );
    let relay = OutboxRelay::new(
        pool.clone(),
        routing.outbox.clone(),
        publisher.clone(),
        settings.outbox_batch,
        Duration::from_millis(settings.outbox_poll_ms),
    );
    tasks.spawn(relay.run(shutdown.clone()));
    tasks.spawn(assigner::run(routing.clone(), shutdown.clone()));
    tasks.spawn(scheduler(
        routing.clone(),
        Duration::from_millis(settings.scheduler_interval_ms),
        shutdown.clone(),
    ));

    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter.set_serving::<RoutingServiceServer<grpc::RoutingGrpc>>().await;
    let server = grpc_server
        .trace_fn(switchboard_telemetry::propagation::grpc_server_span)
        .layer(switchboard_telemetry::server_metrics::ServerMetricsLayer::grpc())
        .add_service(health_service)
        .add_service(RoutingServiceServer::new(grpc::RoutingGrpc::new(routing.clone())))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc),
            shutdown.clone().cancelled_owned(),
        );
    let grpc_task = tokio::spawn(server);
    let health = Health::new(shutdown.clone());
    health.set_ready(true);
    let http_server = axum::serve(http, health.router::<()>()).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let http_task = tokio::spawn(async move { http_server.await });
    tracing::info!("routing service running");

    shutdown.cancelled().await;
    reporter.set_not_serving::<RoutingServiceServer<grpc::RoutingGrpc>>().await;
    tasks.close();
    switchboard_service_kit::shutdown::drain_within("routing", Duration::from_millis(settings.drain_timeout_ms), async {
        tasks.wait().await;
        let _ = grpc_task.await;
        let _ = http_task.await;
    })
    .await;
    broker.close().await;
    pool.close().await;
    Ok(())
}

/// Expires offers, releases wrap-up capacity, applies waiting-time overflow, and runs a
/// safety-net assignment cycle.
async fn scheduler(routing: Arc<Routing>, every: Duration, shutdown: CancellationToken) {
    let mut last_gauges: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let steps = async {
            routing.expire_offers().await?;
            routing.release_due_wrap_ups().await?;
            routing.reset_daily_capacity().await?;
            routing.waiting_overflow().await?;
            routing.drop_stale_connections().await?;
            routing.release_disconnected().await?;
            routing.request_cycle(None);
            Ok::<(), error::RoutingError>(())
        };
        if let Err(error) = steps.await {
            tracing::warn!(error = %error, "routing scheduler step failed");
        }
        // Queue and presence gauges, every five seconds.
        if last_gauges.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            last_gauges = Some(std::time::Instant::now());
            match routing.gauge_snapshot().await {
                Ok(snapshot) => metrics::publish(snapshot),
                Err(error) => tracing::warn!(error = %error, "cannot read queue figures"),
            }
        }
    }
}
