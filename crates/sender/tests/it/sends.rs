use std::collections::HashMap;

use switchboard_bus::events::OutboundContent;
use switchboard_test_support::{wait_for, wait_until};
use switchboard_twilio_emulator::Fault;

use crate::harness::*;

#[tokio::test]
async fn a_text_inside_the_window_and_an_approved_template_go_round_trip_with_signed_callbacks() {
    let mut h = Harness::start(1, 0.0, 16).await;
    h.customer_writes(0, "+5511900000001").await;
    let text_event = h.send_event(0, "+5511900000001", text("Hello from Acme"));
    h.publish(&text_event).await;
    let (key, accepted) = h.result_for(text_event.message_id).await;
    assert_eq!(key, "outbound.accepted.v1");
    let sid = accepted["twilio_sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    let sent = h.emulator.sent().into_iter().find(|m| m.sid == sid).unwrap();
    assert_eq!(
        (sent.from.as_str(), sent.to.as_str(), sent.body.as_deref()),
        ("whatsapp:+14155500000", "whatsapp:+5511900000001", Some("Hello from Acme"))
    );
    assert_eq!(sent.status_callback.as_deref(), Some(h.callback_url.as_str()));

    let template = h.send_event(
        0,
        "+5511900000099",
        OutboundContent::Template {
            content_sid: format!("HX{:032x}", 1),
            variables_json: r#"{"1":"12/1","2":"3pm"}"#.into(),
        },
    );
    h.publish(&template).await;
    let (key, accepted) = h.result_for(template.message_id).await;
    assert_eq!(key, "outbound.accepted.v1", "approved templates go outside the window too");
    let template_sid = accepted["twilio_sid"].as_str().unwrap().to_owned();
    wait_until(WAIT, "read callbacks for both", || async {
        let callbacks = h.callbacks.lock().unwrap().clone();
        [&sid, &template_sid].iter().all(|s| {
            callbacks
                .iter()
                .any(|c| c.get("MessageSid") == Some(s.as_str()) && c.get("MessageStatus") == Some("read"))
        })
    })
    .await;
    let callbacks = h.callbacks.lock().unwrap().clone();
    assert!(
        callbacks.iter().all(|c| c.signature_ok),
        "every callback is signed with the account's token"
    );
    let ours: Vec<&str> = callbacks
        .iter()
        .filter(|c| c.get("MessageSid") == Some(sid.as_str()))
        .filter_map(|c| c.get("MessageStatus"))
        .collect();
    assert_eq!(ours, vec!["sent", "delivered", "read"], "no callback for the initial queued status");
    h.stop().await;
}

#[tokio::test]
async fn free_form_outside_the_window_fails_with_63016_in_its_callback_and_bad_requests_fail_permanently() {
    let mut h = Harness::start(1, 0.0, 16).await;
    let event = h.send_event(0, "+5511900000002", text("are you there?"));
    h.publish(&event).await;
    let (key, accepted) = h.result_for(event.message_id).await;
    assert_eq!(key, "outbound.accepted.v1", "Twilio accepts, then WhatsApp refuses");
    let sid = accepted["twilio_sid"].as_str().unwrap().to_owned();
    let failure = wait_for(WAIT, "undelivered callback", || async {
        h.callbacks
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.get("MessageSid") == Some(sid.as_str()) && c.get("MessageStatus") == Some("undelivered"))
            .cloned()
    })
    .await;
    assert_eq!(failure.get("ErrorCode"), Some("63016"));
    assert!(failure.signature_ok);

    let invalid = h.send_event(0, "14155550000", text("bad recipient"));
    h.publish(&invalid).await;
    let (key, failed) = h.result_for(invalid.message_id).await;
    assert_eq!(key, "outbound.failed.v1");
    assert_eq!(failed["error_code"], 21211);
    assert!(failed["error_message"].as_str().unwrap().contains("To"), "{failed}");
    let unknown_template = h.send_event(
        0,
        "+5511900000002",
        OutboundContent::Template {
            content_sid: format!("HX{:032x}", 999),
            variables_json: "{}".into(),
        },
    );
    h.publish(&unknown_template).await;
    assert_eq!(h.result_for(unknown_template.message_id).await.1["error_code"], 21655);
    h.stop().await;
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_with_backoff_and_nothing_is_sent_twice() {
    let mut h = Harness::start(1, 0.0, 16).await;
    h.customer_writes(0, "+5511900000003").await;
    h.emulator.inject(Fault::Status {
        status: 429,
        code: 20429,
        retry_after_secs: Some(1),
        count: 6,
    });
    h.emulator.inject(Fault::Status {
        status: 503,
        code: 20500,
        retry_after_secs: None,
        count: 4,
    });
    let events: Vec<_> = (0..10)
        .map(|i| h.send_event(0, "+5511900000003", text(&format!("storm {i}"))))
        .collect();
    for e in &events {
        h.publish(e).await;
    }
    for e in &events {
        assert_eq!(h.result_for(e.message_id).await.0, "outbound.accepted.v1");
    }
    let sent = h.emulator.sent();
    let mut per_body: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        *per_body.entry(m.body.clone().unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(per_body.len(), 10);
    assert!(
        per_body.values().all(|n| *n == 1),
        "each message accepted by Twilio exactly once: {per_body:?}"
    );
    assert_eq!(h.emulator.stats().refused, 10, "every injected fault was met and retried");
    h.stop().await;
}

#[tokio::test]
async fn each_number_keeps_to_its_rate_in_every_second() {
    let mut h = Harness::start(2, 10.0, 64).await;
    for n in 0..2 {
        h.customer_writes(n, "+5511900000004").await;
    }
    let events: Vec<_> = (0..60)
        .map(|i| h.send_event(i % 2, "+5511900000004", text(&format!("paced {i}"))))
        .collect();
    for e in &events {
        h.publish(e).await;
    }
    for e in &events {
        assert_eq!(h.result_for(e.message_id).await.0, "outbound.accepted.v1");
    }
    let stats = h.emulator.stats();
    assert_eq!(stats.sent, 60, "{stats:?}");
    for (sender, max) in &stats.max_per_second {
        assert!(*max <= 10, "{sender} sent {max} in one second (limit 10/s)");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_redelivered_send_whose_sid_was_recorded_is_not_sent_again() {
    let mut h = Harness::start(1, 0.0, 16).await;
    h.customer_writes(0, "+5511900000005").await;
    let event = h.send_event(0, "+5511900000005", text("only once"));
    h.publish(&event).await;
    assert_eq!(h.result_for(event.message_id).await.0, "outbound.accepted.v1");
    // The broker redelivers it (a crash after the SID was recorded, before the ack).
    h.publish(&event).await;
    // A message whose SID was recorded by an earlier attempt that crashed before its ack.
    let crashed = h.send_event(0, "+5511900000005", text("recorded before the crash"));
    sqlx::query("INSERT INTO sender.deliveries (message_id, channel_id, number_id, status, twilio_sid, attempts) VALUES ($1::uuid, $2::uuid, $3::uuid, 'accepted', 'SM00000000000000000000000000000abc', 1)")
        .bind(crashed.message_id)
        .bind(h.channel_id)
        .bind(h.numbers[0].0)
        .execute(&h.db.pool)
        .await
        .unwrap();
    h.publish(&crashed).await;
    let marker = h.send_event(0, "+5511900000005", text("marker"));
    h.publish(&marker).await;
    assert_eq!(h.result_for(marker.message_id).await.0, "outbound.accepted.v1");
    let bodies: Vec<String> = h.emulator.sent().into_iter().filter_map(|m| m.body).collect();
    assert_eq!(bodies.iter().filter(|b| *b == "only once").count(), 1);
    assert!(!bodies.contains(&"recorded before the crash".to_owned()));
    h.stop().await;
}

#[tokio::test]
async fn template_sync_brings_content_sids_and_real_approval_statuses() {
    let h = Harness::start(1, 0.0, 4).await;
    h.bus
        .publisher()
        .publish_event(
            &switchboard_bus::Envelope::new(switchboard_bus::events::SyncTemplatesV1 {
                channel_id: Some(h.channel_id),
            }),
            true,
        )
        .await
        .unwrap();
    // What sender hands session: every content of the account, one entry per language.
    let templates = wait_for(WAIT, "synced templates", || async {
        let synced = h.session.synced_templates(&h.channel_id.to_string()).await;
        (synced.len() >= 9).then_some(synced)
    })
    .await;
    let find = |name: &str, language: &str| {
        templates
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned()
            .unwrap_or_else(|| panic!("{name} {language}"))
    };
    let status = |name: &str, language: &str| {
        let t = find(name, language);
        (t.status, t.content_sid)
    };
    assert_eq!(status("appointment_reminder", "en"), ("approved".into(), format!("HX{:032x}", 1)));
    assert_eq!(status("follow_up", "pt_BR").0, "approved", "two languages of one template");
    assert_eq!(status("follow_up", "en").0, "approved");
    assert_eq!(status("promo_blast", "en").0, "rejected", "the real status, not assumed approved");
    assert_eq!(status("new_feature", "en").0, "pending");
    // Every WhatsApp content type is kept, with its buttons or items.
    let localization = |name: &str| {
        templates
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}"))
    };
    let quick = localization("delivery_slot");
    assert_eq!(quick.content_type, "twilio/quick-reply");
    assert!(quick.content_json.contains("slot_am"), "{}", quick.content_json);
    let list = localization("help_topics");
    assert_eq!(
        (list.content_type.as_str(), list.status.as_str()),
        ("twilio/list-picker", "unsubmitted")
    );
    assert!(list.content_json.contains("topic_billing"), "{}", list.content_json);
    assert_eq!(localization("follow_up").content_type, "twilio/text");
    h.stop().await;
}
