//! Tests of webhook parsing, on real captured payloads and Twilio's documented parameters.

use super::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const URL: &str = "https://cc.example.com/twilio/whatsapp/inbound";
const SID: &str = "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const AC: &str = "AC11111111111111111111111111111111";

fn signed(pairs: &[(&str, &str)]) -> (Vec<u8>, String) {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let sig = signature::compute(TOKEN, URL, &signature::form_params(body.as_bytes()));
    (body.into_bytes(), sig)
}

fn base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("MessageSid", SID),
        ("AccountSid", AC),
        ("From", "whatsapp:+5511987654321"),
        ("To", "whatsapp:+14155238886"),
    ];
    v.extend_from_slice(extra);
    v
}

fn parse(pairs: &[(&str, &str)]) -> Result<InboundMessage, WebhookError> {
    let (body, sig) = signed(pairs);
    Webhook::from_form(&body)
        .verify(TOKEN, URL, Some(&sig))
        .expect("signature")
        .inbound()
}

#[test]
fn nothing_is_parsed_without_a_valid_signature() {
    let (body, sig) = signed(&base(&[("Body", "hi")]));
    assert_eq!(
        Webhook::from_form(&body).verify(TOKEN, URL, None).unwrap_err(),
        SignatureError::Missing
    );
    assert_eq!(
        Webhook::from_form(&body).verify(TOKEN, URL, Some("bogus=")).unwrap_err(),
        SignatureError::Mismatch
    );
    assert_eq!(
        Webhook::from_form(&body).verify("other-token", URL, Some(&sig)).unwrap_err(),
        SignatureError::Mismatch
    );
    assert!(Webhook::from_form(&body).verify(TOKEN, URL, Some(&sig)).is_ok());
}

#[test]
fn text_message() {
    let m = parse(&base(&[
        ("Body", "Olá 😊"),
        ("ProfileName", "Ana María"),
        ("WaId", "5511987654321"),
        ("MessageType", "text"),
        ("NumMedia", "0"),
    ]))
    .unwrap();
    assert_eq!(m.body, "Olá 😊");
    assert_eq!(m.customer.key(), "+5511987654321");
    assert_eq!(m.to.as_str(), "+14155238886");
    assert_eq!(m.profile_name.as_deref(), Some("Ana María"));
    assert!(m.media.is_empty() && m.location.is_none() && m.button.is_none());
}

#[test]
fn image_with_media_list() {
    let url = "https://api.twilio.com/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages/MMx/Media/MEx";
    let m = parse(&base(&[
        ("Body", ""),
        ("NumMedia", "1"),
        ("MediaUrl0", url),
        ("MediaContentType0", "image/jpeg"),
        ("MessageType", "image"),
    ]))
    .unwrap();
    assert_eq!(
        m.media,
        vec![Media {
            url: url.into(),
            content_type: "image/jpeg".into()
        }]
    );
    assert_eq!(
        parse(&base(&[("NumMedia", "2"), ("MediaUrl0", url)])).unwrap_err(),
        invalid("MediaUrl1", "missing for NumMedia")
    );
    assert!(parse(&base(&[("NumMedia", "1"), ("MediaUrl0", "http://evil.example/x")])).is_err());
    assert!(parse(&base(&[("NumMedia", "1"), ("MediaUrl0", "http://127.0.0.1.evil.example/x")])).is_err());
    assert!(parse(&base(&[("NumMedia", "1"), ("MediaUrl0", "http://localhost@evil.example/x")])).is_err());
    assert!(parse(&base(&[("NumMedia", "1"), ("MediaUrl0", "http://127.0.0.1:8089/2010-04-01/x")])).is_ok());
    assert!(parse(&base(&[("NumMedia", "11")])).is_err());
}

#[test]
fn location_with_empty_body() {
    let m = parse(&base(&[
        ("Body", ""),
        ("Latitude", "37.7879277"),
        ("Longitude", "-122.3937508"),
        ("Address", "375 Beale St"),
        ("Label", "Twilio Inc"),
    ]))
    .unwrap();
    let loc = m.location.unwrap();
    assert!((loc.latitude - 37.787_927_7).abs() < 1e-9);
    assert_eq!(loc.label.as_deref(), Some("Twilio Inc"));
    assert!(m.body.is_empty());
    assert!(parse(&base(&[("Latitude", "91"), ("Longitude", "0")])).is_err());
    assert!(parse(&base(&[("Latitude", "1")])).is_err());
}

