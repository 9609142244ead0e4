//! Who may do what, and what bad input gets: agents see only their own conversations (a 403
//! that leaks nothing), roles are enforced, keys can be revoked, a forged webhook leaves no
//! trace, errors have one JSON shape, and the OpenAPI document describes the API.

use serde_json::{Value, json};
use switchboard_test_support::wait_for;

use crate::harness::*;

#[tokio::test]
async fn agents_see_only_their_conversations_and_roles_keys_and_webhooks_are_enforced() {
    let w = World::start().await;
    let api = w.stack.urls.api.clone();
    w.customer_writes("+5511977776666", json!({ "body": "hi there" })).await;
    let offer = wait_for(WAIT, "an offer to Ana", || async {
        let offers = w.ana.api.get("/me/offers").await.ok()?;
        offers.as_array()?.first().cloned()
    })
    .await;
    let conversation = offer["conversation_id"].as_str().unwrap().to_owned();
    let offer_id = offer["id"].as_str().unwrap().to_owned();

    // Bo may not read, accept, reply to or transfer Ana's conversation; a conversation that does
    // not exist gets exactly the same answer.
    let theirs = raw(
        reqwest::Method::GET,
        format!("{api}/api/v1/conversations/{conversation}"),
        Some(&w.bo.key),
        None,
    )
    .await;
    let missing = raw(
        reqwest::Method::GET,
        format!("{api}/api/v1/conversations/{}", uuid::Uuid::now_v7()),
        Some(&w.bo.key),
        None,
    )
    .await;
    assert_eq!(theirs.0, 403);
    assert_eq!(theirs, missing, "a denial says nothing about whether the conversation exists");
    assert_eq!(theirs.1["error"]["code"], "permission_denied");
    let accept = raw(
        reqwest::Method::POST,
        format!("{api}/api/v1/offers/{offer_id}/accept"),
        Some(&w.bo.key),
        Some("{}"),
    )
    .await;
    assert_eq!(accept.0, 403, "{accept:?}");
    w.ana.api.post(&format!("/offers/{offer_id}/accept"), &json!({})).await.unwrap();
    for (path, body) in [
        (format!("/conversations/{conversation}/messages"), r#"{"text":"hijack"}"#),
        (
            format!("/conversations/{conversation}/transfer"),
            r#"{"agent_id":"00000000-0000-0000-0000-000000000000"}"#,
        ),
        (format!("/conversations/{conversation}/end"), "{}"),
    ] {
        let denied = raw(reqwest::Method::POST, format!("{api}/api/v1{path}"), Some(&w.bo.key), Some(body)).await;
        assert_eq!(denied.0, 403, "{path}: {denied:?}");
    }
    let bo_list = w.bo.api.get("/conversations").await.unwrap();
    assert_eq!(bo_list["items"], json!([]), "Bo lists none of Ana's conversations");
    assert!(w.emulator().sent().iter().all(|m| m.body.as_deref() != Some("hijack")));

    // Roles: agents cannot administer; no key or a wrong key is 401.
    let as_agent = raw(
        reqwest::Method::POST,
        format!("{api}/api/v1/channels"),
        Some(&w.ana.key),
        Some("{}"),
    )
    .await;
    assert_eq!(as_agent.0, 403);
    assert_eq!(raw(reqwest::Method::GET, format!("{api}/api/v1/me"), None, None).await.0, 401);
    assert_eq!(
        raw(reqwest::Method::GET, format!("{api}/api/v1/me"), Some("sb_not_a_key"), None)
            .await
            .0,
        401
    );

    // A revoked key stops working at once.
    let created = w
        .admin
        .post("/api-keys", &json!({ "name": "temp", "role": "supervisor" }))
        .await
        .unwrap();
    let temp = created["key"].as_str().unwrap().to_owned();
    assert_eq!(
        raw(reqwest::Method::GET, format!("{api}/api/v1/stats/queues"), Some(&temp), None)
            .await
            .0,
        200
    );
    w.admin
        .call(
            reqwest::Method::DELETE,
            &format!("/api-keys/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        raw(reqwest::Method::GET, format!("{api}/api/v1/stats/queues"), Some(&temp), None)
            .await
            .0,
        401
    );

    // Secrets never come back.
    let channels = w.admin.get("/channels").await.unwrap().to_string();
    assert!(!channels.contains(TOKEN));
    let keys = w.admin.get("/api-keys").await.unwrap().to_string();
    assert!(!keys.contains(&w.ana.key) && !keys.contains(ADMIN_KEY));

    // Bad input: one JSON error shape, nothing changed.
    let bad = raw(
        reqwest::Method::POST,
        format!("{api}/api/v1/queues"),
        Some(ADMIN_KEY),
        Some("{not json"),
    )
    .await;
    assert_eq!(bad.0, 400);
    assert_eq!(bad.1["error"]["code"], "invalid_argument");
    let invalid = raw(
        reqwest::Method::POST,
        format!("{api}/api/v1/queues"),
        Some(ADMIN_KEY),
        Some(r#"{"name":"Broken","definition":{"priority":0}}"#),
    )
    .await;
    assert_eq!(invalid.0, 400, "{invalid:?}");
    assert!(invalid.1["error"]["message"].as_str().unwrap().contains("priority"));
    let queues = w.admin.get("/queues").await.unwrap();
    assert!(queues.as_array().unwrap().iter().all(|q| q["name"] != "Broken"));
    // A typed id that is not one is refused where it enters, naming the field, in the same shape.
    let bad_id = raw(
        reqwest::Method::POST,
        format!("{api}/api/v1/numbers"),
        Some(ADMIN_KEY),
        Some(r#"{"channel_id":"not-an-id","phone":"+14155550101"}"#),
    )
    .await;
    assert_eq!(
        (bad_id.0, bad_id.1["error"]["code"].as_str()),
        (400, Some("invalid_argument")),
        "{bad_id:?}"
    );
    assert!(bad_id.1["error"]["message"].as_str().unwrap().contains("channel_id"), "{bad_id:?}");
    let bad_filter = raw(
        reqwest::Method::GET,
        format!("{api}/api/v1/conversations?queue_id=not-an-id"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(bad_filter.0, 400, "{bad_filter:?}");
    let nowhere = raw(reqwest::Method::GET, format!("{api}/api/v1/nowhere"), Some(ADMIN_KEY), None).await;
    assert_eq!((nowhere.0, nowhere.1["error"]["code"].as_str()), (404, Some("not_found")));

    // A forged webhook is refused and leaves no trace.
    let inbound = format!("{}/v1/twilio/{}/inbound", w.stack.urls.ingress, w.channel_id);
    let form = format!(
        "MessageSid=SMforged000000000000000000000000001&AccountSid={ACCOUNT}&From=whatsapp%3A%2B5511900000000&To=whatsapp%3A%2B14155550123&Body=forged&NumMedia=0"
    );
    let forged = reqwest::Client::new()
        .post(&inbound)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let pool = sqlx::PgPool::connect(&w.db.url).await.unwrap();
    let traces: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session.messages WHERE twilio_sid = 'SMforged000000000000000000000000001' OR body = 'forged'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(traces, 0);
    pool.close().await;

    // The OpenAPI document describes the API.
    let doc = reqwest::get(format!("{api}/api/v1/openapi.json"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/conversations/{id}/messages",
        "/api/v1/channels",
        "/api/v1/stream",
        "/api/v1/offers/{id}/accept",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    w.stop().await;
}

#[tokio::test]
async fn an_agent_loses_access_when_their_waiting_conversation_goes_back_to_the_queue() {
    let w = World::start().await;
    let api = w.stack.urls.api.clone();
    w.customer_writes("+5511977775555", json!({ "body": "hello" })).await;
    let offer = wait_for(WAIT, "an offer to Ana", || async {
        let offers = w.ana.api.get("/me/offers").await.ok()?;
        offers.as_array()?.first().cloned()
    })
    .await;
    let conversation = offer["conversation_id"].as_str().unwrap().to_owned();
    w.ana
        .api
        .post(&format!("/offers/{}/accept", offer["id"].as_str().unwrap()), &json!({}))
        .await
        .unwrap();
    w.ana
        .api
        .post(&format!("/conversations/{conversation}/messages"), &json!({ "text": "one moment" }))
        .await
        .unwrap();
    // Ana closes the session without ending: Waiting, still hers to read, not to work.
    w.ana
        .api
        .post(&format!("/conversations/{conversation}/close"), &json!({}))
        .await
        .unwrap();
    let waiting = w.ana.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    let reply = raw(
        reqwest::Method::POST,
        format!("{api}/api/v1/conversations/{conversation}/messages"),
        Some(&w.ana.key),
        Some(r#"{"text":"while waiting"}"#),
    )
    .await;
    assert_eq!(reply.0, 403, "no work while Waiting: {reply:?}");

    // Ana goes offline; the customer writes again: back to the queue, offered to Bo.
    w.ana.api.put("/me/presence", &json!({ "presence": "offline" })).await.unwrap();
    w.customer_writes("+5511977775555", json!({ "body": "are you there?" })).await;
    let offer = wait_for(WAIT, "an offer to Bo", || async {
        let offers = w.bo.api.get("/me/offers").await.ok()?;
        offers
            .as_array()?
            .iter()
            .find(|o| o["conversation_id"] == conversation.as_str())
            .cloned()
    })
    .await;
    assert_eq!(offer["state"], "pending");
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/conversations/{conversation}"), None),
        (reqwest::Method::GET, format!("/conversations/{conversation}/messages"), None),
        (
            reqwest::Method::POST,
            format!("/conversations/{conversation}/messages"),
            Some(r#"{"text":"still me"}"#),
        ),
        (
            reqwest::Method::POST,
            format!("/conversations/{conversation}/notes"),
            Some(r#"{"text":"a note"}"#),
        ),
        (
            reqwest::Method::POST,
            format!("/conversations/{conversation}/transfer"),
            Some(&format!(r#"{{"queue_id":"{}"}}"#, w.queue_id)),
        ),
    ] {
        let denied = raw(method, format!("{api}/api/v1{path}"), Some(&w.ana.key), body).await;
        assert_eq!(denied.0, 403, "Ana, {path}: {denied:?}");
    }
    // Bo, offered it, may read it.
    let read = w.bo.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert_eq!(read["status"], "open");
    assert!(w.emulator().sent().iter().all(|m| m.body.as_deref() != Some("still me")));
    w.stop().await;
}

#[tokio::test]
async fn an_open_stream_ends_within_seconds_of_its_key_being_revoked_and_streams_per_key_are_capped() {
    let w = World::start().await;
    let api = w.stack.urls.api.clone();
    let created = w
        .admin
        .post("/api-keys", &json!({ "name": "wallboard", "role": "supervisor" }))
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let mut stream = Stream::open(&api, &key, None).await;
    w.admin
        .call(
            reqwest::Method::DELETE,
            &format!("/api-keys/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    // Closed by the server's next check of the key (every 2 s), not at the next reconnect.
    let (code, reason) = stream.closed().await;
    assert_eq!((code, reason.as_str()), (1008, "the key was revoked"));

    // One key may hold 16 streams on a replica; the 17th upgrade is refused with 429.
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(Stream::open(&api, &w.ana.key, None).await);
    }
    match tokio_tungstenite::connect_async(stream_request(&api, &w.ana.key)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("the 17th stream was not refused: {:?}", other.map(|_| ())),
    }
    // Closing one frees a place.
    open.pop().unwrap().close().await;
    wait_for(WAIT, "a place freed", || async {
        tokio_tungstenite::connect_async(stream_request(&api, &w.ana.key))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    w.stop().await;
}

#[tokio::test]
async fn wrong_keys_lock_an_address_out_and_a_key_over_its_rate_gets_429() {
    let w = World::start_with(json!({
        // One token per 100 s: however slow the machine, the 50 requests below cannot earn
        // back the ten past the burst (at 1 per second a slow debug run refilled them).
        "api": { "limits": { "key_requests_per_second": 0.01, "key_burst": 40.0, "failed_auth_per_minute": 5.0 } }
    }))
    .await;
    let api = w.stack.urls.api.clone();
    // A key over its rate: the burst passes, then 429 with the error body.
    let supervisor = w
        .admin
        .post("/api-keys", &json!({ "name": "busy", "role": "supervisor" }))
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(raw(reqwest::Method::GET, format!("{api}/api/v1/stats/queues"), Some(&supervisor), None).await);
    }
    assert!(statuses[..40].iter().all(|(s, _)| *s == 200), "the burst passes: {statuses:?}");
    let limited = statuses.iter().find(|(s, _)| *s == 429).expect("a 429 after the burst");
    assert_eq!(limited.1["error"]["code"], "resource_exhausted");
    assert!(limited.1["error"]["message"].as_str().unwrap().contains("request rate"));

    // Requests without a key are not guesses: they stay 401.
    for _ in 0..8 {
        assert_eq!(
            raw(reqwest::Method::GET, format!("{api}/api/v1/stats/queues"), None, None).await.0,
            401
        );
    }
    // Five wrong keys from this address, then every authentication from it is refused, even
    // with a valid key, until the budget refills.
    for n in 0..5 {
        let wrong = format!("sb_wrong_guess_{n:02}_0123456789abcdefghijklmnop");
        assert_eq!(
            raw(reqwest::Method::GET, format!("{api}/api/v1/stats/queues"), Some(&wrong), None)
                .await
                .0,
            401
        );
    }
    let locked = raw(reqwest::Method::GET, format!("{api}/api/v1/channels"), Some(ADMIN_KEY), None).await;
    assert_eq!(locked.0, 429, "{locked:?}");
    assert!(locked.1["error"]["message"].as_str().unwrap().contains("failed authentications"));
    w.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_locked_out_and_not_the_proxy() {
    // The test's requests come from 127.0.0.1, here one of our proxies.
    let w = World::start_with(json!({
        "api": { "limits": { "failed_auth_per_minute": 5.0, "trusted_proxies": ["127.0.0.0/8"] } }
    }))
    .await;
    let api = w.stack.urls.api.clone();
    let http = reqwest::Client::new();
    let get = |key: String, forwarded: &'static str| {
        let request = http
            .get(format!("{api}/api/v1/channels"))
            .bearer_auth(key)
            .header("x-forwarded-for", forwarded);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for n in 0..5 {
        let wrong = format!("sb_wrong_guess_{n:02}_0123456789abcdefghijklmnop");
        assert_eq!(get(wrong, "203.0.113.5").await, 401);
    }
    // That client is locked out, even with a valid key, and even when it claims another
    // address on the left of the header (only the proxy's entry is believed).
    assert_eq!(get(ADMIN_KEY.into(), "203.0.113.5").await, 429);
    assert_eq!(get(ADMIN_KEY.into(), "198.51.100.1, 203.0.113.5").await, 429);
    // Other clients behind the same proxy are not.
    assert_eq!(get(ADMIN_KEY.into(), "203.0.113.6").await, 200);
    assert_eq!(
        raw(reqwest::Method::GET, format!("{api}/api/v1/channels"), Some(ADMIN_KEY), None)
            .await
            .0,
        200
    );
    w.stop().await;
}

#[tokio::test]
async fn the_channel_directory_answers_only_on_its_own_port() {
    use switchboard_proto::session::v1 as spb;
    let w = World::start().await;
    let connect = |url: String| async move { tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap() };
    let main = connect(w.stack.urls.session_grpc.clone()).await;
    let directory = connect(w.stack.urls.session_directory.clone()).await;
    let resolve = spb::ResolveChannelRequest {
        channel_id: w.channel_id.clone(),
    };
    let refused = spb::channel_directory_client::ChannelDirectoryClient::new(main.clone())
        .resolve_channel(resolve.clone())
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unimplemented,
        "no tokens on the main port: {refused:?}"
    );
    let resolved = spb::channel_directory_client::ChannelDirectoryClient::new(directory.clone())
        .resolve_channel(resolve)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.auth_token, TOKEN);
    let not_here = spb::session_service_client::SessionServiceClient::new(directory)
        .get_channel(spb::GetByIdRequest { id: w.channel_id.clone() })
        .await
        .unwrap_err();
    assert_eq!(not_here.code(), tonic::Code::Unimplemented);
    spb::session_service_client::SessionServiceClient::new(main)
        .get_channel(spb::GetByIdRequest { id: w.channel_id.clone() })
        .await
        .unwrap();
    w.stop().await;
}
