//! Requests never wait on the assignment cycle: with another replica's cycle holding the lock,
//! a decline and a new customer's intake still complete, and their offers follow once it ends.
//! Cycles of different queue groups run at once on three replicas without offering an item twice
//! or over-filling an agent that several queues share. Round robin keeps its turns per queue.

use std::collections::HashSet;

use serde_json::json;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::wait_until;

use crate::harness::*;

#[tokio::test]
async fn a_decline_and_an_intake_complete_while_a_cycle_holds_the_lock() {
    let h = Harness::start(1).await;
    let a = h.put("agent", "A", json!({ "capacity_units": 5 })).await;
    let b = h.put("agent", "B", json!({ "capacity_units": 1 })).await;
    let queue = h.put("queue", "Q", json!({ "priority": 1, "members": [a, b] })).await;
    let ws = h.put("workstream", "W", workstream(&queue, json!({ "max_declines": 1 }))).await;
    h.feed(&ws).await;
    let first = h.customer_writes("+5511900000301", "hi").await;
    let offer = h.offer_for(&a, &first).await;

    // A cycle of another replica, stuck while holding the lock.
    let mut stuck = h.db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing.cycle'), g) FROM generate_series(0, 15) g")
        .execute(&mut *stuck)
        .await
        .unwrap();
    let declined = tokio::time::timeout(
        WAIT,
        h.routing().decline_offer(rpb::OfferAction {
            offer_id: offer.id.clone(),
            agent_id: a.clone(),
        }),
    )
    .await
    .expect("the decline waited on the cycle lock");
    declined.unwrap();
    let second = h.customer_writes("+5511900000302", "hello").await;
    wait_until(WAIT, "the new conversation queued without waiting", || async {
        h.item(&second).await.is_some_and(|i| i.state == "queued")
    })
    .await;
    assert!(
        h.offers(&b).await.is_empty(),
        "no offer while the lock is held: the cycles wait, the requests did not"
    );

    stuck.commit().await.unwrap();
    let next = h.offer_for(&b, &first).await;
    assert_eq!(next.conversation_id, first, "the declined conversation goes to the next agent");
    h.offer_for(&a, &second).await;
    h.stop().await;
}

#[tokio::test]
async fn three_replicas_cycling_four_queues_that_share_agents_never_double_offer_or_overfill() {
    let h = Harness::start(3).await;
    let mut agents = Vec::new();
    for i in 0..9 {
        agents.push(h.put("agent", &format!("agent {i}"), json!({ "capacity_units": 2 })).await);
    }
    // Each agent is in two of the four queues; the queues fall into different cycle groups.
    let mut queues = Vec::new();
    for q in 0..4 {
        let members: Vec<&String> = agents
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == q || (i + 1) % 4 == q)
            .map(|(_, a)| a)
            .collect();
        queues.push(h.put("queue", &format!("Q{q}"), json!({ "priority": 1, "members": members })).await);
    }
    let groups: HashSet<i32> = queues
        .iter()
        .map(|q| switchboard_routing::cycle::group_of(q.parse().unwrap()))
        .collect();
    assert!(groups.len() > 1, "the queues span several cycle groups");
    let targets: Vec<serde_json::Value> = queues.iter().map(|q| json!({ "queue_id": q, "percent": 25 })).collect();
    let route = json!({ "agent_affinity": false, "route_to_queue": [{ "name": "spread", "targets": targets }] });
    let ws = h.put("workstream", "W", workstream(&queues[0], route)).await;
    h.feed(&ws).await;
    futures_util::future::join_all((0..40).map(|i| {
        let h = &h;
        async move { h.customer_writes(&format!("+55119200{i:05}"), "help").await }
    }))
    .await;
    // Stir cycles on every replica: presence changes and declines through all three.
    h.stir_presence(&agents).await;
    // 9 agents × 2 units = 18 offers at most; the other 22 wait.
    wait_until(WAIT, "capacity filled", || async { h.pending_offers().await == 18 }).await;
    let pending: Vec<(String, String)> = sqlx::query_as("SELECT id::text, agent_id::text FROM routing.offers WHERE state = 'pending'")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    for (n, (offer, agent)) in pending.iter().enumerate() {
        let mut routing = h.routing[n % 3].clone();
        routing
            .decline_offer(rpb::OfferAction {
                offer_id: offer.clone(),
                agent_id: agent.clone(),
            })
            .await
            .unwrap();
    }
    wait_until(WAIT, "refilled after the declines", || async { h.pending_offers().await == 18 }).await;

    h.assert_no_double_offer_or_overfill(&agents, 2).await;
    h.stop().await;
}

