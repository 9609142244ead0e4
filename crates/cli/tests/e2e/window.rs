//! The customer's 24-hour window and the agent (#21 item 3, in part): an hour before it closes,
//! the agent's stream says so and names the templates that will still reach the customer.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn the_agent_is_warned_an_hour_before_the_window_closes_with_the_templates_that_fit() {
    let w = World::start().await;
    w.sync_templates().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let conversation = w.taken_by(&w.ana, &mut ana, "+5511955550001").await;

    // 22 h 59 min later nothing yet; past 23 h the warning comes, once.
    w.clock.advance(time::Duration::hours(23) + time::Duration::minutes(1));
    let warning = ana
        .expect("conversation.window_closing.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    let data = &warning["data"];
    assert_eq!(data["agent_id"], w.ana.id.as_str(), "{data}");
    let templates: Vec<&str> = data["templates"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    assert!(templates.contains(&"follow_up (en)"), "{data}");
    let closes_at =
        time::OffsetDateTime::parse(data["closes_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    let c = w.ana.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    let expires = time::OffsetDateTime::parse(
        c["window_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(closes_at, expires, "the warning names the window's end");

    // The customer writes again: a new window, and a new warning 23 hours on.
    w.customer_writes("+5511955550001", json!({ "body": "still there?" })).await;
    ana.expect("conversation.message.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    w.clock.advance(time::Duration::hours(23) + time::Duration::minutes(1));
    let again = ana
        .expect("conversation.window_closing.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    assert!(again["id"].as_i64() > warning["id"].as_i64());
    let warnings: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api.stream_events WHERE type = 'conversation.window_closing.v1' AND conversation_id = $1::uuid",
    )
    .bind(&conversation)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(warnings, 2, "one warning per window");
    w.stop().await;
}
