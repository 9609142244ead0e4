//! What an outbound message is decided on and addressed with: its conversation, number,
//! channel, customer and window, read in one statement ([`CONTEXT`]).

use sqlx::{FromRow, PgConnection};
use switchboard_domain::window::ServiceWindow;
use switchboard_domain::{Bsuid, CustomerAddress, PhoneNumber};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

/// The sandbox's documented pace: one message every three seconds.
pub const SANDBOX_RATE: f64 = 1.0 / 3.0;

/// Everything needed to decide on and address an outbound message.
#[derive(Debug, Clone, FromRow)]
pub struct SendContext {
    pub conversation_id: Uuid,
    pub channel_id: Uuid,
    pub number_id: Uuid,
    /// Read as the conversation's row is: an unknown stored status fails the read.
    pub status: switchboard_domain::conversation::ConversationStatus,
    pub agent_id: Option<switchboard_domain::ids::AgentId>,
    pub bot_id: Option<switchboard_domain::ids::BotId>,
    pub number_phone: String,
    pub default_language: String,
    pub customer_attachments: bool,
    pub agent_attachments: bool,
    pub max_attachment_bytes: i64,
    pub send_rate_per_second: f64,
    pub survey_enabled: bool,
    pub survey_url: String,
    pub survey_message: String,
    pub survey_template_id: Option<Uuid>,
    pub number_deleted: bool,
    pub sandbox: bool,
    pub customer_phone: Option<String>,
    pub customer_bsuid: Option<String>,
    pub last_inbound_at: Option<OffsetDateTime>,
    /// The message already sent with the request's client id (read by `send_message` only).
    #[sqlx(default)]
    pub sent_with_client_id: Option<Uuid>,
}

impl SendContext {
    /// Until when free-form messages are allowed (none before the customer first writes).
    pub fn window_expires_at(&self) -> Option<OffsetDateTime> {
        self.window().expires_at()
    }

    pub(crate) fn window(&self) -> ServiceWindow {
        ServiceWindow {
            last_inbound_at: self.last_inbound_at,
        }
    }

    pub(crate) fn attachments(&self) -> switchboard_domain::attachment::AttachmentSettings {
        switchboard_domain::attachment::AttachmentSettings {
            customer_attachments: self.customer_attachments,
            agent_attachments: self.agent_attachments,
            max_bytes: u64::try_from(self.max_attachment_bytes).unwrap_or(0),
        }
    }

    /// Refuses anything new for a closed conversation or one whose number was deleted (sends
    /// and uploads alike).
    pub(crate) fn still_open(&self) -> Result<(), SessionError> {
        if self.status == switchboard_domain::conversation::ConversationStatus::Closed {
            return Err(SessionError::Precondition("the conversation is closed".into()));
        }
        if self.number_deleted {
            return Err(SessionError::Precondition("the conversation's WhatsApp number was deleted".into()));
        }
        Ok(())
    }

    pub(crate) fn reply_to(&self) -> Result<String, SessionError> {
        let phone = self
            .customer_phone
            .as_deref()
            .map(PhoneNumber::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?;
        let bsuid = self
            .customer_bsuid
            .as_deref()
            .map(Bsuid::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(CustomerAddress::new(phone, bsuid)
            .map_err(|e| anyhow::anyhow!(e))?
            .reply_to()
            .to_string())
    }

    pub(crate) fn rate(&self) -> f64 {
        if self.send_rate_per_second > 0.0 {
            self.send_rate_per_second
        } else if self.sandbox {
            SANDBOX_RATE
        } else {
            0.0
        }
    }
}

macro_rules! context_columns {
    () => {
        "SELECT c.id AS conversation_id, c.channel_id, c.number_id, c.status, c.agent_id, c.bot_id, n.phone AS number_phone, \
         n.default_language, n.customer_attachments, n.agent_attachments, n.max_attachment_bytes, n.send_rate_per_second, n.survey_enabled, \
         n.survey_url, n.survey_message, n.survey_template_id, n.deleted_at IS NOT NULL AS number_deleted, ch.sandbox, \
         cu.phone AS customer_phone, cu.bsuid AS customer_bsuid, w.last_inbound_at"
    };
}
macro_rules! context_from {
    () => {
        "FROM session.conversations c JOIN session.numbers n ON n.id = c.number_id JOIN session.channels ch ON ch.id = c.channel_id \
         JOIN session.customers cu ON cu.id = c.customer_id \
         LEFT JOIN session.windows w ON w.number_id = c.number_id AND w.customer_id = c.customer_id WHERE c.id = $1"
    };
}
pub(crate) const CONTEXT: &str = concat!(context_columns!(), " ", context_from!());
/// [`CONTEXT`] with the message already sent with client id `$2`, if any.
pub(crate) const CONTEXT_AND_CLIENT_ID: &str = concat!(
    context_columns!(),
    ", (SELECT m.id FROM session.messages m WHERE m.conversation_id = c.id AND m.client_message_id = $2) AS sent_with_client_id ",
    context_from!()
);

impl Session {
    pub(crate) async fn send_context(
        &self,
        conn: &mut PgConnection,
        conversation_id: impl Into<switchboard_domain::ids::ConversationId>,
    ) -> Result<SendContext, SessionError> {
        sqlx::query_as::<_, SendContext>(CONTEXT)
            .bind(conversation_id.into())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(SessionError::NotFound("conversation"))
    }
}
