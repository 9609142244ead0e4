//! Sends that fail past the quick in-process retries are parked on the bus's delay tiers and
//! come back as sends (not as dead letters), so a Twilio outage delays replies and loses none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_test_support::TestBus;
use switchboard_twilio_emulator::Fault;

use crate::harness::{Harness, text};

#[tokio::test]
async fn a_thirty_second_twilio_outage_delays_every_reply_and_each_arrives_exactly_once() {
    let mut bus = TestBus::new();
    // A retry budget of production's shape: 1 s, 2 s, then 5 s tiers, 12 attempts (about 50 s).
    bus.config.retry_delays_ms = vec![1_000, 2_000, 5_000];
    bus.config.max_attempts = 12;
    let mut h = Harness::start_on(bus, 1, 0.0, 16).await;
    h.customer_writes(0, "+5511900000007").await;
    let outage = Duration::from_secs(30);
    let started = Instant::now();
    h.emulator.inject(Fault::Outage {
        status: 500,
        code: 20500,
        secs: outage.as_secs(),
    });
    let events: Vec<_> = (0..8)
        .map(|i| h.send_event(0, "+5511900000007", text(&format!("during the outage {i}"))))
        .collect();
    for e in &events {
        h.publish(e).await;
    }
    for e in &events {
        let (key, event) = h.result_within(e.message_id, Duration::from_secs(90)).await;
        assert_eq!(key, "outbound.accepted.v1", "{event}");
    }
    assert!(started.elapsed() >= outage, "nothing was accepted while Twilio was down");
    let mut per_body: HashMap<String, usize> = HashMap::new();
    for m in h.emulator.sent() {
        *per_body.entry(m.body.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(per_body.len(), events.len(), "every reply reached Twilio: {per_body:?}");
    assert!(per_body.values().all(|n| *n == 1), "each exactly once: {per_body:?}");
    let refused = h.emulator.stats().refused;
    assert!(
        refused > 8 * 4,
        "each send met the outage past its quick retries, so it was parked ({refused} refusals)"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_send_that_fails_on_every_attempt_is_reported_failed_not_left_pending() {
    // The test bus: 3 attempts, 50 and 100 ms tiers; the outage outlasts them all.
    let mut h = Harness::start(1, 0.0, 4).await;
    h.customer_writes(0, "+5511900000008").await;
    h.emulator.inject(Fault::Outage {
        status: 503,
        code: 20503,
        secs: 600,
    });
    let event = h.send_event(0, "+5511900000008", text("never gets through"));
    h.publish(&event).await;
    let (key, failed) = h.result_for(event.message_id).await;
    assert_eq!(key, "outbound.failed.v1", "{failed}");
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("gave up after 3 attempts"),
        "the reason names the exhausted retries: {failed}"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM sender.deliveries WHERE message_id = $1")
        .bind(event.message_id)
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    let dlq = h.bus.topology().dead_letter_queue("sender.outbound");
    assert_eq!(h.bus.ready_count(&dlq).await, Some(0), "nothing was dead-lettered");
    assert!(h.emulator.sent().is_empty(), "Twilio never accepted it");
    h.stop().await;
}
