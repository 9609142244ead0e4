//! The emulator posts customer webhooks as Twilio does: retried only when the URL's connection
//! overrides say so, every attempt signed over the URL without its fragment; once the inbound URL
//! has failed, the number's fallback URL is requested with `ErrorCode` and `ErrorUrl`; a Webhooks
//! API Rule matching the URL signs with its Setting's SharedKey and retries as its connection says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use switchboard_domain::ManualClock;
use switchboard_test_support::bind_local;
use switchboard_twilio_emulator::{AccountSetup, CustomerMessage, Emulator, NumberSetup};

const ACCOUNT: &str = "AC33333333333333333333333333333333";
const TOKEN: &str = "emulated0123456789abcdef01234567";

/// One request's form parameters.
type Form = Vec<(String, String)>;

/// One request's `X-Twilio-Signature` and `X-Twilio-Webhooks-Signature-Settings`.
type Signed = (String, Option<String>);

/// Answers 503 to the first `fail` requests, then 200; keeps (signature valid, idempotency token).
#[derive(Clone)]
struct Flaky {
    fail: u32,
    seen: Arc<AtomicU32>,
    log: Arc<Mutex<Vec<(bool, String)>>>,
    params: Arc<Mutex<Vec<Form>>>,
    signatures: Arc<Mutex<Vec<Signed>>>,
    url: String,
}

