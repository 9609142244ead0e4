use prost::Message as _;
use switchboard_bus::Outgoing;
use switchboard_proto::session::v1 as pb;
use switchboard_test_support::{wait_for, wait_until};

use crate::harness::*;

fn text(conversation_id: &str, body: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        conversation_id: conversation_id.into(),
        author_kind: "agent".into(),
        content: Some(pb::send_message_request::Content::Text(pb::TextContent { body: body.into() })),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_duplicate_webhook_stores_one_message_and_a_greeting_goes_out() {
    let mut h = Harness::start(1).await;
    let (channel_id, _) = h.channel_and_number().await;
    for _ in 0..3 {
        h.inbound(&channel_id, &sid(1), "+5511900000001", "Olá", &[]).await;
    }
    h.inbound(&channel_id, &sid(2), "+5511900000001", "second", &[]).await;
    wait_until(WAIT, "both messages", || async {
        let c = h.conversations().await;
        !c.is_empty() && h.messages(&c[0].id).await.iter().filter(|m| m.direction == "inbound").count() >= 2
    })
    .await;
    let conversations = h.conversations().await;
    assert_eq!(conversations.len(), 1);
    let c = &conversations[0];
    assert_eq!(c.status, "open");
    assert_eq!(c.customer.as_ref().unwrap().phone, "+5511900000001");
    assert!(c.window_open);
    let messages = h.messages(&c.id).await;
    let inbound: Vec<_> = messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(inbound, vec!["Olá", "second"], "the duplicates changed nothing");
    assert_eq!(messages.iter().filter(|m| m.author_kind == "automated").count(), 1, "one greeting");
    let opened = h.next_event("conversation.opened.v1").await;
    assert_eq!(opened["first_message"], "Olá");
    assert_eq!(opened["reopened"], false);
    let send = h.next_event("outbound.send.v1").await;
    assert_eq!(send["to"], "whatsapp:+5511900000001");
    assert_eq!(send["from"], format!("whatsapp:{BUSINESS}"));
    assert_eq!(
        send["status_callback"],
        format!("https://hooks.example.com/v1/twilio/{channel_id}/status#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_burst_of_100_messages_from_one_customer_keeps_its_order_with_two_replicas() {
    let h = Harness::start(2).await;
    let (channel_id, _) = h.channel_and_number().await;
    let events: Vec<_> = (0..100)
        .map(|i| inbound_event(&h.bus, &channel_id, &sid(100 + i), "+5511900000002", &format!("m-{i:03}"), &[]))
        .collect();
    let envelopes: Vec<_> = events.into_iter().map(switchboard_bus::Envelope::new).collect();
    let encoded: Vec<(String, Vec<u8>, String)> = envelopes
        .iter()
        .map(|e| {
            (
                e.message_id.to_string(),
                e.to_bytes(),
                switchboard_bus::Event::routing_key(&e.payload),
            )
        })
        .collect();
    let batch: Vec<Outgoing<'_>> = encoded
        .iter()
        .map(|(id, body, key)| Outgoing {
            exchange: None,
            routing_key: key,
            payload: body,
            message_id: id,
            headers: Default::default(),
            mandatory: true,
        })
        .collect();
    h.bus.publisher().publish_batch(&batch).await.unwrap();
    wait_until(WAIT, "100 messages", || async {
        let c = h.conversations().await;
        !c.is_empty() && h.messages(&c[0].id).await.iter().filter(|m| m.direction == "inbound").count() == 100
    })
    .await;
    let c = h.conversations().await.remove(0);
    let bodies: Vec<String> = h
        .messages(&c.id)
        .await
        .into_iter()
        .filter(|m| m.direction == "inbound")
        .map(|m| m.body)
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("m-{i:03}")).collect();
    assert_eq!(bodies, expected);
    h.stop().await;
}

#[tokio::test]
async fn free_text_is_allowed_until_24_hours_then_only_an_approved_template() {
    let h = Harness::start(1).await;
    let mut client = h.client();
    let (channel_id, number_id) = h.channel_and_number().await;
    let template = client
        .create_template(pb::TemplateInput {
            number_id: number_id.clone(),
            name: "follow_up".into(),
            default_language: "en".into(),
            localizations: vec![pb::TemplateLocalization {
                language: "en".into(),
                text: "Hi {{1}}, your ticket {{2}} was updated".into(),
                content_sid: "HX0123456789abcdef0123456789abcdef".into(),
                status: "approved".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    h.inbound(&channel_id, &sid(1), "+5511900000003", "help", &[]).await;
    wait_until(WAIT, "conversation", || async { !h.conversations().await.is_empty() }).await;
    let c = h.conversations().await.remove(0);
    let expires = c.window_expires_at.unwrap();

    h.clock.advance(time::Duration::hours(23) + time::Duration::minutes(59));
    let sent = client
        .send_message(text(&c.id, "still within the window"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.status, "pending");

    h.clock.advance(time::Duration::minutes(1));
    let refused = client.send_message(text(&c.id, "too late")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let violation = pb::PolicyViolation::decode(refused.details()).unwrap();
    assert_eq!(violation.rule, "outside_24h_window");
    assert_eq!(violation.window_expires_at.unwrap(), expires);
    assert!(refused.message().contains("approved template"));
    let view = client
        .get_conversation(pb::GetByIdRequest { id: c.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!view.window_open);

    let send_template = |variables: &[(&str, &str)]| pb::SendMessageRequest {
        conversation_id: c.id.clone(),
        author_kind: "agent".into(),
        content: Some(pb::send_message_request::Content::Template(pb::TemplateContent {
            template_id: template.id.clone(),
            variables: variables.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let missing = client.send_message(send_template(&[("1", "Ana")])).await.unwrap_err();
    assert_eq!(
        pb::PolicyViolation::decode(missing.details()).unwrap().rule,
        "template_variables_missing"
    );
    let ok = client
        .send_message(send_template(&[("1", "Ana"), ("2", "#42")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.body, "Hi Ana, your ticket #42 was updated");
    // The customer writes again: the window reopens.
    h.clock.advance(time::Duration::seconds(1));
    h.inbound(&channel_id, &sid(2), "+5511900000003", "thanks", &[]).await;
    wait_until(WAIT, "window reopened", || async {
        client
            .clone()
            .get_conversation(pb::GetByIdRequest { id: c.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .window_open
    })
    .await;
    assert!(client.send_message(text(&c.id, "you're welcome")).await.is_ok());
    h.stop().await;
}

#[tokio::test]
async fn lifecycle_waiting_reopen_survey_and_auto_close() {
    let mut h = Harness::start(1).await;
    let mut client = h.client();
    let (channel_id, number_id) = h.channel_and_number().await;
    let settings = pb::NumberSettings {
        default_language: "en".into(),
        survey_enabled: true,
        survey_url: "https://survey.example.com/s".into(),
        survey_message: "How did we do?".into(),
        ..Default::default()
    };
    client
        .update_number(pb::UpdateNumberRequest {
            id: number_id.clone(),
            settings: Some(settings),
            ..Default::default()
        })
        .await
        .unwrap();
    h.inbound(&channel_id, &sid(1), "+5511900000004", "hi", &[]).await;
    wait_until(WAIT, "conversation", || async { !h.conversations().await.is_empty() }).await;
    let id = h.conversations().await.remove(0).id;
    let agent = uuid::Uuid::now_v7().to_string();
    let transition = |t: &str| pb::TransitionRequest {
        conversation_id: id.clone(),
        transition: t.into(),
        agent_id: agent.clone(),
        agent_name: "Bruno".into(),
        ..Default::default()
    };
    let invalid = client.transition_conversation(transition("end")).await.unwrap_err();
    assert_eq!(
        invalid.code(),
        tonic::Code::FailedPrecondition,
        "open conversations cannot be ended"
    );
    assert_eq!(
        client
            .transition_conversation(transition("accept"))
            .await
            .unwrap()
            .into_inner()
            .status,
        "active"
    );
    assert!(
        h.messages(&id).await.iter().any(|m| m.body == "Bruno has joined the conversation."),
        "agent joined message"
    );
    // Close without End → Waiting; the customer writes → Open again, routed with affinity.
    assert_eq!(
        client
            .transition_conversation(transition("close_session"))
            .await
            .unwrap()
            .into_inner()
            .status,
        "waiting"
    );
    h.inbound(&channel_id, &sid(2), "+5511900000004", "me again", &[]).await;
    let reopened = loop {
        let e = h.next_event("conversation.opened.v1").await;
        if e["reopened"] == true {
            break e;
        }
    };
    assert_eq!(reopened["previous_agent_id"], agent.as_str());
    assert_eq!(
        client
            .get_conversation(pb::GetByIdRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .status,
        "open"
    );
    client.transition_conversation(transition("accept")).await.unwrap();
    assert_eq!(
        client.transition_conversation(transition("end")).await.unwrap().into_inner().status,
        "wrap_up"
    );
    let closed = client
        .transition_conversation(transition("close_session"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (closed.status.as_str(), closed.status_reason.as_str()),
        ("closed", "conversation_ended_by_agent")
    );
    let survey = h
        .messages(&id)
        .await
        .into_iter()
        .find(|m| m.body.contains("survey.example.com"))
        .expect("survey link sent");
    assert_eq!(
        survey.body,
        format!("How did we do? https://survey.example.com/s?conversation_id={id}")
    );

    // Two more customers' conversations go Waiting, an hour apart in idleness; the scheduler run
    // that closes the one idle past the (default) 1 h leaves the other alone.
    for (n, from) in [(3, "+5511900000005"), (4, "+5511900000006")] {
        h.inbound(&channel_id, &sid(n), from, "hello", &[]).await;
    }
    wait_until(WAIT, "more conversations", || async { h.conversations().await.len() == 3 }).await;
    let all = h.conversations().await;
    let by_phone = |phone: &str| all.iter().find(|c| c.customer.as_ref().unwrap().phone == phone).unwrap().id.clone();
    let (idle, recent) = (by_phone("+5511900000005"), by_phone("+5511900000006"));
    let to_waiting = |conversation: &str| {
        let mut client = client.clone();
        let (conversation, agent) = (conversation.to_owned(), agent.clone());
        async move {
            for name in ["accept", "close_session"] {
                client
                    .transition_conversation(pb::TransitionRequest {
                        conversation_id: conversation.clone(),
                        transition: name.into(),
                        agent_id: agent.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
        }
    };
    to_waiting(&idle).await;
    h.clock.advance(time::Duration::minutes(59));
    to_waiting(&recent).await;
    h.clock.advance(time::Duration::minutes(2));
    wait_until(WAIT, "auto-closed", || async {
        client
            .clone()
            .get_conversation(pb::GetByIdRequest { id: idle.clone() })
            .await
            .unwrap()
            .into_inner()
            .status
            == "closed"
    })
    .await;
    let closed = client.get_conversation(pb::GetByIdRequest { id: idle }).await.unwrap().into_inner();
    assert_eq!(closed.status_reason, "auto_closed_from_waiting_state");
    assert_eq!(
        client
            .get_conversation(pb::GetByIdRequest { id: recent })
            .await
            .unwrap()
            .into_inner()
            .status,
        "waiting",
        "only 2 minutes idle"
    );
    h.stop().await;
}

#[tokio::test]
async fn context_variables_a_workstream_declares_type_check_what_bots_set() {
    let h = Harness::start(1).await;
    let (channel, number) = h.channel_and_number().await;
    let workstream = uuid::Uuid::now_v7().to_string();
    h.publish(switchboard_bus::events::WorkstreamUpdatedV1 {
        workstream_id: workstream.parse().expect("a workstream id"),
        waiting_auto_close_secs: 86_400,
        bot_id: None,
        bot_inactivity_secs: 1_800,
        deleted: false,
        default_language: None,
        open_auto_close_secs: None,
        active_auto_close_secs: None,
        wrap_up_auto_close_secs: None,
        context_variables: [("Amount".to_owned(), "number".to_owned()), ("Reason".to_owned(), "text".to_owned())].into(),
        read_receipts: None,
        window_template: None,
    })
    .await;
    wait_until(WAIT, "session has the workstream", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM session.workstreams WHERE id = $1::uuid")
            .bind(&workstream)
            .fetch_one(&h.db.pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    h.client()
        .update_number(pb::UpdateNumberRequest {
            id: number,
            settings: Some(pb::NumberSettings {
                default_language: "en".into(),
                workstream_id: workstream,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    h.inbound(&channel, &sid(1), "+5511977770001", "refund please", &[]).await;
    let conversation = wait_for(WAIT, "the conversation", || async { h.conversations().await.into_iter().next() }).await;
    let set = |pairs: &[(&str, &str)]| {
        let request = pb::SetAttributesRequest {
            conversation_id: conversation.id.clone(),
            attributes: pairs
                .iter()
                .map(|(k, v)| switchboard_proto::common::v1::Attribute {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        };
        let mut client = h.client();
        async move { client.set_conversation_attributes(request).await }
    };
    let refused = set(&[("Amount", "a lot"), ("Reason", "refund")]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("Amount"), "{}", refused.message());
    let stored = h.conversations().await.into_iter().next().unwrap();
    assert!(
        stored.attributes.iter().all(|a| a.key != "Reason"),
        "a refused call changes nothing"
    );
    let set_ok = set(&[("Amount", "12.50"), ("Reason", "refund"), ("OrderRef", "A-1")])
        .await
        .unwrap()
        .into_inner();
    let attrs: std::collections::BTreeMap<_, _> = set_ok.attributes.into_iter().map(|a| (a.key, a.value)).collect();
    assert_eq!(attrs.get("Amount").map(String::as_str), Some("12.50"));
    assert_eq!(
        attrs.get("OrderRef").map(String::as_str),
        Some("A-1"),
        "an undeclared one is a bot's own"
    );
    h.stop().await;
}
