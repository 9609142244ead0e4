//! The session service: owns WhatsApp channel configuration (Twilio accounts, numbers, templates,
//! automated messages, survey), customers, conversations and messages, and enforces WhatsApp's
//! rules on the server: the 24-hour window, approved templates, attachment policy, forward-only
//! delivery status. It consumes inbound webhooks from the per-customer shards, serves gRPC to
//! ingress, routing, sender and the API, and publishes through its transactional outbox.

pub mod app;
pub mod automated;
pub mod bots;
pub mod channel_health;
pub mod channels;
pub mod config;
pub mod conversations;
pub mod crypto;
pub mod delivery;
pub mod error;
pub mod files;
pub mod grpc;
pub mod inbound;
pub mod indicators;
pub mod messages;
pub mod metrics;
pub mod numbers;
pub mod templates;
pub mod unroutable;
pub mod webhook_keys;
pub mod window_notes;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher, QueueSpec};
use switchboard_domain::Clock;
use switchboard_proto::session::v1::channel_directory_server::ChannelDirectoryServer;
use switchboard_proto::session::v1::session_service_server::SessionServiceServer;
use switchboard_service_kit::Health;
use switchboard_service_kit::grpc as grpc_setup;
use switchboard_storage::leases::{self, Leases};
use switchboard_storage::outbox::{Outbox, OutboxRelay};
use switchboard_twilio::TwilioClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use app::Session;
pub use config::Config;

/// Runs the session service until `shutdown`, then drains. `ChannelDirectory` listens on
/// `session.directory_listen` when that is set, else on `grpc` with everything else.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let directory = match config.session.directory_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (session ChannelDirectory gRPC)"))?,
        ),
        None => None,
    };
    run_with_directory(config, clock, grpc, directory, http, shutdown).await
}

