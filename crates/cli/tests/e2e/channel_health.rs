//! Channel health and webhook set-up (#21 item 4): a channel is unhealthy while status callbacks
//! stop arriving for what Twilio accepted, and once Twilio refuses its token (20003), and healthy
//! again when that is fixed; the webhook report compares each number's URLs at Twilio (Senders
//! API, and the Messaging Service holding a sender, whose URLs win unless it defers to its
//! senders) with Switchboard's, and configuring puts them right, after which customers' messages
//! arrive again.

use serde_json::{Value, json};
use switchboard_test_support::{wait_for, wait_until};
use switchboard_twilio_emulator::{AccountSetup, CallbackSettings, MessagingServiceSetup, NumberSetup};

use crate::harness::*;

async fn channel_health(w: &World, wanted: &str) -> Value {
    wait_for(WAIT, &format!("the channel {wanted}"), || async {
        let c = w.admin.get(&format!("/channels/{}", w.channel_id)).await.ok()?;
        (c["health"] == wanted).then_some(c)
    })
    .await
}

fn account(token: &str, inbound_url: &str) -> AccountSetup {
    AccountSetup {
        account_sid: ACCOUNT.into(),
        auth_token: token.into(),
        numbers: vec![NumberSetup {
            phone: BUSINESS.into(),
            inbound_url: inbound_url.into(),
            fallback_url: None,
        }],
        sandbox_join_code: None,
        templates: None,
    }
}

