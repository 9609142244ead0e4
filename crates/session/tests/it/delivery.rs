use switchboard_bus::Envelope;
use switchboard_bus::events::{OutboundAcceptedV1, OutboundFailedV1, StatusReceivedV1};
use switchboard_proto::session::v1 as pb;
use switchboard_test_support::{wait_for, wait_until};

use crate::harness::*;

async fn conversation_with_reply(h: &Harness, channel_id: &str, from: &str, n: u32) -> (String, String) {
    h.inbound(channel_id, &sid(n), from, "hi", &[]).await;
    let id = wait_for(WAIT, "conversation", || async {
        h.conversations()
            .await
            .into_iter()
            .find(|c| c.customer.as_ref().is_some_and(|cu| cu.phone == from))
            .map(|c| c.id)
    })
    .await;
    let reply = h
        .client()
        .send_message(pb::SendMessageRequest {
            conversation_id: id.clone(),
            author_kind: "agent".into(),
            content: Some(pb::send_message_request::Content::Text(pb::TextContent { body: "hello!".into() })),
            client_message_id: format!("client-{n}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (id, reply.id)
}

fn status(channel_id: &str, sid: &str, s: &str, code: Option<u32>) -> StatusReceivedV1 {
    StatusReceivedV1 {
        channel_id: channel_id.parse().expect("a channel id"),
        message_sid: sid.into(),
        status: s.into(),
        error_code: code,
        error_message: None,
        received_at: time::OffsetDateTime::now_utc(),
    }
}

async fn message_status(h: &Harness, conversation: &str, message: &str) -> (String, u32, String) {
    let m = h.messages(conversation).await.into_iter().find(|m| m.id == message).unwrap();
    (m.status, m.error_code, m.error_message)
}

#[tokio::test]
async fn callbacks_in_the_order_read_sent_delivered_leave_the_message_read() {
    let h = Harness::start(1).await;
    let (channel_id, _) = h.channel_and_number().await;
    let (conversation, message) = conversation_with_reply(&h, &channel_id, "+5511900000010", 1).await;
    let twilio_sid = "SMfeedfeedfeedfeedfeedfeedfeedfeed";
    h.publish(OutboundAcceptedV1 {
        message_id: message.parse().expect("a message id"),
        channel_id: channel_id.parse().expect("a channel id"),
        twilio_sid: twilio_sid.into(),
        status: "queued".into(),
    })
    .await;
    wait_until(WAIT, "queued", || async {
        message_status(&h, &conversation, &message).await.0 == "queued"
    })
    .await;
    for s in ["read", "sent", "delivered"] {
        h.publish(status(&channel_id, twilio_sid, s, None)).await;
    }
    wait_until(WAIT, "read", || async {
        message_status(&h, &conversation, &message).await.0 == "read"
    })
    .await;
    // A duplicate or late callback changes nothing.
    h.publish(status(&channel_id, twilio_sid, "sent", None)).await;
    h.publish(status(&channel_id, twilio_sid, "read", None)).await;
    // Callbacks are idempotent; a retry of the same client message id returns the same message.
    let again = h
        .client()
        .send_message(pb::SendMessageRequest {
            conversation_id: conversation.clone(),
            author_kind: "agent".into(),
            content: Some(pb::send_message_request::Content::Text(pb::TextContent { body: "hello!".into() })),
            client_message_id: "client-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, message);
    assert_eq!(again.status, "read");
    h.stop().await;
}

#[tokio::test]
async fn a_callback_before_the_sid_is_known_is_applied_when_it_arrives_and_failures_keep_their_code() {
    let h = Harness::start(1).await;
    let (channel_id, number_id) = h.channel_and_number().await;
    // Two approved templates, one in another language (not the customer's: not named).
    for (name, language) in [("follow_up", "en"), ("seguimento", "pt_BR")] {
        h.client()
            .create_template(pb::TemplateInput {
                number_id: number_id.clone(),
                name: name.into(),
                default_language: language.into(),
                localizations: vec![pb::TemplateLocalization {
                    language: language.into(),
                    text: "We are still here for you".into(),
                    content_sid: format!("HX{:032x}", name.len()),
                    status: "approved".into(),
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
    }
    let (conversation, message) = conversation_with_reply(&h, &channel_id, "+5511900000011", 2).await;
    let twilio_sid = "SMbeefbeefbeefbeefbeefbeefbeefbeef";
    h.publish(status(&channel_id, twilio_sid, "undelivered", Some(63016))).await;
    wait_until(WAIT, "parked", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM session.pending_statuses")
            .fetch_one(&h.db.pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    h.publish(OutboundAcceptedV1 {
        message_id: message.parse().expect("a message id"),
        channel_id: channel_id.parse().expect("a channel id"),
        twilio_sid: twilio_sid.into(),
        status: "queued".into(),
    })
    .await;
    wait_until(WAIT, "undelivered", || async {
        message_status(&h, &conversation, &message).await.0 == "undelivered"
    })
    .await;
    let (_, code, text) = message_status(&h, &conversation, &message).await;
    assert_eq!(code, 63016);
    assert!(text.contains("24-hour"), "human text for a code Twilio sends without one: {text}");
    // The window closed while the reply was in flight: the transcript says so, and names the
    // template in the customer's language that still reaches them.
    let note = h
        .messages(&conversation)
        .await
        .into_iter()
        .find(|m| m.direction == "note" && m.body.contains("63016"))
        .expect("a note about the closed window");
    assert!(
        note.body.contains("follow_up (en)") && !note.body.contains("seguimento"),
        "{}",
        note.body
    );
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM session.pending_statuses")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(parked, 0);
    h.stop().await;
}

#[tokio::test]
async fn deleting_a_number_closes_its_conversations_fails_queued_sends_and_removes_templates() {
    let mut h = Harness::start(1).await;
    let mut client = h.client();
    let (channel_id, number_id) = h.channel_and_number().await;
    client
        .create_template(pb::TemplateInput {
            number_id: number_id.clone(),
            name: "hello".into(),
            default_language: "en".into(),
            localizations: vec![pb::TemplateLocalization {
                language: "en".into(),
                text: "Hello".into(),
                content_sid: "HX0123456789abcdef0123456789abcdef".into(),
                status: "approved".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let (conversation, pending) = conversation_with_reply(&h, &channel_id, "+5511900000012", 3).await;
    let report = client
        .delete_number(pb::GetByIdRequest { id: number_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.conversations_closed, 1);
    assert!(report.messages_failed >= 2, "the reply and the greeting: {report:?}");
    assert_eq!(report.templates_removed, 1);
    let closed = client
        .get_conversation(pb::GetByIdRequest { id: conversation.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (closed.status.as_str(), closed.status_reason.as_str()),
        ("closed", "channel_deleted")
    );
    let transcript = h.messages(&conversation).await;
    assert!(
        transcript.iter().any(|m| m.direction == "note" && m.body.contains("was deleted")),
        "system note"
    );
    assert_eq!(transcript.iter().find(|m| m.id == pending).unwrap().status, "failed");
    let cancelled = h.next_event("outbound.cancelled.v1").await;
    assert!(cancelled["message_id"].is_string());
    assert_eq!(
        client.get_number(pb::GetByIdRequest { id: number_id }).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    // The channel can go now; its webhooks then resolve to "not found" (ingress answers 404).
    client.delete_channel(pb::GetByIdRequest { id: channel_id.clone() }).await.unwrap();
    let gone = directory(&h)
        .resolve_channel(pb::ResolveChannelRequest { channel_id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn a_burst_of_reports_in_any_order_and_batching_ends_each_message_where_its_furthest_report_says() {
    let h = Harness::start(1).await;
    let (channel_id, _) = h.channel_and_number().await;
    let mut messages = Vec::new();
    for n in 0..5 {
        messages.push(conversation_with_reply(&h, &channel_id, &format!("+55119000002{n:02}"), 20 + n).await);
    }
    let sid_of = |n: usize| format!("SM{n:032x}");
    let accepted = |n: usize| OutboundAcceptedV1 {
        message_id: messages[n].1.parse().expect("a message id"),
        channel_id: channel_id.parse().expect("a channel id"),
        twilio_sid: sid_of(n),
        status: "queued".into(),
    };
    let mut set = tokio::task::JoinSet::new();
    let publisher = h.bus.publisher();
    // A callback for a SID nobody reported waits (published first: it also opens the channel).
    let unknown = status(&channel_id, "SMunknownunknownunknownunknownunkn", "delivered", None);
    publisher.publish_event(&Envelope::new(unknown), true).await.unwrap();
    let mut spawn = |bytes: Vec<u8>, key: String| {
        let publisher = publisher.clone();
        set.spawn(async move {
            publisher
                .publish(switchboard_bus::Outgoing {
                    exchange: None,
                    routing_key: &key,
                    payload: &bytes,
                    message_id: &uuid::Uuid::now_v7().to_string(),
                    headers: Default::default(),
                    mandatory: true,
                })
                .await
                .unwrap();
        });
    };
    // Every report at once, concurrently: the consumer sees them in any order and in batches.
    for (n, statuses) in [
        (0, &["sent", "delivered", "read"][..]),
        (1, &["read", "delivered"][..]),
        (2, &[][..]),
        (3, &["undelivered"][..]),
        (4, &["sent", "sent"][..]),
    ] {
        let a = accepted(n);
        spawn(Envelope::new(a).to_bytes(), "outbound.accepted.v1".into());
        for s in statuses {
            let code = (*s == "undelivered").then_some(30008);
            let e = status(&channel_id, &sid_of(n), s, code);
            spawn(Envelope::new(e).to_bytes(), "status.received.v1".into());
        }
    }
    let failed = OutboundFailedV1 {
        message_id: messages[2].1.parse().expect("a message id"),
        channel_id: channel_id.parse().expect("a channel id"),
        error_code: Some(63016),
        error_message: "outside the window".into(),
    };
    spawn(Envelope::new(failed).to_bytes(), "outbound.failed.v1".into());
    // One with a malformed channel is refused alone.
    let mut bad: serde_json::Value =
        serde_json::from_slice(&Envelope::new(status(&channel_id, &sid_of(0), "read", None)).to_bytes()).unwrap();
    bad["event"]["channel_id"] = "not-a-channel".into();
    spawn(serde_json::to_vec(&bad).unwrap(), "status.received.v1".into());
    set.join_all().await;

    let expected = ["read", "read", "failed", "undelivered", "sent"];
    for (n, want) in expected.iter().enumerate() {
        let (conversation, message) = &messages[n];
        wait_until(WAIT, "each message at its furthest status", || async {
            message_status(&h, conversation, message).await.0 == *want
        })
        .await;
    }
    assert_eq!(message_status(&h, &messages[3].0, &messages[3].1).await.1, 30008);
    assert_eq!(message_status(&h, &messages[2].0, &messages[2].1).await.1, 63016);
    let dlq = h.bus.topology().dead_letter_queue("session.delivery");
    wait_until(WAIT, "the malformed report dead-lettered", || async {
        h.bus.ready_count(&dlq).await == Some(1)
    })
    .await;
    let parked: Vec<String> = sqlx::query_scalar("SELECT twilio_sid FROM session.pending_statuses")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(parked, vec!["SMunknownunknownunknownunknownunkn".to_owned()]);
    h.stop().await;
}
