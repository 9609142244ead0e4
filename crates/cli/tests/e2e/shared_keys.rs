//! Webhooks signed with a SharedKey (#21 item 4b): ingress verifies `X-Twilio-Webhooks-Signature-
//! Settings` with the channel's keys, keeps several so a rotation refuses nothing, refuses an
//! unknown key (500, so Twilio retries) and an unknown algorithm (403); twilio-python's
//! RequestValidator agrees with every signature ingress accepted.

use serde_json::{Value, json};
use switchboard_twilio_emulator::{AccountSetup, NumberSetup, SharedKeySetup};

use crate::harness::*;

const ONE: &str = "webhooks_sharedkey_one";
const TWO: &str = "webhooks_sharedkey_two";
const SECRET_ONE: &str = "s3cret-one-0123456789abcdef";
const SECRET_TWO: &str = "s3cret-two-0123456789abcdef";

fn signer(key: &str, secret: &str, algorithm: &str) -> Option<SharedKeySetup> {
    Some(SharedKeySetup {
        key: key.into(),
        secret: secret.into(),
        algorithm: algorithm.into(),
    })
}

/// Asks twilio-python whether the journaled webhook `sid` carries a valid signature for `secret`.
async fn python_agrees(w: &World, sid: &str, secret: &str) -> String {
    python_agrees_at(w, &w.stack.urls.public_base_url, sid, secret).await
}

