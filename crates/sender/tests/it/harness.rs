use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use futures_util::StreamExt;
use secrecy::SecretString;
use switchboard_bus::events::{OutboundContent, OutboundSendV1};
use switchboard_bus::{Envelope, QueueSpec};
use switchboard_domain::ManualClock;
use switchboard_domain::ids::{ChannelId, ConversationId, MessageId, NumberId};
use switchboard_sender::Config;
use switchboard_sender::config::SenderSettings;
use switchboard_test_support::fakes::{FakeChannel, FakeDirectory};
use switchboard_test_support::session_fake::FakeSession;
use switchboard_test_support::{TestBus, TestDb, bind_local};
use switchboard_twilio_emulator::{AccountSetup, Emulator, NumberSetup};
use tokio_util::sync::CancellationToken;

pub const ACCOUNT: &str = "AC22222222222222222222222222222222";
pub const TOKEN: &str = "emulated0123456789abcdef01234567";
pub const WAIT: Duration = Duration::from_secs(30);

/// A status callback received by the test's callback server.
#[derive(Debug, Clone)]
pub struct Callback {
    pub params: Vec<(String, String)>,
    pub signature_ok: bool,
}

impl Callback {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct Harness {
    pub db: TestDb,
    pub bus: TestBus,
    pub emulator: Emulator,
    /// Session as sender sees it: the channel directory, and template sync's session calls.
    pub session: FakeSession,
    pub channel_id: ChannelId,
    pub numbers: Vec<(NumberId, String)>,
    /// The rate configured on every number (0: default).
    pub rate: f64,
    pub callbacks: Arc<Mutex<Vec<Callback>>>,
    pub callback_url: String,
    pub events: lapin::Consumer,
    /// Results received while waiting for another message's.
    results: HashMap<String, (String, serde_json::Value)>,
    _events_channel: lapin::Channel,
    stops: Vec<(CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

async fn receive_callback(State((log, url)): State<(Arc<Mutex<Vec<Callback>>>, String)>, headers: HeaderMap, body: Bytes) -> &'static str {
    let params = switchboard_twilio::signature::form_params(&body);
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let signature_ok = switchboard_twilio::signature::validate(TOKEN, &url, &params, signature);
    log.lock().unwrap().push(Callback { params, signature_ok });
    ""
}

impl Harness {
    /// Sender + emulator + a faked session, with `numbers` WhatsApp numbers on one channel; `rate` per number.
    pub async fn start(numbers: usize, rate: f64, concurrency: usize) -> Self {
        Self::start_on(TestBus::new(), numbers, rate, concurrency).await
    }

    /// Like [`Harness::start`], on `bus` (whose retry delays and attempt limit the services use).
    pub async fn start_on(bus: TestBus, numbers: usize, rate: f64, concurrency: usize) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDb::new().await;
        bus.declare().await;
        let observe = bus.track(QueueSpec::shared("it.observe", &["outbound.#"]));
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

        // Emulator on two ports: API and "CDN".
        let api = bind_local().await;
        let cdn = bind_local().await;
        let clock = ManualClock::new();
        let emulator = Emulator::new(
            &format!("http://{}", api.local_addr().unwrap()),
            &format!("http://{}", cdn.local_addr().unwrap()),
            Arc::new(clock.clone()),
        )
        .unwrap();
        tokio::spawn({
            let router = switchboard_twilio_emulator::router(emulator.clone());
            async move { axum::serve(api, router).await }
        });
        tokio::spawn({
            let router = switchboard_twilio_emulator::cdn_router(emulator.clone());
            async move { axum::serve(cdn, router).await }
        });

