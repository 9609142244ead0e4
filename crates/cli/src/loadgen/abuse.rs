//! Bad webhooks beside the good ones: forged signatures, unknown channels, malformed and
//! oversized bodies, the wrong content type, and replays of accepted webhooks. Each kind must
//! get its status and nothing of it may be stored (a replay is accepted but stored once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::inbound::webhook;
use super::setup::Setup;

/// How each kind of bad request was answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AbuseReport {
    /// kind → (expected status, statuses seen with counts).
    pub kinds: BTreeMap<String, (u16, BTreeMap<u16, u64>)>,
    /// Requests answered with another status than expected.
    pub unexpected: u64,
    pub sent: u64,
    /// Requests that got no answer, by what went wrong (status 0 above).
    pub errors: BTreeMap<String, u64>,
}

/// SIDs of forged requests start with this, so the check can look for them in the database
/// (long enough that a real SID starts so once in 16⁸).
pub const FORGED_PREFIX: &str = "SMbad0bad0";

/// Sends `rate` bad requests per second for `duration`.
pub async fn drive(setup: Arc<Setup>, rate: f64, duration: Duration) -> anyhow::Result<AbuseReport> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
    // Oversized bodies on their own connections: the server answers 413 before reading the
    // whole body and closes the connection, which would fail whatever request reused it.
    let oversized_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(0)
        .build()?;
    let report = Arc::new(Mutex::new(AbuseReport::default()));
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = tokio::task::JoinSet::new();
    let unknown_url = {
        let (base, _) = setup.inbound_url.rsplit_once("/v1/twilio/").unwrap_or((&setup.inbound_url, ""));
        format!("{base}/v1/twilio/{}/inbound", uuid::Uuid::new_v4())
    };
    // A webhook the system accepted, replayed as is (valid signature, same MessageSid).
    let replay_sid = format!("SM{:032x}", uuid::Uuid::new_v4().as_u128());
    let replay = webhook(&setup, &replay_sid, &setup.customers[0], &setup.numbers[0], "replayed");
    while started.elapsed() < duration {
        tick.tick().await;
        let due = (rate * started.elapsed().as_secs_f64()) as u64;
        while sent < due {
            sent += 1;
            let sid = format!("{FORGED_PREFIX}{:024x}", uuid::Uuid::new_v4().as_u128() >> 32);
            let (good_body, good_sig) = webhook(&setup, &sid, &setup.customers[0], &setup.numbers[0], "forged");
            let (kind, url, body, sig, content_type, expect): (&str, String, String, String, &str, u16) = match sent % 6 {
                0 => (
                    "forged_signature",
                    setup.inbound_url.clone(),
                    good_body,
                    "bm90IHRoZSBzaWduYXR1cmU=".into(),
                    "application/x-www-form-urlencoded",
                    403,
                ),
                1 => (
                    "unknown_channel",
                    unknown_url.clone(),
                    good_body,
                    good_sig,
                    "application/x-www-form-urlencoded",
                    404,
                ),
                2 => {
                    // Signed, but missing required fields: refused as malformed.
                    let params = vec![
                        ("MessageSid".to_owned(), sid.clone()),
                        ("AccountSid".to_owned(), setup.account_sid.clone()),
                    ];
                    let sig = switchboard_twilio::signature::compute(&setup.auth_token, &setup.inbound_url, &params);
                    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
                    (
                        "malformed",
                        setup.inbound_url.clone(),
                        body,
                        sig,
                        "application/x-www-form-urlencoded",
                        400,
                    )
                }
                3 => (
                    "oversized",
                    setup.inbound_url.clone(),
                    "Body=".to_owned() + &"x".repeat(200_000),
                    good_sig,
                    "application/x-www-form-urlencoded",
                    413,
                ),
                4 => (
                    "wrong_content_type",
                    setup.inbound_url.clone(),
                    good_body,
                    good_sig,
                    "application/json",
                    415,
                ),
                _ => (
                    "replay",
                    setup.inbound_url.clone(),
                    replay.0.clone(),
                    replay.1.clone(),
                    "application/x-www-form-urlencoded",
                    200,
                ),
            };
            let http = if kind == "oversized" {
                oversized_http.clone()
            } else {
                http.clone()
            };
            let report = report.clone();
            tasks.spawn(async move {
                let answer = http
                    .post(&url)
                    .header("content-type", content_type)
                    .header("x-twilio-signature", sig)
                    .body(body)
                    .send()
                    .await;
                let status = answer.as_ref().map_or(0, |r| r.status().as_u16());
                let mut r = report.lock().await;
                if let Err(error) = answer {
                    let what = if error.is_timeout() {
                        "timeout".to_owned()
                    } else if error.is_connect() {
                        "connect".to_owned()
                    } else {
                        error.to_string().chars().take(80).collect()
                    };
                    *r.errors.entry(what).or_insert(0) += 1;
                }
                r.sent += 1;
                if status != expect {
                    r.unexpected += 1;
                }
                let entry = r.kinds.entry(kind.to_owned()).or_insert((expect, BTreeMap::new()));
                *entry.1.entry(status).or_insert(0) += 1;
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let report = report.lock().await.clone();
    Ok(report)
}

/// Counts rows stored from forged requests (must be 0) and copies of the replayed one (must be 1).
pub async fn stored(pool: &sqlx::PgPool, setup: &Setup) -> anyhow::Result<(i64, i64)> {
    let channel = setup.channel_id.uuid();
    let forged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session.messages WHERE direction = 'inbound' AND (twilio_sid LIKE 'SMbad0bad0%' OR body = 'forged')",
    )
    .fetch_one(pool)
    .await?;
    let replayed: i64 = sqlx::query_scalar("SELECT count(*) FROM session.messages WHERE channel_id = $1 AND body = 'replayed'")
        .bind(channel)
        .fetch_one(pool)
        .await?;
    Ok((forged, replayed))
}
