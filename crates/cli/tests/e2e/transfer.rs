//! Transfers through the API (#18 item 1): to an agent and to a queue from Active, and from
//! Waiting, where routing re-queued the item but session stayed Waiting, so the next agent's
//! accept was refused and the item was left offered.

use serde_json::{Value, json};
use switchboard_test_support::wait_until;

use crate::harness::*;

/// Waits until session has the conversation Waiting (its agent closed the session unended).
async fn until_waiting(w: &World, conversation: &str) {
    wait_until(WAIT, "the conversation waiting", || async {
        w.admin
            .get(&format!("/conversations/{conversation}"))
            .await
            .is_ok_and(|c| c["status"] == "waiting")
    })
    .await;
}

/// Ana takes a new customer's conversation; returns its id.
async fn ana_takes(w: &World, customer: &str) -> String {
    let mut stream = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    w.customer_writes(customer, json!({ "body": "I need help" })).await;
    let offer = stream.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    accept(&w.ana, &offer).await;
    stream.close().await;
    offer["data"]["conversation_id"].as_str().unwrap().to_owned()
}

/// Bo is offered `conversation` and accepts it; the conversation is then Active with Bo.
async fn bo_accepts(w: &World, bo: &mut Stream, conversation: &str) {
    let offer = bo
        .expect("offer.created.v1", |d| {
            d["conversation_id"] == conversation && d["agent_id"] == w.bo.id.as_str()
        })
        .await;
    accept(&w.bo, &offer).await;
    let c: Value = w.bo.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert_eq!(
        (c["status"].as_str(), c["agent_id"].as_str()),
        (Some("active"), Some(w.bo.id.as_str())),
        "{c}"
    );
    let ana_reads = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await;
    assert!(ana_reads.is_err(), "Ana no longer has it");
}

#[tokio::test]
async fn transfers_to_an_agent_or_a_queue_from_active_and_from_waiting_reach_the_next_agent() {
    let w = World::start().await;
    // A queue only Bo serves, so a transfer there cannot come back to Ana.
    let billing = w
        .admin
        .post(
            "/queues",
            &json!({ "name": "Billing", "definition": { "priority": 1, "assignment": "highest_capacity", "members": [w.bo.id] } }),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bo = Stream::open(&w.stack.urls.api, &w.bo.key, None).await;

    // Active → another agent.
    let first = ana_takes(&w, "+5511922220001").await;
    w.ana
        .api
        .post(
            &format!("/conversations/{first}/transfer"),
            &json!({ "agent_id": w.bo.id, "note": "for Bo" }),
        )
        .await
        .unwrap();
    bo_accepts(&w, &mut bo, &first).await;
    w.bo.api.post(&format!("/conversations/{first}/end"), &json!({})).await.unwrap();
    w.bo.api.post(&format!("/conversations/{first}/close"), &json!({})).await.unwrap();

    // Active → a queue.
    let second = ana_takes(&w, "+5511922220002").await;
    w.ana
        .api
        .post(&format!("/conversations/{second}/transfer"), &json!({ "queue_id": billing }))
        .await
        .unwrap();
    bo_accepts(&w, &mut bo, &second).await;
    w.bo.api.post(&format!("/conversations/{second}/end"), &json!({})).await.unwrap();
    w.bo.api.post(&format!("/conversations/{second}/close"), &json!({})).await.unwrap();

    // Waiting (Ana closed the session without ending it) → a queue, by a supervisor.
    let third = ana_takes(&w, "+5511922220003").await;
    w.ana.api.post(&format!("/conversations/{third}/close"), &json!({})).await.unwrap();
    until_waiting(&w, &third).await;
    w.admin
        .post(&format!("/conversations/{third}/transfer"), &json!({ "queue_id": billing }))
        .await
        .unwrap();
    let c = w.admin.get(&format!("/conversations/{third}")).await.unwrap();
    assert_eq!(c["status"], "open", "back in a queue in session too: {c}");
    bo_accepts(&w, &mut bo, &third).await;

    // And Waiting → an agent.
    w.bo.api.post(&format!("/conversations/{third}/close"), &json!({})).await.unwrap();
    until_waiting(&w, &third).await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    w.admin
        .post(&format!("/conversations/{third}/transfer"), &json!({ "agent_id": w.ana.id }))
        .await
        .unwrap();
    let offer = ana
        .expect("offer.created.v1", |d| {
            d["conversation_id"] == third.as_str() && d["agent_id"] == w.ana.id.as_str()
        })
        .await;
    accept(&w.ana, &offer).await;
    let c = w.ana.api.get(&format!("/conversations/{third}")).await.unwrap();
    assert_eq!(
        (c["status"].as_str(), c["agent_id"].as_str()),
        (Some("active"), Some(w.ana.id.as_str())),
        "{c}"
    );
    ana.close().await;
    bo.close().await;
    w.stop().await;
}