/// Like [`python_agrees`], for a webhook Twilio sent to the ingress at `base`.
async fn python_agrees_at(w: &World, base: &str, sid: &str, secret: &str) -> String {
    // The journal is written after the answer, in batches: wait for the row.
    let (kind, params, headers): (String, Value, Value) = switchboard_test_support::wait_for(WAIT, "the journaled webhook", || async {
        sqlx::query_as("SELECT kind, params, headers FROM ingress.webhook_journal WHERE message_sid = $1 ORDER BY received_at LIMIT 1")
            .bind(sid)
            .fetch_optional(&w.db.pool)
            .await
            .unwrap()
    })
    .await;
    let header = |name: &str| {
        headers
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].clone())
            .unwrap_or(Value::Null)
    };
    let request = json!({
        "url": format!("{base}/v1/twilio/{}/{kind}", w.channel_id),
        "params": params,
        "signature": header("x-twilio-signature"),
        "settings": header("x-twilio-webhooks-signature-settings"),
        "secret": secret,
    });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/twilio-venv/bin/python");
    assert!(python.exists(), "twilio-python is missing: run scripts/ensure-services.sh");
    let mut child = tokio::process::Command::new(python)
        .arg(root.join("scripts/twilio_signature_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt as _;
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Posts a webhook with no MessageSid (never storable) to ingress, signed with `secret` as
/// HMAC-SHA256 and naming `key` and `algorithm`; returns the status and body.
async fn crafted(w: &World, key: &str, secret: &str, algorithm: &str) -> (u16, String) {
    let path = format!("/v1/twilio/{}/inbound", w.channel_id);
    let params = vec![("AccountSid".to_owned(), ACCOUNT.to_owned()), ("Body".to_owned(), "x".to_owned())];
    let signature = switchboard_twilio::shared_key::compute(
        switchboard_twilio::shared_key::Algorithm::HmacSha256,
        secret,
        &format!("{}{path}", w.stack.urls.public_base_url),
        &params,
    );
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", w.stack.urls.ingress))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .header("x-twilio-webhooks-signature-settings", format!("key={key},algorithm={algorithm}"))
        .body(form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish())
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

async fn customer(w: &World, body: &str) -> Value {
    let emulator = switchboard_cli::client::ApiClient::new(w.stack.urls.emulator.as_ref().unwrap(), None).unwrap();
    emulator
        .post(
            "/emulator/customers/messages",
            &json!({ "from": "+5511977770001", "to": BUSINESS, "body": body }),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn webhooks_signed_with_shared_keys_verify_through_a_rotation() {
    let w = World::start().await;
    let keys = format!("/channels/{}/webhook-keys", w.channel_id);
    let added = w.admin.post(&keys, &json!({ "key": ONE, "secret": SECRET_ONE })).await.unwrap();
    assert_eq!(added["key"], ONE);
    let listed = w.admin.get(&keys).await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(SECRET_ONE), "secrets are write-only: {listed}");
    // Bad input changes nothing.
    let (status, _) = raw(
        reqwest::Method::POST,
        format!("{}/api/v1{keys}", w.stack.urls.api),
        None,
        Some(&json!({ "key": TWO, "secret": "short" }).to_string()),
    )
    .await;
    assert_eq!(status, 401, "admins only");
    let short = w.admin.post(&keys, &json!({ "key": TWO, "secret": "short" })).await.unwrap_err();
    assert!(short.to_string().contains("16 to 256"), "{short}");
    assert!(
        w.admin.post(&keys, &json!({ "key": ONE, "secret": SECRET_ONE })).await.is_err(),
        "no duplicate"
    );

    // Twilio signs with key one (HMAC-SHA256): the message is stored and offered.
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    assert!(w.emulator().set_shared_key(ACCOUNT, signer(ONE, SECRET_ONE, "HMAC_SHA256")));
    let first = customer(&w, "signed with key one").await;
    assert_eq!(first["webhook_status"], 200, "{first}");
    let offer = ana.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    accept(&w.ana, &offer).await;
    let sid = first["message_sid"].as_str().unwrap();
    assert_eq!(python_agrees(&w, sid, SECRET_ONE).await, "valid HMAC_SHA256");
    assert_eq!(
        python_agrees(&w, sid, SECRET_TWO).await,
        "invalid HMAC_SHA256",
        "the check can fail"
    );

    // Rotation: key two is added, Twilio switches to it (HMAC-SHA1 this time), key one goes.
    w.admin.post(&keys, &json!({ "key": TWO, "secret": SECRET_TWO })).await.unwrap();
    assert!(w.emulator().set_shared_key(ACCOUNT, signer(TWO, SECRET_TWO, "HMAC_SHA1")));
    let second = customer(&w, "signed with key two").await;
    assert_eq!(second["webhook_status"], 200, "{second}");
    assert_eq!(
        python_agrees(&w, second["message_sid"].as_str().unwrap(), SECRET_TWO).await,
        "valid HMAC_SHA1"
    );
    w.admin.call(reqwest::Method::DELETE, &format!("{keys}/{ONE}"), None).await.unwrap();
    // The agent's reply goes out; its status callbacks, signed with key two, are taken.
    let conversation = offer["data"]["conversation_id"].as_str().unwrap();
    let path = format!("/conversations/{conversation}/messages");
    w.ana
        .api
        .post(&path, &json!({ "text": "rotated fine", "client_message_id": "rotated" }))
        .await
        .unwrap();
    switchboard_test_support::wait_until(WAIT, "the reply read", || async {
        let messages = w.ana.api.get(&path).await.unwrap();
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "rotated fine" && m["status"] == "read")
    })
    .await;

    // Once ingress's cached copy of the channel expires (5 s), a webhook signed with the removed
    // key is refused with a 5xx (so Twilio may retry it): probed with a body that could never be
    // stored, then through the emulator.
    switchboard_test_support::wait_until(WAIT, "the removed key refused", || async {
        crafted(&w, ONE, SECRET_ONE, "HMAC_SHA256").await.0 == 500
    })
    .await;
    assert!(w.emulator().set_shared_key(ACCOUNT, signer(ONE, SECRET_ONE, "HMAC_SHA256")));
    let stale = customer(&w, "signed with the old key").await;
    assert_eq!(stale["webhook_status"], 500, "{stale}");

    // An algorithm ingress does not know is refused outright.
    let (status, text) = crafted(&w, TWO, SECRET_TWO, "HMAC_SHA512").await;
    assert_eq!(status, 403);
    assert!(text.contains("unsupported"), "{text}");
    // The right key and algorithm verify (then fail as a webhook without a MessageSid).
    assert_eq!(crafted(&w, TWO, SECRET_TWO, "HMAC_SHA256").await.0, 400);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM session.messages WHERE direction = 'inbound'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 2, "only the two verified messages were stored");
    ana.close().await;
    w.stop().await;
}

/// The keys the channel holds, by id.
async fn held_keys(w: &World) -> Vec<String> {
    let keys = w.admin.get(&format!("/channels/{}/webhook-keys", w.channel_id)).await.unwrap();
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect()
}

fn secret_of(w: &World, key: &str) -> String {
    let keys = w.emulator().webhooks_shared_keys(ACCOUNT);
    keys.into_iter()
        .find(|(id, _)| id == key)
        .map(|(_, s)| s)
        .expect("the key at Twilio")
}

#[tokio::test]
async fn switchboard_sets_up_and_rotates_shared_key_signing_through_twilios_webhooks_api() {
    let w = World::start().await;
    let signing = format!("/channels/{}/webhook-signing", w.channel_id);
    assert_eq!(w.admin.get(&signing).await.unwrap()["configured"], false);
    // Bad input is refused and changes nothing, here or at Twilio.
    let bad = w.admin.post(&signing, &json!({ "algorithm": "HMAC_MD5" })).await.unwrap_err();
    assert!(bad.to_string().contains("HMAC_SHA256"), "{bad}");
    assert_eq!(w.admin.get(&signing).await.unwrap()["configured"], false);
    assert!(w.emulator().webhooks_shared_keys(ACCOUNT).is_empty());

    // Set up: Twilio makes the key (its secret kept here, sealed), a Setting and the Rule.
    let first = w.admin.post(&signing, &json!({})).await.unwrap();
    assert_eq!(first["configured"], true, "{first}");
    assert_eq!(first["algorithm"], "HMAC_SHA256");
    assert_eq!(
        first["operation_id"],
        Value::Null,
        "the emulator propagates at once by default: {first}"
    );
    assert_eq!(
        first["prefix"],
        format!("{}/v1/twilio/{}/", w.stack.urls.public_base_url, w.channel_id)
    );
    let one = first["key"].as_str().unwrap().to_owned();
    assert!(one.starts_with("webhooks_sharedkey_"), "{one}");
    assert_eq!(held_keys(&w).await, vec![one.clone()]);
    let secret_one = secret_of(&w, &one);
    assert!(!first.to_string().contains(&secret_one), "the secret never leaves: {first}");
    // The key Twilio signs with cannot be removed by hand.
    let in_use = w
        .admin
        .call(
            reqwest::Method::DELETE,
            &format!("/channels/{}/webhook-keys/{one}", w.channel_id),
            None,
        )
        .await
        .unwrap_err();
    assert!(in_use.to_string().contains("rotate"), "{in_use}");
    let signed = customer(&w, "signed with the key Switchboard made").await;
    assert_eq!(signed["webhook_status"], 200, "{signed}");
    let sid = signed["message_sid"].as_str().unwrap();
    assert_eq!(python_agrees(&w, sid, &secret_one).await, "valid HMAC_SHA256");

    // Rotation, with Twilio's propagation delay: the change is not live at once.
    w.emulator().set_webhooks_propagation(std::time::Duration::from_secs(3));
    let second = w.admin.post(&signing, &json!({ "algorithm": "HMAC_SHA1" })).await.unwrap();
    let two = second["key"].as_str().unwrap().to_owned();
    assert_ne!(two, one);
    assert_eq!(second["operation_status"], "RUNNING", "{second}");
    assert_eq!(second["retiring_key"], one.as_str());
    assert_eq!(held_keys(&w).await, [one.clone(), two.clone()]);
    // A further change while this one propagates is refused, and changes nothing.
    let busy = w.admin.post(&signing, &json!({})).await.unwrap_err();
    assert!(busy.to_string().contains("still propagating"), "{busy}");
    assert_eq!(held_keys(&w).await.len(), 2);
    assert_eq!(w.emulator().webhooks_shared_keys(ACCOUNT).len(), 2);
    // Meanwhile Twilio still signs with the old key, which still verifies.
    let during = customer(&w, "while the change propagates").await;
    assert_eq!(during["webhook_status"], 200, "{during}");
    let during_sid = during["message_sid"].as_str().unwrap();
    assert_eq!(python_agrees(&w, during_sid, &secret_one).await, "valid HMAC_SHA256");

    // Once live, the channel's health check retires the old Setting and key, at Twilio and here.
    let check = format!("/channels/{}/health-check", w.channel_id);
    switchboard_test_support::wait_until(WAIT, "the rotation settled", || async {
        w.admin.post(&check, &json!({})).await.unwrap();
        w.admin.get(&signing).await.unwrap()["retiring_key"].is_null()
    })
    .await;
    assert_eq!(held_keys(&w).await, vec![two.clone()]);
    let at_twilio: Vec<String> = w.emulator().webhooks_shared_keys(ACCOUNT).into_iter().map(|(id, _)| id).collect();
    assert_eq!(at_twilio, vec![two.clone()]);
    assert_eq!(
        w.emulator().webhooks_settings(ACCOUNT),
        [second["setting_id"].as_str().unwrap().to_owned()]
    );
    let after = customer(&w, "after the rotation").await;
    assert_eq!(after["webhook_status"], 200, "{after}");
    let after_sid = after["message_sid"].as_str().unwrap();
    assert_eq!(python_agrees(&w, after_sid, &secret_of(&w, &two)).await, "valid HMAC_SHA1");
    assert_eq!(
        python_agrees(&w, after_sid, &secret_one).await,
        "invalid HMAC_SHA1",
        "the check can fail"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_rotation_twilio_fails_to_propagate_keeps_the_old_key_and_removes_the_new_one() {
    let w = World::start().await;
    let signing = format!("/channels/{}/webhook-signing", w.channel_id);
    let first = w.admin.post(&signing, &json!({})).await.unwrap();
    let one = first["key"].as_str().unwrap().to_owned();
    let setting = first["setting_id"].as_str().unwrap().to_owned();

    // Twilio accepts the Rule change, then fails it: the Rule keeps the old Setting.
    w.emulator().fail_webhook_changes(true);
    let failed = w.admin.post(&signing, &json!({ "algorithm": "HMAC_SHA1" })).await.unwrap();
    assert_eq!(failed["key"], one.as_str(), "still signing with the old key: {failed}");
    assert_eq!(failed["setting_id"], setting.as_str());
    assert_eq!(failed["operation_status"], "FAILED", "{failed}");
    assert!(failed["retiring_key"].is_null(), "{failed}");
    assert!(failed["last_error"].as_str().unwrap_or_default().contains("failed"), "{failed}");
    // The new key and Setting are gone, here and at Twilio.
    assert_eq!(held_keys(&w).await, vec![one.clone()]);
    let at_twilio: Vec<String> = w.emulator().webhooks_shared_keys(ACCOUNT).into_iter().map(|(id, _)| id).collect();
    assert_eq!(at_twilio, vec![one.clone()]);
    assert_eq!(w.emulator().webhooks_settings(ACCOUNT), vec![setting]);
    // Webhooks still verify, signed with the old key.
    let still = customer(&w, "after a failed rotation").await;
    assert_eq!(still["webhook_status"], 200, "{still}");
    let sid = still["message_sid"].as_str().unwrap();
    assert_eq!(python_agrees(&w, sid, &secret_of(&w, &one)).await, "valid HMAC_SHA256");

    // Once Twilio's changes go through again, the rotation does too.
    w.emulator().fail_webhook_changes(false);
    let rotated = w.admin.post(&signing, &json!({})).await.unwrap();
    assert_ne!(rotated["key"], one.as_str());
    assert!(rotated["last_error"].is_null(), "{rotated}");
    w.stop().await;
}

fn business_number(inbound_url: &str, fallback_url: &str) -> AccountSetup {
    AccountSetup {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        numbers: vec![NumberSetup {
            phone: BUSINESS.into(),
            inbound_url: inbound_url.into(),
            fallback_url: Some(fallback_url.into()),
        }],
        sandbox_join_code: None,
        templates: None,
    }
}

/// The fallback ingress's URLs have another base, so Twilio matches them by a Rule of their own:
/// Switchboard points it at the same Setting, a webhook Twilio sends to the fallback URL is signed
/// with the channel's key, and a rotation is live (the old key retired) only once both Rules'
/// changes are. When Twilio fails only the fallback Rule's change, the channel's Rule already
/// signs with the new key: the fallback Rule is asked again, and the old key verifies meanwhile.
#[tokio::test]
async fn the_fallback_urls_get_a_rule_of_their_own_and_a_rotation_waits_for_both_rules() {
    let w = World::start_with(json!({ "fallback_ingress": true })).await;
    let fallback = w.stack.urls.fallback_ingress.clone().expect("a fallback ingress");
    let channel = w.admin.get(&format!("/channels/{}", w.channel_id)).await.unwrap();
    let (inbound_url, fallback_url) = (
        channel["inbound_url"].as_str().unwrap().to_owned(),
        channel["fallback_url"].as_str().unwrap().to_owned(),
    );
    assert!(
        fallback_url.starts_with(&format!("{fallback}/v1/twilio/{}/inbound#", w.channel_id)),
        "{channel}"
    );
    let prefix = format!("{}/v1/twilio/{}/", w.stack.urls.public_base_url, w.channel_id);
    let fallback_prefix = format!("{fallback}/v1/twilio/{}/", w.channel_id);
    let rules_on = |setting: &str| {
        let mut rules = vec![
            (prefix.clone(), vec![setting.to_owned()]),
            (fallback_prefix.clone(), vec![setting.to_owned()]),
        ];
        rules.sort();
        rules
    };
    // The number's primary URL stops answering at "Twilio" (what Switchboard configured is
    // marked as mirrored first, so the development mirror leaves the change alone).
    w.emulator().mirror_account(business_number(&inbound_url, &fallback_url));
    w.emulator().setup_account(business_number(
        &format!("http://127.0.0.1:9/v1/twilio/{}/inbound", w.channel_id),
        &fallback_url,
    ));
    let via_fallback = |body: &'static str| {
        let w = &w;
        async move {
            let sent = customer(w, body).await;
            assert_eq!(sent["webhook_fallback"], true, "{sent}");
            assert_eq!(sent["webhook_status"], 200, "the fallback ingress took it: {sent}");
            sent["message_sid"].as_str().unwrap().to_owned()
        }
    };

    let signing = format!("/channels/{}/webhook-signing", w.channel_id);
    let first = w.admin.post(&signing, &json!({})).await.unwrap();
    assert_eq!(first["fallback_prefix"], fallback_prefix.as_str(), "{first}");
    assert!(first["fallback_rule_id"].is_string(), "{first}");
    assert!(
        first["operation_id"].is_null() && first["fallback_operation_id"].is_null(),
        "both live at once: {first}"
    );
    let (one, setting_one) = (
        first["key"].as_str().unwrap().to_owned(),
        first["setting_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), rules_on(&setting_one));
    let sid = via_fallback("through the fallback ingress, signed").await;
    let secret_one = secret_of(&w, &one);
    assert_eq!(python_agrees_at(&w, &fallback, &sid, &secret_one).await, "valid HMAC_SHA256");

    // Twilio fails the fallback Rule's change only.
    w.emulator().fail_webhook_changes_under(Some(&fallback));
    let second = w.admin.post(&signing, &json!({ "algorithm": "HMAC_SHA1" })).await.unwrap();
    let (two, setting_two) = (
        second["key"].as_str().unwrap().to_owned(),
        second["setting_id"].as_str().unwrap().to_owned(),
    );
    assert_ne!(two, one);
    assert_eq!(second["fallback_operation_status"], "FAILED", "{second}");
    assert_eq!(second["retiring_key"], one.as_str(), "the old key stays: {second}");
    assert!(second["last_error"].as_str().unwrap_or_default().contains("failed"), "{second}");
    let mut mixed = vec![
        (prefix.clone(), vec![setting_two.clone()]),
        (fallback_prefix.clone(), vec![setting_one.clone()]),
    ];
    mixed.sort();
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), mixed);
    assert_eq!(held_keys(&w).await, [one.clone(), two.clone()]);
    let busy = w.admin.post(&signing, &json!({})).await.unwrap_err();
    assert!(busy.to_string().contains("still propagating"), "{busy}");
    let sid = via_fallback("while the fallback Rule lags").await;
    assert_eq!(python_agrees_at(&w, &fallback, &sid, &secret_one).await, "valid HMAC_SHA256");

    // Once Twilio takes changes again, the health check asks again and then retires the old key.
    w.emulator().fail_webhook_changes_under(None);
    let check = format!("/channels/{}/health-check", w.channel_id);
    switchboard_test_support::wait_until(WAIT, "the rotation settled on both Rules", || async {
        w.admin.post(&check, &json!({})).await.unwrap();
        w.admin.get(&signing).await.unwrap()["retiring_key"].is_null()
    })
    .await;
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), rules_on(&setting_two));
    assert_eq!(held_keys(&w).await, vec![two.clone()]);
    assert_eq!(w.emulator().webhooks_settings(ACCOUNT), vec![setting_two.clone()]);
    let sid = via_fallback("after the rotation").await;
    assert_eq!(python_agrees_at(&w, &fallback, &sid, &secret_of(&w, &two)).await, "valid HMAC_SHA1");

    // The other way round: Twilio fails the channel Rule's change only. The fallback Rule
    // signs with the new key already, so the channel's Rule is asked again, not undone.
    w.emulator().fail_webhook_changes_under(Some(&prefix));
    let third = w.admin.post(&signing, &json!({})).await.unwrap();
    let (three, setting_three) = (
        third["key"].as_str().unwrap().to_owned(),
        third["setting_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(third["operation_status"], "FAILED", "{third}");
    assert_eq!(third["retiring_key"], two.as_str(), "{third}");
    let mut mixed = vec![
        (prefix.clone(), vec![setting_two.clone()]),
        (fallback_prefix.clone(), vec![setting_three.clone()]),
    ];
    mixed.sort();
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), mixed);
    w.emulator().fail_webhook_changes_under(None);
    switchboard_test_support::wait_until(WAIT, "the third change settled on both Rules", || async {
        w.admin.post(&check, &json!({})).await.unwrap();
        w.admin.get(&signing).await.unwrap()["retiring_key"].is_null()
    })
    .await;
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), rules_on(&setting_three));
    assert_eq!(held_keys(&w).await, vec![three]);
    w.stop().await;
}

