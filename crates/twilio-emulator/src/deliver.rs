//! Posting a signed webhook as Twilio does, connection overrides included: the URL's fragment
//! (`#rc=5&rp=ct,rt,5xx…`) says how many times to retry and on what (`reference/twilio.md`
//! §1.5); without one, a failed connect is retried once and a 5xx never. The fragment is neither
//! requested nor signed. A Webhooks API Setting's connection takes precedence over the fragment.
//! Every attempt carries the same signature and idempotency token.

use std::time::{Duration, Instant};

use switchboard_twilio::overrides::{self, ConnectionOverrides, RetryOn};

use crate::handle::Emulator;

/// How a webhook went.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    /// The last answer's HTTP status (0: none).
    pub status: u16,
    /// The last transport error, if any.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
}

impl Delivered {
    /// Whether the webhook was taken (a 1xx, 2xx or 3xx answer).
    pub fn succeeded(&self) -> bool {
        (100..400).contains(&self.status)
    }
}

/// The pause before a retry (Twilio does not document one).
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Posts `params` to `url`, signed with `token`, retrying as the URL's overrides say.
pub(crate) async fn post(em: &Emulator, url: &str, token: &str, params: &[(String, String)]) -> Delivered {
    let (target, fragment) = overrides::split(url);
    let signed = crate::signing::sign(em, token, target, params);
    let rules = signed
        .connection
        .unwrap_or_else(|| fragment.map(ConnectionOverrides::parse).unwrap_or_default());
    let (signature, settings) = (signed.signature, signed.settings);
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let idempotency = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let total = Duration::from_millis(u64::from(rules.total_timeout_ms));
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = total.saturating_sub(started.elapsed());
        let mut request = em.inner.http.post(target);
        if let Some(settings) = &settings {
            request = request.header(switchboard_twilio::shared_key::SETTINGS_HEADER, settings);
        }
        let answer = request
            .timeout(left.min(Duration::from_millis(u64::from(rules.read_timeout_ms))))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &signature)
            .header("i-twilio-idempotency-token", &idempotency)
            .body(body.clone())
            .send()
            .await;
        em.lock().webhook_attempts += 1;
        let (outcome, delivered) = match answer {
            Ok(r) if r.status().is_success() || r.status().is_redirection() || r.status().is_informational() => {
                return Delivered {
                    status: r.status().as_u16(),
                    error: None,
                    attempts,
                };
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let kind = if r.status().is_server_error() {
                    RetryOn::ServerError
                } else {
                    RetryOn::ClientError
                };
                (
                    kind,
                    Delivered {
                        status,
                        error: None,
                        attempts,
                    },
                )
            }
            Err(e) => {
                let kind = if e.is_timeout() { RetryOn::Read } else { RetryOn::Connect };
                (
                    kind,
                    Delivered {
                        status: 0,
                        error: Some(e.to_string()),
                        attempts,
                    },
                )
            }
        };
        let out_of_time = started.elapsed() + RETRY_PAUSE >= total;
        if attempts > rules.retries || !rules.retries_on(outcome) || out_of_time {
            return delivered;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}
