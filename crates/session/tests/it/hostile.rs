//! Hostile inbound input: text PostgreSQL cannot hold never blocks a shard, and every message
//! ingress would accept, whatever its parameter values, is stored.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use switchboard_bus::Envelope;
use switchboard_bus::events::InboundReceivedV1;
use switchboard_test_support::{wait_for, wait_until};
use switchboard_twilio::{Verified, Webhook};

use crate::harness::*;

fn event(channel_id: &str, params: Vec<(String, String)>, shards: u16) -> InboundReceivedV1 {
    let message = Webhook::<Verified>::trusted(params.clone()).inbound().unwrap();
    let ordering_key = format!("{channel_id}|{}", message.customer.key());
    InboundReceivedV1 {
        channel_id: channel_id.parse().expect("a channel id"),
        message_sid: message.message_sid,
        shard: switchboard_bus::shard_for(&ordering_key, shards),
        ordering_key,
        received_at: time::OffsetDateTime::now_utc(),
        idempotency_token: None,
        // As published by an ingress that did not clean its input: the raw values.
        params,
    }
}

async fn inbound_bodies(h: &Harness) -> Vec<String> {
    sqlx::query_scalar("SELECT body FROM session.messages WHERE direction = 'inbound' ORDER BY seq")
        .fetch_all(&h.db.pool)
        .await
        .unwrap()
}

async fn dead_letters(h: &Harness) -> u32 {
    let mut total = 0;
    for shard in 0..h.bus.config.shards {
        let dlq = h.bus.topology().dead_letter_queue(&format!("session.inbound.{shard}"));
        total += h.bus.ready_count(&dlq).await.unwrap_or(0);
    }
    total
}

fn params(sid: &str, from: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.into()),
        ("AccountSid".into(), ACCOUNT.into()),
        ("From".into(), format!("whatsapp:{from}")),
        ("To".into(), format!("whatsapp:{BUSINESS}")),
    ];
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    params
}

