//! Agent disconnects (#18 item 5), through the API's streams as the desk uses them: when an
//! agent's last stream drops they show Offline at once and their pending offer goes to someone
//! else; back within 2.5 minutes they get their presence back and keep their conversations; away
//! for longer, their conversations return to the queue and each customer is told.

use serde_json::{Value, json};
use switchboard_test_support::wait_for;

use crate::harness::*;

/// Waits until the agent `id` shows `presence`; returns their status.
async fn until_presence(w: &World, id: &str, presence: &str) -> Value {
    wait_for(WAIT, &format!("{id} shows {presence}"), || async {
        let agents: Value = w.admin.get("/stats/agents").await.unwrap();
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent_id"] == id && a["presence"] == presence)
            .cloned()
    })
    .await
}

async fn conversation(w: &World, id: &str) -> Value {
    w.admin.get(&format!("/conversations/{id}")).await.unwrap()
}

#[tokio::test]
async fn a_disconnected_agent_goes_offline_loses_their_offers_and_after_the_restore_window_their_conversations() {
    let w = World::start().await;
    let presence = |p: &str| json!({ "presence": p });
    // Bo is away, so Ana gets the work first.
    w.bo.api.put("/me/presence", &presence("away")).await.unwrap();
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let kept = w.taken_by(&w.ana, &mut ana, "+5511933330001").await;
    w.customer_writes("+5511933330002", json!({ "body": "anyone there?" })).await;
    let offered = ana
        .expect("offer.created.v1", |d| {
            d["agent_id"] == w.ana.id.as_str() && d["conversation_id"] != kept.as_str()
        })
        .await;
    let second = offered["data"]["conversation_id"].as_str().unwrap().to_owned();

    // Her tab closes: Offline at once, and the pending offer is withdrawn (not counted as a
    // decline), so Bo, back at his desk, is offered it.
    ana.close().await;
    until_presence(&w, &w.ana.id, "offline").await;
    let mut bo = Stream::open(&w.stack.urls.api, &w.bo.key, None).await;
    w.bo.api.put("/me/presence", &presence("available")).await.unwrap();
    let to_bo = bo
        .expect("offer.created.v1", |d| {
            d["conversation_id"] == second.as_str() && d["agent_id"] == w.bo.id.as_str()
        })
        .await;
    let (state, declines): (String, i32) = sqlx::query_as(
        "SELECT o.state, i.total_declines FROM routing.offers o JOIN routing.work_items i USING (conversation_id) WHERE o.id = $1::uuid",
    )
    .bind(offered["data"]["offer_id"].as_str().unwrap())
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), declines), ("cancelled", 0), "withdrawn, not declined");
    accept(&w.bo, &to_bo).await;
    // Bo (capacity 1) finishes it, so he is free for what comes next.
    w.bo.api.post(&format!("/conversations/{second}/end"), &json!({})).await.unwrap();
    w.bo.api.post(&format!("/conversations/{second}/close"), &json!({})).await.unwrap();

    // Back within the window: her presence returns (Busy: one of her five units is in use) and
    // she still has her conversation.
    w.clock.advance(time::Duration::seconds(60));
    let ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let status = until_presence(&w, &w.ana.id, "busy").await;
    assert_eq!(status["chosen_presence"], "available", "{status}");
    let c = conversation(&w, &kept).await;
    assert_eq!(
        (c["status"].as_str(), c["agent_id"].as_str()),
        (Some("active"), Some(w.ana.id.as_str())),
        "{c}"
    );

    // Away past the window: the conversation goes back to the queue (Bo is offered it) and the
    // customer is told she was disconnected.
    ana.close().await;
    until_presence(&w, &w.ana.id, "offline").await;
    w.clock.advance(time::Duration::seconds(151));
    bo.expect("offer.created.v1", |d| {
        d["conversation_id"] == kept.as_str() && d["agent_id"] == w.bo.id.as_str()
    })
    .await;
    w.customer_gets("+5511933330001", "Ana was disconnected.").await;
    let c = conversation(&w, &kept).await;
    assert_eq!(c["status"], "open", "{c}");

    // Coming back now, her presence is recalculated from her default (Available: she holds
    // nothing any more).
    let _ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    until_presence(&w, &w.ana.id, "available").await;
    w.stop().await;
}
