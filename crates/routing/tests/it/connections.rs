//! Agent disconnects when an API replica dies (#18 item 5): its streams are no longer confirmed,
//! so routing drops them after their time to live and the agent shows Offline, with their
//! pending offer taken back and offered again.

use serde_json::json;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::wait_until;

use crate::harness::*;

fn connection(agent: &str, id: uuid::Uuid) -> rpb::AgentConnection {
    rpb::AgentConnection {
        agent_id: agent.to_owned(),
        connection_id: id.to_string(),
    }
}

#[tokio::test]
async fn streams_no_replica_confirms_expire_and_the_agent_goes_offline_with_their_offer_withdrawn() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 2 })).await;
    let queue = h.put("queue", "Support", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h.put("workstream", "Support", workstream(&queue, json!({}))).await;
    h.feed(&ws).await;
    let stream = uuid::Uuid::now_v7();
    h.routing()
        .agent_connections(rpb::AgentConnectionsRequest {
            alive: vec![connection(&ana, stream)],
            closed: vec![],
        })
        .await
        .unwrap();
    let waiting = h.customer_writes("+5511900000201", "hello").await;
    let offer = h.offer_for(&ana, &waiting).await;

    // The replica holding the stream dies: nobody confirms it for longer than its time to live.
    sqlx::query("UPDATE routing.agent_connections SET seen_at = now() - interval '91 seconds' WHERE connection_id = $1")
        .bind(stream)
        .execute(&h.db.pool)
        .await
        .unwrap();
    wait_until(WAIT, "Ana offline", || async { h.agent(&ana).await.presence == "offline" }).await;
    wait_until(WAIT, "the offer withdrawn and the item queued again", || async {
        h.item(&waiting).await.is_some_and(|i| i.state == "queued" && i.total_declines == 0)
    })
    .await;
    let state: String = sqlx::query_scalar("SELECT state FROM routing.offers WHERE id = $1::uuid")
        .bind(&offer.id)
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(state, "cancelled");

    // A stream that opens again (within the restore window) brings her back, and the item to her.
    h.routing()
        .agent_connections(rpb::AgentConnectionsRequest {
            alive: vec![connection(&ana, uuid::Uuid::now_v7())],
            closed: vec![],
        })
        .await
        .unwrap();
    assert_eq!(h.agent(&ana).await.chosen_presence, "available");
    h.offer_for(&ana, &waiting).await;
    h.stop().await;
}
