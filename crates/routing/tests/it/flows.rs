use serde_json::json;
use switchboard_bus::events::{OfferClosedV1, OfferExpiredV1};
use switchboard_domain::routing::offer::OfferState;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::{wait_for, wait_until};

use crate::harness::*;

#[tokio::test]
async fn an_offer_accepted_makes_the_conversation_active_and_uses_capacity_until_waiting_then_affinity_brings_it_back() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 2 })).await;
    let queue = h.put("queue", "General", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h.put("workstream", "WhatsApp", workstream(&queue, json!({}))).await;
    h.feed(&ws).await;
    let conversation = h.customer_writes("+5511900000001", "hello").await;
    let offer = h.offer_for(&ana, &conversation).await;
    assert_eq!(h.agent(&ana).await.used_units, 1, "capacity is reserved while offered");
    let item = h
        .routing()
        .accept_offer(rpb::OfferAction {
            offer_id: offer.id.clone(),
            agent_id: ana.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.state, "assigned");
    let c = h.conversation(&conversation).await;
    assert_eq!(
        (c.status.as_str(), c.agent_id.as_str(), c.queue_id.as_str()),
        ("active", ana.as_str(), queue.as_str())
    );
    let status = h.agent(&ana).await;
    assert_eq!(
        (status.used_units, status.presence.as_str()),
        (1, "busy"),
        "partly used capacity shows Busy"
    );
    // Accepting again is refused.
    let again = h
        .routing()
        .accept_offer(rpb::OfferAction {
            offer_id: offer.id,
            agent_id: ana.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);

    // Close without End: Waiting releases capacity at once.
    h.session
        .clone()
        .transition_conversation(switchboard_proto::session::v1::TransitionRequest {
            conversation_id: conversation.clone(),
            transition: "close_session".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_until(WAIT, "capacity released", || async { h.agent(&ana).await.used_units == 0 }).await;
    assert_eq!(h.agent(&ana).await.presence, "available");
    // The customer writes again: reopened, and offered to Ana again (affinity).
    h.customer_writes("+5511900000001", "one more thing").await;
    let back = h.offer_for(&ana, &conversation).await;
    assert_eq!(back.conversation_id, conversation);
    h.stop().await;
}

#[tokio::test]
async fn a_declined_or_expired_offer_moves_to_the_next_agent_and_max_declines_exclude() {
    let h = Harness::start(1).await;
    let a = h.put("agent", "A", json!({ "capacity_units": 5 })).await;
    let b = h.put("agent", "B", json!({ "capacity_units": 1 })).await;
    let queue = h.put("queue", "Q", json!({ "priority": 1, "members": [a, b] })).await;
    let ws = h.put("workstream", "W", workstream(&queue, json!({ "max_declines": 1 }))).await;
    h.feed(&ws).await;
    let mut tap = h.bus.tap(&["offer.#"]).await;
    let conversation = h.customer_writes("+5511900000002", "hi").await;
    // Highest capacity: A (5 free) before B (1 free).
    let first = h.offer_for(&a, &conversation).await;
    h.routing()
        .decline_offer(rpb::OfferAction {
            offer_id: first.id.clone(),
            agent_id: a.clone(),
        })
        .await
        .unwrap();
    let second = h.offer_for(&b, &conversation).await;
    assert_eq!(h.agent(&a).await.used_units, 0, "a declined offer frees its capacity");
    // B lets it time out (30 s): it counts as a decline; both agents are now at the limit.
    h.clock.advance(time::Duration::seconds(31));
    wait_until(WAIT, "expired", || async { h.offers(&b).await.iter().all(|o| o.id != second.id) }).await;
    tap.expect::<OfferClosedV1>(WAIT, "offer.closed.v1 (declined)", |e| {
        e.offer_id.to_string() == first.id && e.state == OfferState::Declined
    })
    .await;
    tap.expect::<OfferExpiredV1>(WAIT, "offer.expired.v1", |e| {
        e.offer_id.to_string() == second.id && e.agent_id.to_string() == b
    })
    .await;
    let item = wait_for(WAIT, "re-queued", || async {
        h.item(&conversation).await.filter(|i| i.state == "queued")
    })
    .await;
    assert_eq!(item.total_declines, 2);
    assert!(
        h.offers(&a).await.is_empty() && h.offers(&b).await.is_empty(),
        "nobody is offered it again after max_declines"
    );
    // A supervisor can still assign it, beyond the agent's capacity.
    let assigned = h
        .routing()
        .assign_by_supervisor(rpb::ConversationAgent {
            conversation_id: conversation.clone(),
            agent_id: b.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.state, "assigned");
    assert_eq!(h.conversation(&conversation).await.status_reason, "assigned_by_supervisor");
    h.stop().await;
}

#[tokio::test]
async fn classification_skills_route_to_the_skilled_agent() {
    let h = Harness::start(1).await;
    let billing = h.put("skill", "billing", json!({})).await;
    let generalist = h.put("agent", "Generalist", json!({ "capacity_units": 9 })).await;
    let expert = h
        .put("agent", "Expert", json!({ "capacity_units": 1, "skills": { billing.clone(): 8 } }))
        .await;
    let queue = h
        .put("queue", "All", json!({ "priority": 1, "members": [generalist, expert] }))
        .await;
    let rules = json!({ "classification": [{ "name": "intent", "rules": [{
        "name": "billing",
        "conditions": [{ "attribute": "first_message", "op": "contains", "value": "invoice" }],
        "outputs": { "skills": [{ "skill_id": billing, "min_rating": 5 }], "priority": 1 }
    }]}]});
    let ws = h.put("workstream", "W", workstream(&queue, rules)).await;
    h.feed(&ws).await;
    let about_money = h.customer_writes("+5511900000003", "My INVOICE is wrong").await;
    let offer = h.offer_for(&expert, &about_money).await;
    assert_eq!(offer.queue_id, queue);
    let other = h.customer_writes("+5511900000004", "where is my order").await;
    h.offer_for(&generalist, &other).await;
    h.stop().await;
}

#[tokio::test]
async fn overflow_ends_or_transfers_and_closed_hours_send_their_message() {
    let h = Harness::start(1).await;
    let agent = h.put("agent", "A", json!({ "capacity_units": 0 })).await;
    let spare = h.put("queue", "Spare", json!({ "priority": 2, "members": [agent] })).await;
    let hours = h
        .put(
            "operating_hours",
            "Closed today",
            json!({
                "time_zone": "UTC", "weekly": [],
                "holidays": [{ "from": "2000-01-01", "to": "2100-12-31", "reason": "closed for the test" }]
            }),
        )
        .await;
    let limited = h
        .put(
            "queue",
            "Limited",
            json!({
                "priority": 1, "members": [agent],
                "overflow": { "work_item_limit": { "limit": 1, "action": { "kind": "end_conversation" } } }
            }),
        )
        .await;
    let closed = h
        .put(
            "queue",
            "After hours",
            json!({
                "priority": 1, "members": [agent], "operating_hours_id": hours,
                "overflow": { "out_of_hours": { "kind": "transfer_to_queue", "queue_id": spare } }
            }),
        )
        .await;
    let route = json!({ "route_to_queue": [
        { "name": "vip", "conditions": [{ "attribute": "first_message", "op": "starts_with", "value": "vip" }], "targets": [{ "queue_id": limited, "percent": 100 }] },
        { "name": "rest", "targets": [{ "queue_id": closed, "percent": 100 }] }
    ]});
    let ws = h.put("workstream", "W", workstream(&spare, route)).await;
    h.feed(&ws).await;

    // The first VIP fills "Limited" (no agent has capacity); the second overflows and is ended.
    let first = h.customer_writes("+5511900000005", "vip one").await;
    wait_until(WAIT, "queued", || async {
        h.item(&first).await.is_some_and(|i| i.queue_id == limited)
    })
    .await;
    let second = h.customer_writes("+5511900000006", "vip two").await;
    let ended = wait_for(WAIT, "overflow end", || async {
        Some(h.conversation(&second).await).filter(|c| c.status == "closed")
    })
    .await;
    assert_eq!(ended.status_reason, "closed_due_to_overflow");
    assert!(
        h.automated(&second).await.contains(&"overflow_end".to_owned()),
        "the overflow message was asked for"
    );

    // Outside operating hours (a holiday): moved to the spare queue, with the holiday message.
    let late = h.customer_writes("+5511900000007", "hello?").await;
    wait_until(WAIT, "transferred", || async {
        h.item(&late).await.is_some_and(|i| i.queue_id == spare)
    })
    .await;
    wait_until(WAIT, "holiday message", || async {
        h.automated(&late).await.contains(&"holiday".to_owned())
    })
    .await;
    let stats = h
        .routing()
        .queue_stats(switchboard_proto::common::v1::Empty {})
        .await
        .unwrap()
        .into_inner()
        .queues;
    assert!(!stats.iter().find(|q| q.queue_id == closed).unwrap().open);
    h.stop().await;
}

#[tokio::test]
async fn pick_workstreams_let_members_take_items_and_configuration_is_validated() {
    let h = Harness::start(1).await;
    let member = h.put("agent", "Member", json!({})).await;
    let outsider = h.put("agent", "Outsider", json!({})).await;
    let queue = h.put("queue", "Pickers", json!({ "priority": 1, "members": [member] })).await;
    let ws = h
        .put(
            "workstream",
            "Pick",
            json!({ "mode": "pick", "agent_affinity": false, "fallback_queue_id": queue }),
        )
        .await;
    h.feed(&ws).await;
    let conversation = h.customer_writes("+5511900000008", "anyone?").await;
    let listed = wait_for(WAIT, "pickable", || async {
        let items = h
            .routing()
            .list_pickable(rpb::AgentRef { agent_id: member.clone() })
            .await
            .unwrap()
            .into_inner()
            .items;
        items.into_iter().find(|i| i.conversation_id == conversation)
    })
    .await;
    assert_eq!(listed.state, "queued");
    assert!(h.offers(&member).await.is_empty(), "pick workstreams make no offers");
    let denied = h
        .routing()
        .pick(rpb::ConversationAgent {
            conversation_id: conversation.clone(),
            agent_id: outsider,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    h.routing()
        .pick(rpb::ConversationAgent {
            conversation_id: conversation.clone(),
            agent_id: member.clone(),
        })
        .await
        .unwrap();
    assert_eq!(h.conversation(&conversation).await.agent_id, member);

    let mut routing = h.routing();
    let bad_mode = routing
        .put_config(rpb::PutConfigRequest {
            kind: "workstream".into(),
            id: ws.clone(),
            name: "Pick".into(),
            definition_json: json!({ "mode": "push", "fallback_queue_id": queue }).to_string(),
        })
        .await
        .unwrap_err();
    assert!(bad_mode.message().contains("cannot change"), "{bad_mode:?}");
    let missing_queue = routing
        .put_config(rpb::PutConfigRequest {
            kind: "workstream".into(),
            id: String::new(),
            name: "X".into(),
            definition_json: json!({ "mode": "push", "fallback_queue_id": uuid::Uuid::now_v7() }).to_string(),
        })
        .await
        .unwrap_err();
    assert!(missing_queue.message().contains("no queue"), "{missing_queue:?}");
    let in_use = routing
        .delete_config(rpb::ConfigRef {
            kind: "queue".into(),
            id: queue.clone(),
        })
        .await
        .unwrap_err();
    assert!(in_use.message().contains("still used by workstream"), "{in_use:?}");
    h.stop().await;
}
