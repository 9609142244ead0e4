//! When a free-form message fails with 63016 (the customer's 24-hour window closed while it was
//! in flight), the conversation's agent is told in the transcript, with the templates that can
//! still reach the customer: the number's approved templates, in the customer's language first.

use sqlx::PgConnection;
use switchboard_domain::automated;
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
            Some(ws) => sqlx::query_scalar("SELECT default_language FROM session.workstreams WHERE id = $1")
                .bind(ws)
                .fetch_optional(&mut *tx)
                .await?
                .flatten(),
            None => None,
        };
        Ok(automated::preferred_languages(
            customer,
            workstream_language.as_deref(),
            &ctx.default_language,
        ))
    }

    /// Tells the agent of `conversation_id` that the window closed under a message, and which
    /// templates fit.
    pub(crate) async fn note_window_closed(
        &self,
        tx: &mut PgConnection,
        conversation_id: Uuid,
        events: &mut Events,
    ) -> Result<(), SessionError> {
        let Some(c) = sqlx::query_as::<_, ConversationRow>("SELECT * FROM session.conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(());
        };
        let ctx = self.send_context(tx, conversation_id).await?;
        let attributes = c.attributes();
        let languages = self
            .customer_languages(tx, &c, &ctx, attributes.get("language").map(String::as_str))
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
        let text = if templates.is_empty() {
            "The customer's 24-hour window closed before this message could be delivered (63016). This number has no \
             approved template in their language: add or sync one to write to them again."
                .to_owned()
        } else {
            let names: Vec<String> = templates.iter().map(|(name, language)| format!("{name} ({language})")).collect();
            format!(
                "The customer's 24-hour window closed before this message could be delivered (63016). Only an approved \
                 template reaches them now: {}.",
                names.join(", ")
            )
        };
        self.insert_note(tx, &c, &text, events).await?;
        Ok(())
    }
}