/// A channel whose signing was set up before its fallback Rule existed (a deployment upgraded
/// from a release without it, or a fallback ingress added later): the next health check makes
/// the fallback Rule, pointed at the Setting in use, and changes nothing else.
#[tokio::test]
async fn a_missing_fallback_rule_is_made_by_the_next_health_check() {
    let w = World::start_with(json!({ "fallback_ingress": true })).await;
    let fallback = w.stack.urls.fallback_ingress.clone().expect("a fallback ingress");
    let signing = format!("/channels/{}/webhook-signing", w.channel_id);
    let first = w.admin.post(&signing, &json!({})).await.unwrap();
    let (key, setting) = (
        first["key"].as_str().unwrap().to_owned(),
        first["setting_id"].as_str().unwrap().to_owned(),
    );
    let prefix = format!("{}/v1/twilio/{}/", w.stack.urls.public_base_url, w.channel_id);
    let fallback_prefix = format!("{fallback}/v1/twilio/{}/", w.channel_id);
    // As an older release left it: no fallback Rule, here or at Twilio.
    assert!(w.emulator().remove_webhook_rule(ACCOUNT, &fallback_prefix));
    sqlx::query("UPDATE session.webhook_signing SET fallback_rule_id = NULL, fallback_prefix = NULL WHERE channel_id = $1::uuid")
        .bind(&w.channel_id)
        .execute(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), vec![(prefix.clone(), vec![setting.clone()])]);

    let check = format!("/channels/{}/health-check", w.channel_id);
    let repaired = switchboard_test_support::wait_for(WAIT, "the fallback Rule made and live", || async {
        w.admin.post(&check, &json!({})).await.unwrap();
        let s = w.admin.get(&signing).await.unwrap();
        (s["fallback_prefix"] == fallback_prefix.as_str() && s["fallback_operation_id"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(repaired["key"], key.as_str(), "the same key: {repaired}");
    assert_eq!(repaired["setting_id"], setting.as_str(), "{repaired}");
    assert!(repaired["retiring_key"].is_null(), "{repaired}");
    let mut rules = vec![(prefix, vec![setting.clone()]), (fallback_prefix, vec![setting])];
    rules.sort();
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), rules);
    assert_eq!(held_keys(&w).await, vec![key]);
    w.stop().await;
}

#[tokio::test]
async fn the_rule_of_fallback_urls_no_longer_configured_is_deleted_at_twilio() {
    // No fallback ingress now; an earlier configuration had one, and its Rule is still at
    // Twilio and in the set-up.
    let w = World::start().await;
    let signing = format!("/channels/{}/webhook-signing", w.channel_id);
    let first = w.admin.post(&signing, &json!({})).await.unwrap();
    let setting = first["setting_id"].as_str().unwrap().to_owned();
    let prefix = format!("{}/v1/twilio/{}/", w.stack.urls.public_base_url, w.channel_id);
    let old_prefix = format!("https://fallback.old.example/v1/twilio/{}/", w.channel_id);
    let old_rule = w
        .emulator()
        .add_webhook_rule(ACCOUNT, &old_prefix, &setting)
        .expect("the account exists");
    sqlx::query("UPDATE session.webhook_signing SET fallback_rule_id = $2, fallback_prefix = $3 WHERE channel_id = $1::uuid")
        .bind(&w.channel_id)
        .bind(&old_rule)
        .bind(&old_prefix)
        .execute(&w.db.pool)
        .await
        .unwrap();
    let mut both = vec![(prefix.clone(), vec![setting.clone()]), (old_prefix, vec![setting.clone()])];
    both.sort();
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), both);

    let check = format!("/channels/{}/health-check", w.channel_id);
    let settled = switchboard_test_support::wait_for(WAIT, "the old fallback Rule deleted", || async {
        w.admin.post(&check, &json!({})).await.unwrap();
        let s = w.admin.get(&signing).await.unwrap();
        s["fallback_rule_id"].is_null().then_some(s)
    })
    .await;
    assert!(settled["fallback_prefix"].is_null(), "{settled}");
    assert_eq!(
        settled["setting_id"],
        setting.as_str(),
        "the channel's own signing is untouched: {settled}"
    );
    assert_eq!(w.emulator().webhooks_rules(ACCOUNT), vec![(prefix, vec![setting])]);
    w.stop().await;
}
