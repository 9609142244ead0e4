//! One bot turn: call the bot (signed, bounded attempts), then apply its answer through session
//! (replies under the same outbound policy as agents', context variables) and routing
//! (escalation); a bot that never answers properly hands the conversation to people with a note.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use switchboard_bus::events::BotTurnV1;
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::ids::{ConversationId, QueueId};
use switchboard_domain::message::AuthorKind;
use switchboard_proto::closed_sets::{code, read};
use switchboard_proto::common::v1::Attribute;
use switchboard_proto::routing::v1 as rpb;
use switchboard_proto::session::v1 as spb;
use switchboard_proto::session::v1::send_message_request::Content;
use tracing::Instrument as _;

use crate::clients::Clients;
use crate::protocol::{Action, BotRequest, BotResponse, Reply, render_buttons};
use crate::signature;

/// Consumes `bot.turn.v1`.
pub struct TurnHandler {
    clients: Clients,
    http: reqwest::Client,
    /// Loopback endpoints may be called (development).
    allow_loopback: bool,
    retry_base: Duration,
    /// One turn at a time per conversation on this replica, so replies keep their order.
    locks: moka::sync::Cache<ConversationId, Arc<tokio::sync::Mutex<()>>>,
}

fn retry(error: impl std::fmt::Display) -> HandleError {
    HandleError::Retry(anyhow::anyhow!("{error}"))
}

impl TurnHandler {
    /// A handler using `clients`.
    pub fn new(clients: Clients, retry_base: Duration, allow_loopback: bool) -> anyhow::Result<Self> {
        Ok(Self {
            clients,
            http: crate::guard::client(allow_loopback)?,
            allow_loopback,
            retry_base,
            locks: moka::sync::Cache::builder().time_to_idle(Duration::from_secs(600)).build(),
        })
    }

    async fn turn(&self, turn: &BotTurnV1) -> Result<(), HandleError> {
        let lock = self.locks.get_with(turn.conversation_id, || Arc::new(tokio::sync::Mutex::new(())));
        let _guard = lock.lock().await;
        let mut session = self.clients.session.clone();
        // A turn that arrives after the bot let go of the conversation is dropped.
        let conversation = match session
            .get_conversation(spb::GetByIdRequest {
                id: turn.conversation_id.to_string(),
            })
            .await
        {
            Ok(c) => c.into_inner(),
            Err(status) if switchboard_service_kit::ErrorCode::of(&status) == switchboard_service_kit::ErrorCode::NotFound => return Ok(()),
            Err(status) => return Err(retry(status.message())),
        };
        let active = read(conversation.status_code, &conversation.status) == Ok(ConversationStatus::Active);
        if conversation.bot_id != turn.bot_id.to_string() || !active {
            tracing::debug!(conversation_id = %turn.conversation_id, "turn for a conversation the bot no longer has");
            return Ok(());
        }
        let resolved = self
            .clients
            .directory
            .clone()
            .resolve_bot(spb::ResolveBotRequest {
                bot_id: turn.bot_id.to_string(),
            })
            .await;
        let (bot, secret) = match resolved {
            Ok(r) => {
                let r = r.into_inner();
                (r.bot.unwrap_or_default(), SecretString::from(r.signing_secret))
            }
            Err(status) if switchboard_service_kit::ErrorCode::of(&status) == switchboard_service_kit::ErrorCode::NotFound => {
                return self
                    .escalate(
                        turn,
                        "The bot of this workstream no longer exists; the conversation was handed to an agent.",
                        None,
                    )
                    .await;
            }
            Err(status) => return Err(retry(status.message())),
        };
        if !bot.active {
            let note = format!("Bot {} is switched off; the conversation was handed to an agent.", bot.name);
            return self.escalate(turn, &note, None).await;
        }
        match self.call(turn, &bot, &secret).await {
            Ok(response) => self.apply(turn, &bot, response).await,
            Err(error) => {
                tracing::warn!(bot = %bot.name, conversation_id = %turn.conversation_id, %error, "bot failed; escalating");
                let note = format!(
                    "Bot {} did not answer ({error}); the conversation was handed to an agent.",
                    bot.name
                );
                self.escalate(turn, &note, None).await
            }
        }
    }

