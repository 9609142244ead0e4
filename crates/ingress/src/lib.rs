//! Ingress: receives Twilio's webhooks for every configured channel, verifies
//! `X-Twilio-Signature` against the public URL before parsing anything, publishes the verified
//! webhook to RabbitMQ with a publisher confirm, and only then answers Twilio. It never loses
//! a message it acknowledged and never publishes one it refused. Stateless on the hot path:
//! scale it on CPU. Every webhook whose signature verified is also kept in the webhook journal
//! (`journal`), written behind the answer, and served to the API for list, show and replay
//! (`admin`).

mod admin;
mod channels;
pub mod config;
mod files;
mod http;
pub mod journal;
mod webhooks;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use journal::Journal;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Publisher};
use switchboard_domain::{Clock, SystemClock};
use switchboard_proto::ingress::v1::webhook_journal_server::WebhookJournalServer;
use switchboard_service_kit::{Health, Runtime};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use channels::ChannelDirectory;
pub use config::Config;
pub use http::router;
pub use webhooks::Webhooks;

/// Runs ingress on `listener` until `shutdown`, then drains in-flight requests. With the journal
/// enabled, its gRPC service listens on `ingress.admin_listen`.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let admin = if config.ingress.journal.enabled {
        let addr = config.ingress.admin_listen;
        Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (ingress journal gRPC)"))?,
        )
    } else {
        None
    };
    run_with_clock(config, Arc::new(SystemClock), listener, admin, shutdown).await
}

/// Like [`run`], stamping webhooks' arrival time with `clock` (tests and `switchboard dev`
/// move time to show the 24-hour window closing), with the journal's gRPC service on `admin`.
pub async fn run_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let broker = Broker::new(config.amqp_url.clone(), "ingress", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let mut runtime = Runtime::new("ingress", &shutdown);
    let shutdown = runtime.token();
    let health = runtime.health().clone();
    // Ready once the shard queues exist and the confirm channel is open: a webhook that arrived
    // earlier would be answered 503 (found by a test that posted while the channel opened).
    spawn_topology_declaration(broker.clone(), publisher.clone(), health.clone(), shutdown.clone());
    let resolver = channels::connect(&config.ingress, &config.grpc_tls).context("invalid session_url")?;
    let settings = &config.ingress.journal;
    let journal_pool = if settings.enabled {
        Some(
            switchboard_storage::connect_lazy(config.database_url.expose_secret(), settings.db_max_connections)
                .context("invalid database_url")?,
        )
    } else {
        None
    };
    // Written until every handler has let go of its sender, so a graceful stop flushes it.
    let journal = journal_pool.clone().map(|pool| {
        Journal::start(
            pool,
            settings.queue_capacity,
            Duration::from_secs(settings.retention_hours.saturating_mul(3600)),
            shutdown.clone(),
        )
    });
    let files = files::router(resolver.clone());
    let webhooks = Arc::new(Webhooks::new(resolver, publisher, &config, clock.clone(), journal));
    if let (Some(admin), Some(pool)) = (admin, journal_pool) {
        let service = admin::JournalService::new(pool, webhooks.clone(), clock);
        tracing::info!(addr = ?admin.local_addr().ok(), "ingress journal gRPC listening");
        let server = switchboard_service_kit::grpc::server(&config.grpc_tls)
            .context("cannot set up gRPC TLS")?
            .trace_fn(switchboard_telemetry::propagation::grpc_server_span)
            .add_service(WebhookJournalServer::new(service))
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(admin), runtime.stopping());
        runtime.serve("journal gRPC", server);
    }
    let app = router(webhooks, &config.ingress).merge(files).merge(health.router());

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, public_base_url = %config.public_base_url, "ingress listening");
    let server = axum::serve(listener, app).with_graceful_shutdown(runtime.stopping());
    runtime.serve("HTTP", server.into_future());
    // Readiness waits for the topology (spawn_topology_declaration above).
    runtime
        .until_stopped(Duration::from_millis(config.ingress.drain_timeout_ms))
        .await?;
    broker.close().await;
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
