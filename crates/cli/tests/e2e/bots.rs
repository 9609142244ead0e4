//! Bots in front of agents: the bot answers first, escalates with context that routing uses,
//! fails over to people with a note, obeys the 24-hour rule, and idles out.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_bots::testbot::{Rule, TestBot};
use switchboard_test_support::{bind_local, wait_for, wait_until};

use crate::harness::*;

const SECRET: &str = "bot-signing-secret-0123456789";

struct Bot {
    bot: TestBot,
    billing_queue: String,
}

/// Puts a scripted bot in front of the workstream, with a rule sending `topic=billing` to a
/// Billing queue whose only member is Bo.
async fn with_bot(w: &World, rules: Vec<Rule>, timeout_ms: u32, extra: Value) -> Bot {
    let bot = TestBot::start(bind_local().await, SECRET, rules).unwrap();
    let created = w
        .admin
        .post(
            "/bots",
            &json!({ "name": "Helper", "endpoint": bot.url, "signing_secret": SECRET, "timeout_ms": timeout_ms, "max_attempts": 2 }),
        )
        .await
        .unwrap();
    assert!(created.get("signing_secret").is_none() && !created.to_string().contains(SECRET));
    let billing_queue = w
        .admin
        .post(
            "/queues",
            &json!({ "name": "Billing", "definition": { "priority": 1, "members": [w.bo.id] } }),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut definition = json!({
        "mode": "push",
        "fallback_queue_id": w.queue_id,
        "offer_timeout_secs": 120,
        "bot_id": created["id"],
        "route_to_queue": [{
            "name": "billing",
            "conditions": [{ "attribute": "topic", "op": "equals", "value": "billing" }],
            "targets": [{ "queue_id": billing_queue, "percent": 100 }]
        }]
    });
    definition.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    // Session learns the workstream's bot settings (its idle time) from routing's event.
    w.replace_workstream(definition, "bot_id IS NOT NULL").await;
    Bot { bot, billing_queue }
}

async fn conversation_of(w: &World, customer: &str) -> Value {
    wait_for(WAIT, "the conversation", || async {
        let page = w.admin.get("/conversations?page_size=50").await.ok()?;
        page["items"]
            .as_array()?
            .iter()
            .find(|c| c["customer"]["phone"] == customer)
            .cloned()
    })
    .await
}

async fn transcript(w: &World, conversation: &str) -> Vec<Value> {
    w.admin
        .get(&format!("/conversations/{conversation}/messages"))
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn sent_bodies(w: &World) -> Vec<String> {
    w.emulator().sent().into_iter().filter_map(|m| m.body).collect()
}

#[tokio::test]
async fn a_bot_answers_first_and_escalates_with_context_that_picks_the_queue() {
    let w = World::start().await;
    let b = with_bot(
        &w,
        vec![
            Rule::new(
                "invoice",
                json!({ "replies": [{ "text": "Invoices, got it." }], "context": { "topic": "billing" } }),
            ),
            Rule::new(
                "agent",
                json!({ "replies": [{ "text": "Getting a person." }], "action": { "type": "escalate", "reason": "asked for a person" } }),
            ),
        ],
        2_000,
        json!({}),
    )
    .await;
    w.customer_writes("+5511911112222", json!({ "body": "a question about my invoice" }))
        .await;
    wait_until(WAIT, "the bot's reply reaches the customer", || async {
        sent_bodies(&w).iter().any(|b| b == "Invoices, got it.")
    })
    .await;
    let c = conversation_of(&w, "+5511911112222").await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["status"], "active");
    assert!(
        c["bot_id"].is_string() && c["agent_id"].is_null(),
        "the bot holds it, no agent: {c}"
    );
    assert!(w.ana.api.get("/me/offers").await.unwrap().as_array().unwrap().is_empty());
    assert_eq!(
        w.bo.api.get("/me").await.unwrap()["agent"]["used_units"],
        0,
        "no human capacity is used"
    );

    // The customer asks for a person: the bot's context sends it to Billing, i.e. to Bo.
    w.customer_writes("+5511911112222", json!({ "body": "let me talk to an agent" }))
        .await;
    let offer = wait_for(WAIT, "Bo is offered it", || async {
        w.bo.api.get("/me/offers").await.ok()?.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(offer["queue_id"], b.billing_queue.as_str());
    w.bo.api
        .post(&format!("/offers/{}/accept", offer["id"].as_str().unwrap()), &json!({}))
        .await
        .unwrap();
    let seen = w.bo.api.get(&format!("/conversations/{id}")).await.unwrap();
    assert_eq!(seen["attributes"]["topic"], "billing");
    assert!(seen["bot_id"].is_null());
    // Bo sees the whole bot transcript, with the hand-over noted.
    let messages = w.bo.api.get(&format!("/conversations/{id}/messages")).await.unwrap();
    let texts: Vec<(String, String)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["author_kind"].as_str().unwrap().to_owned(),
                m["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("customer", "a question about my invoice"),
        ("bot", "Invoices, got it."),
        ("customer", "let me talk to an agent"),
        ("bot", "Getting a person."),
    ] {
        assert!(
            texts.iter().any(|(k, t)| k == expected.0 && t == expected.1),
            "{expected:?} in {texts:?}"
        );
    }
    assert!(
        texts
            .iter()
            .any(|(k, t)| k == "system" && t.contains("handed the conversation to an agent: asked for a person"))
    );
    // The bot got both turns, the second with the context the first set.
    let received = b.bot.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].context.get("topic").map(String::as_str), Some("billing"));
    // Later messages go to Bo, not the bot.
    w.customer_writes("+5511911112222", json!({ "body": "hello?" })).await;
    // Session decides whether a message goes to a bot in the transaction that stores it: once
    // Bo can read it, no bot turn was (or will be) made for it.
    wait_for(WAIT, "Bo sees the later message", || async {
        let messages = w.bo.api.get(&format!("/conversations/{id}/messages")).await.ok()?;
        messages.as_array()?.iter().any(|m| m["body"] == "hello?").then_some(())
    })
    .await;
    assert_eq!(b.bot.received().len(), 2);

    // Requests without Switchboard's signature, or with a stale one, are recognised and refused.
    let http = reqwest::Client::new();
    let body = serde_json::to_vec(&received[0]).unwrap();
    let unsigned = http.post(&b.bot.url).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let stale_at = time::OffsetDateTime::now_utc().unix_timestamp() - 600;
    let stale = http
        .post(&b.bot.url)
        .header(
            "x-switchboard-signature",
            switchboard_bots::signature::sign(SECRET.as_bytes(), stale_at, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    assert_eq!(b.bot.rejected(), 2);
    b.bot.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn a_bot_that_does_not_answer_hands_the_conversation_to_people_with_a_note() {
    let w = World::start().await;
    let b = with_bot(
        &w,
        vec![Rule::new("", json!({ "replies": [{ "text": "too late" }] }))],
        300,
        json!({}),
    )
    .await;
    b.bot.set_delay(Duration::from_secs(3));
    w.customer_writes("+5511933334444", json!({ "body": "hello", "external_user_id": "BR.B0T0000001" }))
        .await;
    let offer = wait_for(WAIT, "Ana is offered it", || async {
        w.ana.api.get("/me/offers").await.ok()?.as_array()?.first().cloned()
    })
    .await;
    let id = offer["conversation_id"].as_str().unwrap();
    assert_eq!(offer["queue_id"], w.queue_id.as_str(), "no context: the fallback queue");
    let notes: Vec<String> = transcript(&w, id)
        .await
        .iter()
        .filter(|m| m["author_kind"] == "system")
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("did not answer (no answer within 300 ms)")),
        "{notes:?}"
    );
    let received = b.bot.received();
    assert_eq!(received.len(), 2, "bounded attempts");
    assert_eq!(received[0].customer.bsuid.as_deref(), Some("BR.B0T0000001"), "bots see the BSUID");
    b.bot.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn a_bot_reply_outside_the_window_is_refused_like_an_agents() {
    let w = World::start().await;
    let b = with_bot(
        &w,
        vec![Rule::new("", json!({ "replies": [{ "text": "a day late" }] }))],
        60_000,
        json!({ "bot_inactivity_secs": 172_800 }),
    )
    .await;
    b.bot.hold();
    w.customer_writes("+5511955556666", json!({ "body": "anyone?" })).await;
    wait_until(WAIT, "the bot got the turn", || async { b.bot.received().len() == 1 }).await;
    w.clock.advance(time::Duration::hours(25));
    b.bot.release(1);
    let id = conversation_of(&w, "+5511955556666").await["id"].as_str().unwrap().to_owned();
    let note = wait_for(WAIT, "the refusal is noted", || async {
        transcript(&w, &id)
            .await
            .into_iter()
            .find(|m| m["author_kind"] == "system" && m["body"].as_str().is_some_and(|b| b.contains("Bot reply not sent")))
    })
    .await;
    assert!(note["body"].as_str().unwrap().contains("24"), "{note}");
    assert!(!sent_bodies(&w).iter().any(|b| b == "a day late"));
    b.bot.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn an_idle_bot_conversation_closes_after_the_bot_inactivity_time() {
    let w = World::start().await;
    let b = with_bot(
        &w,
        vec![Rule::new("", json!({ "replies": [{ "text": "How can I help?" }] }))],
        2_000,
        json!({}),
    )
    .await;
    w.customer_writes("+5511977778888", json!({ "body": "hi" })).await;
    wait_until(WAIT, "the bot answered", || async {
        sent_bodies(&w).iter().any(|b| b == "How can I help?")
    })
    .await;
    let id = conversation_of(&w, "+5511977778888").await["id"].as_str().unwrap().to_owned();
    w.clock.advance(time::Duration::minutes(31));
    let closed = wait_for(WAIT, "closed for inactivity", || async {
        let c = w.admin.get(&format!("/conversations/{id}")).await.ok()?;
        (c["status"] == "closed").then_some(c)
    })
    .await;
    assert!(closed["status_reason"].is_string());
    assert!(
        w.ana.api.get("/me/offers").await.unwrap().as_array().unwrap().is_empty(),
        "nobody is offered it"
    );
    b.bot.stop().await;
    w.stop().await;
}