    /// Calls the bot up to `max_attempts` times.
    async fn call(&self, turn: &BotTurnV1, bot: &spb::Bot, secret: &SecretString) -> Result<BotResponse, String> {
        crate::guard::check_literal(&bot.endpoint, self.allow_loopback)?;
        let request = BotRequest::from(turn);
        let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let attempts = bot.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let span = bot_call_span(bot, attempt);
            // The bot may continue the trace: it gets the call's W3C context.
            let mut trace_headers = reqwest::header::HeaderMap::new();
            switchboard_telemetry::propagation::inject_http(&span, &mut trace_headers);
            let answer = self
                .http
                .post(&bot.endpoint)
                .timeout(Duration::from_millis(u64::from(bot.timeout_ms.max(100))))
                .header("content-type", "application/json")
                .header(signature::HEADER, signature::sign(secret.expose_secret().as_bytes(), now, &body))
                .header(signature::TURN_HEADER, turn.turn_id.to_string())
                .headers(trace_headers)
                .body(body.clone())
                .send()
                .instrument(span.clone())
                .await;
            let outcome = match &answer {
                Ok(response) => Ok(response.status().as_u16()),
                Err(e) if e.is_timeout() => Err("timeout"),
                Err(_) => Err("transport"),
            };
            switchboard_telemetry::propagation::record_http_client_outcome(&span, outcome);
            last = match answer {
                Ok(response) if response.status().is_success() => match crate::guard::read_capped(response).await {
                    Ok(bytes) => match BotResponse::parse(&bytes) {
                        Ok(parsed) => return Ok(parsed),
                        Err(e) => e,
                    },
                    Err(e) => e,
                },
                Ok(response) if response.status().is_redirection() => {
                    format!(
                        "it answered a redirect (HTTP {}), which is not followed",
                        response.status().as_u16()
                    )
                }
                Ok(response) => format!("it answered HTTP {}", response.status().as_u16()),
                Err(e) if e.is_timeout() => format!("no answer within {} ms", bot.timeout_ms),
                Err(e) => format!("it could not be reached: {e}"),
            };
            tracing::debug!(bot = %bot.name, attempt, attempts, error = %last, "bot attempt failed");
            if attempt < attempts {
                tokio::time::sleep(self.retry_base * attempt).await;
            }
        }
        Err(last)
    }

    async fn apply(&self, turn: &BotTurnV1, bot: &spb::Bot, response: BotResponse) -> Result<(), HandleError> {
        let mut session = self.clients.session.clone();
        for (i, reply) in response.replies.iter().enumerate() {
            self.send(turn, reply_content(reply), &format!("{}:{i}", turn.turn_id)).await?;
        }
        if !response.context.is_empty() {
            session
                .set_conversation_attributes(spb::SetAttributesRequest {
                    conversation_id: turn.conversation_id.to_string(),
                    attributes: attributes(&response.context),
                })
                .await
                .map_err(|s| retry(s.message()))?;
        }
        match response.action {
            None => Ok(()),
            Some(Action::Escalate { queue_id, skills, reason }) => {
                let mut context = turn.context.clone();
                context.extend(response.context);
                let note = if reason.is_empty() {
                    format!("Bot {} handed the conversation to an agent.", bot.name)
                } else {
                    format!("Bot {} handed the conversation to an agent: {reason}", bot.name)
                };
                let skills = serde_json::to_string(&skills).unwrap_or_default();
                self.escalate_with(turn, &note, context, queue_id, skills).await
            }
            Some(Action::End { message }) => {
                if let Some(text) = message.filter(|m| !m.trim().is_empty()) {
                    self.send(
                        turn,
                        Content::Text(spb::TextContent { body: text }),
                        &format!("{}:end", turn.turn_id),
                    )
                    .await?;
                }
                let ended = session
                    .transition_conversation(spb::TransitionRequest {
                        conversation_id: turn.conversation_id.to_string(),
                        transition: "bot_end".into(),
                        ..Default::default()
                    })
                    .await;
                match ended {
                    Ok(_) => Ok(()),
                    Err(s) if switchboard_service_kit::ErrorCode::of(&s) == switchboard_service_kit::ErrorCode::FailedPrecondition => {
                        Ok(())
                    }
                    Err(s) => Err(retry(s.message())),
                }
            }
        }
    }

    /// Sends one reply as the bot; a reply the outbound policy refuses becomes a note.
    async fn send(&self, turn: &BotTurnV1, content: Content, client_message_id: &str) -> Result<(), HandleError> {
        let sent = self
            .clients
            .session
            .clone()
            .send_message(spb::SendMessageRequest {
                conversation_id: turn.conversation_id.to_string(),
                author_kind: AuthorKind::Bot.as_str().into(),
                author_kind_code: code(AuthorKind::Bot),
                author_id: turn.bot_id.to_string(),
                content: Some(content),
                client_message_id: client_message_id.into(),
            })
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(s)
                if matches!(
                    switchboard_service_kit::ErrorCode::of(&s),
                    switchboard_service_kit::ErrorCode::FailedPrecondition | switchboard_service_kit::ErrorCode::InvalidArgument
                ) =>
            {
                tracing::info!(conversation_id = %turn.conversation_id, reason = s.message(), "bot reply refused");
                self.note(turn, &format!("Bot reply not sent: {}", s.message())).await
            }
            Err(s) => Err(retry(s.message())),
        }
    }

    async fn note(&self, turn: &BotTurnV1, text: &str) -> Result<(), HandleError> {
        self.clients
            .session
            .clone()
            .add_note(spb::AddNoteRequest {
                conversation_id: turn.conversation_id.to_string(),
                text: text.into(),
            })
            .await
            .map(|_| ())
            .map_err(|s| retry(s.message()))
    }

    async fn escalate(&self, turn: &BotTurnV1, note: &str, queue_id: Option<QueueId>) -> Result<(), HandleError> {
        self.escalate_with(turn, note, turn.context.clone(), queue_id, String::new()).await
    }

    async fn escalate_with(
        &self,
        turn: &BotTurnV1,
        note: &str,
        context: std::collections::BTreeMap<String, String>,
        queue_id: Option<QueueId>,
        skills_json: String,
    ) -> Result<(), HandleError> {
        let escalated = self
            .clients
            .routing
            .clone()
            .escalate_from_bot(rpb::EscalateRequest {
                conversation_id: turn.conversation_id.to_string(),
                context: attributes(&context),
                queue_id: queue_id.map(|q| q.to_string()).unwrap_or_default(),
                skills_json,
                note: note.into(),
            })
            .await;
        match escalated {
            Ok(_) => Ok(()),
            // A bad hint from the bot: escalate without it rather than leave the customer waiting.
            Err(s) if switchboard_service_kit::ErrorCode::of(&s) == switchboard_service_kit::ErrorCode::InvalidArgument => {
                let note = format!("{note} (the bot's routing hint was ignored: {})", s.message());
                Box::pin(self.escalate_with(turn, &note, context, None, String::new())).await
            }
            Err(s) if switchboard_service_kit::ErrorCode::of(&s) == switchboard_service_kit::ErrorCode::NotFound => Ok(()),
            Err(s) => Err(retry(s.message())),
        }
    }
}

