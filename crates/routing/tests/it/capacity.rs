//! Capacity profiles as Dynamics has them (#18 item 3): an end-of-day profile's use is given
//! back when the day changes, not when the work ends; a profile without assignment blocking
//! never stops assignment.

use serde_json::json;
use switchboard_proto::routing::v1 as rpb;
use switchboard_test_support::wait_until;

use crate::harness::*;

#[tokio::test]
async fn an_end_of_day_profile_holds_its_use_until_the_day_changes_and_a_non_blocking_one_never_stops_assignment() {
    let h = Harness::start(1).await;
    let daily = h
        .put("capacity_profile", "Escalations", json!({ "max_items": 1, "reset": "daily" }))
        .await;
    let ana = h
        .put(
            "agent",
            "Ana",
            json!({ "capacity_units": 5, "capacity_profiles": { daily.clone(): null } }),
        )
        .await;
    let queue = h.put("queue", "Escalations", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h
        .put(
            "workstream",
            "Escalations",
            workstream(&queue, json!({ "capacity_profile_id": daily })),
        )
        .await;
    h.feed(&ws).await;

    // The first item uses the day's one escalation; ending it does not give it back.
    let first = h.customer_writes("+5511900000101", "escalate please").await;
    let offer = h.offer_for(&ana, &first).await;
    h.accept(&offer, &ana).await;
    h.close_session(&first).await;
    wait_until(WAIT, "the units released", || async { h.agent(&ana).await.used_units == 0 }).await;
    let second = h.customer_writes("+5511900000102", "me too").await;
    // A later item of the same queue that needs no profile: once Ana is offered it, a cycle has
    // looked at the older escalation first and passed it over.
    let plain = h.put("workstream", "Plain", workstream(&queue, json!({}))).await;
    h.feed(&plain).await;
    let third = h.customer_writes("+5511900000103", "just a question").await;
    h.offer_for(&ana, &third).await;
    assert!(
        h.offers(&ana).await.iter().all(|o| o.conversation_id != second),
        "the day's escalation is used"
    );
    assert_eq!(h.item(&second).await.unwrap().state, "queued");

    // The next day it is given back, and the waiting item is offered.
    h.clock.advance(time::Duration::days(1));
    h.offer_for(&ana, &second).await;

    // A profile without assignment blocking, already full, does not stop assignment.
    let soft = h
        .put("capacity_profile", "Soft", json!({ "max_items": 0, "blocking": false }))
        .await;
    let bo = h
        .put(
            "agent",
            "Bo",
            json!({ "capacity_units": 5, "capacity_profiles": { soft.clone(): null } }),
        )
        .await;
    let general = h.put("queue", "General", json!({ "priority": 1, "members": [bo] })).await;
    let ws2 = h
        .put(
            "workstream",
            "General",
            workstream(&general, json!({ "capacity_profile_id": soft })),
        )
        .await;
    h.feed(&ws2).await;
    let fourth = h.customer_writes("+5511900000104", "hello").await;
    h.offer_for(&bo, &fourth).await;
    h.stop().await;
}

#[tokio::test]
async fn the_end_of_a_timed_wrap_up_block_resets_a_busy_presence_chosen_for_it() {
    let h = Harness::start(1).await;
    let ana = h.put("agent", "Ana", json!({ "capacity_units": 2 })).await;
    let queue = h.put("queue", "Support", json!({ "priority": 1, "members": [ana] })).await;
    let ws = h
        .put(
            "workstream",
            "Support",
            workstream(&queue, json!({ "wrap_up": { "kind": "minutes", "minutes": 1 } })),
        )
        .await;
    h.feed(&ws).await;
    let conversation = h.customer_writes("+5511900000301", "hello").await;
    let offer = h.offer_for(&ana, &conversation).await;
    h.accept(&offer, &ana).await;
    h.transition(&conversation, "end").await;
    wait_until(WAIT, "the item in wrap-up", || async {
        h.item(&conversation).await.is_some_and(|i| i.state == "wrap_up")
    })
    .await;
    // Ana asks not to be disturbed while she writes up.
    h.routing()
        .set_presence(rpb::SetPresenceRequest {
            agent_id: ana.clone(),
            presence: "busy_dnd".into(),
            presence_code: rpb::Presence::BusyDnd as i32,
        })
        .await
        .unwrap();

    // The block ends: capacity is given back and her presence follows it again.
    h.clock.advance(time::Duration::seconds(61));
    wait_until(WAIT, "Ana available again", || async {
        let a = h.agent(&ana).await;
        a.used_units == 0 && a.presence == "available" && a.chosen_presence == "available"
    })
    .await;
    h.stop().await;
}
