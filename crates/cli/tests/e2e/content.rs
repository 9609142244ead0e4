//! Content templates of every WhatsApp type and structured replies (#21 item 1): a button
//! tapped in the opening message reaches routing as `button.payload`; a list picker goes only
//! inside the customer's window (WhatsApp does not approve them), an approved quick reply also
//! outside it; each goes out as its Content SID and is delivered.

use serde_json::{Value, json};

use crate::harness::*;

async fn send(w: &World, conversation: &str, template: Value, id: &str) -> anyhow::Result<Value> {
    w.ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "template": template, "client_message_id": id }),
        )
        .await
}

async fn delivered(w: &World, sid: &str) {
    switchboard_test_support::wait_until(WAIT, &format!("{sid} delivered"), || async {
        w.emulator()
            .sent()
            .iter()
            .any(|m| m.content_sid.as_deref() == Some(sid) && matches!(m.status.as_str(), "delivered" | "read"))
    })
    .await;
}

#[tokio::test]
async fn a_list_picker_goes_only_inside_the_window_and_a_tapped_button_reaches_routing() {
    let w = World::start().await;
    w.sync_templates().await;
    let templates = w.ana.api.get(&format!("/templates?number_id={}", w.number_id)).await.unwrap();
    let kinds: Vec<(&str, &str)> = templates
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["localizations"][0]["content_type"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("help_topics", "twilio/list-picker")), "{kinds:?}");
    assert!(kinds.contains(&("delivery_slot", "twilio/quick-reply")), "{kinds:?}");

    // The customer opens the conversation by tapping a quick-reply button.
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    w.customer_writes("+5511944440101", json!({ "body": "Morning", "button": ["Morning", "slot_am"] }))
        .await;
    let offer = ana.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    accept(&w.ana, &offer).await;
    let conversation = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
    let fact: Option<String> =
        sqlx::query_scalar("SELECT facts->>'button.payload' FROM routing.work_items WHERE conversation_id = $1::uuid")
            .bind(&conversation)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(fact.as_deref(), Some("slot_am"), "classification rules can use button.payload");

    // A WhatsApp Flow's answers are kept as data on the message.
    w.customer_writes(
        "+5511944440101",
        json!({ "body": "", "flow_data": r#"{"appointment":"tomorrow","flow_token":"ft-1"}"# }),
    )
    .await;
    let flow = ana
        .expect("conversation.message.v1", |d| {
            d["conversation_id"] == conversation.as_str() && d["body"] == ""
        })
        .await;
    let messages = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
    let stored = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == flow["data"]["message_id"])
        .unwrap();
    assert_eq!(stored["details"]["flow_data"]["appointment"], "tomorrow", "{stored}");
    assert_eq!(stored["details"]["message_type"], "interactive");

    // Inside the window a list picker (never approved) goes as a session message.
    send(&w, &conversation, json!({ "name": "help_topics", "variables": {} }), "list-1")
        .await
        .unwrap();
    delivered(&w, &format!("HX{:032x}", 10)).await;

    // A day later: the list picker is refused, naming its rule; the approved quick reply goes.
    w.clock.advance(time::Duration::hours(25));
    let refused = send(&w, &conversation, json!({ "name": "help_topics", "variables": {} }), "list-2")
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("422") && refused.contains("template_session_only"), "{refused}");
    send(
        &w,
        &conversation,
        json!({ "name": "delivery_slot", "variables": { "1": "A-7" } }),
        "quick-1",
    )
    .await
    .unwrap();
    delivered(&w, &format!("HX{:032x}", 9)).await;
    ana.close().await;
    w.stop().await;
}