#[tokio::test]
async fn a_channel_is_unhealthy_while_callbacks_stop_or_its_token_is_revoked_and_moved_webhooks_are_put_back() {
    let w = World::start_with(json!({ "session": { "channel_health": { "interval_secs": 1 } } })).await;
    let healthy = channel_health(&w, "healthy").await;
    assert!(healthy["health_checked_at"].is_string(), "{healthy}");
    let inbound_url = healthy["inbound_url"].as_str().unwrap().to_owned();
    let check = format!("/channels/{}/health-check", w.channel_id);

    // Status callbacks stop arriving while Twilio still takes the sends (three greetings): a
    // quarter of an hour later the channel is unhealthy.
    let lost = CallbackSettings {
        lost: true,
        ..CallbackSettings::default()
    };
    w.emulator().set_callbacks(lost);
    for customer in ["+5511955550091", "+5511955550092", "+5511955550093"] {
        w.customer_writes(customer, json!({ "body": "hello" })).await;
    }
    switchboard_test_support::wait_until(WAIT, "three greetings accepted by Twilio", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM session.messages WHERE direction = 'outbound' AND twilio_sid IS NOT NULL AND status IN ('accepted', 'queued')",
        )
        .fetch_one(&w.db.pool)
        .await
        .unwrap()
            == 3
    })
    .await;
    w.clock.advance(time::Duration::minutes(16));
    let stopped = w.admin.post(&check, &json!({})).await.unwrap();
    assert_eq!(stopped["health"], "unhealthy", "{stopped}");
    assert!(stopped["health_reason"].as_str().unwrap().contains("stopped arriving"), "{stopped}");
    // They arrive again: once a later message has its status, the channel is healthy.
    w.emulator().set_callbacks(CallbackSettings::default());
    w.customer_writes("+5511955550094", json!({ "body": "hello" })).await;
    w.customer_gets("+5511955550094", "").await;
    switchboard_test_support::wait_until(WAIT, "a greeting's status callback", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM session.messages WHERE direction = 'outbound' AND status IN ('delivered', 'read')",
        )
        .fetch_one(&w.db.pool)
        .await
        .unwrap()
            > 0
    })
    .await;
    w.clock.advance(time::Duration::minutes(16));
    let recovered = w.admin.post(&check, &json!({})).await.unwrap();
    assert_eq!(recovered["health"], "healthy", "{recovered}");

    // The number's sender at Twilio has Switchboard's URLs.
    let path = format!("/channels/{}/webhooks", w.channel_id);
    let report = w.admin.get(&path).await.unwrap();
    let number = &report[0];
    assert_eq!(number["phone"], BUSINESS, "{report}");
    assert_eq!(number["sender_status"], "ONLINE");
    assert_eq!(number["matches"], true, "{report}");
    assert_eq!(number["expected"]["callback_url"], inbound_url.as_str());

    // Someone points the sender elsewhere in the Twilio console: the report shows it, and
    // configuring puts Switchboard's URLs back.
    let sender = number["sender_sid"].as_str().unwrap();
    let moved = reqwest::Client::new()
        .post(format!("{}/v2/Channels/Senders/{sender}", w.stack.urls.emulator.as_ref().unwrap()))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .json(&json!({ "webhook": { "callback_url": "https://elsewhere.example.com/hook", "callback_method": "POST" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status().as_u16(), 202);
    let report = w.admin.get(&path).await.unwrap();
    assert_eq!(report[0]["matches"], false, "{report}");
    assert_eq!(report[0]["configured"]["callback_url"], "https://elsewhere.example.com/hook");
    let configured = w.admin.post(&format!("{path}/configure"), &json!({})).await.unwrap();
    assert_eq!(configured[0]["matches"], true, "{configured}");
    assert_eq!(configured[0]["configured"]["callback_url"], inbound_url.as_str());
    assert_eq!(
        configured[0]["configured"]["status_callback_url"],
        healthy["status_url"].as_str().unwrap()
    );
    w.customer_writes("+5511955550099", json!({ "body": "reaching you again" })).await;

    // The auth token is revoked at Twilio: the next check marks the channel unhealthy, saying why.
    w.emulator()
        .setup_account(account("a-new-token-000000000000000000000", &inbound_url));
    let unhealthy = channel_health(&w, "unhealthy").await;
    assert!(unhealthy["health_reason"].as_str().unwrap().contains("20003"), "{unhealthy}");
    let refused = w.admin.get(&path).await.unwrap_err();
    assert!(refused.to_string().contains("credentials"), "{refused}");

    // Fixed: an on-demand check says so at once.
    w.emulator().setup_account(account(TOKEN, &inbound_url));
    let checked = w.admin.post(&check, &json!({})).await.unwrap();
    assert_eq!(checked["health"], "healthy", "{checked}");
    assert!(checked["health_reason"].is_null());

    // A number that is not a WhatsApp sender of the account makes the channel unhealthy (last:
    // the emulator's mirror of Switchboard re-applies the account once the number is removed).
    let second = w
        .admin
        .post(
            "/numbers",
            &json!({ "channel_id": w.channel_id, "phone": "+14155550999", "display_name": "Second" }),
        )
        .await
        .unwrap();
    wait_for(WAIT, "the emulator knows the second number", || async {
        let report = w.admin.get(&path).await.ok()?;
        report
            .as_array()?
            .iter()
            .any(|n| n["phone"] == "+14155550999" && n["sender_sid"].is_string())
            .then_some(())
    })
    .await;
    w.emulator().setup_account(account(TOKEN, &inbound_url));
    let not_sender = w.admin.post(&check, &json!({})).await.unwrap();
    assert_eq!(not_sender["health"], "unhealthy", "{not_sender}");
    assert!(
        not_sender["health_reason"].as_str().unwrap().contains("+14155550999 (no sender)"),
        "{not_sender}"
    );
    w.admin
        .call(
            reqwest::Method::DELETE,
            &format!("/numbers/{}", second["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(w.admin.post(&check, &json!({})).await.unwrap()["health"], "healthy");
    w.stop().await;
}

/// Credentials are checked against Twilio when a channel is saved (#21 item 4): ones Twilio
/// refuses (20003) are not saved, a new token Twilio refuses leaves the old one in place, and
/// an admin may save unchecked on purpose.
#[tokio::test]
async fn credentials_twilio_refuses_are_not_saved_and_a_new_token_is_checked_before_it_replaces_the_old() {
    let w = World::start().await;
    let api = format!("{}/api/v1", w.stack.urls.api);
    const OTHER: &str = "AC0123456789abcdef0123456789abcdef";
    const RIGHT: &str = "the-right-token-0123456789abcdef";
    w.emulator().setup_account(AccountSetup {
        account_sid: OTHER.into(),
        ..account(RIGHT, "http://127.0.0.1:9/unused")
    });
    let channels = || async { w.admin.get("/channels").await.unwrap()["items"].as_array().unwrap().len() };
    let before = channels().await;

    let create = |token: &str, skip: bool| {
        json!({ "name": "Second account", "account_sid": OTHER, "auth_token": token, "skip_credential_check": skip }).to_string()
    };
    let (status, refused) = raw(
        reqwest::Method::POST,
        format!("{api}/channels"),
        Some(ADMIN_KEY),
        Some(&create("a-wrong-token-0123456789abcdef00", false)),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("20003") && message.contains("nothing was saved"), "{refused}");
    assert!(!refused.to_string().contains("a-wrong-token"), "the token never shows: {refused}");
    assert_eq!(channels().await, before, "a refused channel is not saved");

    let (status, created) = raw(
        reqwest::Method::POST,
        format!("{api}/channels"),
        Some(ADMIN_KEY),
        Some(&create(RIGHT, false)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["health"], "healthy", "checked as it was saved: {created}");
    assert!(created["health_checked_at"].is_string(), "{created}");
    let id = created["id"].as_str().unwrap();

    // A new token Twilio refuses changes nothing: the old one still signs in.
    let patch = |token: &str, skip: bool| json!({ "auth_token": token, "skip_credential_check": skip }).to_string();
    let (status, refused) = raw(
        reqwest::Method::PATCH,
        format!("{api}/channels/{id}"),
        Some(ADMIN_KEY),
        Some(&patch("a-wrong-token-0123456789abcdef00", false)),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    let checked = w.admin.post(&format!("/channels/{id}/health-check"), &json!({})).await.unwrap();
    assert_eq!(checked["health"], "healthy", "the old token is still the channel's: {checked}");

    // Saved unchecked on purpose (a token set before Twilio has it): no check is made, so the
    // channel keeps its last verdict and its time.
    const NEW: &str = "the-next-token-0123456789abcdef0";
    let (status, saved) = raw(
        reqwest::Method::PATCH,
        format!("{api}/channels/{id}"),
        Some(ADMIN_KEY),
        Some(&patch(NEW, true)),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["health_checked_at"], checked["health_checked_at"], "not checked: {saved}");
    // In development the emulator mirrors Switchboard's channels, so "Twilio" soon has the new
    // token too; a checked save of it is then accepted and judged at once.
    wait_until(WAIT, "the emulator's mirror has the new token", || async {
        w.emulator().account_token(OTHER).as_deref() == Some(NEW)
    })
    .await;
    let (status, fixed) = raw(
        reqwest::Method::PATCH,
        format!("{api}/channels/{id}"),
        Some(ADMIN_KEY),
        Some(&patch(NEW, false)),
    )
    .await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(fixed["health"], "healthy", "{fixed}");
    assert_ne!(fixed["health_checked_at"], checked["health_checked_at"], "judged again: {fixed}");
    w.stop().await;
}

/// A number is checked against the account's WhatsApp senders at Twilio when it is saved (#21
/// item 4): one Twilio lists is saved, one it does not is refused with 422 naming the senders it
/// has and nothing is saved, and `skip_sender_check` saves it anyway.
#[tokio::test]
async fn a_number_twilio_does_not_list_as_a_whatsapp_sender_of_the_account_is_not_saved() {
    let w = World::start_with(json!({ "session": { "channel_health": { "check_senders_on_save": true } } })).await;
    let channel = w.admin.get(&format!("/channels/{}", w.channel_id)).await.unwrap();
    let mut setup = account(TOKEN, channel["inbound_url"].as_str().unwrap());
    setup.numbers.push(NumberSetup {
        phone: "+14155550777".into(),
        inbound_url: "http://127.0.0.1:9/not-yet".into(),
        fallback_url: None,
    });
    w.emulator().setup_account(setup);
    let numbers = || async {
        let listed = w.admin.get(&format!("/numbers?channel_id={}", w.channel_id)).await.unwrap();
        let items = listed["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .filter_map(|n| n["phone"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let new =
        |phone: &str, skip: bool| json!({ "channel_id": w.channel_id, "phone": phone, "display_name": phone, "skip_sender_check": skip });

    let registered = w.admin.post("/numbers", &new("+14155550777", false)).await.unwrap();
    assert_eq!(registered["phone"], "+14155550777", "{registered}");

    let api = format!("{}/api/v1", w.stack.urls.api);
    let body = new("+14155550888", false).to_string();
    let (status, refused) = raw(reqwest::Method::POST, format!("{api}/numbers"), Some(ADMIN_KEY), Some(&body)).await;
    assert_eq!(status, 422, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("+14155550888 is not a WhatsApp sender"), "{refused}");
    assert!(
        message.contains("+14155550777") && message.contains(BUSINESS),
        "names the senders Twilio has: {refused}"
    );
    assert!(!numbers().await.contains(&"+14155550888".to_owned()), "nothing was saved");

    let skipped = w.admin.post("/numbers", &new("+14155550888", true)).await.unwrap();
    assert_eq!(skipped["phone"], "+14155550888", "{skipped}");
    assert!(numbers().await.contains(&"+14155550888".to_owned()));
    w.stop().await;
}

const SERVICE: &str = "MG00000000000000000000000000000e2e";

fn service(inbound: Option<&str>, defers: bool, numbers: &[&str]) -> MessagingServiceSetup {
    MessagingServiceSetup {
        sid: SERVICE.into(),
        friendly_name: "Marketing".into(),
        inbound_request_url: inbound.map(str::to_owned),
        fallback_url: None,
        use_inbound_webhook_on_number: defers,
        numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_messaging_service_holding_the_number_decides_where_its_messages_go_and_configuring_sets_it() {
    let w = World::start().await;
    let path = format!("/channels/{}/webhooks", w.channel_id);
    let check = format!("/channels/{}/health-check", w.channel_id);
    const ELSEWHERE: &str = "https://elsewhere.example.com/service";

    // The number joins a Messaging Service whose inbound URL goes elsewhere: its own sender
    // still has Switchboard's URLs, but the service's win, and the report says so.
    assert!(
        w.emulator()
            .put_messaging_service(ACCOUNT, service(Some(ELSEWHERE), false, &[BUSINESS]))
    );
    let report = w.admin.get(&path).await.unwrap();
    let number = &report[0];
    assert_eq!(number["matches"], false, "{report}");
    assert_eq!(number["configured"]["callback_url"], number["expected"]["callback_url"], "{report}");
    assert_eq!(number["messaging_service"]["sid"], SERVICE);
    assert_eq!(number["messaging_service"]["overrides_sender"], true);
    assert_eq!(number["messaging_service"]["urls"]["callback_url"], ELSEWHERE);

    // Configuring sets the service's URLs (it holds only this channel's number): messages arrive.
    let configured = w.admin.post(&format!("{path}/configure"), &json!({})).await.unwrap();
    assert_eq!(configured[0]["matches"], true, "{configured}");
    let expected = configured[0]["expected"].clone();
    assert_eq!(configured[0]["messaging_service"]["urls"]["callback_url"], expected["callback_url"]);
    assert_eq!(
        configured[0]["messaging_service"]["urls"]["status_callback_url"],
        expected["status_callback_url"]
    );
    w.customer_writes("+5511955550042", json!({ "body": "through the service" })).await;

    // A service with no inbound URL drops the number's messages: the channel is unhealthy,
    // naming the service.
    assert!(w.emulator().put_messaging_service(ACCOUNT, service(None, false, &[BUSINESS])));
    let lost = w
        .emulator()
        .customer_message(switchboard_twilio_emulator::CustomerMessage {
            from: "+5511955550044".into(),
            to: BUSINESS.into(),
            body: "into the void".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lost.webhook_status, 0, "{lost:?}");
    assert!(lost.webhook_error.as_deref().unwrap_or_default().contains("dropped"), "{lost:?}");
    let dropped = w.admin.post(&check, &json!({})).await.unwrap();
    assert_eq!(dropped["health"], "unhealthy", "{dropped}");
    assert!(dropped["health_reason"].as_str().unwrap().contains(SERVICE), "{dropped}");
    // Deferring to its senders, the service no longer stands in the way.
    assert!(w.emulator().put_messaging_service(ACCOUNT, service(None, true, &[BUSINESS])));
    let deferring = w.admin.post(&check, &json!({})).await.unwrap();
    assert_eq!(deferring["health"], "healthy", "{deferring}");
    assert_eq!(w.admin.get(&path).await.unwrap()[0]["matches"], true);
    w.customer_writes("+5511955550043", json!({ "body": "through the sender" })).await;

    // A service that also holds a number of no channel here is left as it is: its URLs would
    // move that number too.
    let other = "+14155550999";
    assert!(
        w.emulator()
            .put_messaging_service(ACCOUNT, service(Some(ELSEWHERE), false, &[BUSINESS, other]))
    );
    let left = w.admin.post(&format!("{path}/configure"), &json!({})).await.unwrap();
    assert_eq!(left[0]["matches"], false, "{left}");
    assert_eq!(left[0]["messaging_service"]["other_senders"], json!([other]));
    assert_eq!(left[0]["messaging_service"]["urls"]["callback_url"], ELSEWHERE);
    w.stop().await;
}
