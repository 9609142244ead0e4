//! Hostile input through the public surfaces: NUL characters in a signed webhook are cleaned
//! and the message reaches the agent; NUL characters and wrongly shaped bodies sent to the API
//! get a clear 400 and change nothing.

use serde_json::{Value, json};
use switchboard_test_support::wait_for;

use crate::harness::*;

async fn send(method: reqwest::Method, url: String, key: &str, body: Option<&str>) -> (u16, Value) {
    raw(method, url, Some(key), body).await
}

#[tokio::test]
async fn nul_bytes_are_cleaned_from_webhooks_and_refused_by_the_api_with_a_clear_error() {
    let w = World::start().await;
    let api = format!("{}/api/v1", w.stack.urls.api);

    // A signed webhook whose Body and ProfileName carry %00: answered 200, stored cleaned, offered.
    w.customer_writes("+5511955554444", json!({ "body": "my\u{0} invoice", "profile_name": "Jo\u{0}ana" }))
        .await;
    // Another customer right behind is not held up.
    w.customer_writes("+5511955554445", json!({ "body": "second customer" })).await;
    let offers = wait_for(WAIT, "both conversations offered", || async {
        let a = w.ana.api.get("/me/offers").await.ok()?;
        let b = w.bo.api.get("/me/offers").await.ok()?;
        let all: Vec<Value> = a.as_array()?.iter().chain(b.as_array()?).cloned().collect();
        (all.len() == 2).then_some(all)
    })
    .await;
    let mut first = None;
    for offer in &offers {
        let id = offer["conversation_id"].as_str().unwrap();
        let messages = w.admin.get(&format!("/conversations/{id}/messages")).await.unwrap();
        let text = messages.to_string();
        assert!(!text.contains("\\u0000"), "{text}");
        if text.contains("my invoice") {
            first = Some(offer.clone());
        }
    }
    let first = first.unwrap_or_else(|| panic!("the cleaned message reached an agent: {offers:?}"));
    let conversation = w
        .admin
        .get(&format!("/conversations/{}", first["conversation_id"].as_str().unwrap()))
        .await
        .unwrap();
    assert!(conversation.to_string().contains("Joana"), "profile name cleaned: {conversation}");

    // The API refuses NUL anywhere in a body, naming where, and creates nothing.
    let agents_before = w.admin.get("/agents").await.unwrap();
    let (status, error) = send(
        reqwest::Method::POST,
        format!("{api}/agents"),
        ADMIN_KEY,
        Some(r#"{"name":"Eve\u0000","definition":{"capacity_units":1}}"#),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "invalid_argument");
    assert!(
        error["error"]["message"].as_str().unwrap().contains("$.name contains a NUL"),
        "{error}"
    );
    assert_eq!(w.admin.get("/agents").await.unwrap(), agents_before, "nothing created");

    let conversation = first["conversation_id"].as_str().unwrap();
    let (status, error) = send(
        reqwest::Method::POST,
        format!("{api}/conversations/{conversation}/notes"),
        ADMIN_KEY,
        Some(r#"{"text":"a\u0000b"}"#),
    )
    .await;
    assert_eq!(status, 400, "{error}");

    // NUL in a query parameter reaches the database as a lookup key: still a 400, not a 500.
    let (status, error) = send(
        reqwest::Method::DELETE,
        format!(
            "{api}/automated-messages?channel_id={}&trigger=greeting&language=e%00n",
            w.channel_id
        ),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 400, "{error}");

    // Over-long ids and URLs are refused by name (a long client_message_id was a 500).
    let agent = if first["agent_id"] == w.ana.id.as_str() { &w.ana } else { &w.bo };
    agent
        .api
        .post(&format!("/offers/{}/accept", first["id"].as_str().unwrap()), &json!({}))
        .await
        .unwrap();
    let long_id = json!({ "text": "hi", "client_message_id": "x".repeat(3_000) }).to_string();
    let (status, error) = send(
        reqwest::Method::POST,
        format!("{api}/conversations/{conversation}/messages"),
        &agent.key,
        Some(&long_id),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("client_message_id"), "{error}");
    let long_url =
        json!({ "media": { "url": format!("https://cdn.example.com/{}", "a".repeat(5_000)), "content_type": "image/png" } }).to_string();
    let (status, error) = send(
        reqwest::Method::POST,
        format!("{api}/conversations/{conversation}/messages"),
        &agent.key,
        Some(&long_url),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("media URL"), "{error}");

    // An array is not an object, and the rulesets are an array, as the document says.
    let (status, error) = send(reqwest::Method::POST, format!("{api}/agents"), ADMIN_KEY, Some(r#"["Eve",{}]"#)).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("a JSON object"), "{error}");
    let workstream = &w.workstream_id;
    for part in ["classification", "route-to-queue"] {
        let (status, error) = send(
            reqwest::Method::PUT,
            format!("{api}/workstreams/{workstream}/{part}"),
            ADMIN_KEY,
            Some("{}"),
        )
        .await;
        assert_eq!(status, 400, "{part}: {error}");
        let (status, body) = send(
            reqwest::Method::PUT,
            format!("{api}/workstreams/{workstream}/{part}"),
            ADMIN_KEY,
            Some("[]"),
        )
        .await;
        assert_eq!(status, 200, "{part}: {body}");
    }
    let document: Value = reqwest::get(format!("{api}/openapi.json")).await.unwrap().json().await.unwrap();
    let schema =
        &document["paths"]["/api/v1/workstreams/{id}/classification"]["put"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(schema["type"], "array", "{schema}");
    w.stop().await;
}

#[tokio::test]
async fn a_message_to_an_inactive_number_is_answered_200_and_listed_for_the_admin() {
    let w = World::start().await;
    w.admin
        .call(
            reqwest::Method::PATCH,
            &format!("/numbers/{}", w.number_id),
            Some(&json!({ "active": false })),
        )
        .await
        .unwrap();
    // Twilio still delivers to the number; ingress answers 200 (a retry could never route it).
    let sent = w.customer_writes("+5511955553333", json!({ "body": "anyone there?" })).await;
    let listed = wait_for(WAIT, "the message listed as unroutable", || async {
        let list = w.admin.get("/unroutable-messages").await.ok()?;
        list.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(listed["message_sid"], sent["message_sid"]);
    assert_eq!(listed["reason"], "inactive_number");
    assert_eq!(listed["to"], BUSINESS);
    assert_eq!(listed["from"], "+5511955553333");
    assert_eq!(listed["body"], "anyone there?");
    assert_eq!(listed["channel_id"], w.channel_id.as_str());
    // Not an admin: refused.
    let (status, _) = send(
        reqwest::Method::GET,
        format!("{}/api/v1/unroutable-messages", w.stack.urls.api),
        &w.ana.key,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let conversations = w.admin.get("/conversations").await.unwrap();
    assert_eq!(conversations["items"], json!([]), "no conversation was opened");
    w.stop().await;
}

#[tokio::test]
async fn a_bot_endpoint_on_a_private_link_local_or_metadata_address_is_refused() {
    let w = World::start().await;
    let api = format!("{}/api/v1", w.stack.urls.api);
    for endpoint in [
        "https://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/bot",
        "https://192.168.0.10/bot",
        "https://[::ffff:172.16.0.1]/bot",
        "https://[fd00::5]/bot",
        "http://bots.example.com/turn",
    ] {
        let body = json!({ "name": "evil", "endpoint": endpoint, "signing_secret": "0123456789abcdef0123456789abcdef" }).to_string();
        let (status, error) = send(reqwest::Method::POST, format!("{api}/bots"), ADMIN_KEY, Some(&body)).await;
        assert_eq!(status, 400, "{endpoint}: {error}");
    }
    assert_eq!(w.admin.get("/bots").await.unwrap(), json!([]), "nothing created");
    w.stop().await;
}
