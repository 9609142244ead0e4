use serde_json::json;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::wait_until;

use crate::harness::*;

#[tokio::test]
async fn two_routing_replicas_under_concurrent_load_never_double_offer_or_overfill() {
    let h = Harness::start(2).await;
    let mut agents = Vec::new();
    for i in 0..8 {
        agents.push(h.put("agent", &format!("agent {i}"), json!({ "capacity_units": 2 })).await);
    }
    let queue = h.put("queue", "Busy", json!({ "priority": 1, "members": agents })).await;
    let ws = h
        .put("workstream", "W", workstream(&queue, json!({ "agent_affinity": false })))
        .await;
    h.feed(&ws).await;
    let conversations: Vec<String> = futures_util::future::join_all((0..30).map(|i| {
        let h = &h;
        async move { h.customer_writes(&format!("+55119100{i:05}"), "help").await }
    }))
    .await;
    // 8 agents × 2 units = 16 offers at most; the other 14 wait.
    wait_until(WAIT, "capacity filled", || async { h.pending_offers().await == 16 }).await;
    // Both replicas react to every presence change: flip everyone away and back to stir cycles.
    for (i, agent) in agents.iter().enumerate() {
        let mut routing = h.routing[i % 2].clone();
        routing
            .set_presence(rpb::SetPresenceRequest {
                agent_id: agent.clone(),
                presence: "busy".into(),
            })
            .await
            .unwrap();
    }
    // Accept half the offers through one replica and decline the rest through the other.
    let pending: Vec<(String, String)> = sqlx::query_as("SELECT id::text, agent_id::text FROM routing.offers WHERE state = 'pending'")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    for (n, (offer, agent)) in pending.iter().enumerate() {
        let mut routing = h.routing[n % 2].clone();
        let action = rpb::OfferAction {
            offer_id: offer.clone(),
            agent_id: agent.clone(),
        };
        if n % 2 == 0 {
            routing.accept_offer(action).await.unwrap();
        } else {
            routing.decline_offer(action).await.unwrap();
        }
    }
    wait_until(WAIT, "refilled", || async { h.pending_offers().await == 8 }).await;

    h.assert_no_double_offer_or_overfill(&agents, 2).await;
    let accepted: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.work_items WHERE state = 'assigned'")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(accepted, 8);
    assert_eq!(conversations.len(), 30);
    h.stop().await;
}
