//! Simulated agents: each follows its WebSocket stream; on an offer it accepts, replies once
//! (with a unique text and client id, retried with the same id on failure), ends and closes, so
//! capacity frees up. Every reply is recorded to check it was sent exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;

/// What the agents did.
#[derive(Default)]
pub struct AgentStats {
    pub offers: AtomicU64,
    pub accepted: AtomicU64,
    pub replied: AtomicU64,
    pub closed: AtomicU64,
    pub errors: AtomicU64,
    /// Reply tokens (text == client id) the API accepted.
    pub replies: Mutex<Vec<String>>,
}

/// POSTs until it succeeds, up to `tries` times (the API may be restarting under faults); the
/// same body (and client id) every time, so a retried reply is still sent once.
async fn post(api: &ApiClient, path: &str, body: &Value, tries: u32) -> anyhow::Result<Value> {
    let mut last = None;
    for attempt in 0..tries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        match api.post(path, body).await {
            Ok(v) => return Ok(v),
            // A rule said no (the offer expired, another agent took it): not worth retrying.
            Err(e) if crate::client::status_of(&e).is_some_and(|s| (400..500).contains(&s) && s != 429) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt")))
}

async fn work_offer(api: ApiClient, offer: Value, run: String, stats: Arc<AgentStats>) {
    let offer_id = offer["offer_id"].as_str().unwrap_or_default().to_owned();
    let conversation = offer["conversation_id"].as_str().unwrap_or_default().to_owned();
    stats.offers.fetch_add(1, Ordering::Relaxed);
    let empty = json!({});
    if post(&api, &format!("/offers/{offer_id}/accept"), &empty, 6).await.is_err() {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    let token = format!("lg{run}-{:032x}", uuid::Uuid::new_v4().as_u128());
    let body = json!({ "text": token, "client_message_id": token });
    match post(&api, &format!("/conversations/{conversation}/messages"), &body, 10).await {
        Ok(_) => {
            stats.replied.fetch_add(1, Ordering::Relaxed);
            stats.replies.lock().await.push(token);
        }
        Err(_) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    let ended = post(&api, &format!("/conversations/{conversation}/end"), &empty, 6).await;
    let closed = post(&api, &format!("/conversations/{conversation}/close"), &empty, 6).await;
    if ended.is_ok() && closed.is_ok() {
        stats.closed.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs one agent until `stop`, reconnecting its stream (resuming after the last event) when it drops.
pub async fn agent(api_url: String, key: String, run: String, stats: Arc<AgentStats>, stop: CancellationToken) {
    let api = match ApiClient::new(&api_url, Some(key.clone())) {
        Ok(api) => api,
        Err(_) => return,
    };
    let mut last_id: Option<i64> = None;
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.is_cancelled() {
        let url = format!(
            "{}/api/v1/stream{}",
            api_url.replacen("http://", "ws://", 1),
            last_id.map(|id| format!("?after={id}")).unwrap_or_default()
        );
        let Ok(mut request) = url.into_client_request() else { return };
        if let Ok(value) = format!("Bearer {key}").parse() {
            request.headers_mut().insert("authorization", value);
        }
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        loop {
            let frame = tokio::select! {
                () = stop.cancelled() => break,
                frame = socket.next() => frame,
            };
            let Some(Ok(Message::Text(text))) = frame else {
                if matches!(frame, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                    break;
                }
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if let Some(id) = event["id"].as_i64() {
                last_id = Some(id);
            }
            if event["type"] == "stream.reset" {
                last_id = event["last_id"].as_i64();
            }
            if event["type"] == "offer.created.v1" {
                tasks.spawn(work_offer(api.clone(), event["data"].clone(), run.clone(), stats.clone()));
            }
            while tasks.try_join_next().is_some() {}
        }
    }
    // Let offers being worked finish their replies, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(30), async { while tasks.join_next().await.is_some() {} }).await;
}
