//! The session service: owns WhatsApp channel configuration (Twilio accounts, numbers, templates,
//! automated messages, survey), customers, conversations and messages, and enforces WhatsApp's
//! rules on the server: the 24-hour window, approved templates, attachment policy, forward-only
//! delivery status. It consumes inbound webhooks from the per-customer shards, serves gRPC to
//! ingress, routing, sender and the API, and publishes through its transactional outbox.

pub mod app;
pub mod automated;
pub mod bots;
pub mod channel_health;
pub mod channel_webhooks;
pub mod channels;
pub mod config;
pub mod config_cache;
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
pub mod send_context;
pub mod store;
pub mod templates;
pub mod unroutable;
pub mod webhook_keys;
pub mod webhook_signing;
pub mod window_notes;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher, QueueSpec};
use switchboard_domain::Clock;
use switchboard_proto::session::v1::channel_directory_server::ChannelDirectoryServer;
use switchboard_proto::session::v1::session_service_server::SessionServiceServer;
use switchboard_service_kit::Runtime;
use switchboard_service_kit::grpc as grpc_setup;
use switchboard_storage::leases::{self, Leases};
use switchboard_storage::outbox::{Outbox, OutboxRelay};
use switchboard_twilio::TwilioClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
    let cipher = crypto::TokenCipher::from_keys(&settings.token_keys, &settings.token_active_key).map_err(|e| anyhow::anyhow!(e))?;
    let twilio = TwilioClient::new(&settings.twilio_api_base, &settings.twilio_content_base, Duration::from_secs(30))?
        .with_messaging_base(&settings.channel_health.twilio_messaging_base)
        .with_webhooks_base(&settings.webhook_signing.twilio_webhooks_base);
    let session = Arc::new(Session {
        pool: pool.clone(),
        cipher,
        clock,
        outbox: Outbox::new("session"),
        public_base_url: config.public_base_url.clone(),
        twilio,
        files: files::store::FileStore::open(&settings.files.store, &settings.files.store_options)
            .map_err(|e| anyhow::anyhow!("session.files.store: {e}"))?,
        settings: settings.clone(),
        config: Arc::default(),
    });

    let mut runtime = Runtime::new("session", &shutdown);
    let shutdown = runtime.token();
    let topology = broker.topology().clone();
    let queue = |name: &str| topology.system_queue(name);
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
        let shards = (0..topology.shards())
            .map(|shard| queue(&format!("session.inbound.{shard}")))
            .collect::<Result<Vec<QueueSpec>, _>>()?;
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
    runtime.spawn(leases::hold(
        leases,
        Duration::from_millis(settings.shard_leases.heartbeat_ms.max(50)),
        shutdown.clone(),
        start_shard,
    ));
    let delivery = ConsumerOptions::keyed(queue("session.delivery")?, settings.delivery_concurrency, delivery::lane)
        .batched(settings.delivery_batch_max);
    runtime.spawn(
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
        let checked = session.clone();
        runtime.every(Duration::from_secs(settings.channel_health.interval_secs), move || {
            channel_health::check_round(checked.clone())
        });
    }
    let swept = session.clone();
    runtime.every(Duration::from_secs(settings.files.sweep_interval_secs.max(1)), move || {
        files::retention_round(swept.clone())
    });
    let commands = ConsumerOptions::concurrent(queue("session.commands")?, 4);
    runtime.spawn(
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
    runtime.spawn(relay.run(shutdown.clone()));
    runtime.spawn(session.config.invalidation.clone().listen(pool.clone(), shutdown.clone()));
    let closing = session.clone();
    runtime.every(Duration::from_secs(settings.auto_close_interval_secs.max(1)), move || {
        auto_close_round(closing.clone())
    });

    let health_service = runtime.grpc_health::<SessionServiceServer<grpc::SessionGrpc>>().await;
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
    let incoming = tonic::transport::server::TcpIncoming::from;
    match directory {
        Some(directory) => {
            tracing::info!(addr = ?directory.local_addr().ok(), "ChannelDirectory on its own port");
            let main = server().add_service(health_service.clone()).add_service(session_service);
            let dir = server().add_service(health_service).add_service(directory_service);
            runtime.serve("gRPC", main.serve_with_incoming_shutdown(incoming(grpc), runtime.stopping()));
            runtime.serve(
                "ChannelDirectory gRPC",
                dir.serve_with_incoming_shutdown(incoming(directory), runtime.stopping()),
            );
        }
        None => {
            let all = server()
                .add_service(health_service)
                .add_service(directory_service)
                .add_service(session_service);
            runtime.serve("gRPC", all.serve_with_incoming_shutdown(incoming(grpc), runtime.stopping()));
        }
    }
    runtime.serve_probes(http);
    runtime.run(Duration::from_millis(settings.drain_timeout_ms)).await?;
    broker.close().await;
    pool.close().await;
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

/// Closes idle conversations and warns of closing windows, 200 at a time until none is due.
async fn auto_close_round(session: Arc<Session>) {
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
