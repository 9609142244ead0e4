//! The customer's 24-hour window and the agent: a warning on the stream a configurable time
//! before it closes (`conversation.window_closing.v1`), and, when a free-form message fails with
//! 63016 (the window closed while it was in flight), a note in the transcript. Both name the
//! templates that can still reach the customer: the number's approved templates, in the
//! customer's language first. A workstream may also name a template to send on its own then.

use sqlx::PgConnection;
use switchboard_bus::events::{ConversationWindowClosingV1, WindowTemplateV1};
use switchboard_domain::automated::{self, RenderContext};
use switchboard_domain::policy::{self, OutboundContent};
use switchboard_domain::template::Language;
use switchboard_domain::window::WINDOW;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::conversations::ConversationRow;
use crate::error::SessionError;
use crate::messages::SendContext;

/// Templates named in one note, at most.
const MAX_TEMPLATES: i64 = 10;

impl Session {
    /// The languages to write to the customer of `c` in, best first: `customer`'s own (the
    /// `language` context variable), the workstream's default, the number's.
    pub(crate) async fn customer_languages(
        &self,
        tx: &mut PgConnection,
        c: &ConversationRow,
        ctx: &SendContext,
        customer: Option<&str>,
    ) -> Result<Vec<String>, SessionError> {
        let workstream_language: Option<String> = match c.workstream_id {
            Some(ws) => self.config.workstream_language(tx, ws.into()).await?,
            None => None,
        };
        Ok(automated::preferred_languages(
            customer,
            workstream_language.as_deref(),
            &ctx.default_language,
        ))
    }

    /// The number's approved templates in the customer's language (best first), as
    /// `name (language)`.
    async fn fitting_templates(&self, tx: &mut PgConnection, c: &ConversationRow) -> Result<Vec<String>, SessionError> {
        let ctx = self.send_context(tx, c.id).await?;
        let attributes = c.attributes();
        let languages = self
            .customer_languages(tx, c, &ctx, attributes.get("language").map(String::as_str))
            .await?;
        let templates: Vec<(String, String)> = sqlx::query_as(
            "SELECT t.name, l.language FROM session.templates t JOIN session.template_localizations l ON l.template_id = t.id \
             WHERE t.number_id = $1 AND l.status = 'approved' AND l.language = ANY($2) \
             ORDER BY array_position($2, l.language), t.name LIMIT $3",
        )
        .bind(ctx.number_id)
        .bind(&languages)
        .bind(MAX_TEMPLATES)
        .fetch_all(&mut *tx)
        .await?;
        Ok(templates
            .into_iter()
            .map(|(name, language)| format!("{name} ({language})"))
            .collect())
    }

    /// Warns the agents of conversations whose customer's window closes within
    /// `window_warning_secs`, once per window (a newer customer message opens a new one);
    /// returns how many.
    pub async fn warn_closing_windows(&self, limit: i64) -> Result<u32, SessionError> {
        let warn = self.settings.window_warning_secs;
        if warn == 0 {
            return Ok(0);
        }
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        // Closing between now and now + warn: the last customer message between now − 24 h
        // and now − 24 h + warn.
        let to = now - WINDOW + time::Duration::seconds(i64::try_from(warn).unwrap_or(0));
        let due = crate::store::conversations::lock_window_closing(&mut *tx, now - WINDOW, to, limit).await?;
        let mut events = Events::default();
        for c in &due {
            let Some(last) = c.last_customer_message_at else { continue };
            let templates = self.fitting_templates(&mut tx, c).await?;
            events.push(
                ConversationWindowClosingV1 {
                    conversation_id: c.id,
                    agent_id: c.agent_id,
                    queue_id: c.queue_id,
                    closes_at: last + WINDOW,
                    templates,
                },
                now,
            );
            crate::store::conversations::window_warned(&mut *tx, c.id).await?;
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(u32::try_from(due.len()).unwrap_or(u32::MAX))
    }

    /// Tells the agent of `conversation_id` that the window closed under a message, and which
    /// templates fit.
    pub(crate) async fn note_window_closed(
        &self,
        tx: &mut PgConnection,
        conversation_id: Uuid,
        events: &mut Events,
    ) -> Result<(), SessionError> {
        let Some(c) = crate::store::conversations::get(&mut *tx, conversation_id).await? else {
            return Ok(());
        };
        let templates = self.fitting_templates(tx, &c).await?;
        let text = if templates.is_empty() {
            "The customer's 24-hour window closed before this message could be delivered (63016). This number has no \
             approved template in their language: add or sync one to write to them again."
                .to_owned()
        } else {
            format!(
                "The customer's 24-hour window closed before this message could be delivered (63016). Only an approved \
                 template reaches them now: {}.",
                templates.join(", ")
            )
        };
        self.insert_note(tx, &c, &text, events).await?;
        self.send_window_template(tx, &c, events).await
    }

    /// Sends the workstream's window template, if it has one, once per customer message whose
    /// window closed; a template that cannot go is explained in a note.
    async fn send_window_template(&self, tx: &mut PgConnection, c: &ConversationRow, events: &mut Events) -> Result<(), SessionError> {
        let Some(last) = c.last_customer_message_at else { return Ok(()) };
        let configured: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT w.window_template FROM session.numbers n JOIN session.workstreams w ON w.id = coalesce($2, n.workstream_id) \
             WHERE n.id = $1",
        )
        .bind(c.number_id)
        .bind(c.workstream_id)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let Some(configured) = configured.and_then(|v| serde_json::from_value::<WindowTemplateV1>(v).ok()) else {
            return Ok(());
        };
        // Once per window: several messages failing together send it once.
        let first = crate::store::conversations::window_template_first(&mut *tx, c.id, last).await?;
        if !first {
            return Ok(());
        }
        let ctx = self.send_context(tx, c.id).await?;
        let attributes = c.attributes();
        let languages = self
            .customer_languages(tx, c, &ctx, attributes.get("language").map(String::as_str))
            .await?;
        let outcome = match self.template_id_by_name(tx, ctx.number_id, &configured.name).await {
            Ok(id) => {
                let stored = self.template(tx, id).await?;
                let language = languages
                    .iter()
                    .filter_map(|l| Language::parse(l).ok())
                    .find(|l| stored.template.localizations.contains_key(l));
                let render = RenderContext {
                    variables: attributes,
                    ..RenderContext::default()
                };
                let variables = configured
                    .variables
                    .iter()
                    .map(|(k, v)| (k.clone(), automated::render(v, &render)))
                    .collect();
                let content = OutboundContent::Template {
                    template: stored.template,
                    language,
                    variables,
                };
                policy::evaluate(self.now(), &ctx.window(), &ctx.attachments(), &content).map_err(|d| d.to_string())
            }
            Err(SessionError::NotFound(_)) => Err(format!("the number has no template named {:?}", configured.name)),
            Err(other) => return Err(other),
        };
        match outcome {
            Ok(approved) => {
                self.enqueue_outbound(tx, &ctx, &approved, &crate::messages::Sending::AUTOMATED, events)
                    .await?;
            }
            Err(why) => {
                let note = format!("The workstream's window template was not sent: {why}");
                self.insert_note(tx, c, &note, events).await?;
            }
        }
        Ok(())
    }
}