/// Waits until `conversation` is offered; returns to whom.
async fn offered_to(h: &Harness, conversation: &str) -> String {
    switchboard_test_support::wait_for(WAIT, "the item offered", || async {
        h.item(conversation).await.filter(|i| i.state == "offered").map(|i| i.agent_id)
    })
    .await
}

#[tokio::test]
async fn round_robin_is_kept_per_queue() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 5 })).await;
    let bo = h.put("agent", "Bo", json!({ "capacity_units": 5 })).await;
    let rr = json!({ "priority": 1, "assignment": "round_robin", "members": [ana, bo] });
    let sales = h.put("queue", "Sales", rr.clone()).await;
    let support = h.put("queue", "Support", rr).await;
    let to_sales = h.put("workstream", "Sales", workstream(&sales, json!({}))).await;
    let to_support = h.put("workstream", "Support", workstream(&support, json!({}))).await;

    // Sales' first item goes to one of them (X); Support's to the other (Y), X having just been
    // assigned.
    h.feed(&to_sales).await;
    let first = h.customer_writes("+5511900000401", "sales one").await;
    let x = offered_to(&h, &first).await;
    h.clock.advance(time::Duration::seconds(1));
    h.feed(&to_support).await;
    let second = h.customer_writes("+5511900000402", "support one").await;
    let y = offered_to(&h, &second).await;
    assert_ne!(x, y);

    // Sales' next item: in Sales it is Y's turn, although Y was assigned more recently than X.
    h.clock.advance(time::Duration::seconds(1));
    h.feed(&to_sales).await;
    let third = h.customer_writes("+5511900000403", "sales two").await;
    assert_eq!(offered_to(&h, &third).await, y, "Sales keeps its own turns");
    h.stop().await;
}

#[tokio::test]
async fn a_cycle_whose_agent_changed_under_it_starts_again_and_does_not_overfill() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 1 })).await;
    let queue = h.put("queue", "Support", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h.put("workstream", "Support", workstream(&queue, json!({}))).await;
    h.feed(&ws).await;

    // Something else (a pick, say) is filling Ana's one unit and has not committed yet.
    let mut other = h.db.pool.begin().await.unwrap();
    sqlx::query("UPDATE routing.agent_state SET used_units = 1, active_items = 1 WHERE agent_id = $1::uuid")
        .bind(&ana)
        .execute(&mut *other)
        .await
        .unwrap();
    // The cycle reads her free, chooses her, and waits to write her load.
    let conversation = h.customer_writes("+5511900000501", "hello").await;
    let waiting_on_lock = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%agent_state%'",
        )
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
    };
    wait_until(WAIT, "the cycle waiting to write Ana's load", || async {
        waiting_on_lock().await == 1
    })
    .await;
    other.commit().await.unwrap();
    wait_until(WAIT, "the cycle done", || async { waiting_on_lock().await == 0 }).await;

    // It saw the change and started again: no offer to a full agent.
    let offers: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.offers WHERE agent_id = $1::uuid")
        .bind(&ana)
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    let agent = h.agent(&ana).await;
    assert_eq!((offers, agent.used_units), (0, 1), "no offer beyond her capacity");
    assert_eq!(h.item(&conversation).await.unwrap().state, "queued");

    // Her unit freed, the scheduler's cycle offers it.
    sqlx::query("UPDATE routing.agent_state SET used_units = 0, active_items = 0 WHERE agent_id = $1::uuid")
        .bind(&ana)
        .execute(&h.db.pool)
        .await
        .unwrap();
    h.offer_for(&ana, &conversation).await;
    h.stop().await;
}
