//! A send is never made twice: copies of one send are fenced by a lease, and a send whose
//! outcome was lost (the answer broke off, or the sender died before recording it) is looked up
//! in Twilio's Messages list before anything is sent again.

use std::time::Duration;

use switchboard_domain::ids::MessageId;
use switchboard_twilio_emulator::Fault;

use crate::harness::{ACCOUNT, Harness, TOKEN, text};

async fn recorded(h: &Harness, message_id: MessageId) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, twilio_sid FROM sender.deliveries WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
}

fn copies(h: &Harness, body: &str) -> Vec<String> {
    h.emulator
        .sent()
        .into_iter()
        .filter(|m| m.body.as_deref() == Some(body))
        .map(|m| m.sid)
        .collect()
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_found_in_twilios_list_and_not_sent_again() {
    let mut h = Harness::start(1, 0.0, 4).await;
    h.customer_writes(0, "+5511900000011").await;
    h.emulator.inject(Fault::LoseResponse { count: 1 });
    let event = h.send_event(0, "+5511900000011", text("accepted, answer lost"));
    h.publish(&event).await;
    let (key, accepted) = h.result_for(event.message_id).await;
    assert_eq!(key, "outbound.accepted.v1", "{accepted}");
    let sent = copies(&h, "accepted, answer lost");
    assert_eq!(sent.len(), 1, "Twilio got it once");
    assert_eq!(accepted["twilio_sid"], sent[0].as_str(), "the SID found in the list is recorded");
    assert_eq!(recorded(&h, event.message_id).await, ("accepted".into(), Some(sent[0].clone())));
    h.stop().await;
}

#[tokio::test]
async fn a_send_left_unknown_by_a_crash_is_reconciled_before_any_resend() {
    let mut h = Harness::start(1, 0.0, 4).await;
    h.customer_writes(0, "+5511900000012").await;
    let event = h.send_event(0, "+5511900000012", text("sent before the crash"));
    // A sender called Twilio, which accepted, and died before recording the SID: the claim says
    // `unknown`, its lease ran out, and Twilio has the message.
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", h.emulator.api_base()))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[
            ("To", event.to.as_str()),
            ("From", event.from.as_str()),
            ("Body", "sent before the crash"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO sender.deliveries (message_id, channel_id, number_id, status, attempts, lease_until) \
         VALUES ($1::uuid, $2::uuid, $3::uuid, 'unknown', 1, now() - interval '1 second')",
    )
    .bind(event.message_id)
    .bind(h.channel_id)
    .bind(h.numbers[0].0)
    .execute(&h.db.pool)
    .await
    .unwrap();
    // The broker redelivers the send.
    h.publish(&event).await;
    let (key, accepted) = h.result_for(event.message_id).await;
    assert_eq!(key, "outbound.accepted.v1", "{accepted}");
    assert_eq!(accepted["twilio_sid"], created["sid"]);
    assert_eq!(copies(&h, "sent before the crash").len(), 1, "not sent again");

    // An `unknown` send that Twilio does not have is sent after the look-up.
    let never = h.send_event(0, "+5511900000012", text("died before the call"));
    sqlx::query(
        "INSERT INTO sender.deliveries (message_id, channel_id, number_id, status, attempts, lease_until) \
         VALUES ($1::uuid, $2::uuid, $3::uuid, 'unknown', 1, NULL)",
    )
    .bind(never.message_id)
    .bind(h.channel_id)
    .bind(h.numbers[0].0)
    .execute(&h.db.pool)
    .await
    .unwrap();
    h.publish(&never).await;
    assert_eq!(h.result_for(never.message_id).await.0, "outbound.accepted.v1");
    assert_eq!(copies(&h, "died before the call").len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn two_copies_of_one_send_in_flight_at_once_reach_twilio_once() {
    let mut h = Harness::start(1, 0.0, 16).await;
    h.customer_writes(0, "+5511900000013").await;
    // The first call is slow, so the second copy arrives while the first holds the lease.
    h.emulator.inject(Fault::Slow { ms: 1_500, count: 1 });
    let event = h.send_event(0, "+5511900000013", text("one of two copies"));
    h.publish(&event).await;
    h.publish(&event).await;
    assert_eq!(h.result_for(event.message_id).await.0, "outbound.accepted.v1");
    // Both copies are settled once the row is accepted and no copy is left in the queue.
    let queue = h.bus.topology().queue("sender.outbound");
    switchboard_test_support::wait_until(Duration::from_secs(20), "both copies settled", || async {
        h.bus.queue_counts(&queue).await.is_some_and(|(ready, _)| ready == 0) && recorded(&h, event.message_id).await.0 == "accepted"
    })
    .await;
    let marker = h.send_event(0, "+5511900000013", text("marker"));
    h.publish(&marker).await;
    assert_eq!(h.result_for(marker.message_id).await.0, "outbound.accepted.v1");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM sender.deliveries WHERE message_id = $1")
        .bind(event.message_id)
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "the second copy waited for the lease and never claimed the send");
    assert_eq!(copies(&h, "one of two copies").len(), 1, "the second copy did not call Twilio");
    h.stop().await;
}
