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

#[tokio::test]
async fn a_workstream_sends_its_window_template_once_when_the_window_closes_under_a_message() {
    let w = World::start().await;
    w.sync_templates().await;
    let definition = json!({
        "mode": "push", "fallback_queue_id": w.queue_id, "offer_timeout_secs": 120,
        "window_template": { "name": "follow_up", "variables": { "1": "there", "2": "A-9" } },
    });
    w.replace_workstream(definition, "window_template IS NOT NULL").await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let conversation = w.taken_by(&w.ana, &mut ana, "+5511955550003").await;

    // The automated messages (greeting, "agent assigned") are through first, so the
    // fault below can only meet Ana's replies.
    let path = format!("/conversations/{conversation}/messages");
    switchboard_test_support::wait_until(WAIT, "the automated messages delivered", || async {
        let messages = w.ana.api.get(&path).await.unwrap();
        let outbound: Vec<&serde_json::Value> = messages
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "outbound")
            .collect();
        outbound.len() >= 2 && outbound.iter().all(|m| matches!(m["status"].as_str(), Some("delivered" | "read")))
    })
    .await;
    // Twilio takes Ana's reply, but the window closed meanwhile (63016 in flight): it fails, the
    // conversation gets a note, and the template goes on its own, in the customer's language.
    // (One reply at a time: the emulator's fault takes the next sends, whichever they are, and
    // the template must not be one of them.)
    let failed_and_noted = |failed: usize, template: bool| {
        let (api, path) = (w.ana.api.clone(), path.clone());
        async move {
            let messages = api.get(&path).await.unwrap();
            let messages = messages.as_array().unwrap();
            let delivered = messages.iter().any(|m| {
                m["author_kind"] == "automated"
                    && m["body"] == "Hi there, we are following up on your request A-9. Reply to continue."
                    && matches!(m["status"].as_str(), Some("delivered" | "read"))
            });
            let notes = messages
                .iter()
                .filter(|m| m["author_kind"] == "system" && m["body"].as_str().unwrap_or("").contains("63016"))
                .count();
            delivered == template && messages.iter().filter(|m| m["error_code"] == 63016).count() == failed && notes >= 1
        }
    };
    for (i, text) in ["Are you still there?", "Hello?"].iter().enumerate() {
        w.emulator()
            .inject(switchboard_twilio_emulator::Fault::FailWith { code: 63016, count: 1 });
        w.ana
            .api
            .post(&path, &json!({ "text": text, "client_message_id": format!("late-{i}") }))
            .await
            .unwrap();
        switchboard_test_support::wait_until(WAIT, &format!("reply {} failed and noted, the template delivered", i + 1), || {
            failed_and_noted(i + 1, true)
        })
        .await;
    }
    // The second failure's note was written with any template it would send: one is stored.
    let messages = w.ana.api.get(&path).await.unwrap();
    let templates = messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author_kind"] == "automated" && m["body"].as_str().unwrap_or("").starts_with("Hi there, we are following up"))
        .count();
    assert_eq!(templates, 1, "once per window: {messages}");
    let follow_up = format!("HX{:032x}", 4);
    let sent = w
        .emulator()
        .sent()
        .iter()
        .filter(|m| m.content_sid.as_deref() == Some(follow_up.as_str()))
        .count();
    assert_eq!(sent, 1, "once per window, however many messages failed");
    ana.close().await;
    w.stop().await;
}
