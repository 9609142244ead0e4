//! Revive and release-to-queue through the API (#18 item 7): session supported both, nothing
//! exposed them. An agent resumes a Waiting conversation of theirs, holding capacity again; an
//! Active or Waiting one goes back to its queue and is offered again.

use serde_json::{Value, json};
use switchboard_test_support::wait_until;

use crate::harness::*;

async fn status(w: &World, conversation: &str) -> Value {
    w.admin.get(&format!("/conversations/{conversation}")).await.unwrap()
}

async fn used_units(agent: &Agent) -> i64 {
    agent.api.get("/me").await.unwrap()["agent"]["used_units"].as_i64().unwrap()
}

#[tokio::test]
async fn an_agent_revives_a_waiting_conversation_and_releases_it_to_the_queue() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let mut bo = Stream::open(&w.stack.urls.api, &w.bo.key, None).await;
    let conversation = w.taken_by(&w.ana, &mut ana, "+5511944440001").await;

    // Closed without End: Waiting, capacity released.
    w.ana
        .api
        .post(&format!("/conversations/{conversation}/close"), &json!({}))
        .await
        .unwrap();
    wait_until(WAIT, "Ana's capacity released", || async { used_units(&w.ana).await == 0 }).await;
    assert_eq!(status(&w, &conversation).await["status"], "waiting");

    // Only its agent revives it; then it is Active with her and holds her capacity again.
    let refused = w.bo.api.post(&format!("/conversations/{conversation}/revive"), &json!({})).await;
    assert!(refused.is_err(), "Bo may not revive Ana's conversation");
    let revived = w
        .ana
        .api
        .post(&format!("/conversations/{conversation}/revive"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (revived["status"].as_str(), revived["agent_id"].as_str()),
        (Some("active"), Some(w.ana.id.as_str()))
    );
    wait_until(WAIT, "Ana's capacity held again", || async { used_units(&w.ana).await == 1 }).await;

    // Released to the queue: Open, her capacity freed, and offered again (Bo is free too).
    w.ana.api.put("/me/presence", &json!({ "presence": "away" })).await.unwrap();
    let released = w
        .ana
        .api
        .post(
            &format!("/conversations/{conversation}/release"),
            &json!({ "note": "needs billing" }),
        )
        .await
        .unwrap();
    assert_eq!(released["status"], "open");
    wait_until(WAIT, "Ana's capacity freed", || async { used_units(&w.ana).await == 0 }).await;
    let again = bo
        .expect("offer.created.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    assert_eq!(again["data"]["agent_id"], w.bo.id.as_str());
    // An Open conversation cannot be released again.
    let open = w
        .admin
        .post(&format!("/conversations/{conversation}/release"), &json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(open.contains("only an active or waiting conversation"), "{open}");
    let messages = w.admin.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
    assert!(
        messages.as_array().unwrap().iter().any(|m| m["body"] == "needs billing"),
        "the note is in the transcript"
    );
    ana.close().await;
    bo.close().await;
    w.stop().await;
}

#[tokio::test]
async fn a_workstream_sets_how_long_a_wrap_up_may_idle_before_it_closes() {
    let w = World::start().await;
    let definition = json!({
        "mode": "push", "fallback_queue_id": w.queue_id, "offer_timeout_secs": 120,
        "auto_close": { "wrap_up_secs": 120 },
    });
    w.replace_workstream(definition, "wrap_up_auto_close_secs = 120").await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let ended = w.taken_by(&w.ana, &mut ana, "+5511944440002").await;
    let active = w.taken_by(&w.ana, &mut ana, "+5511944440003").await;
    w.ana.api.post(&format!("/conversations/{ended}/end"), &json!({})).await.unwrap();
    assert_eq!(status(&w, &ended).await["status"], "wrap_up");

    // Two idle minutes close the wrap-up; the Active one keeps Dynamics' 30 days.
    w.clock.advance(time::Duration::seconds(121));
    wait_until(WAIT, "the wrap-up auto-closed", || async {
        status(&w, &ended).await["status"] == "closed"
    })
    .await;
    assert_eq!(status(&w, &ended).await["status_reason"], "auto_closed_by_system");
    assert_eq!(status(&w, &active).await["status"], "active");
    ana.close().await;
    w.stop().await;
}
