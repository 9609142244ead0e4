use std::sync::Arc;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use secrecy::SecretString;
use switchboard_bus::Envelope;
use switchboard_ingress::Config;
use switchboard_ingress::config::IngressSettings;
use switchboard_proto::ingress::v1::webhook_journal_client::WebhookJournalClient;
pub use switchboard_test_support::fakes::{FakeChannel, FakeDirectory};
use switchboard_test_support::{TcpProxy, TestBus, TestDb, bind_local, wait_until};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub const ACCOUNT: &str = "AC11111111111111111111111111111111";
pub const CHANNEL: &str = "0b1e5c6e-3c1a-4bde-9a55-7d0f8c1c2a10";

pub struct Harness {
    pub url: String,
    pub bus: TestBus,
    pub db: TestDb,
    /// The webhook journal's gRPC service.
    pub journal: WebhookJournalClient<tonic::transport::Channel>,
    pub session: FakeDirectory,
    pub proxy: TcpProxy,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    pub async fn start(cache_ttl_ms: u64) -> Self {
        Self::start_with(cache_ttl_ms, false).await
    }

    /// Like [`Harness::start`]; with `broker_down`, the proxy to RabbitMQ refuses connections
    /// from the start and nothing waits for ingress to be ready.
    pub async fn start_with(cache_ttl_ms: u64, broker_down: bool) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bus = TestBus::new();
        bus.declare().await;
        let db = TestDb::new().await;
        let session = FakeDirectory::new();
        session.put(CHANNEL, FakeChannel::active(ACCOUNT, TOKEN));
        let session_url = session.serve().await;
        let proxy = TcpProxy::start("127.0.0.1:5672").await;
        if broker_down {
            proxy.block();
        }
        let amqp = proxy.rewrite_url(&switchboard_test_support::amqp_url(), "127.0.0.1:5672");
        let listener = bind_local().await;
        let url = format!("http://{}", listener.local_addr().unwrap());
        let admin = bind_local().await;
        let admin_url = format!("http://{}", admin.local_addr().unwrap());
        let config = Config {
            // The URL Twilio is given is where ingress listens, so the emulator can call it.
            public_base_url: url.clone(),
            amqp_url: SecretString::from(amqp),
            database_url: SecretString::from(db.url.clone()),
            bus: bus.config.clone(),
            grpc_tls: Default::default(),
            ingress: IngressSettings {
                listen: listener.local_addr().unwrap(),
                session_url,
                body_limit_bytes: 65_536,
                request_timeout_ms: 10_000,
                channel_cache_ttl_ms: cache_ttl_ms,
                channel_stale_ttl_ms: 600_000,
                grpc_timeout_ms: 1_000,
                drain_timeout_ms: 5_000,
                admin_listen: admin.local_addr().unwrap(),
                journal: Default::default(),
            },
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchboard_ingress::run_with_clock(
            config,
            Arc::new(switchboard_domain::SystemClock),
            listener,
            Some(admin),
            shutdown.clone(),
        ));
        let journal = WebhookJournalClient::new(tonic::transport::Endpoint::from_shared(admin_url).unwrap().connect_lazy());
        let http = reqwest::Client::new();
        if !broker_down {
            wait_until(Duration::from_secs(10), "ingress up", || async {
                http.get(format!("{url}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            })
            .await;
        }
        Self {
            url,
            bus,
            db,
            journal,
            session,
            proxy,
            http,
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Posts `params` to `path` (with optional query), signed for the public URL with `token`.
    pub async fn post(&self, path_and_query: &str, params: &[(&str, &str)], token: &str) -> reqwest::Response {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let signature = sign(&format!("{}{path_and_query}", self.url), &body, token);
        self.http
            .post(format!("{}{path_and_query}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .header("i-twilio-idempotency-token", "803c29b1-163f-4e1a-a6c6-d74f62efab06")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn ready(&self, queue: &str) -> u32 {
        let channel = self.bus.broker("probe").channel().await.unwrap();
        let q = channel
            .queue_declare(
                self.bus.topology().queue(queue).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        q.message_count()
    }

    pub async fn total_published(&self) -> u32 {
        let mut total = self.ready("session.delivery").await;
        for shard in 0..self.bus.config.shards {
            total += self.ready(&format!("session.inbound.{shard}")).await;
        }
        total
    }

    /// Drains every message ready in `queue` (a consumer: basic.get is refused on
    /// single-active-consumer queues).
    pub async fn drain<T: serde::de::DeserializeOwned + switchboard_bus::Event>(&self, queue: &str) -> Vec<Envelope<T>> {
        use futures_util::StreamExt;
        let count = self.ready(queue).await;
        let channel = self.bus.broker("probe").channel().await.unwrap();
        let mut consumer = channel
            .basic_consume(
                self.bus.topology().queue(queue).as_str().into(),
                "drain".into(),
                lapin::options::BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while out.len() < count as usize {
            let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            out.push(Envelope::from_bytes(&delivery.data).unwrap());
        }
        let _ = channel.close(200, "drained".into()).await;
        out
    }
}

pub fn sign(url: &str, body: &str, token: &str) -> String {
    switchboard_twilio::signature::compute(token, url, &switchboard_twilio::signature::form_params(body.as_bytes()))
}

pub fn inbound_path() -> String {
    format!("/v1/twilio/{CHANNEL}/inbound")
}

pub fn status_path() -> String {
    format!("/v1/twilio/{CHANNEL}/status")
}

pub fn text_message(sid: &str, from: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MessageSid", sid.to_owned()),
        ("SmsMessageSid", sid.to_owned()),
        ("AccountSid", ACCOUNT.to_owned()),
        ("From", from.to_owned()),
        ("To", "whatsapp:+14155238886".to_owned()),
        ("Body", "Olá 😊".to_owned()),
        ("NumMedia", "0".to_owned()),
        ("ProfileName", "Ana María".to_owned()),
        ("ApiVersion", "2010-04-01".to_owned()),
    ]
}

pub fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
