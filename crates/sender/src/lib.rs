//! The sender: delivers outbound WhatsApp messages through Twilio's Messages API. Per-number
//! pacing (80/s by default, the sandbox's 1 per 3 s), quick retries with backoff and jitter on
//! 429/5xx/network (honouring `Retry-After`), then delay-queue retries; permanent errors become
//! `outbound.failed.v1` with Twilio's code; a message Twilio accepted is never sent twice. It
//! also sends the typing indicators and read receipts session asks for.

mod claim;
pub mod config;
pub mod credentials;
pub mod indicators;
pub mod limiter;
pub mod send;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher};
use switchboard_service_kit::Runtime;
use switchboard_storage::outbox::OutboxRelay;
use switchboard_twilio::TwilioClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use config::Config;
pub use send::App;

/// Runs the sender until `shutdown`, then drains.
pub async fn run(config: Config, http: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = config.sender.clone();
    let pool = switchboard_storage::connect(config.database_url.expose_secret(), settings.db_max_connections)
        .await
        .context("cannot connect to Postgres")?;
    let broker = Broker::new(config.amqp_url.clone(), "sender", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let twilio = TwilioClient::new(
        &settings.twilio_api_base,
        &settings.twilio_content_base,
        Duration::from_millis(settings.request_timeout_ms),
    )?
    .with_messaging_base(&settings.twilio_messaging_base);
    let credentials = credentials::CredentialStore::connect(settings.directory(), &config.grpc_tls)?;
    let app = Arc::new(App::new(
        pool.clone(),
        twilio,
        credentials,
        settings.clone(),
        config.bus.max_attempts,
    ));
    let sync = templates::TemplateSync::connect(app.clone(), &settings.session_url, &config.grpc_tls)?;

    let mut runtime = Runtime::new("sender", &shutdown);
    let shutdown = runtime.token();
    let topology = broker.topology().clone();
    let queue = |name: &str| topology.system_queue(name);
    let sends = ConsumerOptions::concurrent(queue("sender.outbound")?, settings.concurrency);
    runtime.spawn(
        Consumer::new(
            broker.clone(),
            publisher.clone(),
            sends,
            Arc::new(send::SendHandler::new(app.clone())),
        )
        .run(shutdown.clone()),
    );
    let indicators = ConsumerOptions::concurrent(queue("sender.indicators")?, 16);
    runtime.spawn(
        Consumer::new(
            broker.clone(),
            publisher.clone(),
            indicators,
            Arc::new(indicators::IndicatorHandler::new(app.clone())),
        )
        .run(shutdown.clone()),
    );
    let commands = ConsumerOptions::concurrent(queue("sender.commands")?, 1);
    runtime.spawn(Consumer::new(broker.clone(), publisher.clone(), commands, Arc::new(sync.clone())).run(shutdown.clone()));
    let relay = OutboxRelay::new(
        pool.clone(),
        app.outbox.clone(),
        publisher.clone(),
        settings.outbox_batch,
        Duration::from_millis(settings.outbox_poll_ms),
    );
    runtime.spawn(relay.run(shutdown.clone()));
    runtime.spawn(heartbeat(app.clone(), shutdown.clone()));
    runtime.every(Duration::from_secs(settings.template_sync_interval_secs.max(60)), move || {
        sync.clone().scheduled_round()
    });
    runtime.serve_probes(http);
    tracing::info!(concurrency = settings.concurrency, "sender starting");
    runtime.run(Duration::from_millis(settings.drain_timeout_ms)).await?;
    broker.close().await;
    pool.close().await;
    Ok(())
}

/// Keeps this replica's heartbeat and its share of every number's rate (1 / live replicas).
async fn heartbeat(app: Arc<App>, shutdown: CancellationToken) {
    let id = Uuid::now_v7();
    loop {
        let beat = async {
            sqlx::query("INSERT INTO sender.replicas (id, seen_at) VALUES ($1, now()) ON CONFLICT (id) DO UPDATE SET seen_at = now()")
                .bind(id)
                .execute(&app.pool)
                .await?;
            sqlx::query("DELETE FROM sender.replicas WHERE seen_at < now() - interval '1 minute'")
                .execute(&app.pool)
                .await?;
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sender.replicas WHERE seen_at > now() - interval '15 seconds'")
                .fetch_one(&app.pool)
                .await
        };
        match beat.await {
            Ok(live) => app.limiter.set_share(1.0 / live.max(1) as f64),
            Err(error) => tracing::warn!(error = %error, "sender heartbeat failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    let _ = sqlx::query("DELETE FROM sender.replicas WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await;
}
