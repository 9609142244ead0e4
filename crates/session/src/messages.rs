//! Messages: sending (after `domain::policy` allows it), automated messages, the post-
//! conversation survey, system notes, and listing. A message to send is stored `pending` and an
//! `outbound.send.v1` event goes through the outbox in the same transaction.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use switchboard_bus::events::{ConversationMessageV1, OutboundContent as WireContent, OutboundSendV1};
use switchboard_domain::automated::{self, RenderContext, Trigger};
use switchboard_domain::ids::{AgentId, BotId, ClientMessageId, ConversationId, MessageId};
use switchboard_domain::policy::{self, Approved, Author, OutboundContent};
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::conversations::ConversationRow;
use crate::error::SessionError;
use crate::send_context::CONTEXT_AND_CLIENT_ID;
pub use crate::send_context::SendContext;
use crate::store::messages as store;

pub use crate::store::messages::MessageRow;

/// What to send, before the policy decides.
#[derive(Debug, Clone)]
pub enum SendContent {
    Text(String),
    Media {
        url: String,
        content_type: String,
        size_bytes: Option<u64>,
        caption: Option<String>,
    },
    /// A file uploaded to the conversation (`UploadFile`).
    File {
        file_id: Uuid,
        caption: Option<String>,
    },
    Template {
        template_id: Option<Uuid>,
        name: Option<String>,
        language: Option<String>,
        variables: BTreeMap<String, String>,
    },
}

/// Who sends an outbound message, and the uploaded file it carries.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    pub author: Author,
    pub author_id: Option<Uuid>,
    pub client_message_id: Option<&'a str>,
    pub file: Option<&'a crate::files::FileRow>,
}

impl Sending<'static> {
    /// An automated message (no author, no file).
    pub const AUTOMATED: Self = Self {
        author: Author::Automated,
        author_id: None,
        client_message_id: None,
        file: None,
    };
}

/// A send request.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub conversation_id: Uuid,
    pub author: Author,
    pub author_id: Option<Uuid>,
    pub content: SendContent,
    pub client_message_id: Option<ClientMessageId>,
}

/// What happened to an automated message.
#[derive(Debug, Clone)]
pub enum AutomatedOutcome {
    Sent(Box<MessageRow>),
    NotSent(String),
}

fn wire_content(approved: &Approved) -> WireContent {
    match approved {
        Approved::Text { body } => WireContent::Text { body: body.clone() },
        Approved::Media {
            url,
            content_type,
            caption,
        } => WireContent::Media {
            url: url.clone(),
            content_type: content_type.clone(),
            caption: caption.clone(),
        },
        Approved::Template {
            content_sid,
            variables_json,
            ..
        } => WireContent::Template {
            content_sid: content_sid.as_str().into(),
            variables_json: variables_json.clone(),
        },
    }
}

impl Session {
    /// Sends a message, or refuses it naming the rule.
    pub async fn send_message(&self, request: SendRequest) -> Result<MessageRow, SessionError> {
        let media_url = match &request.content {
            SendContent::Media { url, .. } => Some(url.as_str()),
            _ => None,
        };
        policy::check_lengths(request.client_message_id.as_ref().map(ClientMessageId::as_str), media_url).map_err(SessionError::Invalid)?;
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        // Sends to one conversation go one at a time (the client-id check below, and their
        // order): the row is locked by marking the activity, which a refused or repeated send
        // rolls back with the rest.
        crate::store::conversations::touch(&mut *tx, request.conversation_id, now).await?;
        let ctx = sqlx::query_as::<_, SendContext>(CONTEXT_AND_CLIENT_ID)
            .bind(request.conversation_id)
            .bind(request.client_message_id.as_ref().map(ClientMessageId::as_str))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(SessionError::NotFound("conversation"))?;
        if let Some(existing) = ctx.sent_with_client_id {
            // The same request again: its first answer, whatever happened since.
            return store::get(&mut *tx, existing.into())
                .await?
                .ok_or(SessionError::NotFound("message"));
        }
        ctx.still_open()?;
        let mut file = None;
        let content = match request.content {
            SendContent::Text(body) => OutboundContent::Text { body },
            SendContent::File { file_id, caption } => {
                let (content, row) = self.file_content(&mut tx, ctx.conversation_id, file_id, caption).await?;
                file = Some(row);
                content
            }
            SendContent::Media {
                url,
                content_type,
                size_bytes,
                caption,
            } => OutboundContent::Media {
                url,
                content_type,
                size_bytes,
                caption,
            },
            SendContent::Template {
                template_id,
                name,
                language,
                variables,
            } => {
                let id = match (template_id, name) {
                    (Some(id), _) => id,
                    (None, Some(name)) => self.template_id_by_name(&mut tx, ctx.number_id, &name).await?,
                    (None, None) => {
                        return Err(SessionError::invalid("a template needs template_id or name"));
                    }
                };
                let stored = self.template(&mut tx, id).await?;
                if stored.number_id != ctx.number_id.into() {
                    return Err(SessionError::NotFound("template"));
                }
                let language = language
                    .filter(|l| !l.is_empty())
                    .map(|l| switchboard_domain::template::Language::parse(&l))
                    .transpose()
                    .map_err(|e| SessionError::invalid(e.to_string()))?;
                OutboundContent::Template {
                    template: stored.template,
                    language,
                    variables,
                }
            }
        };
        let window = ctx.window();
        let approved = policy::evaluate(now, &window, &ctx.attachments(), &content).map_err(|denial| {
            tracing::info!(conversation_id = %ctx.conversation_id, rule = denial.rule(), "send refused by policy");
            crate::metrics::denied(denial.rule());
            SessionError::Policy {
                denial,
                window_expires_at: window.expires_at(),
            }
        })?;
        let mut events = Events::default();
        let message = self
            .enqueue_outbound(
                &mut tx,
                &ctx,
                &approved,
                &Sending {
                    author: request.author,
                    author_id: request.author_id,
                    client_message_id: request.client_message_id.as_ref().map(ClientMessageId::as_str),
                    file: file.as_ref(),
                },
                &mut events,
            )
            .await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(message)
    }

