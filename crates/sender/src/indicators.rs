//! Typing indicators and read receipts: `conversation.typing.v1` and `conversation.read.v1`
//! that name a customer message become Twilio's Typing Indicators API call (which also marks
//! that message read). A typing indicator that waited past the time WhatsApp would show it is
//! dropped: showing "typing…" half a minute late is worse than not at all. A read receipt is
//! worth sending late.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use serde::Deserialize;
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};

use crate::credentials::CredentialsError;
use crate::send::App;

/// WhatsApp shows a typing indicator for about this long.
const TYPING_SHOWN: time::Duration = time::Duration::seconds(25);

/// The fields both events share.
#[derive(Debug, Deserialize)]
struct Indication {
    #[serde(rename = "type")]
    kind: String,
    channel_id: switchboard_domain::ids::ChannelId,
    indicator_message_sid: Option<String>,
}

/// Consumes `sender.indicators`.
pub struct IndicatorHandler {
    app: Arc<App>,
    outcomes: Counter<u64>,
}

impl IndicatorHandler {
    /// A handler on `app`.
    pub fn new(app: Arc<App>) -> Self {
        let outcomes = switchboard_telemetry::metrics::meter()
            .u64_counter("switchboard.sender.indicators")
            .with_description("Typing indicators and read receipts sent to Twilio, by outcome")
            .build();
        Self { app, outcomes }
    }

    fn count(&self, kind: &str, outcome: &'static str) {
        let kind = if kind == "conversation.read.v1" { "read" } else { "typing" };
        self.outcomes
            .add(1, &[KeyValue::new("kind", kind), KeyValue::new("outcome", outcome)]);
    }

    async fn indicate(&self, envelope: Envelope<Indication>) -> Result<(), HandleError> {
        let event = envelope.payload;
        let Some(sid) = event.indicator_message_sid.as_deref() else {
            return Ok(());
        };
        let age = time::OffsetDateTime::now_utc() - envelope.occurred_at;
        if event.kind == "conversation.typing.v1" && age > TYPING_SHOWN {
            self.count(&event.kind, "stale");
            return Ok(());
        }
        let credentials = match self.app.credentials.get(event.channel_id).await {
            Ok(c) => c,
            Err(CredentialsError::Gone) => {
                self.count(&event.kind, "channel_gone");
                return Ok(());
            }
            Err(e @ CredentialsError::Unavailable(_)) => return Err(HandleError::Retry(e.into())),
        };
        match self.app.twilio.typing_indicator(&credentials, sid).await {
            Ok(()) => {
                self.count(&event.kind, "sent");
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                self.count(&event.kind, "retried");
                match e.retry_after() {
                    Some(wait) => Err(HandleError::Defer(wait.min(Duration::from_secs(30)))),
                    None => Err(HandleError::Retry(e.into())),
                }
            }
            Err(e) => {
                // The customer just does not see it; nothing else depends on it.
                self.count(&event.kind, "failed");
                tracing::warn!(channel_id = %event.channel_id, message_sid = sid, error = %e, "Twilio refused a typing indicator");
                Ok(())
            }
        }
    }
}

impl Handler for IndicatorHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            self.indicate(incoming.json()?).await?;
        }
        Ok(())
    }
}
