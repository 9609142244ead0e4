//! WhatsApp numbers (Dynamics' channel instances) and their settings. Deleting a number closes
//! its live conversations (reason `channel_deleted`, with a system note), fails messages still
//! waiting to be sent (and tells sender to drop them), and removes its templates; the history
//! stays readable.

use sqlx::FromRow;
use switchboard_bus::events::OutboundCancelledV1;
use switchboard_domain::PhoneNumber;
use switchboard_domain::attachment::AttachmentSettings;
use switchboard_domain::conversation::Transition;
use switchboard_domain::ids::{ChannelId, NumberId};
use switchboard_domain::template::Language;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::conversations::{ConversationRow, TransitionInput};
use crate::error::SessionError;

/// A number's settings.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct NumberSettings {
    pub default_language: String,
    pub customer_attachments: bool,
    pub agent_attachments: bool,
    pub max_attachment_bytes: i64,
    pub workstream_id: Option<Uuid>,
    pub send_rate_per_second: f64,
    pub survey_enabled: bool,
    pub survey_url: String,
    pub survey_message: String,
    pub survey_template_id: Option<Uuid>,
}

impl Default for NumberSettings {
    fn default() -> Self {
        Self {
            default_language: "en".into(),
            customer_attachments: false,
            agent_attachments: false,
            max_attachment_bytes: i64::try_from(switchboard_domain::attachment::DEFAULT_MAX_BYTES).unwrap_or(5_242_880),
            workstream_id: None,
            send_rate_per_second: 0.0,
            survey_enabled: false,
            survey_url: String::new(),
            survey_message: String::new(),
            survey_template_id: None,
        }
    }
}

impl NumberSettings {
    /// Returns the first rule the settings break.
    pub fn validate(&self) -> Result<(), SessionError> {
        Language::parse(&self.default_language).map_err(|e| SessionError::invalid(e.to_string()))?;
        let attachments = self.attachments();
        attachments.validate().map_err(SessionError::Invalid)?;
        if !(0.0..=400.0).contains(&self.send_rate_per_second) || self.send_rate_per_second.is_nan() {
            return Err(SessionError::invalid("send_rate_per_second must be between 0 (default) and 400"));
        }
        if self.survey_message.chars().count() > 200 {
            return Err(SessionError::invalid("survey_message has at most 200 characters"));
        }
        if self.survey_enabled && !(self.survey_url.starts_with("https://") || self.survey_url.starts_with("http://")) {
            return Err(SessionError::invalid(
                "survey_url must be an http(s):// link when the survey is enabled",
            ));
        }
        Ok(())
    }

    /// Returns the attachment settings.
    pub fn attachments(&self) -> AttachmentSettings {
        AttachmentSettings {
            customer_attachments: self.customer_attachments,
            agent_attachments: self.agent_attachments,
            max_bytes: u64::try_from(self.max_attachment_bytes).unwrap_or(0),
        }
    }
}

/// A number.
#[derive(Debug, Clone, FromRow)]
pub struct Number {
    pub id: NumberId,
    pub channel_id: ChannelId,
    pub phone: String,
    pub display_name: String,
    pub active: bool,
    #[sqlx(flatten)]
    pub settings: NumberSettings,
    pub created_at: OffsetDateTime,
}

/// What a number's deletion did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeletionReport {
    pub conversations_closed: u32,
    pub messages_failed: u32,
    pub templates_removed: u32,
}

const COLUMNS: &str = "id, channel_id, phone, display_name, active, default_language, customer_attachments, agent_attachments, \
     max_attachment_bytes, workstream_id, send_rate_per_second, survey_enabled, survey_url, survey_message, survey_template_id, created_at";

fn check_display_name(name: &str) -> Result<(), SessionError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(SessionError::invalid("display_name must have 1 to 100 characters"));
    }
    Ok(())
}

