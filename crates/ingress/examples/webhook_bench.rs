//! Ingress benchmark pieces, run as separate processes by `scripts/bench-ingress.sh`:
//! - `serve-bare ADDR`: an axum handler answering the same TwiML, verifying and publishing nothing;
//! - `serve-ingress ADDR`: the real ingress (with an in-process fake session service) publishing
//!   with confirms to the local RabbitMQ under a private namespace, removed on exit; with
//!   `JOURNAL=1` it also keeps the webhook journal, in a private database removed on exit;
//! - `load ADDR CONNECTIONS SECONDS [RATE]`: pre-signed inbound webhooks from 1,000 customers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use secrecy::SecretString;
use switchboard_ingress::Config;
use switchboard_ingress::config::IngressSettings;
use switchboard_test_support::TestBus;
use switchboard_test_support::fakes::{FakeChannel, FakeDirectory};
use switchboard_test_support::http_load::{LoadPlan, form_post, run};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const ACCOUNT: &str = "AC11111111111111111111111111111111";
const PUBLIC: &str = "https://bench.example.com";

async fn serve_bare(addr: &str) {
    let app = axum::Router::new().route(
        "/v1/twilio/{channel_id}/inbound",
        post(|| async { ([(http::header::CONTENT_TYPE, "text/xml")], switchboard_ingress_twiml()) }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            switchboard_service_kit::shutdown_signal().await;
        })
        .await
        .unwrap();
}

fn switchboard_ingress_twiml() -> &'static str {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
}

async fn serve_ingress(addr: &str) {
    let bus = TestBus::new();
    bus.declare().await;
    let session_url = FakeDirectory::answering_any(FakeChannel::active(ACCOUNT, TOKEN)).serve().await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let db = match std::env::var("JOURNAL").as_deref() {
        Ok("1") => Some(switchboard_test_support::TestDb::new().await),
        _ => None,
    };
    let config = Config {
        public_base_url: PUBLIC.into(),
        amqp_url: SecretString::from(switchboard_test_support::amqp_url()),
        database_url: SecretString::from(db.as_ref().map_or_else(switchboard_test_support::database_url, |d| d.url.clone())),
        bus: bus.config.clone(),
        grpc_tls: Default::default(),
        ingress: IngressSettings {
            listen: listener.local_addr().unwrap(),
            session_url,
            body_limit_bytes: 65_536,
            request_timeout_ms: 10_000,
            channel_cache_ttl_ms: 5_000,
            channel_stale_ttl_ms: 600_000,
            grpc_timeout_ms: 1_000,
            drain_timeout_ms: 5_000,
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            journal: switchboard_ingress::config::JournalSettings {
                enabled: db.is_some(),
                ..Default::default()
            },
        },
    };
    let shutdown = CancellationToken::new();
    switchboard_service_kit::spawn_shutdown_on_signal(shutdown.clone());
    switchboard_ingress::run(config, listener, shutdown).await.unwrap();
    drop(db);
    drop(bus);
}

fn requests(channel: &str) -> Vec<Vec<u8>> {
    let path = format!("/v1/twilio/{channel}/inbound");
    (0..1_000u32)
        .map(|i| {
            let sid = format!("SM{i:032x}");
            let from = format!("whatsapp:+55119{i:08}");
            let params = [
                ("SmsMessageSid", sid.as_str()),
                ("NumMedia", "0"),
                ("ProfileName", "Bench Customer"),
                ("MessageType", "text"),
                ("SmsSid", sid.as_str()),
                ("SmsStatus", "received"),
                ("Body", "Hello, I need help with my order #123, it has not arrived yet."),
                ("To", "whatsapp:+14155238886"),
                ("NumSegments", "1"),
                ("ReferralNumMedia", "0"),
                ("MessageSid", sid.as_str()),
                ("AccountSid", ACCOUNT),
                ("From", from.as_str()),
                ("ApiVersion", "2010-04-01"),
            ];
            let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            let signature = switchboard_twilio::signature::compute(
                TOKEN,
                &format!("{PUBLIC}{path}"),
                &switchboard_twilio::signature::form_params(body.as_bytes()),
            );
            form_post(&path, &body, &[("X-Twilio-Signature", &signature)])
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve-bare") => serve_bare(&args[1]).await,
        Some("serve-ingress") => serve_ingress(&args[1]).await,
        Some("load") => {
            let plan = LoadPlan {
                addr: args[1].parse().unwrap(),
                requests: Arc::new(requests("0b1e5c6e-3c1a-4bde-9a55-7d0f8c1c2a10")),
                connections: args[2].parse().unwrap(),
                duration: Duration::from_secs(args[3].parse().unwrap()),
                rate: args.get(4).map(|r| r.parse().unwrap()),
            };
            let report = run(plan).await.unwrap();
            println!("{}", report.to_json());
        }
        _ => eprintln!("usage: webhook_bench serve-bare ADDR | serve-ingress ADDR | load ADDR CONNECTIONS SECONDS [RATE]"),
    }
}
