//! A small scriptable bot for tests and `switchboard dev --demo`: it verifies Switchboard's
//! signature the documented way, then answers with the first rule whose words appear in the
//! customer's latest message. Tests can slow it down, make it fail, or hold its answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::protocol::BotRequest;
use crate::signature;

/// When the customer's latest message contains `contains` (case-insensitive; empty: always),
/// answer `response` (a bot answer as JSON).
#[derive(Debug, Clone)]
pub struct Rule {
    pub contains: String,
    pub response: Value,
}

impl Rule {
    /// A rule.
    pub fn new(contains: &str, response: Value) -> Self {
        Self {
            contains: contains.to_lowercase(),
            response,
        }
    }
}

#[derive(Default)]
struct Behaviour {
    rules: Vec<Rule>,
    delay: Duration,
    fail_status: Option<u16>,
    gate: Option<Arc<Semaphore>>,
}

struct Inner {
    secret: Vec<u8>,
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<BotRequest>>,
    rejected: AtomicUsize,
}

/// A running test bot.
pub struct TestBot {
    /// Its endpoint.
    pub url: String,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestBot {
    /// Serves on `listener`, verifying requests with `secret`.
    pub fn start(listener: TcpListener, secret: &str, rules: Vec<Rule>) -> anyhow::Result<Self> {
        let url = format!("http://{}/bot", listener.local_addr()?);
        let inner = Arc::new(Inner {
            secret: secret.as_bytes().to_vec(),
            behaviour: Mutex::new(Behaviour {
                rules,
                ..Behaviour::default()
            }),
            received: Mutex::new(Vec::new()),
            rejected: AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        let app = axum::Router::new().route("/bot", post(answer)).with_state(inner.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        Ok(Self {
            url,
            inner,
            shutdown,
            task,
        })
    }

    fn behaviour(&self) -> std::sync::MutexGuard<'_, Behaviour> {
        self.inner.behaviour.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the script.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.behaviour().rules = rules;
    }

    /// Answers only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour().delay = delay;
    }

    /// Answers every request with this HTTP status (`None`: answer normally).
    pub fn set_failure(&self, status: Option<u16>) {
        self.behaviour().fail_status = status;
    }

    /// Holds every answer until [`TestBot::release`] lets one through.
    pub fn hold(&self) {
        self.behaviour().gate = Some(Arc::new(Semaphore::new(0)));
    }

    /// Lets `n` held answers through.
    pub fn release(&self, n: usize) {
        if let Some(gate) = &self.behaviour().gate {
            gate.add_permits(n);
        }
    }

    /// Verified requests received so far.
    pub fn received(&self) -> Vec<BotRequest> {
        self.inner.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Requests refused for their signature.
    pub fn rejected(&self) -> usize {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// The demo's script: billing questions set `topic`, "agent" escalates, "bye" ends.
    pub fn demo_rules() -> Vec<Rule> {
        vec![
            Rule::new(
                "agent",
                json!({
                    "replies": [{ "text": "Connecting you with one of our agents now." }],
                    "action": { "type": "escalate", "reason": "the customer asked for a person" }
                }),
            ),
            Rule::new(
                "invoice",
                json!({
                    "replies": [{ "buttons": { "text": "I can help with invoices. What do you need?", "options": ["A copy of my invoice", "Talk to an agent"] } }],
                    "context": { "topic": "billing" }
                }),
            ),
            Rule::new(
                "bye",
                json!({ "action": { "type": "end", "message": "Thanks for chatting with us. Goodbye!" } }),
            ),
            Rule::new(
                "",
                json!({
                    "replies": [{ "text": "Hi! I'm the Demo assistant. Ask me about an invoice, or say \"agent\" to talk to a person." }]
                }),
            ),
        ]
    }
}

async fn answer(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(error) = signature::verify(&inner.secret, header, &body, now) {
        inner.rejected.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    }
    let Ok(request) = serde_json::from_slice::<BotRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a turn").into_response();
    };
    let latest = request.messages.last().map(|m| m.body.to_lowercase()).unwrap_or_default();
    if let Ok(mut received) = inner.received.lock() {
        received.push(request);
    }
    let (delay, fail, gate, response) = {
        let b = inner.behaviour.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let response = b
            .rules
            .iter()
            .find(|r| r.contains.is_empty() || latest.contains(&r.contains))
            .map_or_else(|| json!({}), |r| r.response.clone());
        (b.delay, b.fail_status, b.gate.clone(), response)
    };
    if let Some(gate) = gate
        && let Ok(permit) = gate.acquire().await
    {
        permit.forget();
    }
    tokio::time::sleep(delay).await;
    if let Some(status) = fail {
        return StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    axum::Json(response).into_response()
}
