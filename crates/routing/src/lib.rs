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
pub mod config_cache;
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
pub mod store;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher};
use switchboard_domain::Clock;
use switchboard_proto::routing::v1::routing_service_server::RoutingServiceServer;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_service_kit::Runtime;
use switchboard_service_kit::grpc::{self as grpc_setup, Timeouts};
use switchboard_storage::outbox::{Outbox, OutboxRelay};
use switchboard_telemetry::propagation::TracedChannel;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
        config: Arc::default(),
    });

    let mut runtime = Runtime::new("routing", &shutdown);
    let shutdown = runtime.token();
    let queue = broker.topology().system_queue("routing.work")?;
    let options = ConsumerOptions::concurrent(queue, settings.event_concurrency);
    runtime.spawn(
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
    runtime.spawn(relay.run(shutdown.clone()));
    runtime.spawn(routing.config.invalidation.clone().listen(pool.clone(), shutdown.clone()));
    runtime.spawn(cycle::run_requested(routing.clone(), shutdown.clone()));
    let mut gauges = Gauges::default();
    let scheduled = routing.clone();
    runtime.every(Duration::from_millis(settings.scheduler_interval_ms), move || {
        let routing = scheduled.clone();
        let gauges = gauges.due();
        async move { scheduler_round(&routing, gauges).await }
    });

    let health_service = runtime.grpc_health::<RoutingServiceServer<grpc::RoutingGrpc>>().await;
    let server = grpc_server
        .trace_fn(switchboard_telemetry::propagation::grpc_server_span)
        .layer(switchboard_telemetry::server_metrics::ServerMetricsLayer::grpc())
        .add_service(health_service)
        .add_service(RoutingServiceServer::new(grpc::RoutingGrpc::new(routing.clone())))
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(grpc), runtime.stopping());
    runtime.serve("gRPC", server);
    runtime.serve_probes(http);
    runtime.run(Duration::from_millis(settings.drain_timeout_ms)).await?;
    broker.close().await;
    pool.close().await;
    Ok(())
}

/// When the queue and presence gauges were last published (every five seconds).
#[derive(Default)]
struct Gauges(Option<std::time::Instant>);

impl Gauges {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if due {
            self.0 = Some(std::time::Instant::now());
        }
        due
    }
}

/// Expires offers, releases wrap-up capacity, applies waiting-time overflow, and runs a
/// safety-net assignment cycle; then, when `gauges` is due, publishes the queue and presence
/// gauges.
async fn scheduler_round(routing: &Routing, gauges: bool) {
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
    if gauges {
        match routing.gauge_snapshot().await {
            Ok(snapshot) => metrics::publish(snapshot),
            Err(error) => tracing::warn!(error = %error, "cannot read queue figures"),
        }
    }
}