fn attributes(map: &std::collections::BTreeMap<String, String>) -> Vec<Attribute> {
    map.iter()
        .map(|(k, v)| Attribute {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn reply_content(reply: &Reply) -> Content {
    if let Some(text) = &reply.text {
        return Content::Text(spb::TextContent { body: text.clone() });
    }
    if let Some(m) = &reply.media {
        return Content::Media(spb::MediaContent {
            url: m.url.clone(),
            content_type: m.content_type.clone(),
            size_bytes: 0,
            caption: m.caption.clone(),
            file_id: String::new(),
        });
    }
    if let Some(t) = &reply.template {
        return Content::Template(spb::TemplateContent {
            template_id: String::new(),
            name: t.name.clone(),
            language: t.language.clone(),
            variables: t.variables.clone(),
        });
    }
    let buttons = reply.buttons.as_ref().map(render_buttons).unwrap_or_default();
    Content::Text(spb::TextContent { body: buttons })
}

impl Handler for TurnHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            if incoming.routing_key == "bot.turn.v1" {
                let envelope: Envelope<BotTurnV1> = incoming.json()?;
                self.turn(&envelope.payload).await?;
            }
        }
        Ok(())
    }
}

/// The HTTP client span of one call to a bot (`POST`, OpenTelemetry's HTTP client convention;
/// the endpoint's host, never its path, which may hold a secret).
fn bot_call_span(bot: &spb::Bot, attempt: u32) -> tracing::Span {
    let host = url::Url::parse(&bot.endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    tracing::info_span!(
        "bot.call",
        otel.name = "POST",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        server.address = %host,
        http.request.resend_count = attempt.saturating_sub(1),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        bot = %bot.name,
    )
}
