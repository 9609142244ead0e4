//! Sends/s through sender → emulator with 25 numbers at 80 messages/s each (a 2,000/s ceiling),
//! next to a plain reqwest loop posting the same messages to the same emulator endpoint.
//!
//! `cargo run --release -p switchboard-sender --example send_throughput -- [messages]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_domain::ids::{ChannelId, ConversationId, MessageId, NumberId};

use secrecy::SecretString;
use switchboard_bus::events::{OutboundContent, OutboundSendV1};
use switchboard_bus::{Envelope, Event, Outgoing};
use switchboard_test_support::fakes::{FakeChannel, FakeDirectory};
use switchboard_test_support::{TestBus, TestDb, bind_local};
use switchboard_twilio_emulator::{AccountSetup, CustomerMessage, Emulator, NumberSetup};
use tokio_util::sync::CancellationToken;

const ACCOUNT: &str = "AC33333333333333333333333333333333";
const TOKEN: &str = "bench0123456789abcdef0123456789ab";
const NUMBERS: usize = 25;

#[tokio::main]
async fn main() {
    let messages: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::new().await;
    let mut bus = TestBus::new();
    bus.config.prefetch = 512;
    bus.declare().await;

    let (api, cdn, sink) = (bind_local().await, bind_local().await, bind_local().await);
    let emulator = Emulator::new(
        &format!("http://{}", api.local_addr().unwrap()),
        &format!("http://{}", cdn.local_addr().unwrap()),
        Arc::new(switchboard_domain::SystemClock),
    )
    .unwrap();
    tokio::spawn({
        let r = switchboard_twilio_emulator::router(emulator.clone());
        async move { axum::serve(api, r).await }
    });
    let callback_url = format!("http://{}/status", sink.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            sink,
            axum::Router::new().route("/status", axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT })),
        )
        .await
    });

    // Session's channel directory (faked: this measures sender, not session) and the numbers.
    let channel_id = ChannelId::generate();
    let directory = FakeDirectory::new();
    directory.put(&channel_id.to_string(), FakeChannel::active(ACCOUNT, TOKEN));
    let directory_url = directory.serve().await;
    let numbers: Vec<(NumberId, String)> = (0..NUMBERS).map(|i| (NumberId::generate(), format!("+1415560{i:04}"))).collect();
    emulator.setup_account(AccountSetup {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        numbers: numbers
            .iter()
            .map(|(_, p)| NumberSetup {
                phone: p.clone(),
                inbound_url: "http://127.0.0.1:9/none".into(),
                fallback_url: None,
            })
            .collect(),
        sandbox_join_code: None,
        templates: None,
    });
    for (_, phone) in &numbers {
        emulator
            .customer_message(CustomerMessage {
                from: "+5511999990000".into(),
                to: phone.clone(),
                body: "hi".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    // Baseline: plain reqwest, 256 in flight, same endpoint, spread over the same numbers.
    let http = reqwest::Client::new();
    let url = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", emulator.api_base());
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for i in 0..messages {
        let (http, url, permit) = (http.clone(), url.clone(), permits.clone().acquire_owned().await.unwrap());
        let from = format!("whatsapp:{}", numbers[i % NUMBERS].1);
        tasks.push(tokio::spawn(async move {
            let form = [
                ("To", "whatsapp:+5511999990000".to_owned()),
                ("From", from),
                ("Body", format!("baseline {i}")),
            ];
            let ok = http
                .post(url)
                .basic_auth(ACCOUNT, Some(TOKEN))
                .form(&form)
                .send()
                .await
                .is_ok_and(|r| r.status() == 201);
            drop(permit);
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    let baseline = ok as f64 / started.elapsed().as_secs_f64();

    // Sender: 256 in flight, 80/s per number.
    let stop_sender = CancellationToken::new();
    let sender_config = switchboard_sender::Config {
        database_url: SecretString::from(db.url.clone()),
        amqp_url: SecretString::from(bus.url().to_owned()),
        bus: bus.config.clone(),
        grpc_tls: Default::default(),
        sender: switchboard_sender::config::SenderSettings {
            db_max_connections: 16,
            http_listen: "127.0.0.1:0".parse().unwrap(),
            // Template sync is not part of this run; its session is never called.
            session_url: "http://127.0.0.1:9".into(),
            directory_url,
            twilio_api_base: emulator.api_base().into(),
            twilio_content_base: emulator.api_base().into(),
            twilio_messaging_base: emulator.api_base().into(),
            concurrency: 256,
            default_rate_per_second: 80.0,
            rate_safety: 0.97,
            max_rate_wait_ms: 2_000,
            request_timeout_ms: 15_000,
            http_retries: 3,
            retry_base_ms: 250,
            max_retry_after_ms: 10_000,
            template_sync_interval_secs: 3_600,
            outbox_batch: 500,
            outbox_poll_ms: 100,
            drain_timeout_ms: 5_000,
        },
    };
    let before = emulator.sent().len();
    let publisher = bus.publisher();
    let mut encoded = Vec::with_capacity(messages);
    for i in 0..messages {
        let (number_id, phone) = &numbers[i % NUMBERS];
        let event = OutboundSendV1 {
            message_id: MessageId::generate(),
            conversation_id: ConversationId::generate(),
            channel_id,
            number_id: *number_id,
            from: format!("whatsapp:{phone}"),
            to: "whatsapp:+5511999990000".into(),
            content: OutboundContent::Text {
                body: format!("sender {i}"),
            },
            status_callback: if std::env::var("BENCH_NO_CALLBACKS").is_ok() {
                String::new()
            } else {
                callback_url.clone()
            },
            rate_per_second: std::env::var("BENCH_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(80.0),
        };
        let e = Envelope::new(event);
        encoded.push((e.message_id.to_string(), e.to_bytes(), e.payload.routing_key()));
    }
    for chunk in encoded.chunks(1_000) {
        let batch: Vec<Outgoing<'_>> = chunk
            .iter()
            .map(|(id, b, k)| Outgoing {
                exchange: None,
                routing_key: k,
                payload: b,
                message_id: id,
                headers: Default::default(),
                mandatory: true,
            })
            .collect();
        publisher.publish_batch(&batch).await.unwrap();
    }
    let started = Instant::now();
    let sender = tokio::spawn(switchboard_sender::run(sender_config, bind_local().await, stop_sender.clone()));
    loop {
        let accepted: i64 = sqlx::query_scalar("SELECT count(*) FROM sender.deliveries WHERE status = 'accepted'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if accepted as usize >= messages {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    let sends: Vec<_> = emulator.sent().into_iter().skip(before).collect();
    let mut per_second: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for m in &sends {
        per_second.entry(m.from.clone()).or_default().push(m.received_ms);
    }
    let worst = per_second
        .values_mut()
        .map(|t| {
            t.sort_unstable();
            let (mut best, mut s) = (0, 0);
            for e in 0..t.len() {
                while t[e] - t[s] >= 1_000 {
                    s += 1;
                }
                best = best.max(e - s + 1);
            }
            best
        })
        .max()
        .unwrap_or(0);
    println!(
        "{{\"messages\":{messages},\"numbers\":{NUMBERS},\"baseline_rate\":{baseline:.0},\"sender_rate\":{rate:.0},\"sent_at_emulator\":{},\"worst_number_second\":{worst}}}",
        sends.len()
    );
    stop_sender.cancel();
    sender.await.unwrap().unwrap();
}
