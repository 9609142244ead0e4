//! Requests never wait on the assignment cycle: with another replica's cycle holding the lock,
//! a decline and a new customer's intake still complete, and their offers follow once it ends.

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
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing.cycle'))")
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
