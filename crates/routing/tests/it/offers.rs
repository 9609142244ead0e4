//! Offer behaviour settings of a workstream (#18 item 6): the decline cool-down, the presence
//! an agent is put in after declining or missing an offer, and auto-accept.

use serde_json::json;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::wait_for;

use crate::harness::*;

/// Waits for the offer of `conversation`, to whichever of `agents` gets it.
async fn offered(h: &Harness, agents: &[&String], conversation: &str) -> rpb::Offer {
    wait_for(WAIT, "an offer", || async {
        for agent in agents {
            if let Some(o) = h.offers(agent).await.into_iter().find(|o| o.conversation_id == conversation) {
                return Some(o);
            }
        }
        None
    })
    .await
}

async fn presence(h: &Harness, agent: &str) -> String {
    h.agent(agent).await.presence
}

#[tokio::test]
async fn declines_cool_down_change_presence_and_auto_accept_takes_the_offer() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 5 })).await;
    let bo = h.put("agent", "Bo", json!({ "capacity_units": 5 })).await;
    let queue = h.put("queue", "General", json!({ "priority": 1, "members": [ana, bo] })).await;
    let settings = json!({
        "decline_cooldown_secs": 600,
        "presence_after_declined": "busy_dnd",
        "presence_after_missed": "away",
        "max_declines": 5,
        "agent_affinity": false,
    });
    let ws = h.put("workstream", "General", workstream(&queue, settings)).await;
    h.feed(&ws).await;

    // The first agent declines: Do not disturb, as configured; the item moves to the other.
    let first = h.customer_writes("+5511900000201", "hello").await;
    let offer = offered(&h, &[&ana, &bo], &first).await;
    let (decliner, other) = if offer.agent_id == ana { (&ana, &bo) } else { (&bo, &ana) };
    h.routing()
        .decline_offer(rpb::OfferAction {
            offer_id: offer.id,
            agent_id: decliner.clone(),
        })
        .await
        .unwrap();
    assert_eq!(presence(&h, decliner).await, "busy_dnd");
    let second_offer = h.offer_for(other, &first).await;

    // The other misses it (the countdown runs out): Away, as configured.
    h.clock.advance(time::Duration::seconds(31));
    wait_for(WAIT, "the missed offer expired", || async {
        (presence(&h, other).await == "away").then_some(())
    })
    .await;
    assert!(h.offers(other).await.iter().all(|o| o.id != second_offer.id));

    // Back to Available, the decliner is still cooling down for this item, though free: a
    // newer item of the same queue is offered to them, and the declined one is passed over.
    h.routing()
        .set_presence(rpb::SetPresenceRequest {
            agent_id: decliner.clone(),
            // Text only, as a sender from before the typed field sends it.
            presence: "available".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let newer = h.customer_writes("+5511900000202", "me too").await;
    let newer_offer = h.offer_for(decliner, &newer).await;
    assert!(h.offers(decliner).await.iter().all(|o| o.conversation_id != first));
    assert_eq!(h.item(&first).await.unwrap().state, "queued");
    // (Accepted, so its countdown does not run out as time passes below.)
    h.accept(&newer_offer, decliner).await;
    // Once the cool-down is over, it is offered to them again.
    h.clock.advance(time::Duration::seconds(600));
    h.offer_for(decliner, &first).await;

    // Auto-accept: the conversation is the agent's without their accepting.
    let cy = h.put("agent", "Cy", json!({ "capacity_units": 5 })).await;
    let fast = h.put("queue", "Fast", json!({ "priority": 1, "members": [cy] })).await;
    let auto = h.put("workstream", "Fast", workstream(&fast, json!({ "auto_accept": true }))).await;
    h.feed(&auto).await;
    let third = h.customer_writes("+5511900000203", "quick one").await;
    // Session commits the accept first, routing's item follows.
    wait_for(WAIT, "the conversation active with Cy, its item assigned", || async {
        let c = h.conversation(&third).await;
        let item = h.item(&third).await?;
        (c.status == "active" && c.agent_id == cy && item.state == "assigned").then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn an_item_kept_for_its_agent_goes_before_older_items() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 1 })).await;
    let queue = h.put("queue", "General", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h.put("workstream", "General", workstream(&queue, json!({}))).await;
    h.feed(&ws).await;
    let kept = h.customer_writes("+5511900000301", "hello").await;
    let offer = h.offer_for(&ana, &kept).await;
    h.accept(&offer, &ana).await;
    h.close_session(&kept).await;
    let presence = |p: &str| rpb::SetPresenceRequest {
        agent_id: ana.clone(),
        presence: p.into(),
        ..Default::default()
    };
    h.routing().set_presence(presence("offline")).await.unwrap();

    // An older item, then the customer Ana had returns (affinity keeps it for her).
    let older = h.customer_writes("+5511900000302", "first in line").await;
    h.customer_writes("+5511900000301", "me again").await;
    for item in [&older, &kept] {
        wait_for(WAIT, "queued", || async { (h.item(item).await?.state == "queued").then_some(()) }).await;
    }
    // Ana comes back with room for one: the kept item is hers, the older one waits.
    h.routing().set_presence(presence("available")).await.unwrap();
    h.offer_for(&ana, &kept).await;
    assert!(h.offers(&ana).await.iter().all(|o| o.conversation_id != older));
    assert_eq!(h.item(&older).await.unwrap().state, "queued");
    h.stop().await;
}
