//! Ingress: receives Twilio's webhooks for every configured channel, verifies
//! `X-Twilio-Signature` against the public URL before parsing anything, publishes the verified
//! webhook to RabbitMQ with a publisher confirm, and only then answers Twilio. It never loses
//! a message it acknowledged and never publishes one it refused. Stateless: scale it on CPU.

mod channels;
pub mod config;
mod http;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_bus::{Broker, Publisher};
use switchboard_domain::{Clock, SystemClock};
use switchboard_service_kit::Health;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use channels::ChannelResolver;
pub use config::Config;
pub use http::router;
pub use webhooks::Webhooks;

/// Runs ingress on `listener` until `shutdown`, then drains in-flight requests.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_clock(config, Arc::new(SystemClock), listener, shutdown).await
}

/// Like [`run`], stamping webhooks' arrival time with `clock` (tests and `switchboard dev`
/// move time to show the 24-hour window closing).
pub async fn run_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let broker = Broker::new(config.amqp_url.clone(), "ingress", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let health = Health::new(shutdown.clone());
    // Ready once the shard queues exist and the confirm channel is open: a webhook that arrived
    // earlier would be answered 503 (found by a test that posted while the channel opened).
    spawn_topology_declaration(broker.clone(), publisher.clone(), health.clone(), shutdown.clone());
    let resolver = ChannelResolver::connect(&config.ingress).context("invalid session_url")?;
    let webhooks = Arc::new(Webhooks::new(resolver, publisher, &config, clock));
    let app = router(webhooks, &config.ingress).merge(health.router());

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, public_base_url = %config.public_base_url, "ingress listening");
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = tokio::spawn(async move { server.await });
    tokio::select! {
        result = &mut server => return result.context("ingress server task failed")?.context("ingress server failed"),
        () = shutdown.cancelled() => {}
    }
    let drain = Duration::from_millis(config.ingress.drain_timeout_ms);
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result.context("ingress server task failed")?.context("ingress server failed")?,
        Err(_) => tracing::warn!(?drain, "in-flight webhooks did not finish in time"),
    }
    broker.close().await;
    tracing::info!("ingress stopped");
    Ok(())
}

/// Declares the topology (so shard queues exist before the first publish) and opens the confirm
/// channel, retrying until the broker answers; then marks ingress ready.
fn spawn_topology_declaration(broker: Broker, publisher: Publisher, health: Health, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match broker.declare_topology().await {
                Ok(()) => match publisher.connect().await {
                    Ok(()) => {
                        health.set_ready(true);
                        return;
                    }
                    Err(error) => tracing::warn!(error = %error, "cannot open the publisher's channel yet"),
                },
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot declare the bus topology yet")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => delay = (delay * 2).min(Duration::from_secs(5)),
                () = shutdown.cancelled() => return,
            }
        }
    });
}
