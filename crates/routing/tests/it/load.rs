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
    // While the two replicas work (presence changes, accepts and declines through both, and
    // the cycles they start), the guarantees are checked over and over, not only at the end.
    let working = std::sync::atomic::AtomicBool::new(true);
    let work = async {
        // Both replicas react to every presence change: flip everyone to busy to stir cycles.
        h.stir_presence(&agents).await;
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
        working.store(false, std::sync::atomic::Ordering::SeqCst);
    };
    let sample = async {
        let mut samples = 0;
        while working.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(broken) = h.guarantees_broken(&agents, 2).await {
                return Err(broken);
            }
            samples += 1;
            tokio::task::yield_now().await;
        }
        Ok(samples)
    };
    let ((), sampled) = tokio::join!(work, sample);
    let samples = sampled.unwrap_or_else(|broken| panic!("while the replicas worked: {broken}"));
    assert!(samples > 0, "the guarantees were sampled while the replicas worked");
    h.assert_no_double_offer_or_overfill(&agents, 2).await;

    // Every conversation is accounted for: 8 accepted, 8 offered to the units the declines
    // freed, the other 14 waiting.
    let states: Vec<(String, i64)> = sqlx::query_as("SELECT state, count(*) FROM routing.work_items GROUP BY state ORDER BY state")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(
        states,
        vec![("assigned".to_owned(), 8), ("offered".to_owned(), 8), ("queued".to_owned(), 14)],
        "{} conversations",
        conversations.len()
    );
    h.stop().await;
}
