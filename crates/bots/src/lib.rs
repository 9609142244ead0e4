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

use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher};
use switchboard_service_kit::Runtime;
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
    let queue = broker.topology().system_queue("bots.work")?;
    let mut runtime = Runtime::new("bots", &shutdown);
    runtime.spawn(
        Consumer::new(
            broker.clone(),
            publisher,
            ConsumerOptions::concurrent(queue, settings.concurrency),
            handler,
        )
        .run(runtime.token()),
    );
    runtime.serve_probes(http);
    runtime.run(Duration::from_millis(settings.drain_timeout_ms)).await?;
    broker.close().await;
    Ok(())
}
