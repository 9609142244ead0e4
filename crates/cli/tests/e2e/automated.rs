//! Automated messages and unrouted conversations through the running services (#18 items 2
//! and 4): the triggers that used to be configurable but inert, the fall-back of a deactivated
//! overflow message, the choice of language, and what happens to a conversation nobody routes.

use serde_json::{Value, json};
use switchboard_cli::client::ApiClient;
use switchboard_test_support::{wait_for, wait_until};

use crate::harness::*;

/// Creates a number on the world's channel (optionally feeding `workstream`), known to the
/// emulator; returns its id.
async fn number(w: &World, phone: &str, workstream: Option<&str>) -> String {
    let number = w
        .admin
        .post(
            "/numbers",
            &json!({ "channel_id": w.channel_id, "phone": phone, "display_name": phone }),
        )
        .await
        .unwrap();
    let id = number["id"].as_str().unwrap().to_owned();
    if let Some(ws) = workstream {
        feed(w, &id, ws).await;
    }
    w.stack.sync_emulator().await.unwrap();
    id
}

/// Makes `number` feed `workstream`.
async fn feed(w: &World, number: &str, workstream: &str) {
    w.admin
        .call(
            reqwest::Method::PATCH,
            &format!("/numbers/{number}"),
            Some(&json!({ "settings": { "workstream_id": workstream } })),
        )
        .await
        .unwrap();
}

/// `customer` writes to the business number `to`.
async fn writes_to(w: &World, customer: &str, to: &str, body: &str) {
    let emulator = ApiClient::new(w.stack.urls.emulator.as_ref().unwrap(), None).unwrap();
    let result = emulator
        .post("/emulator/customers/messages", &json!({ "from": customer, "to": to, "body": body }))
        .await
        .unwrap();
    assert_eq!(result["webhook_status"], 200, "{result}");
}

/// How many messages starting with `text` the customer was sent.
fn sent_count(w: &World, customer: &str, text: &str) -> usize {
    let to = format!("whatsapp:{customer}");
    w.emulator()
        .sent()
        .iter()
        .filter(|m| m.to == to && m.body.as_deref().is_some_and(|b| b.starts_with(text)))
        .count()
}

