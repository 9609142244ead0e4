//! The webhook journal: what is kept, what is not, and a replay after a broker outage.

use std::time::Duration;

use switchboard_bus::events::InboundReceivedV1;
use switchboard_proto::ingress::v1 as ipb;
use switchboard_test_support::{wait_for, wait_until};

use crate::harness::*;

fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}

async fn journaled(h: &Harness, message_sid: &str) -> ipb::JournaledWebhook {
    wait_for(Duration::from_secs(10), "the webhook journaled", || async {
        h.journal
            .clone()
            .list_webhooks(ipb::ListWebhooksRequest {
                message_sid: message_sid.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .webhooks
            .into_iter()
            .next()
    })
    .await
}

fn param<'a>(w: &'a ipb::JournaledWebhook, name: &str) -> Option<&'a str> {
    w.params.iter().find(|p| p.key == name).map(|p| p.value.as_str())
}

fn header<'a>(w: &'a ipb::JournaledWebhook, name: &str) -> Option<&'a str> {
    w.headers.iter().find(|p| p.key == name).map(|p| p.value.as_str())
}

#[tokio::test]
async fn every_verified_webhook_is_journaled_with_its_answer_and_unsigned_ones_are_not() {
    let h = Harness::start(5_000).await;
    // Unsigned first: the journal is written in order, so once the later ones are there, this
    // one would be too had it been kept.
    let forged = h
        .post(
            &inbound_path(),
            &refs(&text_message(&sid(1), "whatsapp:+5511900000001")),
            "not-the-token",
        )
        .await;
    assert_eq!(forged.status(), 403);
    let mut message = text_message(&sid(2), "whatsapp:+5511900000002");
    message.retain(|(k, _)| *k != "Body");
    message.push(("Body", "hello\u{0}world".into()));
    assert_eq!(h.post(&inbound_path(), &refs(&message), TOKEN).await.status(), 200);
    let status = [
        ("MessageSid", sid(3)),
        ("AccountSid", ACCOUNT.to_owned()),
        ("From", "whatsapp:+14155238886".to_owned()),
        ("To", "whatsapp:+5511900000002".to_owned()),
        ("MessageStatus", "delivered".to_owned()),
    ];
    assert_eq!(h.post(&status_path(), &refs(&status), TOKEN).await.status(), 204);
    let mut foreign = text_message(&sid(4), "whatsapp:+5511900000002");
    foreign.retain(|(k, _)| *k != "AccountSid");
    foreign.push(("AccountSid", "AC99999999999999999999999999999999".into()));
    assert_eq!(h.post(&inbound_path(), &refs(&foreign), TOKEN).await.status(), 403);

    let inbound = journaled(&h, &sid(2)).await;
    assert_eq!(
        (inbound.kind.as_str(), inbound.answer, inbound.outcome.as_str()),
        ("inbound", 200, "accepted")
    );
    assert_eq!(
        (inbound.from.as_str(), inbound.channel_id.as_str()),
        ("whatsapp:+5511900000002", CHANNEL)
    );
    assert_eq!(param(&inbound, "Body"), Some("helloworld"), "kept as published, NUL removed");
    assert!(header(&inbound, "x-twilio-signature").is_some_and(|s| !s.is_empty()));
    assert_eq!(
        header(&inbound, "i-twilio-idempotency-token"),
        Some("803c29b1-163f-4e1a-a6c6-d74f62efab06")
    );
    assert!(header(&inbound, "content-type").is_some());
    let callback = journaled(&h, &sid(3)).await;
    assert_eq!((callback.kind.as_str(), callback.answer), ("status", 204));
    let mismatch = journaled(&h, &sid(4)).await;
    assert_eq!((mismatch.answer, mismatch.outcome.as_str()), (403, "account_mismatch"));

    // The customer finds all of their webhooks, both directions, by the bare number.
    let theirs = h
        .journal
        .clone()
        .list_webhooks(ipb::ListWebhooksRequest {
            customer: "+5511900000002".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .webhooks;
    let sids: Vec<&str> = theirs.iter().map(|w| w.message_sid.as_str()).collect();
    assert_eq!(sids, [sid(4), sid(3), sid(2)], "newest first");
    let all = h
        .journal
        .clone()
        .list_webhooks(ipb::ListWebhooksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .webhooks;
    assert!(all.iter().all(|w| w.message_sid != sid(1)), "an unsigned webhook is not kept");

    // A refused one cannot be replayed; bad filters are refused.
    let replay = h
        .journal
        .clone()
        .replay_webhook(ipb::GetWebhookRequest { id: mismatch.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(replay.code(), tonic::Code::FailedPrecondition, "{replay:?}");
    let bad = h
        .journal
        .clone()
        .list_webhooks(ipb::ListWebhooksRequest {
            kind: "sms".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // Retention: entries older than the cutoff go.
    let pool = sqlx::PgPool::connect(&h.db.url).await.unwrap();
    let pruned = switchboard_ingress::journal::prune_once(&pool, time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(pruned, 3);
    pool.close().await;
    h.stop().await;
}

#[tokio::test]
async fn a_webhook_answered_503_while_the_broker_was_down_is_found_and_replayed_once() {
    let h = Harness::start(5_000).await;
    h.proxy.block();
    let customer = "whatsapp:+5511900000030";
    let lost = h.post(&inbound_path(), &refs(&text_message(&sid(30), customer)), TOKEN).await;
    assert_eq!(lost.status(), 503);
    let entry = journaled(&h, &sid(30)).await;
    assert_eq!((entry.answer, entry.outcome.as_str()), (503, "unavailable"));
    let unavailable = h
        .journal
        .clone()
        .list_webhooks(ipb::ListWebhooksRequest {
            answer: 503,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .webhooks;
    assert_eq!(unavailable.len(), 1);

    // Still down: the replay says so and changes nothing.
    let early = h
        .journal
        .clone()
        .replay_webhook(ipb::GetWebhookRequest { id: entry.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(early.code(), tonic::Code::Unavailable, "{early:?}");
    assert_eq!(
        h.journal
            .clone()
            .get_webhook(ipb::GetWebhookRequest { id: entry.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .replays,
        0
    );

    h.proxy.unblock();
    let replayed = wait_for(Duration::from_secs(20), "the replay published", || async {
        h.journal
            .clone()
            .replay_webhook(ipb::GetWebhookRequest { id: entry.id.clone() })
            .await
            .ok()
    })
    .await
    .into_inner();
    assert_eq!(replayed.replays, 1);
    assert!(replayed.last_replayed_at.is_some());
    wait_until(Duration::from_secs(5), "published", || async { h.total_published().await == 1 }).await;
    let mut events = Vec::new();
    for shard in 0..h.bus.config.shards {
        events.extend(h.drain::<InboundReceivedV1>(&format!("session.inbound.{shard}")).await);
    }
    assert_eq!(events.len(), 1);
    let event = &events[0].payload;
    assert_eq!(event.message_sid, sid(30));
    assert_eq!(
        event.ordering_key,
        format!("{CHANNEL}|{}", customer.trim_start_matches("whatsapp:")),
        "to the customer's own shard"
    );
    assert_eq!(
        Some(event.received_at),
        entry.received_at.as_ref().and_then(switchboard_proto::time::datetime),
        "stamped with its first arrival"
    );
    assert_eq!(event.idempotency_token.as_deref(), Some("803c29b1-163f-4e1a-a6c6-d74f62efab06"));
    h.stop().await;
}