async fn hook(State(f): State<Flaky>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let params = switchboard_twilio::signature::form_params(&body);
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = headers
        .get("i-twilio-idempotency-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let valid = switchboard_twilio::signature::validate(TOKEN, &f.url, &params, signature);
    f.log.lock().unwrap().push((valid, token));
    f.params.lock().unwrap().push(params);
    let settings = headers
        .get(switchboard_twilio::shared_key::SETTINGS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    f.signatures.lock().unwrap().push((signature.to_owned(), settings));
    if f.seen.fetch_add(1, Ordering::SeqCst) < f.fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn flaky(fail: u32) -> Flaky {
    let listener = bind_local().await;
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let state = Flaky {
        fail,
        seen: Arc::new(AtomicU32::new(0)),
        log: Arc::new(Mutex::new(Vec::new())),
        params: Arc::new(Mutex::new(Vec::new())),
        signatures: Arc::new(Mutex::new(Vec::new())),
        url,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    state
}

fn emulator(inbound_url: &str) -> Emulator {
    emulator_with_fallback(inbound_url, None)
}

fn emulator_with_fallback(inbound_url: &str, fallback_url: Option<&str>) -> Emulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let em = Emulator::new("http://127.0.0.1:9", "http://127.0.0.1:9", Arc::new(ManualClock::new())).unwrap();
    em.setup_account(AccountSetup {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        numbers: vec![NumberSetup {
            phone: "+14155550100".into(),
            inbound_url: inbound_url.into(),
            fallback_url: fallback_url.map(str::to_owned),
        }],
        sandbox_join_code: None,
        templates: None,
    });
    em
}

fn hello() -> CustomerMessage {
    CustomerMessage {
        from: "+5511900000001".into(),
        to: "+14155550100".into(),
        body: "hello".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_503_is_retried_only_when_the_url_carries_overrides_and_every_attempt_verifies() {
    // Without overrides (Twilio's default): one attempt, the 503 stands.
    let plain = flaky(2).await;
    let result = emulator(&plain.url).customer_message(hello()).await.unwrap();
    assert_eq!((result.webhook_status, result.webhook_attempts), (503, 1));

    // With Switchboard's overrides: retried on 5xx until it succeeds.
    let retried = flaky(2).await;
    let url = format!("{}#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx", retried.url);
    let result = emulator(&url).customer_message(hello()).await.unwrap();
    assert_eq!((result.webhook_status, result.webhook_attempts), (200, 3));
    let log = retried.log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|(valid, _)| *valid), "signed over the URL without its fragment");
    assert!(
        log.iter().all(|(_, token)| *token == log[0].1),
        "one idempotency token for every attempt"
    );

    // The retry count is a limit: rc=1 gives up after two attempts.
    let limited = flaky(5).await;
    let url = format!("{}#rc=1&rp=5xx", limited.url);
    let result = emulator(&url).customer_message(hello()).await.unwrap();
    assert_eq!((result.webhook_status, result.webhook_attempts), (503, 2));
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_failed_inbound_url_sends_the_webhook_to_the_fallback_url_with_the_error() {
    // The inbound URL answers 503 to its two attempts; the fallback URL takes it.
    let primary = flaky(u32::MAX).await;
    let fallback = flaky(0).await;
    let inbound = format!("{}#rc=1&rp=5xx", primary.url);
    let em = emulator_with_fallback(&inbound, Some(&fallback.url));
    let result = em.customer_message(hello()).await.unwrap();
    assert_eq!(
        (result.webhook_status, result.webhook_attempts, result.webhook_fallback),
        (200, 3, true)
    );
    let tried = primary.params.lock().unwrap().clone();
    let got = fallback.params.lock().unwrap().clone();
    assert_eq!((tried.len(), got.len()), (2, 1));
    assert_eq!(param(&got[0], "MessageSid"), Some(result.message_sid.as_str()));
    assert_eq!(param(&got[0], "Body"), Some("hello"));
    assert_eq!(param(&got[0], "ErrorCode"), Some("11200"), "an HTTP error answer");
    assert_eq!(
        param(&got[0], "ErrorUrl"),
        Some(primary.url.as_str()),
        "the failed URL, no fragment"
    );
    assert_eq!(param(&tried[0], "ErrorCode"), None, "the primary request names no error");
    assert!(fallback.log.lock().unwrap()[0].0, "signed over the fallback URL");

    // A primary nobody listens on: a connection failure, 11205. The port stays bound (without
    // listening, so connections are refused) for the whole check: a port freed by dropping a
    // listener can be taken by another test running at the same time, which then answers.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = format!("http://{}/gone", reserved.local_addr().unwrap());
    let fallback = flaky(0).await;
    let em = emulator_with_fallback(&closed, Some(&fallback.url));
    let result = em.customer_message(hello()).await.unwrap();
    assert!(result.webhook_fallback && result.webhook_status == 200, "{result:?}");
    let got = fallback.params.lock().unwrap().clone();
    assert_eq!(param(&got[0], "ErrorCode"), Some("11205"));
    drop(reserved);

    // A primary that takes it: the fallback is never asked.
    let fine = flaky(0).await;
    let fallback = flaky(0).await;
    let result = emulator_with_fallback(&fine.url, Some(&fallback.url))
        .customer_message(hello())
        .await
        .unwrap();
    assert!(!result.webhook_fallback, "{result:?}");
    assert!(fallback.params.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_webhooks_api_rule_signs_with_its_shared_key_and_its_connection_overrides_the_url() {
    // A URL without overrides: alone, Twilio would not retry its 503s.
    let hook = flaky(2).await;
    let em = emulator(&hook.url);
    let listener = bind_local().await;
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = switchboard_twilio_emulator::router(em.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let twilio = switchboard_twilio::TwilioClient::new(&base, &base, std::time::Duration::from_secs(5))
        .unwrap()
        .with_webhooks_base(&base);
    let creds = switchboard_twilio::Credentials::account(ACCOUNT, TOKEN.to_owned().into());
    use switchboard_twilio::webhooks_config::{ConnectionSetting, NewSetting, Rule, SignatureSetting};
    let key = twilio.create_shared_key(&creds, "test").await.unwrap();
    let connection = ConnectionSetting::from_overrides(&switchboard_twilio::overrides::ConnectionOverrides::switchboard());
    let setting = NewSetting {
        friendly_name: None,
        description: None,
        auth: serde_json::json!({ "source": "INLINE", "value": { "scheme": "NONE" } }),
        signature: Some(SignatureSetting {
            kind: "SHARED_KEY".into(),
            shared_key_id: Some(key.id.clone()),
            algorithm: Some("HMAC_SHA256".into()),
        }),
        connection: Some(connection),
    };
    let setting = twilio.create_setting(&creds, &setting).await.unwrap();
    let prefix = format!("{}/", hook.url.rsplit_once('/').unwrap().0);
    let change = twilio
        .create_rule(&creds, &Rule::prefix("test", &prefix, &setting.id))
        .await
        .unwrap();
    assert!(change.operation.completed(), "{change:?}");
    // In use: neither the key nor the Setting can be deleted.
    let refused = twilio.delete_shared_key(&creds, &key.id).await.unwrap_err();
    assert!(
        matches!(refused, switchboard_twilio::TwilioError::Api { status: 409, .. }),
        "{refused:?}"
    );

    let result = em.customer_message(hello()).await.unwrap();
    assert_eq!((result.webhook_status, result.webhook_attempts), (200, 3), "retried on 5xx");
    let params = hook.params.lock().unwrap()[0].clone();
    for (signature, settings) in hook.signatures.lock().unwrap().iter() {
        assert_eq!(settings.as_deref(), Some(format!("key={},algorithm=HMAC_SHA256", key.id).as_str()));
        use secrecy::ExposeSecret as _;
        let expected = switchboard_twilio::shared_key::compute(
            switchboard_twilio::shared_key::Algorithm::HmacSha256,
            key.secret.expose_secret(),
            &hook.url,
            &params,
        );
        assert_eq!(signature, &expected);
    }
    assert!(
        hook.log.lock().unwrap().iter().all(|(token_valid, _)| !token_valid),
        "not signed with the auth token"
    );
}
