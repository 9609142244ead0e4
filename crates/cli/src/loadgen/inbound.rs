//! Open-loop inbound load: correctly signed Twilio webhooks at a fixed rate, whatever the
//! answers (a slow system shows as latency, measured from each request's scheduled time, not as
//! a lower offered rate). Refused or failed webhooks are re-sent with the same MessageSid, as
//! Twilio's fallback would, so duplicates would show.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::setup::Setup;

/// Live counters (read by the progress display).
#[derive(Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
}

/// What the inbound driver saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// MessageSids answered 200 (at least once).
    pub accepted: Vec<String>,
    /// Final HTTP status counts (0: no answer).
    pub statuses: BTreeMap<u16, u64>,
    /// Ack latency of answered requests, microseconds, from the scheduled send time.
    pub latencies_us: Vec<u64>,
    /// Messages that opened a conversation.
    pub new_conversations: u64,
    /// Requests that could not start because `max_in_flight` were already waiting.
    pub skipped: u64,
    /// Webhooks answered 200, by the Unix second of the answer.
    pub accepted_per_second: BTreeMap<i64, u64>,
    pub elapsed: Duration,
}

/// One customer message as Twilio sends it; returns (form body, signature).
pub fn webhook(setup: &Setup, sid: &str, customer: &str, number: &str, body: &str) -> (String, String) {
    let params: Vec<(String, String)> = vec![
        ("SmsMessageSid".into(), sid.into()),
        ("NumMedia".into(), "0".into()),
        (
            "ProfileName".into(),
            format!("Customer {}", &customer[customer.len().saturating_sub(4)..]),
        ),
        ("MessageType".into(), "text".into()),
        ("SmsSid".into(), sid.into()),
        ("WaId".into(), customer.trim_start_matches('+').into()),
        ("SmsStatus".into(), "received".into()),
        ("Body".into(), body.into()),
        ("To".into(), format!("whatsapp:{number}")),
        ("NumSegments".into(), "1".into()),
        ("ReferralNumMedia".into(), "0".into()),
        ("MessageSid".into(), sid.into()),
        ("AccountSid".into(), setup.account_sid.clone()),
        ("From".into(), format!("whatsapp:{customer}")),
        ("ApiVersion".into(), "2010-04-01".into()),
    ];
    let signature = switchboard_twilio::signature::compute(&setup.auth_token, &setup.inbound_url, &params);
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    (body, signature)
}

/// Sends for `duration` at `rate` per second.
pub async fn drive(
    setup: Arc<Setup>,
    rate: f64,
    duration: Duration,
    new_ratio: f64,
    max_in_flight: usize,
    live: Arc<Live>,
) -> anyhow::Result<Outcome> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(max_in_flight)
        .timeout(Duration::from_secs(15))
        .build()?;
    let results = Arc::new(Mutex::new(Outcome::default()));
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut next_new = 0usize;
    let mut new_conversations = 0u64;
    let mut skipped = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tick.tick().await;
        let elapsed = started.elapsed();
        if elapsed >= duration {
            break;
        }
        // Request k is due at k / rate: those with k / rate ≤ elapsed are due now.
        let due = (rate * elapsed.as_secs_f64()) as u64 + 1;
        while sent < due {
            // When the request should have gone out: latency counts from here.
            let scheduled = started + Duration::from_secs_f64(sent as f64 / rate);
            sent += 1;
            let start_new = next_new == 0 || (next_new < setup.customers.len() && fastrand::f64() < new_ratio);
            let index = if start_new {
                next_new += 1;
                new_conversations += 1;
                next_new - 1
            } else {
                fastrand::usize(..next_new)
            };
            let customer = setup.customers[index].clone();
            let number = setup.numbers[index % setup.numbers.len()].clone();
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                skipped += 1;
                continue;
            };
            let sid = format!("SM{:032x}", uuid::Uuid::new_v4().as_u128());
            let (body, signature) = webhook(&setup, &sid, &customer, &number, &format!("load message {sent}"));
            let (http, url, results, live) = (http.clone(), setup.inbound_url.clone(), results.clone(), live.clone());
            live.sent.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let _permit = permit;
                let mut status = 0u16;
                // Twilio does not retry a refused webhook on the same URL, but its fallback URL
                // (here: the same) gets the same MessageSid: at most 4 tries, 1 s apart.
                for attempt in 0..4 {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let answer = http
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-twilio-signature", &signature)
                        .header("i-twilio-idempotency-token", uuid::Uuid::new_v4().to_string())
                        .body(body.clone())
                        .send()
                        .await;
                    status = answer.map_or(0, |r| r.status().as_u16());
                    if attempt == 0 && status != 0 {
                        let latency = u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX);
                        results.lock().await.latencies_us.push(latency);
                    }
                    if status == 200 {
                        break;
                    }
                }
                let mut r = results.lock().await;
                *r.statuses.entry(status).or_insert(0) += 1;
                if status == 200 {
                    live.accepted.fetch_add(1, Ordering::Relaxed);
                    *r.accepted_per_second
                        .entry(time::OffsetDateTime::now_utc().unix_timestamp())
                        .or_insert(0) += 1;
                    r.accepted.push(sid);
                } else {
                    live.refused.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let sending_for = started.elapsed();
    while tasks.join_next().await.is_some() {}
    let mut outcome = std::mem::take(&mut *results.lock().await);
    outcome.latencies_us.sort_unstable();
    outcome.new_conversations = new_conversations;
    outcome.skipped = skipped;
    outcome.elapsed = sending_for;
    Ok(outcome)
}

/// The value at percentile `p` (0–100) of sorted `values`.
pub fn percentile(values: &[u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let index = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[index.min(values.len() - 1)]
}
