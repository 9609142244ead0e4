//! The bots service: workstreams can put a bot in front of their agents. Bots are plain HTTP
//! services the business runs; for every customer message on a conversation a bot holds, this
//! service POSTs a signed JSON turn to the bot and applies its answer: replies (through the same
//! outbound policy and sender as agents' replies), context variables, and escalation to people
//! or the end of the conversation. Stateless: it scales on the number of turns in flight.

pub mod clients;
pub mod config;
pub mod dispatch;
pub mod guard;
pub mod protocol;
pub mod signature;
pub mod testbot;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher, QueueSpec};
use switchboard_service_kit::Health;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// Runs the bots service until `shutdown`, then drains in-flight turns.
pub async fn run(config: Config, http: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = config.bots.clone();
    let broker = Broker::new(config.amqp_url.clone(), "bots", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let clients = clients::Clients::connect(&settings.session_url, settings.directory(), &settings.routing_url, &config.grpc_tls)?;
    let handler = Arc::new(dispatch::TurnHandler::new(
        clients,
        Duration::from_millis(settings.retry_base_ms),
        settings.allow_loopback_endpoints,
    )?);
    let queue = broker
        .topology()
        .system_queues()
        .into_iter()
        .find(|q| q.name == "bots.work")
        .unwrap_or_else(|| QueueSpec::shared("bots.work", &["bot.turn.v1"]));
    let consumer = tokio::spawn(
        Consumer::new(
            broker.clone(),
            publisher,
            ConsumerOptions::concurrent(queue, settings.concurrency),
            handler,
        )
        .run(shutdown.clone()),
    );
    let health = Health::new(shutdown.clone());
    health.set_ready(true);
    let server = axum::serve(http, health.router::<()>()).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tracing::info!("bots service running");
    let server = tokio::spawn(async move { server.await });
    shutdown.cancelled().await;
    let drain = Duration::from_millis(settings.drain_timeout_ms);
    if tokio::time::timeout(drain, consumer).await.is_err() {
        tracing::warn!(?drain, "in-flight bot turns did not finish in time");
    }
    server.await.context("health server task failed")?.context("health server failed")?;
    broker.close().await;
    tracing::info!("bots service stopped");
    Ok(())
}
