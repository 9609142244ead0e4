//! Property tests of the webhook parsers with arbitrary Twilio parameter values: nothing panics,
//! and whatever verifies holds no NUL, so everything ingress accepts can be stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

use proptest::prelude::*;
use switchboard_twilio::{Unverified, Verified, Webhook, signature};

const TOKEN: &str = "12345678901234567890123456789012";
const URL: &str = "https://hooks.example.com/twilio/inbound/ch";

fn encode(params: &[(String, String)]) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish().into_bytes()
}

/// Any text, NUL and other control characters included, weighted towards the troublesome.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z \\x00\\x01\\x1b\\u{7f}\\u{fffd}\\u{1F600}]{0,40}",
        Just("\0".to_owned()),
        Just(String::new()),
    ]
}

const OPTIONAL: [&str; 22] = [
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
    "ExternalUserId",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "MessagingServiceSid",
    "FlowData",
];

fn inbound_params() -> impl Strategy<Value = Vec<(String, String)>> {
    let fields: Vec<_> = OPTIONAL
        .iter()
        .map(|name| proptest::option::of(text()).prop_map(move |v| v.map(|v| ((*name).to_owned(), v))))
        .collect();
    (
        prop_oneof![
            Just("whatsapp:+5511987654321".to_owned()),
            text().prop_map(|t| format!("whatsapp:+1555{t}"))
        ],
        fields,
    )
        .prop_map(|(from, fields)| {
            let mut params = vec![
                ("MessageSid".to_owned(), format!("SM{:032x}", 7)),
                ("AccountSid".to_owned(), format!("AC{:032x}", 9)),
                ("From".to_owned(), from),
                ("To".to_owned(), "whatsapp:+14155550100".to_owned()),
            ];
            params.extend(fields.into_iter().flatten());
            params
        })
}

/// Sends `params` as Twilio would (form-encoded and signed) and verifies them as ingress does.
fn verified(params: &[(String, String)]) -> Webhook<Verified> {
    let body = encode(params);
    let signature = signature::compute(TOKEN, URL, &signature::form_params(&body));
    Webhook::<Unverified>::from_form(&body)
        .verify(TOKEN, URL, Some(&signature))
        .expect("signed with the token, so it verifies")
}

fn has_nul(value: &impl serde::Serialize) -> bool {
    serde_json::to_string(value).unwrap().contains("\\u0000")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_verified_inbound_webhook_parses_without_panicking_and_holds_no_nul(params in inbound_params()) {
        let webhook = verified(&params);
        prop_assert!(webhook.params().iter().all(|(k, v)| !k.contains('\0') && !v.contains('\0')));
        if let Ok(message) = webhook.inbound() {
            prop_assert!(!has_nul(&message), "{message:?}");
        }
        // The path session takes, from the parameters as a message on the bus carries them.
        prop_assert_eq!(Webhook::trusted(params).inbound().is_ok(), webhook.inbound().is_ok());
    }

    #[test]
    fn nul_is_removed_from_text_and_the_rest_is_kept(before in "[a-z ]{0,10}", after in "[a-z ]{0,10}") {
        let params = vec![
            ("MessageSid".to_owned(), format!("SM{:032x}", 1)),
            ("AccountSid".to_owned(), format!("AC{:032x}", 2)),
            ("From".to_owned(), "whatsapp:+5511987654321\0".to_owned()),
            ("To".to_owned(), "whatsapp:+14155550100".to_owned()),
            ("Body".to_owned(), format!("{before}\0{after}")),
            ("ProfileName".to_owned(), "\0Ana".to_owned()),
            ("ButtonText".to_owned(), "Y\0es".to_owned()),
        ];
        let message = verified(&params).inbound().unwrap();
        prop_assert_eq!(message.body, format!("{before}{after}"));
        prop_assert_eq!(message.profile_name.as_deref(), Some("Ana"));
        prop_assert_eq!(message.customer.key(), "+5511987654321");
        let button = message.button.and_then(|b| b.text);
        prop_assert_eq!(button.as_deref(), Some("Yes"));
    }

    #[test]
    fn a_verified_status_callback_parses_without_panicking_and_holds_no_nul(
        status in prop_oneof![Just("delivered".to_owned()), text()],
        code in proptest::option::of(prop_oneof![Just("63016".to_owned()), text()]),
        message in proptest::option::of(text()),
        channel in proptest::option::of(text()),
    ) {
        let mut params = vec![
            ("MessageSid".to_owned(), format!("SM{:032x}", 3)),
            ("AccountSid".to_owned(), format!("AC{:032x}", 4)),
            ("MessageStatus".to_owned(), status),
        ];
        params.extend(code.map(|c| ("ErrorCode".to_owned(), c)));
        params.extend(message.map(|m| ("ErrorMessage".to_owned(), m)));
        params.extend(channel.map(|m| ("ChannelStatusMessage".to_owned(), m)));
        if let Ok(callback) = verified(&params).status() {
            prop_assert!(!has_nul(&callback), "{callback:?}");
        }
    }

    #[test]
    fn any_form_body_decodes_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Webhook::<Unverified>::from_form(&body).verify(TOKEN, URL, Some("not a signature"));
    }
}