    /// Stores an approved outbound message and queues its send.
    pub(crate) async fn enqueue_outbound(
        &self,
        tx: &mut PgConnection,
        ctx: &SendContext,
        approved: &Approved,
        sending: &Sending<'_>,
        events: &mut Events,
    ) -> Result<MessageRow, SessionError> {
        let author_kind = switchboard_domain::message::AuthorKind::from(sending.author);
        let now = self.now();
        crate::metrics::queued(
            match approved {
                Approved::Text { .. } => "text",
                Approved::Media { .. } => "media",
                _ => "template",
            },
            author_kind.as_str(),
        );
        let (media, details) = match approved {
            Approved::Media { url, content_type, .. } => {
                let item = match sending.file {
                    // An uploaded file: its URL expires, so the API shows the file instead.
                    Some(file) => serde_json::json!({
                        "url": url, "content_type": content_type, "file_id": file.id,
                        "file_name": file.file_name, "size_bytes": file.size_bytes,
                    }),
                    None => serde_json::json!({ "url": url, "content_type": content_type }),
                };
                (serde_json::json!([item]), serde_json::json!({}))
            }
            Approved::Template {
                name,
                content_sid,
                language,
                variables_json,
                ..
            } => (
                serde_json::json!([]),
                serde_json::json!({ "template": { "name": name, "content_sid": content_sid.as_str(), "language": language.as_str(), "variables": serde_json::from_str::<serde_json::Value>(variables_json).unwrap_or_default() } }),
            ),
            Approved::Text { .. } => (serde_json::json!([]), serde_json::json!({})),
        };
        let outbound = store::Outbound {
            conversation_id: ctx.conversation_id,
            channel_id: ctx.channel_id,
            author_kind,
            author_id: sending.author_id,
            body: approved.transcript_text(),
            media,
            details,
            client_message_id: sending.client_message_id,
            traceparent: switchboard_telemetry::propagation::traceparent(&tracing::Span::current()),
        };
        let message = store::insert_outbound(&mut *tx, outbound, now).await?;
        events.push(
            OutboundSendV1 {
                message_id: message.id,
                conversation_id: ctx.conversation_id.into(),
                channel_id: ctx.channel_id.into(),
                number_id: ctx.number_id.into(),
                from: format!("whatsapp:{}", ctx.number_phone),
                to: ctx.reply_to()?,
                content: wire_content(approved),
                status_callback: self.status_url(ctx.channel_id),
                rate_per_second: ctx.rate(),
            },
            now,
        );
        events.push(self.message_event(&message, ctx.agent_id, ctx.bot_id), now);
        Ok(message)
    }

    pub(crate) fn message_event(&self, m: &MessageRow, agent_id: Option<AgentId>, bot_id: Option<BotId>) -> ConversationMessageV1 {
        ConversationMessageV1 {
            conversation_id: m.conversation_id,
            message_id: m.id,
            seq: m.seq,
            direction: m.direction,
            author_kind: m.author_kind,
            body: m.body.clone(),
            status: m.status.clone(),
            agent_id,
            bot_id,
            at: m.created_at,
        }
    }