#[test]
fn button_reply_quoting_our_message_with_bsuid_and_messaging_service() {
    let m = parse(&base(&[
        ("Body", "Konfirmasi"),
        ("ButtonText", "Konfirmasi"),
        ("ButtonPayload", "{verifyEmail:asd@asd.com}"),
        ("MessageType", "interactive"),
        ("OriginalRepliedMessageSid", "MM5cc4aaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("OriginalRepliedMessageSender", "whatsapp:+14155238886"),
        ("ExternalUserId", "whatsapp:ID.4566546130240823"),
        ("MessagingServiceSid", "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("ReferralNumMedia", "0"),
    ]))
    .unwrap();
    let button = m.button.unwrap();
    assert_eq!(button.payload.as_deref(), Some("{verifyEmail:asd@asd.com}"));
    assert_eq!(m.replied_to.unwrap().message_sid, "MM5cc4aaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(m.customer.key(), "ID.4566546130240823");
    assert_eq!(m.customer.phone().unwrap().as_str(), "+5511987654321");
    assert!(m.referral.is_none(), "ReferralNumMedia=0 alone is no referral");
    // The Messaging Service changes nothing about who the customer is.
    let without = parse(&base(&[("Body", "Konfirmasi"), ("ExternalUserId", "whatsapp:ID.4566546130240823")])).unwrap();
    assert_eq!(without.customer, m.customer);
}

#[test]
fn referral_from_an_ad() {
    let m = parse(&base(&[
        ("ReferralSourceType", "ad"),
        ("ReferralCtwaClid", "abc"),
        ("ReferralHeadline", "Sale"),
    ]))
    .unwrap();
    assert_eq!(m.referral.unwrap().ctwa_clid.as_deref(), Some("abc"));
}

#[test]
fn missing_or_malformed_required_fields() {
    assert_eq!(
        parse(&[
            ("AccountSid", AC),
            ("From", "whatsapp:+5511987654321"),
            ("To", "whatsapp:+14155238886")
        ])
        .unwrap_err(),
        WebhookError::Missing("MessageSid")
    );
    assert!(matches!(
        parse(
            &base(&[])
                .into_iter()
                .map(|(k, v)| if k == "MessageSid" { (k, "SM123") } else { (k, v) })
                .collect::<Vec<_>>()
        ),
        Err(WebhookError::Invalid { .. })
    ));
    let sms = base(&[])
        .into_iter()
        .map(|(k, v)| if k == "From" { (k, "+5511987654321") } else { (k, v) })
        .collect::<Vec<_>>();
    assert!(matches!(parse(&sms), Err(WebhookError::Invalid { name, .. }) if name == "From"));
    assert!(parse(&base(&[("NumMedia", "x")])).is_err());
}

#[test]
fn status_callbacks() {
    let (body, sig) = signed(&[
        ("MessageSid", SID),
        ("AccountSid", AC),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "63016"),
        ("ErrorMessage", ""),
    ]);
    let s = Webhook::from_form(&body).verify(TOKEN, URL, Some(&sig)).unwrap().status().unwrap();
    assert_eq!(s.status, "undelivered");
    assert_eq!(s.error_code, Some(63016));
    assert_eq!(s.error_message, None, "empty ErrorMessage is absent");
    let (body, sig) = signed(&[("MessageSid", SID), ("AccountSid", AC)]);
    assert_eq!(
        Webhook::from_form(&body)
            .verify(TOKEN, URL, Some(&sig))
            .unwrap()
            .status()
            .unwrap_err(),
        WebhookError::Missing("MessageStatus")
    );
    let (body, sig) = signed(&[
        ("MessageSid", SID),
        ("AccountSid", AC),
        ("MessageStatus", "read"),
        ("ErrorCode", "abc"),
    ]);
    assert!(Webhook::from_form(&body).verify(TOKEN, URL, Some(&sig)).unwrap().status().is_err());
}
