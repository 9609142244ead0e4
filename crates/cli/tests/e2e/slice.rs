//! The whole slice: a customer writes, the agent is offered it on the WebSocket, accepts,
//! replies; Twilio's status callbacks (out of order) mark the reply read; the window runs out
//! and only a template goes through; the agent ends and closes; the survey link goes out.

use base64::Engine;
use serde_json::{Value, json};
use switchboard_test_support::{wait_for, wait_until};
use switchboard_twilio_emulator::CallbackSettings;

use crate::harness::*;

async fn message_status(w: &World, conversation: &str, body: &str) -> Option<String> {
    let messages = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await.ok()?;
    messages
        .as_array()?
        .iter()
        .find(|m| m["body"] == body)
        .map(|m| m["status"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn a_customer_conversation_runs_end_to_end_through_every_service() {
    let w = World::start().await;
    // Twilio sends the callbacks of each message shuffled and twice.
    w.emulator().set_callbacks(CallbackSettings {
        delay_ms: 5,
        reorder: true,
        duplicate: true,
        read: true,
        lost: false,
    });
    let mut ana_stream = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;

    // A customer writes; Ana (highest free capacity) is offered the conversation.
    w.customer_writes("+5511988887777", json!({ "body": "Hello, I need help", "profile_name": "Carla" }))
        .await;
    let offer = ana_stream.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    let offer_id = offer["data"]["offer_id"].as_str().unwrap().to_owned();
    let conversation = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
    let seen = w.ana.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert_eq!(seen["status"], "open");
    assert_eq!(seen["customer"]["profile_name"], "Carla");

    // Accept: the conversation becomes Active with Ana; the stream says so.
    w.ana.api.post(&format!("/offers/{offer_id}/accept"), &json!({})).await.unwrap();
    ana_stream
        .expect("conversation.assigned.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    let active = w.ana.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert_eq!(active["status"], "active");
    assert_eq!(active["agent_id"], w.ana.id.as_str());
    assert_eq!(active["window_open"], true);

    // Ana replies: the emulator (Twilio) receives the send; the shuffled, duplicated callbacks
    // still leave it "read", and the stream reports the status changes.
    let reply = w
        .ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "text": "Hi Carla, how can I help?", "client_message_id": "r1" }),
        )
        .await
        .unwrap();
    assert_eq!(reply["direction"], "outbound");
    wait_until(WAIT, "the emulator got the reply", || async {
        w.emulator()
            .sent()
            .iter()
            .any(|m| m.body.as_deref() == Some("Hi Carla, how can I help?"))
    })
    .await;
    wait_until(WAIT, "the reply is read", || async {
        message_status(&w, &conversation, "Hi Carla, how can I help?").await.as_deref() == Some("read")
    })
    .await;
    let reply_id = reply["id"].as_str().unwrap().to_owned();
    ana_stream
        .expect("message.status.v1", |d| {
            d["message_id"] == reply_id.as_str() && d["status"] == "read"
        })
        .await;
    // Repeating the request with the same client id sends nothing more.
    w.ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "text": "Hi Carla, how can I help?", "client_message_id": "r1" }),
        )
        .await
        .unwrap();
    let copies = w
        .emulator()
        .sent()
        .iter()
        .filter(|m| m.body.as_deref() == Some("Hi Carla, how can I help?"))
        .count();
    assert_eq!(copies, 1);

    // The customer sends a photo; Ana reads it through the media proxy.
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5, 6, 7, 8];
    w.customer_writes(
        "+5511988887777",
        json!({ "body": "here is the receipt", "media": [{ "content_type": "image/jpeg", "data_base64": base64::engine::general_purpose::STANDARD.encode(&photo) }] }),
    )
    .await;
    let message = ana_stream
        .expect("conversation.message.v1", |d| d["body"] == "here is the receipt")
        .await;
    let message_id = message["data"]["message_id"].as_str().unwrap().to_owned();
    let messages = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
    let inbound = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == message_id.as_str())
        .unwrap()
        .clone();
    let media_path = inbound["media"][0]["url"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let got = http
        .get(format!("{}{media_path}", w.stack.urls.api))
        .bearer_auth(&w.ana.key)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.headers()["content-disposition"], "inline; filename=\"media-0\"");
    assert!(got.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(got.bytes().await.unwrap().to_vec(), photo);
    let denied = http
        .get(format!("{}{media_path}", w.stack.urls.api))
        .bearer_auth(&w.bo.key)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403, "another agent cannot read the media");
    // The number's size cap applies to the proxy too: lowered under the photo's size, it is
    // refused.
    let number = w.admin.get(&format!("/numbers/{}", w.number_id)).await.unwrap();
    let mut settings = number["settings"].clone();
    settings["max_attachment_bytes"] = json!(8);
    w.admin
        .call(
            reqwest::Method::PATCH,
            &format!("/numbers/{}", w.number_id),
            Some(&json!({ "settings": settings })),
        )
        .await
        .unwrap();
    let capped = http
        .get(format!("{}{media_path}", w.stack.urls.api))
        .bearer_auth(&w.ana.key)
        .send()
        .await
        .unwrap();
    assert_eq!(capped.status(), 422, "over the number's cap");
    assert!(capped.text().await.unwrap().contains("larger than 8 bytes"));

    // A reconnecting client resumes after the last event it saw.
    let resume_from = ana_stream.last_id;
    ana_stream.close().await;
    w.customer_writes("+5511988887777", json!({ "body": "are you there?" })).await;
    // Missed for certain: it is in the stream's table before the client comes back, so it
    // arrives by replay (before `stream.ready`), not live.
    wait_until(WAIT, "the missed event recorded", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM api.stream_events WHERE data->>'body' = 'are you there?'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    let mut resumed = Stream::open(&w.stack.urls.api, &w.ana.key, Some(resume_from)).await;
    resumed.expect("conversation.message.v1", |d| d["body"] == "are you there?").await;

    // A day passes: the window is closed, free-form text is refused naming the rule.
    w.clock.advance(time::Duration::hours(25));
    let refused = w
        .ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "text": "Still there?" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("422") && refused.contains("outside_24h_window") && refused.contains("window_expires_at"),
        "{refused}"
    );

    // An approved template (synced from Twilio's Content API) goes through and is delivered.
    w.sync_templates().await;
    w.ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "template": { "name": "follow_up", "language": "en", "variables": { "1": "Carla", "2": "A-42" } } }),
        )
        .await
        .unwrap();
    let template_body = "Hi Carla, we are following up on your request A-42. Reply to continue.";
    wait_until(WAIT, "the template is delivered", || async {
        matches!(
            message_status(&w, &conversation, template_body).await.as_deref(),
            Some("delivered" | "read")
        )
    })
    .await;
    let sent = w.emulator().sent();
    assert!(
        sent.iter().any(|m| m.content_sid.is_some() && m.error_code.is_none()),
        "sent as a Content template"
    );

    // The customer answers (the window opens again); Ana ends and closes; the survey goes out.
    w.customer_writes("+5511988887777", json!({ "body": "yes, thanks, all good" }))
        .await;
    // Ending is only worth a message once session has stored this one and the window is open
    // again (the webhook's 200 comes before that): otherwise the end message is rightly not sent.
    wait_until(WAIT, "the customer's answer stored", || async {
        message_status(&w, &conversation, "yes, thanks, all good").await.is_some()
    })
    .await;
    let ended = w
        .ana
        .api
        .post(&format!("/conversations/{conversation}/end"), &json!({}))
        .await
        .unwrap();
    assert_eq!(ended["status"], "wrap_up");
    let closed = w
        .ana
        .api
        .post(&format!("/conversations/{conversation}/close"), &json!({}))
        .await
        .unwrap();
    assert_eq!(closed["status"], "closed");
    let survey = format!("https://survey.example.com/s?conversation_id={conversation}");
    let got_survey = wait_for(WAIT, "the survey link is sent", || async {
        w.emulator()
            .sent()
            .into_iter()
            .find(|m| m.body.as_deref().is_some_and(|b| b.contains(&survey)))
    })
    .await;
    assert_eq!(got_survey.to, "whatsapp:+5511988887777");
    // The end message and the survey are two sends; the sender may deliver them in either order.
    wait_until(WAIT, "the automated end message names the agent", || async {
        w.emulator()
            .sent()
            .iter()
            .any(|m| m.body.as_deref().is_some_and(|b| b.starts_with("Ana has ended the conversation")))
    })
    .await;

    // Supervisors see the queue; the conversation is listed as closed for Ana.
    let stats: Value = w.admin.get("/stats/queues").await.unwrap();
    assert!(stats.as_array().unwrap().iter().any(|q| q["queue_id"] == w.queue_id.as_str()));
    let mine = w.ana.api.get("/conversations?status=closed").await.unwrap();
    assert_eq!(mine["items"][0]["id"], conversation.as_str());
    resumed.close().await;
    w.stop().await;
}
