use switchboard_proto::session::v1 as pb;
use switchboard_test_support::LogCapture;

use crate::harness::*;

#[tokio::test]
async fn the_auth_token_never_appears_in_a_response_or_a_log_line() {
    let logs = LogCapture::install();
    let h = Harness::start(1).await;
    let mut client = h.client();
    let channel = client
        .create_channel(pb::CreateChannelRequest {
            name: "Acme".into(),
            account_sid: ACCOUNT.into(),
            auth_token: TOKEN.into(),
            sandbox: true,
            sandbox_join_code: "shadow-horn".into(),
            skip_credential_check: false,
        })
        .await
        .unwrap()
        .into_inner();
    // Twilio out of reach is not the admin's fault: the channel is saved, and says it is unchecked.
    assert_eq!(channel.health, "unknown");
    assert!(
        channel.health_reason.contains("Twilio could not be reached"),
        "{}",
        channel.health_reason
    );
    // Every URL carries the connection overrides, so Twilio retries a webhook answered 5xx.
    let overrides = "#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx";
    assert_eq!(
        channel.inbound_url,
        format!("https://hooks.example.com/v1/twilio/{}/inbound{overrides}", channel.id)
    );
    assert_eq!(
        channel.status_url,
        format!("https://hooks.example.com/v1/twilio/{}/status{overrides}", channel.id)
    );
    assert_eq!(
        channel.fallback_url,
        format!("https://fallback.example.com/v1/twilio/{}/inbound{overrides}", channel.id)
    );
    assert!(channel.sandbox_notes.contains("join shadow-horn") && channel.sandbox_notes.contains("72 hours"));
    let rotated = "new0123456789abcdef0123456789abcd";
    let mut responses = vec![format!("{channel:?}")];
    responses.push(format!(
        "{:?}",
        client.get_channel(pb::GetByIdRequest { id: channel.id.clone() }).await.unwrap()
    ));
    responses.push(format!(
        "{:?}",
        client.list_channels(pb::ListChannelsRequest::default()).await.unwrap()
    ));
    let updated = client
        .update_channel(pb::UpdateChannelRequest {
            id: channel.id.clone(),
            auth_token: Some(rotated.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    responses.push(format!("{updated:?}"));
    // A bad token is refused without echoing it.
    let refused = client
        .update_channel(pb::UpdateChannelRequest {
            id: channel.id.clone(),
            auth_token: Some("short secret".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    responses.push(format!("{refused:?}"));
    for response in &responses {
        assert!(
            !response.contains(TOKEN) && !response.contains(rotated) && !response.contains("short secret"),
            "token leaked: {response}"
        );
    }
    // Only ResolveChannel (for ingress and sender) returns it, and it returns the new one.
    let resolved = directory(&h)
        .resolve_channel(pb::ResolveChannelRequest {
            channel_id: channel.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.auth_token, rotated);
    // Encryption-key rotation keeps tokens readable.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT auth_token_ciphertext FROM session.channels")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert!(
        !stored.windows(8).any(|w| rotated.as_bytes().windows(8).any(|r| r == w)),
        "stored encrypted"
    );
    h.stop().await;
    let captured = logs.contents();
    assert!(captured.contains("channel updated"), "logs were captured");
    assert!(
        !captured.contains(TOKEN) && !captured.contains(rotated),
        "a log line contains the token"
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_with_a_clear_error_and_changes_nothing() {
    let h = Harness::start(1).await;
    let mut client = h.client();
    let bad_sid = client
        .create_channel(pb::CreateChannelRequest {
            name: "x".into(),
            account_sid: "AC123".into(),
            auth_token: TOKEN.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_sid.code(), tonic::Code::InvalidArgument);
    assert!(bad_sid.message().contains("AC followed by 32 hex"));
    let (channel_id, number_id) = h.channel_and_number().await;
    let dup = client
        .create_channel(pb::CreateChannelRequest {
            name: "again".into(),
            account_sid: ACCOUNT.into(),
            auth_token: TOKEN.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    let bad_phone = client
        .create_number(pb::CreateNumberRequest {
            channel_id: channel_id.clone(),
            phone: "14155238886".into(),
            display_name: "x".into(),
            settings: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_phone.code(), tonic::Code::InvalidArgument);
    let too_big = pb::NumberSettings {
        default_language: "en".into(),
        max_attachment_bytes: 17 * 1024 * 1024,
        ..Default::default()
    };
    let refused = client
        .update_number(pb::UpdateNumberRequest {
            id: number_id.clone(),
            settings: Some(too_big),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(refused.message().contains("WhatsApp's limit"), "{refused:?}");
    let number = client
        .get_number(pb::GetByIdRequest { id: number_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(number.settings.unwrap().max_attachment_bytes, 5 * 1024 * 1024, "unchanged");
    let channel_in_use = client.delete_channel(pb::GetByIdRequest { id: channel_id }).await.unwrap_err();
    assert_eq!(channel_in_use.code(), tonic::Code::FailedPrecondition);
    assert!(channel_in_use.message().contains("delete them first"));
    let bad_template = client
        .create_template(pb::TemplateInput {
            number_id: number_id.clone(),
            name: "t".into(),
            default_language: "en".into(),
            localizations: vec![pb::TemplateLocalization {
                language: "en".into(),
                text: "Hi {{1}".into(),
                content_sid: String::new(),
                status: String::new(),
                ..Default::default()
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(bad_template.code(), tonic::Code::InvalidArgument);
    h.stop().await;
}

#[tokio::test]
async fn automated_messages_fall_back_from_number_to_channel_to_builtin() {
    let h = Harness::start(1).await;
    let mut client = h.client();
    let (channel_id, number_id) = h.channel_and_number().await;
    let list = |client: &mut Client, number: &str| {
        let mut client = client.clone();
        let (channel_id, number) = (channel_id.clone(), number.to_owned());
        async move {
            client
                .list_automated_messages(pb::ListAutomatedMessagesRequest {
                    channel_id,
                    number_id: number,
                })
                .await
                .unwrap()
                .into_inner()
                .messages
        }
    };
    let greeting = |messages: Vec<pb::AutomatedMessage>| messages.into_iter().find(|m| m.trigger == "greeting").unwrap();
    assert_eq!(greeting(list(&mut client, &number_id).await).source, "builtin");
    client
        .set_automated_message(pb::AutomatedMessage {
            channel_id: channel_id.clone(),
            trigger: "greeting".into(),
            text: "Hi from Acme".into(),
            active: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let g = greeting(list(&mut client, &number_id).await);
    assert_eq!((g.source.as_str(), g.text.as_str()), ("channel", "Hi from Acme"));
    client
        .set_automated_message(pb::AutomatedMessage {
            channel_id: channel_id.clone(),
            number_id: number_id.clone(),
            trigger: "greeting".into(),
            text: "Support line".into(),
            active: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let g = greeting(list(&mut client, &number_id).await);
    assert_eq!((g.source.as_str(), g.active), ("number", false));
    // The deactivated greeting is not sent to a new customer.
    h.inbound(&channel_id, &sid(1), "+5511900000001", "hello", &[]).await;
    switchboard_test_support::wait_until(WAIT, "conversation", || async { !h.conversations().await.is_empty() }).await;
    let conversation = h.conversations().await.remove(0);
    assert!(h.messages(&conversation.id).await.iter().all(|m| m.author_kind != "automated"));
    let unknown = client
        .set_automated_message(pb::AutomatedMessage {
            channel_id,
            trigger: "welcome".into(),
            text: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(unknown.message().contains("greeting"));
    h.stop().await;
}

async fn new_channel(client: &mut Client, name: &str, account: &str, token: &str) -> String {
    client
        .create_channel(pb::CreateChannelRequest {
            name: name.into(),
            account_sid: account.into(),
            auth_token: token.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn resolve(h: &Harness, id: &str) -> Result<String, tonic::Status> {
    directory(h)
        .resolve_channel(pb::ResolveChannelRequest { channel_id: id.into() })
        .await
        .map(|r| r.into_inner().auth_token)
}

#[tokio::test]
async fn a_token_moved_to_another_channel_does_not_decrypt_there_and_rotation_binds_older_rows() {
    let h = Harness::start(1).await;
    let mut client = h.client();
    let other = "other0123456789abcdef0123456789ab";
    let a = new_channel(&mut client, "A", ACCOUNT, TOKEN).await;
    let b = new_channel(&mut client, "B", "AC00000000000000000000000000000b0b", other).await;
    assert_eq!(resolve(&h, &b).await.unwrap(), other);

    // Someone who can write the table copies A's sealed token into B's row.
    sqlx::query(
        "UPDATE session.channels b SET auth_token_ciphertext = a.auth_token_ciphertext, auth_token_key_id = a.auth_token_key_id \
         FROM session.channels a WHERE a.id = $1::uuid AND b.id = $2::uuid",
    )
    .bind(&a)
    .bind(&b)
    .execute(&h.db.pool)
    .await
    .unwrap();
    let refused = resolve(&h, &b).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Internal, "{refused:?}");
    assert!(!refused.message().contains(TOKEN));
    assert_eq!(resolve(&h, &a).await.unwrap(), TOKEN, "A's own row still opens");

    // A row sealed before tokens were bound to their row (no associated data) still opens, and
    // rotation re-seals it bound.
    let key = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7u8; 32]).unwrap());
    let nonce = [3u8; ring::aead::NONCE_LEN];
    let mut legacy = other.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        ring::aead::Aad::empty(),
        &mut legacy,
    )
    .unwrap();
    let legacy = [nonce.to_vec(), legacy].concat();
    sqlx::query(
        "UPDATE session.channels SET auth_token_ciphertext = $2, auth_token_key_id = 'k1', auth_token_bound = false WHERE id = $1::uuid",
    )
    .bind(&b)
    .bind(&legacy)
    .execute(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(resolve(&h, &b).await.unwrap(), other);
    let rotated = client
        .rotate_token_encryption(switchboard_proto::common::v1::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.reencrypted, 1, "only the unbound row");
    let (bound, stored): (bool, Vec<u8>) =
        sqlx::query_as("SELECT auth_token_bound, auth_token_ciphertext FROM session.channels WHERE id = $1::uuid")
            .bind(&b)
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
    assert!(bound && stored != legacy);
    assert_eq!(resolve(&h, &b).await.unwrap(), other);
    h.stop().await;
}