/// Like [`run`], with `ChannelDirectory` alone on `directory` when given.
pub async fn run_with_directory(
    config: Config,
    clock: Arc<dyn Clock>,
    grpc: TcpListener,
    directory: Option<TcpListener>,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = config.session.clone();
    let grpc_server = grpc_setup::server(&config.grpc_tls).context("cannot set up gRPC TLS")?;
    let pool = switchboard_storage::connect(config.database_url.expose_secret(), settings.db_max_connections)
        .await
        .context("cannot connect to Postgres")?;
    let broker = Broker::new(config.amqp_url.clone(), "session", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let cipher = crypto::TokenCipher::from_config(&settings).map_err(|e| anyhow::anyhow!(e))?;
    let twilio = TwilioClient::new(&settings.twilio_api_base, &settings.twilio_content_base, Duration::from_secs(30))?
        .with_messaging_base(&settings.channel_health.twilio_messaging_base);
    let session = Arc::new(Session {
        pool: pool.clone(),
        cipher,
        clock,
        outbox: Outbox::new("session"),
        public_base_url: config.public_base_url.clone(),
        twilio,
        files: files::FileStore::from_settings(&settings.files).map_err(|e| anyhow::anyhow!("session.files.store: {e}"))?,
        settings: settings.clone(),
    });

    let tasks = TaskTracker::new();
    let topology = broker.topology().clone();
    let queue = |name: &str| {
        topology
            .system_queues()
            .into_iter()
            .find(|q| q.name == name)
            .unwrap_or_else(|| QueueSpec::shared(name, &[]))
    };
    // The inbound shards are divided among the live replicas by leases; each consumes only the
    // shards it holds (crates/storage/src/leases.rs has the protocol).
    let leases = Leases::new(
        pool.clone(),
        "session",
        member_name(&grpc),
        topology.shards(),
        Duration::from_millis(settings.shard_leases.ttl_ms),
    );
    let inbound_handler = Arc::new(inbound::InboundHandler::new(session.clone()));
    let start_shard = {
        let (broker, publisher) = (broker.clone(), publisher.clone());
        let batch_max = settings.inbound_batch_max;
        let shards: Vec<QueueSpec> = (0..topology.shards())
            .map(|shard| queue(&format!("session.inbound.{shard}")))
            .collect();
        move |shard: u16, stop: CancellationToken| {
            let spec = shards
                .get(usize::from(shard))
                .cloned()
                .unwrap_or_else(|| QueueSpec::ordered(format!("session.inbound.{shard}"), &[]));
            let options = ConsumerOptions::ordered(spec, batch_max);
            let consumer = Consumer::new(broker.clone(), publisher.clone(), options, inbound_handler.clone());
            tokio::spawn(consumer.run(stop))
        }
    };
    tasks.spawn(leases::hold(
        leases,
        Duration::from_millis(settings.shard_leases.heartbeat_ms.max(50)),
        shutdown.clone(),
        start_shard,
    ));
    let delivery =
        ConsumerOptions::concurrent(queue("session.delivery"), settings.delivery_concurrency).batched(settings.delivery_batch_max);
    tasks.spawn(
        Consumer::new(
            broker.clone(),
            publisher.clone(),
            delivery,
            Arc::new(delivery::DeliveryHandler::new(session.clone())),
        )
        .run(shutdown.clone()),
    );
    channel_health::register_metrics();
    if settings.channel_health.interval_secs > 0 {
        tasks.spawn(channel_health::run_checks(
            session.clone(),
            Duration::from_secs(settings.channel_health.interval_secs),
            shutdown.clone(),
        ));
    }
    tasks.spawn(files::run_retention(
        session.clone(),
        Duration::from_secs(settings.files.sweep_interval_secs.max(1)),
        shutdown.clone(),
    ));
    let commands = ConsumerOptions::concurrent(queue("session.commands"), 4);
    tasks.spawn(
        Consumer::new(
            broker.clone(),
            publisher.clone(),
            commands,
            Arc::new(delivery::CommandHandler::new(session.clone())),
        )
        .run(shutdown.clone()),
    );
    let relay = OutboxRelay::new(
        pool.clone(),
        session.outbox.clone(),
        publisher.clone(),
        settings.outbox_batch,
        Duration::from_millis(settings.outbox_poll_ms),
    );
    tasks.spawn(relay.run(shutdown.clone()));
    tasks.spawn(auto_close_loop(
        session.clone(),
        Duration::from_secs(settings.auto_close_interval_secs.max(1)),
        shutdown.clone(),
    ));

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<SessionServiceServer<grpc::SessionGrpc>>().await;
    let server = || {
        grpc_server
            .clone()
            .trace_fn(switchboard_telemetry::propagation::grpc_server_span)
            .layer(switchboard_telemetry::server_metrics::ServerMetricsLayer::grpc())
    };
    let directory_service = ChannelDirectoryServer::with_interceptor(
        grpc::SessionGrpc::new(session.clone()),
        grpc_setup::ClientNames::new(&config.grpc_tls, &settings.directory_clients),
    );
    let session_service = SessionServiceServer::new(grpc::SessionGrpc::new(session.clone())).max_decoding_message_size(8 * 1024 * 1024);
    let (grpc_task, directory_task) = match directory {
        Some(directory) => {
            tracing::info!(addr = ?directory.local_addr().ok(), "ChannelDirectory on its own port");
            let main = server().add_service(health_service.clone()).add_service(session_service);
            let dir = server().add_service(health_service).add_service(directory_service);
            (
                tokio::spawn(main.serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(grpc),
                    shutdown.clone().cancelled_owned(),
                )),
                Some(tokio::spawn(dir.serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(directory),
                    shutdown.clone().cancelled_owned(),
                ))),
            )
        }
        None => (
            tokio::spawn(
                server()
                    .add_service(health_service)
                    .add_service(directory_service)
                    .add_service(session_service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(grpc),
                        shutdown.clone().cancelled_owned(),
                    ),
            ),
            None,
        ),
    };

    let health = Health::new(shutdown.clone());
    health.set_ready(true);
    let http_server = axum::serve(http, health.router::<()>()).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let http_task = tokio::spawn(async move { http_server.await });
    tracing::info!("session service running");

    shutdown.cancelled().await;
    health_reporter.set_not_serving::<SessionServiceServer<grpc::SessionGrpc>>().await;
    tasks.close();
    switchboard_service_kit::shutdown::drain_within("session", Duration::from_millis(settings.drain_timeout_ms), async {
        tasks.wait().await;
        let _ = grpc_task.await;
        if let Some(task) = directory_task {
            let _ = task.await;
        }
        let _ = http_task.await;
    })
    .await;
    broker.close().await;
    pool.close().await;
    tracing::info!("session service stopped");
    Ok(())
}

/// This replica's name among the lease members: the host (the pod's name on Kubernetes) and the
/// gRPC port, unique among running replicas. A replica restarted in place gets its own leases
/// back at once instead of waiting for them to expire.
fn member_name(grpc: &TcpListener) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "session".into());
    let port = grpc.local_addr().map(|a| a.port()).unwrap_or(0);
    format!("{host}:{port}")
}

async fn auto_close_loop(session: Arc<Session>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        loop {
            match session.auto_close_due(200).await {
                Ok(0) => break,
                Ok(n) => tracing::info!(closed = n, "auto-closed idle conversations"),
                Err(error) => {
                    tracing::warn!(error = %error, "auto-close run failed");
                    break;
                }
            }
        }
        loop {
            match session.warn_closing_windows(200).await {
                Ok(n) if n < 200 => break,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "window warning run failed");
                    break;
                }
            }
        }
    }
}