impl Session {
    /// Adds a number to a channel.
    pub async fn create_number(
        &self,
        channel_id: Uuid,
        phone: &str,
        display_name: &str,
        settings: NumberSettings,
        skip_sender_check: bool,
    ) -> Result<Number, SessionError> {
        let phone = PhoneNumber::parse(phone).map_err(|e| SessionError::invalid(e.to_string()))?;
        check_display_name(display_name)?;
        settings.validate()?;
        if self.settings.channel_health.check_senders_on_save && !skip_sender_check {
            // Resolved once: its sandbox flag, and the credentials to ask Twilio with.
            let resolved = self.resolve_channel(channel_id.into()).await?;
            // The sandbox's number is Twilio's shared one, never a sender of the account.
            if !resolved.channel.sandbox {
                let credentials = switchboard_twilio::Credentials::account(&resolved.channel.account_sid, resolved.auth_token);
                self.check_sender(channel_id, &credentials, phone.as_str()).await?;
            }
        } else {
            self.channel(channel_id.into()).await?;
        }
        let sql = format!(
            "INSERT INTO session.numbers (id, channel_id, phone, display_name, default_language, customer_attachments, agent_attachments, \
             max_attachment_bytes, workstream_id, send_rate_per_second, survey_enabled, survey_url, survey_message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
        );
        let s = &settings;
        let number = sqlx::query_as::<_, Number>(sqlx::AssertSqlSafe(sql))
            .bind(Uuid::now_v7())
            .bind(channel_id)
            .bind(phone.as_str())
            .bind(display_name.trim())
            .bind(&s.default_language)
            .bind(s.customer_attachments)
            .bind(s.agent_attachments)
            .bind(s.max_attachment_bytes)
            .bind(s.workstream_id)
            .bind(s.send_rate_per_second)
            .bind(s.survey_enabled)
            .bind(&s.survey_url)
            .bind(&s.survey_message)
            .fetch_one(&self.pool)
            .await?;
        self.config.invalidation.invalidate();
        Ok(number)
    }

    /// Returns a live number.
    pub async fn number(&self, id: Uuid) -> Result<Number, SessionError> {
        let sql = format!("SELECT {COLUMNS} FROM session.numbers WHERE id = $1 AND deleted_at IS NULL");
        sqlx::query_as::<_, Number>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(SessionError::NotFound("number"))
    }

