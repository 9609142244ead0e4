//! Read receipts and typing indicators (#21 item 2): the agent's activity reaches Twilio's Typing
//! Indicators API (the emulator's `/v2/Indicators/Typing.json`) as the workstream's policy says,
//! and the agent's typing reaches the stream.

use serde_json::{Value, json};

use crate::harness::*;

/// `customer` writes; the offer reaches Ana and she accepts. Returns the conversation and the
/// customer message's SID.
async fn ana_takes(w: &World, ana: &mut Stream, customer: &str) -> (String, String) {
    let sent = w.customer_writes(customer, json!({ "body": "is my order late?" })).await;
    let offer = ana.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    accept(&w.ana, &offer).await;
    let conversation = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
    (conversation, sent["message_sid"].as_str().unwrap().to_owned())
}

async fn activity(agent: &Agent, conversation: &str, what: &str) -> Value {
    agent
        .api
        .post(&format!("/conversations/{conversation}/{what}"), &json!({}))
        .await
        .unwrap()
}

/// Waits until the emulator has accepted a typing indicator for `sid`, and returns how many it
/// has for it.
async fn indicated(w: &World, sid: &str) -> usize {
    switchboard_test_support::wait_until(WAIT, &format!("a typing indicator for {sid}"), || async {
        w.emulator().indicators().indicators.iter().any(|i| i.message_sid == sid)
    })
    .await;
    w.emulator().indicators().indicators.iter().filter(|i| i.message_sid == sid).count()
}

#[tokio::test]
async fn by_default_the_customer_sees_their_message_read_when_the_agent_types() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let (conversation, first) = ana_takes(&w, &mut ana, "+5511966660001").await;

    // Opening it marks nothing read under the default policy.
    let opened = activity(&w.ana, &conversation, "read").await;
    assert_eq!(
        opened,
        json!({ "indicator_sent": false, "marked_read": false, "read_receipts": "on_typing" })
    );

    // Typing does, through one Twilio call, and the stream shows Ana typing.
    let typing = activity(&w.ana, &conversation, "typing").await;
    assert_eq!(
        typing,
        json!({ "indicator_sent": true, "marked_read": true, "read_receipts": "on_typing" })
    );
    let frame = ana
        .expect("conversation.typing.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    assert_eq!(frame["data"]["agent_id"], w.ana.id.as_str());
    assert_eq!(indicated(&w, &first).await, 1);
    assert_eq!(w.emulator().indicators().read.get(&first), Some(&true));
    let c = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
    let inbound = c.as_array().unwrap().iter().find(|m| m["direction"] == "inbound").unwrap();
    assert!(inbound["read_at"].is_string(), "{inbound}");

    // More keystrokes within 20 s change nothing.
    let again = activity(&w.ana, &conversation, "typing").await;
    assert_eq!(again["indicator_sent"], false, "{again}");

    // The customer writes again; typing later names the new message, which reads both.
    let second = w.customer_writes("+5511966660001", json!({ "body": "hello?" })).await;
    let second = second["message_sid"].as_str().unwrap().to_owned();
    ana.expect("conversation.message.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    assert_eq!(w.emulator().indicators().read.get(&second), Some(&false));
    w.clock.advance(time::Duration::seconds(21));
    let later = activity(&w.ana, &conversation, "typing").await;
    assert_eq!(later["indicator_sent"], true, "{later}");
    assert_eq!(indicated(&w, &second).await, 1);
    assert_eq!(indicated(&w, &first).await, 1, "no second indicator for the first message");

    // Only the agent working it may: Bo is refused and nothing is sent.
    let (status, _) = raw(
        reqwest::Method::POST,
        format!("{}/api/v1/conversations/{conversation}/typing", w.stack.urls.api),
        Some(&w.bo.key),
        Some("{}"),
    )
    .await;
    assert_eq!(status, 403);
    ana.close().await;
    w.stop().await;
}

#[tokio::test]
async fn a_workstream_can_mark_read_on_open_or_never() {
    let w = World::start().await;
    let definition =
        |policy: &str| json!({ "mode": "push", "fallback_queue_id": w.queue_id, "offer_timeout_secs": 120, "read_receipts": policy });
    w.replace_workstream(definition("on_open"), "read_receipts = 'on_open'").await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let (conversation, sid) = ana_takes(&w, &mut ana, "+5511966660002").await;
    let opened = activity(&w.ana, &conversation, "read").await;
    assert_eq!(
        opened,
        json!({ "indicator_sent": true, "marked_read": true, "read_receipts": "on_open" })
    );
    ana.expect("conversation.read.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    assert_eq!(indicated(&w, &sid).await, 1);
    // Opening it again: nothing new to read, nothing sent.
    let reopened = activity(&w.ana, &conversation, "read").await;
    assert_eq!(reopened["indicator_sent"], false, "{reopened}");

    // Never: the customer sees nothing, though the stream still shows Ana typing.
    w.replace_workstream(definition("never"), "read_receipts = 'never'").await;
    let (quiet, quiet_sid) = ana_takes(&w, &mut ana, "+5511966660003").await;
    let typing = activity(&w.ana, &quiet, "typing").await;
    assert_eq!(
        typing,
        json!({ "indicator_sent": false, "marked_read": false, "read_receipts": "never" })
    );
    let frame = ana
        .expect("conversation.typing.v1", |d| d["conversation_id"] == quiet.as_str())
        .await;
    assert!(frame["data"]["indicator_message_sid"].is_null(), "{frame}");
    let opened = activity(&w.ana, &quiet, "read").await;
    assert_eq!(opened["marked_read"], false, "{opened}");
    assert!(
        !w.emulator().indicators().indicators.iter().any(|i| i.message_sid == quiet_sid),
        "no indicator under never"
    );
    ana.close().await;
    w.stop().await;
}
