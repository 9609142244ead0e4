use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use secrecy::SecretString;
use switchboard_bus::events::InboundReceivedV1;
use switchboard_bus::{Envelope, Event, QueueSpec};
use switchboard_domain::ManualClock;
use switchboard_proto::session::v1 as pb;
use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_session::Config;
use switchboard_session::config::SessionSettings;
use switchboard_test_support::{TestBus, TestDb, bind_local, wait_for};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "tok0123456789abcdef0123456789abcd";
pub const ACCOUNT: &str = "AC11111111111111111111111111111111";
pub const BUSINESS: &str = "+14155238886";
pub const WAIT: Duration = Duration::from_secs(20);

pub type Client = SessionServiceClient<tonic::transport::Channel>;

pub struct Replica {
    pub client: Client,
    pub directory: ChannelDirectoryClient<tonic::transport::Channel>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Harness {
    pub db: TestDb,
    pub bus: TestBus,
    pub clock: ManualClock,
    pub replicas: Vec<Replica>,
    pub events: lapin::Consumer,
    _events_channel: lapin::Channel,
}

pub fn config(db: &TestDb, bus: &TestBus) -> Config {
    let mut keys = BTreeMap::new();
    keys.insert(
        "k1".to_owned(),
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
    );
    Config {
        public_base_url: "https://hooks.example.com".into(),
        database_url: SecretString::from(db.url.clone()),
        amqp_url: SecretString::from(bus.url().to_owned()),
        bus: bus.config.clone(),
        grpc_tls: Default::default(),
        session: SessionSettings {
            grpc_listen: "127.0.0.1:0".parse().unwrap(),
            directory_listen: None,
            directory_clients: Vec::new(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            db_max_connections: 8,
            inbound_batch_max: 16,
            delivery_concurrency: 4,
            delivery_batch_max: 64,
            outbox_batch: 200,
            outbox_poll_ms: 100,
            auto_close_interval_secs: 1,
            default_waiting_auto_close_secs: 3_600,
            window_warning_secs: 3_600,
            // Twilio out of reach (a closed local port): channels are saved unchecked.
            twilio_api_base: "http://127.0.0.1:9".into(),
            twilio_content_base: "http://127.0.0.1:9".into(),
            media_max_bytes: 16 * 1024 * 1024,
            token_active_key: "k1".into(),
            token_keys: keys,
            drain_timeout_ms: 5_000,
            // Twilio's Senders API out of reach too: numbers are saved unchecked.
            channel_health: switchboard_session::config::ChannelHealthSettings {
                twilio_messaging_base: "http://127.0.0.1:9".into(),
                ..Default::default()
            },
            files: Default::default(),
            webhook_signing: Default::default(),
            // Short leases so replicas rebalance within a test's patience.
            shard_leases: switchboard_storage::leases::LeaseSettings {
                ttl_ms: 2_000,
                heartbeat_ms: 200,
            },
            bot_endpoints: switchboard_session::config::BotEndpoints { allow_loopback: true },
            webhooks: switchboard_session::config::WebhookUrls {
                fallback_base_url: "https://fallback.example.com".into(),
                ..Default::default()
            },
        },
    }
}

impl Harness {
    pub async fn start(replicas: usize) -> Self {
        Self::start_on(TestBus::new(), replicas).await
    }

    /// Like [`Harness::start`], on `bus` (its shard count, say).
    pub async fn start_on(bus: TestBus, replicas: usize) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDb::new().await;
        bus.declare().await;
        // Observe every event the service publishes.
        let observe = bus.track(QueueSpec::shared("it.observe", &["#"]));
        let channel = bus.broker("observer").channel().await.unwrap();
        bus.topology().declare_queue(&channel, &observe).await.unwrap();
        let events = channel
            .basic_consume(
                bus.topology().queue("it.observe").as_str().into(),
                "observer".into(),
                lapin::options::BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        let clock = ManualClock::new();
        let mut harness = Self {
            db,
            bus,
            clock,
            replicas: Vec::new(),
            events,
            _events_channel: channel,
        };
        for _ in 0..replicas {
            harness.add_replica().await;
        }
        harness
    }

    pub async fn add_replica(&mut self) {
        let grpc = bind_local().await;
        let http = bind_local().await;
        let addr = grpc.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchboard_session::run(
            config(&self.db, &self.bus),
            Arc::new(self.clock.clone()),
            grpc,
            http,
            shutdown.clone(),
        ));
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        let channel = wait_for(WAIT, "session gRPC up", || {
            let endpoint = endpoint.clone();
            async move { endpoint.connect().await.ok() }
        })
        .await;
        self.replicas.push(Replica {
            client: SessionServiceClient::new(channel.clone()),
            directory: ChannelDirectoryClient::new(channel),
            shutdown,
            task,
        });
    }

    pub fn client(&self) -> Client {
        self.replicas[0].client.clone()
    }

    /// Stops replica `index` (a graceful shutdown: it finishes its batches and leaves).
    pub async fn stop_replica(&mut self, index: usize) {
        let r = self.replicas.remove(index);
        r.shutdown.cancel();
        r.task.await.unwrap().unwrap();
    }

    /// The inbound shards each replica holds: (member, shards held), by member.
    pub async fn lease_holders(&self) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT owner, count(*) FROM session.leases WHERE owner IS NOT NULL GROUP BY owner ORDER BY owner")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        for r in self.replicas {
            r.shutdown.cancel();
            r.task.await.unwrap().unwrap();
        }
    }

    /// A channel with one number (customer attachments on), returning (channel id, number id).
    pub async fn channel_and_number(&self) -> (String, String) {
        let mut client = self.client();
        let channel = client
            .create_channel(pb::CreateChannelRequest {
                name: "Acme".into(),
                account_sid: ACCOUNT.into(),
                auth_token: TOKEN.into(),
                sandbox: false,
                sandbox_join_code: String::new(),
                skip_credential_check: false,
            })
            .await
            .unwrap()
            .into_inner();
        let settings = pb::NumberSettings {
            default_language: "en".into(),
            customer_attachments: true,
            agent_attachments: true,
            ..Default::default()
        };
        let number = client
            .create_number(pb::CreateNumberRequest {
                channel_id: channel.id.clone(),
                phone: BUSINESS.into(),
                display_name: "Acme Support".into(),
                settings: Some(settings),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (channel.id, number.id)
    }

    /// Publishes an inbound webhook as ingress would.
    pub async fn inbound(&self, channel_id: &str, sid: &str, from: &str, body: &str, extra: &[(&str, &str)]) {
        let mut event = inbound_event(&self.bus, channel_id, sid, from, body, extra);
        event.received_at = switchboard_domain::Clock::now(&self.clock);
        self.bus.publisher().publish_event(&Envelope::new(event), true).await.unwrap();
    }

    pub async fn publish<T: Event>(&self, event: T) {
        self.bus.publisher().publish_event(&Envelope::new(event), true).await.unwrap();
    }

    pub async fn conversations(&self) -> Vec<pb::Conversation> {
        self.client()
            .list_conversations(pb::ListConversationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .conversations
    }

    pub async fn messages(&self, conversation_id: &str) -> Vec<pb::Message> {
        self.client()
            .list_messages(pb::ListMessagesRequest {
                conversation_id: conversation_id.into(),
                after_seq: 0,
                limit: 1_000,
            })
            .await
            .unwrap()
            .into_inner()
            .messages
    }

    /// Waits for the next published event with routing key `key`; returns its JSON.
    pub async fn next_event(&mut self, key: &str) -> serde_json::Value {
        loop {
            let delivery = tokio::time::timeout(WAIT, self.events.next())
                .await
                .unwrap_or_else(|_| panic!("no {key} event"))
                .unwrap()
                .unwrap();
            if delivery.routing_key.as_str() == key {
                let envelope: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
                return envelope["event"].clone();
            }
        }
    }
}

pub fn directory(h: &Harness) -> ChannelDirectoryClient<tonic::transport::Channel> {
    h.replicas[0].directory.clone()
}

pub fn inbound_event(bus: &TestBus, channel_id: &str, sid: &str, from: &str, body: &str, extra: &[(&str, &str)]) -> InboundReceivedV1 {
    inbound_event_on(bus.config.shards, channel_id, sid, from, body, extra)
}

/// Like [`inbound_event`], for a bus of `shards` shards.
pub fn inbound_event_on(shards: u16, channel_id: &str, sid: &str, from: &str, body: &str, extra: &[(&str, &str)]) -> InboundReceivedV1 {
    let mut params: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.into()),
        ("AccountSid".into(), ACCOUNT.into()),
        ("From".into(), format!("whatsapp:{from}")),
        ("To".into(), format!("whatsapp:{BUSINESS}")),
        ("Body".into(), body.into()),
        ("ProfileName".into(), "Ana".into()),
    ];
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let ordering_key = format!("{channel_id}|{from}");
    InboundReceivedV1 {
        channel_id: channel_id.parse().expect("a channel id"),
        message_sid: sid.into(),
        shard: switchboard_bus::shard_for(&ordering_key, shards),
        ordering_key,
        received_at: time::OffsetDateTime::now_utc(),
        idempotency_token: None,
        params,
    }
}

pub fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}