    /// Lists the live numbers of a channel (all channels when `None`).
    pub async fn list_numbers(&self, channel_id: Option<Uuid>, after: Option<Uuid>, limit: i64) -> Result<Vec<Number>, SessionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM session.numbers WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR channel_id = $1) \
             AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        Ok(sqlx::query_as::<_, Number>(sqlx::AssertSqlSafe(sql))
            .bind(channel_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Updates a number's name, active flag and (when given) all its settings.
    pub async fn update_number(
        &self,
        id: Uuid,
        display_name: Option<&str>,
        active: Option<bool>,
        settings: Option<NumberSettings>,
    ) -> Result<Number, SessionError> {
        if let Some(name) = display_name {
            check_display_name(name)?;
        }
        let current = self.number(id).await?;
        let previous_workstream = current.settings.workstream_id;
        let s = match settings {
            Some(s) => {
                s.validate()?;
                if let Some(template) = s.survey_template_id {
                    let owned: bool =
                        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM session.templates WHERE id = $1 AND number_id = $2)")
                            .bind(template)
                            .bind(id)
                            .fetch_one(&self.pool)
                            .await?;
                    if !owned {
                        return Err(SessionError::invalid("survey_template_id must be a template of this number"));
                    }
                }
                s
            }
            None => current.settings,
        };
        let sql = format!(
            "UPDATE session.numbers SET display_name = COALESCE($2, display_name), active = COALESCE($3, active), default_language = $4, \
             customer_attachments = $5, agent_attachments = $6, max_attachment_bytes = $7, workstream_id = $8, send_rate_per_second = $9, \
             survey_enabled = $10, survey_url = $11, survey_message = $12, survey_template_id = $13, updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
        );
        let updated = sqlx::query_as::<_, Number>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(display_name.map(str::trim))
            .bind(active)
            .bind(&s.default_language)
            .bind(s.customer_attachments)
            .bind(s.agent_attachments)
            .bind(s.max_attachment_bytes)
            .bind(s.workstream_id)
            .bind(s.send_rate_per_second)
            .bind(s.survey_enabled)
            .bind(&s.survey_url)
            .bind(&s.survey_message)
            .bind(s.survey_template_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(SessionError::NotFound("number"))?;
        self.config.invalidation.invalidate();
        if updated.settings.workstream_id.is_some() && updated.settings.workstream_id != previous_workstream {
            self.route_unrouted(&updated).await?;
        }
        Ok(updated)
    }

    /// Sends the number's waiting conversations that no workstream routed (it had none, or
    /// its workstream was deleted) to routing again, now through the number's new workstream.
    async fn route_unrouted(&self, number: &Number) -> Result<(), SessionError> {
        let mut tx = self.pool.begin().await?;
        #[derive(sqlx::FromRow)]
        struct Waiting {
            #[sqlx(flatten)]
            c: crate::conversations::ConversationRow,
            phone: Option<String>,
            bsuid: Option<String>,
            profile_name: Option<String>,
        }
        let waiting: Vec<Waiting> = sqlx::query_as(
            "UPDATE session.conversations c SET workstream_id = $2 FROM session.customers cu \
             WHERE cu.id = c.customer_id AND c.number_id = $1 AND c.status = 'open' AND c.agent_id IS NULL AND c.bot_id IS NULL \
             AND (c.workstream_id IS NULL OR NOT EXISTS (SELECT 1 FROM session.workstreams w WHERE w.id = c.workstream_id)) \
             RETURNING c.*, cu.phone, cu.bsuid, cu.profile_name",
        )
        .bind(number.id)
        .bind(number.settings.workstream_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = crate::app::Events::default();
        let now = self.now();
        for Waiting {
            c,
            phone,
            bsuid,
            profile_name,
        } in &waiting
        {
            events.push(
                switchboard_bus::events::ConversationOpenedV1 {
                    conversation_id: c.id,
                    channel_id: c.channel_id,
                    number_id: number.id,
                    workstream_id: number.settings.workstream_id.map(Into::into),
                    customer_id: c.customer_id,
                    customer_phone: phone.clone(),
                    customer_bsuid: bsuid.clone(),
                    profile_name: profile_name.clone(),
                    language: number.settings.default_language.clone(),
                    first_message: c.first_message.clone(),
                    button_payload: None,
                    attributes: c.attributes(),
                    reopened: false,
                    previous_agent_id: None,
                    last_customer_message_at: c.last_customer_message_at.unwrap_or(c.opened_at),
                },
                now,
            );
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        if !waiting.is_empty() {
            tracing::info!(number_id = %number.id, conversations = waiting.len(), "unrouted conversations sent to the number's new workstream");
        }
        Ok(())
    }

    /// Deletes a number with the documented cascade.
    pub async fn delete_number(&self, id: Uuid) -> Result<DeletionReport, SessionError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "UPDATE session.numbers SET deleted_at = now(), active = false, survey_template_id = NULL WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(SessionError::NotFound("number"));
        }
        let now = self.now();
        let mut events = Events::default();
        let live = sqlx::query_as::<_, ConversationRow>(
            "SELECT * FROM session.conversations WHERE number_id = $1 AND status <> 'closed' FOR UPDATE",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let input = TransitionInput {
            note: Some("The WhatsApp number of this conversation was deleted; the conversation was closed.".into()),
            ..TransitionInput::new(Transition::ChannelDeleted)
        };
        for conversation in &live {
            self.transition_locked(&mut tx, conversation, &input, &mut events).await?;
        }
        let failed: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE session.messages m SET status = 'failed', error_message = 'not sent: the WhatsApp number was deleted' \
             FROM session.conversations c WHERE c.id = m.conversation_id AND c.number_id = $1 AND m.direction = 'outbound' \
             AND m.status = 'pending' RETURNING m.id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for message_id in &failed {
            events.push(
                OutboundCancelledV1 {
                    message_id: (*message_id).into(),
                },
                now,
            );
        }
        let templates = sqlx::query("DELETE FROM session.templates WHERE number_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM session.automated_messages WHERE number_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        self.config.invalidation.invalidate();
        let report = DeletionReport {
            conversations_closed: u32::try_from(live.len()).unwrap_or(u32::MAX),
            messages_failed: u32::try_from(failed.len()).unwrap_or(u32::MAX),
            templates_removed: u32::try_from(templates.rows_affected()).unwrap_or(u32::MAX),
        };
        tracing::info!(number_id = %id, ?report, "number deleted");
        Ok(report)
    }
}