#[tokio::test]
async fn nul_bytes_are_stored_cleaned_and_the_customers_behind_them_are_not_held() {
    let h = Harness::start(1).await;
    let (channel_id, _) = h.channel_and_number().await;
    let shards = h.bus.config.shards;
    let first = "+5511900000101";
    let shard = |phone: &str| switchboard_bus::shard_for(&format!("{channel_id}|{phone}"), shards);
    // Another customer on the same ordered shard, whose message must not wait behind the first.
    let behind = (102..200)
        .map(|n| format!("+5511900000{n}"))
        .find(|p| shard(p) == shard(first))
        .unwrap();
    let hostile = params(
        &sid(1),
        first,
        &[
            ("Body", "hello\0 world"),
            ("ProfileName", "A\0na"),
            ("ButtonText", "Y\0es"),
            ("ButtonPayload", "\0yes"),
            ("Address", "Rua\0 1"),
            ("Latitude", "-23.5"),
            ("Longitude", "-46.6"),
        ],
    );
    h.bus
        .publisher()
        .publish_event(&Envelope::new(event(&channel_id, hostile, shards)), true)
        .await
        .unwrap();
    let next = params(&sid(2), &behind, &[("Body", "next in line")]);
    h.bus
        .publisher()
        .publish_event(&Envelope::new(event(&channel_id, next, shards)), true)
        .await
        .unwrap();
    wait_until(WAIT, "both messages stored", || async { inbound_bodies(&h).await.len() == 2 }).await;
    assert_eq!(inbound_bodies(&h).await, vec!["hello world", "next in line"]);
    let (profile, details): (Option<String>, serde_json::Value) = sqlx::query_as(
        "SELECT c.profile_name, m.details FROM session.messages m JOIN session.conversations v ON v.id = m.conversation_id \
         JOIN session.customers c ON c.id = v.customer_id WHERE m.twilio_sid = $1",
    )
    .bind(sid(1))
    .fetch_one(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(profile.as_deref(), Some("Ana"));
    assert!(!details.to_string().contains("\\u0000"), "{details}");
    assert_eq!(dead_letters(&h).await, 0);
    h.stop().await;
}

/// Any text, NUL and other control characters included.
fn text() -> impl Strategy<Value = String> {
    proptest::prop_oneof![
        proptest::arbitrary::any::<String>(),
        "[a-z \\x00\\x01\\x1b\\u{7f}\\u{fffd}\\u{1F600}]{0,60}",
        "-?[0-9]{1,3}\\.[0-9]{1,8}",
        proptest::strategy::Just(String::new()),
    ]
}

const FIELDS: [&str; 20] = [
    "Body",
    "ProfileName",
    "WaId",
    "MessageType",
    "ButtonText",
    "ButtonPayload",
    "ButtonType",
    "Address",
    "Label",
    "Latitude",
    "Longitude",
    "OriginalRepliedMessageSid",
    "OriginalRepliedMessageSender",
    "ReferralBody",
    "ReferralHeadline",
    "ReferralSourceUrl",
    "ReferralCtwaClid",
    "FlowData",
    "NumMedia",
    "MediaUrl0",
];

#[tokio::test]
async fn every_message_ingress_would_accept_is_stored_whatever_its_values() {
    const CASES: u32 = 96;
    let h = Harness::start(1).await;
    let (channel_id, _) = h.channel_and_number().await;
    let fields: Vec<_> = FIELDS
        .iter()
        .map(|name| {
            // Fields ingress validates (so most random values are refused) are set less often.
            let odds = if matches!(*name, "Latitude" | "Longitude" | "NumMedia" | "MediaUrl0") {
                0.08
            } else {
                0.6
            };
            proptest::option::weighted(odds, text()).prop_map(move |v| v.map(|v| ((*name).to_owned(), v)))
        })
        .collect();
    let mut runner = TestRunner::deterministic();
    let mut accepted = Vec::new();
    for n in 0..CASES {
        let chosen = fields.new_tree(&mut runner).unwrap().current();
        let from = format!("+55119{n:08}");
        let mut case = params(&sid(1_000 + n), &from, &[]);
        case.extend(chosen.into_iter().flatten());
        // What ingress refuses (a malformed MediaUrl, say) is answered 400 and never stored.
        if Webhook::<Verified>::trusted(case.clone()).inbound().is_ok() {
            accepted.push(case);
        }
    }
    assert!(accepted.len() > CASES as usize / 2, "most cases are acceptable: {}", accepted.len());
    for case in &accepted {
        let envelope = Envelope::new(event(&channel_id, case.clone(), h.bus.config.shards));
        h.bus.publisher().publish_event(&envelope, true).await.unwrap();
    }
    wait_until(WAIT, "every accepted message stored or dead-lettered", || async {
        inbound_bodies(&h).await.len() + dead_letters(&h).await as usize >= accepted.len()
    })
    .await;
    assert_eq!(dead_letters(&h).await, 0, "nothing that ingress accepts fails to store");
    assert_eq!(inbound_bodies(&h).await.len(), accepted.len());
    h.stop().await;
}

#[tokio::test]
async fn messages_to_unknown_or_inactive_numbers_are_recorded_not_dead_lettered() {
    let h = Harness::start(1).await;
    let (channel_id, number_id) = h.channel_and_number().await;
    let shards = h.bus.config.shards;
    let publish = |params: Vec<(String, String)>| {
        let envelope = Envelope::new(event(&channel_id, params, shards));
        let publisher = h.bus.publisher();
        async move { publisher.publish_event(&envelope, true).await.unwrap() }
    };
    let mut unknown = params(&sid(1), "+5511900000301", &[("Body", "wrong\0 number")]);
    unknown.retain(|(k, _)| k != "To");
    unknown.push(("To".into(), "whatsapp:+14155550999".into()));
    publish(unknown.clone()).await;
    publish(unknown).await; // Twilio retried it: still one record.
    h.client()
        .update_number(switchboard_proto::session::v1::UpdateNumberRequest {
            id: number_id,
            active: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    publish(params(&sid(2), "+5511900000302", &[("Body", "number switched off")])).await;
    let listed = wait_for(WAIT, "both recorded", || async {
        let list = h
            .client()
            .list_unroutable_messages(switchboard_proto::session::v1::ListUnroutableMessagesRequest {
                channel_id: channel_id.clone(),
                limit: 10,
            })
            .await
            .unwrap()
            .into_inner()
            .messages;
        (list.len() >= 2).then_some(list)
    })
    .await;
    let summary: Vec<(&str, &str, &str)> = listed.iter().map(|m| (m.reason.as_str(), m.to.as_str(), m.body.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            ("inactive_number", BUSINESS, "number switched off"),
            ("unknown_number", "+14155550999", "wrong number")
        ]
    );
    assert_eq!(dead_letters(&h).await, 0, "nothing dead-lettered");
    assert!(inbound_bodies(&h).await.is_empty(), "no conversation message stored");
    h.stop().await;
}

/// The number an inbound message is addressed to is kept in process; a change made elsewhere
/// (another replica, or by hand in psql) reaches it through the trigger's NOTIFY.
#[tokio::test]
async fn a_number_switched_off_elsewhere_is_seen_by_the_next_messages() {
    let h = Harness::start(1).await;
    let (channel_id, number_id) = h.channel_and_number().await;
    let shards = h.bus.config.shards;
    let publish = |n: u32, body: String| {
        let envelope = Envelope::new(event(&channel_id, params(&sid(n), "+5511900000401", &[("Body", &body)]), shards));
        let publisher = h.bus.publisher();
        async move { publisher.publish_event(&envelope, true).await.unwrap() }
    };
    publish(1, "before".into()).await;
    wait_until(WAIT, "the first message stored (the number is cached live)", || async {
        inbound_bodies(&h).await == ["before"]
    })
    .await;
    sqlx::query("UPDATE session.numbers SET active = false WHERE id = $1::uuid")
        .bind(&number_id)
        .execute(&h.db.pool)
        .await
        .unwrap();
    // Each try is a new message; the first one taken after the NOTIFY is recorded, not stored.
    let recorded = |h: &Harness| {
        let mut client = h.client();
        let request = switchboard_proto::session::v1::ListUnroutableMessagesRequest {
            channel_id: channel_id.clone(),
            limit: 10,
        };
        async move {
            let list = client.list_unroutable_messages(request).await.unwrap().into_inner().messages;
            list.iter().any(|m| m.reason == "inactive_number")
        }
    };
    let mut n = 1;
    wait_until(WAIT, "a message to the switched-off number recorded as such", || {
        n += 1;
        let (publish, recorded) = (publish(n, format!("after {n}")), recorded(&h));
        async move {
            publish.await;
            recorded.await
        }
    })
    .await;
    h.stop().await;
}
