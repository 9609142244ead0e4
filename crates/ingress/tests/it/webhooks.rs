use std::sync::Arc;
use std::time::Duration;

use switchboard_bus::events::{InboundReceivedV1, StatusReceivedV1};
use switchboard_test_support::wait_until;

use crate::harness::*;

fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}

#[tokio::test]
async fn valid_webhooks_of_every_kind_are_published_once_to_the_customers_shard() {
    let h = Harness::start(5_000).await;
    let media_url = format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME1");
    let mut image = text_message(&sid(2), "whatsapp:+5511900000002");
    image.extend([
        ("NumMedia", "1".to_owned()),
        ("MediaUrl0", media_url.clone()),
        ("MediaContentType0", "image/jpeg".to_owned()),
    ]);
    image.retain(|(k, v)| !(*k == "NumMedia" && v == "0"));
    let mut location = text_message(&sid(3), "whatsapp:+5511900000003");
    location.retain(|(k, _)| *k != "Body");
    location.extend([
        ("Body", String::new()),
        ("Latitude", "37.7879277".into()),
        ("Longitude", "-122.3937508".into()),
        ("Label", "Twilio Inc".into()),
    ]);
    let mut button = text_message(&sid(4), "whatsapp:+5511900000004");
    button.extend([
        ("ButtonText", "Konfirmasi".into()),
        ("ButtonPayload", "{verifyEmail:asd@asd.com}".into()),
        ("ExternalUserId", "whatsapp:ID.4566546130240823".into()),
        ("MessagingServiceSid", format!("MG{:032x}", 9)),
    ]);
    let cases: Vec<(String, Vec<(&'static str, String)>)> = vec![
        (inbound_path(), text_message(&sid(1), "whatsapp:+5511900000001")),
        (inbound_path(), image),
        (inbound_path(), location),
        (inbound_path(), button),
        // An admin may add a query string to the URL in the Twilio console; it is signed too.
        (
            format!("{}?tenant=acme&x=1", inbound_path()),
            text_message(&sid(5), "whatsapp:+5511900000005"),
        ),
    ];
    for (path, params) in &cases {
        let response = h.post(path, &refs(params), TOKEN).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/xml");
        assert_eq!(
            response.text().await.unwrap(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
    }
    assert_eq!(h.total_published().await, cases.len() as u32, "each published exactly once");
    let mut published = Vec::new();
    for shard in 0..h.bus.config.shards {
        published.extend(
            h.drain::<InboundReceivedV1>(&format!("session.inbound.{shard}"))
                .await
                .into_iter()
                .map(|e| (shard, e.payload)),
        );
    }
    for (_, params) in &cases {
        let message_sid = &params.iter().find(|(k, _)| *k == "MessageSid").unwrap().1;
        let from = &params.iter().find(|(k, _)| *k == "From").unwrap().1;
        let customer_key = params.iter().find(|(k, _)| *k == "ExternalUserId").map_or_else(
            || from.trim_start_matches("whatsapp:").to_owned(),
            |(_, v)| v.trim_start_matches("whatsapp:").to_owned(),
        );
        let key = format!("{CHANNEL}|{customer_key}");
        let shard = switchboard_bus::shard_for(&key, h.bus.config.shards);
        let matching: Vec<_> = published.iter().filter(|(_, e)| &e.message_sid == message_sid).collect();
        assert_eq!(matching.len(), 1, "{message_sid} published once");
        let (got_shard, event) = matching[0];
        assert_eq!(*got_shard, shard, "{message_sid} on the customer's shard");
        assert_eq!(event.ordering_key, key);
        assert_eq!(event.channel_id.to_string(), CHANNEL);
        assert_eq!(event.idempotency_token.as_deref(), Some("803c29b1-163f-4e1a-a6c6-d74f62efab06"));
        assert_eq!(event.params.len(), params.len(), "the verified form travels whole");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_status_callback_is_published_and_answered_204() {
    let h = Harness::start(5_000).await;
    let params = [
        ("MessageSid", sid(7)),
        ("AccountSid", ACCOUNT.into()),
        ("MessageStatus", "undelivered".into()),
        ("ErrorCode", "63016".into()),
        ("ChannelStatusMessage", "outside window".into()),
    ];
    let response = h.post(&status_path(), &refs(&params), TOKEN).await;
    assert_eq!(response.status(), 204);
    let event = h.drain::<StatusReceivedV1>("session.delivery").await.pop().expect("published");
    assert_eq!(event.payload.status, "undelivered");
    assert_eq!(event.payload.error_code, Some(63016));
    assert_eq!(event.payload.error_message.as_deref(), Some("outside window"));
    h.stop().await;
}

#[tokio::test]
async fn every_refusal_has_its_status_and_publishes_nothing() {
    let h = Harness::start(5_000).await;
    h.session.put(
        "inactive",
        FakeChannel {
            active: false,
            ..FakeChannel::active(ACCOUNT, TOKEN)
        },
    );
    let good = text_message(&sid(10), "whatsapp:+5511900000010");

    // Unknown and inactive channels.
    assert_eq!(h.post("/v1/twilio/does-not-exist/inbound", &refs(&good), TOKEN).await.status(), 404);
    assert_eq!(h.post("/v1/twilio/inactive/inbound", &refs(&good), TOKEN).await.status(), 404);
    // Signed with another token, or not signed at all.
    assert_eq!(h.post(&inbound_path(), &refs(&good), "another-token").await.status(), 403);
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(refs(&good)).finish();
    let unsigned = h
        .http
        .post(format!("{}{}", h.url, inbound_path()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    // A body altered after signing.
    let signature = sign(&format!("{}{}", h.url, inbound_path()), &body, TOKEN);
    let tampered = h
        .http
        .post(format!("{}{}", h.url, inbound_path()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", &signature)
        .body(body.replace("Ol%C3%A1", "Ola"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 403);
    // Signed for a different URL (a proxy that changed the path).
    assert_eq!(
        h.post(&format!("{}/", inbound_path()), &refs(&good), TOKEN).await.status(),
        404,
        "no such route"
    );
    // Genuine signature, but the AccountSid is another account's.
    let mut other_account = good.clone();
    other_account.retain(|(k, _)| *k != "AccountSid");
    other_account.push(("AccountSid", "AC22222222222222222222222222222222".into()));
    assert_eq!(h.post(&inbound_path(), &refs(&other_account), TOKEN).await.status(), 403);
    // Signed but missing a required field, or malformed.
    let mut missing = good.clone();
    missing.retain(|(k, _)| *k != "MessageSid");
    let response = h.post(&inbound_path(), &refs(&missing), TOKEN).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("MessageSid"));
    let mut sms = good.clone();
    sms.retain(|(k, _)| *k != "From");
    sms.push(("From", "+5511900000010".into()));
    assert_eq!(h.post(&inbound_path(), &refs(&sms), TOKEN).await.status(), 400);
    assert_eq!(
        h.post(&status_path(), &[("MessageSid", &sid(11)), ("AccountSid", ACCOUNT)], TOKEN)
            .await
            .status(),
        400
    );
    // Too large, and the wrong content type.
    let mut huge = good.clone();
    huge.push(("Padding", "x".repeat(70_000)));
    assert_eq!(h.post(&inbound_path(), &refs(&huge), TOKEN).await.status(), 413);
    let json = h
        .http
        .post(format!("{}{}", h.url, inbound_path()))
        .header("content-type", "application/json")
        .header("x-twilio-signature", &signature)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);

    assert_eq!(h.total_published().await, 0, "nothing published for any refusal");
    // And a good one still goes through.
    assert_eq!(h.post(&inbound_path(), &refs(&good), TOKEN).await.status(), 200);
    assert_eq!(h.total_published().await, 1);
    h.stop().await;
}

#[tokio::test]
async fn broker_outage_answers_503_and_traffic_recovers() {
    let h = Harness::start(5_000).await;
    assert_eq!(
        h.post(&inbound_path(), &refs(&text_message(&sid(20), "whatsapp:+5511900000020")), TOKEN)
            .await
            .status(),
        200
    );
    h.proxy.block();
    let during = h
        .post(&inbound_path(), &refs(&text_message(&sid(21), "whatsapp:+5511900000021")), TOKEN)
        .await;
    assert_eq!(during.status(), 503, "Twilio then tries the fallback URL");
    h.proxy.unblock();
    wait_until(Duration::from_secs(20), "ingress publishing again", || async {
        h.post(&inbound_path(), &refs(&text_message(&sid(22), "whatsapp:+5511900000022")), TOKEN)
            .await
            .status()
            == 200
    })
    .await;
    // The refused message was not published; the accepted ones were, once each.
    let published = h.total_published().await;
    assert!(published >= 2, "{published}");
    let mut sids = Vec::new();
    for shard in 0..h.bus.config.shards {
        sids.extend(
            h.drain::<InboundReceivedV1>(&format!("session.inbound.{shard}"))
                .await
                .into_iter()
                .map(|e| e.payload.message_sid),
        );
    }
    assert!(!sids.contains(&sid(21)));
    assert_eq!(sids.iter().filter(|s| **s == sid(20)).count(), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_path_naming_no_channel_id_is_refused_without_asking_session() {
    let h = Harness::start(200).await;
    let before = h.session.calls();
    let response = h
        .post(
            "/v1/twilio/not-an-id/inbound",
            &refs(&text_message(&sid(40), "whatsapp:+5511900000040")),
            TOKEN,
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(h.session.calls(), before, "nothing to resolve, so session is not asked");
}

#[tokio::test]
async fn session_outage_keeps_known_channels_working_and_changes_apply_within_the_ttl() {
    let h = Harness::start(200).await;
    assert_eq!(
        h.post(&inbound_path(), &refs(&text_message(&sid(30), "whatsapp:+5511900000030")), TOKEN)
            .await
            .status(),
        200
    );
    h.session.set_down(true);
    wait_until(Duration::from_secs(5), "fresh entry expired", || async {
        let before = h.session.calls();
        let status = h
            .post(&inbound_path(), &refs(&text_message(&sid(31), "whatsapp:+5511900000031")), TOKEN)
            .await
            .status();
        assert_eq!(status, 200, "a cached channel keeps working while session is down");
        h.session.calls() > before
    })
    .await;
    // A channel never seen cannot be resolved while session is down.
    const NEW: &str = "0b1e5c6e-3c1a-4bde-9a55-7d0f8c1c2a11";
    h.session.put(NEW, FakeChannel::active(ACCOUNT, TOKEN));
    assert_eq!(
        h.post(
            &format!("/v1/twilio/{NEW}/inbound"),
            &refs(&text_message(&sid(32), "whatsapp:+5511900000032")),
            TOKEN
        )
        .await
        .status(),
        503
    );
    // Session back; the channel is deactivated: refused once the short TTL passes.
    h.session.set_down(false);
    h.session.set_active(CHANNEL, false);
    wait_until(Duration::from_secs(5), "deactivation applied", || async {
        h.post(&inbound_path(), &refs(&text_message(&sid(33), "whatsapp:+5511900000033")), TOKEN)
            .await
            .status()
            == 404
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_webhook_answered_503_while_the_broker_is_down_is_retried_by_twilio_and_published_once() {
    use switchboard_twilio::overrides::ConnectionOverrides;
    use switchboard_twilio_emulator::{AccountSetup, CustomerMessage, Emulator, NumberSetup};

    let h = Harness::start(5_000).await;
    // "Twilio", given the inbound URL as Switchboard hands it out: with connection overrides.
    let em = Emulator::new(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        Arc::new(switchboard_domain::ManualClock::new()),
    )
    .unwrap();
    em.setup_account(AccountSetup {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        numbers: vec![NumberSetup {
            phone: "+14155238886".into(),
            inbound_url: format!("{}{}#{}", h.url, inbound_path(), ConnectionOverrides::switchboard()),
            fallback_url: None,
        }],
        sandbox_join_code: None,
        templates: None,
    });
    let message = |body: &str| CustomerMessage {
        from: "+5511900000031".into(),
        to: "+14155238886".into(),
        body: body.into(),
        ..Default::default()
    };
    let first = em.customer_message(message("before")).await.unwrap();
    assert_eq!((first.webhook_status, first.webhook_attempts), (200, 1));

    h.proxy.block();
    let attempts_before = em.stats().webhook_attempts;
    let sending = tokio::spawn({
        let em = em.clone();
        async move { em.customer_message(message("during the outage")).await }
    });
    // The broker stays unreachable until the webhook has been answered (503) at least once.
    wait_until(Duration::from_secs(20), "a first attempt answered", || async {
        em.stats().webhook_attempts > attempts_before
    })
    .await;
    h.proxy.unblock();
    let during = sending.await.unwrap().unwrap();
    assert_eq!(during.webhook_status, 200, "{during:?}");
    assert!(during.webhook_attempts >= 2, "answered 503, then retried: {during:?}");

    let mut sids = Vec::new();
    for shard in 0..h.bus.config.shards {
        sids.extend(
            h.drain::<InboundReceivedV1>(&format!("session.inbound.{shard}"))
                .await
                .into_iter()
                .map(|e| e.payload.message_sid),
        );
    }
    assert_eq!(sids.iter().filter(|s| **s == during.message_sid).count(), 1, "published once");
    assert_eq!(sids.iter().filter(|s| **s == first.message_sid).count(), 1);
    h.stop().await;
}

#[tokio::test]
async fn twilio_falls_back_to_this_ingress_when_the_primary_fails_and_the_message_is_published_once() {
    use switchboard_twilio_emulator::{AccountSetup, CustomerMessage, Emulator, NumberSetup};

    // The channel's primary ingress is down (nothing listens); this ingress is its fallback URL.
    let h = Harness::start(5_000).await;
    let primary = {
        let listener = switchboard_test_support::bind_local().await;
        format!("http://{}{}", listener.local_addr().unwrap(), inbound_path())
    };
    let em = Emulator::new(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        Arc::new(switchboard_domain::ManualClock::new()),
    )
    .unwrap();
    em.setup_account(AccountSetup {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        numbers: vec![NumberSetup {
            phone: "+14155238886".into(),
            inbound_url: format!("{primary}#ct=500&rc=1&rp=ct"),
            fallback_url: Some(format!("{}{}", h.url, inbound_path())),
        }],
        sandbox_join_code: None,
        templates: None,
    });
    let sent = em
        .customer_message(CustomerMessage {
            from: "+5511900000041".into(),
            to: "+14155238886".into(),
            body: "via the fallback".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sent.webhook_fallback && sent.webhook_status == 200, "{sent:?}");
    let mut published = Vec::new();
    for shard in 0..h.bus.config.shards {
        published.extend(h.drain::<InboundReceivedV1>(&format!("session.inbound.{shard}")).await);
    }
    assert_eq!(published.len(), 1, "published once");
    assert_eq!(published[0].payload.message_sid, sent.message_sid);
    h.stop().await;
}

#[tokio::test]
async fn ingress_is_ready_only_once_it_can_publish() {
    let h = Harness::start_with(5_000, true).await;
    let readyz = || async {
        h.http
            .get(format!("{}/readyz", h.url))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    // Listening, but the broker is unreachable: not ready, so no traffic is sent its way.
    wait_until(Duration::from_secs(10), "ingress answering", || async { readyz().await != 0 }).await;
    wait_until(Duration::from_secs(10), "ingress tried the broker", || async {
        h.proxy.refused() > 0
    })
    .await;
    assert_eq!(readyz().await, 503, "not ready while it cannot publish");
    h.proxy.unblock();
    wait_until(Duration::from_secs(20), "ready once it can publish", || async {
        readyz().await == 200
    })
    .await;
    // The first webhook after readiness is published, not answered 503.
    assert_eq!(
        h.post(&inbound_path(), &refs(&text_message(&sid(40), "whatsapp:+5511900000040")), TOKEN)
            .await
            .status(),
        200
    );
    h.stop().await;
}