/// Sets a channel-wide automated message.
async fn automated(w: &World, trigger: &str, language: &str, text: &str, active: bool) {
    w.admin
        .put(
            "/automated-messages",
            &json!({ "channel_id": w.channel_id, "trigger": trigger, "language": language, "text": text, "active": active }),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unrouted_conversation_tells_the_customer_and_is_routed_once_its_number_has_a_workstream() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let bare = number(&w, "+14155550777", None).await;
    let customer = "+5511933330001";
    writes_to(&w, customer, "+14155550777", "is anyone there?").await;
    // Dynamics' "agent couldn't be assigned": a set-up fault, told to the customer once.
    w.customer_gets(customer, "Sorry, we couldn't connect you to an agent.").await;
    writes_to(&w, customer, "+14155550777", "hello?").await;
    let conversation: Value = wait_for(WAIT, "the conversation", || async {
        let list = w.admin.get("/conversations?status=open").await.ok()?;
        list["items"]
            .as_array()?
            .iter()
            .find(|c| c["customer"]["phone"] == customer)
            .cloned()
    })
    .await;
    let id = conversation["id"].as_str().unwrap().to_owned();

    // A workstream that a number feeds cannot be deleted.
    let refused = w
        .admin
        .call(reqwest::Method::DELETE, &format!("/workstreams/{}", w.workstream_id), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("+14155550123"), "{refused}");
    assert!(w.admin.get(&format!("/workstreams/{}", w.workstream_id)).await.is_ok());

    // Given a workstream, the number's waiting conversation is routed to an agent.
    feed(&w, &bare, &w.workstream_id).await;
    let offer = ana.expect("offer.created.v1", |d| d["conversation_id"] == id.as_str()).await;
    assert_eq!(offer["data"]["agent_id"], w.ana.id.as_str());
    assert_eq!(
        sent_count(&w, customer, "Sorry, we couldn't connect you"),
        1,
        "told once, not for each message"
    );
    ana.close().await;
    w.stop().await;
}

#[tokio::test]
async fn assignment_transfer_overflow_and_language_send_their_automated_messages() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let mut bo = Stream::open(&w.stack.urls.api, &w.bo.key, None).await;
    automated(&w, "transfer_accepted", "", "You are now with {AgentName}.", true).await;

    // A transfer's accept sends "transfer accepted", not "agent joined", and is counted.
    let first = "+5511933330002";
    let conversation = w.taken_by(&w.ana, &mut ana, first).await;
    w.customer_gets(first, "Ana has joined the conversation.").await;
    w.ana
        .api
        .post(&format!("/conversations/{conversation}/transfer"), &json!({ "agent_id": w.bo.id }))
        .await
        .unwrap();
    let offer = bo
        .expect("offer.created.v1", |d| d["conversation_id"] == conversation.as_str())
        .await;
    w.bo.api
        .post(
            &format!("/offers/{}/accept", offer["data"]["offer_id"].as_str().unwrap()),
            &json!({}),
        )
        .await
        .unwrap();
    w.customer_gets(first, "You are now with Bo.").await;
    assert_eq!(sent_count(&w, first, "Bo has joined"), 0);
    let c: Value = w.admin.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert_eq!(c["transfer_count"], 1, "{c}");

    // A supervisor's assignment sends "agent assigned" (nobody accepted an offer).
    w.ana.api.put("/me/presence", &json!({ "presence": "offline" })).await.unwrap();
    let second = "+5511933330003";
    w.customer_writes(second, json!({ "body": "hello" })).await;
    let waiting: Value = wait_for(WAIT, "the queued conversation", || async {
        let list = w.admin.get("/conversations?status=open").await.ok()?;
        list["items"].as_array()?.iter().find(|c| c["customer"]["phone"] == second).cloned()
    })
    .await;
    // Routing queues it after session opened it.
    wait_until(WAIT, "its work item queued", || async {
        let items = w.admin.get(&format!("/queues/{}/items", w.queue_id)).await.unwrap();
        items["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["conversation_id"] == waiting["id"] && i["state"] == "queued")
    })
    .await;
    w.admin
        .post(
            &format!("/conversations/{}/assign", waiting["id"].as_str().unwrap()),
            &json!({ "agent_id": w.ana.id }),
        )
        .await
        .unwrap();
    w.customer_gets(second, "Ana will be helping you today.").await;

    // A queue with no agents closes the conversation with the overflow message, which is sent
    // with its default text even when deactivated.
    automated(&w, "overflow_end", "", "Custom overflow text", false).await;
    let empty = w
        .admin
        .post(
            "/queues",
            &json!({ "name": "Empty", "definition": { "priority": 1, "members": [] } }),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let nobody = w
        .admin
        .post(
            "/workstreams",
            &json!({ "name": "Nobody", "definition": { "mode": "push", "fallback_queue_id": empty } }),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    number(&w, "+14155550888", Some(&nobody)).await;
    let third = "+5511933330004";
    writes_to(&w, third, "+14155550888", "anyone?").await;
    w.customer_gets(third, "All our agents are busy right now.").await;
    assert_eq!(sent_count(&w, third, "Custom overflow text"), 0);

    // The greeting in the workstream's language, before the number's.
    automated(&w, "greeting", "pt-BR", "Olá! Já vamos atender.", true).await;
    let lingua = w
        .admin
        .post(
            "/workstreams",
            &json!({ "name": "Brasil", "definition": { "mode": "push", "fallback_queue_id": w.queue_id, "default_language": "pt-BR" } }),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    number(&w, "+14155550999", Some(&lingua)).await;
    // Session learns the workstream's language from routing's event.
    w.until_session_workstream(&lingua, "default_language = 'pt-BR'").await;
    let fourth = "+5511933330005";
    let english = "+5511933330006";
    writes_to(&w, fourth, "+14155550999", "oi").await;
    w.customer_gets(fourth, "Olá! Já vamos atender.").await;
    w.customer_writes(english, json!({ "body": "hi" })).await;
    w.customer_gets(english, "Thanks for contacting us.").await;
    ana.close().await;
    bo.close().await;
    w.stop().await;
}
