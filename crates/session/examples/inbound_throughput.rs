//! Inbound throughput of the session service, end to end: events pre-loaded on the shard queues,
//! then `replicas` session instances consume → commit (customer, window, conversation, message)
//! → outbox → ack until every message is stored.
//!
//! `cargo run --release -p switchboard-session --example inbound_throughput -- [messages] [customers] [replicas]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use secrecy::SecretString;
use switchboard_bus::events::InboundReceivedV1;
use switchboard_bus::{BusConfig, Envelope, Event, Outgoing};
use switchboard_proto::session::v1 as pb;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_session::Config;
use switchboard_session::config::SessionSettings;
use switchboard_test_support::{TestBus, TestDb, bind_local};
use tokio_util::sync::CancellationToken;

const ACCOUNT: &str = "AC11111111111111111111111111111111";

fn config(db: &TestDb, bus: &BusConfig) -> Config {
    let mut keys = BTreeMap::new();
    keys.insert(
        "k1".to_owned(),
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
    );
    Config {
        public_base_url: "https://hooks.example.com".into(),
        database_url: SecretString::from(db.url.clone()),
        amqp_url: SecretString::from(switchboard_test_support::amqp_url()),
        bus: bus.clone(),
        grpc_tls: Default::default(),
        session: SessionSettings {
            grpc_listen: "127.0.0.1:0".parse().unwrap(),
            directory_listen: None,
            directory_clients: Vec::new(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            db_max_connections: 16,
            inbound_batch_max: 64,
            delivery_concurrency: 8,
            delivery_batch_max: 64,
            outbox_batch: 500,
            outbox_poll_ms: 200,
            auto_close_interval_secs: 3_600,
            default_waiting_auto_close_secs: 86_400,
            window_warning_secs: 3_600,
            // Twilio out of reach (a closed local port): channels are saved unchecked.
            twilio_api_base: "http://127.0.0.1:9".into(),
            twilio_content_base: "http://127.0.0.1:9".into(),
            media_max_bytes: 1 << 24,
            token_active_key: "k1".into(),
            token_keys: keys,
            drain_timeout_ms: 5_000,
            channel_health: Default::default(),
            files: Default::default(),
            webhook_signing: Default::default(),
            shard_leases: Default::default(),
            webhooks: Default::default(),
            bot_endpoints: Default::default(),
        },
    }
}

async fn start(db: &TestDb, bus: &BusConfig) -> (CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>, std::net::SocketAddr) {
    let grpc = bind_local().await;
    let addr = grpc.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(switchboard_session::run(
        config(db, bus),
        Arc::new(switchboard_domain::SystemClock),
        grpc,
        bind_local().await,
        shutdown.clone(),
    ));
    (shutdown, task, addr)
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (messages, customers, replicas) = (
        args.first().copied().unwrap_or(20_000),
        args.get(1).copied().unwrap_or(2_000),
        args.get(2).copied().unwrap_or(1),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::new().await;
    let mut bus = TestBus::new();
    bus.config.shards = 8;
    bus.config.prefetch = 256;
    bus.declare().await;

    // Configure a channel and number through a first instance, then stop it.
    let (shutdown, task, addr) = start(&db, &bus.config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = SessionServiceClient::connect(format!("http://{addr}")).await.unwrap();
    let channel = client
        .create_channel(pb::CreateChannelRequest {
            name: "bench".into(),
            account_sid: ACCOUNT.into(),
            auth_token: "0123456789abcdef0123456789abcdef".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .create_number(pb::CreateNumberRequest {
            channel_id: channel.id.clone(),
            phone: "+14155238886".into(),
            display_name: "bench".into(),
            settings: None,
            // Twilio is not part of this benchmark.
            skip_sender_check: true,
        })
        .await
        .unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();

    // Pre-load the shards.
    let publisher = bus.publisher();
    let mut encoded = Vec::with_capacity(messages);
    for i in 0..messages {
        let from = format!("+55119{:08}", i % customers);
        let sid = format!("SM{i:032x}");
        let ordering_key = format!("{}|{from}", channel.id);
        let event = InboundReceivedV1 {
            channel_id: channel.id.parse().expect("session answers a channel id"),
            message_sid: sid.clone(),
            shard: switchboard_bus::shard_for(&ordering_key, 8),
            ordering_key,
            received_at: time::OffsetDateTime::now_utc(),
            idempotency_token: None,
            params: vec![
                ("MessageSid".into(), sid),
                ("AccountSid".into(), ACCOUNT.into()),
                ("From".into(), format!("whatsapp:{from}")),
                ("To".into(), "whatsapp:+14155238886".into()),
                (
                    "Body".into(),
                    "Hello, I need help with my order #123, it has not arrived yet.".into(),
                ),
                ("ProfileName".into(), "Bench Customer".into()),
                ("NumMedia".into(), "0".into()),
            ],
        };
        let envelope = Envelope::new(event);
        encoded.push((envelope.message_id.to_string(), envelope.to_bytes(), envelope.payload.routing_key()));
    }
    for chunk in encoded.chunks(1_000) {
        let batch: Vec<Outgoing<'_>> = chunk
            .iter()
            .map(|(id, body, key)| Outgoing {
                exchange: None,
                routing_key: key,
                payload: body,
                message_id: id,
                headers: Default::default(),
                mandatory: true,
            })
            .collect();
        publisher.publish_batch(&batch).await.unwrap();
    }

    // Measure: start the replicas, wait until every message is stored.
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..replicas {
        running.push(start(&db, &bus.config).await);
    }
    loop {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM session.messages WHERE direction = 'inbound'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if stored as usize >= messages {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let conversations: i64 = sqlx::query_scalar("SELECT count(*) FROM session.conversations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    println!(
        "{{\"replicas\":{replicas},\"messages\":{messages},\"customers\":{customers},\"conversations\":{conversations},\"seconds\":{:.2},\"rate\":{:.0}}}",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    for (shutdown, task, _) in running {
        shutdown.cancel();
        let _ = task.await;
    }
}