    /// Sends the automated message for `trigger` if it is active and the window allows it;
    /// otherwise records why in a system note.
    pub(crate) async fn send_automated_locked(
        &self,
        tx: &mut PgConnection,
        c: &ConversationRow,
        trigger: Trigger,
        render: &RenderContext,
        events: &mut Events,
    ) -> Result<AutomatedOutcome, SessionError> {
        let ctx = self.send_context(tx, c.id).await?;
        if ctx.number_deleted {
            return Ok(AutomatedOutcome::NotSent("the number was deleted".into()));
        }
        let languages = self
            .customer_languages(tx, c, &ctx, render.variables.get("language").map(String::as_str))
            .await?;
        let effective = self
            .effective_automated(tx, ctx.channel_id, ctx.number_id, trigger, &languages)
            .await?;
        let text = match (effective.active, trigger.falls_back_when_inactive()) {
            (true, _) => effective.text,
            (false, true) => trigger.default_text().to_owned(),
            (false, false) => return Ok(AutomatedOutcome::NotSent("inactive".into())),
        };
        let text = automated::render(&text, render);
        match policy::evaluate(self.now(), &ctx.window(), &ctx.attachments(), &OutboundContent::Text { body: text }) {
            Ok(approved) => Ok(AutomatedOutcome::Sent(Box::new(
                self.enqueue_outbound(tx, &ctx, &approved, &Sending::AUTOMATED, events).await?,
            ))),
            Err(denial) => {
                let reason = format!("Automated message \"{}\" not sent: {denial}", trigger.as_str());
                self.insert_note(tx, c, &reason, events).await?;
                Ok(AutomatedOutcome::NotSent(denial.rule().into()))
            }
        }
    }

    /// Sends an automated message to a conversation on request (routing, bots).
    pub async fn send_automated(
        &self,
        conversation_id: Uuid,
        trigger: Trigger,
        render: RenderContext,
    ) -> Result<AutomatedOutcome, SessionError> {
        let mut tx = self.pool.begin().await?;
        let row = crate::store::conversations::lock(&mut *tx, conversation_id)
            .await?
            .ok_or(SessionError::NotFound("conversation"))?;
        let render = RenderContext {
            variables: if render.variables.is_empty() {
                row.attributes()
            } else {
                render.variables
            },
            ..render
        };
        let mut events = Events::default();
        let outcome = self.send_automated_locked(&mut tx, &row, trigger, &render, &mut events).await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Sends the post-conversation survey once: as text inside the window, through the
    /// configured template outside it, or not at all with a note saying why.
    pub(crate) async fn send_survey_locked(
        &self,
        tx: &mut PgConnection,
        c: &ConversationRow,
        events: &mut Events,
    ) -> Result<(), SessionError> {
        let ctx = self.send_context(tx, c.id).await?;
        if c.survey_sent || !ctx.survey_enabled || ctx.number_deleted {
            return Ok(());
        }
        let separator = if ctx.survey_url.contains('?') { '&' } else { '?' };
        let link = format!("{}{separator}conversation_id={}", ctx.survey_url, c.id);
        let now = self.now();
        let window = ctx.window();
        let outcome = if window.is_open(now) {
            let body = format!("{} {link}", ctx.survey_message).trim().to_owned();
            policy::evaluate(now, &window, &ctx.attachments(), &OutboundContent::Text { body }).map_err(|d| d.to_string())
        } else if let Some(template_id) = ctx.survey_template_id {
            let stored = self.template(tx, template_id).await?;
            let first = stored
                .template
                .localization(None)
                .ok()
                .and_then(|(_, l)| switchboard_domain::template::placeholders(&l.text).ok())
                .and_then(|p| p.into_iter().next());
            let variables: BTreeMap<String, String> = first.map(|name| (name, link.clone())).into_iter().collect();
            let content = OutboundContent::Template {
                template: stored.template,
                language: None,
                variables,
            };
            policy::evaluate(now, &window, &ctx.attachments(), &content).map_err(|d| d.to_string())
        } else {
            Err("the customer's 24-hour window is closed and no approved survey template is configured".to_owned())
        };
        match outcome {
            Ok(approved) => {
                self.enqueue_outbound(tx, &ctx, &approved, &Sending::AUTOMATED, events).await?;
            }
            Err(reason) => {
                self.insert_note(tx, c, &format!("Post-conversation survey not sent: {reason}."), events)
                    .await?;
            }
        }
        crate::store::conversations::survey_sent(&mut *tx, c.id).await?;
        Ok(())
    }

    /// Adds a system note to a conversation's transcript.
    pub(crate) async fn insert_note(
        &self,
        tx: &mut PgConnection,
        c: &ConversationRow,
        text: &str,
        events: &mut Events,
    ) -> Result<MessageRow, SessionError> {
        let now = self.now();
        let note = store::insert_note(&mut *tx, c.id, c.channel_id, text, now).await?;
        events.push(self.message_event(&note, c.agent_id, c.bot_id), now);
        Ok(note)
    }

    /// Lists a conversation's messages after `after_seq`, oldest first.
    pub async fn list_messages(
        &self,
        conversation_id: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<MessageRow>, SessionError> {
        Ok(store::page(&self.pool, conversation_id, after_seq, limit).await?)
    }

    /// Returns one message.
    pub async fn message(&self, id: MessageId) -> Result<MessageRow, SessionError> {
        store::get(&self.pool, id).await?.ok_or(SessionError::NotFound("message"))
    }
}
