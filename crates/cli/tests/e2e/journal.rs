//! The webhook journal through the running system: a customer's message that no number took is
//! found by the admin, and once the number is fixed, replayed; a second replay adds nothing.

use serde_json::{Value, json};
use switchboard_test_support::wait_for;

use crate::harness::*;

async fn customer_messages(w: &World, conversation: &str) -> Vec<String> {
    let messages = w.admin.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
    messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author_kind"] == "customer")
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_lost_message_is_found_in_the_webhook_journal_and_replayed_once() {
    let w = World::start().await;
    let number = format!("/numbers/{}", w.number_id);
    w.admin
        .call(reqwest::Method::PATCH, &number, Some(&json!({ "active": false })))
        .await
        .unwrap();
    let sent = w.customer_writes("+5511955556666", json!({ "body": "is anyone there?" })).await;
    wait_for(WAIT, "the message listed as unroutable", || async {
        let list = w.admin.get("/unroutable-messages").await.ok()?;
        list.as_array()?.first().cloned()
    })
    .await;

    // The admin finds it by the customer's number.
    let found = wait_for(WAIT, "the webhook in the journal", || async {
        let list = w.admin.get("/webhooks?customer=%2B5511955556666&kind=inbound").await.ok()?;
        list.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(found["message_sid"], sent["message_sid"]);
    assert_eq!((found["answer"].as_u64(), found["outcome"].as_str()), (Some(200), Some("accepted")));
    assert!(found["headers"]["x-twilio-signature"].is_string());
    let id = found["id"].as_str().unwrap().to_owned();
    let shown = w.admin.get(&format!("/webhooks/{id}")).await.unwrap();
    assert!(
        shown["params"].as_array().unwrap().contains(&json!(["Body", "is anyone there?"])),
        "{shown}"
    );

    // The number is fixed; the replay routes it as if it had just arrived.
    w.admin
        .call(reqwest::Method::PATCH, &number, Some(&json!({ "active": true })))
        .await
        .unwrap();
    let replayed = w.admin.post(&format!("/webhooks/{id}/replay"), &json!({})).await.unwrap();
    assert_eq!(replayed["replays"], 1);
    let conversation = wait_for(WAIT, "the replayed message in a conversation", || async {
        let list = w.admin.get("/conversations").await.ok()?;
        list["items"].as_array()?.first()?["id"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(customer_messages(&w, &conversation).await, ["is anyone there?"]);

    // Replayed again: session already has it. The customer's next message on the same ordered
    // shard shows the replay was handled before it.
    let again = w.admin.post(&format!("/webhooks/{id}/replay"), &json!({})).await.unwrap();
    assert_eq!(again["replays"], 2);
    w.customer_writes("+5511955556666", json!({ "body": "hello?" })).await;
    let bodies = wait_for(WAIT, "the next message", || async {
        let bodies = customer_messages(&w, &conversation).await;
        bodies.contains(&"hello?".to_owned()).then_some(bodies)
    })
    .await;
    assert_eq!(bodies, ["is anyone there?", "hello?"], "the second replay added nothing");

    // Admins only; bad ids and filters are refused clearly.
    let api = format!("{}/api/v1", w.stack.urls.api);
    let (status, _) = raw(reqwest::Method::GET, format!("{api}/webhooks"), Some(&w.ana.key), None).await;
    assert_eq!(status, 403);
    let (status, body): (u16, Value) = raw(
        reqwest::Method::GET,
        format!("{api}/webhooks?since=yesterday"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = raw(
        reqwest::Method::POST,
        format!("{api}/webhooks/not-a-uuid/replay"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = raw(
        reqwest::Method::POST,
        format!("{api}/webhooks/{}/replay", uuid::Uuid::now_v7()),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, 404);
    w.stop().await;
}
