//! Capacity profiles as Dynamics has them (#18 item 3): an end-of-day profile's use is given
//! back when the day changes, not when the work ends; a profile without assignment blocking
//! never stops assignment.

use serde_json::json;
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