        // The test's status-callback endpoint.
        let callbacks = Arc::new(Mutex::new(Vec::new()));
        let cb = bind_local().await;
        let callback_url = format!("http://{}/status", cb.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/status", axum::routing::post(receive_callback))
            .with_state((callbacks.clone(), callback_url.clone()));
        tokio::spawn(async move { axum::serve(cb, app).await });

        // Twilio knows the account; session (faked) knows the channel and hands sender its
        // credentials through the directory.
        let phones: Vec<String> = (0..numbers).map(|i| format!("+1415550{i:04}")).collect();
        emulator.setup_account(AccountSetup {
            account_sid: ACCOUNT.into(),
            auth_token: TOKEN.into(),
            numbers: phones
                .iter()
                .map(|phone| NumberSetup {
                    phone: phone.clone(),
                    inbound_url: "http://127.0.0.1:9/unreachable".into(),
                    fallback_url: None,
                })
                .collect(),
            sandbox_join_code: None,
            templates: None,
        });
        let publisher = bus.publisher();
        publisher.connect().await.unwrap();
        let session = FakeSession::new(publisher, Arc::new(clock.clone()));
        let session_url = session.serve().await;
        let channel_id = session.channel_id();
        let directory = FakeDirectory::new();
        directory.put(&channel_id.to_string(), FakeChannel::active(ACCOUNT, TOKEN));
        let directory_url = directory.serve().await;
        let created: Vec<(NumberId, String)> = phones.into_iter().map(|phone| (NumberId::generate(), phone)).collect();

        let sender_config = Config {
            database_url: SecretString::from(db.url.clone()),
            amqp_url: SecretString::from(bus.url().to_owned()),
            bus: bus.config.clone(),
            grpc_tls: Default::default(),
            sender: SenderSettings {
                db_max_connections: 16,
                http_listen: "127.0.0.1:0".parse().unwrap(),
                session_url,
                directory_url,
                twilio_api_base: emulator.api_base().into(),
                twilio_content_base: emulator.api_base().into(),
                twilio_messaging_base: emulator.api_base().into(),
                concurrency,
                default_rate_per_second: 80.0,
                rate_safety: 0.97,
                max_rate_wait_ms: 2_000,
                request_timeout_ms: 5_000,
                http_retries: 3,
                retry_base_ms: 50,
                max_retry_after_ms: 2_000,
                template_sync_interval_secs: 3_600,
                outbox_batch: 200,
                outbox_poll_ms: 50,
                drain_timeout_ms: 5_000,
            },
        };
        let shutdown = CancellationToken::new();
        let stops = vec![(
            shutdown.clone(),
            tokio::spawn(switchboard_sender::run(sender_config, bind_local().await, shutdown)),
        )];
        Self {
            db,
            bus,
            emulator,
            session,
            channel_id,
            numbers: created,
            rate,
            callbacks,
            callback_url,
            events,
            results: HashMap::new(),
            _events_channel: channel,
            stops,
        }
    }

    pub async fn stop(self) {
        for (shutdown, task) in self.stops.into_iter().rev() {
            shutdown.cancel();
            task.await.unwrap().unwrap();
        }
    }

    /// An `outbound.send.v1` as session writes it.
    pub fn send_event(&self, number: usize, to: &str, content: OutboundContent) -> OutboundSendV1 {
        let (number_id, phone) = &self.numbers[number];
        OutboundSendV1 {
            message_id: MessageId::generate(),
            conversation_id: ConversationId::generate(),
            channel_id: self.channel_id,
            number_id: *number_id,
            from: format!("whatsapp:{phone}"),
            to: format!("whatsapp:{to}"),
            content,
            status_callback: self.callback_url.clone(),
            // Session copies the number's configured rate into every send.
            rate_per_second: self.rate,
        }
    }

    pub async fn publish(&self, event: &OutboundSendV1) {
        self.bus
            .publisher()
            .publish_event(&Envelope::new(event.clone()), true)
            .await
            .unwrap();
    }

    /// Waits for the next outbound result event for `message_id`.
    pub async fn result_for(&mut self, message_id: MessageId) -> (String, serde_json::Value) {
        self.result_within(message_id, WAIT).await
    }

    /// Like [`Harness::result_for`], waiting up to `wait` for each event.
    pub async fn result_within(&mut self, message_id: MessageId, wait: Duration) -> (String, serde_json::Value) {
        let message_id = message_id.to_string();
        if let Some(result) = self.results.remove(&message_id) {
            return result;
        }
        loop {
            let delivery = tokio::time::timeout(wait, self.events.next())
                .await
                .expect("an outbound result")
                .unwrap()
                .unwrap();
            let key = delivery.routing_key.as_str().to_owned();
            let envelope: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
            if key == "outbound.accepted.v1" || key == "outbound.failed.v1" {
                let id = envelope["event"]["message_id"].as_str().unwrap_or_default().to_owned();
                if id == message_id {
                    return (key, envelope["event"].clone());
                }
                self.results.insert(id, (key, envelope["event"].clone()));
            }
        }
    }

    /// Makes a customer write to `number`, opening the 24-hour window at the emulator.
    pub async fn customer_writes(&self, number: usize, from: &str) {
        let message = switchboard_twilio_emulator::CustomerMessage {
            from: from.into(),
            to: self.numbers[number].1.clone(),
            body: "hi".into(),
            ..Default::default()
        };
        self.emulator.customer_message(message).await.unwrap();
    }
}

pub fn text(body: &str) -> OutboundContent {
    OutboundContent::Text { body: body.into() }
}
