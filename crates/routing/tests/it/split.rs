//! Routing's write lost after session committed a transition it asked for (the process killed
//! between the two commits): session's status event repairs routing, and the two agree.
//!
//! The loss is injected with a one-shot trigger that aborts routing's transaction at its first
//! write after the session call, exactly where a kill would leave it: session moved, routing not.

use serde_json::json;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::wait_until;

use crate::harness::*;

/// Makes routing's next UPDATE of `table` whose new row matches `when` fail, once. A sequence
/// counts the firings because it is not rolled back with the aborted transaction.
async fn lose_next_write(h: &Harness, table: &str, when: &str) -> sqlx::PgPool {
    let pool = sqlx::PgPool::connect(&h.db.url).await.unwrap();
    let name = table.replace('.', "_");
    for statement in [
        format!("CREATE SEQUENCE {name}_lost"),
        format!(
            "CREATE FUNCTION {name}_lose() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF nextval('{name}_lost') = 1 THEN RAISE EXCEPTION 'routing killed between the two commits'; END IF; \
             RETURN NEW; END $$"
        ),
        format!("CREATE TRIGGER {name}_lose BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}_lose()"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
    }
    pool
}

async fn fired(pool: &sqlx::PgPool, table: &str) -> bool {
    let name = table.replace('.', "_");
    let (last, called): (i64, bool) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT last_value, is_called FROM {name}_lost")))
        .fetch_one(pool)
        .await
        .unwrap();
    called && last >= 1
}

async fn offer_state(pool: &sqlx::PgPool, offer: &str) -> String {
    sqlx::query_scalar("SELECT state FROM routing.offers WHERE id = $1::uuid")
        .bind(offer)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn assigned_to(h: &Harness, conversation: &str, agent: &str) -> bool {
    h.item(conversation)
        .await
        .is_some_and(|i| i.state == "assigned" && i.agent_id == agent)
}

#[tokio::test]
async fn an_accept_whose_routing_write_is_lost_is_adopted_from_session() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 2 })).await;
    let queue = h.put("queue", "General", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h.put("workstream", "WhatsApp", workstream(&queue, json!({}))).await;
    h.feed(&ws).await;
    let conversation = h.customer_writes("+5511900000101", "hello").await;
    let offer = h.offer_for(&ana, &conversation).await;
    let pool = lose_next_write(&h, "routing.offers", "NEW.state = 'accepted'").await;

    let lost = h
        .routing()
        .accept_offer(rpb::OfferAction {
            offer_id: offer.id.clone(),
            agent_id: ana.clone(),
        })
        .await
        .unwrap_err();
    assert!(fired(&pool, "routing.offers").await, "the write was lost: {lost:?}");
    let c = h.conversation(&conversation).await;
    assert_eq!(
        (c.status.as_str(), c.agent_id.as_str()),
        ("active", ana.as_str()),
        "session committed"
    );

    wait_until(WAIT, "routing adopts session's assignment", || assigned_to(&h, &conversation, &ana)).await;
    assert_eq!(
        offer_state(&pool, &offer.id).await,
        "accepted",
        "the offer cannot expire and be made again"
    );
    assert!(h.offers(&ana).await.is_empty());
    assert_eq!(h.agent(&ana).await.used_units, 1, "capacity is counted once");
    pool.close().await;
    h.stop().await;
}

#[tokio::test]
async fn a_pick_whose_routing_write_is_lost_takes_capacity_when_adopted() {
    let h = Harness::start(1).await;
    let member = h.put("agent", "Member", json!({ "capacity_units": 3 })).await;
    let queue = h.put("queue", "Pickers", json!({ "priority": 1, "members": [member] })).await;
    let ws = h
        .put(
            "workstream",
            "Pick",
            json!({ "mode": "pick", "agent_affinity": false, "fallback_queue_id": queue }),
        )
        .await;
    h.feed(&ws).await;
    let conversation = h.customer_writes("+5511900000102", "anyone?").await;
    wait_until(WAIT, "queued", || async {
        h.item(&conversation).await.is_some_and(|i| i.state == "queued")
    })
    .await;
    let pool = lose_next_write(&h, "routing.work_items", "NEW.state = 'assigned'").await;

    let lost = h
        .routing()
        .pick(rpb::ConversationAgent {
            conversation_id: conversation.clone(),
            agent_id: member.clone(),
        })
        .await
        .unwrap_err();
    assert!(fired(&pool, "routing.work_items").await, "the write was lost: {lost:?}");
    assert_eq!(h.conversation(&conversation).await.agent_id, member, "session committed");
    // Routing's capacity change was lost with its write; session's event may already have been
    // adopted by now, so only the end state is asserted: adopted once, capacity taken once.
    wait_until(WAIT, "routing adopts the pick", || assigned_to(&h, &conversation, &member)).await;
    assert_eq!(h.agent(&member).await.used_units, 1);
    pool.close().await;
    h.stop().await;
}

#[tokio::test]
async fn a_transfer_whose_routing_write_is_lost_still_reaches_the_target_queue() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 2 })).await;
    let bo = h.put("agent", "Bo", json!({ "capacity_units": 2 })).await;
    let general = h.put("queue", "General", json!({ "priority": 1, "members": [ana] })).await;
    let billing = h.put("queue", "Billing", json!({ "priority": 1, "members": [bo] })).await;
    let ws = h.put("workstream", "WhatsApp", workstream(&general, json!({}))).await;
    h.feed(&ws).await;
    let conversation = h.customer_writes("+5511900000103", "my invoice").await;
    let offer = h.offer_for(&ana, &conversation).await;
    h.routing()
        .accept_offer(rpb::OfferAction {
            offer_id: offer.id,
            agent_id: ana.clone(),
        })
        .await
        .unwrap();
    let pool = lose_next_write(&h, "routing.work_items", "NEW.state = 'queued'").await;

    let lost = h
        .routing()
        .transfer_to_queue(rpb::TransferToQueueRequest {
            conversation_id: conversation.clone(),
            queue_id: billing.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert!(fired(&pool, "routing.work_items").await, "the write was lost: {lost:?}");
    let c = h.conversation(&conversation).await;
    assert_eq!(
        (c.status.as_str(), c.queue_id.as_str()),
        ("open", billing.as_str()),
        "session committed"
    );

    let moved = h.offer_for(&bo, &conversation).await;
    assert_eq!(moved.conversation_id, conversation);
    assert!(h.offers(&ana).await.is_empty(), "not offered back to the old queue");
    assert_eq!(h.agent(&ana).await.used_units, 0, "Ana's capacity is released");
    pool.close().await;
    h.stop().await;
}
